"""Table answers must carry the columns and cells kubectl prints against a real API server."""

from __future__ import annotations

from typing import Any

import pytest

from local.kubesim.clock import format_rfc3339, parse_rfc3339
from local.kubesim.tables import format_label_selector, human_duration, json_path, to_table
from local.kubesim.types import ResourceType

NOW = parse_rfc3339("2026-11-26T15:00:00Z")

DEPLOY = ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True,
                      definition="io.k8s.api.apps.v1.Deployment")
POD = ResourceType("", "v1", "Pod", "pods", "pod", True, definition="io.k8s.api.core.v1.Pod")
SVC = ResourceType("", "v1", "Service", "services", "service", True, definition="io.k8s.api.core.v1.Service")
CM = ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, definition="io.k8s.api.core.v1.ConfigMap")
SECRET = ResourceType("", "v1", "Secret", "secrets", "secret", True, definition="io.k8s.api.core.v1.Secret")
NS = ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, definition="io.k8s.api.core.v1.Namespace")
JOB = ResourceType("batch", "v1", "Job", "jobs", "job", True, definition="io.k8s.api.batch.v1.Job")
PVC = ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", True,
                   definition="io.k8s.api.core.v1.PersistentVolumeClaim")
ING = ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", True,
                   definition="io.k8s.api.networking.v1.Ingress")
ROLE = ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True,
                    definition="io.k8s.api.rbac.v1.Role")
WIDGET = ResourceType("example.com", "v1", "Widget", "widgets", "widget", True)


def meta(name: str, age_seconds: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "7",
            "creationTimestamp": format_rfc3339(NOW - age_seconds), **extra}


def names(table: dict[str, Any]) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"]]


def cells_by_name(table: dict[str, Any], row: int = 0) -> dict[str, Any]:
    return dict(zip(names(table), table["rows"][row]["cells"], strict=True))


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (182, "3m2s"), (600, "10m"), (179 * 60, "179m"),
    (3 * 3600, "3h"), (7 * 3600 + 300, "7h5m"), (30 * 3600, "30h"), (3 * 86400 + 7200, "3d2h"),
    (10 * 86400, "10d"), (3 * 365 * 86400 + 5 * 86400, "3y5d"), (-1, "0s"), (-5, "<invalid>"),
])
def test_human_duration_matches_apimachinery(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_deployment_columns_and_cells() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web", 182),
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"}},
                    "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                                         {"name": "side", "image": "busybox"}]}}},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    table = to_table(DEPLOY, [dep], now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert names(table) == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["rows"][0]["cells"] == ["web", "2/3", 3, 2, "3m2s", "nginx,side", "nginx:1.27,busybox",
                                         "app=web,tier=fe"]
    obj = table["rows"][0]["object"]
    assert obj == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": dep["metadata"]}


def test_include_object_modes() -> None:
    cm = {"metadata": meta("cfg", 5), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert to_table(CM, [cm], "None", now=NOW)["rows"][0]["object"] is None
    full = to_table(CM, [cm], "Object", now=NOW)["rows"][0]["object"]
    assert full["kind"] == "ConfigMap" and full["apiVersion"] == "v1" and full["data"] == cm["data"]
    with pytest.raises(ValueError):
        to_table(CM, [cm], "Everything", now=NOW)


def test_configmap_secret_namespace() -> None:
    cm = {"metadata": meta("cfg", 5), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    t = to_table(CM, [cm], now=NOW)
    assert names(t) == ["Name", "Data", "Age"] and t["rows"][0]["cells"] == ["cfg", 3, "5s"]
    sec = {"metadata": meta("tls", 10 * 86400), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}
    t = to_table(SECRET, [sec], now=NOW)
    assert names(t) == ["Name", "Type", "Data", "Age"] and t["rows"][0]["cells"] == ["tls", "kubernetes.io/tls", 2, "10d"]
    ns = {"metadata": meta("prod", 3600 * 30), "status": {"phase": "Active"}}
    t = to_table(NS, [ns], now=NOW)
    assert names(t) == ["Name", "Status", "Age"] and t["rows"][0]["cells"] == ["prod", "Active", "30h"]


def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": meta("web-abc12", 65),
            "spec": {"nodeName": "kubesim-node-1", "containers": [{"name": "app", "image": "x"}]},
            "status": status}


def test_pod_running_ready() -> None:
    pod = _pod(phase="Running", podIP="10.244.0.5", podIPs=[{"ip": "10.244.0.5"}],
               conditions=[{"type": "Ready", "status": "True"}],
               containerStatuses=[{"name": "app", "ready": True, "restartCount": 0,
                                   "state": {"running": {"startedAt": format_rfc3339(NOW - 60)}}}])
    t = to_table(POD, [pod], now=NOW)
    assert names(t) == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                        "Readiness Gates"]
    assert t["rows"][0]["cells"] == ["web-abc12", "1/1", "Running", "0", "65s", "10.244.0.5", "kubesim-node-1",
                                     "<none>", "<none>"]
    assert "conditions" not in t["rows"][0]


def test_pod_crashloop_shows_reason_and_restart_age() -> None:
    pod = _pod(phase="Running", containerStatuses=[{
        "name": "app", "ready": False, "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": format_rfc3339(NOW - 12)}}}])
    cells = cells_by_name(to_table(POD, [pod], now=NOW))
    assert cells["Ready"] == "0/1" and cells["Status"] == "CrashLoopBackOff" and cells["Restarts"] == "4 (12s ago)"
    assert cells["IP"] == "<none>"


