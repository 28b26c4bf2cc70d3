"""End to end through the handlers: what the diff stage reports about ignoreDifferences
(jqPathExpressions) and about objects that another application deploys too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from local.story import DEPLOYMENT, LocalWorld, application, synced_healthy

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: shared-config
data:
  owner: {owner}
"""


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.server = w.register_cluster("local")  # type: ignore[attr-defined]
        yield w


def _app(world: LocalWorld, name: str, repo: str, *, automated: bool, namespace: str,
         ignore: list[dict[str, Any]] | None = None) -> str:
    doc = yaml.safe_load(application(name, repo, world.server, automated=automated,  # type: ignore[attr-defined]
                                     path="app", namespace=namespace))
    if ignore is not None:
        doc["spec"]["ignoreDifferences"] = ignore
    return yaml.safe_dump(doc, sort_keys=False)


def _conditions(world: LocalWorld, app: str, kind: str) -> list[str]:
    return [c["message"] for c in world.status(app).get("conditions") or [] if c["type"] == kind]


def test_second_app_deploying_the_same_configmap_gets_a_shared_resource_warning(world: LocalWorld) -> None:
    repo_a = world.git.make_repo("shared-a", {"app/cm.yaml": CONFIGMAP.format(owner="a")})
    repo_b = world.git.make_repo("shared-b", {"app/cm.yaml": CONFIGMAP.format(owner="b")})
    world.api_ok("POST", "/api/v1/applications", _app(world, "cfg-a", repo_a, automated=False, namespace="shared"))
    world.settle()
    world.api_ok("POST", "/api/v1/applications/cfg-a/sync")
    world.settle()
    world.until("cfg-a synced", synced_healthy(world, "cfg-a"))
    assert _conditions(world, "cfg-a", "SharedResourceWarning") == []

    world.api_ok("POST", "/api/v1/applications", _app(world, "cfg-b", repo_b, automated=False, namespace="shared"))
    world.tick()
    assert _conditions(world, "cfg-b", "SharedResourceWarning") == [
        "ConfigMap/shared-config is part of applications cfg-b and cfg-a"]
    assert world.status("cfg-b")["sync"]["status"] == "OutOfSync"
    assert _conditions(world, "cfg-a", "SharedResourceWarning") == []  # still cfg-a's object

    # cfg-b syncs it (the last writer takes it over): now cfg-a is the one warned, cfg-b is not
    world.api_ok("POST", "/api/v1/applications/cfg-b/sync")
    world.settle()
    world.until("cfg-b synced", synced_healthy(world, "cfg-b"))
    world.api_ok("POST", "/api/v1/applications/cfg-a/refresh")
    world.settle()
    assert _conditions(world, "cfg-b", "SharedResourceWarning") == []
    assert _conditions(world, "cfg-a", "SharedResourceWarning") == [
        "ConfigMap/shared-config is part of applications cfg-a and cfg-b"]
    assert world.status("cfg-a")["sync"]["status"] == "OutOfSync"


def test_jq_path_expression_lets_replicas_drift_without_self_heal_reverting_it(world: LocalWorld) -> None:
    repo = world.git.make_repo("jq-app", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27")})
    ignore = [{"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.replicas"]}]
    world.api_ok("POST", "/api/v1/applications", _app(world, "jq-app", repo, automated=True, namespace="jq",
                                                      ignore=ignore))
    world.settle()
    world.until("jq-app synced", synced_healthy(world, "jq-app"))
    world.scale("jq", "guestbook-ui", 3)  # an autoscaler's doing
    world.tick()
    world.tick()
    status = world.status("jq-app")
    assert status["sync"]["status"] == "Synced", status
    assert world.deployment("jq", "guestbook-ui").spec.replicas == 3  # selfHeal left it alone
    assert _conditions(world, "jq-app", "ComparisonError") == []


def test_invalid_jq_expression_is_refused_at_registration_naming_the_field(world: LocalWorld) -> None:
    ignore = [{"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.replicas", ".spec["]}]
    code, body = world.call("POST", "/api/v1/applications",
                            _app(world, "jq-bad", "http://127.0.0.1:1/none.git", automated=True, namespace="jq-bad",
                                 ignore=ignore))
    assert code == 400, body
    assert "spec.ignoreDifferences[0].jqPathExpressions[1]: invalid jq expression" in str(body)
    code, _ = world.call("GET", "/api/v1/applications/jq-bad")
    assert code == 404
