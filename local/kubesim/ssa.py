"""Server-side apply and managedFields, following sigs.k8s.io/structured-merge-diff.

The apiserver keeps, per field manager, the set of fields it owns (FieldsV1).
Two kinds of writers exist:

* appliers (``operation: Apply``): their set is exactly the fields of their last
  applied configuration. Changing a field someone else owns is a conflict unless
  forced; a field they applied before and dropped now is removed from the object
  when nobody else owns it (``prune``).
* updaters (``operation: Update``: create/update/patch): they take every field they
  changed, silently, from everybody else.

This module mirrors ``merge.Updater`` (Apply / Update / prune), ``TypedValue``
``ToFieldSet`` / ``Merge`` / ``Compare`` and the apiserver's fieldmanager layers
(stripped metadata, reset fields for status, entry identity, sort order, conflict
messages). Objects are plain JSON dicts; schemas come from ``schema.SchemaNode``
(through ``fieldpath.SchemaLike``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from local.kubesim import errors
from local.kubesim.fieldpath import (
    FieldSet,
    Path,
    SchemaLike,
    child,
    key_element,
    list_kind,
    render_path,
    to_paths,
    to_wire,
    value_element,
)
from local.kubesim.types import ResourceType

JSON = Any
_ABSENT: Any = object()  # a missing key, as opposed to an explicit null

# metadata fields the fieldmanager never records (stripMetaManager) plus
# deletionTimestamp, which only the server sets.
_STRIPPED_META = frozenset({
    "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
    "generation", "managedFields", "resourceVersion", "deletionTimestamp",
    "deletionGracePeriodSeconds",
})
_STRIPPED_TOP = frozenset({"apiVersion", "kind"})


# ==================================================================== FieldsV1 of an object


def fields_v1(obj: dict[str, Any], node: SchemaLike) -> FieldSet:
    """The FieldsV1 set of ``obj`` as an applier of exactly ``obj`` would own it.

    Mirrors structured-merge-diff's ``ToFieldSet``: every scalar is a member; list
    items of map/set lists are members (hence the ``.`` under ``k:``/``v:``); an
    atomic list or map is one member with no children; a map key is a member on
    its own only when it is not a declared struct field (``labels.app``) or its value
    is null/empty. Server-owned metadata (name, uid, resourceVersion, ...) and
    apiVersion/kind are left out, like the apiserver's stripMetaManager.
    """
    return to_wire(_strip(_object_paths(obj, node)))


def _object_paths(obj: JSON, node: SchemaLike) -> set[Path]:
    out: set[Path] = set()
    _collect(obj, node, (), out)
    return out


def _declared(node: SchemaLike, name: str) -> bool:
    has = getattr(node, "has_field", None)
    if callable(has):
        return bool(has(name))
    return node.field(name).known and not node.values.known


def _collect(value: JSON, node: SchemaLike, path: Path, out: set[Path]) -> None:
    if isinstance(value, dict):
        if path and node.map_type == "atomic":
            out.add(path)
            return
        for k, v in value.items():
            p = (*path, "f:" + k)
            if v is None or (isinstance(v, dict) and not v) or not _declared(node, k):
                out.add(p)
            if v is not None:
                _collect(v, child(node, k), p, out)
        return
    if isinstance(value, list):
        kind = list_kind(node)
        if kind == "atomic":
            out.add(path)
            return
        for item in value:
            p = (*path, _item_element(item, node, kind))
            out.add(p)
            if kind == "map" and isinstance(item, dict):
                _collect(item, node.items, p, out)
        return
    out.add(path)


def _item_element(item: JSON, node: SchemaLike, kind: str) -> str:
    if kind == "map" and isinstance(item, dict):
        return key_element(item, node.list_map_keys, node.items)
    return value_element(item)


def _strip(paths: set[Path]) -> set[Path]:
    """Drop apiVersion/kind, bare ``metadata`` and the server-owned metadata fields."""
    out: set[Path] = set()
    for p in paths:
        if not p:
            continue
        head = p[0]
        if head[2:] in _STRIPPED_TOP:
            continue
        if head == "f:metadata":
            if len(p) == 1:
                continue
            if p[1][2:] in _STRIPPED_META:
                continue
        out.add(p)
    return out


def _reset_filter(paths: set[Path], subresource: str | None) -> set[Path]:
    """The strategies' reset fields: ``status`` belongs to the status subresource only."""
    if subresource == "status":
        return {p for p in paths if p[0] in ("f:status", "f:metadata")}
    return {p for p in paths if p[0] != "f:status"}


