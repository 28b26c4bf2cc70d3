"""End to end through gitferry's handlers on the local stack (moto server, kubesim, git).

The same story `make demo` plays, plus the failure paths a user meets first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from local.story import (
    DEPLOYMENT,
    SERVICE,
    WEBHOOK_SECRET,
    LocalWorld,
    application,
    play_guestbook,
    synced_healthy,
)


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    # One breaching minute fires the drift alarm, so the alarm path is checked without waiting.
    with LocalWorld(alarm_periods=1) as w:
        w.notification_queue = w.subscribe_notifications()  # type: ignore[attr-defined]
        yield w


def test_guestbook_story(world: LocalWorld) -> None:
    steps = play_guestbook(world)
    assert len(steps) == 5
    # Nothing failed its way to a dead-letter queue on the way.
    dead = {q: world.stack.queue_depth(q) for q in world.stack.resources.queues if "DeadLetter" in q}
    assert len(dead) == 5 and set(dead.values()) == {0}, dead


def _repo(world: LocalWorld, name: str, files: dict[str, str] | None = None) -> str:
    return world.git.make_repo(name, files or {
        "app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
        "app/svc.yaml": SERVICE,
    })


def test_manual_app_stays_out_of_sync_until_synced_through_the_api(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = _repo(world, "manual")
    world.api_ok("POST", "/api/v1/applications", application("manual", repo, server, automated=False,
                                                              path="app", namespace="manual"))
    world.tick()
    world.tick()
    status = world.status("manual")
    assert status["sync"]["status"] == "OutOfSync"
    assert status["health"]["status"] == "Missing"
    assert {r["status"] for r in status["resources"]} == {"OutOfSync"}
    assert "operationState" not in status or status["operationState"] is None
    assert not _namespace_exists(world, "manual")  # CreateNamespace happens in a sync, and none ran

    # The poll's fleet summary counts it; report emits OutOfSyncApps; DriftAlarm (template) fires.
    fleet = [d for m in world.stack.metrics for d in m.datapoints if d.metric == "OutOfSyncApps"]
    assert fleet and fleet[-1].value >= 1
    world.stack.evaluate_alarms()
    assert world.stack.alarm_state("DriftAlarm") == "ALARM"

    answer = world.api_ok("POST", "/api/v1/applications/manual/sync")
    assert answer["queued"] is True
    world.settle()
    world.until("manual app synced", synced_healthy(world, "manual"))
    status = world.status("manual")
    assert status["operationState"]["phase"] == "Succeeded"
    assert status["operationState"]["initiatedBy"]["username"].startswith("api")
    assert world.deployment("manual", "guestbook-ui").spec.replicas == 1


def _namespace_exists(world: LocalWorld, name: str) -> bool:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(world.k8s).read_namespace(name)
        return True
    except ApiException as exc:
        assert exc.status == 404
        return False


def test_bad_webhook_signature_is_401_and_changes_nothing(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = _repo(world, "signed")
    world.set_webhook_secret("github", "the-real-secret")
    world.api_ok("POST", "/api/v1/applications", application("signed", repo, server, automated=True,
                                                              path="app", namespace="signed"))
    # The sync's delayed health re-checks too: they would otherwise run during the check below.
    world.stack.run_until_idle(timeout=60, until_delayed=True)
    before = world.status("signed")
    invocations = len(world.stack.invocations)
    sha = world.git.commit("signed", {"app/deploy.yaml": DEPLOYMENT.format(replicas=2, image="nginx:1.28")}, "bump")
    status, answer = world.push_webhook(repo, sha, secret="not-the-secret")
    assert status == 401, answer
    assert "signature" in answer["message"].lower()
    assert all(world.stack.queue_depth(q) == 0 for q in ("RenderQueue", "DiffQueue", "ApplyQueue"))
    world.settle()
    assert [i.function for i in world.stack.invocations[invocations:]
            if i.function not in ("WebhookFunction",)] == []
    assert world.status("signed")["sync"].get("revision") == before["sync"].get("revision")


def test_malformed_manifest_shows_comparison_error_naming_the_file_and_leaves_cluster_alone(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = _repo(world, "broken", {
        "app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
        "app/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [unclosed\n",
    })
    world.api_ok("POST", "/api/v1/applications", application("broken", repo, server, automated=True,
                                                              path="app", namespace="broken"))
    world.tick()
    status = world.status("broken")
    conditions = status.get("conditions") or []
    assert [c["type"] for c in conditions] == ["ComparisonError"], conditions
    assert "app/broken.yaml" in conditions[0]["message"]
    assert "app/broken.yaml:7" in conditions[0]["message"]  # file and line of the YAML error
    assert status["sync"]["status"] == "Unknown"
    assert not _namespace_exists(world, "broken")


def test_invalid_application_is_refused_with_every_bad_field_named(world: LocalWorld) -> None:
    status, answer = world.call("POST", "/api/v1/applications", (
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: bad}\n"
        "spec:\n  source: {targetRevision: HEAD}\n  destination: {namespace: x}\n  foo: 1\n"))
    assert status == 400, answer
    text = "\n".join(answer["problems"])
    assert "spec.source.repoURL" in text
    assert "spec.destination" in text
    assert "spec.foo" in text


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic local-api-token", "local-api-token"])
def test_api_needs_the_bearer_token(world: LocalWorld, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    status, answer = world.call("GET", "/api/v1/clusters", headers=headers)
    assert status == 401, answer
    assert "token" in answer["message"]
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "x", "kubeconfig": "y"}, headers=headers)
    assert status == 401, answer
    # The dashboard page itself is static and holds no data; it asks for the token in the browser.
    status, page = world.call("GET", "/", headers=headers)
    assert status == 200 and "gitferry" in page


WAVE_CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: after-web
  annotations:
    argocd.argoproj.io/sync-wave: "1"
data:
  ready: "yes"
"""


