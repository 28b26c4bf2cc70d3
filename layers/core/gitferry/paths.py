"""Where a path a tool will read lands: THE "is this inside the repository" check.

Kept apart from :mod:`gitferry.render` (which needs pydantic for the Application model) so the
Jsonnet child process (:mod:`gitferry.jsonnet_eval`) imports only this and the binding: its
start-up is most of a small app's render time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from gitferry.errors import RenderError

__all__ = ["resolve_in_repo"]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


#: what a reference naming something outside the checked-out tree looks like: a URL, an scp-like
#: ``git@host:path``, go-getter's ``git::``, kustomize's ``repo//subdir`` and ``?ref=`` forms
_REMOTE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://|[a-z][a-z0-9+.-]*::|[\w.-]+@[\w.-]+:|(?:github\.com|gitlab\.com|bitbucket\.org)/)"
    r"|\?(?:ref|version|submodules|timeout)=|[^/]//",
    re.I,
)


def resolve_in_repo(root: Path, base: Path, ref: str, *, file: str | None, field: str,
                    absolute: Literal["repo", "refuse"] = "refuse") -> Path:
    """THE check every source type uses for every path a tool will read: ``ref`` (relative
    to ``base``) resolved with symlinks, or a RenderError naming ``file`` and ``field``.

    Refused: remote references (URLs, git bases; gitferry fetches nothing but the app's own
    repository), absolute paths unless ``absolute="repo"`` (Argo CD's repo-absolute value
    files; kustomize and helm would read them from the Lambda's filesystem), and anything
    that resolves outside ``root``."""
    text = ref.strip()
    if _REMOTE.search(text):
        raise RenderError(f"{field}: {ref!r}: remote resources are not supported by gitferry "
                          "(only files in this repository)", file)
    if os.path.isabs(text):
        if absolute == "refuse":
            raise RenderError(f"{field}: {ref!r}: absolute paths are not allowed; use a path relative to "
                              f"{_repo_rel(base, root) or '.'!r}", file)
        target = root / text.lstrip("/")
    else:
        target = base / text
    real = Path(os.path.realpath(target))
    if not _inside(real, root):
        raise RenderError(f"{field} {ref!r} resolves outside the repository", file)
    return real


def _repo_rel(path: Path, root: Path) -> str:
    """``path`` relative to the repo root for messages (symlinks not resolved)."""
    try:
        return Path(os.path.abspath(path)).relative_to(root).as_posix()
    except ValueError:
        return path.name
