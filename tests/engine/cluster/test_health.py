"""Health rules of SEMANTICS.md, on objects shaped like real API answers."""

from __future__ import annotations

import json

import pytest
from cluster_objects import deployment_live
from gitferry.health import Health, app_health, missing, resource_health


def status_of(obj: dict) -> str:
    return resource_health(obj).status


# ---- Deployment ------------------------------------------------------------------------------


def test_deployment_rolled_out_is_healthy() -> None:
    assert status_of(deployment_live()) == "Healthy"


def test_deployment_paused_is_suspended() -> None:
    obj = deployment_live()
    obj["spec"]["paused"] = True
    assert resource_health(obj) == Health("Suspended", "Deployment is paused")


def test_deployment_generation_not_observed_is_progressing() -> None:
    obj = deployment_live()
    obj["metadata"]["generation"] = 2
    assert status_of(obj) == "Progressing"


def test_deployment_progress_deadline_exceeded_is_degraded() -> None:
    obj = deployment_live(updatedReplicas=1, availableReplicas=1)
    obj["status"]["conditions"][1] = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                      "message": 'ReplicaSet "web-6f8d" has timed out progressing.'}
    health = resource_health(obj)
    assert health.status == "Degraded" and "progress deadline" in health.message


@pytest.mark.parametrize(
    "status, expected",
    [
        ({"updatedReplicas": 1}, "Progressing"),  # updated < spec.replicas
        ({"replicas": 3, "updatedReplicas": 2}, "Progressing"),  # old replicas pending termination
        ({"availableReplicas": 1}, "Progressing"),  # available < updated
        ({}, "Healthy"),
    ],
)
def test_deployment_rollout_counts(status: dict, expected: str) -> None:
    assert status_of(deployment_live(**status)) == expected


def test_deployment_without_replicas_defaults_to_one() -> None:
    obj = deployment_live(replicas=1)
    del obj["spec"]["replicas"]
    assert status_of(obj) == "Healthy"
    obj["status"]["updatedReplicas"] = 0
    assert status_of(obj) == "Progressing"


# ---- StatefulSet / DaemonSet / ReplicaSet ----------------------------------------------------


def statefulset(**status: object) -> dict:
    base = {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "db-5d8f", "updateRevision": "db-5d8f"}
    base.update(status)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "generation": 1},
            "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}}, "status": base}


def test_statefulset_rules() -> None:
    assert status_of(statefulset()) == "Healthy"
    assert status_of(statefulset(observedGeneration=0)) == "Progressing"
    assert status_of(statefulset(readyReplicas=2)) == "Progressing"
    assert status_of(statefulset(updateRevision="db-7a1c", updatedReplicas=1)) == "Progressing"
    partitioned = statefulset(updateRevision="db-7a1c", updatedReplicas=1)
    partitioned["spec"]["updateStrategy"]["rollingUpdate"] = {"partition": 2}
    assert status_of(partitioned) == "Healthy"  # 1 >= 3 - 2
    partitioned["spec"]["updateStrategy"]["rollingUpdate"] = {"partition": 1}
    assert status_of(partitioned) == "Progressing"  # 1 < 3 - 1
    on_delete = statefulset(updateRevision="db-7a1c")
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert status_of(on_delete) == "Healthy"


def daemonset(**status: object) -> dict:
    base = {"observedGeneration": 4, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3,
            "numberReady": 3, "currentNumberScheduled": 3}
    base.update(status)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "generation": 4},
            "spec": {"updateStrategy": {"type": "RollingUpdate"}}, "status": base}


