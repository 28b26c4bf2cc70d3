"""Application event notifications (what Argo CD Notifications' default triggers send).

``notifications_for`` is pure: it decides from one report message what to announce.
``Notifier`` publishes to the SNS topic with message attributes ``trigger`` and ``app``
so subscribers (email, Slack via Chatbot, a Lambda) filter with SNS filter policies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import boto3

from gitferry.messages import ReportRequest


@dataclass(frozen=True)
class Notification:
    trigger: str  # on-sync-succeeded | on-sync-failed | on-health-degraded
    app: str
    subject: str
    body: dict[str, Any]


def notifications_for(request: ReportRequest) -> list[Notification]:
    """Sync outcomes on operation events; a health change to Degraded on any event (once per
    transition: the previous health travels in the message)."""
    out: list[Notification] = []
    base = {"app": request.app, "syncStatus": request.sync_status, "health": request.health,
            "initiatedBy": request.initiated_by, "reason": request.reason}
    if request.event == "operation" and request.operation_phase in ("Failed", "Error"):
        out.append(Notification("on-sync-failed", request.app, f"gitferry: sync of {request.app} failed",
                                {**base, "operationPhase": request.operation_phase,
                                 "message": request.operation_message}))
    elif request.event == "operation" and request.operation_phase == "Succeeded":
        out.append(Notification("on-sync-succeeded", request.app, f"gitferry: {request.app} synced",
                                {**base, "operationPhase": request.operation_phase}))
    if request.health == "Degraded" and request.previous_health not in (None, "Degraded"):
        out.append(Notification("on-health-degraded", request.app, f"gitferry: {request.app} is Degraded",
                                {**base, "previousHealth": request.previous_health,
                                 "message": request.health_message}))
    return out


class Notifier:
    """SNS adapter; the topic comes from ``NOTIFICATION_TOPIC_ARN`` (template.yaml)."""

    def __init__(self, topic_arn: str | None = None, client: Any = None) -> None:
        self.topic_arn = topic_arn or os.environ.get("NOTIFICATION_TOPIC_ARN", "")
        self._client = client

    def publish(self, notification: Notification) -> None:
        if not self.topic_arn:
            return  # not configured: notifications are optional
        if self._client is None:
            self._client = boto3.client("sns")
        self._client.publish(
            TopicArn=self.topic_arn,
            Subject=notification.subject[:100],
            Message=json.dumps(notification.body, default=str),
            MessageAttributes={
                "trigger": {"DataType": "String", "StringValue": notification.trigger},
                "app": {"DataType": "String", "StringValue": notification.app},
            },
        )
