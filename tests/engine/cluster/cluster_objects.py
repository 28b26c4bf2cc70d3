"""Realistic Kubernetes objects for the pure tests, shaped like `kubectl get -o json` output
of a 1.3x cluster (server defaults, managedFields, status), so the tests exercise what the
engine really receives."""

from __future__ import annotations

import copy
import json
from typing import Any


def deployment_manifest(name: str = "web", image: str = "nginx:1.27", replicas: int = 2) -> dict[str, Any]:
    """What a user writes in Git."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"containerPort": 80}],
                            "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
                            "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}},
                        }
                    ]
                },
            },
        },
    }


def _fields_v1_for_manifest() -> dict[str, Any]:
    return {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"web"}': {
                            ".": {},
                            "f:env": {
                                'k:{"name":"LOG"}': {".": {}, "f:name": {}, "f:value": {}},
                                'k:{"name":"MODE"}': {".": {}, "f:name": {}, "f:value": {}},
                            },
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                            "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}},
                        }
                    }
                },
            },
        },
    }


def deployment_live(name: str = "web", image: str = "nginx:1.27", replicas: int = 2, namespace: str = "shop",
                    **status: Any) -> dict[str, Any]:
    """The same Deployment as the API server returns it after `kubectl apply --server-side`."""
    obj = deployment_manifest(name, image, replicas)
    obj["metadata"].update({
        "namespace": namespace,
        "uid": "0b7f3c8e-54b1-4f0e-9f65-1f1d2c3b4a59",
        "resourceVersion": "48213",
        "generation": 1,
        "creationTimestamp": "2026-11-26T14:02:11Z",
        "annotations": {"deployment.kubernetes.io/revision": "1"},
        "managedFields": [
            {"manager": "gitferry", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-11-26T14:02:11Z",
             "fieldsType": "FieldsV1", "fieldsV1": _fields_v1_for_manifest()},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
             "time": "2026-11-26T14:02:20Z", "fieldsType": "FieldsV1", "subresource": "status",
             "fieldsV1": {"f:status": {"f:replicas": {}}}},
        ],
    })
    spec = obj["spec"]
    spec.update({"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}})
    pod = spec["template"]["spec"]
    pod.update({"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "securityContext": {}, "terminationGracePeriodSeconds": 30})
    container = pod["containers"][0]
    container.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
                      "terminationMessagePolicy": "File"})
    container["ports"][0]["protocol"] = "TCP"
    container["resources"] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
    spec["template"]["metadata"]["creationTimestamp"] = None
    obj["status"] = {
        "observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": f'ReplicaSet "{name}-7c5ddbdf54" has successfully progressed.'},
        ],
    }
    obj["status"].update(status)
    return obj


def secret_manifest() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"password": "hunter2-s3cr3t"}, "data": {"user": "YWRtaW4="}}


def secret_live(password_b64: str = "aHVudGVyMi1zM2NyM3Q=") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                         "creationTimestamp": "2026-11-26T14:02:11Z",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                             {"stringData": {"password": "hunter2-s3cr3t"}})}},
            "data": {"password": password_b64, "user": "YWRtaW4="}}


def service_manifest(port: int | str = 80, target: int | str = "8080") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": port, "targetPort": target}]}}


def service_live() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u2", "resourceVersion": "9"},
            "spec": {"selector": {"app": "web"}, "type": "ClusterIP", "sessionAffinity": "None",
                     "clusterIP": "10.96.12.7", "clusterIPs": ["10.96.12.7"], "ipFamilies": ["IPv4"],
                     "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
                     "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]},
            "status": {"loadBalancer": {}}}


def with_(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Deep copy with top-level keys replaced."""
    out = copy.deepcopy(obj)
    out.update(changes)
    return out
