"""local/motoddb.py: moto's DynamoDB responses without the member-by-member walk of each item.
The shortcut's JSON is byte for byte what moto's own serializer writes, for items of every
attribute type, and items of every type come back from a real (in-process) moto server as
they were written."""

from __future__ import annotations

import base64
from collections.abc import Iterator
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
