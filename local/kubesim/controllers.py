"""Simulated kube-controller-manager, scheduler and kubelet for kubesim.

gitferry's health rules (``shared/SEMANTICS.md``) read what controllers write:
``observedGeneration``, replica counts, Deployment conditions, pod container
states. Without controllers every Deployment would stay "Progressing" forever
and a broken image would never look broken. This module produces those fields
the way the real controllers do (Deployment -> ReplicaSet -> Pods with
``pod-template-hash``, rolling updates bounded by maxSurge/maxUnavailable,
``ProgressDeadlineExceeded``, Job conditions of 1.31+ ...), with fixed,
documented timing so tests are deterministic:

* a pod gets its sandbox (podIP, PodReadyToStartContainers) 1 s after creation,
  its containers run from then on and are Ready 2 s after creation;
* images whose name contains ``imagepullbackoff``/``errimagepull``,
  ``crashloop`` or ``neverready`` (case-insensitive), or that match a pattern
  given to ``fail_image``, fail the way a kubelet reports it;
* Job pods (restartPolicy Never/OnFailure) finish 2 s after creation, Failed
  when the image contains ``fail``.

Design: every controller is a *pure planner*: given the current objects and
``now`` it returns the writes to make (``Write``). ``Controllers.reconcile()``
lists from the store, runs the planners and performs their writes through the
store (manager ``kube-controller-manager``; status through the ``status``
subresource, with the resourceVersion it read so a concurrent client write makes
it retry instead of clobbering). Passes repeat until nothing changes, so a
second ``reconcile()`` at the same simulated time writes nothing.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import marshal
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from local.kubesim.clock import Clock, parse_rfc3339
from local.kubesim.clock import format_rfc3339 as _format_rfc3339
from local.kubesim.errors import ApiError
from local.kubesim.types import ResourceType

Obj = dict[str, Any]
Kind = tuple[str, str]  # (group, kind)

MANAGER = "kube-controller-manager"
NODE_NAME = "kubesim-node-1"
NODE_IP = "192.168.49.2"
NODE_LABELS = {
    "kubernetes.io/hostname": NODE_NAME,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "node-role.kubernetes.io/control-plane": "",
}
SANDBOX_AFTER = 1.0   # simulated seconds until the pod sandbox (IP) exists and containers start
READY_AFTER = 2.0     # simulated seconds until containers are Ready / Job pods finish
MAX_PASSES = 40       # safety bound of one reconcile(); a healthy pass converges in a handful

DEPLOYMENT: Kind = ("apps", "Deployment")
REPLICASET: Kind = ("apps", "ReplicaSet")
STATEFULSET: Kind = ("apps", "StatefulSet")
DAEMONSET: Kind = ("apps", "DaemonSet")
JOB: Kind = ("batch", "Job")
POD: Kind = ("", "Pod")
PVC: Kind = ("", "PersistentVolumeClaim")
PV: Kind = ("", "PersistentVolume")
SERVICE: Kind = ("", "Service")
INGRESS: Kind = ("networking.k8s.io", "Ingress")
NAMESPACE: Kind = ("", "Namespace")

FAILURE_MODES = ("ImagePullBackOff", "CrashLoopBackOff", "NeverReady")
_BUILTIN_FAILURES: tuple[tuple[str, str], ...] = (
    ("imagepullbackoff", "ImagePullBackOff"),
    ("errimagepull", "ImagePullBackOff"),
    ("crashloop", "CrashLoopBackOff"),
    ("neverready", "NeverReady"),
)
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand


# A pass formats the same few instants (pod birth + 1 s / + 2 s, now) for every object: memoise.
format_rfc3339 = functools.lru_cache(maxsize=8192)(_format_rfc3339)


def _deep_copy(value: Any) -> Any:
    """Copy a JSON value; ``marshal`` round-trips dict/list/str/number trees exactly and is several
    times faster than ``copy.deepcopy`` (which stays the fallback for anything else)."""
    if isinstance(value, (dict, list)):
        try:
            return marshal.loads(marshal.dumps(value))
        except ValueError:
            pass
    return copy.deepcopy(value)


# ---------------------------------------------------------------------------
# Plan vocabulary
# ---------------------------------------------------------------------------

@dataclass
class Write:
    """One write a planner wants: ``create``, ``update`` (spec/metadata), ``status``, ``bind`` or ``delete``."""

    op: str
    kind: Kind
    namespace: str | None
    name: str
    obj: Obj | None = None
    # Set on pod creations: simulated time the pod is born (timing of its kubelet states).
    born: float | None = None


@dataclass
class PlanContext:
    """What planners may know besides the objects: time and the simulation's knobs."""

    now: float
    failure: Callable[[str], str | None] = lambda image: None
    born: Callable[[Obj], float] | None = None
    name_seq: dict[str, int] = field(default_factory=dict)
    # id(template) -> (template, collision_count, hash). Only set by ``Controllers``, whose objects
    # come from the store without copies and are never mutated, so identity implies equal content.
    hash_cache: dict[int, tuple[Obj, int, str]] | None = None

    def template_hash(self, template: Mapping[str, Any], collision_count: int = 0) -> str:
        """``template_hash`` memoised per template object (see ``hash_cache``)."""
        cache = self.hash_cache
        if cache is None:
            return template_hash(template, collision_count)
        hit = cache.get(id(template))
        if hit is not None and hit[0] is template and hit[1] == collision_count:
            return hit[2]
        value = template_hash(template, collision_count)
        cache[id(template)] = (template, collision_count, value)  # type: ignore[assignment]
        return value

    def rfc(self, t: float | None = None) -> str:
        return format_rfc3339(self.now if t is None else t)

    def pod_born(self, pod: Obj) -> float:
        if self.born is not None:
            return self.born(pod)
        return creation_time(pod) or self.now

    def child_name(self, owner: Obj, taken: set[str]) -> str:
        """``<owner>-<5 chars>``: looks random like generateName, but is a function of owner uid and a counter."""
        uid = owner["metadata"].get("uid", owner["metadata"]["name"])
        prefix = owner["metadata"]["name"] + "-"
        while True:
            seq = self.name_seq.get(uid, 0)
            self.name_seq[uid] = seq + 1
            digest = hashlib.sha256(f"{uid}/{seq}".encode()).digest()
            name = prefix + "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in digest[:5])
            if name not in taken:
                taken.add(name)
                return name


# ---------------------------------------------------------------------------
# Small helpers shared by planners
# ---------------------------------------------------------------------------

def creation_time(obj: Obj) -> float | None:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    if not ts:
        return None
    try:
        return parse_rfc3339(ts)
    except ValueError:
        return None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """metav1.LabelSelector semantics: None matches nothing, {} matches everything."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def controller_of(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owned_by(objs: Iterable[Obj], owner: Obj) -> list[Obj]:
    uid = owner["metadata"].get("uid")
    return [o for o in objs if (controller_of(o) or {}).get("uid") == uid]


def owner_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"].get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: maps each byte onto a vowel-free alphabet (no bad words in names)."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """``controller.ComputeHash``: fnv32a of the template (without its own hash label), safe-encoded."""
    tpl = _deep_copy(dict(template))
    labels = (tpl.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop("pod-template-hash", None)
        labels.pop("controller-revision-hash", None)
    data = json.dumps(tpl, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def _int_or_percent(value: Any, total: int, round_up: bool, default: str) -> int:
    if value is None:
        value = default
    if isinstance(value, str) and value.endswith("%"):
        pct = float(value[:-1] or 0)
        raw = pct * total / 100.0
        return int(math.ceil(raw)) if round_up else int(math.floor(raw))
    return int(value)


def rolling_params(dep: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved like ``deploymentutil.ResolveFenceposts``."""
    spec = dep.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    surge = _int_or_percent(ru.get("maxSurge"), replicas, True, "25%")
    unavailable = _int_or_percent(ru.get("maxUnavailable"), replicas, False, "25%")
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(dep: Obj) -> int:
    """``deploymentutil.MaxUnavailable``: 0 for Recreate or 0 replicas, capped at replicas."""
    spec = dep.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    if (spec.get("strategy") or {}).get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    return min(rolling_params(dep)[1], replicas)