def test_a_later_wave_waits_until_the_earlier_one_is_healthy(world: LocalWorld) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    server = world.register_cluster("local")
    repo = _repo(world, "waves", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                                  "app/after.yaml": WAVE_CONFIG})
    core = client.CoreV1Api(world.k8s)

    def config_exists() -> bool:
        try:
            core.read_namespaced_config_map("after-web", "waves")
            return True
        except ApiException as exc:
            assert exc.status == 404
            return False

    world.kube.pause_controllers()  # the Deployment cannot become healthy yet
    try:
        world.api_ok("POST", "/api/v1/applications", application("waves", repo, server, automated=True,
                                                                  path="app", namespace="waves"))
        world.tick()
        op = world.status("waves")["operationState"]
        assert op["phase"] == "Running", op
        assert "Deployment" in op["message"] and "wave 1" in op["message"]
        assert world.deployment("waves", "guestbook-ui").spec.replicas == 1
        assert not config_exists()
        world.tick()  # still unhealthy: still waiting, nothing applied out of order
        assert world.status("waves")["operationState"]["phase"] == "Running"
        assert not config_exists()
    finally:
        world.kube.resume_controllers()
    world.until("wave 1 applied", lambda: world.status("waves")["operationState"]["phase"] == "Succeeded")
    assert config_exists()
    op = world.status("waves")["operationState"]
    names = {r["kind"] + "/" + r["name"] for r in op["syncResult"]["resources"]}
    assert {"Deployment/guestbook-ui", "ConfigMap/after-web"} <= names  # both invocations' results kept
    world.until("synced", synced_healthy(world, "waves"))
    assert len(world.api_ok("GET", "/api/v1/applications/waves/history")["items"]) == 1


