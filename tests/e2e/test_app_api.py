"""The application routes of issue 11 through API Gateway on the local stack (moto server, kubesim
over HTTPS, git over HTTP): the filtered, name-ordered, cursor-paged list; PUT / PATCH with the
optimistic lock and a refresh; the app's events; terminating a running operation (argocd app
terminate-op) so that nothing more is written to the cluster and nothing stays Running."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application, synced_healthy

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(sync_wait_seconds=2) as w:  # an apply waits 2 s for a wave, then its follow-up
        w.register_cluster("local")
        w.api_ok("POST", "/api/v1/clusters?upsert=true",
                 {"name": "named", "kubeconfig": open(w.kube.kubeconfig_path).read(),
                  "server": "https://named.example:6443"})  # same cluster, another registered server
        yield w


def _manifest(world: LocalWorld, name: str, repo: str, *, labels: dict[str, str] | None = None,
              namespace: str | None = None, path: str = "app", dest_name: str | None = None) -> dict[str, Any]:
    doc = yaml.safe_load(application(name, repo, world.kube.url, automated=False, path=path,
                                     namespace=namespace or name))
    if labels:
        doc["metadata"]["labels"] = labels
    if dest_name:
        doc["spec"]["destination"] = {"name": dest_name, "namespace": namespace or name}
    return doc


def _names(world: LocalWorld, query: str) -> list[str]:
    return [i["metadata"]["name"] for i in world.api_ok("GET", f"/api/v1/applications?{query}")["items"]]


def _all_pages(world: LocalWorld, query: str, limit: int) -> tuple[list[str], int]:
    names: list[str] = []
    pages, cursor = 0, ""
    while True:
        answer = world.api_ok("GET", f"/api/v1/applications?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        pages += 1
        names += [i["metadata"]["name"] for i in answer["items"]]
        cursor = answer.get("nextCursor", "")
        if not cursor:
            return names, pages


def test_list_filters_sorted_by_name_and_paged_with_a_cursor(world: LocalWorld) -> None:
    web = world.git.make_repo("listweb", {"app/service.yaml": SERVICE})
    api = world.git.make_repo("listapi", {"app/config.yaml": CONFIG_MAP.format(name="c")})
    apps = {
        "l-echo": (web, {"suite": "list", "tier": "web", "team": "a"}, "ns-web", None),
        "l-alpha": (web, {"suite": "list", "tier": "web", "team": "b"}, "ns-web", None),
        "l-delta": (api, {"suite": "list", "tier": "api"}, "ns-api", "named"),
        "l-charlie": (api, {"suite": "list", "tier": "db", "team": "a"}, "ns-api", None),
        "l-bravo": (api, {"suite": "list"}, "ns-other", "named"),
    }
    for name, (repo, labels, ns, dest) in apps.items():
        world.api_ok("POST", "/api/v1/applications", _manifest(world, name, repo, labels=labels, namespace=ns,
                                                                  dest_name=dest))
    world.settle()
    world.api_ok("POST", "/api/v1/applications/l-alpha/sync", {})
    world.until("l-alpha synced", synced_healthy(world, "l-alpha"))
    everyone = sorted(apps)
    assert _names(world, "selector=suite%3Dlist") == everyone  # in name order, whatever the creation order
    names, pages = _all_pages(world, "selector=suite%3Dlist", limit=2)
    assert names == everyone and pages == 3
    # filters, alone and together
    assert _names(world, "selector=suite%3Dlist,tier%20in%20(web,api)") == ["l-alpha", "l-delta", "l-echo"]
    assert _names(world, "selector=suite%3Dlist,team!%3Da") == ["l-alpha", "l-bravo", "l-delta"]
    assert _names(world, "selector=suite%3Dlist,!team") == ["l-bravo", "l-delta"]
    assert _names(world, "selector=suite,tier%20notin%20(web)") == ["l-bravo", "l-charlie", "l-delta"]
    assert _names(world, f"selector=suite&repo={web.removesuffix('.git')}") == ["l-alpha", "l-echo"]
    assert _names(world, "selector=suite&namespace=ns-api") == ["l-charlie", "l-delta"]
    assert _names(world, "selector=suite&cluster=named") == ["l-bravo", "l-delta"]
    assert _names(world, f"selector=suite&cluster={world.kube.url}") == ["l-alpha", "l-charlie", "l-echo"]
    assert _names(world, "selector=suite&search=LTA") == ["l-delta"]
    assert _names(world, "selector=suite&sync=Synced&health=Healthy") == ["l-alpha"]
    assert _names(world, "selector=suite&sync=OutOfSync") == ["l-bravo", "l-charlie", "l-delta", "l-echo"]
    assert _names(world, "selector=suite&project=default") == everyone
    assert _names(world, "selector=suite&project=other") == []
    names, pages = _all_pages(world, "selector=suite&sync=OutOfSync", limit=3)
    assert names == ["l-bravo", "l-charlie", "l-delta", "l-echo"] and pages == 2
    row = world.api_ok("GET", "/api/v1/applications?search=l-alpha")["items"][0]
    assert row["metadata"]["labels"]["tier"] == "web" and row["metadata"]["resourceVersion"] == "1"
    assert row["status"]["sync"]["status"] == "Synced" and "resources" not in row["status"]

    for query, field in (("selector=a%20in%20(", "selector"), ("sync=Bogus", "sync"), ("health=ok", "health"),
                         ("limit=0", "limit"), ("limit=1001", "limit"), ("cursor=%21%21", "cursor"),
                         (f"cursor={base64.urlsafe_b64encode(b'offset:3').decode()}", "cursor"),
                         ("colour=red", "colour"), ("selector=" + "a" * 5000, "selector")):
        status, answer = world.call("GET", f"/api/v1/applications?{query}")
        assert status == 400, (query, answer)
        assert any(p.startswith(f"{field}:") for p in answer["problems"]), (query, answer)


def test_put_and_patch_are_validated_locked_audited_and_refresh(world: LocalWorld) -> None:
    repo = world.git.make_repo("upd", {"app/service.yaml": SERVICE,
                                       "other/config.yaml": CONFIG_MAP.format(name="from-other")})
    world.api_ok("POST", "/api/v1/applications", _manifest(world, "upd", repo))
    world.settle()
    got = world.api_ok("GET", "/api/v1/applications/upd")
    assert got["metadata"]["resourceVersion"] == "1"
    assert {r["kind"] for r in got["status"]["resources"]} == {"Service"}

    # PATCH: a JSON merge patch of the spec; the changed source is compared again at once
    status, patched = world.call("PATCH", "/api/v1/applications/upd",
                                 {"spec": {"source": {"path": "other"}}, "metadata": {"labels": {"team": "x"}}})
    assert status == 200, patched
    assert patched["spec"]["source"]["path"] == "other" and patched["metadata"]["resourceVersion"] == "2"
    assert patched["metadata"]["labels"] == {"team": "x"}
    world.settle()
    resources = world.status("upd")["resources"]
    assert [(r["kind"], r["name"]) for r in resources] == [("ConfigMap", "from-other")]

    # PUT: the whole manifest as YAML, conditional on the resourceVersion sent back
    doc = world.api_ok("GET", "/api/v1/applications/upd")
    doc.pop("status")
    doc["spec"]["source"]["path"] = "app"
    stale = yaml.safe_dump({**doc, "metadata": {**doc["metadata"], "resourceVersion": "1"}})
    status, answer = world.call("PUT", "/api/v1/applications/upd", stale)
    assert status == 409 and "resourceVersion 1" in answer["message"], answer
    status, answer = world.call("PUT", "/api/v1/applications/upd", yaml.safe_dump(doc))
    assert status == 200 and answer["metadata"]["resourceVersion"] == "3", answer
    status, answer = world.call("PUT", "/api/v1/applications/upd", yaml.safe_dump(doc))  # same version again
    assert status == 409 and "changed since resourceVersion 2" in answer["message"], answer
    world.settle()
    assert [r["kind"] for r in world.status("upd")["resources"]] == ["Service"]

    # validated like a create, every problem named; nothing stored
    bad = {**doc, "metadata": {"name": "other-name"}}
    status, answer = world.call("PUT", "/api/v1/applications/upd", bad)
    assert status == 400 and answer["problems"][0].startswith("metadata.name:"), answer
    status, answer = world.call("PATCH", "/api/v1/applications/upd",
                                {"spec": {"project": "team-a", "syncPolicy": {"bogus": 1}}})
    assert status == 400, answer
    assert any(p.startswith("spec.project:") and "not supported by gitferry" in p for p in answer["problems"])
    assert any(p.startswith("spec.syncPolicy.bogus:") for p in answer["problems"]), answer
    status, answer = world.call("PATCH", "/api/v1/applications/upd", {"status": {}, "kind": "Other"})
    assert status == 400 and {p.split(":")[0] for p in answer["problems"]} == {"kind", "status"}
    status, answer = world.call("PATCH", "/api/v1/applications/upd",
                                {"spec": {"destination": {"server": "https://nowhere.example:6443"}}})
    assert status == 400 and answer["problems"][0].startswith("spec.destination:"), answer
    status, answer = world.call("PATCH", "/api/v1/applications/upd", "spec: [unclosed")
    assert status == 400 and answer["problems"][0].startswith("body: line"), answer
    assert world.call("PUT", "/api/v1/applications/absent", doc)[0] == 404
    assert world.call("PATCH", "/api/v1/applications/absent", {"spec": {}})[0] == 404
    assert world.api_ok("GET", "/api/v1/applications/upd")["metadata"]["resourceVersion"] == "3"
    # nothing changed: no new version, no audit entry
    assert world.api_ok("PATCH", "/api/v1/applications/upd", {"spec": {"source": {"path": "app"}}}
                        )["metadata"]["resourceVersion"] == "3"
    updates = [e for e in world.api_ok("GET", "/api/v1/applications/upd/events")["items"] if e["action"] == "app.update"]
    assert [(e["details"]["method"], e["details"]["version"], e["details"]["spec"]) for e in updates] == [
        ("PUT", 3, ["source"]), ("PATCH", 2, ["source"])]


def test_events_are_the_apps_audit_entries_newest_first_in_pages(world: LocalWorld) -> None:
    repo = world.git.make_repo("evt", {"app/service.yaml": SERVICE})
    world.api_ok("POST", "/api/v1/applications", _manifest(world, "evt", repo))
    world.api_ok("POST", "/api/v1/applications", _manifest(world, "evt-other", repo))
    for _ in range(3):
        world.api_ok("POST", "/api/v1/applications/evt/refresh")
    world.settle()
    first = world.api_ok("GET", "/api/v1/applications/evt/events?limit=2")
    assert [e["action"] for e in first["items"]] == ["app.refresh", "app.refresh"] and first["nextCursor"]
    rest = world.api_ok("GET", f"/api/v1/applications/evt/events?limit=2&cursor={first['nextCursor']}")
    assert [e["action"] for e in rest["items"]] == ["app.refresh", "app.create"] and "nextCursor" not in rest
    every = first["items"] + rest["items"]
    assert all(e["target"] == "evt" for e in every)
    assert [e["at"] for e in every] == sorted((e["at"] for e in every), reverse=True)
    # the day's audit trail still has them all
    day = every[0]["at"][:10]
    trail = world.api_ok("GET", f"/api/v1/audit?date={day}&limit=1000")["items"]
    assert {e["target"] for e in trail} >= {"evt", "evt-other"}
    assert world.call("GET", "/api/v1/applications/absent/events")[0] == 404
    for query in ("limit=0", "limit=x", "cursor=bm9wZQ"):
        status, answer = world.call("GET", f"/api/v1/applications/evt/events?{query}")
        assert status == 400 and answer["problems"][0].split(":")[0] in ("limit", "cursor"), answer


# ---------------------------------------------------------------------------------- terminate-op


def _stuck_app(world: LocalWorld, name: str) -> None:
    """Wave 0 a Deployment that never becomes ready, wave 1 a ConfigMap the sync must not reach."""
    deployment = yaml.safe_load(DEPLOYMENT.format(replicas=1, image="nginx:neverready"))
    deployment["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "0"}
    config = yaml.safe_load(CONFIG_MAP.format(name="wave-one"))
    config["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "1"}
    repo = world.git.make_repo(name, {"app/deployment.yaml": yaml.safe_dump(deployment),
                                      "app/config.yaml": yaml.safe_dump(config)})
    world.api_ok("POST", "/api/v1/applications", _manifest(world, name, repo))
    world.settle()
    world.api_ok("POST", f"/api/v1/applications/{name}/sync", {})
    world.until(f"{name} waits at wave 0", lambda: "waiting for" in (
        (world.status(name).get("operationState") or {}).get("message") or ""), tick=False)


def _item(world: LocalWorld, app: str, sk: str) -> dict[str, Any] | None:
    ddb = world.stack.resources.client("dynamodb")
    return ddb.get_item(TableName=world.stack.resources.tables["StateTable"],
                        Key={"pk": {"S": f"APP#{app}"}, "sk": {"S": sk}}, ConsistentRead=True).get("Item")


def _config_maps(world: LocalWorld, namespace: str) -> list[str]:
    return [c.metadata.name for c in client.CoreV1Api(world.k8s).list_namespaced_config_map(namespace).items
            if c.metadata.name != "kube-root-ca.crt"]


def _after_termination(world: LocalWorld, name: str, actor: str = "api:admin") -> None:
    """Seconds of pipeline later: Failed for good, nothing more written, nothing left to run it."""
    before = world.deployment(name, "guestbook-ui").metadata.resource_version
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # its follow-ups (and the poll) have every chance to go on
        world.tick()
        time.sleep(0.5)
    op = world.status(name)["operationState"]
    assert op["phase"] == "Failed" and op["message"] == f"terminated by {actor}", op
    assert _config_maps(world, name) == []  # wave 1 never written
    assert world.deployment(name, "guestbook-ui").metadata.resource_version == before
    assert _item(world, name, "OPERATION") is None and _item(world, name, "FOLLOWUP") is None
    assert "terminate" not in (_item(world, name, "STATUS") or {})
    events = [e["action"] for e in world.api_ok("GET", f"/api/v1/applications/{name}/events")["items"]]
    assert events[:2] == ["operation.failed", "app.terminate-op"], events
    status, answer = world.call("DELETE", f"/api/v1/applications/{name}/operation")
    assert status == 409 and "no operation running" in answer["message"]


def test_terminate_an_operation_waiting_between_invocations(world: LocalWorld) -> None:
    _stuck_app(world, "stuck")
    assert _item(world, "stuck", "FOLLOWUP") is not None  # its next look is a delayed follow-up
    status, answer = world.call("DELETE", "/api/v1/applications/stuck/operation")
    assert status == 200, answer
    assert answer["phase"] == "Failed" and answer["message"] == "terminated by api:admin" and answer["operation"]
    _after_termination(world, "stuck")
    # a new sync may run afterwards (and is refused nothing extra)
    assert world.call("POST", "/api/v1/applications/stuck/sync", {})[0] == 202
    world.until("the new sync waits again", lambda: (world.status("stuck").get("operationState") or {}).get(
        "phase") == "Running", tick=False)
    assert world.call("DELETE", "/api/v1/applications/stuck/operation")[0] == 200
    world.settle()


def test_terminate_while_an_apply_runs_stops_it_at_its_next_wave(world: LocalWorld) -> None:
    """An apply invocation of the operation holds its lease (as a concurrent Lambda would): the
    API only marks the operation, shows it Terminating, and the apply that carries the operation
    on (here its delayed follow-up) stops before writing anything more."""
    _stuck_app(world, "busy")
    op_id = world.status("busy")["operationState"]["operation"]["sync"]["operationId"]
    ddb = world.stack.resources.client("dynamodb")
    ddb.put_item(TableName=world.stack.resources.tables["StateTable"], Item={
        "pk": {"S": "APP#busy"}, "sk": {"S": "OPERATION"}, "opId": {"S": op_id},
        "expiresAt": {"N": str(int(time.time()) + 600)}, "acquiredAt": {"N": str(int(time.time()))}})
    status, answer = world.call("DELETE", "/api/v1/applications/busy/operation")
    assert status == 202 and answer["phase"] == "Terminating", answer
    assert world.status("busy")["operationState"]["phase"] == "Terminating"
    assert world.call("DELETE", "/api/v1/applications/busy/operation")[0] == 202  # asked again: same answer
    _after_termination(world, "busy")


def test_terminate_when_nothing_runs(world: LocalWorld) -> None:
    repo = world.git.make_repo("idle", {"app/service.yaml": SERVICE})
    world.api_ok("POST", "/api/v1/applications", _manifest(world, "idle", repo))
    status, answer = world.call("DELETE", "/api/v1/applications/idle/operation")
    assert status == 409 and answer["message"] == "application 'idle' has no operation running"
    status, answer = world.call("DELETE", "/api/v1/applications/absent/operation")
    assert status == 404 and "absent" in answer["message"]