def _omit_zero(status: Obj, keys: Iterable[str]) -> Obj:
    """Go's ``omitempty``: zero counters are absent from real status objects."""
    for key in keys:
        if status.get(key) in (0, None):
            status.pop(key, None)
    return status


def _sort_key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("creationTimestamp", ""), meta.get("name", ""))


def pod_is_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_ready_since(pod: Obj) -> float | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            try:
                return parse_rfc3339(cond.get("lastTransitionTime", ""))
            except ValueError:
                return None
    return None


def pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    if not pod_is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_since(pod)
    return since is not None and since + min_ready_seconds <= now


def pod_active(pod: Obj) -> bool:
    """Counts toward a controller's replicas: not being deleted, not finished."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _pod_from_template(owner: Obj, template: Obj, name: str, ref: Obj, extra_labels: Mapping[str, str],
                       *, node: bool = True) -> Obj:
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update(extra_labels)
    meta: Obj = {"name": name, "generateName": owner["metadata"]["name"] + "-",
                 "namespace": owner["metadata"].get("namespace"), "labels": labels, "ownerReferences": [ref]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    spec = _deep_copy(template.get("spec") or {})
    if node and not spec.get("nodeName"):
        spec["nodeName"] = NODE_NAME  # the simulated scheduler binds at once: one node, always fits
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _status_write(kind: Kind, obj: Obj, status: Obj) -> Write | None:
    """A status write when ``status`` differs from what the object carries."""
    if (obj.get("status") or {}) == status:
        return None
    new = _deep_copy(obj)
    new["status"] = status
    return Write("status", kind, obj["metadata"].get("namespace"), obj["metadata"]["name"], new)


# ---------------------------------------------------------------------------
# Kubelet: pod status as a function of (pod, age, failure mode)
# ---------------------------------------------------------------------------

def image_failure(image: str, patterns: Iterable[tuple[str, str]] = ()) -> str | None:
    """Failure mode of an image: explicit ``fail_image`` patterns first, then the built-in name markers."""
    low = image.lower()
    for pattern, mode in patterns:
        if pattern.lower() in low:
            return mode
    for marker, mode in _BUILTIN_FAILURES:
        if marker in low:
            return mode
    return None


def _crash_times(elapsed: float) -> list[float]:
    """Crash instants (seconds after creation) of a CrashLoopBackOff container up to ``elapsed``.

    The container runs 1 s, exits 1, and is restarted after the kubelet's back-off
    (10 s doubling, capped at 300 s), like the real kubelet.
    """
    times: list[float] = []
    t = READY_AFTER
    backoff = 10.0
    while t <= elapsed and len(times) < 10_000:
        times.append(t)
        t = t + backoff + 1.0
        backoff = min(backoff * 2, 300.0)
    return times


def _cond(ctype: str, status: bool, since: float, reason: str = "", message: str = "") -> Obj:
    out: Obj = {"type": ctype, "status": "True" if status else "False", "lastProbeTime": None,
                "lastTransitionTime": format_rfc3339(since)}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def _qos_class(spec: Obj) -> str:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests_any = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim.get(r)) != lim.get(r):
                guaranteed = False
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _image_ref(image: str) -> str:
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":")[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in name.split("/")[0] and ":" not in name.split("/")[0] and name.split("/")[0] != "localhost":
        name = "docker.io/" + name
    return f"{name}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _container_id(pod: Obj, name: str, restart: int) -> str:
    uid = pod["metadata"].get("uid", pod["metadata"]["name"])
    return "containerd://" + hashlib.sha256(f"{uid}/{name}/{restart}".encode()).hexdigest()


def is_job_pod(pod: Obj) -> bool:
    ref = controller_of(pod) or {}
    return ref.get("kind") == "Job" and (pod.get("spec") or {}).get("restartPolicy") in ("Never", "OnFailure")


def pod_status(pod: Obj, now: float, born: float, failure: Callable[[str], str | None], pod_ip: str) -> Obj:
    """The status a kubelet would report for ``pod`` at ``now`` (pure; see module docstring for timing)."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    elapsed = now - born
    sandbox = elapsed >= SANDBOX_AFTER
    job_pod = is_job_pod(pod)
    statuses: list[Obj] = []
    all_ready = True
    phase_running = sandbox
    finished: str | None = None  # "Succeeded" | "Failed" for job pods
    unready: list[str] = []
    started_at = format_rfc3339(born + SANDBOX_AFTER)

    for c in spec.get("containers") or []:
        cname, image = c.get("name", ""), c.get("image", "")
        mode = failure(image)
        cs: Obj = {"name": cname, "image": image, "imageID": "", "ready": False, "restartCount": 0,
                   "started": False, "state": {}, "lastState": {}}
        if not sandbox:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif mode == "ImagePullBackOff":
            if elapsed < READY_AFTER + 1:
                cs["state"] = {"waiting": {"reason": "ErrImagePull", "message": (
                    f'failed to pull and unpack image "{_image_ref(image).split("@")[0]}": failed to resolve '
                    f"reference: {image}: not found")}}
            else:
                cs["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                           "message": f'Back-off pulling image "{image}"'}}
            phase_running = False
        elif job_pod:
            cs["imageID"] = _image_ref(image)
            cs["containerID"] = _container_id(pod, cname, 0)
            if elapsed < READY_AFTER:
                cs.update(ready=True, started=True, state={"running": {"startedAt": started_at}})
            else:
                failed = "fail" in image.lower() or mode in ("CrashLoopBackOff",)
                cs["state"] = {"terminated": {
                    "exitCode": 1 if failed else 0, "reason": "Error" if failed else "Completed",
                    "startedAt": started_at, "finishedAt": format_rfc3339(born + READY_AFTER),
                    "containerID": cs["containerID"]}}
                if failed:
                    finished = "Failed"
                elif finished is None:
                    finished = "Succeeded"
        elif mode == "CrashLoopBackOff" and elapsed >= READY_AFTER:
            crashes = _crash_times(elapsed)
            last = born + crashes[-1]  # _crash_times counts seconds after creation
            backoff = min(10.0 * 2 ** (len(crashes) - 1), 300.0)
            cs["imageID"] = _image_ref(image)
            cs["containerID"] = _container_id(pod, cname, len(crashes) - 1)
            cs["restartCount"] = len(crashes)
            cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {int(backoff)}s restarting failed container={cname} "
                f"pod={name}_{pod['metadata'].get('namespace', '')}({pod['metadata'].get('uid', '')})")}}
            cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                              "startedAt": format_rfc3339(last - 1.0),
                                              "finishedAt": format_rfc3339(last),
                                              "containerID": cs["containerID"]}}
        else:
            ready = mode != "NeverReady" and mode != "CrashLoopBackOff" and elapsed >= READY_AFTER
            cs.update(imageID=_image_ref(image), containerID=_container_id(pod, cname, 0), ready=ready,
                      started=True, state={"running": {"startedAt": started_at}})
        if not cs["ready"]:
            all_ready = False
            unready.append(cname)
        statuses.append(cs)

    status: Obj = {"hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}], "startTime": format_rfc3339(born),
                   "qosClass": _qos_class(spec)}
    if sandbox:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    names = ", ".join(unready)
    if finished is not None and all(("terminated" in s["state"]) for s in statuses):
        done_at = born + READY_AFTER
        status["phase"] = finished
        status["conditions"] = [
            _cond("PodReadyToStartContainers", False, done_at),
            _cond("Initialized", True, born),
            _cond("Ready", False, done_at, "PodCompleted"),
            _cond("ContainersReady", False, done_at, "PodCompleted"),
            _cond("PodScheduled", True, born),
        ]
    else:
        status["phase"] = "Running" if phase_running and statuses else "Pending"
        if all_ready and statuses:
            ready_at = born + READY_AFTER
            ready_conds = [_cond("Ready", True, ready_at), _cond("ContainersReady", True, ready_at)]
        else:
            msg = f"containers with unready status: [{names}]"
            ready_conds = [_cond("Ready", False, born, "ContainersNotReady", msg),
                           _cond("ContainersReady", False, born, "ContainersNotReady", msg)]
        status["conditions"] = [
            _cond("PodReadyToStartContainers", sandbox, born + SANDBOX_AFTER if sandbox else born),
            _cond("Initialized", True, born),
            *ready_conds,
            _cond("PodScheduled", True, born),
        ]
    status["containerStatuses"] = statuses
    return status


