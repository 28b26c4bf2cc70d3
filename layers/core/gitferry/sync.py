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
SYNC_FAIL: Final = "SyncFail"
DELETE_PHASES: Final = ("PreDelete", "PostDelete")
# Rank of a phase in Step.group: PruneLast after PostSync, SyncFail after everything (it only runs
# when the sync failed), the deletion hooks apart (only :func:`run_delete_hooks` runs them).
_PHASE_RANK: Final = {"PreSync": 0, "Sync": 1, "PostSync": 2, "PruneLast": 3, SYNC_FAIL: 4,
                      "PreDelete": 5, "PostDelete": 6}
#: ``resume_from`` of an operation that failed and waits for its SyncFail hooks.
SYNC_FAIL_GROUP: Final = (4, 0, 0)

HOOK_RUNNING: Final = "Running"
HOOK_SUCCEEDED: Final = "Succeeded"
HOOK_FAILED: Final = "Failed"

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
    problem: str = ""  # an apply that cannot be done as asked (found before anything is written)
    unchanged: bool = False  # proven a no-op from the live object's managedFields: not sent

    @property
    def group(self) -> tuple[int, int, int]:
        rank = _PHASE_RANK.get(self.phase, len(PHASES))
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
    hook_phase: str = ""  # hooks: Running | Succeeded | Failed (Argo CD's hookPhase)
    hook_type: str = ""  # hooks: PreSync | Sync | PostSync | SyncFail | PreDelete | PostDelete


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
    first_sync: bool | None = None,
) -> list[Step]:
    """Ordered steps for a sync.

    ``desired``: prepared manifests (namespace defaulted, stamped), hooks included;
    ``live_owned``: live objects this app owns. Owned objects absent from ``desired`` become
    prune steps after all applies of the Sync phase, in reverse wave order (``prune_last``:
    after PostSync). With ``prune`` false, or ``Prune=false`` on the object, the step carries
    a ``skip_reason`` and is reported PruneSkipped rather than silently dropped.
    Hooks of type Skip, PreDelete and PostDelete are left out (the last two run on app deletion,
    see :func:`run_delete_hooks`); SyncFail hooks are planned in their own phase, after
    everything, and :func:`run_sync` runs them only when the sync fails. ``first_sync`` decides
    Helm's install vs upgrade hooks (see :func:`tracking.hook_types`).
    """
    steps: list[Step] = []
    wanted: set[tuple[str, str, str, str]] = set()
    for obj in desired:
        wanted.add(tracking.resource_key(obj))
        if not tracking.is_hook(obj):
            steps.append(Step(APPLY, "Sync", tracking.sync_wave(obj), dict(obj)))
            continue
        for hook in tracking.hook_types(obj, first_sync):
            if hook in PHASES or hook == SYNC_FAIL:
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


# ---- options ----------------------------------------------------------------------------------

Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class SyncOptions:
    """What an Application's ``syncOptions`` and status ask of one sync (see :func:`options_for`).

    ``out_of_sync``: keys the last comparison found OutOfSync / Missing (None: no comparison
    yet, everything is applied). ``earlier``: results this operation recorded in earlier
    invocations (a resumed operation finds its ``generateName`` hooks there).
    """

    first_sync: bool = True
    apply_out_of_sync_only: bool = False
    full_sync: bool = False  # ApplyOutOfSyncOnly=false: send every apply, even proven no-ops
    out_of_sync: frozenset[Key] | None = None
    respect_ignore_differences: bool = False
    ignore_rules: tuple[_diff.IgnoreRule, ...] = ()
    replace: bool = False
    validate: bool = True
    fail_on_shared_resource: bool = False
    earlier: tuple[ResourceResult, ...] = ()
    previous_message: str = ""  # the message this operation recorded in its last invocation


def options_for(app: Any, *, resources: Iterable[Any] = (), previous: Any = None, earlier: Iterable[Any] = (),
                has_history: bool = False) -> SyncOptions:
    """:class:`SyncOptions` from a :class:`gitferry.model.Application`, its status resources
    (``ResourceStatus``), the operation before this one, this operation's earlier results
    (model ``ResourceResult``) and whether the app has sync history.

    The app's first sync (Helm's install, vs upgrade) is one with no history and no Succeeded
    operation before it.
    """
    resources = list(resources)
    out_of_sync = (frozenset((r.group, r.kind, r.namespace, r.name) for r in resources if r.status != "Synced")
                   if resources else None)
    first_sync = not has_history and not (previous is not None and getattr(previous, "phase", None) == "Succeeded")
    past = tuple(
        ResourceResult(r.group, r.version, r.kind, r.namespace, r.name, str(r.status or ""), str(r.message or ""),
                       str(r.sync_phase or "Sync"), 0, bool(r.hook_phase or r.hook_type), str(r.hook_phase or ""),
                       str(r.hook_type or ""))
        for r in earlier)
    return SyncOptions(
        first_sync=first_sync,
        apply_out_of_sync_only=app.has_sync_option("ApplyOutOfSyncOnly"),
        full_sync=app.sync_option("ApplyOutOfSyncOnly") == "false",
        out_of_sync=out_of_sync,
        respect_ignore_differences=app.has_sync_option("RespectIgnoreDifferences"),
        ignore_rules=tuple(_diff.ignore_rules(app.spec.ignore_differences)),
        replace=app.has_sync_option("Replace"),
        validate=app.sync_option("Validate") != "false",
        fail_on_shared_resource=app.has_sync_option("FailOnSharedResource"),
        earlier=past,
        previous_message=str(getattr(previous, "message", "") or "") if past else "",
    )


