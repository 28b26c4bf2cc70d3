"""When an operation looks again: its pending follow-up and the pure timing rules.

A Running operation always has exactly one owner of its next step: while an apply invocation
runs it, the operation lease; between invocations, the follow-up record stored here (item
``FOLLOWUP`` under the app's key). Only the apply stage writes the record (when an operation
pauses at a wave boundary or waits for a retry backoff) and only apply removes it (when the
operation ends or a new one starts). The diff, the poll and the API never write it, so nothing
they do (the diff's refresh schedule ``nextCheckAt`` included) can erase an operation's next
step. The record holds the ApplyRequest to send, when, and a token; the message carrying it
goes through the standard FollowUpQueue with a delay, and the poll re-sends it from the record
when it is overdue (a lost message), so the record is the truth and the message a delivery.

The timing rules (health re-checks after a sync, self-heal backoff) are pure functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gitferry.messages import ApplyRequest
from gitferry.model import OperationState

FOLLOWUP_SK = "FOLLOWUP"
# Kinds of operation follow-up, shown in logs and the record.
WAVE, RETRY = "wave", "retry"


@dataclass(frozen=True)
class FollowUp:
    """An operation's pending next step: send ``request`` to ApplyQueue at ``due_at``."""

    op_id: str
    token: str
    kind: str
    due_at: float
    request: ApplyRequest


class FollowUpStore:
    """The follow-up record of each app, in the state table next to its status and lease."""

    def __init__(self, state: Any) -> None:
        self._state = state  # the StateStore: same table, same (lazily built) client

    @property
    def table_name(self) -> str:
        return str(self._state.table_name)

    @property
    def client(self) -> Any:
        return self._state.client

    def _key(self, app: str) -> dict[str, Any]:
        return {"pk": {"S": f"APP#{app}"}, "sk": {"S": FOLLOWUP_SK}}

    def put(self, app: str, follow_up: FollowUp) -> None:
        self.client.put_item(TableName=self.table_name, Item={
            **self._key(app),
            "opId": {"S": follow_up.op_id}, "token": {"S": follow_up.token}, "kind": {"S": follow_up.kind},
            "dueAt": {"N": repr(follow_up.due_at)},
            "request": {"S": follow_up.request.model_dump_json(by_alias=True)},
        })

    def get(self, app: str) -> FollowUp | None:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(app), ConsistentRead=True).get("Item")
        if not item:
            return None
        return FollowUp(op_id=item["opId"]["S"], token=item["token"]["S"], kind=item["kind"]["S"],
                        due_at=float(item["dueAt"]["N"]),
                        request=ApplyRequest.model_validate(json.loads(item["request"]["S"])))

    def clear(self, app: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=self._key(app))


# ---------------------------------------------------------------------- pure timing rules

# Health after a sync: re-checked HEALTH_FAST_CHECKS times every 2 s, then every 5 s, at most
# HEALTH_MAX_CHECKS times (about five minutes); after that the regular refresh schedule
# (nextCheckAt while Progressing, the drift check) goes on looking.
HEALTH_FAST_CHECKS = 5
HEALTH_MAX_CHECKS = 60


def health_check_delay(check: int) -> float | None:
    """Seconds before health re-check ``check + 1`` after a sync, or None when the bound is hit."""
    if check >= HEALTH_MAX_CHECKS:
        return None
    return 2.0 if check < HEALTH_FAST_CHECKS else 5.0


def self_heal_attempts(operation: OperationState | None) -> int:
    """Consecutive self-heal syncs recorded on the operation (Argo CD's selfHealAttemptsCount)."""
    doc = ((operation.operation if operation else None) or {}).get("sync") or {}
    try:
        return int(doc.get("selfHealAttemptsCount") or 0)
    except (TypeError, ValueError):
        return 0


def self_heal_backoff(attempts: int, base: float, factor: float, cap: float) -> float:
    """Seconds that must pass after self-heal number ``attempts`` before the next one."""
    if attempts <= 0:
        return 0.0
    return float(min(base * factor ** (attempts - 1), cap))


def self_heal_wait(operation: OperationState | None, now: datetime, base: float, factor: float,
                   cap: float) -> float:
    """Seconds still to wait before the next self-heal sync (0: may run now). A controller that
    keeps reverting the app makes each self-heal wait longer (5 s, 10 s, ... up to ``cap``)."""
    attempts = self_heal_attempts(operation)
    if attempts <= 0 or operation is None or operation.finished_at is None:
        return 0.0
    elapsed = (now - operation.finished_at).total_seconds()
    return max(0.0, self_heal_backoff(attempts, base, factor, cap) - elapsed)


def is_self_heal(previous: OperationState | None, reason: str, commit: str) -> bool:
    """An automated re-sync of drift at the commit the last operation already synced."""
    return (reason == "drift-check" and previous is not None and previous.sync_result is not None
            and previous.sync_result.revision == commit)


def next_self_heal_count(previous: OperationState | None, reason: str, commit: str, now: datetime,
                         cap: float) -> int:
    """The selfHealAttemptsCount of a new operation: one more than the last one's when this is a
    self-heal following a recent self-heal (within twice the cap), 1 for a self-heal after a
    quiet period, 0 for any other sync."""
    if not is_self_heal(previous, reason, commit):
        return 0
    last = self_heal_attempts(previous)
    if last and previous is not None and previous.finished_at is not None \
            and (now - previous.finished_at).total_seconds() <= 2 * cap:
        return last + 1
    return 1


__all__ = ["FollowUp", "FollowUpStore", "health_check_delay", "is_self_heal", "next_self_heal_count", "self_heal_backoff",
           "self_heal_wait"]