# ==================================================================== merge (live + config)


def _merge(lhs: JSON, rhs: JSON, node: SchemaLike) -> JSON:
    """structured-merge-diff ``Merge``: rhs wins, granular maps and keyed lists merge."""
    if rhs is _ABSENT:
        return copy.deepcopy(lhs)
    if lhs is _ABSENT or lhs is None or rhs is None:
        return copy.deepcopy(rhs)
    if isinstance(lhs, dict) and isinstance(rhs, dict) and node.map_type != "atomic":
        out = copy.deepcopy(lhs)
        for k, v in rhs.items():
            if v is None:
                out.pop(k, None)
                continue
            out[k] = _merge(lhs.get(k, _ABSENT), v, child(node, k))
        return out
    if isinstance(lhs, list) and isinstance(rhs, list) and list_kind(node) != "atomic":
        return _merge_list(lhs, rhs, node)
    return copy.deepcopy(rhs)


def _merge_list(lhs: list[JSON], rhs: list[JSON], node: SchemaLike) -> list[JSON]:
    """Keyed/set list merge keeping the relative order of both sides (SMD visitListItems).

    Items of the config keep their order; live-only items stay where they were
    relative to the shared items.
    """
    kind = list_kind(node)
    lpe = [_item_element(x, node, kind) for x in lhs]
    rpe = [_item_element(x, node, kind) for x in rhs]
    lmap = dict(zip(lpe, lhs, strict=True))
    rmap = dict(zip(rpe, rhs, strict=True))
    shared = [pe for pe in rpe if pe in lmap]
    next_shared = shared.pop(0) if shared else None
    merged_r: set[str] = set()
    out: list[JSON] = []
    li = ri = 0
    while li < len(lpe) or ri < len(rpe):
        if li < len(lpe) and ri < len(rpe):
            pe = lpe[li]
            if pe == rpe[ri]:
                merged_r.add(pe)
                out.append(_merge_item(lmap[pe], rmap[pe], node, kind))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in rmap and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lpe):
            pe = lpe[li]
            if pe not in rmap:
                out.append(copy.deepcopy(lhs[li]))
                li += 1
                continue
            if pe in merged_r:
                li += 1
                continue
        if ri < len(rpe):
            pe = rpe[ri]
            merged_r.add(pe)
            out.append(_merge_item(lmap.get(pe, _ABSENT), rmap[pe], node, kind))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def _merge_item(lhs: JSON, rhs: JSON, node: SchemaLike, kind: str) -> JSON:
    if kind == "map":
        return _merge(lhs, rhs, node.items)
    return copy.deepcopy(rhs)


# ==================================================================== compare (old vs new)


@dataclass
class _Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)


def _compare(old: JSON, new: JSON, node: SchemaLike) -> _Comparison:
    """structured-merge-diff ``Compare``: which member paths were added/modified/removed.

    A container (map or list) is itself reported only when it appears or disappears,
    which is why an Update entry shows ``.`` under a list or map it created.
    """
    c = _Comparison()
    _cmp(old, new, node, (), c)
    return c


def _is_container(v: JSON, node: SchemaLike) -> bool:
    if isinstance(v, dict):
        return node.map_type != "atomic"
    if isinstance(v, list):
        return list_kind(node) != "atomic"
    return False


