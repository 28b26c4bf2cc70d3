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
by that value (``__lt__`` is ``cast_value <``).

moto's Query still sorted the whole table for every page (``all_items``), then sorted the
matches again by the index's keys (``Table.sorted_items``): a poll tick at 5,000 apps lists
them in ten pages of 500 through GSI ``byType``, ten sorts of the 10,000 items and ten of the
5,000 matches, about 40 % of a steady tick's CPU; real DynamoDB reads a page from an index it
keeps. Both sorted orders are now kept until the next write: every ``DynamoDBBackend`` method
that is not a read (put, update, delete, batch write, transactions, PartiQL, table changes,
restores: all but ``get_*``, ``describe_*``, ``list_*``, ``query``, ``scan``,
``batch_get_item``, ``transact_get_items``) bumps a generation counter when it returns, and a
kept order is used only at the generation it was computed at. The sorts themselves are
moto's own (``sorted_items`` unchanged, ``all_items`` as above), so the orders, and the pages
built from them, are the ones moto computes; ``tests/local/test_motoddb.py`` compares pages
(ExclusiveStartKey, Limit, filters, a GSI, ScanIndexForward=False, writes between pages)
with and without the kept orders.

A ProjectionExpression (the poll reads 5,000 statuses a tick as four attributes each) made
moto turn the whole item into plain JSON once per projected name and serialise the result
back: :func:`project` takes plain top-level names of strings and booleans as they are (the
test compares it with moto's own for names, paths, list indexes and every type).

Applied in this process's moto (``local.aws.MotoServer``), like ``local.motosts`` and
``local.motosqs``.
"""

from __future__ import annotations

import threading
import types
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


#: moto's own ``Item.project``, what :func:`project` leaves anything but plain names of strings to
original_project: Any = None
_PLAIN = ("S", "BOOL")


def project(item: Any, projection_expressions: list[list[str]]) -> Any:
    """moto's ``Item.project`` for the common case: top-level attribute names only, each a
    string or a boolean where present. moto builds the whole item as plain JSON once per
    name, looks the name up in it and serialises the result back (``S`` / ``BOOL`` values come
    back as they were); this takes them as they are, in the same order. Anything else (a
    nested path, a list index, another type) is moto's own."""
    from moto.dynamodb.models.dynamo_type import Item

    attrs: dict[str, Any] = {}
    for expr in projection_expressions:
        if len(expr) != 1 or "[" in expr[0]:
            return original_project(item, projection_expressions)
        value = item.attrs.get(expr[0])
        if value is None:
            continue
        if value.type not in _PLAIN or type(value.value) is not (str if value.type == "S" else bool):
            return original_project(item, projection_expressions)
        attrs.setdefault(expr[0], {value.type: value.value})
    return Item(hash_key=item.hash_key, range_key=item.range_key, attrs=attrs)


#: moto's own ``Table.sorted_items``, what :func:`kept_sorted_items` computes a kept order with
original_sorted_items: Any = None

#: bumped when any DynamoDB backend method but a read returns (see :func:`_counting_writes`)
_generation = 0
#: ``DynamoDBBackend`` methods that change nothing (every other one counts as a write)
_READ_PREFIXES = ("get_", "describe_", "list_", "iter_")
_READS = frozenset({"query", "scan", "batch_get_item", "transact_get_items", "check_unicity"})
#: kept orders: table -> (generation, sorted items); (table, attrs, ids of the items) -> (generation, order)
_all_kept: dict[int, tuple[int, Any, list[Any]]] = {}
_sorted_kept: dict[tuple[Any, ...], tuple[int, list[Any]]] = {}
#: kept orders are used (off: every sort is computed, as moto does; for the tests that compare)
keep_orders = True


def kept_all_items(table: Any) -> list[Any]:
    """:func:`all_items`, computed once per generation for each table."""
    generation = _generation  # read before the sort: a write during it makes this entry stale
    if keep_orders:
        kept = _all_kept.get(id(table))
        if kept is not None and kept[0] == generation and kept[1] is table:
            return list(kept[2])
    items = all_items(table)
    if keep_orders:
        with _lock:
            for k in [k for k, kept in _all_kept.items() if kept[0] != generation]:
                _all_kept.pop(k, None)
            _all_kept[id(table)] = (generation, table, items)
        return list(items)
    return items


def kept_sorted_items(table: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None],
                      items: list[Any]) -> list[Any]:
    """moto's ``Table.sorted_items`` (sorts ``items`` in place and returns it), the order kept
    for the same table, key attributes and items until the next write."""
    generation = _generation
    if not keep_orders:
        return original_sorted_items(table, hash_key_attrs, range_key_attrs, items)  # type: ignore[no-any-return]
    # the kept order holds the items, so their ids stand for them while the entry lives
    key = (id(table), tuple(hash_key_attrs), tuple(range_key_attrs), tuple(map(id, items)))
    kept = _sorted_kept.get(key)
    if kept is not None and kept[0] == generation:
        items[:] = kept[1]
        return items
    order = list(original_sorted_items(table, hash_key_attrs, range_key_attrs, items))
    with _lock:
        for k in [k for k, kept in _sorted_kept.items() if kept[0] != generation]:
            _sorted_kept.pop(k, None)
        _sorted_kept[key] = (generation, order)
    return items


def _counting_writes(method: Any) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        global _generation
        try:
            return method(*args, **kwargs)
        finally:
            with _lock:
                _generation += 1

    counted.__wrapped__ = method  # type: ignore[attr-defined]
    counted.__name__ = method.__name__
    return counted


def _is_read(name: str) -> bool:
    return name in _READS or name.startswith(_READ_PREFIXES)


def install() -> None:
    """Register the DynamoDB serializer, the sort, the kept orders and the projection with moto
    (idempotent)."""
    global _installed, original_all_items, original_sorted_items, original_project
    with _lock:
        if _installed:
            return
        from moto.core import serialize
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.dynamo_type import Item
        from moto.dynamodb.models.table import Table

        serialize.SERVICE_SPECIFIC_SERIALIZERS.setdefault("dynamodb", {})["json"] = serializer_class()
        original_all_items = Table.all_items
        original_sorted_items = Table.sorted_items
        Table.all_items = kept_all_items  # type: ignore[method-assign]
        Table.sorted_items = kept_sorted_items  # type: ignore[method-assign]
        original_project = Item.project
        Item.project = project  # type: ignore[method-assign]
        for name, method in list(vars(DynamoDBBackend).items()):
            if isinstance(method, types.FunctionType) and not name.startswith("_") and not _is_read(name):
                setattr(DynamoDBBackend, name, _counting_writes(method))
        _installed = True
