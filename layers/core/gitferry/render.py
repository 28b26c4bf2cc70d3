"""Directory sources: a path of plain YAML/JSON manifests, rendered as Argo CD does.

Argo CD's rules (repo-server ``findManifests``), kept because users rely on them:

- files ending ``.yaml``, ``.yml`` or ``.json`` are manifests; everything else
  (README.md, scripts ...) is ignored; ``.jsonnet`` is refused here, since
  silently skipping it would deploy less than the user asked for;
- ``recurse`` (default false) descends into sub-directories; ``include`` /
  ``exclude`` are globs matched against the path relative to ``path``, where
  ``*`` also crosses ``/`` and ``{a.yaml,b.yaml}`` is a set of alternatives;
- multi-document YAML, empty documents skipped, ``kind: List`` (and any
  ``*List`` with ``items``) flattened;
- files in lexical path order, documents in file order: the same commit always
  gives the same list, so the content-addressed S3 key is stable.

Security (Argo CD advisories): ``path`` and every symlink are resolved, and
anything that lands outside the checked-out repository is refused.

YAML is read the way Kubernetes tooling reads it: timestamps stay strings and
mapping keys become strings, so the result is plain JSON data.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from gitferry.errors import RenderError
from gitferry.model import DirectoryOptions

__all__ = ["render_directory", "glob_match", "MAX_TOTAL_BYTES"]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
#: bound on what one render reads (a hostile repo must not exhaust a Lambda's memory)
MAX_TOTAL_BYTES = 64 * 1024 * 1024
HOOK_ANNOTATION = "argocd.argoproj.io/hook"

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _K8sLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader without the timestamp resolver (``2024-01-01`` stays a string)."""


_K8sLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


# --------------------------------------------------------------------------- globs


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """gobwas/glob semantics without separators (as Argo CD calls it): ``*`` and
    ``**`` match anything, ``?`` one character, ``[abc]`` / ``[!abc]`` classes,
    ``{a,b}`` alternatives (nestable), ``\\`` escapes."""
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    out.extend(")" * depth)
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, rel_path: str) -> bool:
    """Whether ``rel_path`` (``/``-separated, relative to the source path) matches."""
    return _glob_regex(pattern).fullmatch(rel_path) is not None


# --------------------------------------------------------------------------- render


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _options(directory_options: DirectoryOptions | dict[str, Any] | None) -> DirectoryOptions:
    if directory_options is None:
        return DirectoryOptions()
    if isinstance(directory_options, DirectoryOptions):
        return directory_options
    return DirectoryOptions.model_validate(directory_options)


def _candidate_files(root: Path, base: Path, opts: DirectoryOptions) -> Iterator[tuple[str, Path]]:
    """(path relative to ``base``, real file) for each manifest file, in lexical order."""
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != ".git") if opts.recurse else []
        here = Path(dirpath)
        for fname in sorted(filenames):
            full = here / fname
            rel = full.relative_to(base).as_posix()
            if fname.endswith(".jsonnet") and not (opts.exclude and glob_match(opts.exclude, rel)):
                raise RenderError("jsonnet sources are not supported by gitferry", _repo_rel(full, root))
            if not fname.endswith(MANIFEST_SUFFIXES):
                continue
            if full.is_symlink():
                real = Path(os.path.realpath(full))
                if not _inside(real, root):
                    raise RenderError(
                        "illegal symlink: it points outside the repository", _repo_rel(full, root)
                    )
                if not real.is_file():
                    continue  # dangling, or to a directory / device: Argo CD skips it with a warning
            if opts.exclude and glob_match(opts.exclude, rel):
                continue
            if opts.include and not glob_match(opts.include, rel):
                continue
            yield rel, full


def _repo_rel(path: Path, root: Path) -> str:
    """``path`` relative to the repo root for messages (symlinks not resolved)."""
    try:
        return Path(os.path.abspath(path)).relative_to(root).as_posix()
    except ValueError:
        return path.name


def _stringify_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: _stringify_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_stringify_keys(v) for v in obj]
    return obj


def _parse(text: str, rel: str) -> list[Any]:
    if rel.endswith(".json"):
        try:
            return [json.loads(text)] if text.strip() else []
        except json.JSONDecodeError as exc:
            raise RenderError(f"invalid JSON: {exc.msg}", rel, exc.lineno) from None
    try:
        return [_stringify_keys(d) for d in yaml.load_all(text, Loader=_K8sLoader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        raise RenderError(f"invalid YAML: {problem}", rel, line) from None


def _check_object(obj: Any, rel: str, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RenderError(f"{where}: expected a Kubernetes object (a mapping), got {type(obj).__name__}", rel)
    missing = [f for f in ("apiVersion", "kind") if not isinstance(obj.get(f), str) or not obj.get(f)]
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not (isinstance(name, str) and name):
        annotations = (meta or {}).get("annotations") or {} if isinstance(meta, dict) else {}
        generated = isinstance(meta, dict) and meta.get("generateName") and HOOK_ANNOTATION in annotations
        if not generated:
            missing.append("metadata.name")
    if missing:
        raise RenderError(f"{where}: missing {', '.join(missing)}", rel)
    return obj


def _is_list(obj: dict[str, Any]) -> bool:
    kind = obj.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list)


def render_directory(
    root: Path | str,
    path: str = ".",
    directory_options: DirectoryOptions | dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Manifests of directory ``path`` inside checked-out repo ``root``.

    Raises :class:`RenderError` naming the file (relative to the repo) and, for
    parse errors, the line; or the document index for objects that are not
    Kubernetes objects.
    """
    root = Path(os.path.realpath(root))
    opts = _options(directory_options)
    rel_path = (path or ".").strip()
    if os.path.isabs(rel_path):
        raise RenderError(f"path {rel_path!r} must be relative to the repository root")
    base = Path(os.path.realpath(root / rel_path))
    if not _inside(base, root):
        raise RenderError(f"path {rel_path!r} resolves outside the repository")
    if not base.is_dir():
        raise RenderError(f"path {rel_path!r} does not exist in the repository (or is not a directory)")

    manifests: list[dict[str, Any]] = []
    total = 0
    for _rel, full in _candidate_files(root, base, opts):
        repo_rel = _repo_rel(full, root)
        try:
            raw = Path(os.path.realpath(full)).read_bytes()
        except OSError as exc:
            raise RenderError(f"cannot read: {exc.strerror}", repo_rel) from None
        total += len(raw)
        if total > MAX_TOTAL_BYTES:
            raise RenderError(f"manifests under {rel_path!r} exceed {MAX_TOTAL_BYTES // (1024 * 1024)} MiB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RenderError("not UTF-8 text", repo_rel) from None
        for index, doc in enumerate(_parse(text, repo_rel)):
            where = f"document {index}"
            if isinstance(doc, dict) and _is_list(doc):
                for j, item in enumerate(doc["items"]):
                    manifests.append(_check_object(item, repo_rel, f"{where}, item {j}"))
                continue
            manifests.append(_check_object(doc, repo_rel, where))
    return manifests