def _cmp(lhs: JSON, rhs: JSON, node: SchemaLike, path: Path, c: _Comparison) -> None:
    lc = lhs is not _ABSENT and _is_container(lhs, node)
    rc = rhs is not _ABSENT and _is_container(rhs, node)
    if not lc and not rc:
        _leaf(lhs, rhs, path, c)
        return
    if lc and rc and type(lhs) is type(rhs):
        if isinstance(lhs, dict):
            for k in [*lhs, *[k for k in rhs if k not in lhs]]:
                _cmp(lhs.get(k, _ABSENT), rhs.get(k, _ABSENT), child(node, k), (*path, "f:" + k), c)
        else:
            _cmp_list(lhs, rhs, node, path, c)
    else:
        # the value changed shape (null -> map, scalar -> list ...): each side on its own
        if lc:
            _cmp(lhs, _empty_like(lhs), node, path, c)
        if rc:
            _cmp(_empty_like(rhs), rhs, node, path, c)
        if (lhs is not _ABSENT and rhs is not _ABSENT) and path:
            c.modified.add(path)
    if path:
        if lhs is _ABSENT and rhs is not _ABSENT:
            c.added.add(path)
        elif rhs is _ABSENT and lhs is not _ABSENT:
            c.removed.add(path)


def _empty_like(v: JSON) -> JSON:
    return {} if isinstance(v, dict) else []


def _cmp_list(lhs: list[JSON], rhs: list[JSON], node: SchemaLike, path: Path, c: _Comparison) -> None:
    kind = list_kind(node)
    lmap = {_item_element(x, node, kind): x for x in lhs}
    rmap = {_item_element(x, node, kind): x for x in rhs}
    item_node = node.items if kind == "map" else node
    for pe in [*lmap, *[p for p in rmap if p not in lmap]]:
        p = (*path, pe)
        lv, rv = lmap.get(pe, _ABSENT), rmap.get(pe, _ABSENT)
        if kind == "map":
            _cmp(lv, rv, item_node, p, c)
        elif lv is _ABSENT:
            c.added.add(p)
        elif rv is _ABSENT:
            c.removed.add(p)


def _leaf(lhs: JSON, rhs: JSON, path: Path, c: _Comparison) -> None:
    if not path:
        return
    if lhs is _ABSENT and rhs is not _ABSENT:
        c.added.add(path)
    elif rhs is _ABSENT and lhs is not _ABSENT:
        c.removed.add(path)
    elif lhs is not _ABSENT and not _json_same(lhs, rhs):
        c.modified.add(path)


def _json_same(a: JSON, b: JSON) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ==================================================================== managed fields entries


@dataclass
class _Entry:
    """One managedFields entry with its set as member paths."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    subresource: str
    paths: set[Path]

    @property
    def ident(self) -> tuple[str, str, str, str]:
        """The apiserver's manager identifier: apiVersion only counts for updaters."""
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = to_wire(self.paths)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """``printManager``: how conflict messages name a manager."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def _decode(entries: Any) -> dict[tuple[str, str, str, str], _Entry]:
    out: dict[tuple[str, str, str, str], _Entry] = {}
    if not isinstance(entries, list):
        return out
    for raw in entries:
        if not isinstance(raw, dict):
            continue
        e = _Entry(
            manager=str(raw.get("manager", "")),
            operation=str(raw.get("operation", "Update")),
            api_version=str(raw.get("apiVersion", "")),
            time=raw.get("time"),
            subresource=str(raw.get("subresource", "") or ""),
            paths=to_paths(raw.get("fieldsV1") or {}),
        )
        prev = out.get(e.ident)
        if prev is not None:
            prev.paths |= e.paths
        else:
            out[e.ident] = e
    return out


def _encode(managers: dict[tuple[str, str, str, str], _Entry]) -> list[dict[str, Any]]:
    """Entries in the apiserver's order: Apply before Update, then time, manager, version."""
    live = [e for e in managers.values() if e.paths]
    live.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    return [e.to_dict() for e in live]


MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"


