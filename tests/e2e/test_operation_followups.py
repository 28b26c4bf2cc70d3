"""Operations that always finish, in seconds, at the template's real 60 s poll interval.

The world ticks the poll only at its scheduled times (``LocalWorld(real_schedule=True)``), so
what moves an operation on between ticks is its own follow-up (the wait inside apply, the
FollowUpQueue), never the poll. Each test counts the poll ticks that happened: an operation
that needed the poll to go on would show it. Fixtures are Git repositories served by the
local git server, in the shapes Argo CD's examples use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import yaml

from local.story import DEPLOYMENT, LocalWorld, application, synced_healthy


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(real_schedule=True) as w:
        w.register_cluster("local")
        yield w


def _job(name: str, *, wave: int | None = None, hook: str | None = None, delete_policy: str | None = None,
         image: str = "busybox:1.36", generate_name: bool = False) -> str:
    annotations: dict[str, str] = {}
    if wave is not None:
        annotations["argocd.argoproj.io/sync-wave"] = str(wave)
    if hook is not None:
        annotations["argocd.argoproj.io/hook"] = hook
    if delete_policy is not None:
        annotations["argocd.argoproj.io/hook-delete-policy"] = delete_policy
    meta: dict[str, Any] = {"generateName": f"{name}-"} if generate_name else {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return yaml.safe_dump({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": name, "image": image, "command": ["sh", "-c", "sleep 2"]}]}}},
    }, sort_keys=False)


def _deployment(name: str, wave: int) -> str:
    doc = yaml.safe_load(DEPLOYMENT.format(replicas=1, image="nginx:1.27").replace("guestbook-ui", name))
    doc["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return yaml.safe_dump(doc, sort_keys=False)


def _service(name: str, wave: int) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80}]},
    }, sort_keys=False)


def _create(world: LocalWorld, name: str, files: dict[str, str], **policy: Any) -> None:
    repo = world.git.make_repo(name, files)
    manifest = yaml.safe_load(application(name, repo, world.kube.url, automated=True, path="app", namespace=name))
    manifest["spec"]["syncPolicy"].update(policy)
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(manifest))


def _operation(world: LocalWorld, name: str) -> dict[str, Any]:
    return world.status(name).get("operationState") or {}


def _ended(world: LocalWorld, name: str) -> bool:
    return _operation(world, name).get("phase") in ("Succeeded", "Failed", "Error")


def _jobs(world: LocalWorld, namespace: str) -> list[Any]:
    from kubernetes import client

    return list(client.BatchV1Api(world.k8s).list_namespaced_job(namespace).items)


def test_waves_of_jobs_deployments_and_services_end_succeeded_without_the_poll(world: LocalWorld) -> None:
    ticks = world.poll_ticks
    _create(world, "waves", {
        "app/00-migrate.yaml": _job("migrate", wave=-1),
        "app/10-backend.yaml": _deployment("backend", 0),
        "app/11-backend-svc.yaml": _service("backend", 0),
        "app/20-seed.yaml": _job("seed", wave=1),
        "app/30-frontend.yaml": _deployment("frontend", 2),
        "app/31-frontend-svc.yaml": _service("frontend", 2),
    })
    world.until("waves operation ended", lambda: _ended(world, "waves"), timeout=120)
    op = _operation(world, "waves")
    assert op["phase"] == "Succeeded", op
    names = {r["kind"] + "/" + r["name"]: r["status"] for r in op["syncResult"]["resources"]}
    assert {k: names.get(k) for k in ("Job/migrate", "Deployment/backend", "Service/backend", "Job/seed",
                                      "Deployment/frontend", "Service/frontend")} == dict.fromkeys(
        ("Job/migrate", "Deployment/backend", "Service/backend", "Job/seed", "Deployment/frontend",
         "Service/frontend"), "Synced")
    # Each wave was applied only after the one before it was healthy: the seed Job (wave 1) was
    # created after the migrate Job (wave -1) had completed.
    jobs = {j.metadata.name: j for j in _jobs(world, "waves")}
    assert jobs["seed"].metadata.creation_timestamp >= jobs["migrate"].status.completion_time
    assert world.poll_ticks == ticks, "the operation needed the poll to go on"
    assert len(world.api_ok("GET", "/api/v1/applications/waves/history")["items"]) == 1
    world.until("Healthy shown", synced_healthy(world, "waves"), timeout=60)
    assert world.poll_ticks == ticks, "health after the sync waited for the poll"


def test_postsync_hook_with_hook_succeeded_policy_ends_succeeded_and_is_deleted(world: LocalWorld) -> None:
    ticks = world.poll_ticks
    _create(world, "posthook", {
        "app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
        "app/smoke.yaml": _job("smoke-test", hook="PostSync", delete_policy="HookSucceeded"),
    })
    world.until("posthook operation ended", lambda: _ended(world, "posthook"), timeout=120)
    op = _operation(world, "posthook")
    assert op["phase"] == "Succeeded", op
    assert any(r["kind"] == "Job" and r["name"] == "smoke-test" for r in op["syncResult"]["resources"]), op
    assert len(world.api_ok("GET", "/api/v1/applications/posthook/history")["items"]) == 1
    assert [j.metadata.name for j in _jobs(world, "posthook")] == []  # HookSucceeded: deleted
    assert world.poll_ticks == ticks, "the hook was awaited by the poll, not by the operation"
    # Nothing left behind to follow: no follow-up pending for an operation that ended.
    assert world.orphaned_operations() == []


def test_presync_hook_with_generate_name_runs_before_the_sync(world: LocalWorld) -> None:
    ticks = world.poll_ticks
    _create(world, "genname", {
        "app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
        "app/presync.yaml": _job("db-migrate", hook="PreSync", generate_name=True),
    })
    world.until("genname operation ended", lambda: _ended(world, "genname"), timeout=120)
    op = _operation(world, "genname")
    assert op["phase"] == "Succeeded", op
    jobs = [j for j in _jobs(world, "genname") if j.metadata.name.startswith("db-migrate-")]
    assert len(jobs) == 1 and len(jobs[0].metadata.name) > len("db-migrate-"), [j.metadata.name for j in jobs]
    # PreSync ran first: the Deployment was created after the hook completed.
    deployment = world.deployment("genname", "guestbook-ui")
    assert deployment.metadata.creation_timestamp >= jobs[0].status.completion_time
    assert world.poll_ticks == ticks


def _audit(world: LocalWorld, app: str, action: str) -> list[datetime]:
    items = world.api_ok("GET", "/api/v1/audit")["items"]
    return sorted(datetime.fromisoformat(e["at"]) for e in items if e["target"] == app and e["action"] == action)


def test_a_retry_waits_its_30s_backoff_and_runs_soon_after(world: LocalWorld) -> None:
    _create(world, "backoff", {"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n"},
            retry={"limit": 1, "backoff": {"duration": "30s", "factor": 1, "maxDuration": "30s"}})
    world.until("first attempt failed", lambda: bool(_audit(world, "backoff", "operation.attempt-failed")),
                timeout=60)
    op = _operation(world, "backoff")
    assert op["phase"] == "Running" and "Retrying attempt #1" in op["message"], op
    world.until("retries exhausted", lambda: _operation(world, "backoff").get("phase") == "Failed", timeout=120)
    first, = _audit(world, "backoff", "operation.attempt-failed")
    last, = _audit(world, "backoff", "operation.failed")
    gap = (last - first).total_seconds()
    # Not before its backoff, and within a few seconds after it (the poll's 60 s tick would be
    # later, a retry that ignores the backoff earlier). A wide margin: behaviour, not speed.
    assert 30 <= gap < 45, gap
    assert _operation(world, "backoff")["retryCount"] == 1


def test_a_failing_hook_fails_the_operation_naming_the_hook(world: LocalWorld) -> None:
    world.tick()  # a whole 60 s poll interval ahead: the operation must end within it, by follow-ups
    ticks = world.poll_ticks
    _create(world, "badhook", {
        "app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
        "app/check.yaml": _job("post-check", hook="PostSync", image="busybox-fail:1.36"),
    })
    world.until("badhook operation ended", lambda: _ended(world, "badhook"), timeout=120)
    op = _operation(world, "badhook")
    assert op["phase"] == "Failed", op
    assert "post-check" in op["message"] and "hook" in op["message"], op["message"]
    assert world.api_ok("GET", "/api/v1/applications/badhook/history")["items"] == []
    assert world.poll_ticks == ticks


def test_self_heal_against_another_controller_backs_off(world: LocalWorld) -> None:
    _create(world, "fight", {"app/deploy.yaml": DEPLOYMENT.format(replicas=2, image="nginx:1.27")},
            automated={"prune": True, "selfHeal": True})
    world.until("fight synced", synced_healthy(world, "fight"), timeout=60)
    stop = threading.Event()

    def other_controller() -> None:  # keeps scaling the Deployment back to 1
        while not stop.is_set():
            try:
                if world.deployment("fight", "guestbook-ui").spec.replicas != 1:
                    world.scale("fight", "guestbook-ui", 1)
            except Exception:  # noqa: BLE001 - a conflict with gitferry's apply: try again
                pass
            stop.wait(0.3)

    fighter = threading.Thread(target=other_controller, daemon=True)
    fighter.start()
    # gitferry does not watch the cluster: the first drift is seen at a refresh (here asked for
    # through the API, as a person or the drift check would); the follow-ups see the rest.
    world.until("the other controller scaled", lambda: world.deployment("fight", "guestbook-ui").spec.replicas == 1,
                timeout=30, tick=False)
    world.api_ok("POST", "/api/v1/applications/fight/refresh")
    try:
        world.until("four self-heals", lambda: len(_audit(world, "fight", "operation.succeeded")) >= 5,
                    timeout=90)
    finally:
        stop.set()
        fighter.join(timeout=5)
    heals = _audit(world, "fight", "operation.succeeded")[1:]  # the first is the initial sync
    gaps = [(b - a).total_seconds() for a, b in zip(heals, heals[1:], strict=False)]
    # Argo CD's self-heal backoff: 5 s, 10 s, 20 s ... between self-heals of the same app; a hot
    # loop would heal every second or so, a fixed backoff every 5 s. Each gap is at least its
    # backoff (a slow machine only lengthens a gap, and the next backoff counts from the late heal,
    # so the gaps need not be sorted).
    assert len(gaps) >= 3, gaps
    assert all(g >= 0.9 * 5 * 2 ** i for i, g in enumerate(gaps)), gaps


def test_an_operation_whose_result_cannot_be_recorded_ends_and_gives_its_lease_back(world: LocalWorld) -> None:
    # 1,200 objects with long names: the operation's result is larger than a status item may be.
    files = {f"app/cm-{i}.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i:05d}-{'x' * 240}\n"
                                 "data:\n  k: v\n" for i in range(1200)}
    _create(world, "huge", files)
    world.until("huge operation ended", lambda: _ended(world, "huge"), timeout=300)
    op = _operation(world, "huge")
    if op["phase"] == "Error":  # recorded as a small Error operation saying why
        assert "could not be recorded" in op["message"] and "too large" in op["message"], op["message"]
    else:  # a state store that can hold it records the sync itself
        assert op["phase"] == "Succeeded", op
    ddb = world.stack.resources.client("dynamodb")
    lease = ddb.get_item(TableName=world.stack.resources.tables["StateTable"],
                         Key={"pk": {"S": "APP#huge"}, "sk": {"S": "OPERATION"}}, ConsistentRead=True).get("Item")
    assert lease is None  # given back
    assert world.stack.queue_depth("ApplyDeadLetterQueue") == 0


def test_a_duplicate_follow_up_delivery_does_nothing(world: LocalWorld) -> None:
    _create(world, "dupe", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                            "app/late.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n"
                                             "  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n"})
    world.until("dupe operation ended", lambda: _ended(world, "dupe"), timeout=120)
    before = _operation(world, "dupe")
    assert before["phase"] == "Succeeded", before
    audit_before = len(world.api_ok("GET", "/api/v1/audit")["items"])
    doc = before["operation"]["sync"]
    request = {"app": "dupe", "commit": doc["revision"], "manifests": doc["manifests"], "prune": True,
               "initiatedBy": "automated", "resumeFrom": [1, 0, 0], "followUp": "a-follow-up-already-carried-out"}
    # Delivered again by the standard queue (at its time), and straight into ApplyQueue.
    n0 = len(world.stack.invocations)
    world.stack.send("FollowUpQueue", {"app": "dupe", "dueAt": 0, "token": "dupe-copy", "apply": request})
    world.stack.send("ApplyQueue", request)
    world.settle()
    after = _operation(world, "dupe")
    assert after == before  # not re-run, not re-opened
    assert len(world.api_ok("GET", "/api/v1/audit")["items"]) == audit_before
    handled = world.stack.invocations[n0:]
    assert {i.function for i in handled} >= {"FollowUpFunction", "ApplyFunction"}
    assert [i.error for i in handled if i.error] == []


def test_the_poll_resumes_an_operation_whose_follow_up_message_was_lost() -> None:
    from kubernetes import client

    # Its own world: the poll ticks every round and re-sends a follow-up 1 s overdue.
    with LocalWorld(followup_grace_seconds=1, sync_wait_seconds=2) as w:
        w.register_cluster("local")
        w.kube.pause_controllers()  # wave 0 cannot become healthy: the operation must wait
        try:
            _create(w, "lost", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                                "app/late.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n"
                                                 "  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n"})
            w.until("waiting at wave 1", lambda: "wave 1" in (_operation(w, "lost").get("message") or ""),
                    tick=False)
            w.stack.resources.client("sqs").purge_queue(QueueUrl=w.stack.resources.queues["FollowUpQueue"].url)
            assert w.stack.queue_depth("FollowUpQueue") == 0  # the follow-up message is lost
        finally:
            w.kube.resume_controllers()
        w.until("resumed by the poll", lambda: _operation(w, "lost").get("phase") == "Succeeded", timeout=90)
        client.CoreV1Api(w.k8s).read_namespaced_config_map("late", "lost")  # wave 1 was applied


def test_the_poll_ends_an_operation_that_nothing_would_finish() -> None:
    with LocalWorld(followup_grace_seconds=1, sync_wait_seconds=2) as w:
        w.register_cluster("local")
        w.kube.pause_controllers()
        try:
            _create(w, "stranded", {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                                    "app/late.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n"
                                                     "  annotations:\n    argocd.argoproj.io/sync-wave: '1'\n"})
            w.until("waiting at wave 1", lambda: "wave 1" in (_operation(w, "stranded").get("message") or ""),
                    tick=False)
            # What a crash between writes would leave: Running, no follow-up, no lease.
            res = w.stack.resources
            res.client("sqs").purge_queue(QueueUrl=res.queues["FollowUpQueue"].url)
            res.client("dynamodb").delete_item(TableName=res.tables["StateTable"],
                                               Key={"pk": {"S": "APP#stranded"}, "sk": {"S": "FOLLOWUP"}})
            w.until("ended by the poll", lambda: _operation(w, "stranded").get("phase") == "Error", timeout=30)
        finally:
            w.kube.resume_controllers()
        assert "interrupted" in _operation(w, "stranded")["message"]
