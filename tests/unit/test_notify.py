"""What gets announced from one report message."""

from __future__ import annotations

from gitferry.messages import ReportRequest
from gitferry.notify import notifications_for


def triggers(**kw: object) -> list[str]:
    return [n.trigger for n in notifications_for(ReportRequest(app="web", **kw))]


def test_sync_outcomes_are_announced_on_operation_events_only() -> None:
    assert triggers(event="operation", operationPhase="Failed", operationMessage="boom") == ["on-sync-failed"]
    assert triggers(event="operation", operationPhase="Error") == ["on-sync-failed"]
    assert triggers(event="operation", operationPhase="Succeeded") == ["on-sync-succeeded"]
    assert triggers(event="status", operationPhase="Failed") == []


def test_degraded_is_announced_once_per_transition() -> None:
    assert triggers(event="status", health="Degraded", previousHealth="Progressing") == ["on-health-degraded"]
    assert triggers(event="status", health="Degraded", previousHealth="Degraded") == []
    assert triggers(event="status", health="Degraded") == []  # unknown before: no transition known
    assert triggers(event="status", health="Healthy", previousHealth="Degraded") == []


def test_failed_sync_carries_the_operation_message() -> None:
    (n,) = notifications_for(ReportRequest(app="web", event="operation", operationPhase="Failed",
                                           operationMessage="ConfigMap x is invalid"))
    assert n.body["message"] == "ConfigMap x is invalid" and n.app == "web"
