"""Server-side defaults, as the real API server fills them on every write.

Without them every GitOps diff against kubesim is a false drift that would never show
on a real cluster (``imagePullPolicy``, ``terminationMessagePath``, ``clusterIP`` ...),
or, worse, a real drift that kubesim hides. The values follow
``pkg/apis/*/v1/defaults.go`` of Kubernetes 1.37, the registry strategies
(Namespace label, Job selector, Secret ``stringData``) and the admission plugins every
cluster runs for Pods (ServiceAccount, Priority, DefaultTolerationSeconds).

Rule everywhere: fill what is missing, never override what the user set. The only
exception is the one the real server makes: the ``kubernetes.io/metadata.name``
namespace label always equals the name.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from local.kubesim.types import ResourceType

Obj = dict[str, Any]


class DefaultsContext(Protocol):
    """What defaulting needs from the server: allocated resources and the (simulated) time."""

    def allocate_cluster_ip(self) -> str:
        """A free ClusterIP from the service CIDR (the store owns allocation)."""
        ...

    def now(self) -> str:
        """RFC 3339 time, e.g. ``2026-11-26T15:00:00Z``."""
        ...


def apply_defaults(rt: ResourceType, obj: Obj, ctx: DefaultsContext, *, update: bool = False) -> None:
    """Fill the defaults of ``obj`` (a whole object of type ``rt``) in place.

    ``update``: the object replaces an existing one; create-only strategy steps (the Job's
    generated selector, PrepareForCreate) are skipped, as on the real server.
    """
    if rt.is_custom:
        if rt.crd_schema:
            apply_schema_defaults(rt.crd_schema, obj)
        return
    if update and (rt.group, rt.kind) == ("batch", "Job"):
        _job(obj, ctx, generate_selector=False)
        return
    fn = _BY_KIND.get((rt.group, rt.kind))
    if fn is not None:
        fn(obj, ctx)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _d(parent: Obj, key: str) -> Obj:
    """``parent[key]`` as a dict, created when missing/null (Go defaulters allocate the struct)."""
    v = parent.get(key)
    if not isinstance(v, dict):
        v = {}
        parent[key] = v
    return v


def _set(parent: Obj, key: str, value: Any) -> None:
    if parent.get(key) is None:
        parent[key] = value


def _dicts(v: Any) -> list[Obj]:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


# ---------------------------------------------------------------------------------------------
# core/v1: pod spec, containers, probes, volumes
# ---------------------------------------------------------------------------------------------

def image_pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or no tag, else ``IfNotPresent`` (a digest counts as pinned)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_handler(h: Any) -> None:
    """Probe / lifecycle handlers: httpGet path ``/`` and scheme ``HTTP``."""
    if not isinstance(h, dict):
        return
    hg = h.get("httpGet")
    if isinstance(hg, dict):
        _set(hg, "path", "/")
        _set(hg, "scheme", "HTTP")


def _default_probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    _set(p, "timeoutSeconds", 1)
    _set(p, "periodSeconds", 10)
    _set(p, "successThreshold", 1)
    _set(p, "failureThreshold", 3)
    _default_handler(p)


def _default_env(env: Any) -> None:
    for e in _dicts(env):
        vf = e.get("valueFrom")
        if isinstance(vf, dict) and isinstance(vf.get("fieldRef"), dict):
            _set(vf["fieldRef"], "apiVersion", "v1")


def _default_container(c: Obj) -> None:
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    if c.get("imagePullPolicy") is None and isinstance(c.get("image"), str):
        c["imagePullPolicy"] = image_pull_policy(c["image"])
    _set(c, "resources", {})
    for port in _dicts(c.get("ports")):
        _set(port, "protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lc = c.get("lifecycle")
    if isinstance(lc, dict):
        _default_handler(lc.get("postStart"))
        _default_handler(lc.get("preStop"))
    _default_env(c.get("env"))


def _default_volumes(volumes: Any) -> None:
    for v in _dicts(volumes):
        for src in ("secret", "configMap", "downwardAPI", "projected"):
            s = v.get(src)
            if isinstance(s, dict):
                _set(s, "defaultMode", 420)
        for item in _dicts((v.get("downwardAPI") or {}).get("items") if isinstance(v.get("downwardAPI"), dict) else None):
            if isinstance(item.get("fieldRef"), dict):
                _set(item["fieldRef"], "apiVersion", "v1")
        hp = v.get("hostPath")
        if isinstance(hp, dict):
            _set(hp, "type", "")
        iscsi = v.get("iscsi")
        if isinstance(iscsi, dict):
            _set(iscsi, "iscsiInterface", "default")


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec + containers/volumes: shared by Pods and every pod template."""
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "restartPolicy", "Always")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "securityContext", {})
    _set(spec, "schedulerName", "default-scheduler")
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _default_container(c)
    _default_volumes(spec.get("volumes"))


def _default_template(spec: Obj) -> None:
    tpl = spec.get("template")
    if isinstance(tpl, dict):
        default_pod_spec(_d(tpl, "spec"))


_NOT_READY_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
)


