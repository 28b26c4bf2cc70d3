"""The sync operation: make the cluster equal to Git, in Argo CD's order.

:func:`plan` is pure: it orders apply and prune steps by phase (PreSync, Sync, PostSync), wave
(``argocd.argoproj.io/sync-wave``), kind (SEMANTICS.md's order: namespaces and CRDs before what
lives in them) and name, and decides per object whether pruning is allowed. :func:`run_sync`
executes a plan through :class:`~gitferry.kube.ClusterClient`: server-side apply with field
manager ``gitferry`` and force (Git wins conflicts), tracking stamp, prune with foreground
propagation in reverse wave order.

Waves and health: Argo CD starts a wave only when the previous one is applied *and healthy*.
A Lambda must not sleep waiting for a rollout, so :func:`run_sync` applies waves back to back
by default (each wave strictly after the previous one was applied), and with
``wait_between_waves=True`` it stops at the first wave boundary whose objects are not Healthy
yet and returns ``phase="Running"`` with ``resume_from`` (the group it waits for): the apply
stage stores it, schedules a delayed message, and calls :func:`run_sync` again with
``resume_from``; that call re-checks the group's health (without re-applying it) and goes on.
Hooks are awaited the same way: a failed hook fails the sync, and the HookSucceeded /
HookFailed delete policies are carried out once the hook finished. Without
``wait_between_waves`` hooks are created but not awaited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import diff as _diff
from . import health as _health
from . import tracking

if TYPE_CHECKING:
    from .kube import ClusterClient

_T = TypeVar("_T")

PHASES: Final = ("PreSync", "Sync", "PostSync")

KIND_ORDER: Final[tuple[str, ...]] = (
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
_KIND_RANK: Final = {k: i for i, k in enumerate(KIND_ORDER)}

SYNCED: Final = "Synced"
SYNC_FAILED: Final = "SyncFailed"
PRUNED: Final = "Pruned"
PRUNE_SKIPPED: Final = "PruneSkipped"

APPLY: Final = "apply"
PRUNE: Final = "prune"


def kind_rank(kind: str) -> int:
    """Position of a kind in the apply order; unknown kinds (custom resources) go last."""
    return _KIND_RANK.get(kind, len(KIND_ORDER))


@dataclass(frozen=True)
class Step:
    """One thing to do. ``group`` orders steps into the units a wave boundary separates:
    (phase rank, 0 apply / 1 prune, wave or -wave for prunes)."""

    action: str  # apply | prune
    phase: str
    wave: int
    obj: dict[str, Any]
    hook: bool = False
    skip_reason: str = ""  # a prune that must not happen: "Prune=false", "requires pruning"

    @property
    def group(self) -> tuple[int, int, int]:
        rank = PHASES.index(self.phase) if self.phase in PHASES else len(PHASES)
        return (rank, 0 if self.action == APPLY else 1, self.wave if self.action == APPLY else -self.wave)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return tracking.resource_key(self.obj)

    def sort_key(self) -> tuple[Any, ...]:
        group, kind, namespace, name = self.key
        rank = kind_rank(kind)
        if self.action == PRUNE:  # delete dependents before what they live in
            rank = -rank
        return (self.group, rank, name, namespace, group, kind)


@dataclass
class ResourceResult:
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    status: str  # Synced | SyncFailed | Pruned | PruneSkipped
    message: str = ""
    phase: str = "Sync"
    wave: int = 0
    hook: bool = False


@dataclass
class SyncResult:
    phase: str  # Succeeded | Failed | Running (stopped at a wave boundary, see resume_from)
    message: str
    resources: list[ResourceResult]
    started_at: str
    finished_at: str
    resume_from: tuple[int, int, int] | None = None
    dry_run: bool = False


def plan(
    desired: Iterable[Mapping[str, Any]],
    live_owned: Iterable[Mapping[str, Any]],
    prune: bool,
    *,
    prune_last: bool = False,
) -> list[Step]:
    """Ordered steps for a sync.

    ``desired``: prepared manifests (namespace defaulted, stamped), hooks included;
    ``live_owned``: live objects this app owns. Owned objects absent from ``desired`` become
    prune steps after all applies of the Sync phase, in reverse wave order (``prune_last``:
    after PostSync). With ``prune`` false, or ``Prune=false`` on the object, the step carries
    a ``skip_reason`` and is reported PruneSkipped rather than silently dropped.
    Hooks of type Skip and SyncFail are left out (SyncFail hooks only run on failure, which
    is not supported yet).
    """
    steps: list[Step] = []
    wanted: set[tuple[str, str, str, str]] = set()
    for obj in desired:
        wanted.add(tracking.resource_key(obj))
        hooks = tracking.hook_types(obj)
        if not hooks:
            steps.append(Step(APPLY, "Sync", tracking.sync_wave(obj), dict(obj)))
            continue
        for hook in hooks:
            if hook in PHASES:
                steps.append(Step(APPLY, hook, tracking.sync_wave(obj), dict(obj), hook=True))
    for obj in live_owned:
        if tracking.resource_key(obj) in wanted or tracking.is_hook(obj):
            continue
        reason = ""
        if tracking.sync_options(obj).get("Prune", "").lower() == "false":
            reason = "ignored (Prune=false)"
        elif not prune:
            reason = "ignored (requires pruning)"
        # PruneLast ranks after PostSync: the very end, whatever the wave.
        phase = "PruneLast" if prune_last else "Sync"
        steps.append(Step(PRUNE, phase, tracking.sync_wave(obj), dict(obj), skip_reason=reason))
    return sorted(steps, key=Step.sort_key)


def wave_boundaries(steps: list[Step]) -> list[int]:
    """Indices of ``steps`` where a new (phase, apply/prune, wave) group starts: the points where
    a sync may pause until the previous group is healthy."""
    out: list[int] = []
    previous: tuple[int, int, int] | None = None
    for index, step in enumerate(steps):
        if step.group != previous:
            out.append(index)
            previous = step.group
    return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _result_for(step: Step, status: str, message: str) -> ResourceResult:
    group, kind, namespace, name = step.key
    api_version = str(step.obj.get("apiVersion", ""))
    version = api_version.split("/", 1)[1] if "/" in api_version else api_version
    return ResourceResult(group, version, kind, namespace, name, status, message, step.phase, step.wave, step.hook)


def _validate(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    missing = [f for f, v in (("apiVersion", obj.get("apiVersion")), ("kind", obj.get("kind")),
                               ("metadata.name", meta.get("name"))) if not v]
    return f"invalid manifest: missing {', '.join(missing)}" if missing else ""


def _delete_hook_before_creation(cluster: ClusterClient, obj: Mapping[str, Any], dry_run: bool) -> None:
    """BeforeHookCreation (the default policy): remove the previous run's hook object and wait
    briefly until it is gone, so the new one starts fresh (a Job's template is immutable)."""
    meta = obj.get("metadata") or {}
    policies = str((meta.get("annotations") or {}).get(tracking.HOOK_DELETE_POLICY_ANNOTATION) or "")
    if policies and "BeforeHookCreation" not in policies:
        return
    api_version, kind, name = str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name"))
    existing = cluster.get(api_version, kind, name, meta.get("namespace"))
    if existing is None or dry_run:
        return
    cluster.delete(existing, propagation="Background")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster.get(api_version, kind, name, meta.get("namespace")) is not None:
        time.sleep(0.2)


def run_sync(
    cluster: ClusterClient,
    app_name: str,
    desired: list[Mapping[str, Any]],
    live: list[Mapping[str, Any]],
    *,
    prune: bool,
    create_namespace: bool,
    namespace: str | None,
    dry_run: bool = False,
    prune_last: bool = False,
    propagation: str = "Foreground",
    wait_between_waves: bool = False,
    resume_from: tuple[int, int, int] | None = None,
    is_healthy: Callable[[Mapping[str, Any] | None], bool] | None = None,
) -> SyncResult:
    """Run one sync operation and report every resource.

    ``desired``: rendered manifests; ``live``: objects listed by the app label. A failing
    resource is recorded as SyncFailed and the operation is Failed with a message naming it;
    the rest of its wave still runs (as in Argo CD), later waves and prunes do not run and are
    reported as such: nothing is skipped silently.
    """
    from .kube import KubeError

    started = _now()
    results: list[ResourceResult] = []
    new_namespace = ""  # CreateNamespace in a dry run: the namespace objects "would be created" in

    def namespaced(api_version: str, kind: str) -> bool | None:
        try:
            return cluster.is_namespaced(api_version, kind)
        except KubeError:
            return None

    if create_namespace and namespace and resume_from is None:
        try:
            existed = cluster.get("v1", "Namespace", namespace) is not None
            new_namespace = namespace if dry_run and not existed else ""
            if not existed:  # ensure_namespace would only read it again
                cluster.ensure_namespace(namespace, dry_run=dry_run)
            results.append(ResourceResult("", "v1", "Namespace", "", namespace, SYNCED,
                                          "namespace exists" if existed else
                                          f"namespace created{' (dry run)' if dry_run else ''}"))
        except KubeError as exc:
            results.append(ResourceResult("", "v1", "Namespace", "", namespace, SYNC_FAILED, str(exc)))
            return SyncResult("Failed", f"cannot create namespace {namespace}: {exc}", results, started, _now(),
                              dry_run=dry_run)

    prepared = tracking.prepare_desired(app_name, desired, namespace, namespaced)
    owned = _diff.extraneous(app_name, prepared, live)
    steps = plan(prepared, owned, prune, prune_last=prune_last)
    live_by_key = {tracking.resource_key(o): o for o in live}
    crd_kinds = {
        (str((o.get("spec") or {}).get("group", "")), str(((o.get("spec") or {}).get("names") or {}).get("kind", "")))
        for o in prepared if o.get("kind") == "CustomResourceDefinition"
    }
    healthy = is_healthy or (lambda o: _health.resource_health(o).status in (_health.HEALTHY, _health.SUSPENDED))

    def run_step(step: Step) -> tuple[Step, ResourceResult, str, bool]:
        """One apply or prune: (step, its result, failure message or "", applied?). Touches no
        shared state, so the steps of one batch may run concurrently."""
        if step.action == PRUNE:
            pruned: list[str] = []
            result = _prune(cluster, app_name, step, propagation, dry_run, pruned)
            return step, result, pruned[0] if pruned else "", False
        problem = _validate(step.obj)
        if problem:
            return step, _result_for(step, SYNC_FAILED, problem), f"{_ident(step)}: {problem}", False
        try:
            if step.hook:
                _delete_hook_before_creation(cluster, step.obj, dry_run)
            out = _apply(cluster, step, crd_kinds, dry_run)
        except _CrdPending:
            return step, _result_for(step, SYNCED, "dry run: its CustomResourceDefinition is not created yet"), "", False
        except KubeError as exc:
            if (new_namespace and exc.code == 404 and (step.obj.get("metadata") or {}).get("namespace") == new_namespace
                    and f'namespaces "{new_namespace}" not found' in exc.message):
                # The server cannot dry-run into a namespace that only this sync would create.
                return step, _result_for(step, SYNCED, "created (dry run): its namespace is created by this sync"), \
                    "", False
            message = _diff.scrub(str(exc), step.obj)
            return step, _result_for(step, SYNC_FAILED, message), message, False
        except Exception as exc:  # a bug or transport error must still be reported per resource
            message = _diff.scrub(f"{type(exc).__name__}: {exc}", step.obj)
            return step, _result_for(step, SYNC_FAILED, message), f"{_ident(step)}: {message}", False
        before = live_by_key.get(step.key)
        if before is None:
            message = "created"
        elif dry_run and _would_change(before, out):  # a dry run never bumps the resourceVersion
            message = "configured"
        elif (before.get("metadata") or {}).get("resourceVersion") == (out.get("metadata") or {}).get("resourceVersion"):
            message = "unchanged"
        else:
            message = "configured"
        return step, _result_for(step, SYNCED, f"{message}{' (dry run)' if dry_run else ''}"), "", True

    pool = _LazyPool()
    try:
        return _run_groups(cluster, steps, results, started, dry_run, resume_from, wait_between_waves,
                           healthy, run_step, pool)
    finally:
        pool.shutdown()


def _run_groups(
    cluster: ClusterClient,
    steps: list[Step],
    results: list[ResourceResult],
    started: str,
    dry_run: bool,
    resume_from: tuple[int, int, int] | None,
    wait_between_waves: bool,
    healthy: Callable[[Mapping[str, Any] | None], bool],
    run_step: Callable[[Step], tuple[Step, ResourceResult, str, bool]],
    pool: _LazyPool,
) -> SyncResult:
    failures: list[str] = []
    boundaries = wave_boundaries(steps) + [len(steps)]
    for start, end in zip(boundaries, boundaries[1:], strict=False):
        group_steps = steps[start:end]
        group = group_steps[0].group
        resuming = resume_from is not None and group == tuple(resume_from)
        if resume_from is not None and group < tuple(resume_from):
            continue  # done by an earlier invocation
        if failures:
            for step in group_steps:
                if step.action == APPLY:
                    results.append(_result_for(step, SYNC_FAILED, "not attempted: an earlier wave failed"))
                else:
                    results.append(_result_for(step, PRUNE_SKIPPED, "not pruned: the sync failed"))
            continue
        applied: list[Step] = []
        if resuming:  # applied by the invocation that paused here: only its health is left to check
            applied = [s for s in group_steps if s.action == APPLY]
        for step, result, failure, was_applied in _run_steps(pool, [] if resuming else group_steps, run_step):
            if failure:
                failures.append(failure)
            results.append(result)
            if was_applied:
                applied.append(step)
        if any(s.obj.get("kind") == "CustomResourceDefinition" for s in applied):
            cluster.invalidate_discovery()  # the next wave may use the new kinds
        if failures or not wait_between_waves or dry_run or not applied:
            continue
        if end >= len(steps) and not any(s.hook for s in applied):
            continue  # nothing follows the last wave: its rollout is followed by the diff stage
        waiting = _await_group(cluster, applied, healthy, results, failures)
        if waiting and not failures:
            nxt = f"wave {steps[end].wave} of phase {steps[end].phase}" if end < len(steps) else "the end of the sync"
            return SyncResult(
                "Running",
                f"waiting for {', '.join(waiting[:5])}{' ...' if len(waiting) > 5 else ''} to become healthy "
                f"before {nxt}",
                results, started, _now(), resume_from=group, dry_run=dry_run,
            )

    if failures:
        message = f"one or more objects failed to apply: {'; '.join(failures[:5])}"
        if len(failures) > 5:
            message += f" (and {len(failures) - 5} more)"
        return SyncResult("Failed", message, results, started, _now(), dry_run=dry_run)
    skipped = sum(1 for r in results if r.status == PRUNE_SKIPPED)
    message = "successfully synced (all tasks run)"
    if skipped:
        message += f"; {skipped} object(s) require pruning"
    return SyncResult("Succeeded", message, results, started, _now(), dry_run=dry_run)


# Applies (and prunes) of one kind within one wave are independent requests: they run on a small
# thread pool, as the diff's dry-runs and the LISTs do, instead of one round trip after another.
# Kinds still go one after another in KIND_ORDER (Namespaces, then what lives in them ...), hooks
# one by one, and results are reported in plan order whatever order the requests finish in.
_SYNC_WORKERS: Final = 8


class _LazyPool:
    """A thread pool created on first use (a sync of one object never starts threads)."""

    def __init__(self, workers: int = _SYNC_WORKERS) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def map(self, fn: Callable[[Step], _T], items: list[Step]) -> Iterator[_T]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="gitferry-sync")
        return self._pool.map(fn, items)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _batches(steps: list[Step]) -> Iterator[list[Step]]:
    """Consecutive steps of the same action and kind rank (a hook is always a batch of its own)."""
    batch: list[Step] = []
    previous: tuple[str, int] | None = None
    for step in steps:
        key = (step.action, kind_rank(step.key[1]))
        if batch and (step.hook or batch[0].hook or key != previous):
            yield batch
            batch = []
        batch.append(step)
        previous = key
    if batch:
        yield batch


