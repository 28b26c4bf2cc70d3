"""local/motoddb.py: moto's DynamoDB responses without the member-by-member walk of each item.
The shortcut's JSON is byte for byte what moto's own serializer writes, for items of every
attribute type, and items of every type come back from a real (in-process) moto server as
they were written."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from local import motoddb
from local.aws import MotoServer, client

ITEM: dict[str, Any] = {
    "pk": {"S": "APP#a"}, "sk": {"S": "SPEC"}, "empty": {"S": ""}, "n": {"N": "12.50"},
    "yes": {"BOOL": True}, "no": {"BOOL": False}, "nothing": {"NULL": True},
    "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]},
    "m": {"M": {"inner": {"S": "x"}, "deeper": {"M": {"l": {"L": [{"N": "1"}, {"S": "two"}, {"M": {}}]}}}}},
    "l": {"L": [{"BOOL": True}, {"L": []}, {"SS": ["z"]}]},
}


def _serialize(cls: type, operation: str, result: dict[str, Any]) -> str:
    from moto.core.serialize import XFormedAttributePicker
    from moto.core.utils import get_service_model

    model = get_service_model("dynamodb").operation_model(operation)
    return str(cls(operation_model=model, pretty_print=False, value_picker=XFormedAttributePicker(
        response_transformers=None)).serialize(result)["body"])


@pytest.mark.parametrize("operation,result", [
    ("Query", {"Count": 2, "ScannedCount": 2, "Items": [ITEM, {"pk": {"S": "APP#b"}, "sk": {"S": "STATUS"}}],
               "LastEvaluatedKey": {"pk": {"S": "APP#b"}, "sk": {"S": "STATUS"}}}),
    ("GetItem", {"Item": ITEM}),
    ("BatchGetItem", {"Responses": {"t": [ITEM]}, "UnprocessedKeys": {}}),
    # binary attributes are left to moto's walk (it base64-encodes them)
    ("GetItem", {"Item": {**ITEM, "b": {"B": "aGk="}, "bs": {"BS": ["aGk="]}, "mb": {"M": {"b": {"B": "aGk="}}}}}),
])
def test_the_shortcut_writes_what_motos_walk_writes(operation: str, result: dict[str, Any]) -> None:
    from moto.core.serialize import JSONSerializer

    assert _serialize(motoddb.serializer_class(), operation, result) == _serialize(JSONSerializer, operation, result)


def test_values_the_shortcut_leaves_to_the_walk() -> None:
    assert motoddb.wire_value({"B": "aGk="}) is None
    assert motoddb.wire_value({"M": {"x": {"BS": []}}}) is None
    assert motoddb.wire_value({"S": "a", "N": "1"}) is None  # not one member
    assert motoddb.wire_value({"Q": "?"}) is None
    assert motoddb.wire_value({"L": [{"S": "a"}]}) == {"L": [{"S": "a"}]}


@pytest.fixture(scope="module")
def ddb() -> Iterator[Any]:
    with MotoServer() as moto:
        ddb = client("dynamodb", moto.endpoint)
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}])
        yield ddb


def test_items_of_every_type_come_back_as_written(ddb: Any) -> None:
    from moto.core.serialize import get_serializer_class

    assert get_serializer_class("dynamodb", "json").__name__ == "DynamoDBJSONSerializer"
    item = {**ITEM, "b": {"B": b"\x00\xffbinary"}, "bs": {"BS": [b"x", b"y"]}, "mb": {"M": {"b": {"B": b"z"}}}}
    ddb.put_item(TableName="t", Item=item)
    got = ddb.get_item(TableName="t", Key={"pk": {"S": "APP#a"}, "sk": {"S": "SPEC"}})["Item"]
    sets = {"ss", "ns", "bs"}  # sets come back in any order
    assert {k: v for k, v in got.items() if k not in sets} == {k: v for k, v in item.items() if k not in sets}
    assert {k: sorted(next(iter(got[k].values()))) for k in sets} == \
        {k: sorted(next(iter(item[k].values()))) for k in sets}
    page = ddb.query(TableName="t", KeyConditionExpression="pk = :p",
                     ExpressionAttributeValues={":p": {"S": "APP#a"}})
    assert page["Count"] == 1 and page["Items"][0]["m"] == item["m"]
    assert base64.b64encode(got["b"]["B"]) == base64.b64encode(item["b"]["B"])


def test_all_items_keeps_motos_order(ddb: Any) -> None:
    """Numbers sort as numbers (9 before 10), strings as strings, hash key first; a Query of a
    number range key pages through them in that order."""
    import random

    from moto.dynamodb.models import dynamodb_backends

    from local.aws import ACCOUNT_ID, REGION

    ddb.create_table(TableName="order", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "h", "AttributeType": "S"},
                                           {"AttributeName": "r", "AttributeType": "N"}],
                     KeySchema=[{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}])
    keys = [(h, r) for h in ("b", "a", "B", "a0") for r in (10, 9, -1, 2.5, 100, 0)]
    random.Random(7).shuffle(keys)
    for h, r in keys:
        ddb.put_item(TableName="order", Item={"h": {"S": h}, "r": {"N": str(r)}})
    table = dynamodb_backends[ACCOUNT_ID][REGION].get_table("order")
    assert motoddb.original_all_items is not None

    def order(items: list[Any]) -> list[tuple[str, str]]:
        return [(i.hash_key.value, i.range_key.value) for i in items]

    assert order(motoddb.all_items(table)) == order(motoddb.original_all_items(table))
    assert order(table.all_items())[:6] == [("B", v) for v in ("-1", "0", "2.5", "9", "10", "100")]
    got, start = [], None
    while True:
        page = ddb.query(TableName="order", KeyConditionExpression="h = :h", Limit=4,
                         ExpressionAttributeValues={":h": {"S": "a"}}, **({"ExclusiveStartKey": start} if start else {}))
        got += [it["r"]["N"] for it in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert got == ["-1", "0", "2.5", "9", "10", "100"]


@contextmanager
def _moto_as_shipped() -> Iterator[None]:
    """moto's own ``Table.all_items`` and ``Table.sorted_items`` (no kept orders, no plain-value
    sort) while the block runs: what an unpatched moto answers."""
    from moto.dynamodb.models.table import Table

    patched = Table.all_items, Table.sorted_items
    Table.all_items, Table.sorted_items = motoddb.original_all_items, motoddb.original_sorted_items
    try:
        yield
    finally:
        Table.all_items, Table.sorted_items = patched


def _pages(ddb: Any, **query: Any) -> list[dict[str, Any]]:
    """Every page of ``query`` (each as it came back, less the request's metadata)."""
    pages, start = [], None
    while True:
        page = ddb.query(**query, **({"ExclusiveStartKey": start} if start else {}))
        page.pop("ResponseMetadata", None)
        pages.append(page)
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages


def _fill(ddb: Any, table: str) -> str:
    """A table shaped like the StateTable (pk / sk, GSI byType on type / name): apps' SPEC and
    STATUS items, repositories, and an item of the app type without a name."""
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "type", "name")],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                     GlobalSecondaryIndexes=[{"IndexName": "byType", "Projection": {"ProjectionType": "ALL"},
                                              "KeySchema": [{"AttributeName": "type", "KeyType": "HASH"},
                                                            {"AttributeName": "name", "KeyType": "RANGE"}]}])
    import random

    names = [f"app-{n:03d}" for n in range(120)]
    random.Random(3).shuffle(names)
    for n, name in enumerate(names):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"APP#{name}"}, "sk": {"S": "SPEC"}, "type": {"S": "app"},
                                              "name": {"S": name}, "version": {"N": str(n % 7)}})
        ddb.put_item(TableName=table, Item={"pk": {"S": f"APP#{name}"}, "sk": {"S": "STATUS"},
                                            "statusDoc": {"S": "{}"}})
    for n in range(15):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"REPO#r{n}"}, "sk": {"S": "META"}, "type": {"S": "repo"},
                                            "name": {"S": f"r{n % 5}"}})  # a GSI range key shared by three
    ddb.put_item(TableName=table, Item={"pk": {"S": "X#1"}, "sk": {"S": "META"}, "type": {"S": "app"}})
    return table


