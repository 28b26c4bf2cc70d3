"""Desired (Git) versus live (cluster): Synced or OutOfSync, and why.

The hard part of GitOps diffing is *not* reporting drift that is not there: the API server
adds defaults (a Deployment's ``strategy``, a container's ``terminationMessagePath``), metadata
(uid, resourceVersion, managedFields), ``status``, canonicalises quantities (``0.5`` ->
``500m``) and folds a Secret's ``stringData`` into ``data``. Argo CD's answer, and ours, is to
let the server compute what the object *would* become: a server-side apply dry-run
(``dryRun=All``, field manager ``gitferry``, force) of the desired object. Comparing that
prediction with the live object shows exactly what a sync would change, including the
three-way case (a field gitferry applied before and Git no longer sets is removed by the
prediction because SSA drops fields a manager stops applying).

When the dry-run is not possible (old server, no permission, webhook failures), a normalised
"desired is a subset of live" comparison plus a managedFields-based three-way check is used.

Secret values never leave this module in clear: ``ResourceDiff.diff``, ``.live`` and
``.target`` mask them the way Argo CD does (``++++++++``, a different length per distinct value
so a change stays visible).
"""

from __future__ import annotations

import base64
import copy
import difflib
import json
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

import yaml

from . import health as _health
from . import jqpath, tracking

if TYPE_CHECKING:  # kube.py needs the kubernetes client; the pure functions here do not
    from .kube import ClusterClient

SYNCED: Final = "Synced"
OUT_OF_SYNC: Final = "OutOfSync"
UNKNOWN: Final = "Unknown"

MASK: Final = "++++++++"

# metadata the server owns: never drift.
_SERVER_METADATA: Final = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# annotations written by tools or controllers, not by Git.
_SERVER_ANNOTATIONS: Final = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
)

