"""The audit trail: who asked gitferry to do what, and when.

One item per event in the state table under ``AUDIT#<day>`` (UTC), sorted by time, so a
day's trail is one Query and old days can expire with the table's TTL attribute. Events
never carry secrets: callers pass identities and names, not request bodies.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gitferry.state import StateStore

RETENTION_DAYS = 400  # an audit year plus a margin; `ttl` is the state table TTL attribute


class AuditEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    at: datetime
    actor: str  # "api:<identity>", "webhook:github:<delivery>", "automated"
    action: str  # app.create, app.update, app.delete, app.sync, app.refresh, app.rollback, cluster.register ...
    target: str  # what it acted on: an app, cluster or repository name
    details: dict[str, Any] = Field(default_factory=dict)


class AuditLog:
    """Append and read audit events through the state table's client."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    def record(self, actor: str, action: str, target: str, now: datetime | None = None, **details: Any) -> AuditEvent:
        at = now or datetime.now(UTC)
        event = AuditEvent(at=at, actor=actor, action=action, target=target, details=details)
        self.state.client.put_item(
            TableName=self.state.table_name,
            Item={
                "pk": {"S": f"AUDIT#{at:%Y-%m-%d}"},
                "sk": {"S": f"{at.isoformat()}#{uuid.uuid4().hex[:8]}"},
                "event": {"S": event.model_dump_json()},
                "ttl": {"N": str(int((at + timedelta(days=RETENTION_DAYS)).timestamp()))},
            },
        )
        return event

    def day(self, day: str, limit: int = 500) -> list[AuditEvent]:
        """Events of one UTC day (``YYYY-MM-DD``), newest first."""
        datetime.strptime(day, "%Y-%m-%d")  # ValueError for anything else
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.state.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"AUDIT#{day}"}},
            "ScanIndexForward": False,
        }
        while len(items) < limit:
            page = self.state.client.query(**kwargs, Limit=min(limit - len(items), 1000))
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [AuditEvent.model_validate(json.loads(it["event"]["S"])) for it in items]