@pytest.fixture(scope="module")
def fleet_table(ddb: Any) -> str:
    return _fill(ddb, "state")


QUERIES: list[dict[str, Any]] = [
    {"IndexName": "byType", "KeyConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": "type"},
     "ExpressionAttributeValues": {":t": {"S": "app"}}, "Limit": 25},
    {"IndexName": "byType", "KeyConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": "type"},
     "ExpressionAttributeValues": {":t": {"S": "app"}}, "Limit": 17, "ScanIndexForward": False},
    {"IndexName": "byType", "KeyConditionExpression": "#t = :t AND #n > :n",
     "ExpressionAttributeNames": {"#t": "type", "#n": "name"},
     "ExpressionAttributeValues": {":t": {"S": "app"}, ":n": {"S": "app-050"}, ":v": {"N": "3"}},
     "FilterExpression": "version < :v", "Limit": 10},
    {"IndexName": "byType", "KeyConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": "type", "#n": "name"},
     "ExpressionAttributeValues": {":t": {"S": "repo"}}, "Limit": 4, "ProjectionExpression": "pk, #n"},
    {"IndexName": "byType", "KeyConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": "type"},
     "ExpressionAttributeValues": {":t": {"S": "repo"}}, "Limit": 2, "ScanIndexForward": False},
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "APP#app-007"}}, "Limit": 1},
    {"KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
     "ExpressionAttributeValues": {":p": {"S": "APP#app-007"}, ":s": {"S": "S"}}, "ScanIndexForward": False},
]


