"""Health assessment of live Kubernetes objects, with Argo CD's built-in rules.

Users come from Argo CD and read "Progressing" / "Degraded" the way Argo CD's
gitops-engine computes them, so every rule here follows SEMANTICS.md's table
(itself taken from gitops-engine's ``pkg/health``). Pure functions over plain
dicts: the caller fetches the objects, this module only judges them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

HEALTHY: Final = "Healthy"
SUSPENDED: Final = "Suspended"
PROGRESSING: Final = "Progressing"
MISSING: Final = "Missing"
DEGRADED: Final = "Degraded"
UNKNOWN: Final = "Unknown"

# Worst-child ordering of SEMANTICS.md: the app is as unhealthy as its worst resource.
_ORDER: Final[dict[str, int]] = {
    HEALTHY: 0,
    SUSPENDED: 1,
    PROGRESSING: 2,
    MISSING: 3,
    DEGRADED: 4,
    UNKNOWN: 5,
}


@dataclass(frozen=True)
class Health:
    """Health of one object: a status of SEMANTICS.md and a human-readable why."""

    status: str
    message: str = ""


def app_health(statuses: Iterable[str | Health]) -> str:
    """Worst child wins (Healthy < Suspended < Progressing < Missing < Degraded < Unknown).

    An app without resources is Healthy, as in Argo CD. Unknown strings rank as Unknown so a
    typo never makes an app look better than it is.
    """
    worst = HEALTHY
    for item in statuses:
        status = item.status if isinstance(item, Health) else item
        if _ORDER.get(status, _ORDER[UNKNOWN]) > _ORDER[worst]:
            worst = status if status in _ORDER else UNKNOWN
    return worst


def missing() -> Health:
    """Health of a desired object that does not exist live."""
    return Health(MISSING, "resource does not exist")


def resource_health(obj: Mapping[str, Any] | None) -> Health:
    """Health of one live object (``None`` = absent = Missing)."""
    if obj is None:
        return missing()
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Health(PROGRESSING, "Pending deletion")
    group = _group(obj)
    kind = obj.get("kind", "")
    check = _RULES.get((group, kind))
    if check is None:
        return Health(HEALTHY)
    try:
        return check(obj)
    except (TypeError, ValueError, AttributeError) as exc:  # malformed status from a buggy controller
        return Health(UNKNOWN, f"cannot assess health: {exc}")


def _group(obj: Mapping[str, Any]) -> str:
    api_version = str(obj.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def _conditions(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(_status(obj).get("conditions") or [])


def _condition(obj: Mapping[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in _conditions(obj):
        if cond.get("type") == ctype:
            return cond
    return None


def _generation_behind(obj: Mapping[str, Any]) -> bool:
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    observed = int(_status(obj).get("observedGeneration") or 0)
    return generation > observed


def _deployment(obj: Mapping[str, Any]) -> Health:
    spec, status = _spec(obj), _status(obj)
    if spec.get("paused"):
        return Health(SUSPENDED, "Deployment is paused")
    if _generation_behind(obj):
        return Health(
            PROGRESSING, "Waiting for rollout to finish: observed deployment generation less than desired generation"
        )
    cond = _condition(obj, "Progressing")
    if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
        name = (obj.get("metadata") or {}).get("name", "")
        return Health(DEGRADED, f'Deployment "{name}" exceeded its progress deadline')
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    current = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < replicas:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated...",
        )
    if current > updated:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {current - updated} old replicas are pending termination...",
        )
    if available < updated:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} of {updated} updated replicas are available...",
        )
    return Health(HEALTHY)


def _statefulset(obj: Mapping[str, Any]) -> Health:
    spec, status = _spec(obj), _status(obj)
    observed = status.get("observedGeneration")
    if not observed or _generation_behind(obj):
        return Health(PROGRESSING, "Waiting for statefulset spec update to be observed...")
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int(status.get("readyReplicas") or 0)
    if ready < replicas:
        return Health(PROGRESSING, f"Waiting for {replicas - ready} pods to be ready...")
    strategy = spec.get("updateStrategy") or {}
    stype = strategy.get("type") or "RollingUpdate"
    if stype == "RollingUpdate":
        partition = (strategy.get("rollingUpdate") or {}).get("partition")
        if partition is not None:
            updated = int(status.get("updatedReplicas") or 0)
            if updated < replicas - int(partition):
                return Health(
                    PROGRESSING,
                    f"Waiting for partitioned roll out to finish: {updated} out of "
                    f"{replicas - int(partition)} new pods have been updated...",
                )
            return Health(HEALTHY, f"partitioned roll out complete: {updated} new pods have been updated...")
    if stype == "OnDelete":
        return Health(HEALTHY, "statefulset has OnDelete update strategy")
    if status.get("updateRevision") != status.get("currentRevision"):
        return Health(
            PROGRESSING,
            f"waiting for statefulset rolling update to complete {status.get('updatedReplicas') or 0} pods "
            f"at revision {status.get('updateRevision')}...",
        )
    return Health(HEALTHY, f"statefulset rolling update complete {ready} pods at revision "
                  f"{status.get('currentRevision')}...")


def _daemonset(obj: Mapping[str, Any]) -> Health:
    spec, status = _spec(obj), _status(obj)
    if _generation_behind(obj):
        return Health(PROGRESSING, "Waiting for daemon set spec update to be observed...")
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return Health(HEALTHY, "daemon set has OnDelete update strategy")
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < desired:
        return Health(
            PROGRESSING,
            f"Waiting for daemon set rollout to finish: {updated} out of {desired} new pods have been updated...",
        )
    if available < desired:
        return Health(
            PROGRESSING,
            f"Waiting for daemon set rollout to finish: {available} of {desired} updated pods are available...",
        )
    return Health(HEALTHY)


def _replicaset(obj: Mapping[str, Any]) -> Health:
    spec, status = _spec(obj), _status(obj)
    failure = _condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return Health(DEGRADED, str(failure.get("message") or "ReplicaFailure"))
    if _generation_behind(obj):
        return Health(PROGRESSING, "Waiting for rollout to finish: observed replica set generation less than desired generation")
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    available = int(status.get("availableReplicas") or 0)
    if available < replicas:
        return Health(
            PROGRESSING,
            f"Waiting for rollout to finish: {available} out of {replicas} new replicas are available...",
        )
    return Health(HEALTHY)


def _pod(obj: Mapping[str, Any]) -> Health:
    spec, status = _spec(obj), _status(obj)
    restart = spec.get("restartPolicy") or "Always"
    statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    if restart == "Always":
        for cs in statuses:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            if reason and (reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff")):
                return Health(DEGRADED, str(waiting.get("message") or reason))
    phase = status.get("phase")
    if phase == "Pending":
        return Health(PROGRESSING, str(status.get("message") or "Pod is pending"))
    if phase == "Succeeded":
        return Health(HEALTHY, str(status.get("message") or "Pod completed"))
    if phase == "Failed":
        return Health(DEGRADED, str(status.get("message") or "Pod failed"))
    if phase == "Running":
        if restart == "Always":
            ready = _condition(obj, "Ready")
            if ready is not None and ready.get("status") == "True":
                return Health(HEALTHY, str(status.get("message") or ""))
            for cs in statuses:
                terminated = ((cs.get("lastState") or {}).get("terminated")) or None
                if terminated:
                    return Health(DEGRADED, str(terminated.get("message") or terminated.get("reason") or "restarted"))
            return Health(PROGRESSING, str(status.get("message") or "Pod is not ready"))
        return Health(PROGRESSING, str(status.get("message") or ""))
    return Health(UNKNOWN, str(status.get("reason") or status.get("message") or f"phase {phase!r}"))


def _service(obj: Mapping[str, Any]) -> Health:
    if _spec(obj).get("type") == "LoadBalancer":
        if ((_status(obj).get("loadBalancer") or {}).get("ingress")):
            return Health(HEALTHY)
        return Health(PROGRESSING, "Waiting for the load balancer to be provisioned")
    return Health(HEALTHY)


def _ingress(obj: Mapping[str, Any]) -> Health:
    if ((_status(obj).get("loadBalancer") or {}).get("ingress")):
        return Health(HEALTHY)
    return Health(PROGRESSING, "Waiting for the ingress to get an address")


def _pvc(obj: Mapping[str, Any]) -> Health:
    phase = _status(obj).get("phase")
    if phase == "Bound":
        return Health(HEALTHY)
    if phase == "Pending":
        return Health(PROGRESSING, "Waiting for the claim to be bound")
    if phase == "Lost":
        return Health(DEGRADED, "The claim lost its volume")
    return Health(UNKNOWN, f"phase {phase!r}")


def _job(obj: Mapping[str, Any]) -> Health:
    failed = complete = None
    suspended = False
    for cond in _conditions(obj):
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Failed":
            failed = cond
        elif cond.get("type") == "Complete":
            complete = cond
        elif cond.get("type") == "Suspended":
            suspended = True
    if failed is not None:
        return Health(DEGRADED, str(failed.get("message") or failed.get("reason") or "Job failed"))
    if complete is not None:
        return Health(HEALTHY, str(complete.get("message") or "Job completed"))
    if suspended or _spec(obj).get("suspend"):
        return Health(SUSPENDED, "Job is suspended")
    return Health(PROGRESSING, "Job is running")


_HPA_DEGRADED_ABLE: Final = {"FailedGetScale", "FailedUpdateScale"}
_HPA_DEGRADED_ACTIVE: Final = {
    "FailedGetResourceMetric",
    "FailedGetContainerResourceMetric",
    "FailedGetPodsMetric",
    "FailedGetObjectMetric",
    "FailedGetExternalMetric",
    "FailedComputeMetricsReplicas",
    "InvalidSelector",
}


def _hpa(obj: Mapping[str, Any]) -> Health:
    conditions = _conditions(obj)
    if not conditions:
        # autoscaling/v1 keeps its conditions in an annotation (as gitops-engine reads them).
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(
            "autoscaling.alpha.kubernetes.io/conditions"
        )
        if raw:
            conditions = list(json.loads(raw))
    for cond in conditions:
        reason = cond.get("reason")
        if (cond.get("type") == "AbleToScale" and reason in _HPA_DEGRADED_ABLE) or (
            cond.get("type") == "ScalingActive" and reason in _HPA_DEGRADED_ACTIVE
        ):
            return Health(DEGRADED, str(cond.get("message") or reason))
    for cond in conditions:
        if cond.get("type") in ("AbleToScale", "ScalingLimited") and cond.get("status") == "True":
            return Health(HEALTHY, str(cond.get("message") or ""))
    return Health(PROGRESSING, "Waiting to autoscale")


def _apiservice(obj: Mapping[str, Any]) -> Health:
    cond = _condition(obj, "Available")
    if cond is not None and cond.get("status") == "True":
        return Health(HEALTHY, str(cond.get("message") or ""))
    message = str((cond or {}).get("message") or "Waiting to be processed")
    return Health(PROGRESSING, message)


def _crd(obj: Mapping[str, Any]) -> Health:
    conditions = _conditions(obj)
    if not conditions:
        return Health(PROGRESSING, "Status conditions not found")
    for cond in conditions:
        if cond.get("type") == "NamesAccepted" and cond.get("status") == "False":
            return Health(DEGRADED, str(cond.get("message") or "CRD names have not been accepted"))
        if cond.get("type") == "NonStructuralSchema" and cond.get("status") == "True":
            return Health(DEGRADED, str(cond.get("message") or "CRD has a non-structural schema"))
    established = _condition(obj, "Established")
    if established is not None and established.get("reason") == "Installing":
        return Health(PROGRESSING, str(established.get("message") or "CRD is installing"))
    if established is None or established.get("status") != "True":
        return Health(DEGRADED, str((established or {}).get("message") or "CRD is not established"))
    return Health(HEALTHY, "CRD is healthy")


def _application(obj: Mapping[str, Any]) -> Health:
    """An Argo CD Application (app of apps; gitferry's children, children.py): Argo CD's health
    check for it (the ``argoproj.io/Application`` health.lua its docs give since 1.8): the
    application's own ``status.health``, Progressing while it has none. gitferry has no
    controller watching the child, so its status lags a spec change by pipeline stages: until
    the status reflects the current spec (``status.sync.comparedTo``), while an operation runs,
    and while an automated child is OutOfSync (its sync is on its way), it is Progressing too,
    so a sync wave never moves on before the child has caught up."""
    status = _status(obj)
    health = status.get("health") or {}
    if not health.get("status"):
        return Health(PROGRESSING, "")
    sync = status.get("sync") or {}
    spec = _spec(obj)
    compared = sync.get("comparedTo") or {}
    if compared.get("source") != spec.get("source") or compared.get("destination") != spec.get("destination"):
        return Health(PROGRESSING, "waiting for the application's comparison at its current spec")
    if (status.get("operationState") or {}).get("phase") == "Running":
        return Health(PROGRESSING, "the application's sync is running")
    if sync.get("status") == "OutOfSync" and (spec.get("syncPolicy") or {}).get("automated") is not None:
        return Health(PROGRESSING, "the application is OutOfSync; waiting for its automated sync")
    return Health(str(health["status"]), str(health.get("message") or ""))


_RULES: Final = {
    ("argoproj.io", "Application"): _application,
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("extensions", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("extensions", "ReplicaSet"): _replicaset,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("extensions", "Ingress"): _ingress,
    ("", "PersistentVolumeClaim"): _pvc,
    ("batch", "Job"): _job,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("apiregistration.k8s.io", "APIService"): _apiservice,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
