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

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

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
        manifests = _manifests(engine, doc)
        deadline = time.monotonic() + wait_seconds
        stage = str(doc.get("stage") or STAGES[0])
        while True:
            if stage == "Resources":
                waiting, failed = _delete_resources(cluster, app.name, str(doc.get("propagation") or "Foreground")), ""
            else:
                waiting, failed = _run_hooks(cluster, app.name, manifests, stage, app.spec.destination.namespace, doc)
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
    from gitferry.sync import delete_allowed

    return [o for o in live if tracking.is_owned(app, o) and not tracking.is_hook(o) and delete_allowed(o)]


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


def _manifests(engine: Engine, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifests last synced, whose PreDelete / PostDelete hooks run (none when nothing was)."""
    from gitferry.errors import NotFoundError

    key = str(doc.get("manifests") or "")
    if not key:
        return []
    try:
        return engine.manifests.get_manifests(key)
    except NotFoundError:
        return []


def _run_hooks(cluster: ClusterClient, app: str, manifests: list[dict[str, Any]], phase: str,
               namespace: str | None, doc: dict[str, Any]) -> tuple[list[str], str]:
    """One look at the ``phase`` hooks, run by the sync engine exactly as a sync's hooks
    (:func:`gitferry.sync.run_delete_hooks`: waves, ``generateName``, delete policies): (still
    running, failure message). Where it stopped (``hookResume``) and its results so far
    (``hookResults``, with the generated names) are kept in the deletion record ``doc``, so the
    next look, in this invocation or a later one, awaits the same objects and runs none twice."""
    from gitferry import sync as syncing

    resume = doc.get("hookResume")
    earlier = [syncing.ResourceResult(**r) for r in doc.get("hookResults") or []]
    result = syncing.run_delete_hooks(cluster, app, manifests, phase, namespace=namespace,
                                      resume_from=tuple(resume) if resume else None, earlier=earlier)
    if result.phase == "Running" and result.resume_from is not None:
        doc["hookResume"] = list(result.resume_from)
        doc["hookResults"] = [asdict(r) for r in result.resources]
        return [r.name for r in result.resources if r.hook and r.hook_phase == "Running"] or [phase], ""
    doc.pop("hookResume", None)
    doc.pop("hookResults", None)
    return [], f"{phase} hooks failed: {result.message}" if result.phase != "Succeeded" else ""


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


__all__ = ["FINALIZER", "FINALIZERS", "deletion_batch", "due_resumes", "managed_objects",
           "propagation_for", "run", "start"]
