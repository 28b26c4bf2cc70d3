"""Schema access shared by patch.py and ssa.py, and the FieldsV1 path-set algebra.

Why a separate module: strategic merge patch and server-side apply both walk an
object alongside its schema (``schema.SchemaNode``). They only need a handful of
attributes of a node, so they code against the ``SchemaLike`` protocol below and
never import schema.py (which would tie them to how schemas are loaded).

A FieldsV1 set is kept in its wire shape: a nested dict whose keys are
``f:<field>``, ``k:<json of keys>``, ``v:<json>`` or ``.``; a leaf is ``{}``.
Keeping the wire shape means no conversion when writing managedFields, and the
set operations below are simple recursive dict walks.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeAlias

FieldSet: TypeAlias = dict[str, Any]
"""A FieldsV1 set in its wire shape (``{"f:spec": {"f:replicas": {}}}``)."""


class SchemaLike(Protocol):
    """What patch/ssa read from a ``schema.SchemaNode`` (see docs/kubesim-design.md)."""

    @property
    def known(self) -> bool: ...

    @property
    def type(self) -> str | None: ...

    @property
    def list_type(self) -> str | None: ...

    @property
    def list_map_keys(self) -> tuple[str, ...]: ...

    @property
    def patch_strategy(self) -> str | None: ...

    @property
    def patch_merge_key(self) -> str | None: ...

    @property
    def map_type(self) -> str | None: ...

    @property
    def items(self) -> SchemaLike: ...

    @property
    def values(self) -> SchemaLike: ...

    def field(self, name: str) -> SchemaLike: ...


def child(node: SchemaLike, name: str) -> SchemaLike:
    """Schema of ``obj[name]``: a declared property, else the map's value schema.

    Why the fallback: ``labels``/``data``/CRD ``additionalProperties`` maps have no
    declared properties, only a value schema; callers should not care which.
    """
    declared = node.field(name)
    if declared.known:
        return declared
    values = node.values
    return values if values.known else declared


def is_granular_map(node: SchemaLike) -> bool:
    """True when a map's keys are owned one by one (the default for SSA)."""
    return node.map_type != "atomic"


def list_kind(node: SchemaLike) -> str:
    """SSA list semantics: "map", "set" or "atomic" (no list-type means atomic)."""
    lt = node.list_type
    if lt == "map" and node.list_map_keys:
        return "map"
    if lt == "set":
        return "set"
    return "atomic"


# ---------------------------------------------------------------- path elements


# Defaults of list-map key fields. structured-merge-diff fills a key field the item
# omits with the schema default, so ``{containerPort: 80}`` is the item
# ``k:{"containerPort":80,"protocol":"TCP"}`` (the schemas in kubernetes-validate carry
# no defaults; every defaulted key field in the built-in APIs is a protocol).
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}


def key_values(item: dict[str, Any], keys: tuple[str, ...], item_node: SchemaLike | None = None) -> dict[str, Any]:
    """The key fields of a list-map item, defaults filled in, sorted by name."""
    out: dict[str, Any] = {}
    for k in sorted(keys):
        if k in item and item[k] is not None:
            out[k] = item[k]
        elif k in KEY_DEFAULTS and (item_node is None or item_node.field(k).known):
            out[k] = KEY_DEFAULTS[k]
    return out


def key_element(item: dict[str, Any], keys: tuple[str, ...], item_node: SchemaLike | None = None) -> str:
    """``k:{"name":"web"}`` for a list-map item.

    Why sorted keys: structured-merge-diff serialises the key set as a JSON object
    whose fields are sorted by name (``k:{"containerPort":80,"protocol":"TCP"}``).
    """
    present = key_values(item, keys, item_node)
    return "k:" + json.dumps(present, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def value_element(value: Any) -> str:
    """``v:"foo"`` for a set item (its JSON encoding)."""
    return "v:" + json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def field_element(name: str) -> str:
    return "f:" + name


# ---------------------------------------------------------------- set algebra

Path: TypeAlias = tuple[str, ...]
"""One member of a field set: path elements from the root (``("f:spec", "f:replicas")``)."""


def to_paths(wire: FieldSet, prefix: Path = ()) -> set[Path]:
    """Members of a wire-shaped set.

    Why normalise: on the wire a member with children is marked by a ``"."`` child
    and a member without children is a ``{}`` leaf; as plain path tuples the set
    operations are just Python set operations.
    """
    out: set[Path] = set()
    for k, v in wire.items():
        if k == ".":
            if prefix:
                out.add(prefix)
            continue
        p = (*prefix, k)
        if not v:
            out.add(p)
        else:
            out |= to_paths(v, p)
    return out


def to_wire(members: set[Path]) -> FieldSet:
    """The wire shape of a member set, canonical as the server writes it.

    ``.`` first, then field names, keys, values, indexes (structured-merge-diff's
    PathElement order), each group sorted.
    """
    trie: dict[str, Any] = {}
    marks: set[Path] = set()
    for p in members:
        cur = trie
        for el in p:
            cur = cur.setdefault(el, {})
        marks.add(p)
    return _emit(trie, (), marks)


def _emit(trie: dict[str, Any], prefix: Path, marks: set[Path]) -> FieldSet:
    out: FieldSet = {}
    for k in sorted(trie, key=_element_order):
        p = (*prefix, k)
        sub = trie[k]
        if not sub:
            out[k] = {}
            continue
        body: FieldSet = {}
        if p in marks:
            body["."] = {}
        body.update(_emit(sub, p, marks))
        out[k] = body
    return out


def _element_order(el: str) -> tuple[int, str]:
    return ({"f": 0, "k": 1, "v": 2, "i": 3}.get(el[:1], 4), el)


def union(a: FieldSet, b: FieldSet) -> FieldSet:
    return to_wire(to_paths(a) | to_paths(b))


def difference(a: FieldSet, b: FieldSet) -> FieldSet:
    return to_wire(to_paths(a) - to_paths(b))


def intersection(a: FieldSet, b: FieldSet) -> FieldSet:
    return to_wire(to_paths(a) & to_paths(b))


def render_path(p: tuple[str, ...]) -> str:
    """Human path as in conflict messages: ``.spec.replicas``,
    ``.spec.template.spec.containers[name="web"].image``, ``.metadata.finalizers[="x"]``.
    """
    out = ""
    for el in p:
        if el == ".":
            continue
        if el.startswith("f:"):
            out += "." + el[2:]
        elif el.startswith("k:"):
            keys = json.loads(el[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in keys.items()) + "]"
        elif el.startswith("v:"):
            out += "[=" + el[2:] + "]"
        elif el.startswith("i:"):
            out += "[" + el[2:] + "]"
        else:
            out += "." + el
    return out
