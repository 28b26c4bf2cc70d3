"""moto's DynamoDB responses, serialised at the cost of the JSON they are.

moto 5.2 turns every response into JSON by walking botocore's output shapes member by member,
trying each member's aliases on each value: an item of DynamoDB's wire format (``{"S": ...}``,
``{"M": {...}}``), which moto already holds as plain dicts, is walked attribute by attribute,
ten candidate members each. On the poll bench at 5,000 apps that walk was a third of the whole
process's CPU (py-spy, GIL held), more than moto's own Query, and the local stack runs moto
in-process, on the same cores as the handlers it serves.

:func:`install` registers, for DynamoDB's ``json`` protocol only, moto's own ``JSONSerializer``
with one shortcut: an ``AttributeValue`` that already is wire format of strings, numbers,
booleans, null, sets, maps and lists is emitted as the walk would have emitted it (strings as
``str``, the same nesting), without the walk. Anything else (a binary ``B`` / ``BS``, an
unexpected shape or key) goes through moto's walk unchanged, so the bytes on the wire are the
same JSON (``tests/local/test_motoddb.py`` compares the two).

It also gives ``Table.all_items`` (every Query and Scan starts from it: all items, sorted by
key) a sort key of the keys' plain values instead of moto's ``DynamoType`` objects, whose
comparisons re-derive each value at every step (the sort was 18 % of the bench's CPU). The
order is the same: a table's key attributes have one type each, and ``DynamoType`` compares
by that value (``__lt__`` is ``cast_value <``). The rest of moto's Query (a sort of every
item for every page) is unchanged.

Applied in this process's moto (``local.aws.MotoServer``), like ``local.motosts`` and
``local.motosqs``.
"""

from __future__ import annotations

import threading
from typing import Any

_installed = False
_lock = threading.Lock()
_SCALARS = ("S", "N")
_SETS = ("SS", "NS")
_FLAGS = ("BOOL", "NULL")


def wire_value(value: Any) -> Any:
    """``value`` as moto's walk of shape ``AttributeValue`` would serialise it, or None when
    only the walk can tell (binary, or not one wire-format member)."""
    if type(value) is not dict or len(value) != 1:
        return None
    ((key, inner),) = value.items()
    if inner is None:
        return None
    if key in _SCALARS:
        return {key: _string(inner)}
    if key in _FLAGS:
        return value
    if key in _SETS:
        if not isinstance(inner, list):
            return None
        return {key: [_string(v) for v in inner]}
    if key == "M":
        if type(inner) is not dict:
            return None
        out: dict[str, Any] = {}
        for k, v in inner.items():
            w = wire_value(v)
            if w is None:
                return None
            out[k] = w
        return {"M": out}
    if key == "L":
        if not isinstance(inner, list):
            return None
        items = []
        for v in inner:
            w = wire_value(v)
            if w is None:
                return None
            items.append(w)
        return {"L": items}
    return None  # B, BS, or a key the shape does not have


def _string(value: Any) -> Any:
    # what moto's JSON string serialiser does (Enums aside: none in item values)
    return str(value) if value not in (None, {}, []) else value


def serializer_class() -> type:
    from moto.core.serialize import JSONSerializer

    class DynamoDBJSONSerializer(JSONSerializer):  # type: ignore[misc]
        def _serialize_type_structure(self, serialized: Any, value: Any, shape: Any, key: str) -> None:
            if key and shape.name == "AttributeValue":
                wire = wire_value(value)
                if wire is not None:
                    self._default_serialize(serialized, wire, shape, key)
                    return
            super()._serialize_type_structure(serialized, value, shape, key)

    return DynamoDBJSONSerializer


def all_items(table: Any) -> list[Any]:
    """moto's ``Table.all_items``, sorted by the keys' values rather than their DynamoTypes."""
    items: list[Any] = []
    for hash_set in table.items.values():
        if table.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    return sorted(items, key=lambda x: (x.hash_key.cast_value, x.range_key.cast_value)
                  if x.range_key else x.hash_key.cast_value)


#: moto's own ``Table.all_items``, kept for the test that compares the two
original_all_items: Any = None


def install() -> None:
    """Register the DynamoDB serializer and the sort with moto (idempotent)."""
    global _installed, original_all_items
    with _lock:
        if _installed:
            return
        from moto.core import serialize
        from moto.dynamodb.models.table import Table

        serialize.SERVICE_SPECIFIC_SERIALIZERS.setdefault("dynamodb", {})["json"] = serializer_class()
        original_all_items = Table.all_items
        Table.all_items = all_items  # type: ignore[method-assign]
        _installed = True