#: ``argocd.argoproj.io/sync-options`` entries on a resource gitferry implements, with their values.
#: ``ServerSideApply=false`` (Argo CD's client-side apply) is not: gitferry always applies
#: server-side, and a client-side apply would need the last-applied-configuration three-way merge.
RESOURCE_SYNC_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "Prune": ("true", "false"),
    "Delete": ("true", "false"),
    "Replace": ("true", "false"),
    "Force": ("true", "false"),
    "ServerSideApply": ("true",),
    "SkipDryRunOnMissingResource": ("true", "false"),
    "Validate": ("true", "false"),
}


def resource_option_problem(obj: Mapping[str, Any]) -> str:
    """Why an object's ``argocd.argoproj.io/sync-options`` cannot be honoured ("" when it can)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(tracking.SYNC_OPTIONS_ANNOTATION)
    bad: list[str] = []
    for part in str(raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or value.strip() not in RESOURCE_SYNC_OPTIONS.get(key.strip(), ()):
            bad.append(part)
    if not bad:
        return ""
    return (f"{tracking.SYNC_OPTIONS_ANNOTATION} {', '.join(bad)} not supported by gitferry (supported: "
            + ", ".join(f"{k}={'|'.join(v)}" for k, v in RESOURCE_SYNC_OPTIONS.items()) + ")")


def delete_allowed(obj: Mapping[str, Any]) -> bool:
    """False for ``argocd.argoproj.io/sync-options: Delete=false``: the app's deletion must leave
    the object in the cluster (the API deletion path asks this of every live object)."""
    return tracking.sync_options(obj).get("Delete", "").lower() != "false"


def _option(obj: Mapping[str, Any], key: str, default: bool) -> bool:
    value = tracking.sync_options(obj).get(key)
    return default if value is None else value.lower() == "true"


def _keep_live_value(target: Any, live: Any, path: tuple[Any, ...]) -> None:
    """Make ``target`` hold ``live``'s value at ``path`` (or nothing when live has none)."""
    ok, value = True, live
    for seg in path:
        ok, value = _diff._step(value, seg)
        if not ok:
            break
    parent = target
    for seg in path[:-1]:
        found, child = _diff._step(parent, seg)
        if not found:
            if not ok or not isinstance(seg, str) or not isinstance(parent, dict):
                return  # neither side has it, or a list item Git does not have: nothing to keep
            child = parent[seg] = {}
        parent = child
    last = path[-1]
    if not ok:
        _diff._remove(target, path)
    elif isinstance(last, str) and isinstance(parent, dict):
        parent[last] = tracking._copy_json(value)
    elif isinstance(last, int) and isinstance(parent, list) and 0 <= last < len(parent):
        parent[last] = tracking._copy_json(value)
    elif isinstance(last, tuple) and isinstance(parent, list):
        found, item = _diff._step(parent, last)
        if found:
            parent[parent.index(item)] = tracking._copy_json(value)
        else:
            parent.append(tracking._copy_json(value))


def respect_ignore_differences(obj: Mapping[str, Any], live: Mapping[str, Any] | None,
                               rules: Iterable[_diff.IgnoreRule],
                               jq: Any = None) -> tuple[dict[str, Any], str]:
    """RespectIgnoreDifferences=true: ``obj`` with the fields its ignoreDifferences rules select
    on the live object (jsonPointers, jqPathExpressions, managedFieldsManagers; the same
    selection the comparison ignores, :func:`gitferry.diff.ignored_paths`) set to their live
    values, so a sync does not undo what the comparison ignores. Returns (object, problem); a
    jq expression that could not be evaluated is a problem naming it (the object is not
    applied with a guess)."""
    out = tracking._copy_json(dict(obj))
    if live is None:
        return out, ""
    matching = [rule for rule in rules if rule.matches(live)]
    if not matching:
        return out, ""
    paths, failures = _diff.ignored_paths(live, matching, live=live, jq=jq)
    if failures:
        return out, f"RespectIgnoreDifferences: {failures[0]}"
    for path in paths:
        if path and path[0] not in ("apiVersion", "kind", "metadata"):
            _keep_live_value(out, live, path)
    return out, ""


# ---- execution ----------------------------------------------------------------------------------


def _result_for(step: Step, status: str, message: str, name: str | None = None, hook_phase: str = "") -> ResourceResult:
    group, kind, namespace, own_name = step.key
    if not own_name:
        own_name = str((step.obj.get("metadata") or {}).get("generateName") or "")
    api_version = str(step.obj.get("apiVersion", ""))
    version = api_version.split("/", 1)[1] if "/" in api_version else api_version
    return ResourceResult(group, version, kind, namespace, name or own_name, status, message, step.phase, step.wave,
                          step.hook, hook_phase, step.phase if step.hook else "")


