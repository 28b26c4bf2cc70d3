"""Multi-source applications (``spec.sources``), with Argo CD's semantics.

An app's *pinned revision* (the ``commit`` its messages carry, ``status.sync.revision``) is, for
``spec.source``, the source's revision (a commit SHA or a chart version); for ``spec.sources``,
every source's revision in order joined by ``,`` (neither a SHA nor a semver version holds a
comma), so every comparison the pipeline makes on one string ("is this commit synced?", FIFO
deduplication, rollback) holds for all sources at once. The list itself is shown as Argo CD
shows it: ``status.sync.revisions``, ``operationState.syncResult.revisions``, history
``revisions``.

Rendering (:func:`render_sources`): every source is materialized (Git checkout or chart fetch);
a source with ``ref`` provides its repository root to ``$<ref>/<path>`` value files of the
others; sources without a ``path`` and with ``ref`` are not rendered themselves. The objects of
all rendered sources are combined in source order; an object produced twice (same group, kind,
namespace, name) is taken from the last source producing it, and a ``RepeatedResourceWarning``
names it, as Argo CD does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitferry.errors import RenderError
from gitferry.model import Application, ApplicationSource

__all__ = ["as_deployed", "pinned", "revisions_of", "status_fields", "render_sources", "repeated_warning", "MAX_REPEATED"]

SEPARATOR = ","
#: RepeatedResourceWarning conditions kept on a status (then a count)
MAX_REPEATED = 50


def pinned(revisions: list[str]) -> str:
    """The pinned revision of an app whose sources resolved to ``revisions``."""
    return revisions[0] if len(revisions) == 1 else SEPARATOR.join(revisions)


def revisions_of(app: Application, commit: str) -> list[str]:
    """Each source's revision in a pinned revision of ``app``; RenderError when it does not have
    one per source (a history entry recorded before the sources changed)."""
    count = len(app.spec.all_sources)
    if not app.spec.multi_source:
        return [commit]
    parts = commit.split(SEPARATOR)
    if len(parts) != count or not all(parts):
        raise RenderError(f"revision {commit!r} does not name one revision for each of the {count} "
                          "spec.sources (was the list of sources changed since it was recorded?)")
    return parts


def as_deployed(app: Application, deployed: Any) -> Application:
    """``app`` with the ``source`` / ``sources`` of ``deployed`` in place of the spec's: a
    rollback's ``ManualSync`` (the history entry's), or the ``syncResult`` whose manifests a
    post-sync re-check compares; ``app`` itself when ``deployed`` names none."""
    source, sources = getattr(deployed, "source", None), getattr(deployed, "sources", None)
    if source is None and sources is None:
        return app
    spec = app.spec.model_copy(update={"source": source, "sources": sources})
    return app.model_copy(update={"spec": spec})


def status_fields(app: Application, commit: str | None) -> dict[str, Any]:
    """``revisions`` for a multi-source app's status / result / history (empty for one source)."""
    if not app.spec.multi_source or not commit:
        return {}
    try:
        return {"revisions": revisions_of(app, commit)}
    except RenderError:
        return {}


def source_fields(app: Application) -> dict[str, Any]:
    """``source`` or ``sources`` of ``app``, for comparedTo / syncResult / history."""
    if app.spec.multi_source:
        return {"sources": list(app.spec.sources or [])}
    return {"source": app.spec.source}


def repeated_warning(key: tuple[str, str, str, str], count: int) -> str:
    """Argo CD's RepeatedResourceWarning message for an object produced ``count`` times."""
    group, kind, namespace, name = key
    return f"Resource {group}/{kind}/{namespace}/{name} appeared {count} times among application resources."


def _key(obj: dict[str, Any], namespace: str | None) -> tuple[str, str, str, str]:
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    meta = obj.get("metadata") or {}
    return (group, str(obj.get("kind") or ""), str(meta.get("namespace") or namespace or ""),
            str(meta.get("name") or meta.get("generateName") or ""))


Materialize = Callable[[ApplicationSource, str], tuple[Path, ApplicationSource]]
RenderOne = Callable[[Path, ApplicationSource, dict[str, Path]], list[dict[str, Any]]]


def render_sources(app: Application, commit: str, materialize: Materialize,
                   render_one: RenderOne) -> tuple[list[dict[str, Any]], list[str]]:
    """(combined objects, RepeatedResourceWarning messages) of ``app`` at pinned ``commit``.

    ``materialize(source, revision)`` gives the directory to render and the source to render it
    with (a chart fetched from a Helm repository becomes a path source); ``render_one(root,
    source, refs)`` renders one source, ``refs`` mapping ref names to repository roots."""
    revisions = revisions_of(app, commit)
    sources = app.spec.all_sources
    roots: list[tuple[Path, ApplicationSource]] = []
    refs: dict[str, Path] = {}
    for source, revision in zip(sources, revisions, strict=True):
        root, rendered = materialize(source, revision)
        roots.append((root, rendered))
        ref = getattr(source, "ref", None)
        if ref:
            refs[ref] = root
    if not app.spec.multi_source:
        root, rendered = roots[0]
        return render_one(root, rendered, refs), []
    combined: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    counts: dict[tuple[str, str, str, str], int] = {}
    unnamed: list[dict[str, Any]] = []  # generateName hooks: never the same object twice
    namespace = app.spec.destination.namespace
    for i, (source, (root, rendered)) in enumerate(zip(sources, roots, strict=True)):
        if not source.renders:
            continue
        try:
            objects = render_one(root, rendered, refs)
        except RenderError as exc:
            raise RenderError(f"spec.sources[{i}] ({source.repo_url}): {exc}") from None
        for obj in objects:
            if not (obj.get("metadata") or {}).get("name"):
                unnamed.append(obj)
                continue
            key = _key(obj, namespace)
            counts[key] = counts.get(key, 0) + 1
            combined.pop(key, None)  # the last source producing it wins, in its own position
            combined[key] = obj
    warnings = [repeated_warning(k, n) for k, n in counts.items() if n > 1]
    if len(warnings) > MAX_REPEATED:
        warnings = [*warnings[:MAX_REPEATED], f"{len(warnings) - MAX_REPEATED} more resources appeared more than "
                    "once among application resources."]
    return [*combined.values(), *unnamed], warnings