@pytest.mark.parametrize("query", QUERIES, ids=range(len(QUERIES)))
def test_kept_orders_page_as_moto_does(ddb: Any, fleet_table: str, query: dict[str, Any]) -> None:
    """Every page (items, counts, LastEvaluatedKey) is moto's own, read twice (the second from
    the kept orders)."""
    with _moto_as_shipped():
        expected = _pages(ddb, TableName=fleet_table, **query)
    assert len(expected) > 1 or "IndexName" not in query  # the GSI queries do page
    assert _pages(ddb, TableName=fleet_table, **query) == expected
    assert _pages(ddb, TableName=fleet_table, **query) == expected


def test_writes_between_pages_are_seen(ddb: Any) -> None:
    """A put, an update of the index's range key, a delete and a batch write between pages
    change the next pages as they change moto's own (each write ends the kept orders): the same
    pages and writes on two tables filled alike, one read with moto's own sorts."""
    def pages_with_writes(table: str) -> list[dict[str, Any]]:
        def key(name: str) -> dict[str, Any]:
            return {"pk": {"S": f"APP#{name}"}, "sk": {"S": "SPEC"}}

        writes = [
            lambda: ddb.put_item(TableName=table, Item={**key("app-zz"), "type": {"S": "app"}, "name": {"S": "app-0a"}}),
            lambda: ddb.batch_write_item(RequestItems={table: [
                {"PutRequest": {"Item": {**key("app-a"), "type": {"S": "app"}, "name": {"S": "app-a"}}}},
                {"DeleteRequest": {"Key": key("app-110")}}]}),
            lambda: ddb.update_item(TableName=table, Key=key("app-100"), UpdateExpression="SET #n = :n",
                                    ExpressionAttributeNames={"#n": "name"},
                                    ExpressionAttributeValues={":n": {"S": "app-000a"}}),
            lambda: ddb.delete_item(TableName=table, Key=key("app-zz")),
        ]
        query = {"TableName": table, "IndexName": "byType", "KeyConditionExpression": "#t = :t",
                 "ExpressionAttributeNames": {"#t": "type"}, "ExpressionAttributeValues": {":t": {"S": "app"}},
                 "Limit": 30}
        _pages(ddb, **query)  # the orders are kept from here on
        pages, start = [], None
        while True:
            page = ddb.query(**query, **({"ExclusiveStartKey": start} if start else {}))
            page.pop("ResponseMetadata", None)
            pages.append(page)
            if writes:
                writes.pop(0)()
            start = page.get("LastEvaluatedKey")
            if not start:
                return pages

    got = pages_with_writes(_fill(ddb, "writes-kept"))
    with _moto_as_shipped():
        expected = pages_with_writes(_fill(ddb, "writes-moto"))
    assert got == expected
    names = [it["name"]["S"] for p in got for it in p["Items"]]
    # put after page 1, batch (put, delete) after page 2, the range key moved behind the cursor after page 3
    assert "app-0a" in names and "app-a" in names and "app-110" not in names
    assert "app-100" not in names and "app-000a" not in names


def test_kept_orders_end_with_each_write(ddb: Any, fleet_table: str) -> None:
    """A read keeps the generation; every write, failed or not, moves it on."""
    g0 = motoddb._generation
    ddb.query(TableName=fleet_table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "X#1"}})
    ddb.get_item(TableName=fleet_table, Key={"pk": {"S": "X#1"}, "sk": {"S": "META"}})
    ddb.scan(TableName=fleet_table, Limit=3)
    assert motoddb._generation == g0
    ddb.put_item(TableName=fleet_table, Item={"pk": {"S": "X#1"}, "sk": {"S": "META"}, "type": {"S": "app"}})
    assert motoddb._generation == g0 + 1
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=fleet_table, Item={"pk": {"S": "X#1"}, "sk": {"S": "META"}},
                     ConditionExpression="attribute_not_exists(pk)")
    assert motoddb._generation == g0 + 2


@pytest.mark.parametrize("projection", [
    [["pk"], ["statusDoc"], ["refreshRequested"], ["syncRequested"]],
    [["statusDoc"], ["pk"], ["statusDoc"], ["absent"]],  # order, a name twice, a name not there
    [["empty"]], [["yes"], ["no"]],
    [["n"]], [["nothing"]], [["ss"]], [["m"]], [["l"]], [["b"]],  # other types: moto's own
    [["m", "inner"]], [["m", "deeper", "l[1]"]], [["l[0]"]], [["pk"], ["m", "inner"]],  # paths: moto's own
    [],
])
def test_projection_is_motos(projection: list[list[str]]) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    attrs = {**ITEM, "statusDoc": {"S": '{"sync": {}}'}, "refreshRequested": {"BOOL": True},
             "syncRequested": {"BOOL": False}, "b": {"B": "aGk="}}
    item = Item(DynamoType(attrs["pk"]), DynamoType(attrs["sk"]), attrs)
    motoddb.install()  # what a MotoServer does (it keeps moto's own project)
    got, expected = motoddb.project(item, projection), motoddb.original_project(item, projection)
    assert list(got.attrs) == list(expected.attrs)
    assert got.to_json() == expected.to_json() and got == expected
    assert got.hash_key is expected.hash_key and got.range_key is expected.range_key