# List fields merged by key (strategic-merge / SSA list-map keys of the built-in schemas).
_LIST_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "conditions": ("type",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
# fields whose values are resource quantities ("500m" == "0.5").
_QUANTITY_PARENTS: Final = {"limits", "requests", "capacity", "hard", "allocatable", "overhead"}

Segment = str | int | tuple[tuple[str, Any], ...]
Path = tuple[Segment, ...]


# ---- public dataclasses ---------------------------------------------------------------------


@dataclass
class ResourceDiff:
    """Comparison result of one resource. ``live`` / ``target`` are normalised and masked
    (safe to store); ``target`` is what the object would look like after a sync."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str
    status: str  # Synced | OutOfSync | Unknown
    requires_pruning: bool = False
    changed_paths: list[str] = field(default_factory=list)
    diff: str = ""
    live: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    health: _health.Health = field(default_factory=lambda: _health.Health(_health.HEALTHY))
    sync_wave: int = 0
    method: str = ""  # "offline" | "dry-run" | "subset" | "missing" | "extraneous"
    message: str = ""
    shared_with: str | None = None  # another app whose tracking annotation the live object carries


@dataclass
class Comparison:
    resources: list[ResourceDiff]
    sync_status: str  # Synced | OutOfSync | Unknown
    errors: list[str] = field(default_factory=list)

    @property
    def health(self) -> str:
        """App health = worst child (pruning candidates do not count, as in Argo CD)."""
        return _health.app_health(r.health for r in self.resources if not r.requires_pruning)

    def shared_resource_warnings(self, app_name: str) -> list[str]:
        """Argo CD's SharedResourceWarning messages: one per desired object that is live with
        another app's tracking annotation (the last app to sync it wins, silently otherwise)."""
        return [f"{r.kind}/{r.name} is part of applications {app_name} and {r.shared_with}"
                for r in self.resources if r.shared_with and not r.requires_pruning]


# ---- normalisation --------------------------------------------------------------------------


def normalise(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """The comparable part of an object: no status, no server-owned metadata, Secret
    ``stringData`` folded into base64 ``data``, and no empty maps/lists/nulls (the server adds
    ``resources: {}``, ``securityContext: {}``, ``"items": []`` ... which mean "unset")."""
    if obj is None:
        return {}
    # Only the containers changed below are copied here: _drop_empty rebuilds every dict and
    # list anyway, so the result shares nothing mutable with ``obj`` (a deep copy first would
    # copy each object twice, which was most of a 500-object diff's CPU time).
    out = dict(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta = out["metadata"] = dict(meta)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            meta["annotations"] = dict(annotations)
        for key in _SERVER_METADATA:
            meta.pop(key, None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            for key in _SERVER_ANNOTATIONS:
                annotations.pop(key, None)
    if out.get("kind") == "Secret" and tracking.group_of(out) == "":
        string_data = out.pop("stringData", None) or {}
        if string_data:
            data = dict(out.get("data") or {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            out["data"] = data
    return _drop_empty(out)


def _drop_empty(value: Any) -> Any:
    """Copy of ``value`` without empty maps/lists/nulls in maps (new containers all the way
    down; scalars are immutable and shared)."""
    if isinstance(value, dict):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    if type(value) in (str, int, float, bool):
        return value
    return copy.deepcopy(value)


# ---- paths ----------------------------------------------------------------------------------

_PLAIN_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_path(path: Path) -> str:
    """``spec.template.spec.containers[name=web].env[name=A]``, ``metadata.labels["a.b/c"]``."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif isinstance(seg, tuple):
            out += "[" + ",".join(f"{k}={v}" for k, v in seg) + "]"
        elif _PLAIN_KEY.match(seg):
            out += f".{seg}" if out else seg
        else:
            out += f"[{json.dumps(seg)}]"
    return out


def _list_keys(name: Segment | None, items: list[Any]) -> tuple[str, ...] | None:
    """Merge keys of a list of objects: the schema's keys when known, else ``name`` when every
    item has a distinct one; None = treat the list as atomic (compare by index)."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if isinstance(name, str) and name in _LIST_KEYS:
        keys = _LIST_KEYS[name]
        if all(any(k in i for k in keys) for i in items):
            return keys
    if isinstance(name, str) and name == "ports":
        for keys in (("containerPort", "protocol"), ("port", "protocol")):
            if all(keys[0] in i for i in items):
                return keys
    names = [i.get("name") for i in items]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return ("name",)
    return None


def _item_key(item: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    # Default protocol TCP so a port without protocol matches its defaulted live twin.
    out = []
    for k in keys:
        if k in item:
            # a malformed key (a list or map where a name belongs) still compares, by its JSON
            value = item[k] if isinstance(item[k], str | int | float | bool | None) else json.dumps(item[k], sort_keys=True)
            out.append((k, value))
        elif k == "protocol":
            out.append((k, "TCP"))
    return tuple(out)


def changed_paths(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[str]:
    """Paths where the normalised objects ``a`` and ``b`` differ, exactly (both sides come from
    the server in the dry-run comparison, so no leniency is wanted)."""
    out: list[Path] = []
    _walk_exact(normalise(a), normalise(b), (), out)
    return [format_path(p) for p in out]


def _walk_exact(a: Any, b: Any, path: Path, out: list[Path]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(path + (key,))
            else:
                _walk_exact(a[key], b[key], path + (key,), out)
        return
    if isinstance(a, list) and isinstance(b, list):
        name = path[-1] if path else None
        keys = _list_keys(name, a + b)
        if keys is not None:
            ia = {_item_key(i, keys): i for i in a}
            ib = {_item_key(i, keys): i for i in b}
            if len(ia) == len(a) and len(ib) == len(b):
                for k in list(ia) + [k for k in ib if k not in ia]:
                    if k not in ia or k not in ib:
                        out.append(path + (k,))
                    else:
                        _walk_exact(ia[k], ib[k], path + (k,), out)
                return
        if len(a) != len(b):
            out.append(path)
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk_exact(x, y, path + (i,), out)
        return
    if a != b:
        out.append(path)


def _parse_quantity(value: Any) -> Decimal | None:
    suffixes = {
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
        "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
        "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    }
    text = str(value).strip()
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return Decimal(text[: -len(suffix)]) * Decimal(suffixes[suffix])
            except InvalidOperation:
                return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _scalar_equal(desired: Any, live: Any, path: Path) -> bool:
    """Lenient equality for user input against server output: int-or-string (``"8080"`` vs
    ``8080``) and quantities under resource maps (``0.5`` vs ``500m``, ``1024Mi`` vs ``1Gi``)."""
    if desired == live:
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    if isinstance(desired, (int, float, str)) and isinstance(live, (int, float, str)):
        if str(desired) == str(live):
            return True
        if len(path) >= 2 and path[-2] in _QUANTITY_PARENTS:
            qa, qb = _parse_quantity(desired), _parse_quantity(live)
            return qa is not None and qa == qb
    return False


def subset_changed_paths(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[str]:
    """Paths the desired object sets whose live value differs (fields the server added live are
    ignored). The fallback when a dry-run apply is unavailable."""
    out: list[Path] = []
    _walk_subset(normalise(desired), normalise(live), (), out)
    return [format_path(p) for p in out]


def _walk_subset(d: Any, live: Any, path: Path, out: list[Path]) -> None:
    if isinstance(d, dict):
        if not isinstance(live, dict):
            out.append(path)
            return
        for key in sorted(d):
            if key not in live:
                out.append(path + (key,))
            else:
                _walk_subset(d[key], live[key], path + (key,), out)
        return
    if isinstance(d, list):
        if not isinstance(live, list):
            out.append(path)
            return
        name = path[-1] if path else None
        keys = _list_keys(name, d)
        index = {_item_key(i, keys): i for i in live} if keys is not None and all(
            isinstance(i, dict) for i in live) else None
        if index is not None and len(index) == len(live):  # duplicate keys: compare by position
            for item in d:
                k = _item_key(item, keys)
                if k not in index:
                    out.append(path + (k,))
                else:
                    _walk_subset(item, index[k], path + (k,), out)
            return
        if len(d) != len(live):
            out.append(path)
            return
        for i, (x, y) in enumerate(zip(d, live, strict=True)):
            _walk_subset(x, y, path + (i,), out)
        return
    if not _scalar_equal(d, live, path):
        out.append(path)


# ---- three-way: fields gitferry applied before and Git dropped ------------------------------


def owned_paths(fields_v1: Mapping[str, Any], prefix: Path = ()) -> list[Path]:
    """Leaf paths of a managedFields ``fieldsV1`` set (``f:`` fields, ``k:{..}`` keyed list
    items, ``v:`` set values; ``.`` marks the element itself)."""
    out: list[Path] = []
    for raw, child in fields_v1.items():
        if raw == ".":
            out.append(prefix)
            continue
        if raw.startswith("f:"):
            seg: Segment = raw[2:]
        elif raw.startswith("k:"):
            try:
                seg = tuple(sorted(json.loads(raw[2:]).items()))
            except ValueError:
                continue
        elif raw.startswith("v:"):
            try:
                seg = (("__value__", json.dumps(json.loads(raw[2:]), sort_keys=True)),)
            except ValueError:
                continue
        elif raw.startswith("i:"):
            seg = int(raw[2:])
        else:
            continue
        if not child:
            out.append(prefix + (seg,))
        else:
            out.extend(owned_paths(child, prefix + (seg,)))
    return out


def _step(value: Any, seg: Segment) -> tuple[bool, Any]:
    if isinstance(seg, str):
        if isinstance(value, dict) and seg in value:
            return True, value[seg]
        return False, None
    if isinstance(seg, int):
        if isinstance(value, list) and 0 <= seg < len(value):
            return True, value[seg]
        if isinstance(value, dict) and str(seg) in value:  # a JSON pointer's "/80" on a map key
            return True, value[str(seg)]
        return False, None
    if not isinstance(value, list):
        return False, None
    pairs = dict(seg)
    if "__value__" in pairs:
        for item in value:
            if json.dumps(item, sort_keys=True) == pairs["__value__"]:
                return True, item
        return False, None
    for item in value:
        if not isinstance(item, dict):
            continue
        present = [k for k in pairs if k in item]
        if present and all(item[k] == pairs[k] for k in present) and all(
            k in item or (k == "protocol" and pairs[k] == "TCP") for k in pairs
        ):
            return True, item
    return False, None


def _exists(obj: Any, path: Path) -> bool:
    value = obj
    for seg in path:
        ok, value = _step(value, seg)
        if not ok:
            return False
    return True


def three_way_paths(desired: Mapping[str, Any], live: Mapping[str, Any], manager: str = "gitferry") -> list[str]:
    """Fields ``manager`` applied (managedFields, operation Apply), still live, and no longer in
    desired: a sync would remove them, so they are drift. Reports the outermost such field."""
    return [format_path(p) for p in _three_way(desired, live, manager)]


def _three_way(desired: Mapping[str, Any], live: Mapping[str, Any], manager: str = "gitferry") -> list[Path]:
    d, lv = normalise(desired), normalise(live)
    found: list[Path] = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply" or entry.get("subresource"):
            continue
        for path in owned_paths(entry.get("fieldsV1") or {}):
            if not path or path[0] in ("status", "apiVersion", "kind"):
                continue
            for cut in range(1, len(path) + 1):
                head = path[:cut]
                if not _exists(d, head):
                    if _exists(lv, head) and head not in found:
                        found.append(head)
                    break
    return found


# ---- offline first: Synced without a request when gitferry's own fields say so --------------

# metadata the field manager never records (the apiserver's stripMetaManager): present in a
# desired object they make the offline answer doubtful, except the object's own name.
_UNRECORDED_META: Final = frozenset({"uid", "resourceVersion", "generation", "managedFields", "selfLink",
                                     "deletionTimestamp", "deletionGracePeriodSeconds", "clusterName", "generateName"})
_BINARY_SUFFIXES: Final = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_ABSENT: Final = object()


class _Doubt(Exception):
    """The offline comparison cannot be sure: ask the server (dry run)."""


def offline_synced(desired: Mapping[str, Any], live: Mapping[str, Any] | None, manager: str = "gitferry") -> bool:
    """Whether a server-side apply of ``desired`` by ``manager`` would certainly leave ``live``
    as it is, decided from ``live``'s managedFields without asking the server.

    True only when ``manager``'s Apply entry (one, at the desired apiVersion) owns exactly the
    fields ``desired`` sets (so the apply removes nothing and takes nothing over) and every one
    of them has the desired value live: equal JSON values, or resource quantities of the same
    number and notation (``0.5`` / ``500m``, ``1024Mi`` / ``1Gi``), keyed list items matched
    by the keys the server recorded (``protocol`` defaulting to TCP), a Secret's ``stringData``
    compared with its base64 ``data``. Anything else (a value the server defaulted or changed,
    ``8080`` against ``"8080"``, a field another manager took over, an empty field gitferry does
    not own, an object being deleted) is a doubt, answered False: the caller then dry-runs.
    """
    if live is None or live.get("apiVersion") != desired.get("apiVersion") or live.get("kind") != desired.get("kind"):
        return False
    meta = live.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("deletionTimestamp"):
        return False
    entries = [e for e in meta.get("managedFields") or [] if isinstance(e, Mapping) and e.get("manager") == manager
               and e.get("operation") == "Apply" and not e.get("subresource")]
    if len(entries) != 1 or entries[0].get("apiVersion") != desired.get("apiVersion"):
        return False
    fields = entries[0].get("fieldsV1")
    if entries[0].get("fieldsType", "FieldsV1") != "FieldsV1" or not isinstance(fields, Mapping):
        return False
    try:
        _offline_object(desired, live, fields)
    except _Doubt:
        return False
    return True


def _offline_object(desired: Mapping[str, Any], live: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    body = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")}
    if "status" in body:  # the main resource resets status: what the server keeps is its own business
        raise _Doubt
    meta = body.get("metadata")
    if not isinstance(meta, Mapping):
        raise _Doubt
    meta = {k: v for k, v in meta.items() if k not in ("name", "namespace")}
    if meta.get("creationTimestamp", 0) is None:  # kubectl-generated manifests carry it; never recorded
        del meta["creationTimestamp"]
    if any(k in _UNRECORDED_META or k == "creationTimestamp" for k in meta):
        raise _Doubt
    body["metadata"] = meta
    fields = dict(fields)
    if not meta and "f:metadata" not in fields:
        del body["metadata"]
    if _is_secret(desired) and "stringData" in body:
        _offline_string_data(body.pop("stringData"), body.get("data"), live.get("data"), fields.pop("f:stringData", None))
    _offline_map(body, live, fields, ())


def _offline_string_data(string_data: Any, data: Any, live_data: Any, node: Any) -> None:
    """The apiserver folds ``stringData`` into ``data`` (base64) but the field manager records
    ``stringData``'s keys: compare the encoded values with the live ``data``."""
    if not isinstance(string_data, Mapping) or not isinstance(node, Mapping) or not isinstance(live_data, Mapping):
        raise _Doubt
    if {k for k in node if k != "."} != {f"f:{k}" for k in string_data} or any(node[f"f:{k}"] for k in string_data):
        raise _Doubt
    for key, value in string_data.items():
        if not isinstance(value, str) or (isinstance(data, Mapping) and key in data):
            raise _Doubt
        if live_data.get(key) != base64.b64encode(value.encode()).decode():
            raise _Doubt


def _offline_map(d: Mapping[str, Any], live: Any, node: Mapping[str, Any], path: Path) -> None:
    if not isinstance(live, Mapping):
        raise _Doubt
    owned = {k for k in node if k != "."}
    wanted: set[str] = set()
    for key, value in d.items():
        name = f"f:{key}"
        if value == [] and name not in node:  # an empty granular list owns nothing: absent or empty live is the same
            if live.get(key, []) != []:
                raise _Doubt
            continue
        if name not in node:
            raise _Doubt
        wanted.add(name)
        _offline_value(value, live.get(key, _ABSENT), node[name], path + (key,))
    if wanted != owned:  # a field gitferry applied before and Git dropped: the apply removes it
        raise _Doubt


def _offline_value(value: Any, live: Any, node: Any, path: Path) -> None:
    if not isinstance(node, Mapping):
        raise _Doubt
    children = {k for k in node if k != "."}
    if value is None:  # an explicit null removes the field
        if live is not _ABSENT or children:
            raise _Doubt
        return
    if live is _ABSENT:
        raise _Doubt
    if isinstance(value, Mapping):
        if children:
            _offline_map(value, live, node, path)
        elif not isinstance(live, Mapping) or not _json_same(value, live):  # an atomic (or empty) map
            raise _Doubt
        return
    if isinstance(value, list):
        if not isinstance(live, list):
            raise _Doubt
        if not children:  # an atomic list
            if not _json_same(value, live):
                raise _Doubt
        elif all(k.startswith("k:") for k in children):
            _offline_keyed_list(value, live, node, children, path)
        elif all(k.startswith("v:") for k in children):
            _offline_set_list(value, live, children)
        else:
            raise _Doubt
        return
    if children or not _offline_scalar(value, live, path):
        raise _Doubt


def _offline_keyed_list(items: list[Any], live: list[Any], node: Mapping[str, Any], children: set[str],
                        path: Path) -> None:
    keys: dict[str, dict[str, Any]] = {}
    for raw in children:
        try:
            key = json.loads(raw[2:])
        except ValueError:
            raise _Doubt from None
        if not isinstance(key, dict) or not key:
            raise _Doubt
        keys[raw] = key
    if len(items) != len(keys):
        raise _Doubt
    used: set[str] = set()
    for item in items:
        if not isinstance(item, Mapping):
            raise _Doubt
        matches = [raw for raw, key in keys.items() if all(
            _json_same(item[f], v) if f in item else (f == "protocol" and v == "TCP") for f, v in key.items())]
        if len(matches) != 1 or matches[0] in used:
            raise _Doubt
        used.add(matches[0])
        key = keys[matches[0]]
        twins = [i for i in live if isinstance(i, Mapping) and all(_json_same(i.get(f, _ABSENT), v) for f, v in key.items())]
        if len(twins) != 1:
            raise _Doubt
        _offline_map(item, twins[0], node[matches[0]], path + (tuple(sorted(key.items())),))


def _offline_set_list(items: list[Any], live: list[Any], children: set[str]) -> None:
    owned = {json.dumps(json.loads(raw[2:]), sort_keys=True) for raw in children}
    wanted = [json.dumps(i, sort_keys=True) for i in items]
    present = {json.dumps(i, sort_keys=True) for i in live}
    if len(set(wanted)) != len(wanted) or set(wanted) != owned or not owned <= present:
        raise _Doubt


def _json_same(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``True`` is not ``1`` and ``1`` is not ``1.0`` (the server would
    change the one into the other), maps and lists compared all the way down."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _offline_scalar(value: Any, live: Any, path: Path) -> bool:
    if _json_same(value, live):
        return True
    # resource quantities: the server stores the canonical form of the same number, in the same
    # notation (binary suffixes stay binary: "1024Mi" is stored "1Gi", "0.5" is "500m")
    if len(path) < 2 or path[-2] not in _QUANTITY_PARENTS or isinstance(value, bool) or not isinstance(live, str):
        return False
    if not isinstance(value, (int, float, str)) or "e" in str(value).lower() or "e" in live.lower():
        return False
    a, b = _parse_quantity(value), _parse_quantity(live)
    binary = str(value).endswith(_BINARY_SUFFIXES)
    return a is not None and a == b and binary == live.endswith(_BINARY_SUFFIXES)


def _offline_result(desired: Mapping[str, Any], live: Mapping[str, Any]) -> ResourceDiff:
    live_n = normalise(live)
    masked_live, masked_target = mask_secrets(live_n, live_n)
    return _result(desired, SYNCED, live=masked_live, target=masked_target, health=_health.resource_health(live),
                   method="offline")


# ---- masking --------------------------------------------------------------------------------


def _is_secret(obj: Mapping[str, Any] | None) -> bool:
    return bool(obj) and obj.get("kind") == "Secret" and tracking.group_of(obj) == ""  # type: ignore[union-attr]


def mask_secrets(*objs: Mapping[str, Any] | None) -> list[dict[str, Any] | None]:
    """Copies with Secret values replaced by pluses, Argo CD style: each distinct value gets its
    own mask length (8, 9, 10 ... pluses) across all the given objects, so "changed" and
    "unchanged" stay visible without revealing anything. Non-Secrets are returned as copies."""
    masks: dict[str, str] = {}

    def mask(value: Any) -> str:
        key = json.dumps(value, sort_keys=True)
        if key not in masks:
            masks[key] = "+" * (8 + len(masks))
        return masks[key]

    out: list[dict[str, Any] | None] = []
    for obj in objs:
        if obj is None:
            out.append(None)
            continue
        copy_ = tracking._copy_json(dict(obj))
        if _is_secret(copy_):
            for section in ("data", "stringData"):
                values = copy_.get(section)
                if isinstance(values, dict):
                    copy_[section] = {k: mask(values[k]) for k in sorted(values)}
            annotations = (copy_.get("metadata") or {}).get("annotations")
            if isinstance(annotations, dict) and "kubectl.kubernetes.io/last-applied-configuration" in annotations:
                annotations["kubectl.kubernetes.io/last-applied-configuration"] = MASK
        out.append(copy_)
    return out


def scrub(message: str, *objs: Mapping[str, Any] | None) -> str:
    """Remove Secret values (as given, base64 and decoded) from a text such as an API error
    message: the API server quotes invalid values back, and Argo CD leaked secrets that way."""
    values: set[str] = set()
    for obj in objs:
        if not _is_secret(obj):
            continue
        for section in ("data", "stringData"):
            for value in ((obj or {}).get(section) or {}).values():
                text = str(value)
                values.add(text)
                if section == "data":
                    try:
                        values.add(base64.b64decode(text, validate=True).decode())
                    except (ValueError, UnicodeDecodeError):
                        pass
                else:
                    values.add(base64.b64encode(text.encode()).decode())
    for value in sorted((v for v in values if len(v) >= 3), key=len, reverse=True):
        message = message.replace(value, MASK)
    return message


def diff_text(live: Mapping[str, Any] | None, target: Mapping[str, Any] | None, label: str = "") -> str:
    """Unified diff of the masked YAML of two objects (already normalised by the caller)."""
    masked_live, masked_target = mask_secrets(live, target)
    a = yaml.safe_dump(masked_live, sort_keys=True).splitlines(keepends=True) if masked_live else []
    b = yaml.safe_dump(masked_target, sort_keys=True).splitlines(keepends=True) if masked_target else []
    return "".join(difflib.unified_diff(a, b, fromfile=f"live/{label}", tofile=f"target/{label}"))


# ---- ignoreDifferences -----------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    """One ``spec.ignoreDifferences[]`` entry; ``index`` is its position there (for messages)."""

    kind: str
    group: str = ""
    name: str | None = None
    namespace: str | None = None
    json_pointers: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    index: int | None = None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        group, kind, namespace, name = tracking.resource_key(obj)
        return (
            self.kind in (kind, "*")
            and self.group in (group, "*")
            and (not self.name or self.name == name)
            and (not self.namespace or self.namespace == namespace)
        )

    @property
    def field(self) -> str:
        return f"spec.ignoreDifferences[{self.index}]" if self.index is not None else "spec.ignoreDifferences[]"


@dataclass(frozen=True)
class IgnoreFailure:
    """A jq expression of an ignore rule that could not be evaluated on an object: the rule was
    not applied to it. ``limit``: a time/memory limit or a compile error (always reported);
    otherwise jq failed on this object's data (reported when the object differs)."""

    field: str  # spec.ignoreDifferences[0].jqPathExpressions[1]
    expression: str
    reason: str
    resource: str
    limit: bool

    def __str__(self) -> str:
        return f"{self.field} {json.dumps(self.expression)}: {self.reason} on {self.resource}; the rule was not applied"


def ignore_rules(items: Iterable[Any] | None) -> list[IgnoreRule]:
    """Rules from Argo CD JSON (camelCase dicts) or from objects with snake_case attributes
    (the Application model), so callers need no mapping code."""
    out: list[IgnoreRule] = []
    for index, item in enumerate(items or []):
        def get(camel: str, snake: str, default: Any = None, _item: Any = item) -> Any:
            if isinstance(_item, Mapping):
                return _item.get(camel, _item.get(snake, default))
            return getattr(_item, snake, default)

        out.append(IgnoreRule(
            kind=str(get("kind", "kind", "")), group=str(get("group", "group", "") or ""),
            name=get("name", "name"), namespace=get("namespace", "namespace"),
            json_pointers=tuple(get("jsonPointers", "json_pointers", ()) or ()),
            managed_fields_managers=tuple(get("managedFieldsManagers", "managed_fields_managers", ()) or ()),
            jq_path_expressions=tuple(get("jqPathExpressions", "jq_path_expressions", ()) or ()),
            index=index,
        ))
    return out


def _pointer_path(pointer: str) -> Path:
    if not pointer.startswith("/"):
        return ()
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _remove(obj: Any, path: Path) -> None:
    """Delete the value at ``path`` (str keys, int indexes, keyed list items) if present."""
    if not path:
        return
    parent = obj
    for seg in path[:-1]:
        ok, parent = _step(parent, seg)
        if not ok:
            return
    last = path[-1]
    if isinstance(last, str) and isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(last, int) and isinstance(parent, list):
        if 0 <= last < len(parent):
            parent.pop(last)
    elif isinstance(last, int) and isinstance(parent, dict):
        parent.pop(str(last), None)
    elif isinstance(last, tuple) and isinstance(parent, list):
        ok, item = _step(parent, last)
        if ok:
            parent.remove(item)


def _managed_paths(live_raw: Mapping[str, Any] | None, managers: tuple[str, ...]) -> list[Path]:
    """Fields the listed managers own in ``live_raw``'s managedFields, as Argo CD reads them:
    every entry of a listed manager counts, whatever its operation or subresource (``kubectl
    scale`` and the HPA write ``spec.replicas`` through the ``scale`` subresource)."""
    out: list[Path] = []
    if not managers or not live_raw:
        return out
    for entry in (live_raw.get("metadata") or {}).get("managedFields") or []:
        if isinstance(entry, Mapping) and entry.get("manager") in managers:
            out.extend(p for p in owned_paths(entry.get("fieldsV1") or {}) if p and p[0] not in ("apiVersion", "kind"))
    return out


def _deletion_order(paths: Iterable[Path]) -> list[Path]:
    """Deepest and highest index first, as jq's ``delpaths``: removing ``[2]`` before ``[0]``
    keeps the remaining indexes valid."""
    def key(path: Path) -> tuple[tuple[int, Any], ...]:
        return tuple((0, s) if isinstance(s, int) else (1, s) if isinstance(s, str) else (2, repr(s)) for s in path)
    unique = {p: None for p in paths}
    return sorted(unique, key=key, reverse=True)


def _select(
    values: list[dict[str, Any]], rules: Iterable[IgnoreRule], live_raw: Mapping[str, Any] | None,
    jq: jqpath.JqRunner | None,
) -> tuple[list[list[Path]], list[IgnoreFailure]]:
    """Paths the rules select in each of ``values`` (the same object seen two ways: live and
    target). jq expressions are evaluated on each value; json pointers and managedFields
    paths are the same for all."""
    selected: list[list[Path]] = [[] for _ in values]
    failures: list[IgnoreFailure] = []
    if not values:
        return selected, failures
    subject = values[0]
    matching = [r for r in rules if r.matches(subject)]
    if not matching:
        return selected, failures
    own_runner = jq is None and any(r.jq_path_expressions for r in matching)
    runner = jqpath.JqRunner() if own_runner else jq
    secret = _is_secret(subject)
    try:
        for rule in matching:
            common = [_pointer_path(p) for p in rule.json_pointers]
            common += _managed_paths(live_raw, rule.managed_fields_managers)
            for paths in selected:
                paths.extend(p for p in common if p)
            for j, expression in enumerate(rule.jq_path_expressions):
                assert runner is not None
                for paths, result in zip(selected, runner.select(expression, values), strict=True):
                    if result.error is not None:
                        reason = result.error
                        if result.from_data and secret:  # jq quotes values in its errors
                            reason = "jq failed on this Secret (details withheld: they may quote its data)"
                        failure = IgnoreFailure(f"{rule.field}.jqPathExpressions[{j}]", expression, reason,
                                                _label(subject), limit=not result.from_data)
                        if failure not in failures:
                            failures.append(failure)
                        continue
                    for path in result.paths:
                        if all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in path):
                            paths.append(tuple(path))
                        else:
                            failure = IgnoreFailure(f"{rule.field}.jqPathExpressions[{j}]", expression,
                                                    "selects a slice, which cannot be ignored", _label(subject),
                                                    limit=True)
                            if failure not in failures:
                                failures.append(failure)
    finally:
        if own_runner and runner is not None:
            runner.close()
    return [_deletion_order(p) for p in selected], failures


def ignored_paths(
    obj: Mapping[str, Any], rules: Iterable[IgnoreRule], *, live: Mapping[str, Any] | None = None,
    jq: jqpath.JqRunner | None = None,
) -> tuple[list[Path], list[IgnoreFailure]]:
    """Every concrete path of ``obj`` that the matching ``rules`` select: their ``jsonPointers``,
    their ``jqPathExpressions`` evaluated on ``obj`` (bounded in time and memory, see
    :mod:`gitferry.jqpath`), and the fields their ``managedFieldsManagers`` own in ``live``'s
    managedFields (``live`` defaults to ``obj``). Paths are tuples of keys and indexes (keyed
    list items from managedFields), ordered for deletion one by one (:func:`_remove`); a jq
    expression that could not be evaluated is returned as an :class:`IgnoreFailure` instead.
    Pass ``jq`` to share one worker process across many objects."""
    selected, failures = _select([dict(obj)], rules, live if live is not None else obj, jq)
    return selected[0], failures


def _apply(
    live_n: dict[str, Any], target: dict[str, Any], live_raw: Mapping[str, Any], rules: Iterable[IgnoreRule],
    jq: jqpath.JqRunner | None,
) -> list[IgnoreFailure]:
    (live_paths, target_paths), failures = _select([live_n, target], rules, live_raw, jq)
    for path in live_paths:
        _remove(live_n, path)
    for path in target_paths:
        _remove(target, path)
    return failures


def apply_ignores(
    live_n: dict[str, Any], target: dict[str, Any], live_raw: Mapping[str, Any], rules: Iterable[IgnoreRule],
    *, jq: jqpath.JqRunner | None = None,
) -> list[str]:
    """Remove ignored fields from both (normalised) sides in place (jq expressions are evaluated
    on each side, as Argo CD normalises each); returns messages about rules that could not be
    honoured on this object."""
    return [str(f) for f in _apply(live_n, target, live_raw, rules, jq)]


def _with_failures(result: ResourceDiff, failures: list[IgnoreFailure]) -> tuple[ResourceDiff, list[IgnoreFailure]]:
    """An object whose ignore rule could not be evaluated is Unknown when it differs (the
    difference may be what the rule ignores); in sync it stays Synced (ignoring more cannot
    add a difference). Returns the failures worth reporting."""
    if not failures:
        return result, []
    if result.status == OUT_OF_SYNC:
        result.status = UNKNOWN
        result.message = "; ".join(([result.message] if result.message else []) + [str(f) for f in failures])
        return result, failures
    return result, [f for f in failures if f.limit]


# ---- the comparison -------------------------------------------------------------------------


def _split_api_version(api_version: str) -> tuple[str, str]:
    return (api_version.split("/", 1)[0], api_version.split("/", 1)[1]) if "/" in api_version else ("", api_version)


def _label(obj: Mapping[str, Any]) -> str:
    group, kind, namespace, name = tracking.resource_key(obj)
    return f"{group + '/' if group else ''}{kind}/{namespace + '/' if namespace else ''}{name}"


def _result(obj: Mapping[str, Any], status: str, **kwargs: Any) -> ResourceDiff:
    group, kind, namespace, name = tracking.resource_key(obj)
    version = _split_api_version(str(obj.get("apiVersion", "")))[1]
    return ResourceDiff(group=group, version=version, kind=kind, namespace=namespace, name=name, status=status,
                        sync_wave=tracking.sync_wave(obj), **kwargs)


def compare_one_offline(desired: Mapping[str, Any], live: Mapping[str, Any] | None,
                        ignore: Iterable[IgnoreRule] = (), *, jq: jqpath.JqRunner | None = None) -> ResourceDiff:
    """Pure comparison of one desired object with its live twin, without a server: normalised
    subset check plus the managedFields three-way check. Used when dry-run is unavailable."""
    return _compare_offline(desired, live, ignore, jq)[0]


def _compare_offline(desired: Mapping[str, Any], live: Mapping[str, Any] | None, ignore: Iterable[IgnoreRule],
                     jq: jqpath.JqRunner | None) -> tuple[ResourceDiff, list[IgnoreFailure]]:
    if live is None:
        target = normalise(desired)
        masked_target = mask_secrets(target)[0]
        return _result(desired, OUT_OF_SYNC, target=masked_target, diff=diff_text(None, target, _label(desired)),
                       health=_health.missing(), method="missing", message="resource is missing"), []
    live_n = normalise(live)
    desired_n = normalise(desired)
    failures = _apply(live_n, desired_n, live, ignore, jq)
    paths = [format_path(p) for p in _subset(desired_n, live_n)]
    for path in _three_way(desired, live):
        text = format_path(path)
        if text not in paths and _exists(live_n, path):  # an ignored field is gone from live_n
            paths.append(text)
    target = _overlay(live_n, desired_n)
    masked_live, masked_target = mask_secrets(live_n, target)
    return _with_failures(_result(
        desired, OUT_OF_SYNC if paths else SYNCED, changed_paths=paths,
        diff=diff_text(live_n, target, _label(desired)) if paths else "",
        live=masked_live, target=masked_target, health=_health.resource_health(live), method="subset",
    ), failures)


def _subset(desired_n: Any, live_n: Any) -> list[Path]:
    out: list[Path] = []
    _walk_subset(desired_n, live_n, (), out)
    return out


def _overlay(live: Any, desired: Any, name: Segment | None = None) -> Any:
    """Desired merged onto live (keyed lists merged by key), for a readable fallback diff."""
    if isinstance(live, dict) and isinstance(desired, dict):
        out = dict(live)
        for k, v in desired.items():
            out[k] = _overlay(live.get(k), v, k) if k in live else copy.deepcopy(v)
        return out
    if isinstance(live, list) and isinstance(desired, list):
        keys = _list_keys(name, desired)
        if keys is not None and all(isinstance(i, dict) for i in live):
            index = {_item_key(i, keys): i for i in live}
            return [_overlay(index[_item_key(i, keys)], i) if _item_key(i, keys) in index else i for i in desired]
    return copy.deepcopy(desired)


def compare_one(cluster: ClusterClient, desired: Mapping[str, Any], live: Mapping[str, Any] | None,
                ignore: Iterable[IgnoreRule] = (), *, jq: jqpath.JqRunner | None = None) -> ResourceDiff:
    """Compare one prepared desired object with the live one via a server-side dry-run apply;
    fall back to :func:`compare_one_offline` when the server cannot dry-run it."""
    return _compare_one(cluster, desired, live, ignore, jq)[0]


def _compare_one(cluster: ClusterClient, desired: Mapping[str, Any], live: Mapping[str, Any] | None,
                 ignore: Iterable[IgnoreRule], jq: jqpath.JqRunner | None) -> tuple[ResourceDiff, list[IgnoreFailure]]:
    from .kube import KubeError  # local import: keeps the pure helpers importable without a client

    label = _label(desired)
    api_version = str(desired.get("apiVersion", ""))
    kind = str(desired.get("kind", ""))
    meta = desired.get("metadata") or {}
    if live is not None and live.get("apiVersion") != api_version:
        try:  # read it at the version Git uses, so both sides have the same shape
            live = cluster.get(api_version, kind, str(meta.get("name")), meta.get("namespace")) or live
        except KubeError:
            pass
    rules = [r for r in ignore if r.matches(desired)]
    if live is None:
        return _compare_offline(desired, None, (), jq)
    try:
        predicted = cluster.server_side_apply(desired, dry_run=True)
    except KubeError as exc:
        result, failures = _compare_offline(desired, live, rules, jq)
        note = scrub(f"server-side dry-run failed, compared offline: {exc}", desired, live)
        result.message = f"{note}; {result.message}" if result.message else note
        if exc.code in (400, 422) and result.status == SYNCED:  # the apply itself would fail: never Synced
            result.status = OUT_OF_SYNC
        return result, failures
    live_n, target = normalise(live), normalise(predicted)
    failures = _apply(live_n, target, live, rules, jq)
    out: list[Path] = []
    _walk_exact(live_n, target, (), out)
    paths = [format_path(p) for p in out]
    masked_live, masked_target = mask_secrets(live_n, target)
    return _with_failures(_result(
        desired, OUT_OF_SYNC if paths else SYNCED, changed_paths=paths,
        diff=diff_text(live_n, target, label) if paths else "",
        live=masked_live, target=masked_target, health=_health.resource_health(live), method="dry-run",
    ), failures)


def extraneous(app_name: str, desired: Iterable[Mapping[str, Any]], live: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Live objects this app owns (tracking annotation names them) that Git no longer has.
    Hooks and copies carrying another object's annotation are excluded."""
    wanted = {tracking.resource_key(o) for o in desired}
    return [
        dict(o) for o in live
        if tracking.is_owned(app_name, o) and not tracking.is_hook(o) and tracking.resource_key(o) not in wanted
    ]


def compare(
    cluster: ClusterClient,
    app_name: str,
    desired: list[Mapping[str, Any]],
    live: list[Mapping[str, Any]],
    *,
    namespace: str | None = None,
    workers: int = 8,
    ignore_differences: Iterable[Any] | None = None,
    offline_first: bool = True,
) -> Comparison:
    """Compare an app's rendered manifests with the cluster.

    ``desired``: rendered manifests (namespace defaulting and stamping are applied here again,
    idempotently, with ``namespace`` = the destination namespace). ``live``: the objects
    listed by the app label (:meth:`ClusterClient.list_by_label`). ``ignore_differences``:
    ``spec.ignoreDifferences`` entries (dicts or model objects; jsonPointers,
    jqPathExpressions and managedFieldsManagers are honoured; a jq expression that cannot be
    evaluated is reported in ``errors`` naming the rule, and an object it fails on that differs
    is Unknown). A desired object live with another app's tracking annotation gets
    ``shared_with`` (see :meth:`Comparison.shared_resource_warnings`). Per-object dry-runs run on a
    small thread pool: an app of 2,000 objects must not take 2,000 sequential round trips.

    ``offline_first`` (the default): an object :func:`offline_synced` proves unchanged from its
    live managedFields is Synced without a request (``method="offline"``); only the others, and
    objects an ignore rule matches, are dry-run. False: every object is dry-run.
    """
    from .kube import KubeError

    def namespaced(api_version: str, kind: str) -> bool | None:
        try:
            return cluster.is_namespaced(api_version, kind)
        except KubeError:
            return None

    prepared = [o for o in tracking.prepare_desired(app_name, desired, namespace, namespaced) if not tracking.is_hook(o)]
    live_index: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
    for obj in live:
        live_index[tracking.resource_key(obj)] = obj
    errors: list[str] = []
    failures: list[IgnoreFailure] = []
    rules = ignore_rules(ignore_differences)

    def one(obj: dict[str, Any]) -> ResourceDiff:
        found = live_index.get(tracking.resource_key(obj))
        try:
            if found is None:  # maybe it exists without our label (created by hand, adopted now)
                meta = obj.get("metadata") or {}
                try:
                    found = cluster.get(str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name")),
                                        meta.get("namespace"))
                except KubeError as exc:
                    if exc.code != 404:  # 404 = kind not served yet (its CRD comes with this sync)
                        raise
            if (offline_first and found is not None and not any(r.matches(obj) for r in rules)
                    and offline_synced(obj, found)):
                result = _offline_result(obj, found)
                result.shared_with = shared_with(app_name, found)
                return result
            result, failed = _compare_one(cluster, obj, found, rules, jq)
            failures.extend(failed)
            result.shared_with = shared_with(app_name, found)
            return result
        except KubeError as exc:
            message = scrub(str(exc), obj)
            errors.append(message)
            return _result(obj, UNKNOWN, health=_health.Health(_health.UNKNOWN, message), message=message)

    with jqpath.JqRunner() as jq, ThreadPoolExecutor(max_workers=max(1, workers),
                                                     thread_name_prefix="gitferry-diff") as pool:
        results = list(pool.map(one, prepared))
    errors.extend(_failure_messages(failures))
    for obj in extraneous(app_name, prepared, live):
        live_n = normalise(obj)
        results.append(_result(
            obj, OUT_OF_SYNC, requires_pruning=True, live=mask_secrets(live_n)[0],
            diff=diff_text(live_n, None, _label(obj)), health=_health.resource_health(obj),
            method="extraneous",
            message="ignored (extraneous)" if "IgnoreExtraneous" in tracking.compare_options(obj) else "requires pruning",
        ))
    return Comparison(resources=results, sync_status=sync_status(results), errors=errors)


def shared_with(app_name: str, live: Mapping[str, Any] | None) -> str | None:
    """The other app whose tracking annotation the live object carries (naming this very
    object: a copied annotation is not a claim), or None when it is free or ours."""
    if live is None:
        return None
    owner = tracking.owner_app(live)
    return owner if owner is not None and owner != app_name else None


def _failure_messages(failures: Iterable[IgnoreFailure], shown: int = 3) -> list[str]:
    """One message per failing expression and reason, naming the first objects it failed on."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for f in failures:
        names = grouped.setdefault((f.field, f.expression, f.reason), [])
        if f.resource not in names:
            names.append(f.resource)
    out = []
    for (field_, expression, reason), names in grouped.items():
        where = ", ".join(sorted(names)[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
        out.append(f"{field_} {json.dumps(expression)}: {reason} on {where}; the rule was not applied")
    return out


def sync_status(resources: Iterable[ResourceDiff]) -> str:
    """OutOfSync when any resource is (an extraneous object marked ``IgnoreExtraneous`` does not
    count, as in Argo CD); Unknown when a resource could not be compared and nothing is known
    to be out of sync."""
    status = SYNCED
    for r in resources:
        if r.status == OUT_OF_SYNC and not (r.requires_pruning and r.message == "ignored (extraneous)"):
            return OUT_OF_SYNC
        if r.status == UNKNOWN:
            status = UNKNOWN
    return status


def resources_by_key(resources: Iterable[ResourceDiff]) -> dict[tuple[str, str, str, str], ResourceDiff]:
    return {(r.group, r.kind, r.namespace, r.name): r for r in resources}


__all__ = [
    "Comparison",
    "IgnoreFailure",
    "IgnoreRule",
    "apply_ignores",
    "ignore_rules",
    "ignored_paths",
    "shared_with",
    "ResourceDiff",
    "changed_paths",
    "compare",
    "compare_one",
    "compare_one_offline",
    "diff_text",
    "extraneous",
    "format_path",
    "mask_secrets",
    "normalise",
    "offline_synced",
    "owned_paths",
    "scrub",
    "subset_changed_paths",
    "sync_status",
    "three_way_paths",
]