def plan_pods(pods: list[Obj], ctx: PlanContext) -> list[Write]:
    """Scheduler + kubelet: bind unscheduled pods, then report status for every live pod."""
    writes: list[Write] = []
    used_ips = {(p.get("status") or {}).get("podIP") for p in pods}
    next_ip = [0]

    def allocate() -> str:
        while True:
            next_ip[0] += 1
            n = next_ip[0]
            ip = f"10.244.{n // 250}.{n % 250 + 2}"
            if ip not in used_ips:
                used_ips.add(ip)
                return ip

    for pod in sorted(pods, key=_sort_key):
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        if not (pod.get("spec") or {}).get("nodeName"):
            bound = _deep_copy(pod)
            bound["spec"]["nodeName"] = NODE_NAME
            # The scheduler binds through pods/binding: a plain update may not set spec.nodeName.
            writes.append(Write("bind", POD, meta.get("namespace"), meta["name"], bound))
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue  # terminal pods never change again
        ip = (pod.get("status") or {}).get("podIP") or ""
        born = ctx.pod_born(pod)
        if not ip and ctx.now - born >= SANDBOX_AFTER:
            ip = allocate()
        status = pod_status(pod, ctx.now, born, ctx.failure, ip)
        w = _status_write(POD, pod, status)
        if w is not None:
            writes.append(w)
    return writes


# ---------------------------------------------------------------------------
# ReplicaSet
# ---------------------------------------------------------------------------

def _delete_rank(pod: Obj) -> tuple[int, int, int, str]:
    """Pods to delete first when scaling down (``controller.ActivePods`` ordering, simplified)."""
    status = pod.get("status") or {}
    assigned = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase", "Pending"), 0)
    ready = 1 if pod_is_ready(pod) else 0
    created = (pod.get("metadata") or {}).get("creationTimestamp", "")
    # newer pods first: invert the timestamp ordering by negating its characters
    return (assigned, phase, ready, "".join(chr(0x10FFFF - ord(ch)) for ch in created))


def plan_replicaset(rs: Obj, pods: list[Obj], taken: set[str], ctx: PlanContext) -> list[Write]:
    writes: list[Write] = []
    meta, spec = rs["metadata"], rs.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return writes
    mine = owned_by(pods, rs)
    active = [p for p in mine if pod_active(p)]
    want = int(spec.get("replicas", 1))
    template = spec.get("template") or {}
    ns = meta.get("namespace")
    if len(active) < want:
        ref = owner_ref(rs, "apps/v1", "ReplicaSet")
        for _ in range(want - len(active)):
            pod = _pod_from_template(rs, template, ctx.child_name(rs, taken), ref, {})
            writes.append(Write("create", POD, ns, pod["metadata"]["name"], pod, born=ctx.now))
    elif len(active) > want:
        for pod in sorted(active, key=_delete_rank)[: len(active) - want]:
            writes.append(Write("delete", POD, ns, pod["metadata"]["name"]))
    min_ready = int(spec.get("minReadySeconds", 0))
    tlabels = (template.get("metadata") or {}).get("labels") or {}
    status: Obj = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(1 for p in active
                                    if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in tlabels.items())),
        "readyReplicas": sum(1 for p in active if pod_is_ready(p)),
        "availableReplicas": sum(1 for p in active if pod_available(p, min_ready, ctx.now)),
        "observedGeneration": int(meta.get("generation", 1)),
    }
    _omit_zero(status, ("fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"))
    w = _status_write(REPLICASET, rs, status)
    if w is not None:
        writes.append(w)
    return writes


# ---------------------------------------------------------------------------
# Deployment
# ---------------------------------------------------------------------------

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"


def _revision(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _get_condition(status: Obj, ctype: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def _set_dep_condition(status: Obj, ctype: str, value: str, reason: str, message: str, now: str) -> None:
    """``deploymentutil.SetDeploymentCondition``: same status+reason keeps the old condition untouched."""
    conds = status.setdefault("conditions", [])
    current = _get_condition(status, ctype)
    if current is not None and current.get("status") == value and current.get("reason") == reason:
        return
    new = {"type": ctype, "status": value, "lastUpdateTime": now, "lastTransitionTime": now,
           "reason": reason, "message": message}
    if current is not None and current.get("status") == value:
        new["lastTransitionTime"] = current.get("lastTransitionTime", now)
    status["conditions"] = [c for c in conds if c.get("type") != ctype] + [new]


def _scaled(rs: Obj, replicas: int, dep: Obj) -> Write:
    """A ReplicaSet scale (spec.replicas + the replicas annotations, like ``scaleReplicaSet``)."""
    new = _deep_copy(rs)
    new["spec"]["replicas"] = replicas
    ann = new["metadata"].setdefault("annotations", {})
    dep_replicas = int((dep.get("spec") or {}).get("replicas", 1))
    ann[DESIRED] = str(dep_replicas)
    ann[MAX_REPLICAS] = str(dep_replicas + rolling_params(dep)[0])
    return Write("update", REPLICASET, rs["metadata"].get("namespace"), rs["metadata"]["name"], new)


def _rs_replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 1))


def _rs_status(rs: Obj, key: str) -> int:
    return int((rs.get("status") or {}).get(key, 0))