def test_failed_sync_is_retried_with_backoff_then_fails(world: LocalWorld) -> None:
    import yaml

    server = world.register_cluster("local")
    repo = _repo(world, "retry", {"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"})
    manifest = yaml.safe_load(application("retry", repo, server, automated=True, path="app", namespace="retry"))
    manifest["spec"]["syncPolicy"]["retry"] = {"limit": 2, "backoff": {"duration": "1s", "factor": 1, "maxDuration": "1s"}}
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(manifest))
    world.tick()
    op = world.status("retry")["operationState"]
    # (a 1 s backoff: the follow-up may already have run attempt #1 by now)
    assert op["phase"] in ("Running", "Failed"), op
    assert op["phase"] == "Failed" or "Retrying attempt #" in op["message"], op
    assert "Bad_Name" in op["message"]  # the API server's reason is kept
    world.until("retries exhausted", lambda: world.status("retry")["operationState"]["phase"] == "Failed")
    op = world.status("retry")["operationState"]
    assert op["retryCount"] == 2
    assert [c["type"] for c in world.status("retry")["conditions"]] == ["SyncError"]
    assert world.api_ok("GET", "/api/v1/applications/retry/history")["items"] == []


def test_crash_looping_app_is_degraded_and_everyone_was_told(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    manifest = DEPLOYMENT.format(replicas=1, image="example/crashloop:1").replace(
        "spec:\n  replicas: 1\n", "spec:\n  replicas: 1\n  progressDeadlineSeconds: 3\n", 1)
    assert "progressDeadlineSeconds: 3" in manifest
    repo = _repo(world, "crashy", {"app/deploy.yaml": manifest})
    world.api_ok("POST", "/api/v1/applications", application("crashy", repo, server, automated=True,
                                                              path="app", namespace="crashy"))
    world.until("Degraded", lambda: (world.status("crashy").get("health") or {}).get("status") == "Degraded")
    assert "exceeded its progress deadline" in world.status("crashy")["health"]["message"]
    tree = world.api_ok("GET", "/api/v1/applications/crashy/resource-tree")["nodes"]
    pods = [n for n in tree if n["kind"] == "Pod"]
    assert pods and all(p["health"]["status"] == "Degraded" for p in pods)

    sent = world.notifications(world.notification_queue)  # type: ignore[attr-defined]
    by_app: dict[str, set[str]] = {}
    for n in sent:
        by_app.setdefault(n["app"], set()).add(n["trigger"])
    assert "on-health-degraded" in by_app.get("crashy", set()), sent
    assert "on-sync-succeeded" in by_app["crashy"]  # the sync itself worked; the workload did not
    assert "on-sync-failed" not in by_app["crashy"]


def test_a_failed_sync_is_announced(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = _repo(world, "announced", {"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"})
    world.api_ok("POST", "/api/v1/applications", application("announced", repo, server, automated=True,
                                                              path="app", namespace="announced"))
    world.tick()
    assert world.status("announced")["operationState"]["phase"] == "Failed"
    sent = [n for n in world.notifications(world.notification_queue)  # type: ignore[attr-defined]
            if n["app"] == "announced"]
    assert [n["trigger"] for n in sent] == ["on-sync-failed"], sent
    assert "Bad_Name" in sent[0]["body"]["message"]


def test_audit_trail_records_who_did_what_without_secrets(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = _repo(world, "audited")
    world.api_ok("POST", "/api/v1/applications", application("audited", repo, server, automated=False,
                                                              path="app", namespace="audited"))
    world.api_ok("POST", "/api/v1/applications/audited/sync")
    world.settle()
    sha = world.git.commit("audited", {"app/extra.yaml": WAVE_CONFIG}, "more")
    world.set_webhook_secret("github", WEBHOOK_SECRET)  # its own, whichever test of the module ran first
    assert world.push_webhook(repo, sha)[0] == 202
    world.settle()

    trail = world.api_ok("GET", "/api/v1/audit")["items"]
    seen = {(e["action"], e["target"], e["actor"].split(":")[0]) for e in trail}
    assert ("cluster.register", "local", "api") in seen
    assert ("app.create", "audited", "api") in seen
    assert ("app.sync", "audited", "api") in seen
    assert ("operation.succeeded", "audited", "api") in seen  # the person's sync, and its outcome
    assert ("app.refresh", "audited", "webhook") in seen
    assert [e["at"] for e in trail] == sorted((e["at"] for e in trail), reverse=True)
    leaking = [e for e in trail if world.kube.token in json.dumps(e) or "kubeconfig:" in json.dumps(e)]
    assert not leaking, leaking
    status, answer = world.call("GET", "/api/v1/audit?date=yesterday")
    assert status == 400 and "YYYY-MM-DD" in answer["problems"][0]


def test_rollback_reapplies_a_recorded_revision_of_a_manual_app(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = _repo(world, "rollback", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.26")})
    world.api_ok("POST", "/api/v1/applications", application("rollback", repo, server, automated=False,
                                                              path="app", namespace="rollback"))
    world.api_ok("POST", "/api/v1/applications/rollback/sync")
    world.settle()
    world.until("v1 synced", synced_healthy(world, "rollback"))
    first = world.status("rollback")["sync"]["revision"]
    world.git.commit("rollback", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27")}, "v2")
    world.api_ok("POST", "/api/v1/applications/rollback/sync")
    world.settle()
    world.until("v2 synced", lambda: world.deployment("rollback", "guestbook-ui").spec.template.spec.containers[0].image == "nginx:1.27")
    history = world.api_ok("GET", "/api/v1/applications/rollback/history")["items"]
    assert [h["id"] for h in history] == [1, 2] and history[0]["revision"] == first

    answer = world.api_ok("POST", "/api/v1/applications/rollback/rollback/1")
    assert answer["revision"] == first
    world.settle()
    world.until("rolled back", lambda: world.deployment("rollback", "guestbook-ui").spec.template.spec.containers[0].image == "nginx:1.26")
    history = world.api_ok("GET", "/api/v1/applications/rollback/history")["items"]
    assert history[-1]["revision"] == first and len(history) == 3
    # The app now differs from the tracked branch head: OutOfSync, as in Argo CD after a rollback.
    world.tick()
    assert world.status("rollback")["sync"]["status"] == "OutOfSync"
    # The rollback's own health re-checks (2 s, then 5 s after it) compare the rolled-back
    # revision: arriving after the tick's comparison of the branch head, they must not turn the
    # app back to Synced (they once did, now and then, under load).
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        world.settle()
        assert world.status("rollback")["sync"]["status"] == "OutOfSync"
        time.sleep(0.5)


def test_rollback_is_refused_while_auto_sync_is_on(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = _repo(world, "autoroll")
    world.api_ok("POST", "/api/v1/applications", application("autoroll", repo, server, automated=True,
                                                              path="app", namespace="autoroll"))
    status, answer = world.call("POST", "/api/v1/applications/autoroll/rollback/1",
                                headers={"Authorization": f"Bearer {world.api_token}"})
    assert status == 400 and "auto-sync" in answer["problems"][0]


def test_cluster_registration_checks_the_kubeconfig_reaches_the_cluster(world: LocalWorld) -> None:
    import yaml

    world.register_cluster("local")
    clusters = {c["name"]: c for c in world.api_ok("GET", "/api/v1/clusters")["items"]}
    assert clusters["local"]["serverVersion"].startswith("v1.")
    assert "kubeconfig" not in clusters["local"]
    broken = yaml.safe_load(open(world.kube.kubeconfig_path).read())
    broken["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens there
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "nowhere", "kubeconfig": yaml.safe_dump(broken)},
                                headers={"Authorization": f"Bearer {world.api_token}"})
    assert status == 400, answer
    assert answer["problems"][0].startswith("kubeconfig: cannot reach")
    assert world.kube.token not in json.dumps(answer)
    assert "nowhere" not in {c["name"] for c in world.api_ok("GET", "/api/v1/clusters")["items"]}