def _generated(step: Step) -> bool:
    meta = step.obj.get("metadata") or {}
    return step.hook and not meta.get("name") and bool(meta.get("generateName"))


def _validate(step: Step) -> str:
    obj = step.obj
    meta = obj.get("metadata") or {}
    missing = [f for f, v in (("apiVersion", obj.get("apiVersion")), ("kind", obj.get("kind")),
                               ("metadata.name", meta.get("name") or _generated(step))) if not v]
    if not missing:
        return ""
    hint = " (generateName is only for hooks)" if meta.get("generateName") and not step.hook else ""
    return f"invalid manifest: missing {', '.join(missing)}{hint}"


def _wait_gone(cluster: ClusterClient, api_version: str, kind: str, name: str, namespace: str | None,
               seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while cluster.get(api_version, kind, name, namespace) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _delete_hook_before_creation(cluster: ClusterClient, app_name: str, step: Step, dry_run: bool) -> None:
    """BeforeHookCreation (the default policy): remove the previous run's hook object(s) so the
    new one starts fresh (a Job's template is immutable). A named hook is found by its name
    (and awaited until gone: it is re-created under the same name); ``generateName`` hooks by
    the hook label :func:`tracking.stamp_hook` put on them."""
    if dry_run or "BeforeHookCreation" not in tracking.hook_delete_policies(step.obj):
        return
    meta = step.obj.get("metadata") or {}
    api_version, kind, namespace = str(step.obj.get("apiVersion")), str(step.obj.get("kind")), meta.get("namespace")
    if meta.get("name"):
        existing = cluster.get(api_version, kind, str(meta["name"]), namespace)
        if existing is not None:
            cluster.delete(existing, propagation="Background")
            _wait_gone(cluster, api_version, kind, str(meta["name"]), namespace)
        return
    selector = f"{tracking.HOOK_LABEL}={tracking.hook_label_value(tracking.hook_id(app_name, step.obj, step.phase))}"
    for old in cluster.list_selected(api_version, kind, namespace, selector):
        cluster.delete(old, propagation="Background")


class _CrdPending(Exception):
    """Dry run of a custom resource whose CRD is part of the same (dry) sync."""


def _unserved(exc: Exception) -> bool:
    from .kube import KubeError

    return isinstance(exc, KubeError) and exc.code == 404 and "does not serve kind" in exc.message


def _write(cluster: ClusterClient, step: Step, opts: SyncOptions, crd_kinds: set[tuple[str, str]], dry_run: bool,
           wait_seconds: float = 30.0) -> dict[str, Any]:
    """Write one object the way its options ask: POST for ``generateName`` hooks; replace
    (PUT, or POST when missing) with ``Replace=true``, and with ``Force=true`` delete and
    re-create; else server-side apply, where ``Force=true`` gets through an immutable-field 422
    by delete and re-create (``kubectl apply --force``). ``fieldValidation`` Strict unless
    ``Validate=false``. A custom resource whose CRD this sync just applied is retried until the
    API server serves the new kind (a CRD takes a moment to become Established)."""
    from .kube import KubeError

    obj = step.obj
    meta = obj.get("metadata") or {}
    validation = "Strict" if _option(obj, "Validate", opts.validate) else "Ignore"
    force = _option(obj, "Force", False)
    api_version, kind, namespace = str(obj.get("apiVersion")), str(obj.get("kind")), meta.get("namespace")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if _generated(step):
                return cluster.create(obj, dry_run=dry_run, field_validation=validation)
            if _option(obj, "Replace", opts.replace):
                current = cluster.get(api_version, kind, str(meta.get("name")), namespace)
                if current is None:
                    return cluster.create(obj, dry_run=dry_run, field_validation=validation)
                if force and not dry_run and kind not in ("CustomResourceDefinition", "Namespace"):
                    return _recreate(cluster, obj, current, validation)
                body = {**obj, "metadata": {**meta, "resourceVersion": (current.get("metadata") or {}).get("resourceVersion")}}
                return cluster.replace(body, dry_run=dry_run, field_validation=validation)
            try:
                # Apply: unknown fields already fail the typed conversion, so Strict is only sent
                # as "Ignore" when Validate=false (kubesim mis-validates managedFields under Strict).
                return cluster.server_side_apply(obj, dry_run=dry_run,
                                                 field_validation=None if validation == "Strict" else validation)
            except KubeError as exc:
                if not (force and not dry_run and exc.code == 422 and "immutable" in exc.message):
                    raise
                current = cluster.get(api_version, kind, str(meta.get("name")), namespace)
                if current is None:
                    raise
                return _recreate(cluster, obj, current, validation)
        except KubeError as exc:
            pending = _unserved(exc) and (step.key[0], step.key[1]) in crd_kinds
            if not pending:
                raise
            if dry_run:
                raise _CrdPending() from exc
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            cluster.invalidate_discovery()


def _recreate(cluster: ClusterClient, obj: Mapping[str, Any], current: Mapping[str, Any], validation: str) -> dict[str, Any]:
    """Force: delete the live object, wait until it is gone, create it from Git."""
    from .kube import KubeError

    meta = current.get("metadata") or {}
    cluster.delete(current, propagation="Background")
    if not _wait_gone(cluster, str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name")),
                      meta.get("namespace")):
        raise KubeError("Force=true: the old object is still being deleted; it will be re-created by the next sync",
                        reason="Conflict", code=409, kind=str(obj.get("kind")), api_version=str(obj.get("apiVersion")),
                        namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""))
    return cluster.create(obj, field_validation=validation)


