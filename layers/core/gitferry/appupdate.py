"""Changing a registered Application: ``PUT`` (the whole manifest) and ``PATCH`` (a JSON merge
patch, RFC 7386). Pure helpers; :meth:`gitferry.service.Service.update_app` does the I/O.

Both are checked like a create (the one model, every problem named) and written with the
optimistic lock of the SPEC item: the version read (or the ``metadata.resourceVersion`` the
caller sends back from a GET) must still be the stored one, else 409.
"""

from __future__ import annotations

from typing import Any

from gitferry.errors import ConflictError, InvalidSpecError

__all__ = ["PATCHABLE_METADATA", "expected_version", "merge_patch", "patched_manifest", "put_manifest"]

#: what a merge patch may change besides ``spec``
PATCHABLE_METADATA = frozenset({"labels", "annotations", "finalizers", "resourceVersion"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def expected_version(doc: dict[str, Any], stored_version: int, name: str) -> int:
    """The version the write is conditional on: ``metadata.resourceVersion`` when given (409 when
    it is not the stored one any more), else the version just read."""
    meta = doc.get("metadata")
    given = meta.get("resourceVersion") if isinstance(meta, dict) else None
    if given is None:
        return stored_version
    if isinstance(given, bool) or not str(given).isdigit():
        raise InvalidSpecError([f"metadata.resourceVersion: {str(given)[:40]!r} is not a version this API returned"],
                               "invalid Application update")
    if int(given) != stored_version:
        raise ConflictError(f"application {name!r} was changed since resourceVersion {given} "
                            f"(it is {stored_version} now): get it again and re-apply your change")
    return stored_version


def put_manifest(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The manifest of a PUT: its ``metadata.name`` must be the path's."""
    meta = doc.get("metadata")
    given = meta.get("name") if isinstance(meta, dict) else None
    if given is not None and given != name:
        raise InvalidSpecError([f"metadata.name: {str(given)[:253]!r} is not the application of the path ({name!r})"],
                               "invalid Application update")
    return doc


def patched_manifest(current: dict[str, Any], patch: dict[str, Any], name: str) -> dict[str, Any]:
    """``current`` with the merge ``patch`` applied; only ``spec`` and metadata labels,
    annotations and finalizers may change (the name never)."""
    problems = [f"{k}: a merge patch may change spec and metadata.{{labels, annotations, finalizers}} only"
                for k in sorted(set(patch) - {"spec", "metadata"}, key=str)]
    meta = patch.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        problems.append("metadata: must be a mapping")
    elif isinstance(meta, dict):
        if "name" in meta and meta["name"] != name:
            problems.append(f"metadata.name: {str(meta['name'])[:253]!r} is not the application of the path ({name!r})")
        problems += [f"metadata.{k}: a merge patch may change metadata.{{labels, annotations, finalizers}} only"
                     for k in sorted(set(meta) - PATCHABLE_METADATA - {"name"}, key=str)]
    if "spec" in patch and not isinstance(patch["spec"], dict):
        problems.append("spec: must be a mapping")
    if problems:
        raise InvalidSpecError(problems, "invalid Application patch")
    clean = dict(patch)
    if isinstance(meta, dict):
        clean["metadata"] = {k: v for k, v in meta.items() if k not in ("resourceVersion", "name")}
    return merge_patch(current, clean)


def changed_spec_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level spec fields that differ (for the audit entry)."""
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k))