def _run_steps(pool: _LazyPool, steps: list[Step], fn: Callable[[Step], _T]) -> Iterator[_T]:
    """``fn`` over ``steps`` in order, each batch of :func:`_batches` concurrently."""
    for batch in _batches(steps):
        if len(batch) == 1:
            yield fn(batch[0])
        else:
            yield from pool.map(fn, batch)


def _await_group(
    cluster: ClusterClient,
    applied: list[Step],
    healthy: Callable[[Mapping[str, Any] | None], bool],
    results: list[ResourceResult],
    failures: list[str],
) -> list[str]:
    """Health gate at a wave boundary. Returns what is still not healthy. Hooks must complete:
    a Degraded hook (failed Job) fails the sync; hook-delete-policy HookSucceeded / HookFailed
    removes the hook once it finished that way."""
    from .kube import KubeError

    waiting: list[str] = []
    for step in applied:
        meta = step.obj.get("metadata") or {}
        try:
            now = cluster.get(str(step.obj["apiVersion"]), str(step.obj["kind"]), str(meta["name"]), meta.get("namespace"))
        except KubeError:
            now = None
        if not step.hook:
            if not healthy(now):
                waiting.append(_ident(step))
            continue
        state = _health.resource_health(now)
        policies = str((meta.get("annotations") or {}).get(tracking.HOOK_DELETE_POLICY_ANNOTATION) or "")
        if state.status == _health.DEGRADED:
            message = f"hook {_ident(step)} failed: {state.message}"
            failures.append(message)
            _replace_result(results, _result_for(step, SYNC_FAILED, message))
            if "HookFailed" in policies and now is not None:
                cluster.delete(now, propagation="Background")
        elif state.status == _health.HEALTHY and now is not None:
            if "HookSucceeded" in policies:
                cluster.delete(now, propagation="Background")
        else:
            waiting.append(_ident(step))
    return waiting