def _cap_updaters(
    managers: dict[tuple[str, str, str, str], _Entry],
) -> dict[tuple[str, str, str, str], _Entry]:
    """capManagersManager: beyond 10 Update entries the oldest are folded, per apiVersion,
    into an ``ancient-changes`` entry, so managedFields cannot grow without bound."""
    managers = dict(managers)
    updaters = [k for k, e in managers.items() if e.operation != "Apply"]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return managers
    updaters.sort(key=lambda k: (managers[k].time or "", json.dumps(list(k))))
    first_of_version: dict[str, tuple[str, str, str, str]] = {}
    length = len(updaters)
    for k in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        e = managers[k]
        bucket = (ANCIENT_CHANGES, "Update", e.api_version, "")
        first = first_of_version.get(e.api_version)
        if first is None:
            first_of_version[e.api_version] = k
            continue
        if bucket not in managers:
            base = managers.pop(first)
            managers[bucket] = _Entry(ANCIENT_CHANGES, "Update", e.api_version, base.time, "", set(base.paths))
        b = managers[bucket]
        b.paths = b.paths | e.paths
        b.time = e.time
        del managers[k]
        length -= 1
    return managers


def _body(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The object without managedFields (they never take part in merges or diffs)."""
    if not obj:
        return {}
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def _sets_equal(a: dict[tuple[str, str, str, str], _Entry], b: dict[tuple[str, str, str, str], _Entry]) -> bool:
    """Equal up to timestamps (the apiserver then keeps the old entries, times included)."""
    ka = {k: (e.api_version, e.paths) for k, e in a.items() if e.paths}
    kb = {k: (e.api_version, e.paths) for k, e in b.items() if e.paths}
    return ka == kb


# ==================================================================== apply


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    node: SchemaLike,
    force: bool,
    api_version: str,
    now: str,
    rt: ResourceType,
    subresource: str | None = None,
) -> dict[str, Any]:
    """Server-side apply ``config`` onto ``live`` (None: create) as ``manager``.

    Returns the new object with ``metadata.managedFields``; raises the apiserver's 409
    (``Apply failed with N conflict(s): ...``) when the config changes fields owned by
    other managers and ``force`` is false. Defaults are not applied here: a field that
    was removed because its applier dropped it is re-defaulted by the store afterwards.
    ``subresource="status"`` applies to the status subresource (only status changes).
    """
    cmeta = config.get("metadata")
    if isinstance(cmeta, dict) and cmeta.get("managedFields", None) is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    live_body = _body(live)
    old_managers = _decode(((live or {}).get("metadata") or {}).get("managedFields"))
    managers = copy.deepcopy(old_managers)

    cfg = _applied_part(_body(config), subresource)
    merged = _merge(live_body, cfg, node)
    if subresource != "status" and "status" in live_body:
        merged["status"] = copy.deepcopy(live_body["status"])
    elif subresource != "status":
        merged.pop("status", None)

    me = _Entry(manager, "Apply", api_version, now, subresource or "", set())
    last = managers.get(me.ident)
    me.paths = _reset_filter(_strip(_object_paths(cfg, node)), subresource)
    managers[me.ident] = me
    if last is not None and last.paths:
        merged = _prune(merged, managers, me.ident, last.paths, node)

    try:
        managers = _update_others(live_body, merged, node, managers, me.ident, force, subresource, rt, config)
    except errors.ApiError as exc:
        # lastAppliedManager: kubectl's first server-side apply over a client-side applied
        # object may take the fields its last-applied annotation still describes.
        allowed = _allowed_from_last_applied(live_body, node) if exc.code == 409 and \
            manager == LAST_APPLIED_MANAGER and subresource is None else None
        if allowed is None:
            raise
        cmp = _compare(live_body, merged, node)
        conflicts = _find_conflicts(managers, me.ident, _reset_filter(_strip(cmp.modified | cmp.added), subresource))
        rest = [(e, p) for e, p in conflicts if p not in allowed]
        if rest:
            raise _conflict_error(rt, _name_of(config, live_body), rest) from None
        managers = _update_others(live_body, merged, node, managers, me.ident, True, subresource, rt, config)
    if manager == LAST_APPLIED_MANAGER and subresource is None and _last_applied(merged) is not None:
        # lastAppliedUpdater: keep the annotation in step with what kubectl applies server-side.
        annotations = merged["metadata"]["annotations"]
        annotations[LAST_APPLIED] = _build_last_applied(config)
        if sum(len(k) + len(v) for k, v in annotations.items() if isinstance(v, str)) > 256 * 1024:
            del annotations[LAST_APPLIED]  # setLastApplied: dropped when annotations would be too large
    return _finish(live_body, merged, old_managers, managers, live)


def _applied_part(cfg: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    """What of the config applies: status only via /status, everything else via the main resource."""
    if subresource == "status":
        out: dict[str, Any] = {k: v for k, v in cfg.items() if k in ("apiVersion", "kind")}
        if "status" in cfg:
            out["status"] = cfg["status"]
        meta = cfg.get("metadata")
        if isinstance(meta, dict):
            out["metadata"] = {k: v for k, v in meta.items() if k in ("name", "namespace")}
        return out
    cfg.pop("status", None)
    return cfg


def _prune(
    merged: dict[str, Any],
    managers: dict[tuple[str, str, str, str], _Entry],
    me: tuple[str, str, str, str],
    last: set[Path],
    node: SchemaLike,
) -> dict[str, Any]:
    """Remove what ``me`` applied last time, does not apply now, and nobody else owns.

    A struct field stays while someone owns something beneath it (SMD's
    EnsureNamedFieldsAreMembers); a list item goes with everything in it.
    """
    owned: set[Path] = set()
    for e in managers.values():
        owned |= e.paths
    doomed = sorted(last - owned, key=len)
    prefixes = {p[:i] for p in owned for i in range(1, len(p))}
    out = copy.deepcopy(merged)
    for p in doomed:
        if p[-1].startswith("f:") and p in prefixes:
            continue
        _remove_path(out, p, node)
    return out


def _remove_path(obj: dict[str, Any], p: Path, node: SchemaLike) -> None:
    """Delete the value at member path ``p`` and the containers it leaves empty (not top-level)."""
    chain: list[tuple[Any, Any]] = []  # (container, key or index) from the root down
    cur: Any = obj
    n = node
    for el in p:
        if el.startswith("f:"):
            if not isinstance(cur, dict) or el[2:] not in cur:
                return
            chain.append((cur, el[2:]))
            n = child(n, el[2:])
            cur = cur[el[2:]]
        else:
            if not isinstance(cur, list):
                return
            kind = list_kind(n)
            idx = next((i for i, x in enumerate(cur) if _item_element(x, n, kind) == el), -1)
            if idx < 0:
                return
            chain.append((cur, idx))
            n = n.items
            cur = cur[idx]
    for depth in range(len(chain) - 1, -1, -1):
        container, key = chain[depth]
        if depth == len(chain) - 1:
            del container[key]
        elif not container[key] and depth >= 1:
            del container[key]
        else:
            break


def _update_others(
    old: dict[str, Any],
    new: dict[str, Any],
    node: SchemaLike,
    managers: dict[tuple[str, str, str, str], _Entry],
    me: tuple[str, str, str, str],
    force: bool,
    subresource: str | None,
    rt: ResourceType | None,
    config: dict[str, Any] | None,
) -> dict[tuple[str, str, str, str], _Entry]:
    """SMD ``Updater.update``: conflicts, then others lose what changed or vanished."""
    cmp = _compare(old, new, node)
    changed = _reset_filter(_strip(cmp.modified | cmp.added), subresource)
    removed = _reset_filter(_strip(cmp.removed), subresource)
    conflicts = _find_conflicts(managers, me, changed)
    if conflicts and not force:
        raise _conflict_error(rt, _name_of(config, old), conflicts)
    for ident, e in managers.items():
        if ident == me:
            continue
        e.paths = e.paths - changed - removed
    return {k: e for k, e in managers.items() if e.paths}


def _find_conflicts(managers: dict[tuple[str, str, str, str], _Entry], me: tuple[str, str, str, str],
                    changed: set[Path]) -> list[tuple[_Entry, Path]]:
    conflicts: list[tuple[_Entry, Path]] = []
    for ident, e in managers.items():
        if ident == me:
            continue
        for p in sorted(e.paths & changed, key=_path_sort_key):
            conflicts.append((e, p))
    return conflicts


# ==================================================================== client-side apply upgrade

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Only kubectl's own server-side apply upgrades from (and keeps in step with) client-side apply.
LAST_APPLIED_MANAGER = "kubectl"


def _last_applied(obj: dict[str, Any]) -> str | None:
    ann = (obj.get("metadata") or {}).get("annotations")
    value = ann.get(LAST_APPLIED) if isinstance(ann, dict) else None
    return value if isinstance(value, str) and value else None


def _allowed_from_last_applied(live: dict[str, Any], node: SchemaLike) -> set[Path] | None:
    """lastAppliedManager.allowedConflictsFromLastApplied: the fields of the annotation that still
    hold the value it records (fields changed since by someone else stay conflicts)."""
    text = _last_applied(live)
    if text is None:
        return None
    try:
        last = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last, dict):
        return None
    fields = _strip(_object_paths(last, node))
    cmp = _compare(last, live, node)
    return fields - cmp.modified - cmp.added - cmp.removed


def _build_last_applied(config: dict[str, Any]) -> str:
    """lastAppliedUpdater.buildLastApplied: the applied config without the annotation, as
    ``json.Encoder`` writes it (sorted keys, trailing newline)."""
    cfg = copy.deepcopy(config)
    meta = cfg.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def _path_sort_key(p: Path) -> tuple[tuple[int, str], ...]:
    return tuple(({"f": 0, "k": 1, "v": 2, "i": 3}.get(el[:1], 4), el) for el in p)


def _name_of(config: dict[str, Any] | None, old: dict[str, Any]) -> str:
    for src in (config, old):
        meta = (src or {}).get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            return str(meta["name"])
    return ""


def _conflict_error(rt: ResourceType | None, name: str, conflicts: list[tuple[_Entry, Path]]) -> errors.ApiError:
    """The apiserver's apply conflict (409) with its exact message and causes.

    Built on ``errors.apply_conflicts`` for the Status shape; the message and cause
    texts are the apiserver's ``getConflictMessage``/``printManager``: an applier is
    named alone (``conflict with "kubectl"``), an updater with its apiVersion
    (``conflict with "kubectl-edit" using apps/v1``).
    """
    triples = [(e.manager, e.api_version, render_path(p)) for e, p in conflicts]
    if rt is not None:
        err = errors.apply_conflicts(rt, name, triples)
    else:
        err = errors.ApiError(409, "Conflict", "", details={})
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {e.describe()}: {render_path(p)}"
    else:
        groups: dict[str, list[str]] = {}
        for e, p in conflicts:
            groups.setdefault(e.describe(), []).append(render_path(p))
        lines: list[str] = []
        for who in sorted(groups, key=lambda d: _manager_sort_key(d, conflicts)):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {p}" for p in groups[who])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    err.message = message
    err.args = (message,)
    details = err.details if err.details is not None else {}
    details["causes"] = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}", "field": render_path(p)}
        for e, p in conflicts
    ]
    err.details = details
    return err


def _manager_sort_key(described: str, conflicts: list[tuple[_Entry, Path]]) -> str:
    """Go sorts by the JSON-encoded manager identifier ({"manager":...,"operation":...})."""
    for e, _ in conflicts:
        if e.describe() == described:
            return json.dumps({"manager": e.manager, "operation": e.operation})
    return described


def _finish(
    old_body: dict[str, Any],
    new_body: dict[str, Any],
    old_managers: dict[tuple[str, str, str, str], _Entry],
    managers: dict[tuple[str, str, str, str], _Entry],
    live: dict[str, Any] | None,
) -> dict[str, Any]:
    """Attach managedFields; a write that changes nothing keeps the old entries and times."""
    out = copy.deepcopy(new_body)
    meta = out.setdefault("metadata", {})
    if live is not None and _json_same(old_body, new_body) and _sets_equal(old_managers, managers):
        previous = (live.get("metadata") or {}).get("managedFields")
        if previous is not None:
            meta["managedFields"] = copy.deepcopy(previous)
        return out
    encoded = _encode(_cap_updaters(managers))
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)
    return out


# ==================================================================== non-apply writes


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    node: SchemaLike,
    api_version: str,
    now: str,
    subresource: str | None = None,
) -> None:
    """A create/update/patch by ``manager``: it takes the fields it set or changed.

    Mutates ``new["metadata"]["managedFields"]``. Other managers lose those fields
    (never a conflict) and whatever was removed; entries left empty disappear. On
    create the comparison is against the empty object of the kind, as the apiserver
    does, so only the containers a typed empty object lacks get a ``.`` member.
    A client that sends ``managedFields: [{}]`` strips them (no entries at all); an
    empty list is ignored so clients unaware of the field never wipe it.
    """
    meta = new.setdefault("metadata", {})
    sent = meta.get("managedFields")
    if _is_reset(sent):
        meta.pop("managedFields", None)
        return
    live_entries = ((old or {}).get("metadata") or {}).get("managedFields")
    # the client's entries count (it may rewrite them) unless empty or on a subresource
    source = sent if isinstance(sent, list) and sent and not subresource else live_entries
    live_managers = _decode(live_entries)
    managers = _decode(source)

    old_body = _body(old) if old is not None else _empty_object(node)
    new_body = _body(new)
    cmp = _compare(old_body, new_body, node)
    changed = _reset_filter(_strip(cmp.modified | cmp.added), subresource)
    removed = _reset_filter(_strip(cmp.removed), subresource)

    for e in managers.values():
        e.paths = e.paths - changed - removed
    ident = (manager, "Update", api_version, subresource or "")
    if changed:
        e = managers.get(ident)
        if e is None:
            e = _Entry(manager, "Update", api_version, now, subresource or "", set())
            managers[ident] = e
        e.paths |= changed
        e.time = now
    managers = {k: e for k, e in managers.items() if e.paths}
    result = _finish(old_body, new_body, live_managers, managers, old)
    if "managedFields" in result["metadata"]:
        meta["managedFields"] = result["metadata"]["managedFields"]
    else:
        meta.pop("managedFields", None)


def _is_reset(sent: Any) -> bool:
    """``[{}]``: the documented way to strip managedFields with a non-apply write."""
    return isinstance(sent, list) and len(sent) == 1 and sent[0] == {}


_NON_POINTER_STRUCTS = frozenset({"metadata", "spec", "status", "template", "strategy", "updateStrategy"})


def _empty_object(node: SchemaLike) -> dict[str, Any]:
    """What ``runtime.DefaultUnstructuredConverter`` makes of a new empty typed object.

    Non-pointer structs are serialised as ``{}`` and required (non-omitempty) slices
    as null, so a create does not "add" them. The schemas do not say which fields are
    Go pointers; required fields and the usual value-typed structs (metadata, spec,
    status, template, strategy) are taken as present. Custom resources start empty.
    """
    if getattr(node, "crd", False) or getattr(node, "preserve_unknown", False):
        return {}
    out = _skeleton(node, 0)
    return out if isinstance(out, dict) else {}


def _skeleton(node: SchemaLike, depth: int) -> Any:
    props = getattr(node, "properties", None)
    if not isinstance(props, dict) or not props or depth > 6:
        return {}
    required = set(getattr(node, "required", ()) or ())
    out: dict[str, Any] = {}
    for name in props:
        sub = node.field(name)
        if name not in required and name not in _NON_POINTER_STRUCTS:
            continue
        if sub.type == "object":
            out[name] = _skeleton(sub, depth + 1)
        elif sub.type == "array":
            out[name] = []
    return out
