"""Deleting an application, as Argo CD's resources finalizer does.

``DELETE /api/v1/applications/{name}`` with cascade (the default, as ``argocd app delete``)
marks the app as being deleted (``metadata.deletionTimestamp``, the
``resources-finalizer.argocd.argoproj.io`` finalizer) and queues an
``ApplyRequest(operation="delete")``; the apply stage then, under the app's operation lease:

1. runs the ``PreDelete`` hooks of the last synced manifests and waits for them to complete;
2. deletes the objects the app manages (the tracking annotation names the app: tracking.py) in
   reverse sync-wave order, each wave gone before the next is deleted, keeping those annotated
   ``argocd.argoproj.io/sync-options: Delete=false``;
3. runs the ``PostDelete`` hooks and waits for them, deleting each once it succeeded;
4. removes the app record (spec, status, history, resource tree) once everything is gone.

A Lambda never sleeps on a slow deletion: each invocation waits a few seconds at most, stores
where it is (``stage``) and when to look again (``nextCheckAt``) on the app, and the poll sends
the request again when that is due (:func:`due_resumes`). A failure (API server error, failed
hook) is shown as a ``DeletionError`` condition and retried the same way; the app is never
forgotten while objects it deleted half-way are left.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from gitferry import health as _health
from gitferry import tracking
from gitferry.messages import ApplyRequest

if TYPE_CHECKING:
    from gitferry.kube import ClusterClient
    from gitferry.pipeline import Engine
    from gitferry.state import StoredApp

FINALIZER: Final = "resources-finalizer.argocd.argoproj.io"
FOREGROUND_FINALIZER: Final = f"{FINALIZER}/foreground"
BACKGROUND_FINALIZER: Final = f"{FINALIZER}/background"
FINALIZERS: Final = (FINALIZER, FOREGROUND_FINALIZER, BACKGROUND_FINALIZER)

STAGES: Final = ("PreDelete", "Resources", "PostDelete")
#: How long one invocation waits for objects to go (or hooks to finish) before it hands over to
#: the poll: a Lambda must not sleep through a slow rollout.
WAIT_SECONDS: Final = 5.0
#: When nothing else says so, the poll re-sends a deletion whose message may have been lost.
SAFETY_RECHECK_SECONDS: Final = 120


def propagation_for(finalizers: Iterable[str], requested: str | None) -> str:
    """Foreground (Argo CD's default) unless the request or the ``/background`` finalizer says
    background."""
    if requested:
        return requested.capitalize()
    return "Background" if BACKGROUND_FINALIZER in finalizers else "Foreground"


def start(engine: Engine, stored: StoredApp, *, propagation: str, initiated_by: str) -> dict[str, Any]:
    """Mark ``stored`` as being deleted and queue the deletion; returns the deletion record.
    Asking again while it is being deleted answers the record in progress."""
    from gitferry.errors import ConflictError

    app = stored.app
    now = engine.clock()
    status = engine.state.get_status(app.name)
    op = status.operation_state if status else None
    sync_doc = ((op.operation or {}).get("sync") or {}) if op else {}
    doc: dict[str, Any] = {
        "deletionTimestamp": _iso(now),
        "propagation": propagation,
        "initiatedBy": initiated_by,
        "stage": STAGES[0],
        # The hooks come from what was last synced (the cluster holds that revision).
        "revision": str(sync_doc.get("revision") or (status.sync.revision if status else None) or "none"),
        "manifests": str(sync_doc.get("manifests") or ""),
        "nextCheckAt": _iso(now + timedelta(seconds=SAFETY_RECHECK_SECONDS)),
    }
    try:
        engine.state.mark_deleting(app.name, doc, first=True)
    except ConflictError:
        current = engine.state.get_app(app.name).deletion
        return current or doc
    engine.queues.send(request_for(app.name, doc), dedup=f"delete:{app.name}:{doc['deletionTimestamp']}")
    return doc


def request_for(app: str, doc: Mapping[str, Any]) -> ApplyRequest:
    return ApplyRequest(app=app, commit=str(doc.get("revision") or "none"), manifests=str(doc.get("manifests") or ""),
                        operation="delete", reason="delete", initiatedBy=str(doc.get("initiatedBy") or "api"))


def due_resumes(stored_apps: Iterable[StoredApp], now: datetime) -> list[tuple[ApplyRequest, str]]:
    """The poll's part: the deletions whose next look is due, as (message, dedup id)."""
    out: list[tuple[ApplyRequest, str]] = []
    for stored in stored_apps:
        doc = stored.deletion
        if not doc:
            continue
        due = doc.get("nextCheckAt")
        if due is None or datetime.fromisoformat(due) <= now:
            out.append((request_for(stored.app.name, doc), f"delete:{stored.app.name}:{due}:{now.timestamp()}"))
    return out


def run(engine: Engine, request: ApplyRequest, wait_seconds: float = WAIT_SECONDS) -> str:
    """One invocation of a deletion: as far as it gets without waiting long. Returns the stage it
    stopped in, or ``"Deleted"``."""
    from gitferry.errors import NotFoundError

    try:
        stored = engine.state.get_app(request.app)
    except NotFoundError:
        return "Deleted"  # finished by an earlier delivery
    doc = dict(stored.deletion or {})
    if not doc:
        return "NotDeleting"
    app = stored.app
    op_id = uuid.uuid4().hex
    if not engine.state.acquire_operation(app.name, op_id, engine.settings.operation_timeout_seconds):
        # A sync is applying right now: look again soon (the poll re-sends) rather than have SQS
        # hold this message for a whole visibility timeout.
        doc.update(message="waiting for the running operation to finish",
                   nextCheckAt=_iso(engine.clock() + timedelta(seconds=engine.settings.rollout_check_seconds)))
        engine.state.mark_deleting(app.name, doc, first=False)
        return str(doc.get("stage"))
    released = False
    try:
        cluster = engine.cluster_for(app)
        hooks = _hooks(engine, doc)
        deadline = time.monotonic() + wait_seconds
        stage = str(doc.get("stage") or STAGES[0])
        while True:
            if stage == "PreDelete":
                waiting, failed = _run_hooks(cluster, app.name, hooks.get("PreDelete", []),
                                             app.spec.destination.namespace, doc.setdefault("hooksDone", []))
            elif stage == "Resources":
                waiting, failed = _delete_resources(cluster, app.name, str(doc.get("propagation") or "Foreground")), ""
            else:
                waiting, failed = _run_hooks(cluster, app.name, hooks.get("PostDelete", []),
                                             app.spec.destination.namespace, doc.setdefault("hooksDone", []))
            if failed:
                _record_error(engine, app.name, doc, stage, failed)
                return stage
            if waiting:
                if time.monotonic() < deadline:
                    time.sleep(1.0)  # each look LISTs every kind the app may own
                    continue
                doc.update(stage=stage, message=f"waiting for {', '.join(waiting[:5])}"
                                                f"{' ...' if len(waiting) > 5 else ''}")
                doc["nextCheckAt"] = _iso(engine.clock() + timedelta(seconds=engine.settings.rollout_check_seconds))
                engine.state.mark_deleting(app.name, doc, first=False)
                _clear_error(engine, app.name)
                return stage
            if stage == STAGES[-1]:
                break
            stage = STAGES[STAGES.index(stage) + 1]
            doc.update(stage=stage, message=None)
            engine.state.mark_deleting(app.name, doc, first=False)
        _forget(engine, app.name, request.initiated_by)
        released = True  # the lease item went with the app
        return "Deleted"
    except NotFoundError as exc:
        if not _exists(engine, app.name):
            released = True  # forgotten meanwhile (DELETE ?cascade=false): nothing left to do
            return "Deleted"
        _record_error(engine, app.name, doc, str(doc.get("stage")), str(exc))  # e.g. its cluster is gone
        return str(doc.get("stage"))
    except Exception as exc:  # noqa: BLE001 - shown on the app and retried; never lost
        _record_error(engine, app.name, doc, str(doc.get("stage")), f"{type(exc).__name__}: {exc}")
        return str(doc.get("stage"))
    finally:
        if not released:
            engine.state.release_operation(app.name, op_id)


# ---------------------------------------------------------------------- the cluster part


def managed_objects(app: str, live: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """What a cascading delete removes: objects whose tracking annotation names ``app`` and this
    very object, except hooks and objects annotated ``Delete=false``."""
    return [o for o in live if tracking.is_owned(app, o) and not tracking.is_hook(o)
            and tracking.sync_options(o).get("Delete", "").lower() != "false"]


def deletion_batch(objs: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The objects to delete now: the highest sync wave left (reverse wave order), dependents
    before what they live in (reverse kind order)."""
    from gitferry.sync import kind_rank

    if not objs:
        return []
    top = max(tracking.sync_wave(o) for o in objs)
    batch = [o for o in objs if tracking.sync_wave(o) == top]
    return sorted(batch, key=lambda o: (-kind_rank(str(o.get("kind", ""))), tracking.resource_key(o)))


def _delete_resources(cluster: ClusterClient, app: str, propagation: str) -> list[str]:
    """Delete the highest wave still present; returns what is still there (empty: all gone)."""
    remaining = managed_objects(app, cluster.list_by_label(tracking.label_selector(app)))
    batch = deletion_batch(remaining)
    for obj in batch:
        if not (obj.get("metadata") or {}).get("deletionTimestamp"):
            cluster.delete(obj, propagation=propagation)
    return [_ident(o) for o in batch]


def _hooks(engine: Engine, doc: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """PreDelete / PostDelete hooks of the manifests last synced (none when nothing was)."""
    from gitferry.errors import NotFoundError

    key = str(doc.get("manifests") or "")
    if not key:
        return {}
    try:
        manifests = engine.manifests.get_manifests(key)
    except NotFoundError:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in manifests:
        for hook in tracking.hook_types(obj):
            if hook in ("PreDelete", "PostDelete"):
                out.setdefault(hook, []).append(dict(obj))
    return out


def hook_object(app: str, obj: Mapping[str, Any], namespace: str | None, namespaced: bool) -> dict[str, Any]:
    """The hook as created: destination namespace defaulted, and a ``generateName`` turned into a
    name fixed for this app, so a later invocation finds the same hook again."""
    out = dict(obj)  # hooks are not app resources: not stamped
    meta = dict(out.get("metadata") or {})
    if not meta.get("name") and meta.get("generateName"):
        suffix = hashlib.sha256(f"{app}:{meta['generateName']}".encode()).hexdigest()[:5]
        meta["name"] = f"{meta.pop('generateName')}{suffix}"
    if namespaced and not meta.get("namespace") and namespace:
        meta["namespace"] = namespace
    if not namespaced:
        meta.pop("namespace", None)
    out["metadata"] = meta
    return out


def _run_hooks(cluster: ClusterClient, app: str, hooks: list[dict[str, Any]],
               namespace: str | None, done: list[str]) -> tuple[list[str], str]:
    """Create each hook not created yet, and check them: (still running, failure message).
    A hook that succeeded is deleted (HookSucceeded, Argo CD's default for deletion hooks unless
    the policy says otherwise); a failed one stops the deletion, and is deleted if HookFailed.
    ``done`` (stored with the deletion) names the hooks that succeeded, so none runs twice."""
    waiting: list[str] = []
    for raw in hooks:
        namespaced = cluster.is_namespaced(str(raw.get("apiVersion")), str(raw.get("kind")))
        obj = hook_object(app, raw, namespace, namespaced)
        meta = obj["metadata"]
        live = cluster.get(str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"]), meta.get("namespace"))
        if _ident(obj) in done:
            continue  # succeeded (and deleted) earlier
        if live is None:
            cluster.server_side_apply(obj)
            waiting.append(_ident(obj))
            continue
        state = _health.resource_health(live)
        policies = str((meta.get("annotations") or {}).get(tracking.HOOK_DELETE_POLICY_ANNOTATION) or "")
        if state.status == _health.DEGRADED:
            if "HookFailed" in policies:
                cluster.delete(live, propagation="Background")
            return waiting, f"{_hook_type(obj)} hook {_ident(obj)} failed: {state.message or 'Degraded'}"
        if state.status == _health.HEALTHY:
            if not policies or "HookSucceeded" in policies or "BeforeHookCreation" in policies:
                cluster.delete(live, propagation="Background")
            done.append(_ident(obj))
            continue
        waiting.append(_ident(obj))
    return waiting, ""


def _hook_type(obj: Mapping[str, Any]) -> str:
    return ",".join(tracking.hook_types(obj))


def _ident(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}" if not meta.get("namespace") else \
        f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}"


# ---------------------------------------------------------------------- state


def _exists(engine: Engine, app: str) -> bool:
    from gitferry.errors import NotFoundError

    try:
        engine.state.get_app(app)
    except NotFoundError:
        return False
    return True


def _forget(engine: Engine, app: str, initiated_by: str) -> None:
    from gitferry.audit import AuditLog
    from gitferry.pipeline import tree_key

    engine.state.delete_app(app)
    engine.manifests.delete(tree_key(app))
    AuditLog(engine.state).record(initiated_by, "app.deleted", app, cascade=True)


def _record_error(engine: Engine, app: str, doc: dict[str, Any], stage: str, message: str) -> None:
    """A DeletionError condition, and a later look (the poll re-sends the deletion)."""
    from gitferry.model import AppStatus, Condition

    now = engine.clock()
    doc.update(stage=stage, message=message[:1000],
               nextCheckAt=_iso(now + timedelta(seconds=max(5, 3 * engine.settings.rollout_check_seconds))))
    try:
        engine.state.mark_deleting(app, doc, first=False)
    except Exception:  # noqa: BLE001 - gone meanwhile: nothing to show it on
        return
    status = (engine.state.get_status(app) or AppStatus()).model_copy(deep=True)
    status.conditions = [c for c in status.conditions if c.type != "DeletionError"]
    status.conditions.append(Condition(type="DeletionError", message=message[:2000], last_transition_time=now))
    engine.state.put_status(app, status)


def _clear_error(engine: Engine, app: str) -> None:
    status = engine.state.get_status(app)
    if status is not None and any(c.type == "DeletionError" for c in status.conditions):
        status.conditions = [c for c in status.conditions if c.type != "DeletionError"]
        engine.state.put_status(app, status)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


__all__ = ["FINALIZER", "FINALIZERS", "deletion_batch", "due_resumes", "hook_object", "managed_objects",
           "propagation_for", "run", "start"]
