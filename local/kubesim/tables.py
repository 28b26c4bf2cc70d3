"""``as=Table`` answers: what ``kubectl get`` prints.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
columns the *server* chose; without a Table answer it falls back to NAME/AGE.
Columns, types and cell formats follow the API server's printers
(``pkg/printers/internalversion/printers.go``, Kubernetes 1.37): the server
always renders the wide columns (``GenerateOptions{Wide: true}``) and kubectl
hides those with ``priority`` 1 unless ``-o wide``. Custom resources follow the
apiextensions table convertor (``Name`` plus the CRD's
``additionalPrinterColumns``, by default ``Age``); built-in kinds without a
printer (Role, ClusterRole ...) follow the generic convertor (``Name``,
``Created At``).

Cells are rendered against an explicit ``now`` (kubesim's simulated clock), so
AGE columns are deterministic in tests.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from local.kubesim.clock import format_rfc3339, parse_rfc3339
from local.kubesim.types import ResourceType

Obj = dict[str, Any]
Column = dict[str, Any]
Row = dict[str, Any]

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_CREATED_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients may "
    "not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
    "Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."
_LB_WIDTH = 16


def _col(name: str, type_: str = "string", description: str = "", *, priority: int = 0,
         fmt: str = "") -> Column:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


def _name_col() -> Column:
    return _col("Name", "string", _NAME_DOC, fmt="name")


def _age_col() -> Column:
    return _col("Age", "string", _CREATED_DOC)


# ---------------------------------------------------------------------------
# Formatting helpers, each a port of the Go helper of the same purpose.
# ---------------------------------------------------------------------------

def human_duration(seconds: float) -> str:
    """``duration.HumanDuration`` of apimachinery: "5s", "3m2s", "10d", "2y30d"."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _since(timestamp: str | None, now: float) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a zero/absent time."""
    if not timestamp:
        return "<unknown>"
    try:
        return human_duration(now - parse_rfc3339(timestamp))
    except ValueError:
        return "<unknown>"


def _age(obj: Obj, now: float) -> str:
    return _since(obj.get("metadata", {}).get("creationTimestamp"), now)


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v,k=v`` or ``<none>``."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """``LabelSelectorAsSelector(sel).String()``: requirements sorted by key ("" for nil/empty)."""
    if not selector:
        return ""
    reqs: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        reqs.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key", "")
        op = expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            reqs.append((key, f"{key} in ({values})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({values})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: like ``selector_string`` but ``<none>`` when empty."""
    return selector_string(selector) or "<none>"


def _containers(template_spec: Mapping[str, Any] | None) -> tuple[str, str]:
    """``layoutContainerCells``: comma-joined container names and images."""
    containers = (template_spec or {}).get("containers") or []
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


def _template_spec(obj: Obj) -> Obj:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))


def _access_modes(modes: Iterable[str] | None) -> str:
    """``helper.GetAccessModesAsString``: short names in a fixed order."""
    present = set(modes or [])
    return ",".join(short for full, short in _ACCESS_MODES if full in present)


def _lb_ingress(status: Mapping[str, Any] | None) -> str:
    """``loadBalancerStatusStringer`` (wide: never clipped): sorted unique IPs/hostnames."""
    result: set[str] = set()
    for ing in (status or {}).get("ingress") or []:
        if ing.get("ip"):
            result.add(ing["ip"])
        elif ing.get("hostname"):
            result.add(ing["hostname"])
    return ",".join(sorted(result))