def _namespaced_lookup(cluster: ClusterClient) -> Callable[[str, str], bool | None]:
    """Whether a kind is namespaced, as ``tracking.prepare_desired`` asks it: None when the
    cluster does not serve the kind (the object then fails with the server's own answer)."""
    from .kube import KubeError

    def namespaced(api_version: str, kind: str) -> bool | None:
        try:
            return cluster.is_namespaced(api_version, kind)
        except KubeError:
            return None

    return namespaced


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
    options: SyncOptions | None = None,
    stop: Callable[[], str | None] | None = None,
) -> SyncResult:
    """Run one sync operation and report every resource.

    ``stop`` is asked before each wave (phase, wave) is applied: a reason it returns (the
    operation was terminated) ends the sync there as Failed with that reason, the waves left
    reported "not attempted", nothing more written and no SyncFail hooks run.

    ``desired``: rendered manifests; ``live``: objects listed by the app label; ``options``: the
    app's syncOptions and this operation's history (:func:`options_for`). Before the first write
    the whole sync is dry-run server-side (``dryRun=All``, every phase and wave): when an object
    fails it (a kind the cluster does not serve, an invalid field, an object of another app with
    FailOnSharedResource=true, a sync option gitferry does not implement) nothing is applied
    and the operation is Failed naming it. A resource failing later is recorded as SyncFailed
    and the operation is Failed with a message naming it; the rest of its wave still runs (as
    in Argo CD), later waves and prunes do not run and are reported as such. SyncFail hooks run
    when the sync failed.
    """
    from .kube import KubeError

    opts = options or SyncOptions()
    started = _now()
    results: list[ResourceResult] = []
    new_namespace: list[str] = []  # CreateNamespace in a dry run: the namespace objects "would be created" in
    prepared = tracking.prepare_desired(app_name, desired, namespace, _namespaced_lookup(cluster))
    owned = _diff.extraneous(app_name, prepared, live)
    steps = plan(prepared, owned, prune, prune_last=prune_last, first_sync=opts.first_sync)
    live_by_key = {tracking.resource_key(o): o for o in live}
    if opts.apply_out_of_sync_only and opts.out_of_sync is not None:
        steps = [s for s in steps if s.action != APPLY or s.hook or s.key in opts.out_of_sync
                 or s.key not in live_by_key]
    if opts.respect_ignore_differences and opts.ignore_rules:
        steps = [_respecting(s, live_by_key, opts) for s in steps]
    if not opts.full_sync and not opts.replace:
        steps = [_proven_unchanged(s, live_by_key) for s in steps]
    crd_kinds = {
        (str((o.get("spec") or {}).get("group", "")), str(((o.get("spec") or {}).get("names") or {}).get("kind", "")))
        for o in prepared if o.get("kind") == "CustomResourceDefinition"
    }
    healthy = is_healthy or _default_healthy
    main = [s for s in steps if s.phase != SYNC_FAIL]
    sync_fail = [s for s in steps if s.phase == SYNC_FAIL]

    def run_step(step: Step) -> tuple[Step, ResourceResult, str, str | None]:
        """One apply or prune: (step, its result, failure message or "", name of the object
        written or None). Touches no shared state, so the steps of one batch may run concurrently."""
        if step.action == PRUNE:
            pruned: list[str] = []
            result = _prune(cluster, app_name, step, propagation, dry_run, pruned)
            return step, result, pruned[0] if pruned else "", None
        problem = _validate(step) or resource_option_problem(step.obj) or step.problem
        if problem:
            return step, _result_for(step, SYNC_FAILED, problem), f"{_ident(step)}: {problem}", None
        if step.unchanged:
            return (step, _result_for(step, SYNCED, f"unchanged{' (dry run)' if dry_run else ''}", step.key[3]),
                    "", step.key[3])
        if step.hook:
            step = Step(step.action, step.phase, step.wave, tracking.stamp_hook(app_name, step.obj, step.phase), True)
        try:
            if step.hook:
                _delete_hook_before_creation(cluster, app_name, step, dry_run)
            out = _write(cluster, step, opts, crd_kinds, dry_run)
        except _CrdPending:
            return step, _result_for(step, SYNCED, "dry run: its CustomResourceDefinition is not created yet"), "", None
        except KubeError as exc:
            ns = (step.obj.get("metadata") or {}).get("namespace")
            if (exc.code == 404 and ns in new_namespace and f'namespaces "{ns}" not found' in exc.message):
                # The server cannot dry-run into a namespace that only this sync would create.
                return step, _result_for(step, SYNCED, "created (dry run): its namespace is created by this sync"), \
                    "", None
            message = _diff.scrub(str(exc), step.obj)
            return step, _result_for(step, SYNC_FAILED, message), message, None
        except Exception as exc:  # a bug or transport error must still be reported per resource
            message = _diff.scrub(f"{type(exc).__name__}: {exc}", step.obj)
            return step, _result_for(step, SYNC_FAILED, message), f"{_ident(step)}: {message}", None
        name = str((out.get("metadata") or {}).get("name") or step.key[3])
        before = None if step.hook else live_by_key.get(step.key)
        if before is None:
            message = "created"
        elif dry_run and _would_change(before, out):  # a dry run never bumps the resourceVersion
            message = "configured"
        elif (before.get("metadata") or {}).get("resourceVersion") == (out.get("metadata") or {}).get("resourceVersion"):
            message = "unchanged"
        else:
            message = "configured"
        hook_phase = HOOK_RUNNING if step.hook and not dry_run else ""
        return (step, _result_for(step, SYNCED, f"{message}{' (dry run)' if dry_run else ''}", name, hook_phase),
                "", name)

    pool = _LazyPool()
    run = _Run(cluster, app_name, opts, results, started, dry_run, wait_between_waves, healthy, run_step, pool)
    run.stop = stop
    try:
        if resume_from is not None and tuple(resume_from) >= SYNC_FAIL_GROUP:
            return run.await_sync_fail(sync_fail)
        if resume_from is None:
            problems = _preflight(cluster, app_name, steps, opts, live_by_key, crd_kinds, create_namespace,
                                  namespace, dry_run, pool)
            if problems:
                for step, problem in problems:
                    results.append(_result_for(step, SYNC_FAILED, problem))
                listed = "; ".join(f"{_ident(s)}: {p}" for s, p in problems[:5])
                more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
                return run.failed(f"the dry run of the sync failed, nothing was applied: {listed}{more}", sync_fail)
        if create_namespace and namespace and resume_from is None:
            try:
                existed = cluster.get("v1", "Namespace", namespace) is not None
                if dry_run and not existed:
                    new_namespace.append(namespace)
                if not existed:  # ensure_namespace would only read it again
                    cluster.ensure_namespace(namespace, dry_run=dry_run)
                results.append(ResourceResult("", "v1", "Namespace", "", namespace, SYNCED,
                                              "namespace exists" if existed else
                                              f"namespace created{' (dry run)' if dry_run else ''}"))
            except KubeError as exc:
                results.append(ResourceResult("", "v1", "Namespace", "", namespace, SYNC_FAILED, str(exc)))
                return run.failed(f"cannot create namespace {namespace}: {exc}", sync_fail)
        return run.groups(main, resume_from, sync_fail)
    finally:
        pool.shutdown()


