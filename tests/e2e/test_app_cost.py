"""GET /api/v1/applications/{name}/cost through the API on the local stack: the app's own month
from gitferry.cost with the stack's drift-check interval and the app's resource count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gitferry import cost

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application, synced_healthy


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(drift_check_seconds=2) as w:
        yield w


def test_cost_of_one_app_and_of_none(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    url = world.git.make_repo("costed", {"guestbook/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                                         "guestbook/svc.yaml": SERVICE})
    world.api_ok("POST", "/api/v1/applications", application("costed", url, server, automated=True))
    world.until("costed synced", synced_healthy(world, "costed"))

    answer = world.api_ok("GET", "/api/v1/applications/costed/cost")
    # the template's default PerAppMetrics=status: two per-app custom metrics are billed
    expected = cost.app_estimate(drift_check_seconds=2, resources=2, metrics_per_app=2.0)
    assert answer == expected
    assert answer != cost.app_estimate(drift_check_seconds=2, resources=2, metrics_per_app=8.0)
    assert answer["resources"] == 2 and answer["driftCheckSeconds"] == 2 and answer["currency"] == "USD"
    assert answer["driftChecksPerMonth"] == 30 * 24 * 60  # a 2 s interval is checked every 60 s tick
    assert answer["monthly"] == pytest.approx(sum(answer["breakdown"].values()), abs=1e-3)
    assert answer["monthly"] > 0

    status, missing = world.call("GET", "/api/v1/applications/nothing-here/cost")
    assert status == 404, missing


def test_cost_route_is_in_the_openapi_document(world: LocalWorld) -> None:
    doc = world.api_ok("GET", "/openapi.json")
    op = doc["paths"]["/api/v1/applications/{name}/cost"]["get"]
    assert "200" in op["responses"] and "404" in op["responses"]
