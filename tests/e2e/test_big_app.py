"""A 20,000-object application through the API on the local stack (issue item 4).

The status is recorded through the engine's StateStore into the local stack's moto (what the
diff/apply stages do at the end of a 20,000-object sync), then read the way users read it:
GET answers stay bounded (Lambda's response limit is 6 MB) and every object is reachable
through the resources / sync-results pages."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from test_state_big import N, big_status  # noqa: E402

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        yield w


def raw_get(world: LocalWorld, path: str) -> bytes:
    req = urllib.request.Request(world.api.rstrip("/") + path,
                                 headers={"Authorization": f"Bearer {world.api_token}"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.read()


def test_get_of_a_20000_object_app_is_bounded_and_pages_reach_every_object(world: LocalWorld) -> None:
    from gitferry.blobs import ManifestStore
    from gitferry.state import StateStore

    server = world.register_cluster("local")
    repo = world.git.make_repo("big", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                                       "app/svc.yaml": SERVICE})
    world.api_ok("POST", "/api/v1/applications", application("big", repo, server, automated=False,
                                                             path="app", namespace="big"))
    world.settle()
    res = world.stack.resources
    store = StateStore(res.physical["StateTable"], client=res.client("dynamodb"),
                       blobs=ManifestStore(res.physical["ManifestBucket"], client=res.client("s3")))
    store.put_status("big", big_status())

    body = raw_get(world, "/api/v1/applications/big")
    assert len(body) < 1024 * 1024 < LAMBDA_RESPONSE_LIMIT  # was 4.9 MB for 20,000 objects
    status = json.loads(body)["status"]
    summary = status["resourcesSummary"]
    assert summary["total"] == N and summary["bySync"] == {"Synced": N} and summary["byHealth"] == {"Healthy": N}
    assert len(status["resources"]) == summary["shown"] < N
    assert len(status["operationState"]["syncResult"]["resources"]) == summary["syncResults"]["shown"] < N
    assert summary["syncResults"]["total"] == N

    # walk the pages from the summary's link: every object once, in order, each page bounded
    seen: list[str] = [r["name"] for r in status["resources"]]
    path: str | None = summary["next"] + "&limit=1000"
    while path:
        raw = raw_get(world, path)
        assert len(raw) < LAMBDA_RESPONSE_LIMIT / 10
        page = json.loads(raw)
        assert page["total"] == N and len(page["items"]) <= 1000
        seen += [r["name"] for r in page["items"]]
        path = f"/api/v1/applications/big/resources?limit=1000&cursor={page['nextCursor']}" if "nextCursor" in page else None
    assert seen == [f"settings-{i:05d}" for i in range(N)]

    page = world.api_ok("GET", "/api/v1/applications/big/sync-results?limit=7")
    assert [r["name"] for r in page["items"]] == [f"settings-{i:05d}" for i in range(7)] and page["total"] == N

    # the list of apps never carries per-object lists
    listed = raw_get(world, "/api/v1/applications")
    assert len(listed) < 100_000
    row = next(a for a in json.loads(listed)["items"] if a["metadata"]["name"] == "big")
    assert "resources" not in row["status"] and "resources" not in row["status"]["operationState"]["syncResult"]


def test_page_arguments_are_checked(world: LocalWorld) -> None:
    for query, field in (("limit=0", "limit"), ("limit=5000", "limit"), ("limit=x", "limit"),
                         ("cursor=bm9wZQ", "cursor")):
        code, answer = world.call("GET", f"/api/v1/applications/big/resources?{query}")
        assert code == 400 and any(p.startswith(f"{field}:") for p in answer["problems"]), (query, answer)


def test_deleting_a_big_app_deletes_its_spilled_lists(world: LocalWorld) -> None:
    res = world.stack.resources
    s3 = res.client("s3")
    bucket = res.physical["ManifestBucket"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="status/big/").get("KeyCount", 0) == 2
    world.api_ok("DELETE", "/api/v1/applications/big?cascade=false")  # forgotten at once, objects stay
    assert s3.list_objects_v2(Bucket=bucket, Prefix="status/big/").get("KeyCount", 0) == 0