def _default_healthy(obj: Mapping[str, Any] | None) -> bool:
    return _health.resource_health(obj).status in (_health.HEALTHY, _health.SUSPENDED)


def _proven_unchanged(step: Step, live_by_key: Mapping[Key, Mapping[str, Any]]) -> Step:
    """An apply :func:`diff.offline_synced` proves a no-op (gitferry owns exactly the fields it
    sets, each with the value it sets) is marked ``unchanged``: neither dry-run nor sent, so a
    re-sync of an unchanged app asks the cluster only about what may differ. Hooks, and objects
    with Replace / Force, are always sent; ``ApplyOutOfSyncOnly=false`` sends everything."""
    if step.action != APPLY or step.hook or step.problem:
        return step
    options = tracking.sync_options(step.obj)
    if options.get("Replace") == "true" or options.get("Force") == "true":
        return step
    live = live_by_key.get(step.key)
    if live is None or not _diff.offline_synced(step.obj, live):
        return step
    return Step(step.action, step.phase, step.wave, step.obj, step.hook, step.skip_reason, step.problem, True)


def _respecting(step: Step, live_by_key: Mapping[Key, Mapping[str, Any]], opts: SyncOptions) -> Step:
    if step.action != APPLY or step.hook:
        return step
    obj, problem = respect_ignore_differences(step.obj, live_by_key.get(step.key), opts.ignore_rules)
    return Step(step.action, step.phase, step.wave, obj, step.hook, problem=problem)