def _pod(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    default_pod_spec(spec)
    _set(spec, "enableServiceLinks", True)
    # Admission plugins every cluster runs: ServiceAccount, Priority, DefaultTolerationSeconds.
    if spec.get("serviceAccountName") is None:
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    _set(spec, "serviceAccount", spec["serviceAccountName"])
    _set(spec, "priority", 0)
    _set(spec, "preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    for tol in _NOT_READY_TOLERATIONS:
        if not any(isinstance(t, dict) and t.get("key") == tol["key"] and t.get("effect") in (None, "", "NoExecute")
                   for t in tolerations):
            tolerations.append(dict(tol))
    spec["tolerations"] = tolerations
    status = _d(obj, "status")
    _set(status, "phase", "Pending")
    _set(status, "qosClass", _qos_class(spec))


def _qos_class(spec: Obj) -> str:
    """BestEffort / Burstable / Guaranteed, as the Pod strategy computes it on create."""
    containers = _dicts(spec.get("containers")) + _dicts(spec.get("initContainers"))
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# ---------------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------------

def _deployment(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    _set(spec, "replicas", 1)
    strategy = _d(spec, "strategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        _set(ru, "maxUnavailable", "25%")
        _set(ru, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _default_template(spec)


def _replicaset(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    _set(spec, "replicas", 1)
    _default_template(spec)


def _statefulset(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    _set(spec, "podManagementPolicy", "OrderedReady")
    strategy = _d(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_d(strategy, "rollingUpdate"), "partition", 0)
    _set(spec, "replicas", 1)
    _set(spec, "revisionHistoryLimit", 10)
    policy = _d(spec, "persistentVolumeClaimRetentionPolicy")
    _set(policy, "whenDeleted", "Retain")
    _set(policy, "whenScaled", "Retain")
    for pvc in _dicts(spec.get("volumeClaimTemplates")):
        _set(pvc, "apiVersion", "v1")
        _set(pvc, "kind", "PersistentVolumeClaim")
        _set(_d(pvc, "spec"), "volumeMode", "Filesystem")
        _set(_d(pvc, "status"), "phase", "Pending")
    _default_template(spec)


def _daemonset(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    strategy = _d(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = _d(strategy, "rollingUpdate")
        _set(ru, "maxUnavailable", 1)
        _set(ru, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)
    _default_template(spec)


def _job(obj: Obj, ctx: DefaultsContext, *, generate_selector: bool = True) -> None:
    spec = _d(obj, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _set(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed")
    tpl = spec.get("template")
    # Job strategy (PrepareForCreate): generated selector and pod labels keyed by the job's uid.
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    uid = meta.get("uid")
    if generate_selector and uid and not spec.get("manualSelector") and spec.get("selector") is None \
            and isinstance(tpl, dict):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = _d(_d(tpl, "metadata"), "labels")
        _set(labels, "batch.kubernetes.io/controller-uid", uid)
        _set(labels, "batch.kubernetes.io/job-name", meta.get("name", ""))
        _set(labels, "controller-uid", uid)
        _set(labels, "job-name", meta.get("name", ""))
    if isinstance(tpl, dict):
        tlabels = (tpl.get("metadata") or {}).get("labels") if isinstance(tpl.get("metadata"), dict) else None
        if tlabels and not meta.get("labels") and isinstance(obj.get("metadata"), dict):
            obj["metadata"]["labels"] = dict(tlabels)
    _default_template(spec)


def _cronjob(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict) and isinstance(jt.get("spec"), dict):
        _default_template(jt["spec"])


def _hpa(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        up = _d(behavior, "scaleUp")
        _set(up, "stabilizationWindowSeconds", 0)
        _set(up, "selectPolicy", "Max")
        _set(up, "policies", [{"type": "Pods", "value": 4, "periodSeconds": 15},
                              {"type": "Percent", "value": 100, "periodSeconds": 15}])
        down = _d(behavior, "scaleDown")
        _set(down, "selectPolicy", "Max")
        _set(down, "policies", [{"type": "Percent", "value": 100, "periodSeconds": 15}])


# ---------------------------------------------------------------------------------------------
# core/v1 others
# ---------------------------------------------------------------------------------------------

def _node_port(obj: Obj, port: Obj, ctx: DefaultsContext) -> int:
    alloc: Callable[[], int] | None = getattr(ctx, "allocate_node_port", None)
    if alloc is not None:
        return alloc()
    meta = obj.get("metadata") or {}
    seed = f"{meta.get('namespace', '')}/{meta.get('name', '')}/{port.get('port')}/{port.get('protocol')}"
    return 30000 + int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 2768


def _service(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    stype = spec["type"]
    for p in _dicts(spec.get("ports")):
        _set(p, "protocol", "TCP")
        if p.get("targetPort") in (None, 0, "") and stype != "ExternalName":
            if p.get("port") is not None:
                p["targetPort"] = p["port"]
        if stype in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
            p["nodePort"] = _node_port(obj, p, ctx)
    if stype == "ExternalName":
        return
    if stype == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    if stype in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    _set(spec, "internalTrafficPolicy", "Cluster")
    cluster_ip = spec.get("clusterIP")
    ips = spec.get("clusterIPs")
    if not cluster_ip and isinstance(ips, list) and ips:
        cluster_ip = spec["clusterIP"] = ips[0]
    if not cluster_ip:
        cluster_ip = spec["clusterIP"] = ctx.allocate_cluster_ip()
    if not isinstance(ips, list) or not ips:
        spec["clusterIPs"] = [cluster_ip]
    headless = cluster_ip == "None"
    if headless and not spec.get("selector"):
        _set(spec, "ipFamilyPolicy", "RequireDualStack")
    _set(spec, "ipFamilyPolicy", "SingleStack")
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]
    status = _d(obj, "status")
    _set(status, "loadBalancer", {})


def _secret(obj: Obj, ctx: DefaultsContext) -> None:
    _set(obj, "type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v if v is not None else "").encode()).decode()


def _namespace(obj: Obj, ctx: DefaultsContext) -> None:
    meta = _d(obj, "metadata")
    name = meta.get("name")
    if name:
        _d(meta, "labels")["kubernetes.io/metadata.name"] = name
    spec = _d(obj, "spec")
    _set(spec, "finalizers", ["kubernetes"])
    _set(_d(obj, "status"), "phase", "Active")


def _pvc(obj: Obj, ctx: DefaultsContext) -> None:
    _set(_d(obj, "spec"), "volumeMode", "Filesystem")
    _set(_d(obj, "status"), "phase", "Pending")


def _pv(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    _set(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set(spec, "volumeMode", "Filesystem")
    _set(_d(obj, "status"), "phase", "Pending")


def _endpoints(obj: Obj, ctx: DefaultsContext) -> None:
    for subset in _dicts(obj.get("subsets")):
        for p in _dicts(subset.get("ports")):
            _set(p, "protocol", "TCP")


def _limitrange(obj: Obj, ctx: DefaultsContext) -> None:
    """Container limits without defaults inherit max, and defaultRequest inherits default."""
    for item in _dicts((obj.get("spec") or {}).get("limits") if isinstance(obj.get("spec"), dict) else None):
        if item.get("type") != "Container":
            continue
        default = item.get("default")
        if isinstance(item.get("max"), dict):
            default = item["default"] = {**item["max"], **(default or {})}
        if isinstance(default, dict):
            item["defaultRequest"] = {**default, **(item.get("defaultRequest") or {})}
        if isinstance(item.get("min"), dict):
            item["defaultRequest"] = {**item["min"], **(item.get("defaultRequest") or {})}


# ---------------------------------------------------------------------------------------------
# other groups
# ---------------------------------------------------------------------------------------------

def _network_policy(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    for rule_key in ("ingress", "egress"):
        for rule in _dicts(spec.get(rule_key)):
            for p in _dicts(rule.get("ports")):
                _set(p, "protocol", "TCP")
    if spec.get("policyTypes") is None:
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def _storage_class(obj: Obj, ctx: DefaultsContext) -> None:
    _set(obj, "reclaimPolicy", "Delete")
    _set(obj, "volumeBindingMode", "Immediate")


def _binding(obj: Obj, ctx: DefaultsContext) -> None:
    for s in _dicts(obj.get("subjects")):
        if s.get("apiGroup") is None:
            if s.get("kind") in ("User", "Group"):
                s["apiGroup"] = "rbac.authorization.k8s.io"
            elif s.get("kind") == "ServiceAccount":
                s["apiGroup"] = ""


def _crd(obj: Obj, ctx: DefaultsContext) -> None:
    spec = _d(obj, "spec")
    names = _d(spec, "names")
    if not names.get("singular") and names.get("kind"):
        names["singular"] = str(names["kind"]).lower()
    if not names.get("listKind") and names.get("kind"):
        names["listKind"] = f"{names['kind']}List"
    conv = _d(spec, "conversion")
    _set(conv, "strategy", "None")
    # status (acceptedNames, conditions, storedVersions) belongs to the CRD controller.


# ---------------------------------------------------------------------------------------------
# custom resources: structural-schema defaults
# ---------------------------------------------------------------------------------------------

def apply_schema_defaults(schema: Obj, value: Any) -> None:
    """OpenAPI ``default`` values of a CRD schema, applied where the object has the parent.

    Like the real apiserver: defaults apply inside objects that exist (and to list items),
    never create an absent parent unless the parent itself has a default.
    """
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and name not in value and "default" in sub:
                    value[name] = _copy(sub["default"])
            for name, sub in props.items():
                if name in value:
                    apply_schema_defaults(sub, value[name])
        ap = schema.get("additionalProperties")
        if isinstance(ap, dict):
            for k in value:
                if not (isinstance(props, dict) and k in props):
                    apply_schema_defaults(ap, value[k])
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                apply_schema_defaults(items, item)


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


_BY_KIND: dict[tuple[str, str], Callable[[Obj, DefaultsContext], None]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("", "Endpoints"): _endpoints,
    ("", "LimitRange"): _limitrange,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    ("rbac.authorization.k8s.io", "RoleBinding"): _binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _binding,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
