"""defaults.py: each default the real API server adds, field by field (values from Kubernetes 1.37)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from local.kubesim.defaults import DefaultsContext, apply_defaults, image_pull_policy
from local.kubesim.schema import Schemas
from local.kubesim.types import ResourceType


class Ctx:
    """A real (tiny) allocator: sequential ClusterIPs from 10.96.0.0/12 like a fresh cluster."""

    def __init__(self) -> None:
        self.next = 10

    def allocate_cluster_ip(self) -> str:
        self.next += 1
        return f"10.96.0.{self.next}"

    def now(self) -> str:
        return "2026-11-26T15:00:00Z"


SCHEMAS = Schemas()


def rt(group: str, kind: str) -> ResourceType:
    return next(r for r in SCHEMAS.builtin_types() if r.group == group and r.kind == kind)


def defaulted(group: str, kind: str, obj: dict[str, Any], ctx: DefaultsContext | None = None) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    apply_defaults(rt(group, kind), out, ctx or Ctx())
    return out


POD_SPEC = {"containers": [{"name": "app", "image": "nginx:1.27"}]}


def test_ctx_satisfies_protocol() -> None:
    ctx: DefaultsContext = Ctx()
    assert ctx.allocate_cluster_ip() == "10.96.0.11"


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.27", "IfNotPresent"),
    ("registry:5000/team/app", "Always"),
    ("registry:5000/team/app:v1", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_deployment_defaults() -> None:
    obj = defaulted("apps", "Deployment", {"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": copy.deepcopy(POD_SPEC)}}})
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert pod["dnsPolicy"] == "ClusterFirst"
    assert pod["restartPolicy"] == "Always"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["securityContext"] == {}
    assert pod["schedulerName"] == "default-scheduler"
    assert "enableServiceLinks" not in pod  # Pods only
    assert "serviceAccountName" not in pod  # admission runs for Pods only
    assert pod["containers"][0] == {
        "name": "app", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "resources": {},
    }


def test_user_values_are_kept() -> None:
    obj = defaulted("apps", "Deployment", {"spec": {
        "replicas": 0, "revisionHistoryLimit": 0, "strategy": {"type": "Recreate"},
        "template": {"spec": {"restartPolicy": "Always", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
                              "containers": [{"name": "a", "image": "x:latest", "imagePullPolicy": "Never",
                                              "resources": {"limits": {"cpu": "1"}}}]}}}})
    spec = obj["spec"]
    assert spec["replicas"] == 0 and spec["revisionHistoryLimit"] == 0
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["dnsPolicy"] == "Default" and pod["terminationGracePeriodSeconds"] == 0
    assert pod["containers"][0]["imagePullPolicy"] == "Never"
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "1"}}


def test_container_ports_probes_env_volumes() -> None:
    obj = defaulted("", "Pod", {"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{
            "name": "app", "image": "app:v1",
            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
            "startupProbe": {"exec": {"command": ["true"]}},
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        }],
        "volumes": [{"name": "s", "secret": {"secretName": "x"}}, {"name": "c", "configMap": {"name": "y"}},
                    {"name": "c2", "configMap": {"name": "y", "defaultMode": 256}}, {"name": "e", "emptyDir": {}}],
    }})
    spec = obj["spec"]
    init = spec["initContainers"][0]
    assert init["imagePullPolicy"] == "Always" and init["terminationMessagePath"] == "/dev/termination-log"
    c = spec["containers"][0]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 5 and c["readinessProbe"]["timeoutSeconds"] == 1
    assert c["startupProbe"]["failureThreshold"] == 3
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["s"]["secret"]["defaultMode"] == 420
    assert vols["c"]["configMap"]["defaultMode"] == 420
    assert vols["c2"]["configMap"]["defaultMode"] == 256
    assert vols["e"] == {"name": "e", "emptyDir": {}}
    # Pod-only defaults and admission
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(("group", "kind", "path"), [
    ("apps", "ReplicaSet", ("spec", "template", "spec")),
    ("apps", "StatefulSet", ("spec", "template", "spec")),
    ("apps", "DaemonSet", ("spec", "template", "spec")),
    ("batch", "Job", ("spec", "template", "spec")),
    ("batch", "CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
])
def test_pod_templates_everywhere(group: str, kind: str, path: tuple[str, ...]) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x"}}
    cur = obj
    for p in path[:-1]:
        cur = cur.setdefault(p, {})
    cur[path[-1]] = copy.deepcopy(POD_SPEC)
    out = defaulted(group, kind, obj)
    pod = out
    for p in path:
        pod = pod[p]
    assert pod["schedulerName"] == "default-scheduler"
    assert pod["containers"][0]["terminationMessagePolicy"] == "File"


def test_statefulset_daemonset_defaults() -> None:
    sts = defaulted("apps", "StatefulSet", {"spec": {"template": {"spec": copy.deepcopy(POD_SPEC)},
                                                     "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                                                               "spec": {"accessModes": ["ReadWriteOnce"]}}]}})["spec"]
    assert sts["podManagementPolicy"] == "OrderedReady"
    assert sts["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sts["replicas"] == 1 and sts["revisionHistoryLimit"] == 10
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    vct = sts["volumeClaimTemplates"][0]
    assert vct["spec"]["volumeMode"] == "Filesystem" and vct["kind"] == "PersistentVolumeClaim"
    ds = defaulted("apps", "DaemonSet", {"spec": {"template": {"spec": copy.deepcopy(POD_SPEC)}}})["spec"]
    assert ds["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["revisionHistoryLimit"] == 10


def test_job_and_cronjob_defaults() -> None:
    job = defaulted("batch", "Job", {"metadata": {"name": "j", "uid": "u-1"},
                                     "spec": {"template": {"spec": copy.deepcopy(POD_SPEC)}}})
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["completions"], spec["parallelism"]) == (6, 1, 1)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in spec
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert spec["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "j"
    assert job["metadata"]["labels"]["job-name"] == "j"
    par = defaulted("batch", "Job", {"spec": {"parallelism": 3, "template": {"spec": copy.deepcopy(POD_SPEC)}}})
    assert par["spec"]["parallelism"] == 3 and "completions" not in par["spec"]
    cj = defaulted("batch", "CronJob", {"spec": {"schedule": "* * * * *", "jobTemplate": {
        "spec": {"template": {"spec": copy.deepcopy(POD_SPEC)}}}}})["spec"]
    assert cj["concurrencyPolicy"] == "Allow" and cj["suspend"] is False
    assert cj["successfulJobsHistoryLimit"] == 3 and cj["failedJobsHistoryLimit"] == 1
    assert "backoffLimit" not in cj["jobTemplate"]["spec"]  # Job defaults are not applied to templates


def test_service_defaults_and_cluster_ip() -> None:
    ctx = Ctx()
    svc = defaulted("", "Service", {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "TCP"}]}},
        ctx)
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80},
                             {"port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert spec["clusterIP"] == "10.96.0.11" and spec["clusterIPs"] == ["10.96.0.11"]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    again = copy.deepcopy(svc)
    apply_defaults(rt("", "Service"), again, ctx)
    assert again == svc  # idempotent: no second allocation on update
    np = defaulted("", "Service", {"spec": {"type": "NodePort", "ports": [{"port": 80}]}})["spec"]
    assert np["externalTrafficPolicy"] == "Cluster" and 30000 <= np["ports"][0]["nodePort"] <= 32767
    headless = defaulted("", "Service", {"spec": {"clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 80}]}})
    assert headless["spec"]["clusterIPs"] == ["None"]
    ext = defaulted("", "Service", {"spec": {"type": "ExternalName", "externalName": "example.com"}})["spec"]
    assert "clusterIP" not in ext and "internalTrafficPolicy" not in ext


def test_secret_namespace_pvc() -> None:
    sec = defaulted("", "Secret", {"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "héllo"}})
    assert sec["type"] == "Opaque"
    assert "stringData" not in sec
    assert sec["data"] == {"a": "eA==", "b": base64.b64encode("héllo".encode()).decode()}
    tls = defaulted("", "Secret", {"type": "kubernetes.io/tls"})
    assert tls["type"] == "kubernetes.io/tls"
    ns = defaulted("", "Namespace", {"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "lie"}}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    pvc = defaulted("", "PersistentVolumeClaim", {"spec": {"accessModes": ["ReadWriteOnce"]}})
    assert pvc["spec"]["volumeMode"] == "Filesystem"


def test_kinds_without_defaults_are_untouched() -> None:
    for group, kind in (("", "ConfigMap"), ("networking.k8s.io", "Ingress"), ("coordination.k8s.io", "Lease")):
        obj = {"metadata": {"name": "x"}, "data": {"k": "v"}} if kind == "ConfigMap" else {"metadata": {"name": "x"}, "spec": {}}
        assert defaulted(group, kind, obj) == obj


def test_custom_resource_schema_defaults() -> None:
    crd = {"spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "default": 3},
                            "items": {"type": "array", "items": {"type": "object", "properties": {
                                "mode": {"type": "string", "default": "fast"}}}},
                            "absent": {"type": "object", "properties": {"x": {"type": "integer", "default": 1}}},
                        }}}}}}]}}
    [crt] = SCHEMAS.types_for_crd(crd)
    obj: dict[str, Any] = {"spec": {"items": [{}, {"mode": "slow"}]}}
    apply_defaults(crt, obj, Ctx())
    assert obj == {"spec": {"size": 3, "items": [{"mode": "fast"}, {"mode": "slow"}]}}