def _preflight(cluster: ClusterClient, app_name: str, steps: list[Step], opts: SyncOptions,
               live_by_key: Mapping[Key, Mapping[str, Any]], crd_kinds: set[tuple[str, str]],
               create_namespace: bool, namespace: str | None, dry_run: bool, pool: _LazyPool) -> list[tuple[Step, str]]:
    """Everything that can be known before the first write, for every apply of every phase and
    wave: the manifest is complete, its sync-options are implemented, it is not another app's
    (FailOnSharedResource=true), and a server-side dry run (``dryRun=All``) accepts it.
    Skipped dry runs: custom resources whose CRD is in this sync, objects in a namespace this
    sync creates, kinds not served yet with SkipDryRunOnMissingResource=true, named hooks the
    sync deletes and re-creates. Returns the (step, problem) pairs, in plan order."""
    from .kube import KubeError

    applies = [s for s in steps if s.action == APPLY]
    new_namespaces: set[str] = set()
    if create_namespace and namespace and cluster.get("v1", "Namespace", namespace) is None:
        new_namespaces.add(namespace)
    for step in applies:
        if step.key[:2] == ("", "Namespace") and step.key[3] and cluster.get("v1", "Namespace", step.key[3]) is None:
            new_namespaces.add(step.key[3])

    def one(step: Step) -> str:
        problem = _validate(step) or resource_option_problem(step.obj)
        if problem:
            return problem
        if step.problem:
            return step.problem
        meta = step.obj.get("metadata") or {}
        api_version, kind, name = str(step.obj.get("apiVersion")), str(step.obj.get("kind")), str(meta.get("name") or "")
        try:
            if opts.fail_on_shared_resource and not step.hook:
                current = live_by_key.get(step.key)
                if current is None:
                    try:
                        current = cluster.get(api_version, kind, name, meta.get("namespace"))
                    except KubeError as exc:
                        if not _unserved(exc):
                            raise
                other = tracking.owner_app(current) if current else None
                if other and other != app_name:
                    return f"FailOnSharedResource=true: the object is part of application {other}"
            if dry_run or step.key[2] in new_namespaces or step.unchanged:
                # a dry-run sync dry-runs every object anyway; a new namespace has nothing yet; a
                # proven no-op is not sent, so there is nothing to dry-run
                return ""
            if step.hook and name and "BeforeHookCreation" in tracking.hook_delete_policies(step.obj) \
                    and cluster.get(api_version, kind, name, meta.get("namespace")) is not None:
                return ""  # deleted before it is created again: a dry run against the old one means nothing
            obj = tracking.stamp_hook(app_name, step.obj, step.phase) if step.hook else step.obj
            _write(cluster, Step(step.action, step.phase, step.wave, obj, step.hook), opts, crd_kinds, True)
        except _CrdPending:
            return ""
        except KubeError as exc:
            if _unserved(exc) and _option(step.obj, "SkipDryRunOnMissingResource", False):
                return ""
            if exc.code == 422 and "immutable" in exc.message and _option(step.obj, "Force", False):
                return ""  # Force=true: the write deletes and re-creates it, which the dry run cannot show
            return _diff.scrub(str(exc), step.obj)
        except Exception as exc:
            return _diff.scrub(f"{type(exc).__name__}: {exc}", step.obj)
        return ""

    problems = list(pool.map(one, applies)) if len(applies) > 1 else [one(s) for s in applies]
    return [(s, p) for s, p in zip(applies, problems, strict=True) if p]


_RUNNING_SYNC_FAIL: Final = "; running SyncFail hooks "


