"""Terminating a running operation (``argocd app terminate-op``).

``DELETE /api/v1/applications/{name}/operation`` writes a termination mark on the app's STATUS
item (attribute ``terminate``: the operation's id, who asked, when), in one conditional write
that succeeds only while the operation is Running. The mark is a separate attribute, so the
apply stage's status writes (which SET ``statusDoc``) never erase it. Then:

* no apply invocation runs the operation (it waits between invocations for a wave, a hook or a
  retry backoff): the API takes the operation lease itself, ends the operation as Failed
  "terminated by <actor>", removes its follow-up record (its delayed message then finds no
  pending follow-up and does nothing) and gives the lease back (200);
* an apply holds the lease: the mark is read by that invocation before each wave and at each
  wave boundary it waits at, and by any later follow-up before it runs; it stops there
  (nothing more is written to the cluster, no SyncFail hooks, no retry), records Failed
  "terminated by <actor>" and gives the lease back as always (202, the phase shows Terminating
  until then).

Hooks already running are left as they are (Argo CD deletes them). The mark names its operation:
a mark left over from an operation that ended anyway never stops the next one, and the apply
stage removes it when the operation ends.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from gitferry.errors import ConflictError
from gitferry.model import AppStatus
from gitferry.state import StateStore, app_pk

__all__ = ["clear", "operation_id", "reason", "request", "requested_by", "terminate"]

_ATTR = "terminate"
#: how long the API holds the lease while it ends a waiting operation
_LEASE_SECONDS = 60


def operation_id(status: AppStatus | None) -> str | None:
    op = status.operation_state if status else None
    return str(((op.operation or {}).get("sync") or {}).get("operationId") or "") or None if op else None


def reason(actor: str) -> str:
    return f"terminated by {actor}"


def _key(app: str) -> dict[str, Any]:
    return {"pk": {"S": app_pk(app)}, "sk": {"S": "STATUS"}}


def request(state: StateStore, app: str, op_id: str, actor: str, now: datetime) -> None:
    """Write the mark; ConflictError when the app has no Running operation any more."""
    mark = json.dumps({"opId": op_id, "actor": actor, "at": now.isoformat()}, separators=(",", ":"))
    try:
        state.client.update_item(
            TableName=state.table_name, Key=_key(app), UpdateExpression="SET #m = :m",
            ConditionExpression="opPhase = :running", ExpressionAttributeNames={"#m": _ATTR},
            ExpressionAttributeValues={":m": {"S": mark}, ":running": {"S": "Running"}})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise ConflictError(f"application {app!r} has no operation running") from None
        raise


def requested_by(state: StateStore, app: str, op_id: str | None) -> str | None:
    """Who asked to terminate operation ``op_id`` (None: nobody, or a mark of another operation)."""
    if not op_id:
        return None
    item = state.client.get_item(TableName=state.table_name, Key=_key(app), ConsistentRead=True,
                                 ProjectionExpression="#m", ExpressionAttributeNames={"#m": _ATTR}).get("Item") or {}
    if _ATTR not in item:
        return None
    mark = json.loads(item[_ATTR]["S"])
    return str(mark.get("actor") or "unknown") if mark.get("opId") == op_id else None


def clear(state: StateStore, app: str) -> None:
    state.client.update_item(TableName=state.table_name, Key=_key(app), UpdateExpression="REMOVE #m",
                             ExpressionAttributeNames={"#m": _ATTR})


def terminate(engine: Any, app: str, actor: str) -> dict[str, Any]:
    """The API side: mark the Running operation of ``app`` and, when no apply runs it, end it now.
    ConflictError (409) when nothing runs; NotFoundError (404) for an unknown app."""
    from gitferry import followups
    from gitferry.audit import AuditLog
    from gitferry.model import Condition

    state: StateStore = engine.state
    state.get_app(app)  # 404
    status = state.get_status(app)
    op = status.operation_state if status else None
    op_id = operation_id(status)
    if op is None or op.phase != "Running" or not op_id:
        raise ConflictError(f"application {app!r} has no operation running")
    now = engine.clock()
    request(state, app, op_id, actor, now)
    AuditLog(state).record(actor, "app.terminate-op", app, now=now, operation=op_id)
    holder = f"terminate:{uuid.uuid4().hex}"
    if not state.acquire_operation(app, holder, _LEASE_SECONDS):
        # An apply invocation runs it: it stops at its next wave boundary.
        return {"app": app, "operation": op_id, "phase": "Terminating", "message": reason(actor)}
    try:
        status = state.get_status(app)
        op = status.operation_state if status else None
        if status is None or op is None or op.phase != "Running" or operation_id(status) != op_id:
            clear(state, app)  # it ended meanwhile
            return {"app": app, "operation": op_id, "phase": op.phase if op else "", "message": op.message if op else ""}
        finished = engine.clock()  # after the request's own audit entry
        if finished <= now:
            finished = now + timedelta(microseconds=1)
        op.phase, op.finished_at, op.message = "Failed", finished, reason(actor)
        doc = dict(op.operation or {})
        sync_doc = {k: v for k, v in (doc.get("sync") or {}).items() if k not in ("resumeFrom", "retryAt")}
        op.operation = {**doc, "sync": sync_doc}
        status.conditions = [c for c in status.conditions if c.type != "SyncError"]
        status.conditions.append(Condition(type="SyncError", message=op.message, last_transition_time=finished))
        followups.FollowUpStore(state).clear(app)  # its delayed message now finds nothing pending
        state.put_status(app, status)
        clear(state, app)
        revision = op.sync_result.revision if op.sync_result else None
        AuditLog(state).record(actor, "operation.failed", app, now=finished, revision=revision,
                               reason="terminate", message=op.message)
        return {"app": app, "operation": op_id, "phase": "Failed", "message": op.message}
    finally:
        state.release_operation(app, holder)
