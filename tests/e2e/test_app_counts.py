"""``GET /api/v1/application-counts`` through API Gateway on the local stack: the apps per sync
and per health status over the whole fleet (not one page), with the list's filters, in the
OpenAPI document; the console shows them at the top of the applications page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from local.story import SERVICE, LocalWorld, application, synced_healthy


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.register_cluster("local")
        yield w


def _every_app(world: LocalWorld, query: str) -> list[dict[str, Any]]:
    """The list read page by page (limit 2), the peer the counts must agree with."""
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = world.api_ok("GET", f"/api/v1/applications?{query}&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        out += page["items"]
        cursor = page.get("nextCursor", "")
        if not cursor:
            return out


def _expected(apps: list[dict[str, Any]]) -> dict[str, Any]:
    sync = Counter({k: 0 for k in ("Synced", "OutOfSync", "Unknown")})
    health = Counter({k: 0 for k in ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")})
    for a in apps:
        sync[((a.get("status") or {}).get("sync") or {}).get("status", "Unknown")] += 1
        health[((a.get("status") or {}).get("health") or {}).get("status", "Unknown")] += 1
    return {"total": len(apps), "sync": dict(sync), "health": dict(health)}


def test_counts_cover_every_page_and_follow_the_filters(world: LocalWorld) -> None:
    repo = world.git.make_repo("counted", {"app/service.yaml": SERVICE})
    for i in range(5):
        doc = yaml.safe_load(application(f"c-{i}", repo, world.kube.url, automated=False, path="app", namespace=f"c-{i}"))
        doc["metadata"]["labels"] = {"suite": "counts", "half": "a" if i < 3 else "b"}
        world.api_ok("POST", "/api/v1/applications", doc)
    world.settle()
    world.api_ok("POST", "/api/v1/applications/c-0/sync", {})
    world.until("c-0 synced", synced_healthy(world, "c-0"))
    world.settle()

    counts = world.api_ok("GET", "/api/v1/application-counts?selector=suite%3Dcounts")
    assert counts == _expected(_every_app(world, "selector=suite%3Dcounts")), counts
    assert counts["total"] == 5 and counts["sync"]["Synced"] == 1 and counts["sync"]["OutOfSync"] == 4
    assert counts["health"]["Healthy"] == 1 and counts["health"]["Missing"] == 4
    # every app when nothing filters (this module's world holds only these)
    assert world.api_ok("GET", "/api/v1/application-counts") == _expected(_every_app(world, ""))
    # the list's filters, spec and status ones together
    half = world.api_ok("GET", "/api/v1/application-counts?selector=half%3Da&sync=OutOfSync")
    assert half["total"] == 2 and half["sync"] == {"Synced": 0, "OutOfSync": 2, "Unknown": 0}
    assert world.api_ok("GET", "/api/v1/application-counts?search=c-4")["total"] == 1
    assert world.api_ok("GET", "/api/v1/application-counts?health=Healthy")["total"] == 1
    # a status written before the native syncStatus / healthStatus attributes: read from its document
    ddb = world.stack.resources.client("dynamodb")
    ddb.update_item(TableName=world.stack.resources.tables["StateTable"], Key={"pk": {"S": "APP#c-0"}, "sk": {"S": "STATUS"}},
                    UpdateExpression="REMOVE syncStatus, healthStatus")
    assert world.api_ok("GET", "/api/v1/application-counts?selector=suite%3Dcounts") == counts


def test_counts_refuse_paging_and_bad_values_naming_them(world: LocalWorld) -> None:
    status, answer = world.call("GET", "/api/v1/application-counts?limit=5")
    assert status == 400 and any(p.startswith("limit: unknown query parameter") for p in answer["problems"]), answer
    status, answer = world.call("GET", "/api/v1/application-counts?health=Fine")
    assert status == 400 and any(p.startswith("health: 'Fine' is not one of") for p in answer["problems"]), answer
    status, _ = world.call("GET", "/api/v1/application-counts", headers={})
    assert status == 401


def test_counts_route_is_in_the_openapi_document(world: LocalWorld) -> None:
    op = world.api_ok("GET", "/openapi.json")["paths"]["/api/v1/application-counts"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert {p["name"] for p in op["parameters"]} == {"project", "repo", "cluster", "namespace", "sync", "health",
                                                     "selector", "search"}
    assert schema  # the AppCounts model (total, sync, health)