def plan_deployment(dep: Obj, replicasets: list[Obj], ctx: PlanContext) -> list[Write]:
    """One sync of the deployment controller: at most one rollout step, then status."""
    writes: list[Write] = []
    meta, spec = dep["metadata"], dep.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return writes
    ns = meta.get("namespace")
    now = ctx.rfc()
    replicas = int(spec.get("replicas", 1))
    template = spec.get("template") or {}
    paused = bool(spec.get("paused"))
    strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
    surge, _ = rolling_params(dep)
    old_status = dep.get("status") or {}
    status: Obj = _deep_copy(old_status)

    mine = sorted(owned_by(replicasets, dep), key=_sort_key)
    hash_ = ctx.template_hash(template, int(old_status.get("collisionCount", 0)))
    new_rs: Obj | None = None
    for rs in mine:
        if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == hash_:
            new_rs = rs
            break
    if new_rs is None:
        for rs in mine:
            rs_tpl = _deep_copy((rs.get("spec") or {}).get("template") or {})
            ((rs_tpl.get("metadata") or {}).get("labels") or {}).pop("pod-template-hash", None)
            if template_hash(rs_tpl) == ctx.template_hash(template):
                new_rs = rs
                break
    olds = [rs for rs in mine if rs is not new_rs]
    max_old_rev = max((_revision(rs) for rs in olds), default=0)

    # Paused condition bookkeeping (checkPausedConditions).
    progressing = _get_condition(status, "Progressing")
    if not (progressing and progressing.get("reason") == "ProgressDeadlineExceeded"):
        paused_cond = bool(progressing and progressing.get("reason") == "DeploymentPaused")
        if paused and not paused_cond:
            _set_dep_condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now)
        elif not paused and paused_cond:
            _set_dep_condition(status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now)

    # Rollout step (the RS list is updated in memory so the status below sees it).
    step: Write | None = None
    if new_rs is None and not paused:
        if strategy == "Recreate" and any(_rs_replicas(rs) > 0 or _rs_status(rs, "replicas") > 0 for rs in olds):
            for rs in olds:
                if _rs_replicas(rs) > 0:
                    step = _scaled(rs, 0, dep)
                    break
        else:
            if strategy == "Recreate":
                initial = replicas
            else:
                current = sum(_rs_replicas(rs) for rs in olds)
                initial = max(0, min(replicas, replicas + surge - current))
            rs_tpl = _deep_copy(template)
            rs_tpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = hash_
            selector = _deep_copy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_
            rs_labels = dict((template.get("metadata") or {}).get("labels") or {})
            rs_labels["pod-template-hash"] = hash_
            new_rs = {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{meta['name']}-{hash_}", "namespace": ns, "labels": rs_labels,
                             "annotations": {DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge),
                                             REVISION: str(max_old_rev + 1)},
                             "ownerReferences": [owner_ref(dep, "apps/v1", "Deployment")]},
                "spec": {"replicas": initial, "minReadySeconds": int(spec.get("minReadySeconds", 0)),
                         "selector": selector, "template": rs_tpl},
            }
            step = Write("create", REPLICASET, ns, new_rs["metadata"]["name"], new_rs)
            _set_dep_condition(status, "Progressing", "True", "NewReplicaSetCreated",
                               f'Created new replica set "{new_rs["metadata"]["name"]}"', now)
    elif new_rs is not None:
        if _revision(new_rs) <= max_old_rev and not paused:
            new = _deep_copy(new_rs)
            new["metadata"].setdefault("annotations", {})[REVISION] = str(max_old_rev + 1)
            step = Write("update", REPLICASET, ns, new_rs["metadata"]["name"], new)
        elif _get_condition(status, "Progressing") is None and not paused:
            _set_dep_condition(status, "Progressing", "True", "FoundNewReplicaSet",
                               f'Found new replica set "{new_rs["metadata"]["name"]}"', now)
        active_olds = [rs for rs in olds if _rs_replicas(rs) > 0]
        if step is None and (paused or not active_olds):
            # Not rolling: a plain scale of the one active ReplicaSet (or nothing to do).
            if not active_olds and _rs_replicas(new_rs) != replicas:
                step = _scaled(new_rs, replicas, dep)
        elif step is None and strategy == "Recreate":
            step = _scaled(active_olds[0], 0, dep)
        elif step is None:
            step = _rolling_step(dep, new_rs, active_olds, replicas, surge)
        if step is None and not paused and not active_olds:
            step = _cleanup(dep, olds)
    if step is not None:
        writes.append(step)
        if step.op == "update" and step.kind == REPLICASET and step.obj is not None:
            mine = [step.obj if rs["metadata"]["name"] == step.name else rs for rs in mine]
            if new_rs is not None and new_rs["metadata"]["name"] == step.name:
                new_rs = step.obj
            olds = [step.obj if rs["metadata"]["name"] == step.name else rs for rs in olds]

    # Revision annotation on the Deployment itself.
    if new_rs is not None and not paused and _revision(new_rs) > 0:
        rev = str(_revision(new_rs))
        if (meta.get("annotations") or {}).get(REVISION) != rev:
            upd = _deep_copy(dep)
            upd["metadata"].setdefault("annotations", {})[REVISION] = rev
            writes.append(Write("update", DEPLOYMENT, ns, meta["name"], upd))

    # Status (calculateStatus + syncRolloutStatus).
    all_rs = olds + ([new_rs] if new_rs is not None else [])
    available = sum(_rs_status(rs, "availableReplicas") for rs in all_rs)
    total_spec = sum(_rs_replicas(rs) for rs in all_rs)
    counts = {
        "observedGeneration": int(meta.get("generation", 1)),
        "replicas": sum(_rs_status(rs, "replicas") for rs in all_rs),
        "updatedReplicas": _rs_status(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(_rs_status(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(total_spec - available, 0),
    }
    for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
        status.pop(key, None)
    status.update(counts)
    if available >= replicas - max_unavailable(dep):
        _set_dep_condition(status, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", now)
    else:
        _set_dep_condition(status, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", now)
    if not paused:
        _rollout_progress(dep, status, old_status, new_rs, ctx)
    # Available first, then Progressing, like a real Deployment.
    order = {"Available": 0, "Progressing": 1, "ReplicaFailure": 2}
    status["conditions"] = sorted(status.get("conditions") or [], key=lambda c: order.get(c.get("type"), 9))
    _omit_zero(status, ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"))
    w = _status_write(DEPLOYMENT, dep, status)
    if w is not None:
        writes.append(w)
    return writes


def _rolling_step(dep: Obj, new_rs: Obj, olds: list[Obj], replicas: int, surge: int) -> Write | None:
    """``rolloutRolling``: scale the new ReplicaSet up within maxSurge, else old ones down within maxUnavailable."""
    all_rs = [new_rs, *olds]
    current = sum(_rs_replicas(rs) for rs in all_rs)
    new_replicas = _rs_replicas(new_rs)
    if new_replicas > replicas:
        return _scaled(new_rs, replicas, dep)
    if new_replicas < replicas:
        room = replicas + surge - current
        if room > 0:
            return _scaled(new_rs, new_replicas + min(room, replicas - new_replicas), dep)
    min_available = replicas - max_unavailable(dep)
    new_unavailable = new_replicas - _rs_status(new_rs, "availableReplicas")
    max_scaled_down = current - min_available - new_unavailable
    if max_scaled_down <= 0:
        return None
    olds_sorted = sorted(olds, key=lambda rs: (_revision(rs), rs["metadata"]["name"]))
    # cleanupUnhealthyReplicas: drop old pods that are not available anyway
    for rs in olds_sorted:
        unhealthy = _rs_replicas(rs) - _rs_status(rs, "availableReplicas")
        if _rs_replicas(rs) == 0 or unhealthy <= 0:
            continue
        return _scaled(rs, _rs_replicas(rs) - min(max_scaled_down, unhealthy), dep)
    available = sum(_rs_status(rs, "availableReplicas") for rs in all_rs)
    if available <= min_available:
        return None
    budget = available - min_available
    for rs in olds_sorted:
        if _rs_replicas(rs) == 0:
            continue
        return _scaled(rs, _rs_replicas(rs) - min(_rs_replicas(rs), budget), dep)
    return None


def _cleanup(dep: Obj, olds: list[Obj]) -> Write | None:
    """``cleanupDeployment``: delete the oldest idle ReplicaSets beyond revisionHistoryLimit."""
    limit = int((dep.get("spec") or {}).get("revisionHistoryLimit", 10))
    idle = [rs for rs in olds if _rs_replicas(rs) == 0 and _rs_status(rs, "replicas") == 0
            and not rs["metadata"].get("deletionTimestamp")]
    if len(idle) <= limit:
        return None
    victim = sorted(idle, key=lambda rs: (_revision(rs), rs["metadata"]["name"]))[0]
    return Write("delete", REPLICASET, victim["metadata"].get("namespace"), victim["metadata"]["name"])


def _rollout_progress(dep: Obj, status: Obj, old_status: Obj, new_rs: Obj | None, ctx: PlanContext) -> None:
    """``syncRolloutStatus``: NewReplicaSetAvailable / ReplicaSetUpdated / ProgressDeadlineExceeded."""
    spec = dep.get("spec") or {}
    deadline = spec.get("progressDeadlineSeconds", 600)
    if deadline is None or int(deadline) >= 2**31 - 1:
        return
    replicas = int(spec.get("replicas", 1))
    now = ctx.rfc()
    current = _get_condition(status, "Progressing")
    complete_before = (status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None
                       and current.get("reason") == "NewReplicaSetAvailable")
    if complete_before:
        return
    rs_name = new_rs["metadata"]["name"] if new_rs is not None else ""
    if (status.get("updatedReplicas", 0) == replicas and status.get("replicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
            and status.get("observedGeneration", 0) >= int(dep["metadata"].get("generation", 1))):
        msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if new_rs is not None
               else f'Deployment "{dep["metadata"]["name"]}" has successfully progressed.')
        _set_dep_condition(status, "Progressing", "True", "NewReplicaSetAvailable", msg, now)
        return
    old_old = old_status.get("replicas", 0) - old_status.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    progressed = (status.get("updatedReplicas", 0) > old_status.get("updatedReplicas", 0) or new_old < old_old
                  or status.get("readyReplicas", 0) > old_status.get("readyReplicas", 0)
                  or status.get("availableReplicas", 0) > old_status.get("availableReplicas", 0))
    if progressed:
        msg = (f'ReplicaSet "{rs_name}" is progressing.' if new_rs is not None
               else f'Deployment "{dep["metadata"]["name"]}" is progressing.')
        cond = {"type": "Progressing", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
                "reason": "ReplicaSetUpdated", "message": msg}
        if current is not None and current.get("status") == "True":
            cond["lastTransitionTime"] = current.get("lastTransitionTime", now)
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "Progressing"] + [cond]
        return
    if current is None or current.get("reason") == "NewReplicaSetAvailable":
        return
    if current.get("reason") == "ProgressDeadlineExceeded":
        return
    try:
        since = parse_rfc3339(current.get("lastUpdateTime", ""))
    except ValueError:
        return
    if since + int(deadline) < ctx.now:
        msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if new_rs is not None
               else f'Deployment "{dep["metadata"]["name"]}" has timed out progressing.')
        _set_dep_condition(status, "Progressing", "False", "ProgressDeadlineExceeded", msg, now)


# ---------------------------------------------------------------------------
# StatefulSet
# ---------------------------------------------------------------------------

def _ordinal(sts: Obj, pod: Obj) -> int:
    prefix = sts["metadata"]["name"] + "-"
    name = pod["metadata"]["name"]
    if name.startswith(prefix) and name[len(prefix):].isdigit():
        return int(name[len(prefix):])
    return -1


def plan_statefulset(sts: Obj, pods: list[Obj], pvcs: list[Obj], ctx: PlanContext) -> list[Write]:
    writes: list[Write] = []
    meta, spec = sts["metadata"], sts.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return writes
    ns = meta.get("namespace")
    name = meta["name"]
    replicas = int(spec.get("replicas", 1))
    template = spec.get("template") or {}
    old_status = sts.get("status") or {}
    update_rev = f"{name}-{ctx.template_hash(template, int(old_status.get('collisionCount', 0)))}"
    current_rev = old_status.get("currentRevision") or update_rev
    parallel = spec.get("podManagementPolicy") == "Parallel"
    strategy = spec.get("updateStrategy") or {}
    partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
    mine = {_ordinal(sts, p): p for p in owned_by(pods, sts) if _ordinal(sts, p) >= 0}
    live = {i: p for i, p in mine.items() if not p["metadata"].get("deletionTimestamp")}
    pvc_names = {p["metadata"]["name"] for p in pvcs}

    def healthy(i: int) -> bool:
        p = live.get(i)
        return p is not None and (p.get("status") or {}).get("phase") == "Running" and pod_is_ready(p)

    step: list[Write] = []
    # Failed/Succeeded pods are recreated (the controller deletes them).
    for _i, p in sorted(live.items()):
        if (p.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
            step.append(Write("delete", POD, ns, p["metadata"]["name"]))
    if not step:
        for i in range(replicas):
            if i in live:
                continue
            if not parallel and not all(healthy(j) for j in range(i)):
                break
            for tpl in spec.get("volumeClaimTemplates") or []:
                claim = f"{tpl['metadata']['name']}-{name}-{i}"
                if claim not in pvc_names:
                    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                           "metadata": {"name": claim, "namespace": ns,
                                        "labels": dict((spec.get("selector") or {}).get("matchLabels") or {})},
                           "spec": _deep_copy(tpl.get("spec") or {})}
                    step.append(Write("create", PVC, ns, claim, pvc))
                    pvc_names.add(claim)
            rev = update_rev if i >= partition or current_rev == update_rev else current_rev
            pod = _pod_from_template(sts, template, f"{name}-{i}", owner_ref(sts, "apps/v1", "StatefulSet"), {
                "controller-revision-hash": rev, "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
                "apps.kubernetes.io/pod-index": str(i)})
            pod["spec"]["hostname"] = f"{name}-{i}"
            if spec.get("serviceName"):
                pod["spec"]["subdomain"] = spec["serviceName"]
            step.append(Write("create", POD, ns, f"{name}-{i}", pod, born=ctx.now))
            if not parallel:
                break
    if not step:
        extra = sorted((i for i in live if i >= replicas), reverse=True)
        if extra and (parallel or all(healthy(j) for j in range(replicas))):
            for i in (extra if parallel else extra[:1]):
                step.append(Write("delete", POD, ns, live[i]["metadata"]["name"]))
    if not step and strategy.get("type", "RollingUpdate") == "RollingUpdate":
        if all(healthy(i) for i in range(replicas)):
            for i in sorted(live, reverse=True):
                if i < partition or i >= replicas:
                    continue
                if (live[i]["metadata"].get("labels") or {}).get("controller-revision-hash") != update_rev:
                    step.append(Write("delete", POD, ns, live[i]["metadata"]["name"]))
                    break
    writes.extend(step)

    active = list(live.values())
    ready = [p for p in active if pod_is_ready(p)]
    min_ready = int(spec.get("minReadySeconds", 0))
    updated = [p for p in active if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == update_rev]
    current = [p for p in active if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == current_rev]
    new_current_rev = current_rev
    if len(updated) == replicas and all(pod_is_ready(p) for p in updated) and len(active) == replicas:
        new_current_rev = update_rev
        current = updated
    status: Obj = {
        "observedGeneration": int(meta.get("generation", 1)),
        "replicas": len(active),
        "readyReplicas": len(ready),
        "currentReplicas": len(current),
        "updatedReplicas": len(updated),
        "currentRevision": new_current_rev,
        "updateRevision": update_rev,
        "collisionCount": int(old_status.get("collisionCount", 0)),
        "availableReplicas": sum(1 for p in active if pod_available(p, min_ready, ctx.now)),
    }
    _omit_zero(status, ("readyReplicas", "currentReplicas", "updatedReplicas"))
    w = _status_write(STATEFULSET, sts, status)
    if w is not None:
        writes.append(w)
    return writes


# ---------------------------------------------------------------------------
# DaemonSet (one simulated node)
# ---------------------------------------------------------------------------

def plan_daemonset(ds: Obj, pods: list[Obj], taken: set[str], ctx: PlanContext) -> list[Write]:
    writes: list[Write] = []
    meta, spec = ds["metadata"], ds.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return writes
    ns = meta.get("namespace")
    template = spec.get("template") or {}
    tspec = template.get("spec") or {}
    rev = ctx.template_hash(template)
    fits = all(NODE_LABELS.get(k) == v for k, v in (tspec.get("nodeSelector") or {}).items())
    mine = [p for p in owned_by(pods, ds) if pod_active(p)]
    if fits and not mine:
        pod = _pod_from_template(ds, template, ctx.child_name(ds, taken), owner_ref(ds, "apps/v1", "DaemonSet"), {
            "controller-revision-hash": rev, "pod-template-generation": str(meta.get("generation", 1))})
        writes.append(Write("create", POD, ns, pod["metadata"]["name"], pod, born=ctx.now))
    elif mine and (not fits or len(mine) > 1):
        for p in mine[1:] if fits else mine:
            writes.append(Write("delete", POD, ns, p["metadata"]["name"]))
    elif mine and (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
        if (mine[0]["metadata"].get("labels") or {}).get("controller-revision-hash") != rev:
            writes.append(Write("delete", POD, ns, mine[0]["metadata"]["name"]))
    min_ready = int(spec.get("minReadySeconds", 0))
    desired = 1 if fits else 0
    scheduled = len(mine)
    ready = sum(1 for p in mine if pod_is_ready(p))
    available = sum(1 for p in mine if pod_available(p, min_ready, ctx.now))
    updated = sum(1 for p in mine if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == rev)
    status: Obj = {
        "currentNumberScheduled": scheduled if fits else 0,
        "numberMisscheduled": 0 if fits else scheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": int(meta.get("generation", 1)),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": max(desired - available, 0),
    }
    _omit_zero(status, ("observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable"))
    w = _status_write(DAEMONSET, ds, status)
    if w is not None:
        writes.append(w)
    return writes


# ---------------------------------------------------------------------------
# Job
# ---------------------------------------------------------------------------

def _job_cond(ctype: str, reason: str, message: str, now: str) -> Obj:
    return {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def plan_job(job: Obj, pods: list[Obj], taken: set[str], ctx: PlanContext) -> list[Write]:
    writes: list[Write] = []
    meta, spec = job["metadata"], job.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return writes
    ns = meta.get("namespace")
    now = ctx.rfc()
    old = job.get("status") or {}
    status: Obj = _deep_copy(old)
    conds = status.get("conditions") or []
    finished_cond = next((c for c in conds if c.get("type") in ("Complete", "Failed")
                          and c.get("status") == "True"), None)
    mine = owned_by(pods, job)
    active = [p for p in mine if pod_active(p)]
    succeeded = sum(1 for p in mine if (p.get("status") or {}).get("phase") == "Succeeded")
    failed = sum(1 for p in mine if (p.get("status") or {}).get("phase") == "Failed")
    completions = int(spec["completions"]) if spec.get("completions") is not None else 1
    parallelism = int(spec.get("parallelism", 1))
    backoff_limit = int(spec.get("backoffLimit", 6))
    suspended = bool(spec.get("suspend"))

    if finished_cond is not None:
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None:
            try:
                done_at = parse_rfc3339(finished_cond.get("lastTransitionTime", ""))
            except ValueError:
                done_at = ctx.now
            if done_at + int(ttl) <= ctx.now:
                writes.append(Write("delete", JOB, ns, meta["name"]))
        return writes

    if not suspended:
        status.setdefault("startTime", now)
    if succeeded >= completions:
        msg = "Reached expected number of succeeded pods"
        status["conditions"] = conds + [_job_cond("SuccessCriteriaMet", "CompletionsReached", msg, now),
                                        _job_cond("Complete", "CompletionsReached", msg, now)]
        status["completionTime"] = now
        for p in active:
            writes.append(Write("delete", POD, ns, p["metadata"]["name"]))
        active = []
    elif failed > backoff_limit:
        msg = "Job has reached the specified backoff limit"
        status["conditions"] = conds + [_job_cond("FailureTarget", "BackoffLimitExceeded", msg, now),
                                        _job_cond("Failed", "BackoffLimitExceeded", msg, now)]
        for p in active:
            writes.append(Write("delete", POD, ns, p["metadata"]["name"]))
        active = []
    elif suspended:
        if not any(c.get("type") == "Suspended" for c in conds):
            status["conditions"] = conds + [_job_cond("Suspended", "JobSuspended", "Job suspended", now)]
        for p in active:
            writes.append(Write("delete", POD, ns, p["metadata"]["name"]))
        active = []
    else:
        want = min(parallelism, completions - succeeded) - len(active)
        template = spec.get("template") or {}
        labels = {"batch.kubernetes.io/controller-uid": meta.get("uid", ""),
                  "batch.kubernetes.io/job-name": meta["name"],
                  "controller-uid": meta.get("uid", ""), "job-name": meta["name"]}
        for _ in range(max(want, 0)):
            pod = _pod_from_template(job, template, ctx.child_name(job, taken), owner_ref(job, "batch/v1", "Job"),
                                     labels)
            writes.append(Write("create", POD, ns, pod["metadata"]["name"], pod, born=ctx.now))
            active.append(pod)
    status["active"] = len(active)
    status["succeeded"] = succeeded
    status["failed"] = failed
    status["ready"] = sum(1 for p in active if pod_is_ready(p))
    status["terminating"] = 0
    status["uncountedTerminatedPods"] = {}
    _omit_zero(status, ("active", "succeeded", "failed"))
    w = _status_write(JOB, job, status)
    if w is not None:
        writes.append(w)
    return writes


# ---------------------------------------------------------------------------
# PVC binding, load balancers, namespaces
# ---------------------------------------------------------------------------

def plan_pvc(pvc: Obj, pvs: list[Obj], ctx: PlanContext, *, serve_pv: bool) -> list[Write]:
    """The PV controller with a dynamic provisioner: bind every claim to a fresh ``pvc-<uid>`` volume."""
    writes: list[Write] = []
    meta, spec = pvc["metadata"], pvc.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return writes
    ns = meta.get("namespace")
    volume = spec.get("volumeName") or f"pvc-{meta.get('uid', meta['name'])}"
    request = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    modes = list(spec.get("accessModes") or ["ReadWriteOnce"])
    if not spec.get("volumeName") or spec.get("storageClassName") is None:
        upd = _deep_copy(pvc)
        upd["spec"]["volumeName"] = volume
        upd["spec"].setdefault("storageClassName", "standard")
        ann = upd["metadata"].setdefault("annotations", {})
        ann.setdefault("pv.kubernetes.io/bind-completed", "yes")
        ann.setdefault("pv.kubernetes.io/bound-by-controller", "yes")
        ann.setdefault("volume.beta.kubernetes.io/storage-provisioner", "kubesim.io/hostpath")
        ann.setdefault("volume.kubernetes.io/storage-provisioner", "kubesim.io/hostpath")
        writes.append(Write("update", PVC, ns, meta["name"], upd))
        return writes
    if serve_pv and volume.startswith("pvc-"):
        if not any(p["metadata"]["name"] == volume for p in pvs):
            pv = {"apiVersion": "v1", "kind": "PersistentVolume",
                  "metadata": {"name": volume, "annotations": {"pv.kubernetes.io/provisioned-by": "kubesim.io/hostpath"}},
                  "spec": {"capacity": {"storage": request}, "accessModes": modes,
                           "persistentVolumeReclaimPolicy": "Delete",
                           "storageClassName": spec.get("storageClassName") or "standard",
                           "volumeMode": spec.get("volumeMode", "Filesystem"),
                           "hostPath": {"path": f"/var/lib/kubesim/{volume}", "type": ""},
                           "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns,
                                        "name": meta["name"], "uid": meta.get("uid", ""),
                                        "resourceVersion": meta.get("resourceVersion", "")}}}
            writes.append(Write("create", PV, None, volume, pv))
    status = {"phase": "Bound", "accessModes": modes, "capacity": {"storage": request}}
    w = _status_write(PVC, pvc, status)
    if w is not None:
        writes.append(w)
    return writes


def plan_pv(pv: Obj, claims: Mapping[str, Obj]) -> list[Write]:
    """A provisioned volume reports Bound while its claim exists, Released after."""
    if pv["metadata"].get("deletionTimestamp"):
        return []
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    claim = claims.get(f"{ref.get('namespace')}/{ref.get('name')}")
    bound = claim is not None and (not ref.get("uid") or claim["metadata"].get("uid") == ref.get("uid"))
    if not bound and (pv.get("metadata", {}).get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") \
            == "kubesim.io/hostpath" and (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
        return [Write("delete", PV, None, pv["metadata"]["name"])]
    status = {"phase": "Bound" if bound else "Released"}
    w = _status_write(PV, pv, status)
    return [w] if w is not None else []


def plan_load_balancers(services: list[Obj], ingresses: list[Obj]) -> list[Write]:
    """Cloud LB simulation: LoadBalancer Services and Ingresses get a TEST-NET-1 IP (192.0.2.x)."""
    writes: list[Write] = []
    used: set[str] = set()
    for obj in [*services, *ingresses]:
        for ing in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ing.get("ip"):
                used.add(ing["ip"])
    counter = [0]

    def allocate() -> str:
        while True:
            counter[0] += 1
            ip = f"192.0.2.{counter[0]}"
            if counter[0] > 254 or ip not in used:
                used.add(ip)
                return ip

    for svc in sorted(services, key=_sort_key):
        if svc["metadata"].get("deletionTimestamp"):
            continue
        lb = ((svc.get("status") or {}).get("loadBalancer") or {})
        is_lb = (svc.get("spec") or {}).get("type") == "LoadBalancer"
        if is_lb and not lb.get("ingress"):
            status = _deep_copy(svc.get("status") or {})
            status["loadBalancer"] = {"ingress": [{"ip": allocate(), "ipMode": "VIP"}]}
            w = _status_write(SERVICE, svc, status)
        elif not is_lb and lb.get("ingress"):
            status = _deep_copy(svc.get("status") or {})
            status["loadBalancer"] = {}
            w = _status_write(SERVICE, svc, status)
        else:
            w = None
        if w is not None:
            writes.append(w)
    for ing in sorted(ingresses, key=_sort_key):
        if ing["metadata"].get("deletionTimestamp"):
            continue
        lb = ((ing.get("status") or {}).get("loadBalancer") or {})
        if not lb.get("ingress"):
            status = _deep_copy(ing.get("status") or {})
            status["loadBalancer"] = {"ingress": [{"ip": allocate()}]}
            w = _status_write(INGRESS, ing, status)
            if w is not None:
                writes.append(w)
    return writes


def plan_namespace(ns: Obj) -> list[Write]:
    if (ns.get("status") or {}).get("phase"):
        return []
    w = _status_write(NAMESPACE, ns, {"phase": "Active"})
    return [w] if w is not None else []


# ---------------------------------------------------------------------------
# The controller manager
# ---------------------------------------------------------------------------

def _owner_key(owner: Obj) -> tuple[str | None, Any]:
    meta = owner["metadata"]
    return meta.get("namespace"), meta.get("uid")


def _by_controller(objs: Iterable[Obj]) -> dict[tuple[str | None, Any], list[Obj]]:
    """Objects grouped by (namespace, controller uid), order kept: ``owned_by`` for all owners at once."""
    out: dict[tuple[str | None, Any], list[Obj]] = {}
    for o in objs:
        out.setdefault((o["metadata"].get("namespace"), (controller_of(o) or {}).get("uid")), []).append(o)
    return out

class StoreLike(Protocol):
    """The parts of ``store.Store`` the controllers use (see docs/kubesim-design.md)."""

    types: Any

    @property
    def resource_version(self) -> int: ...

    def list(self, rt: ResourceType, namespace: str | None = None, label_selector: str = "",
             field_selector: str = "", limit: int = 0, continue_token: str = "", *,
             copy: bool = True) -> tuple[list[Obj], str, str]: ...

    def create(self, rt: ResourceType, namespace: str | None, obj: Obj, *, manager: str) -> Obj: ...

    def update(self, rt: ResourceType, namespace: str | None, name: str, obj: Obj, *, manager: str,
               subresource: str | None = None) -> Obj: ...

    def delete(self, rt: ResourceType, namespace: str | None, name: str, *,
               propagation: str | None = None, preconditions: Obj | None = None) -> Obj: ...


class Controllers:
    """All simulated controllers over one store; ``reconcile()`` is one deterministic pass."""

    def __init__(self, store: StoreLike, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.RLock()
        self._failures: list[tuple[str, str]] = []
        self._born: dict[str, float] = {}
        self._name_seq: dict[str, int] = {}
        self._hash_cache: dict[int, tuple[Obj, int, str]] = {}
        self._failures_version = 0
        # (store resourceVersion, now, failures version) after a pass that converged with no
        # writes: the same inputs again give the same (empty) plan, so reconcile() can skip it.
        self._settled: tuple[int, float, int] | None = None
        self.conflicts = 0  # optimistic-concurrency retries (a client wrote in between); for diagnostics

    # -- knobs -------------------------------------------------------------

    def fail_image(self, pattern: str, mode: str) -> None:
        """Make images containing ``pattern`` (case-insensitive) fail with ``mode`` from now on."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAILURE_MODES)}, not {mode!r}")
        with self._lock:
            self._failures.append((pattern.lower(), mode))
            self._failures_version += 1

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()
            self._failures_version += 1

    def failure_for(self, image: str) -> str | None:
        with self._lock:
            return image_failure(image, list(reversed(self._failures)))

    # -- the pass ----------------------------------------------------------

    def _rt(self, kind: Kind) -> ResourceType | None:
        types = getattr(self.store, "types", None)
        if types is None:
            return None
        finder = getattr(types, "by_group_kind", None)
        if callable(finder):
            found = finder(kind[0], kind[1])
            return found if isinstance(found, ResourceType) else None
        return None

    def _list(self, kind: Kind) -> list[Obj]:
        """The stored objects of one kind, sorted, *without copies*: planners never mutate their
        inputs (they deep-copy what they turn into writes), and the store never changes a stored
        object in place, so this is a consistent read at a fraction of the cost."""
        rt = self._rt(kind)
        if rt is None:
            return []
        items, _, _ = self.store.list(rt, copy=False)
        return items

    def _born_of(self, pod: Obj, now: float) -> float:
        """Simulated birth of a pod: exact for pods we created, else first sight bounded by creationTimestamp."""
        uid = pod["metadata"].get("uid", "")
        born = self._born.get(uid)
        if born is None:
            created = creation_time(pod)
            start = (pod.get("status") or {}).get("startTime")
            if start:
                born = parse_rfc3339(start)
            elif created is not None and now >= created + 1.0:
                born = created
            else:
                born = now
            self._born[uid] = born
        return born

    def _context(self, now: float) -> PlanContext:
        return PlanContext(now=now, failure=self.failure_for, born=lambda p: self._born_of(p, now),
                           name_seq=self._name_seq, hash_cache=self._hash_cache)

    def _apply(self, writes: list[Write], now: float) -> tuple[int, int]:
        done = conflicts = 0
        for w in writes:
            rt = self._rt(w.kind)
            if rt is None:
                continue
            try:
                if w.op == "create" and w.obj is not None:
                    out = self.store.create(rt, w.namespace, w.obj, manager=MANAGER)
                    if w.kind == POD:
                        self._born[out["metadata"]["uid"]] = w.born if w.born is not None else now
                    done += 1
                elif w.op in ("update", "status", "bind") and w.obj is not None:
                    before = w.obj["metadata"].get("resourceVersion")
                    out = self.store.update(rt, w.namespace, w.name, w.obj, manager=MANAGER,
                                            subresource={"status": "status", "bind": "binding"}.get(w.op))
                    if out["metadata"].get("resourceVersion") != before:
                        done += 1
                elif w.op == "delete":
                    self.store.delete(rt, w.namespace, w.name)
                    done += 1
            except ApiError as exc:
                if exc.code in (404, 409):
                    conflicts += 1  # someone else changed or removed it: the next pass sees the new state
                    continue
                if exc.code == 422 and w.op == "update" and w.kind in (POD, PVC):
                    continue  # the object refuses this change (e.g. an immutable field): leave it
                raise
        return done, conflicts

    def _pass(self, now: float) -> tuple[int, int]:
        ctx = self._context(now)
        writes = done = conflicts = 0
        stages: list[Callable[[], list[Write]]] = [
            lambda: [w for ns in self._list(NAMESPACE) for w in plan_namespace(ns)],
            lambda: self._plan_deployments(ctx),
            lambda: self._plan_workloads(ctx),
            lambda: plan_pods(self._list(POD), ctx),
            lambda: self._plan_storage(ctx),
            lambda: plan_load_balancers(self._list(SERVICE), self._list(INGRESS)),
        ]
        for stage in stages:
            planned = stage()
            d, c = self._apply(planned, now)
            writes += len(planned)
            done += d
            conflicts += c
        return done, conflicts

    def _plan_deployments(self, ctx: PlanContext) -> list[Write]:
        rses = _by_controller(self._list(REPLICASET))
        out: list[Write] = []
        for dep in self._list(DEPLOYMENT):
            out.extend(plan_deployment(dep, rses.get(_owner_key(dep), []), ctx))
        return out

    def _plan_workloads(self, ctx: PlanContext) -> list[Write]:
        pods = self._list(POD)
        taken: dict[str | None, set[str]] = {}
        for p in pods:
            taken.setdefault(p["metadata"].get("namespace"), set()).add(p["metadata"]["name"])
        owned = _by_controller(pods)
        pvcs_by_ns: dict[str | None, list[Obj]] = {}
        for c in self._list(PVC):
            pvcs_by_ns.setdefault(c["metadata"].get("namespace"), []).append(c)
        out: list[Write] = []
        for rs in self._list(REPLICASET):
            ns = rs["metadata"].get("namespace")
            out.extend(plan_replicaset(rs, owned.get(_owner_key(rs), []), taken.setdefault(ns, set()), ctx))
        for sts in self._list(STATEFULSET):
            ns = sts["metadata"].get("namespace")
            out.extend(plan_statefulset(sts, owned.get(_owner_key(sts), []), pvcs_by_ns.get(ns, []), ctx))
        for ds in self._list(DAEMONSET):
            ns = ds["metadata"].get("namespace")
            out.extend(plan_daemonset(ds, owned.get(_owner_key(ds), []), taken.setdefault(ns, set()), ctx))
        for job in self._list(JOB):
            ns = job["metadata"].get("namespace")
            out.extend(plan_job(job, owned.get(_owner_key(job), []), taken.setdefault(ns, set()), ctx))
        return out

    def _plan_storage(self, ctx: PlanContext) -> list[Write]:
        serve_pv = self._rt(PV) is not None
        pvs = self._list(PV) if serve_pv else []
        pvcs = self._list(PVC)
        out: list[Write] = []
        for pvc in pvcs:
            out.extend(plan_pvc(pvc, pvs, ctx, serve_pv=serve_pv))
        claims = {f"{c['metadata'].get('namespace')}/{c['metadata']['name']}": c for c in pvcs}
        for pv in pvs:
            out.extend(plan_pv(pv, claims))
        return out

    def reconcile(self) -> int:
        """Run every controller until nothing changes at the current simulated time; returns writes made.

        Deterministic for a paused clock: the same objects and time always give the same writes,
        and a second call without advancing the clock makes none.
        """
        with self._lock:
            now = self.clock.now()
            inputs = (self.store.resource_version, now, self._failures_version)
            if inputs == self._settled:
                return 0  # nothing a planner reads has changed since a pass that wrote nothing
            self._settled = None
            total = 0
            for _ in range(MAX_PASSES):
                rv_before = self.store.resource_version
                done, conflicts = self._pass(now)
                total += done
                self.conflicts += conflicts
                if done == 0 and conflicts == 0:
                    if self.store.resource_version == rv_before:
                        # a pass that wrote nothing and saw nothing written meanwhile: settled
                        self._settled = (rv_before, now, self._failures_version)
                    break
            live = {p["metadata"].get("uid") for p in self._list(POD)}
            for uid in [u for u in self._born if u not in live]:
                del self._born[uid]
            self._prune_hash_cache()
            return total

    def _prune_hash_cache(self) -> None:
        """Keep memoised template hashes only for templates still stored (bounded by live objects)."""
        keep: dict[int, tuple[Obj, int, str]] = {}
        for kind in (DEPLOYMENT, STATEFULSET, DAEMONSET):
            for obj in self._list(kind):
                tpl = (obj.get("spec") or {}).get("template")
                hit = self._hash_cache.get(id(tpl))
                if hit is not None and hit[0] is tpl:
                    keep[id(tpl)] = hit
        self._hash_cache = keep