class _Run:
    """The execution of one invocation: groups in order, health gates, SyncFail hooks."""

    def __init__(self, cluster: ClusterClient, app_name: str, opts: SyncOptions, results: list[ResourceResult],
                 started: str, dry_run: bool, wait: bool, healthy: Callable[[Mapping[str, Any] | None], bool],
                 run_step: Callable[[Step], tuple[Step, ResourceResult, str, str | None]], pool: _LazyPool) -> None:
        self.cluster, self.app_name, self.opts, self.results = cluster, app_name, opts, results
        self.started, self.dry_run, self.wait, self.healthy = started, dry_run, wait, healthy
        self.run_step, self.pool = run_step, pool
        self.stop: Callable[[], str | None] | None = None

    def _result(self, phase: str, message: str, resume_from: tuple[int, int, int] | None = None) -> SyncResult:
        return SyncResult(phase, message, self.results, self.started, _now(), resume_from=resume_from,
                          dry_run=self.dry_run)

    def groups(self, steps: list[Step], resume_from: tuple[int, int, int] | None, sync_fail: list[Step]) -> SyncResult:
        failures: list[str] = []
        results = self.results
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
            reason = self.stop() if self.stop is not None else None
            if reason:  # terminated: nothing from here on is written
                return self.stopped(reason, steps[end:] if resuming else steps[start:])
            applied: list[tuple[Step, str]] = []
            if resuming:  # applied by the invocation that paused here: only its health is left to check
                applied = self._resumed(group_steps)
            for step, result, failure, name in _run_steps(self.pool, [] if resuming else group_steps, self.run_step):
                if failure:
                    failures.append(failure)
                results.append(result)
                if name is not None:
                    applied.append((step, name))
            if any(s.obj.get("kind") == "CustomResourceDefinition" for s, _ in applied):
                self.cluster.invalidate_discovery()  # the next wave may use the new kinds
            if failures or not self.wait or self.dry_run or not applied:
                continue
            if end >= len(steps) and not any(s.hook for s, _ in applied):
                continue  # nothing follows the last wave: its rollout is followed by the diff stage
            waiting = self._await(applied, failures)
            if waiting and not failures:
                nxt = f"wave {steps[end].wave} of phase {steps[end].phase}" if end < len(steps) else "the end of the sync"
                return self._result(
                    "Running",
                    f"waiting for {', '.join(waiting[:5])}{' ...' if len(waiting) > 5 else ''} to become healthy "
                    f"before {nxt}", group)

        if failures:
            message = f"one or more objects failed to apply: {'; '.join(failures[:5])}"
            if len(failures) > 5:
                message += f" (and {len(failures) - 5} more)"
            return self.failed(message, sync_fail)
        skipped = sum(1 for r in results if r.status == PRUNE_SKIPPED)
        message = "successfully synced (all tasks run)"
        if skipped:
            message += f"; {skipped} object(s) require pruning"
        return self._result("Succeeded", message)

    def stopped(self, reason: str, rest: list[Step]) -> SyncResult:
        for step in rest:
            if step.action == APPLY:
                self.results.append(_result_for(step, SYNC_FAILED, f"not attempted: {reason}"))
            else:
                self.results.append(_result_for(step, PRUNE_SKIPPED, f"not pruned: {reason}"))
        return self._result("Failed", reason)

    def failed(self, message: str, sync_fail: list[Step]) -> SyncResult:
        """The sync failed: start its SyncFail hooks (all at once, as Argo CD does); the
        operation is Failed once they finished (a resumed invocation awaits them)."""
        if self.dry_run or not sync_fail:
            return self._result("Failed", message)
        created: list[tuple[Step, str]] = []
        hook_failures: list[str] = []
        for step, result, failure, name in _run_steps(self.pool, sync_fail, self.run_step):
            self.results.append(result)
            if failure:
                hook_failures.append(failure)
            if name is not None:
                created.append((step, name))
        waiting = self._await(created, hook_failures) if self.wait and created else []
        if hook_failures:
            message += f"; one or more SyncFail hooks failed: {'; '.join(hook_failures[:5])}"
        if waiting:
            return self._result("Running", f"{message}{_RUNNING_SYNC_FAIL}{', '.join(waiting[:5])}",
                                SYNC_FAIL_GROUP)
        return self._result("Failed", message)

    def await_sync_fail(self, sync_fail: list[Step]) -> SyncResult:
        """Resumed while SyncFail hooks run: the operation's failure is in its earlier results."""
        reasons = [f"{r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}: {r.message}"
                   for r in self.opts.earlier
                   if r.status == SYNC_FAILED and r.phase != SYNC_FAIL and not r.message.startswith("not attempted")]
        message = f"one or more objects failed to apply: {'; '.join(reasons[:5]) or 'see the resource results'}"
        if _RUNNING_SYNC_FAIL in self.opts.previous_message:  # the failure as first reported
            message = self.opts.previous_message.split(_RUNNING_SYNC_FAIL, 1)[0]
        failures: list[str] = []
        waiting = self._await(self._resumed(sync_fail), failures) if self.wait else []
        if failures:
            message += f"; one or more SyncFail hooks failed: {'; '.join(failures[:5])}"
        if waiting:
            return self._result("Running", f"{message}{_RUNNING_SYNC_FAIL}{', '.join(waiting[:5])}",
                                SYNC_FAIL_GROUP)
        return self._result("Failed", message)

    def _resumed(self, steps: list[Step]) -> list[tuple[Step, str]]:
        """The objects an earlier invocation wrote for ``steps``: named ones by name, hooks
        created from ``generateName`` by the name recorded in this operation's results (the
        live one carrying the hook label, when several)."""
        out: list[tuple[Step, str]] = []
        for step in steps:
            if step.action != APPLY:
                continue
            if not _generated(step):
                out.append((step, step.key[3]))
                continue
            group, kind, namespace, _ = step.key
            prefix = str((step.obj.get("metadata") or {}).get("generateName"))
            recorded = [r.name for r in self.opts.earlier
                        if (r.group, r.kind, r.namespace, r.phase) == (group, kind, namespace, step.phase)
                        and r.name.startswith(prefix) and len(r.name) == len(prefix) + 5]
            if not recorded:
                continue  # never created (it failed before): nothing to await
            selector = f"{tracking.HOOK_LABEL}={tracking.hook_label_value(tracking.hook_id(self.app_name, step.obj, step.phase))}"
            try:
                live_names = {str((o.get("metadata") or {}).get("name"))
                              for o in self.cluster.list_selected(str(step.obj.get("apiVersion")), kind, namespace or None,
                                                                  selector)}
            except Exception:
                live_names = set()
            chosen = next((n for n in recorded if n in live_names), recorded[-1])
            out.append((step, chosen))
        return out

    def _earlier_hook_phase(self, step: Step, name: str) -> str:
        group, kind, namespace, _ = step.key
        for r in self.opts.earlier:
            if (r.group, r.kind, r.namespace, r.name, r.phase) == (group, kind, namespace, name, step.phase):
                return r.hook_phase
        return ""

    def _await(self, applied: list[tuple[Step, str]], failures: list[str]) -> list[str]:
        """Health gate at a wave boundary. Returns what is still not healthy. Hooks must
        complete: a Degraded hook (failed Job) fails the sync; its result's hookPhase says
        Running / Succeeded / Failed; hook-delete-policy HookSucceeded / HookFailed removes the
        hook once it finished that way."""
        from .kube import KubeError

        cluster = self.cluster
        waiting: list[str] = []
        for step, name in applied:
            meta = step.obj.get("metadata") or {}
            try:
                now = cluster.get(str(step.obj["apiVersion"]), str(step.obj["kind"]), name, meta.get("namespace"))
            except KubeError:
                now = None
            ident = _ident(step, name)
            if not step.hook:
                if not self.healthy(now):
                    waiting.append(ident)
                continue
            policies = tracking.hook_delete_policies(step.obj)
            if now is None:
                earlier = self._earlier_hook_phase(step, name)
                if earlier in (HOOK_SUCCEEDED, HOOK_FAILED):
                    continue  # finished and deleted by its policy in an earlier invocation
                message = f"hook {ident} was deleted before it completed"
                failures.append(message)
                _replace_result(self.results, _result_for(step, SYNC_FAILED, message, name, HOOK_FAILED))
                continue
            state = _health.resource_health(now)
            if state.status == _health.DEGRADED:
                message = f"hook {ident} failed: {state.message}"
                failures.append(message)
                _replace_result(self.results, _result_for(step, SYNC_FAILED, message, name, HOOK_FAILED))
                if "HookFailed" in policies:
                    cluster.delete(now, propagation="Background")
            elif state.status in (_health.HEALTHY, _health.SUSPENDED):
                _replace_result(self.results, _result_for(step, SYNCED, state.message or "hook completed", name,
                                                          HOOK_SUCCEEDED))
                if "HookSucceeded" in policies:
                    cluster.delete(now, propagation="Background")
            else:
                _replace_result(self.results, _result_for(step, SYNCED, state.message or "running", name, HOOK_RUNNING))
                waiting.append(ident)
        return waiting