def test_daemonset_rules() -> None:
    assert status_of(daemonset()) == "Healthy"
    assert status_of(daemonset(observedGeneration=3)) == "Progressing"
    assert status_of(daemonset(updatedNumberScheduled=2)) == "Progressing"
    assert status_of(daemonset(numberAvailable=2)) == "Progressing"
    on_delete = daemonset(updatedNumberScheduled=0)
    on_delete["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert status_of(on_delete) == "Healthy"


def test_replicaset_rules() -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-7c5d", "generation": 1},
          "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 2, "availableReplicas": 2}}
    assert status_of(rs) == "Healthy"
    rs["status"]["availableReplicas"] = 1
    assert status_of(rs) == "Progressing"
    rs["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                   "message": 'pods "web-7c5d-x" is forbidden: exceeded quota'}]
    assert resource_health(rs) == Health("Degraded", 'pods "web-7c5d-x" is forbidden: exceeded quota')


# ---- Pod -------------------------------------------------------------------------------------


def pod(phase: str, restart: str = "Always", ready: bool = False, waiting: str | None = None,
        last_terminated: bool = False) -> dict:
    cs: dict = {"name": "app", "ready": ready, "restartCount": 0, "image": "nginx:1.27", "state": {}}
    if waiting:
        cs["state"] = {"waiting": {"reason": waiting, "message": f"{waiting}: back-off pulling image"}}
    else:
        cs["state"] = {"running": {"startedAt": "2026-11-26T14:02:15Z"}}
    if last_terminated:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "message": "exit 1"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app-1"},
            "spec": {"restartPolicy": restart, "containers": [{"name": "app", "image": "nginx:1.27"}]},
            "status": {"phase": phase, "containerStatuses": [cs],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


@pytest.mark.parametrize(
    "obj, expected",
    [
        (pod("Running", ready=True), "Healthy"),
        (pod("Pending"), "Progressing"),
        (pod("Pending", waiting="ImagePullBackOff"), "Degraded"),
        (pod("Waiting", waiting="ErrImagePull"), "Degraded"),
        (pod("Running", waiting="CrashLoopBackOff"), "Degraded"),
        (pod("Running", waiting="CreateContainerConfigError"), "Degraded"),
        (pod("Pending", restart="Never", waiting="ImagePullBackOff"), "Progressing"),  # only Always
        (pod("Succeeded", restart="Never"), "Healthy"),
        (pod("Failed", restart="Never"), "Degraded"),
        (pod("Running", last_terminated=True), "Degraded"),
        (pod("Running"), "Progressing"),
        (pod("Running", restart="OnFailure", ready=True), "Progressing"),
    ],
)
def test_pod_rules(obj: dict, expected: str) -> None:
    assert status_of(obj) == expected


# ---- Service / Ingress / PVC / Job / HPA / APIService / CRD ----------------------------------


def test_service_and_ingress() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
           "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}
    assert status_of(svc) == "Progressing"
    svc["status"]["loadBalancer"]["ingress"] = [{"hostname": "a1b2.elb.amazonaws.com"}]
    assert status_of(svc) == "Healthy"
    assert status_of({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}, "spec": {"type": "ClusterIP"}}) == "Healthy"
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"}, "status": {"loadBalancer": {}}}
    assert status_of(ing) == "Progressing"
    ing["status"]["loadBalancer"]["ingress"] = [{"ip": "203.0.113.7"}]
    assert status_of(ing) == "Healthy"


@pytest.mark.parametrize("phase, expected", [("Bound", "Healthy"), ("Pending", "Progressing"), ("Lost", "Degraded")])
def test_pvc(phase: str, expected: str) -> None:
    assert status_of({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"},
                      "status": {"phase": phase}}) == expected


def job(*conditions: tuple[str, str]) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}, "spec": {},
            "status": {"conditions": [{"type": t, "status": s, "reason": t} for t, s in conditions]}}


def test_job_rules() -> None:
    assert status_of(job()) == "Progressing"
    assert status_of(job(("Complete", "True"))) == "Healthy"
    assert status_of(job(("Failed", "True"))) == "Degraded"
    assert status_of(job(("Suspended", "True"))) == "Suspended"
    assert status_of(job(("Failed", "False"))) == "Progressing"


def hpa(*conditions: tuple[str, str, str]) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "status": {"conditions": [{"type": t, "status": s, "reason": r} for t, s, r in conditions]}}


def test_hpa_rules() -> None:
    assert status_of(hpa(("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "True", "ValidMetricFound"))) == "Healthy"
    assert status_of(hpa(("AbleToScale", "False", "FailedGetScale"))) == "Degraded"
    assert status_of(hpa(("AbleToScale", "True", "SucceededGetScale"),
                         ("ScalingActive", "False", "FailedGetResourceMetric"))) == "Degraded"
    assert status_of(hpa(("AbleToScale", "False", "BackoffBoth"))) == "Progressing"
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "annotations": {
        "autoscaling.alpha.kubernetes.io/conditions": json.dumps([{"type": "AbleToScale", "status": "False",
                                                                   "reason": "FailedUpdateScale"}])}}}
    assert status_of(v1) == "Degraded"


def test_apiservice_and_crd() -> None:
    api = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
           "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}
    assert status_of(api) == "Progressing"
    api["status"]["conditions"][0]["status"] = "True"
    assert status_of(api) == "Healthy"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x.y"}}
    assert status_of(crd) == "Progressing"
    crd["status"] = {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}
    assert status_of(crd) == "Healthy"
    crd["status"]["conditions"][0]["status"] = "False"
    assert status_of(crd) == "Degraded"
    crd["status"]["conditions"] = [{"type": "Established", "status": "False", "reason": "Installing"}]
    assert status_of(crd) == "Progressing"
    crd["status"]["conditions"] = [{"type": "Established", "status": "False", "reason": "NotAccepted"}]
    assert status_of(crd) == "Degraded"
    crd["status"]["conditions"] = [{"type": "Established", "status": "True"}, {"type": "NonStructuralSchema", "status": "True"}]
    assert status_of(crd) == "Degraded"


def test_deletion_timestamp_wins_and_unknown_kinds_are_healthy() -> None:
    obj = deployment_live()
    obj["metadata"]["deletionTimestamp"] = "2026-11-26T15:00:00Z"
    assert status_of(obj) == "Progressing"
    assert status_of({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}) == "Healthy"
    assert status_of({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}) == "Healthy"
    assert resource_health(None) == missing()


def test_app_health_is_worst_child() -> None:
    assert app_health([]) == "Healthy"
    assert app_health(["Healthy", "Suspended"]) == "Suspended"
    assert app_health(["Suspended", "Progressing", "Healthy"]) == "Progressing"
    assert app_health(["Progressing", "Missing"]) == "Missing"
    assert app_health(["Missing", "Degraded", "Healthy"]) == "Degraded"
    assert app_health([Health("Degraded"), Health("Unknown")]) == "Unknown"
    assert app_health(["Healthy", "Bogus"]) == "Unknown"
