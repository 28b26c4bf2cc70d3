"""The audit trail: who asked gitferry to do what, and when.

One item per event in the state table under ``AUDIT#<day>`` (UTC), sorted by time, so a
day's trail is one Query and old days can expire with the table's TTL attribute. An event about
an application (actions ``app.*`` and ``operation.*``) is also written under the app's own key
(``APP#<name>`` / ``EVENT#<iso time>#<id>``, same TTL), so the app's events are one Query of its
partition, newest first (``GET /api/v1/applications/{name}/events``), whatever the days they
span; they go with the app's other items when it is deleted. Events never carry secrets:
callers pass identities and names, not request bodies.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gitferry.state import StateStore

DEFAULT_PAGE = 500
MAX_PAGE = 1000
RETENTION_DAYS = 400  # an audit year plus a margin; `ttl` is the state table TTL attribute
#: action prefixes whose target is an application (also written under the app's key)
APP_ACTIONS = frozenset({"app", "operation"})
EVENT_PREFIX = "EVENT#"
_EVENT_SK = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.+-]+#[0-9a-f]{8}$")


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
        sk = f"{at.isoformat()}#{uuid.uuid4().hex[:8]}"
        body = {"event": {"S": event.model_dump_json()},
                "ttl": {"N": str(int((at + timedelta(days=RETENTION_DAYS)).timestamp()))}}
        self.state.client.put_item(TableName=self.state.table_name,
                                   Item={"pk": {"S": f"AUDIT#{at:%Y-%m-%d}"}, "sk": {"S": sk}, **body})
        if action.split(".", 1)[0] in APP_ACTIONS:
            self.state.client.put_item(TableName=self.state.table_name,
                                       Item={"pk": {"S": f"APP#{target}"}, "sk": {"S": EVENT_PREFIX + sk}, **body})
        return event

    def app_events(self, app: str, limit: int = DEFAULT_PAGE,
                   cursor: str | None = None) -> tuple[list[AuditEvent], str | None]:
        """One page of an application's events, newest first, and the next page's cursor (None on
        the last). ValueError for a bad limit or cursor."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        pk = {"S": f"APP#{app}"}
        kwargs: dict[str, Any] = {
            "TableName": self.state.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": pk, ":p": {"S": EVENT_PREFIX}},
            "ScanIndexForward": False,
        }
        if cursor:
            sk = _decode_cursor(cursor, "")
            if not _EVENT_SK.match(sk):
                raise ValueError("cursor is not one this API returned")
            kwargs["ExclusiveStartKey"] = {"pk": pk, "sk": {"S": EVENT_PREFIX + sk}}
        return self._page(kwargs, limit, strip=EVENT_PREFIX)

    def day(self, day: str, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> tuple[list[AuditEvent], str | None]:
        """One page of the events of a UTC day (``YYYY-MM-DD``), newest first, and the cursor
        of the next page (None on the last). ValueError for a bad day, limit or cursor."""
        datetime.strptime(day, "%Y-%m-%d")  # ValueError for anything else
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        kwargs: dict[str, Any] = {
            "TableName": self.state.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"AUDIT#{day}"}},
            "ScanIndexForward": False,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = {"pk": {"S": f"AUDIT#{day}"}, "sk": {"S": _decode_cursor(cursor, day)}}
        return self._page(kwargs, limit)

    def _page(self, kwargs: dict[str, Any], limit: int, strip: str = "") -> tuple[list[AuditEvent], str | None]:
        items: list[dict[str, Any]] = []
        # One more than asked: whether a next page exists is known without an empty last page.
        while len(items) <= limit:
            page = self.state.client.query(**kwargs, Limit=limit + 1 - len(items))
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        next_cursor = _encode_cursor(items[limit - 1]["sk"]["S"].removeprefix(strip)) if len(items) > limit else None
        events = [AuditEvent.model_validate(json.loads(it["event"]["S"])) for it in items[:limit]]
        return events, next_cursor


def _encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, day: str) -> str:
    try:
        sk = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cursor is not one this API returned") from None
    if not sk.startswith(day) or len(sk) > 100:
        raise ValueError("cursor is not one this API returned for this date")
    return sk