def _bool_ptr(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def _has_condition(obj: Obj, ctype: str) -> bool:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond.get("status") == "True"
    return False


# ---------------------------------------------------------------------------
# Printers: (column definitions, row function) per built-in kind.
# ---------------------------------------------------------------------------

RowFn = Callable[[Obj, float], tuple[list[Any], list[dict[str, str]] | None]]


def _pod_row(pod: Obj, now: float) -> tuple[list[Any], list[dict[str, str]] | None]:
    """``printPod``: READY n/m, STATUS from the container states, RESTARTS "n (5s ago)"."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    conditions: list[dict[str, str]] | None = None
    if phase == "Succeeded":
        conditions = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                       "message": "The pod has completed successfully."}]
    elif phase == "Failed":
        conditions = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}

    def restartable(name: str) -> bool:
        return (init_specs.get(name) or {}).get("restartPolicy") == "Always"

    total = len(spec.get("containers") or []) + sum(1 for n in init_specs if restartable(n))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart = 0.0
    sidecar_last_restart = 0.0

    def finished(cs: Obj) -> float:
        term = (cs.get("lastState") or {}).get("terminated") or {}
        try:
            return parse_rfc3339(term["finishedAt"]) if term.get("finishedAt") else 0.0
        except ValueError:
            return 0.0

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount", 0))
        last_restart = max(last_restart, finished(cs))
        if restartable(cs.get("name", "")):
            sidecar_restarts += int(cs.get("restartCount", 0))
            sidecar_last_restart = max(sidecar_last_restart, finished(cs))
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and int(term.get("exitCode", 0)) == 0:
            continue
        if restartable(cs.get("name", "")) and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                reason = (f"Init:Signal:{term['signal']}" if term.get("signal")
                          else f"Init:ExitCode:{term.get('exitCode', 0)}")
            else:
                reason = "Init:" + term["reason"]
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break

    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in status.get("conditions") or [])
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount", 0))
            last_restart = max(last_restart, finished(cs))
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            term = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(pod, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"

    ips = status.get("podIPs") or []
    pod_ip = ips[0].get("ip", "") if ips else status.get("podIP", "")
    gates = spec.get("readinessGates") or []
    gates_str = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in status.get("conditions") or []:
                if cond.get("type") == gate.get("conditionType"):
                    if cond.get("status") == "True":
                        true_count += 1
                    break
        gates_str = f"{true_count}/{len(gates)}"
    cells = [meta.get("name", ""), f"{ready}/{total}", reason, restarts_str, _age(pod, now),
             pod_ip or "<none>", spec.get("nodeName") or "<none>",
             status.get("nominatedNodeName") or "<none>", gates_str]
    return cells, conditions


def _deployment_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [obj["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0)), _age(obj, now),
            names, images, selector_string(spec.get("selector"))], None


def _replicaset_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [obj["metadata"]["name"], int(spec.get("replicas", 1)), int(status.get("replicas", 0)),
            int(status.get("readyReplicas", 0)), _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))], None


def _statefulset_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [obj["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            _age(obj, now), names, images], None


def _daemonset_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(_template_spec(obj))
    return [obj["metadata"]["name"], int(status.get("desiredNumberScheduled", 0)),
            int(status.get("currentNumberScheduled", 0)), int(status.get("numberReady", 0)),
            int(status.get("updatedNumberScheduled", 0)), int(status.get("numberAvailable", 0)),
            format_labels(_template_spec(obj).get("nodeSelector")), _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))], None


def _job_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = int(status.get("succeeded", 0))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    if status.get("startTime"):
        start = parse_rfc3339(status["startTime"])
        end = parse_rfc3339(status["completionTime"]) if status.get("completionTime") else now
        duration = human_duration(end - start)
    if _has_condition(obj, "Complete"):
        state = "Complete"
    elif _has_condition(obj, "Failed"):
        state = "Failed"
    elif obj["metadata"].get("deletionTimestamp"):
        state = "Terminating"
    elif _has_condition(obj, "Suspended"):
        state = "Suspended"
    elif _has_condition(obj, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_template_spec(obj))
    return [obj["metadata"]["name"], state, completions, duration, _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))], None


def _cronjob_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _containers(((job_spec.get("template") or {}).get("spec")) or {})
    last = _since(status["lastScheduleTime"], now) if status.get("lastScheduleTime") else "<none>"
    return [obj["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            _bool_ptr(spec.get("suspend")), len(status.get("active") or []), last, _age(obj, now),
            names, images, format_label_selector(job_spec.get("selector"))], None


def _service_external_ip(svc: Obj) -> str:
    """``getServiceExternalIP`` (wide)."""
    spec = svc.get("spec") or {}
    external = spec.get("externalIPs") or []
    stype = spec.get("type", "ClusterIP")
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if stype == "LoadBalancer":
        lb = _lb_ingress((svc.get("status") or {}).get("loadBalancer"))
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + list(external))
        return lb or "<pending>"
    if stype == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec = obj.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    pieces = []
    for port in spec.get("ports") or []:
        proto = port.get("protocol", "TCP")
        if port.get("nodePort"):
            pieces.append(f"{port.get('port')}:{port['nodePort']}/{proto}")
        else:
            pieces.append(f"{port.get('port')}/{proto}")
    return [obj["metadata"]["name"], spec.get("type", "ClusterIP"), cluster_ips[0] if cluster_ips else "<none>",
            _service_external_ip(obj), ",".join(pieces) or "<none>", _age(obj, now),
            format_labels(spec.get("selector"))], None


def _ingress_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec = obj.get("spec") or {}
    rules = spec.get("rules") or []
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    host_str = "*" if not hosts else ",".join(hosts)
    if hosts and more:
        host_str = f"{host_str} + {len(rules) - 3} more..."
    return [obj["metadata"]["name"], spec.get("ingressClassName") or "<none>", host_str,
            _lb_ingress((obj.get("status") or {}).get("loadBalancer")),
            "80, 443" if spec.get("tls") else "80", _age(obj, now)], None


def _configmap_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    return [obj["metadata"]["name"], len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
            _age(obj, now)], None


def _secret_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    return [obj["metadata"]["name"], obj.get("type", "Opaque"), len(obj.get("data") or {}), _age(obj, now)], None


def _namespace_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", ""), _age(obj, now)], None


def _serviceaccount_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    return [obj["metadata"]["name"], len(obj.get("secrets") or []), _age(obj, now)], None


def _pvc_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if obj["metadata"].get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = _access_modes(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage", ""))
    storage_class = spec.get("storageClassName")
    if storage_class is None:
        storage_class = (obj["metadata"].get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class", "")
    return [obj["metadata"]["name"], phase, spec.get("volumeName", ""), capacity, modes, storage_class,
            spec.get("volumeAttributesClassName") or "<unset>", _age(obj, now),
            spec.get("volumeMode") or "<unset>"], None


def _endpoints_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    """``formatEndpoints`` with all ports: ``ip:port`` list, at most 3 then ``+ N more...``."""
    subsets = obj.get("subsets") or []
    if not subsets:
        return [obj["metadata"]["name"], "<none>", _age(obj, now)], None
    items: list[str] = []
    count = 0
    more = False
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            count += len(addrs)
            for a in addrs:
                if len(items) == 3:
                    more = True
                    break
                items.append(a.get("ip", ""))
            continue
        for p in ports:
            count += len(addrs)
            for a in addrs:
                if len(items) == 3:
                    more = True
                    break
                ip = a.get("ip", "")
                items.append(f"[{ip}]:{p.get('port')}" if ":" in ip else f"{ip}:{p.get('port')}")
    text = ",".join(items)
    if more:
        text = f"{text} + {count - 3} more..."
    return [obj["metadata"]["name"], text, _age(obj, now)], None


def _event_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    first = _since(obj.get("firstTimestamp"), now) if obj.get("firstTimestamp") else _since(obj.get("eventTime"), now)
    last = _since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 0
    if obj.get("series"):
        last = _since(obj["series"].get("lastObservedTime"), now)
        count = obj["series"].get("count", 0)
    elif not count:
        count = 1
    involved = obj.get("involvedObject") or {}
    target = involved.get("kind", "").lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [last, obj.get("type", ""), obj.get("reason", ""), target, involved.get("fieldPath", ""),
            f"{component}, {instance}" if instance else component, (obj.get("message") or "").strip(),
            first, int(count), obj["metadata"]["name"]], None


def _binding_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    ref = obj.get("roleRef") or {}
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for subject in obj.get("subjects") or []:
        kind = subject.get("kind")
        if kind == "User":
            users.append(subject.get("name", ""))
        elif kind == "Group":
            groups.append(subject.get("name", ""))
        elif kind == "ServiceAccount":
            sas.append(f"{subject.get('namespace', '')}/{subject.get('name', '')}")
    return [obj["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(obj, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)], None


def _networkpolicy_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    return [obj["metadata"]["name"], format_label_selector((obj.get("spec") or {}).get("podSelector")),
            _age(obj, now)], None


def _storageclass_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    name = obj["metadata"]["name"]
    ann = obj["metadata"].get("annotations") or {}
    if "true" in (ann.get("storageclass.kubernetes.io/is-default-class"),
                  ann.get("storageclass.beta.kubernetes.io/is-default-class")):
        name += " (default)"
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion", False)),
            _age(obj, now)], None


def _pdb_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec = obj.get("spec") or {}
    min_a = spec.get("minAvailable")
    max_u = spec.get("maxUnavailable")
    return [obj["metadata"]["name"], "N/A" if min_a is None else str(min_a), "N/A" if max_u is None else str(max_u),
            int((obj.get("status") or {}).get("disruptionsAllowed", 0)), _age(obj, now)], None


def _hpa_row(obj: Obj, now: float) -> tuple[list[Any], None]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics = spec.get("metrics") or []
    targets = "<none>"
    if metrics:
        parts = []
        for m in metrics[:2]:
            if m.get("type") == "Resource":
                target = (m.get("resource") or {}).get("target") or {}
                value = (f"{target['averageUtilization']}%" if "averageUtilization" in target
                         else str(target.get("averageValue", "<auto>")))
                parts.append(f"{m['resource'].get('name', '')}: <unknown>/{value}")
            else:
                parts.append("<unknown>")
        targets = ", ".join(parts) + (f" + {len(metrics) - 2} more..." if len(metrics) > 2 else "")
    min_pods = str(spec["minReplicas"]) if spec.get("minReplicas") is not None else "<unset>"
    return [obj["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", targets, min_pods,
            int(spec.get("maxReplicas", 0)), int(status.get("currentReplicas", 0)), _age(obj, now)], None


_WORKLOAD_WIDE = [_col("Containers", description=_CONTAINERS_DOC, priority=1),
                  _col("Images", description=_IMAGES_DOC, priority=1)]

PRINTERS: dict[tuple[str, str], tuple[list[Column], RowFn]] = {
    ("", "Pod"): ([
        _name_col(),
        _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", description="The aggregate status of the containers in this pod."),
        _col("Restarts", description="The number of times the containers in this pod have been restarted "
             "and when the last container in this pod has restarted."),
        _age_col(),
        _col("IP", description="podIP address allocated to the pod.", priority=1),
        _col("Node", description="NodeName indicates in which node this pod is scheduled.", priority=1),
        _col("Nominated Node", description="nominatedNodeName is set only when this pod preempts other pods "
             "on the node.", priority=1),
        _col("Readiness Gates", description="If specified, all readiness gates will be evaluated for pod "
             "readiness.", priority=1),
    ], _pod_row),
    ("apps", "Deployment"): ([
        _name_col(),
        _col("Ready", description="Number of the pod with ready state"),
        _col("Up-to-date", description="Total number of non-terminating pods targeted by this deployment "
             "that have the desired template spec."),
        _col("Available", description="Total number of available non-terminating pods (ready for at least "
             "minReadySeconds) targeted by this deployment."),
        _age_col(), *_WORKLOAD_WIDE,
        _col("Selector", description="Label selector for pods.", priority=1),
    ], _deployment_row),
    ("apps", "ReplicaSet"): ([
        _name_col(),
        _col("Desired", "integer", "Replicas is the number of desired pods."),
        _col("Current", "integer", "Replicas is the most recently observed number of non-terminating pods."),
        _col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a "
             "Ready Condition."),
        _age_col(), *_WORKLOAD_WIDE,
        _col("Selector", description="Selector is a label query over pods that should match the replica "
             "count.", priority=1),
    ], _replicaset_row),
    ("apps", "StatefulSet"): ([
        _name_col(), _col("Ready", description="Number of the pod with ready state"), _age_col(), *_WORKLOAD_WIDE,
    ], _statefulset_row),
    ("apps", "DaemonSet"): ([
        _name_col(),
        _col("Desired", "integer", "The total number of nodes that should be running the daemon pod."),
        _col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are "
             "supposed to run the daemon pod."),
        _col("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod "
             "and have one or more of the daemon pod running with a Ready Condition."),
        _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
        _col("Available", "integer", "The number of nodes that should be running the daemon pod and have "
             "one or more of the daemon pod running and available."),
        _col("Node Selector", description="NodeSelector is a selector which must be true for the pod to fit "
             "on a node."),
        _age_col(), *_WORKLOAD_WIDE,
        _col("Selector", description="A label query over pods that are managed by the daemon set.", priority=1),
    ], _daemonset_row),
    ("batch", "Job"): ([
        _name_col(),
        _col("Status", description="Status of the job."),
        _col("Completions", description="The number of pods which reached phase Succeeded."),
        _col("Duration", description="Time required to complete the job."),
        _age_col(), *_WORKLOAD_WIDE,
        _col("Selector", description="A label query over pods that should match the pod count.", priority=1),
    ], _job_row),
    ("batch", "CronJob"): ([
        _name_col(),
        _col("Schedule", description="The schedule in Cron format."),
        _col("Timezone", description="The time zone name for the given schedule."),
        _col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions."),
        _col("Active", "integer", "A list of pointers to currently running jobs."),
        _col("Last Schedule", description="Information when was the last time the job was successfully "
             "scheduled."),
        _age_col(), *_WORKLOAD_WIDE,
        _col("Selector", description="A label query over pods that should match the pod count.", priority=1),
    ], _cronjob_row),
    ("", "Service"): ([
        _name_col(),
        _col("Type", description="type determines how the Service is exposed."),
        _col("Cluster-IP", description="clusterIP is the IP address of the service."),
        _col("External-IP", description="externalIPs is a list of IP addresses for which nodes in the "
             "cluster will also accept traffic for this service."),
        _col("Port(s)", description="The list of ports that are exposed by this service."),
        _age_col(),
        _col("Selector", description="Route service traffic to pods with label keys and values matching "
             "this selector.", priority=1),
    ], _service_row),
    ("networking.k8s.io", "Ingress"): ([
        _name_col(),
        _col("Class", description="The name of the IngressClass resource that should be used for additional "
             "configuration"),
        _col("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
        _col("Address", description="Address is a list containing ingress points for the load-balancer"),
        _col("Ports", description="Ports of TLS configurations that open"),
        _age_col(),
    ], _ingress_row),
    ("", "ConfigMap"): ([
        _name_col(), _col("Data", description="Data contains the configuration data."), _age_col(),
    ], _configmap_row),
    ("", "Secret"): ([
        _name_col(), _col("Type", description="Used to facilitate programmatic handling of secret data."),
        _col("Data", description="Data contains the secret data."), _age_col(),
    ], _secret_row),
    ("", "Namespace"): ([
        _name_col(), _col("Status", description="The status of the namespace"), _age_col(),
    ], _namespace_row),
    ("", "ServiceAccount"): ([
        _name_col(), _col("Secrets", description="Secrets is a list of the secrets in the same namespace "
                          "that pods running using this ServiceAccount are allowed to use."), _age_col(),
    ], _serviceaccount_row),
    ("", "PersistentVolumeClaim"): ([
        _name_col(),
        _col("Status", description="phase represents the current phase of PersistentVolumeClaim."),
        _col("Volume", description="volumeName is the binding reference to the PersistentVolume backing "
             "this claim."),
        _col("Capacity", description="capacity represents the actual resources of the underlying volume."),
        _col("Access Modes", description="accessModes contains the actual access modes the volume backing "
             "the PVC has."),
        _col("StorageClass", description="StorageClass of the pvc"),
        _col("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
        _age_col(),
        _col("VolumeMode", description="volumeMode defines what type of volume is required by the claim.",
             priority=1),
    ], _pvc_row),
    ("", "Endpoints"): ([
        _name_col(), _col("Endpoints", description="The set of all endpoints is the union of all subsets."),
        _age_col(),
    ], _endpoints_row),
    ("", "Event"): ([
        _col("Last Seen", description="The time at which the most recent occurrence of this event was "
             "recorded."),
        _col("Type", description="Type of this event (Normal, Warning), new types could be added in the "
             "future"),
        _col("Reason", description="This should be a short, machine understandable string that gives the "
             "reason for the transition into the object's current status."),
        _col("Object", description="The object that this event is about."),
        _col("Subobject", description="If referring to a piece of an object instead of an entire object, "
             "this string should contain a valid JSON/Go field access statement.", priority=1),
        _col("Source", description="The component reporting this event.", priority=1),
        _col("Message", description="A human-readable description of the status of this operation."),
        _col("First Seen", description="The time at which the event was first recorded.", priority=1),
        _col("Count", description="The number of times this event has occurred.", priority=1),
        _col("Name", description=_NAME_DOC, priority=1, fmt="name"),
    ], _event_row),
    ("rbac.authorization.k8s.io", "RoleBinding"): ([
        _name_col(), _col("Role", description="RoleRef can reference a Role in the current namespace or a "
                          "ClusterRole in the global namespace."), _age_col(),
        _col("Users", description="Users in the roleBinding", priority=1),
        _col("Groups", description="Groups in the roleBinding", priority=1),
        _col("ServiceAccounts", description="ServiceAccounts in the roleBinding", priority=1),
    ], _binding_row),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ([
        _name_col(), _col("Role", description="RoleRef can only reference a ClusterRole in the global "
                          "namespace."), _age_col(),
        _col("Users", description="Users in the clusterRoleBinding", priority=1),
        _col("Groups", description="Groups in the clusterRoleBinding", priority=1),
        _col("ServiceAccounts", description="ServiceAccounts in the clusterRoleBinding", priority=1),
    ], _binding_row),
    ("networking.k8s.io", "NetworkPolicy"): ([
        _name_col(), _col("Pod-Selector", description="Selects the pods to which this NetworkPolicy object "
                          "applies."), _age_col(),
    ], _networkpolicy_row),
    ("storage.k8s.io", "StorageClass"): ([
        _name_col(), _col("Provisioner", description="provisioner indicates the type of the provisioner."),
        _col("ReclaimPolicy", description="reclaimPolicy controls the reclaimPolicy for dynamically "
             "provisioned PersistentVolumes of this storage class."),
        _col("VolumeBindingMode", description="volumeBindingMode indicates how PersistentVolumeClaims should "
             "be provisioned and bound."),
        _col("AllowVolumeExpansion", description="allowVolumeExpansion shows whether the storage class allow "
             "volume expand."),
        _age_col(),
    ], _storageclass_row),
    ("policy", "PodDisruptionBudget"): ([
        _name_col(), _col("Min Available", description="The minimum number of pods that must be available."),
        _col("Max Unavailable", description="The maximum number of pods that may be unavailable."),
        _col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        _age_col(),
    ], _pdb_row),
    ("autoscaling", "HorizontalPodAutoscaler"): ([
        _name_col(), _col("Reference", description="scaleTargetRef points to the target resource to scale."),
        _col("Targets", description="metrics contains the specifications for which to use to calculate the "
             "desired replica count."),
        _col("MinPods", description="minReplicas is the lower limit for the number of replicas."),
        _col("MaxPods", description="maxReplicas is the upper limit for the number of replicas."),
        _col("Replicas", description="currentReplicas is current number of replicas of pods managed by this "
             "autoscaler."),
        _age_col(),
    ], _hpa_row),
}


# ---------------------------------------------------------------------------
# Custom resources: the CRD's additionalPrinterColumns (a small JSONPath).
# ---------------------------------------------------------------------------

_DEFAULT_CRD_COLUMNS: list[dict[str, Any]] = [
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
_TOKEN = re.compile(r"\.([A-Za-z0-9_\-$/]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]"
                    r"|\['([^']+)'\]")


def json_path(obj: Any, path: str) -> list[Any]:
    """Evaluate the simple JSONPath subset CRD printer columns use (``.a.b``, ``[0]``, ``[*]``, ``[?(@.k=="v")]``)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if text.startswith("$"):
        text = text[1:]
    current: list[Any] = [obj]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            return []
        pos = m.end()
        field, index, fkey, fval, quoted = m.groups()
        nxt: list[Any] = []
        for value in current:
            if field is not None or quoted is not None:
                key = field if field is not None else quoted
                if isinstance(value, dict) and key in value:
                    nxt.append(value[key])
            elif index is not None:
                if isinstance(value, list):
                    if index == "*":
                        nxt.extend(value)
                    elif int(index) < len(value):
                        nxt.append(value[int(index)])
            elif fkey is not None and isinstance(value, list):
                for item in value:
                    probe: Any = item
                    for part in fkey.split("."):
                        probe = probe.get(part) if isinstance(probe, dict) else None
                    if probe is not None and str(probe) == fval:
                        nxt.append(item)
        current = nxt
    return current


def _cell_for_json_value(type_: str, value: Any, now: float) -> Any:
    """apiextensions ``cellForJSONValue``: typed cells, dates as ages, None when the type does not fit."""
    if value is None:
        return None
    if type_ == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    if type_ == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if type_ == "date":
        if not isinstance(value, str):
            return None
        try:
            return human_duration(now - parse_rfc3339(value))
        except ValueError:
            return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _custom_columns(printer_columns: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return list(printer_columns) if printer_columns else list(_DEFAULT_CRD_COLUMNS)


# ---------------------------------------------------------------------------
# The Table itself.
# ---------------------------------------------------------------------------

def _row_object(rt: ResourceType, obj: Obj, include_object: str) -> Any:
    if include_object == "None":
        return None
    if include_object == "Object":
        full = dict(obj)
        full.setdefault("apiVersion", rt.api_version)
        full.setdefault("kind", rt.kind)
        return full
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(obj.get("metadata") or {})}


def columns_for(rt: ResourceType, printer_columns: list[dict[str, Any]] | None = None) -> list[Column]:
    """The column definitions the server sends for ``rt`` (see module docstring)."""
    printer = PRINTERS.get((rt.group, rt.kind))
    if printer is not None and not rt.is_custom:
        return [dict(c) for c in printer[0]]
    if rt.is_custom:
        cols = [_name_col()]
        for pc in _custom_columns(printer_columns):
            cols.append({"name": pc.get("name", ""), "type": pc.get("type", "string"),
                         "format": pc.get("format", ""), "description": pc.get("description", ""),
                         "priority": int(pc.get("priority", 0))})
        return cols
    return [_name_col(), _col("Created At", "date", _CREATED_DOC)]


def _cells(rt: ResourceType, obj: Obj, now: float,
           printer_columns: list[dict[str, Any]] | None) -> tuple[list[Any], list[dict[str, str]] | None]:
    printer = PRINTERS.get((rt.group, rt.kind))
    if printer is not None and not rt.is_custom:
        return printer[1](obj, now)
    meta = obj.get("metadata") or {}
    if rt.is_custom:
        cells: list[Any] = [meta.get("name", "")]
        for pc in _custom_columns(printer_columns):
            found = json_path(obj, pc.get("jsonPath", ""))
            cells.append(_cell_for_json_value(pc.get("type", "string"), found[0], now) if found else None)
        return cells, None
    created = meta.get("creationTimestamp")
    return [meta.get("name", ""), format_rfc3339(parse_rfc3339(created)) if created else "0001-01-01T00:00:00Z"], None


def to_table(
    rt: ResourceType,
    objects: Iterable[Obj],
    include_object: str = "Metadata",
    *,
    now: float | None = None,
    printer_columns: list[dict[str, Any]] | None = None,
    no_headers: bool = False,
    resource_version: str = "",
    continue_token: str = "",
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (one row each, in the given order).

    ``include_object``: ``Metadata`` (default, PartialObjectMetadata), ``Object`` or ``None``
    (the ``includeObject`` query parameter). ``now``: epoch seconds to compute ages from (pass the
    simulated clock's ``now()``). ``printer_columns``: a CRD version's ``additionalPrinterColumns``.
    ``no_headers``: ``TableOptions.noHeaders`` (column definitions omitted, as the server does).
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    at = time.time() if now is None else now
    rows: list[Row] = []
    for obj in objects:
        cells, conditions = _cells(rt, obj, at, printer_columns)
        row: Row = {"cells": cells}
        if conditions:
            row["conditions"] = conditions
        row["object"] = _row_object(rt, obj, include_object)
        rows.append(row)
    metadata: dict[str, str] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    table: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}
    table["columnDefinitions"] = [] if no_headers else columns_for(rt, printer_columns)
    table["rows"] = rows
    return table
