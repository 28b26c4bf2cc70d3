"""GET /api/v1/applications at 5,000 apps: gitferry's list against raw DynamoDB reads of the same items.

Run by ``make bench`` only (marker ``bench``). One moto server (in-process, real HTTP), the single
table of docs/engine-design.md, 5,000 apps written as the state store writes them (SPEC items
with labels, STATUS items with a resource list each, which a list must not read). Rows:

* first page (500) unfiltered: ``Service.list_apps`` vs one GSI query (Limit 501) plus the
  BatchGetItems of the page's statuses without their lists: the least any answer can read;
* a label-selector page (1 app in 10 matches): vs a raw scan of the whole index (the filter
  has to look at every spec) plus the page's statuses;
* a sync-status page (1 in 3 OutOfSync): vs the raw index scan plus every status.

Prints wall times and ratios; asserts the answers (order, sizes, cursors), never timings.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from gitferry.service import Service
from gitferry.state import StateStore
from moto.server import ThreadedMotoServer

pytestmark = pytest.mark.bench
N_APPS, PAGE = 5000, 500
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


@pytest.fixture(scope="module")
def ddb() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}", region_name=REGION,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    finally:
        server.stop()


def _manifest(n: int) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": f"app-{n:05d}", "namespace": "argocd",
                         "labels": {"team": f"team-{n % 10}", "tier": ("web", "api", "db")[n % 3]}},
            "spec": {"project": "default",
                     "source": {"repoURL": f"https://git.example.com/org/svc-{n % 50}.git", "path": f"deploy/{n}",
                                "targetRevision": "HEAD"},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": f"ns-{n % 40}"},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                                    "syncOptions": ["CreateNamespace=true"]}}}


def _status(n: int) -> dict[str, Any]:
    return {"sync": {"status": "OutOfSync" if n % 3 == 0 else "Synced", "revision": uuid.uuid4().hex * 1},
            "health": {"status": "Healthy"}, "reconciledAt": "2026-12-02T10:00:00Z",
            "conditions": [], "operationState": {"phase": "Succeeded", "message": "successfully synced"}}


def _resources(n: int) -> list[dict[str, Any]]:
    return [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": f"ns-{n % 40}", "name": f"d-{i}",
             "status": "Synced", "health": {"status": "Healthy"}} for i in range(40)]


@pytest.fixture(scope="module")
def state(ddb: Any) -> StateStore:
    table = f"bench-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "type", "name")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": "byType", "Projection": {"ProjectionType": "ALL"}, "KeySchema": [
            {"AttributeName": "type", "KeyType": "HASH"}, {"AttributeName": "name", "KeyType": "RANGE"}]}])
    items: list[dict[str, Any]] = []
    for n in range(N_APPS):
        name = f"app-{n:05d}"
        items.append({"pk": {"S": f"APP#{name}"}, "sk": {"S": "SPEC"}, "type": {"S": "app"}, "name": {"S": name},
                      "spec": {"S": json.dumps(_manifest(n))}, "version": {"N": "1"}, "updatedAt": {"N": "0"}})
        items.append({"pk": {"S": f"APP#{name}"}, "sk": {"S": "STATUS"}, "statusDoc": {"S": json.dumps(_status(n))},
                      "resources": {"S": json.dumps(_resources(n))}, "opPhase": {"S": "Succeeded"}})
    started = time.monotonic()
    for i in range(0, len(items), 25):
        pending = {table: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    print(f"\nwrote {N_APPS} apps (spec + status) in {time.monotonic() - started:.1f} s")
    return StateStore(table, client=ddb)


def _best(fn: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _raw_statuses(state: StateStore, names: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(names), 100):
        keys = [{"pk": {"S": f"APP#{n}"}, "sk": {"S": "STATUS"}} for n in names[i:i + 100]]
        pending: dict[str, Any] = {state.table_name: {"Keys": keys, "ProjectionExpression": "pk, statusDoc"}}
        while pending:
            resp = state.client.batch_get_item(RequestItems=pending)
            out += resp["Responses"][state.table_name]
            pending = resp.get("UnprocessedKeys") or {}
    return out


def _raw_index(state: StateStore, limit: int | None) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"TableName": state.table_name, "IndexName": "byType",
                              "KeyConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": "type"},
                              "ExpressionAttributeValues": {":t": {"S": "app"}}}
    items: list[dict[str, Any]] = []
    while True:
        resp = state.client.query(**kwargs, **({"Limit": limit} if limit else {}))
        items += resp["Items"]
        if limit or "LastEvaluatedKey" not in resp:
            return items
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def test_list_5000_apps_first_page_vs_raw_dynamodb(state: StateStore) -> None:
    service = Service(SimpleNamespace(state=state, secrets=None))  # list_apps reads the state store only

    def raw_first_page() -> int:
        items = _raw_index(state, PAGE + 1)
        return len(_raw_statuses(state, [it["name"]["S"] for it in items[:PAGE]]))

    def raw_scan_then(names_of: Callable[[list[dict[str, Any]]], list[str]]) -> int:
        return len(_raw_statuses(state, names_of(_raw_index(state, None))))

    rows: list[tuple[str, float, float]] = []
    t_ours, page = _best(lambda: service.list_apps({"limit": str(PAGE)}))
    t_raw, count = _best(raw_first_page)
    assert count == PAGE and [i["metadata"]["name"] for i in page["items"]] == [f"app-{n:05d}" for n in range(PAGE)]
    assert page["nextCursor"] and all("resources" not in i["status"] for i in page["items"])
    rows.append(("first page, no filter", t_ours, t_raw))

    t_ours, second = _best(lambda: service.list_apps({"limit": str(PAGE), "cursor": page["nextCursor"]}))
    assert second["items"][0]["metadata"]["name"] == f"app-{PAGE:05d}"
    rows.append(("second page, no filter", t_ours, t_raw))

    t_ours, labelled = _best(lambda: service.list_apps({"limit": str(PAGE), "selector": "team=team-3"}))
    t_raw, _ = _best(lambda: raw_scan_then(lambda items: [it["name"]["S"] for it in items][3::10]))
    assert len(labelled["items"]) == N_APPS // 10 and "nextCursor" not in labelled
    rows.append(("selector team=team-3 (1 in 10)", t_ours, t_raw))

    t_ours, drifted = _best(lambda: service.list_apps({"limit": str(PAGE), "sync": "OutOfSync"}))
    t_raw, _ = _best(lambda: raw_scan_then(lambda items: [it["name"]["S"] for it in items]))
    assert len(drifted["items"]) == PAGE and drifted["nextCursor"]
    assert all(i["status"]["sync"]["status"] == "OutOfSync" for i in drifted["items"])
    rows.append(("sync=OutOfSync first page (1 in 3)", t_ours, t_raw))

    width = max(len(r[0]) for r in rows)
    print(f"\nGET /api/v1/applications, {N_APPS} apps, page {PAGE}")
    print(f"  {'':<{width}}  {'gitferry s':>10}  {'raw s':>8}  {'ratio':>6}")
    for what, ours, raw in rows:
        print(f"  {what:<{width}}  {ours:>10.3f}  {raw:>8.3f}  {ours / raw:>6.2f}")
    print("  (raw: the same DynamoDB reads a client would make itself: the index page and the page's statuses;\n"
          "   for a filter, the whole index scanned and the statuses it needs)")