def _replace_result(results: list[ResourceResult], new: ResourceResult) -> None:
    """One line per resource: a hook that failed after it was created replaces its "created"."""
    for index, old in enumerate(results):
        if (old.group, old.kind, old.namespace, old.name, old.phase) == (new.group, new.kind, new.namespace,
                                                                          new.name, new.phase):
            results[index] = new
            return
    results.append(new)


class _CrdPending(Exception):
    """Dry run of a custom resource whose CRD is part of the same (dry) sync."""


def _apply(cluster: ClusterClient, step: Step, crd_kinds: set[tuple[str, str]], dry_run: bool,
           wait_seconds: float = 30.0) -> dict[str, Any]:
    """Server-side apply; a custom resource whose CRD this sync just applied is retried until
    the API server serves the new kind (a CRD takes a moment to become Established)."""
    from .kube import KubeError

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return cluster.server_side_apply(step.obj, dry_run=dry_run)
        except KubeError as exc:
            group, kind = step.key[0], step.key[1]
            pending = exc.code == 404 and "does not serve kind" in exc.message and (group, kind) in crd_kinds
            if not pending:
                raise
            if dry_run:
                raise _CrdPending() from exc
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            cluster.invalidate_discovery()


def _would_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether a dry-run apply's answer differs from the live object (status and the metadata
    the server keeps itself left out)."""
    def essence(obj: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items()
                           if k not in ("resourceVersion", "managedFields", "generation")}
        return out
    return essence(before) != essence(after)


def _ident(step: Step) -> str:
    group, kind, namespace, name = step.key
    return f"{kind}{'.' + group if group else ''} {namespace + '/' if namespace else ''}{name}"


def _prune(cluster: ClusterClient, app_name: str, step: Step, propagation: str, dry_run: bool, failures: list[str]) -> ResourceResult:
    """Delete one owned object gone from Git; re-checks ownership on the object itself so a
    copy carrying another object's annotation can never be deleted."""
    from .kube import KubeError

    if step.skip_reason:
        return _result_for(step, PRUNE_SKIPPED, step.skip_reason)
    if not tracking.is_owned(app_name, step.obj):
        return _result_for(step, PRUNE_SKIPPED, "not pruned: the object is not owned by this application")
    if (step.obj.get("metadata") or {}).get("deletionTimestamp"):
        return _result_for(step, PRUNED, "pruned (deletion already in progress)")
    try:
        cluster.delete(step.obj, propagation=propagation, dry_run=dry_run)
    except KubeError as exc:
        failures.append(str(exc))
        return _result_for(step, SYNC_FAILED, f"prune failed: {exc}")
    return _result_for(step, PRUNED, f"pruned{' (dry run)' if dry_run else ''}")