def run_delete_hooks(
    cluster: ClusterClient,
    app_name: str,
    desired: list[Mapping[str, Any]],
    phase: str,
    *,
    namespace: str | None,
    resume_from: tuple[int, int, int] | None = None,
    earlier: Iterable[ResourceResult] = (),
    wait: bool = True,
) -> SyncResult:
    """Run the app's ``PreDelete`` or ``PostDelete`` hooks (``argocd.argoproj.io/hook`` or Helm's
    ``pre-delete`` / ``post-delete``) for the API's app deletion, in wave order, like a sync's
    hooks: created (``generateName`` by POST), awaited, cleaned up by their delete policy.

    ``desired``: the app's rendered manifests. Returns Succeeded when every hook completed (or
    there are none), Failed naming a hook that failed, or Running with ``resume_from`` while a
    hook runs: call again with that ``resume_from`` and the returned resources as ``earlier``
    (PreDelete: delete the app's resources only after Succeeded; PostDelete: after they are gone).
    """
    if phase not in DELETE_PHASES:
        raise ValueError(f"phase must be one of {', '.join(DELETE_PHASES)}, not {phase!r}")
    from .kube import KubeError

    prepared = tracking.prepare_desired(app_name, desired, namespace, _namespaced_lookup(cluster))
    steps = sorted((Step(APPLY, phase, tracking.sync_wave(o), o, hook=True) for o in prepared
                    if tracking.is_hook(o) and phase in tracking.hook_types(o, first_sync=False)), key=Step.sort_key)
    opts = SyncOptions(earlier=tuple(earlier))
    results: list[ResourceResult] = []
    pool = _LazyPool()

    def run_step(step: Step) -> tuple[Step, ResourceResult, str, str | None]:
        problem = _validate(step) or resource_option_problem(step.obj)
        if problem:
            return step, _result_for(step, SYNC_FAILED, problem), f"{_ident(step)}: {problem}", None
        step = Step(step.action, step.phase, step.wave, tracking.stamp_hook(app_name, step.obj, step.phase), True)
        try:
            _delete_hook_before_creation(cluster, app_name, step, False)
            out = _write(cluster, step, opts, set(), False)
        except KubeError as exc:
            message = _diff.scrub(str(exc), step.obj)
            return step, _result_for(step, SYNC_FAILED, message), message, None
        name = str((out.get("metadata") or {}).get("name") or step.key[3])
        return step, _result_for(step, SYNCED, "created", name, HOOK_RUNNING), "", name

    run = _Run(cluster, app_name, opts, results, _now(), False, wait, _default_healthy, run_step, pool)
    try:
        result = run.groups(steps, resume_from, [])
    finally:
        pool.shutdown()
    if result.phase == "Succeeded":
        result.message = f"{phase} hooks completed" if steps else f"no {phase} hooks"
    return result


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


def _replace_result(results: list[ResourceResult], new: ResourceResult) -> None:
    """One line per resource: a hook's later state replaces its "created"."""
    for index, old in enumerate(results):
        if (old.group, old.kind, old.namespace, old.name, old.phase) == (new.group, new.kind, new.namespace,
                                                                          new.name, new.phase):
            results[index] = new
            return
    results.append(new)


def _would_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether a dry-run apply's answer differs from the live object (status and the metadata
    the server keeps itself left out)."""
    def essence(obj: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items()
                           if k not in ("resourceVersion", "managedFields", "generation")}
        return out
    return essence(before) != essence(after)


def _ident(step: Step, name: str | None = None) -> str:
    group, kind, namespace, own = step.key
    name = name or own or str((step.obj.get("metadata") or {}).get("generateName") or "")
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
