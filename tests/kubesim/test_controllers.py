"""Simulated controllers: what gitferry's health rules will read must look like a real cluster's.

Driven through the real Store with a paused Clock, so every step is deterministic:
time only moves when a test calls ``clock.advance``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from local.kubesim.clock import Clock, format_rfc3339, parse_rfc3339
from local.kubesim.controllers import (
    NODE_NAME,
    Controllers,
    PlanContext,
    image_failure,
    plan_deployment,
    pod_status,
    template_hash,
)
from local.kubesim.tables import to_table

T0 = 1_800_000_000.0  # a whole second, so creationTimestamps are exact


# ---------------------------------------------------------------- clock

def test_clock_paused_advance_both_ways_and_resume() -> None:
    clock = Clock(start=T0, paused=True)
    assert clock.now() == T0 and clock.paused
    time.sleep(0.02)
    assert clock.now() == T0  # frozen
    clock.advance(2.5)
    assert clock.now() == T0 + 2.5
    clock.advance(-1.5)
    assert clock.now() == T0 + 1
    assert clock.rfc3339() == format_rfc3339(T0 + 1) and clock.rfc3339(T0).endswith("Z")
    assert parse_rfc3339(clock.rfc3339(T0)) == T0
    clock.resume()
    time.sleep(0.05)
    assert T0 + 1 < clock.now() < T0 + 2  # follows real time from where it was, no jump
    clock.advance(100)
    assert clock.now() > T0 + 100
    clock.pause()
    frozen = clock.now()
    time.sleep(0.02)
    assert clock.now() == frozen


def test_clock_is_thread_safe() -> None:
    clock = Clock(start=0.0, paused=True)

    def bump() -> None:
        for _ in range(1000):
            clock.advance(1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == 4000


# ---------------------------------------------------------------- pure planners

def _pod(image: str, *, owner_kind: str = "ReplicaSet", restart: str = "Always") -> dict[str, Any]:
    return {"metadata": {"name": "p-abcde", "namespace": "default", "uid": "u1",
                         "ownerReferences": [{"kind": owner_kind, "name": "o", "uid": "o1", "controller": True}]},
            "spec": {"nodeName": NODE_NAME, "restartPolicy": restart, "containers": [{"name": "app", "image": image}]}}


def _waiting(status: dict[str, Any]) -> str | None:
    return (status["containerStatuses"][0]["state"].get("waiting") or {}).get("reason")


def _ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])


def test_pod_status_timeline_normal_image() -> None:
    fail = image_failure
    s = pod_status(_pod("nginx:1.27"), T0 + 0.5, T0, fail, "10.244.0.2")
    assert s["phase"] == "Pending" and _waiting(s) == "ContainerCreating" and "podIP" not in s
    s = pod_status(_pod("nginx:1.27"), T0 + 1.5, T0, fail, "10.244.0.2")
    assert s["phase"] == "Running" and not _ready(s) and s["podIP"] == "10.244.0.2"
    s = pod_status(_pod("nginx:1.27"), T0 + 2, T0, fail, "10.244.0.2")
    assert s["phase"] == "Running" and _ready(s)
    assert [c["type"] for c in s["conditions"]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                    "ContainersReady", "PodScheduled"]
    assert all(c["status"] == "True" for c in s["conditions"])
    assert s["containerStatuses"][0]["ready"] is True and s["containerStatuses"][0]["started"] is True


@pytest.mark.parametrize("image", ["registry.example/app:ImagePullBackOff", "errImagePull/x:1", "ERRIMAGEPULL"])
def test_pod_status_image_pull_failures(image: str) -> None:
    assert _waiting(pod_status(_pod(image), T0 + 1.5, T0, image_failure, "ip")) == "ErrImagePull"
    later = pod_status(_pod(image), T0 + 60, T0, image_failure, "ip")
    assert _waiting(later) == "ImagePullBackOff" and later["phase"] == "Pending" and not _ready(later)


def test_pod_status_crashloop_and_neverready() -> None:
    s = pod_status(_pod("app:crashloop"), T0 + 30, T0, image_failure, "ip")
    cs = s["containerStatuses"][0]
    assert _waiting(s) == "CrashLoopBackOff" and cs["restartCount"] > 0 and s["phase"] == "Running"
    assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["lastState"]["terminated"]["reason"] == "Error"
    assert pod_status(_pod("app:crashloop"), T0 + 300, T0, image_failure, "ip")["containerStatuses"][0][
        "restartCount"] > cs["restartCount"]
    s = pod_status(_pod("NeverReady:1"), T0 + 500, T0, image_failure, "ip")
    assert s["phase"] == "Running" and not _ready(s) and "running" in s["containerStatuses"][0]["state"]


def test_job_pod_succeeds_or_fails() -> None:
    ok = pod_status(_pod("migrate:1", owner_kind="Job", restart="Never"), T0 + 2, T0, image_failure, "ip")
    assert ok["phase"] == "Succeeded"
    assert ok["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    bad = pod_status(_pod("will-FAIL:1", owner_kind="Job", restart="OnFailure"), T0 + 2, T0, image_failure, "ip")
    assert bad["phase"] == "Failed" and bad["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    running = pod_status(_pod("migrate:1", owner_kind="Job", restart="Never"), T0 + 1.2, T0, image_failure, "ip")
    assert running["phase"] == "Running"


def test_template_hash_is_stable_and_ignores_its_own_label() -> None:
    tpl = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": "zzz"}},
                "spec": {"containers": [{"name": "a", "image": "x"}]}}
    assert template_hash(tpl) == template_hash(labelled)
    other = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "y"}]}}
    assert template_hash(tpl) != template_hash(other)
    assert template_hash(tpl, 1) != template_hash(tpl)
    assert set(template_hash(tpl)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_plan_deployment_creates_replicaset_with_owner_and_revision() -> None:
    dep = {"metadata": {"name": "web", "namespace": "default", "uid": "dep-uid", "generation": 1},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    writes = plan_deployment(dep, [], PlanContext(now=T0))
    create = next(w for w in writes if w.op == "create")
    rs = create.obj
    assert rs is not None
    h = template_hash(dep["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"]["pod-template-hash"] == h
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == h
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                  "uid": "dep-uid", "controller": True, "blockOwnerDeletion": True}]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["spec"]["replicas"] == 2
    status = next(w for w in writes if w.op == "status").obj
    assert status is not None
    progressing = next(c for c in status["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "NewReplicaSetCreated"
    assert progressing["message"] == f'Created new replica set "web-{h}"'


# ---------------------------------------------------------------- through the real Store

@pytest.fixture()
def sim() -> Any:
    store_mod = pytest.importorskip("local.kubesim.store", reason="store.py (and its ssa.py) not importable yet")
    from local.kubesim.schema import Schemas

    clock = Clock(start=T0, paused=True)
    store = store_mod.Store(_schemas(Schemas), clock)
    return Sim(store, clock, Controllers(store, clock))


_SCHEMAS: list[Any] = []


def _schemas(cls: Any) -> Any:
    if not _SCHEMAS:
        _SCHEMAS.append(cls())
    return _SCHEMAS[0]


class Sim:
    """Test helpers over one Store + Clock + Controllers."""

    def __init__(self, store: Any, clock: Clock, controllers: Controllers) -> None:
        self.store, self.clock, self.controllers = store, clock, controllers

    def rt(self, group: str, kind: str) -> Any:
        rt = self.store.types.by_group_kind(group, kind)
        assert rt is not None, kind
        return rt

    def create(self, group: str, kind: str, obj: dict[str, Any], ns: str | None = "default") -> dict[str, Any]:
        return self.store.create(self.rt(group, kind), ns, obj, manager="kubectl")

    def get(self, group: str, kind: str, name: str, ns: str | None = "default") -> dict[str, Any]:
        return self.store.get(self.rt(group, kind), ns, name)

    def items(self, group: str, kind: str, ns: str | None = "default") -> list[dict[str, Any]]:
        return self.store.list(self.rt(group, kind), ns)[0]

    def step(self, seconds: float = 0.0) -> int:
        """Advance the clock, reconcile, and check the pass was idempotent (a second one writes nothing)."""
        if seconds:
            self.clock.advance(seconds)
        writes = self.controllers.reconcile()
        rv = self.store.resource_version
        assert self.controllers.reconcile() == 0
        assert self.store.resource_version == rv, "a second reconcile at the same time changed objects"
        return writes


def deployment(name: str = "web", image: str = "nginx:1.27", replicas: int = 1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}, **spec}}


def cond(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype]
    assert found, f"no {ctype} condition in {obj.get('status')}"
    return found[0]


def test_rollout_step_by_step(sim: Sim) -> None:
    sim.create("apps", "Deployment", deployment(replicas=2))
    assert sim.step() > 0
    dep = sim.get("apps", "Deployment", "web")
    [rs] = sim.items("apps", "ReplicaSet")
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}"
    ref = rs["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "Deployment", dep["metadata"]["uid"], True, True)
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    pods = sim.items("", "Pod")
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"web-{h}-") and len(pod["metadata"]["name"]) == len(f"web-{h}-") + 5
        assert pod["metadata"]["labels"]["pod-template-hash"] == h
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["status"]["phase"] == "Pending"
    assert dep["status"]["observedGeneration"] == 1
    assert cond(dep, "Available")["status"] == "False"
    assert cond(dep, "Available")["reason"] == "MinimumReplicasUnavailable"

    sim.step(1)
    dep = sim.get("apps", "Deployment", "web")
    assert all(p["status"]["phase"] == "Running" and p["status"]["podIP"] for p in sim.items("", "Pod"))
    assert not any(c["type"] == "Ready" and c["status"] == "True" for p in sim.items("", "Pod")
                   for c in p["status"]["conditions"])
    assert cond(dep, "Available")["status"] == "False"
    assert dep["status"].get("readyReplicas", 0) == 0

    sim.step(2)
    dep = sim.get("apps", "Deployment", "web")
    assert cond(dep, "Available")["status"] == "True"
    assert cond(dep, "Available")["reason"] == "MinimumReplicasAvailable"
    progressing = cond(dep, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    assert progressing["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    st = dep["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (2, 2, 2, 2)
    assert "unavailableReplicas" not in st
    [rs] = sim.items("apps", "ReplicaSet")
    assert rs["status"] == {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
                            "observedGeneration": 1}
    assert [c["type"] for c in dep["status"]["conditions"]] == ["Available", "Progressing"]
    # status writes went through the status subresource as kube-controller-manager
    managers = {(m.get("manager"), m.get("subresource")) for m in dep["metadata"].get("managedFields") or []}
    if managers:
        assert ("kube-controller-manager", "status") in managers


def test_new_image_rolls_to_new_replicaset_and_scales_old_to_zero(sim: Sim) -> None:
    sim.create("apps", "Deployment", deployment(replicas=3))
    sim.step()
    sim.step(3)
    old_rs = sim.items("apps", "ReplicaSet")[0]["metadata"]["name"]
    dep = sim.get("apps", "Deployment", "web")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    sim.store.update(sim.rt("apps", "Deployment"), "default", "web", dep, manager="kubectl")
    sim.step()
    dep = sim.get("apps", "Deployment", "web")
    assert dep["status"]["observedGeneration"] == 2
    assert cond(dep, "Progressing")["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")
    for _ in range(10):
        sim.step(2)
    rses = {rs["metadata"]["name"]: rs for rs in sim.items("apps", "ReplicaSet")}
    assert len(rses) == 2
    new_name = next(n for n in rses if n != old_rs)
    assert rses[old_rs]["spec"]["replicas"] == 0 and rses[new_name]["spec"]["replicas"] == 3
    assert rses[new_name]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = sim.items("", "Pod")
    assert len(pods) == 3 and all(p["metadata"]["name"].startswith(new_name + "-") for p in pods)
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)
    dep = sim.get("apps", "Deployment", "web")
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert cond(dep, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert (dep["status"]["updatedReplicas"], dep["status"]["availableReplicas"]) == (3, 3)


def test_rolling_update_respects_max_surge_and_unavailable(sim: Sim) -> None:
    sim.create("apps", "Deployment", deployment(replicas=4, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    sim.step()
    sim.step(3)
    dep = sim.get("apps", "Deployment", "web")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    sim.store.update(sim.rt("apps", "Deployment"), "default", "web", dep, manager="kubectl")
    for _ in range(12):
        sim.step(1)
        rses = sim.items("apps", "ReplicaSet")
        total = sum(rs["spec"]["replicas"] for rs in rses)
        available = sum(rs["status"].get("availableReplicas", 0) for rs in rses)
        assert total <= 5, "more than replicas + maxSurge pods"
        assert available >= 4, "fewer than replicas - maxUnavailable available"
    assert cond(sim.get("apps", "Deployment", "web"), "Progressing")["reason"] == "NewReplicaSetAvailable"


@pytest.mark.parametrize(("image", "reasons"), [
    ("example/app:ImagePullBackOff", ("ErrImagePull", "ImagePullBackOff")),
    ("example/crashloop:1", ("CrashLoopBackOff", "CrashLoopBackOff")),
])
def test_image_failures_through_the_store(sim: Sim, image: str, reasons: tuple[str, str]) -> None:
    sim.create("apps", "Deployment", deployment(image=image))
    sim.step()
    sim.step(2)
    [pod] = sim.items("", "Pod")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == reasons[0]
    sim.step(30)
    [pod] = sim.items("", "Pod")
    cs = pod["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == reasons[1] and cs["ready"] is False
    if reasons[1] == "CrashLoopBackOff":
        assert cs["restartCount"] > 0
        assert cs["lastState"]["terminated"]["exitCode"] == 1 and cs["lastState"]["terminated"]["reason"] == "Error"
    assert cond(sim.get("apps", "Deployment", "web"), "Available")["status"] == "False"
    row = to_table(sim.rt("", "Pod"), [pod], now=sim.clock.now())["rows"][0]["cells"]
    assert row[1:3] == ["0/1", reasons[1]]


def test_fail_image_knob_and_clear(sim: Sim) -> None:
    sim.controllers.fail_image("nginx:9", "NeverReady")
    with pytest.raises(ValueError):
        sim.controllers.fail_image("x", "Broken")
    sim.create("apps", "Deployment", deployment(image="docker.io/NGINX:9.0"))
    sim.step()
    sim.step(10)
    [pod] = sim.items("", "Pod")
    assert pod["status"]["phase"] == "Running" and cond(pod, "Ready")["status"] == "False"
    sim.controllers.clear_failures()
    assert sim.controllers.failure_for("docker.io/NGINX:9.0") is None


def test_progress_deadline_exceeded(sim: Sim) -> None:
    sim.create("apps", "Deployment", deployment(image="app:NeverReady", progressDeadlineSeconds=10))
    sim.step()
    sim.step(5)
    assert cond(sim.get("apps", "Deployment", "web"), "Progressing")["status"] == "True"
    sim.step(6)
    progressing = cond(sim.get("apps", "Deployment", "web"), "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"].endswith("has timed out progressing.")
    sim.step(100)
    assert cond(sim.get("apps", "Deployment", "web"), "Progressing")["reason"] == "ProgressDeadlineExceeded"


def test_paused_deployment_does_not_roll_out(sim: Sim) -> None:
    sim.create("apps", "Deployment", deployment())
    sim.step()
    sim.step(3)
    dep = sim.get("apps", "Deployment", "web")
    dep["spec"]["paused"] = True
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    sim.store.update(sim.rt("apps", "Deployment"), "default", "web", dep, manager="kubectl")
    sim.step(5)
    assert len(sim.items("apps", "ReplicaSet")) == 1
    progressing = cond(sim.get("apps", "Deployment", "web"), "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")
    dep = sim.get("apps", "Deployment", "web")
    dep["spec"]["paused"] = False
    sim.store.update(sim.rt("apps", "Deployment"), "default", "web", dep, manager="kubectl")
    sim.step()
    assert len(sim.items("apps", "ReplicaSet")) == 2
    for _ in range(5):
        sim.step(2)
    assert cond(sim.get("apps", "Deployment", "web"), "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_zero_replicas_and_scale_down(sim: Sim) -> None:
    sim.create("apps", "Deployment", deployment(replicas=0))
    sim.step()
    dep = sim.get("apps", "Deployment", "web")
    assert sim.items("", "Pod") == []
    assert cond(dep, "Available")["status"] == "True"
    assert cond(dep, "Progressing")["reason"] == "NewReplicaSetAvailable"
    dep["spec"]["replicas"] = 3
    sim.store.update(sim.rt("apps", "Deployment"), "default", "web", dep, manager="kubectl")
    sim.step()
    sim.step(3)
    assert len(sim.items("", "Pod")) == 3
    dep = sim.get("apps", "Deployment", "web")
    dep["spec"]["replicas"] = 1
    sim.store.update(sim.rt("apps", "Deployment"), "default", "web", dep, manager="kubectl")
    sim.step()
    assert len(sim.items("", "Pod")) == 1
    [rs] = sim.items("apps", "ReplicaSet")
    assert rs["spec"]["replicas"] == 1 and rs["status"]["replicas"] == 1


def test_job_completes_and_fails(sim: Sim) -> None:
    def job(name: str, image: str, **spec: Any) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": image}]}}, **spec}}

    sim.create("batch", "Job", job("ok", "migrate:1"))
    sim.create("batch", "Job", job("bad", "tool:fail", backoffLimit=1))
    sim.step()
    ok = sim.get("batch", "Job", "ok")
    assert ok["status"]["active"] == 1 and ok["status"]["startTime"]
    for _ in range(4):
        sim.step(2)
    ok = sim.get("batch", "Job", "ok")
    assert [c["type"] for c in ok["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert ok["status"]["succeeded"] == 1 and ok["status"]["completionTime"]
    bad = sim.get("batch", "Job", "bad")
    assert [c["type"] for c in bad["status"]["conditions"]] == ["FailureTarget", "Failed"]
    assert cond(bad, "Failed")["reason"] == "BackoffLimitExceeded" and bad["status"]["failed"] == 2
    assert "completionTime" not in bad["status"]
    table = to_table(sim.rt("batch", "Job"), [ok, bad], now=sim.clock.now())
    assert [r["cells"][1] for r in table["rows"]] == ["Complete", "Failed"]


def test_statefulset_ordered_pods_and_status(sim: Sim) -> None:
    sim.create("apps", "StatefulSet", {"metadata": {"name": "db"}, "spec": {
        "replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "pg"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})
    sim.step()
    assert [p["metadata"]["name"] for p in sim.items("", "Pod")] == ["db-0"]  # ordered: db-1 waits for db-0
    for _ in range(4):
        sim.step(2)
    assert [p["metadata"]["name"] for p in sim.items("", "Pod")] == ["db-0", "db-1"]
    sts = sim.get("apps", "StatefulSet", "db")
    st = sts["status"]
    assert (st["replicas"], st["readyReplicas"], st["currentReplicas"], st["updatedReplicas"],
            st["availableReplicas"]) == (2, 2, 2, 2, 2)
    assert st["currentRevision"] == st["updateRevision"] and st["observedGeneration"] == 1
    pvc = sim.get("", "PersistentVolumeClaim", "data-db-0")
    assert pvc["status"]["phase"] == "Bound" and pvc["status"]["capacity"] == {"storage": "1Gi"}


def test_daemonset_pvc_service_ingress_namespace(sim: Sim) -> None:
    sim.create("apps", "DaemonSet", {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "ag"}]}}}})
    sim.create("", "PersistentVolumeClaim", {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}})
    sim.create("", "Service", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "selector": {"a": "b"},
                                                                    "ports": [{"port": 80}]}})
    sim.create("networking.k8s.io", "Ingress", {"metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.example"}]}})
    sim.create("", "Namespace", {"metadata": {"name": "team"}}, ns=None)
    sim.step()
    sim.step(3)
    ds = sim.get("apps", "DaemonSet", "agent")["status"]
    assert (ds["desiredNumberScheduled"], ds["currentNumberScheduled"], ds["numberReady"], ds["numberAvailable"],
            ds["updatedNumberScheduled"], ds["numberMisscheduled"]) == (1, 1, 1, 1, 1, 0)
    pvc = sim.get("", "PersistentVolumeClaim", "data")
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"].startswith("pvc-")
    assert pvc["status"]["capacity"] == {"storage": "5Gi"} and pvc["spec"]["storageClassName"] == "standard"
    lb_ip = sim.get("", "Service", "lb")["status"]["loadBalancer"]["ingress"][0]["ip"]
    ing_ip = sim.get("networking.k8s.io", "Ingress", "web")["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert lb_ip.startswith("192.0.2.") and ing_ip.startswith("192.0.2.") and lb_ip != ing_ip
    assert sim.get("", "Namespace", "team", ns=None)["status"]["phase"] == "Active"


# ---------------------------------------------------------------- through the real server

def test_server_background_controllers_follow_the_paused_clock() -> None:
    """The server's 50 ms controller loop with a paused clock: nothing happens until time moves."""
    from kubernetes import client, config

    from local.kubesim.server import KubeSim

    clock = Clock(start=T0, paused=True)
    with KubeSim(clock=clock) as ks:
        api_client = config.new_client_from_config(config_file=ks.kubeconfig_path)
        try:
            apps = client.AppsV1Api(api_client)
            apps.create_namespaced_deployment("default", deployment("srv", image="nginx:1.27", replicas=2))

            def available() -> str:
                dep = apps.read_namespaced_deployment("srv", "default")
                conds = {c.type: c.status for c in dep.status.conditions or []}
                return conds.get("Available", "")

            deadline = time.monotonic() + 10
            while available() != "False" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert available() == "False"
            time.sleep(0.3)  # several loop iterations at a frozen time: still not available
            assert available() == "False"
            clock.advance(2)
            while available() != "True" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert available() == "True"
            dep = apps.read_namespaced_deployment("srv", "default")
            assert (dep.status.ready_replicas, dep.status.updated_replicas, dep.status.observed_generation) == (2, 2, 1)
            # a frozen, converged cluster makes no more writes (no watch noise)
            rv = ks.store.resource_version
            time.sleep(0.3)
            assert ks.store.resource_version == rv
            # kubectl's Table request: the real Deployment columns and cells
            resp = api_client.rest_client.request(
                "GET", f"{ks.url}/apis/apps/v1/namespaces/default/deployments",
                headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
                         "Authorization": f"Bearer {ks.token}"})
            resp.read()
            table = json.loads(resp.data)
            assert [c["name"] for c in table["columnDefinitions"]][:5] == ["Name", "Ready", "Up-to-date",
                                                                           "Available", "Age"]
            assert table["rows"][0]["cells"][:5] == ["srv", "2/2", 2, 2, "2s"]
            assert ks.background_errors == []
        finally:
            api_client.close()