def test_pod_image_pull_and_completed_and_terminating() -> None:
    pod = _pod(phase="Pending", containerStatuses=[{"name": "app", "ready": False, "restartCount": 0,
                                                    "state": {"waiting": {"reason": "ImagePullBackOff"}}}])
    assert cells_by_name(to_table(POD, [pod], now=NOW))["Status"] == "ImagePullBackOff"
    done = _pod(phase="Succeeded", containerStatuses=[{"name": "app", "ready": False, "restartCount": 0,
                                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    t = to_table(POD, [done], now=NOW)
    assert cells_by_name(t)["Status"] == "Completed"
    assert t["rows"][0]["conditions"][0]["reason"] == "Succeeded"
    dying = _pod(phase="Running")
    dying["metadata"]["deletionTimestamp"] = format_rfc3339(NOW)
    assert cells_by_name(to_table(POD, [dying], now=NOW))["Status"] == "Terminating"


def test_pod_init_container_waiting() -> None:
    pod = _pod(phase="Pending", initContainerStatuses=[{"name": "init", "ready": False, "restartCount": 0,
                                                        "state": {"waiting": {"reason": "PodInitializing"}}}])
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    assert cells_by_name(to_table(POD, [pod], now=NOW))["Status"] == "Init:0/1"


def test_service_types() -> None:
    base = {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "selector": {"app": "web"}}
    cluster = {"metadata": meta("web", 30), "spec": {**base, "type": "ClusterIP",
                                                      "ports": [{"port": 80, "protocol": "TCP"},
                                                                {"port": 53, "protocol": "UDP"}]}}
    lb_pending = {"metadata": meta("lb", 30), "spec": {**base, "type": "LoadBalancer",
                                                        "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}}
    lb_ready = {**lb_pending, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    t = to_table(SVC, [cluster, lb_pending, lb_ready], now=NOW)
    assert names(t) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert t["rows"][0]["cells"] == ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "30s", "app=web"]
    assert t["rows"][1]["cells"][3:5] == ["<pending>", "443:31443/TCP"]
    assert t["rows"][2]["cells"][3] == "192.0.2.10"


def test_job_status_completions_duration() -> None:
    job = {"metadata": meta("migrate", 300),
           "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "m", "image": "migr"}]}},
                    "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
           "status": {"succeeded": 1, "startTime": format_rfc3339(NOW - 290),
                      "completionTime": format_rfc3339(NOW - 283),
                      "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                     {"type": "Complete", "status": "True"}]}}
    t = to_table(JOB, [job], now=NOW)
    assert names(t)[:5] == ["Name", "Status", "Completions", "Duration", "Age"]
    assert t["rows"][0]["cells"][:5] == ["migrate", "Complete", "1/1", "7s", "5m"]
    running = {**job, "status": {"startTime": format_rfc3339(NOW - 20)}}
    assert to_table(JOB, [running], now=NOW)["rows"][0]["cells"][1:4] == ["Running", "0/1", "20s"]


def test_pvc_and_ingress() -> None:
    pvc = {"metadata": meta("data", 60), "spec": {"storageClassName": "standard", "volumeName": "pvc-uid-data",
                                                   "resources": {"requests": {"storage": "1Gi"}}},
           "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}}
    t = to_table(PVC, [pvc], now=NOW)
    assert names(t) == ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                        "VolumeAttributesClass", "Age", "VolumeMode"]
    assert t["rows"][0]["cells"] == ["data", "Bound", "pvc-uid-data", "1Gi", "RWO", "standard", "<unset>", "60s",
                                     "<unset>"]
    ing = {"metadata": meta("web", 60), "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}],
                                                  "tls": [{"hosts": ["a.example"]}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.20"}]}}}
    t = to_table(ING, [ing], now=NOW)
    assert names(t) == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert t["rows"][0]["cells"] == ["web", "nginx", "a.example", "192.0.2.20", "80, 443", "60s"]


def test_builtin_without_printer_uses_created_at() -> None:
    role = {"metadata": meta("reader", 60)}
    t = to_table(ROLE, [role], now=NOW)
    assert names(t) == ["Name", "Created At"] and t["columnDefinitions"][1]["type"] == "date"
    assert t["rows"][0]["cells"] == ["reader", format_rfc3339(NOW - 60)]


def test_custom_resource_default_and_printer_columns() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta("w1", 90),
              "spec": {"size": 3, "color": "blue"},
              "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    t = to_table(WIDGET, [widget], now=NOW)
    assert names(t) == ["Name", "Age"] and t["rows"][0]["cells"] == ["w1", "90s"]
    columns = [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    t = to_table(WIDGET, [widget], now=NOW, printer_columns=columns)
    assert names(t) == ["Name", "Size", "Color", "Ready", "Missing", "Age"]
    assert t["columnDefinitions"][2]["priority"] == 1
    assert t["rows"][0]["cells"] == ["w1", 3, "blue", "True", None, "90s"]


def test_no_headers_and_list_metadata() -> None:
    t = to_table(CM, [], now=NOW, no_headers=True, resource_version="42")
    assert t["columnDefinitions"] == [] and t["rows"] == [] and t["metadata"] == {"resourceVersion": "42"}


def test_selector_formatting_and_json_path() -> None:
    sel = {"matchLabels": {"b": "2"}, "matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]},
                                                           {"key": "c", "operator": "DoesNotExist"}]}
    assert format_label_selector(sel) == "a in (x,y),b=2,!c"
    assert format_label_selector(None) == "<none>"
    assert json_path({"a": [{"b": 1}, {"b": 2}]}, ".a[*].b") == [1, 2]
    assert json_path({"a": [{"b": 1}]}, ".a[3].b") == []
