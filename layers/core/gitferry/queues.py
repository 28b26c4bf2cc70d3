"""Sending stage messages to the SQS queues named by the environment: the FIFO stage queues
(one group per app) and the standard FollowUpQueue (per-message delay, at most 900 s)."""

from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from pydantic import BaseModel

from gitferry.messages import ApplyRequest, DiffRequest, FollowUpRequest, RenderRequest, ReportRequest

_QUEUE_ENV = {
    RenderRequest: "RENDER_QUEUE_URL",
    DiffRequest: "DIFF_QUEUE_URL",
    ApplyRequest: "APPLY_QUEUE_URL",
    ReportRequest: "REPORT_QUEUE_URL",
    FollowUpRequest: "FOLLOWUP_QUEUE_URL",
}
#: SendMessageBatch calls of one send_many at once (below botocore's 10 pooled connections)
SEND_WORKERS = 8
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds (standard queues only)
#: SQS's limit for MessageGroupId (alphanumerics and punctuation, '.' included)
MAX_GROUP_ID = 128


def group_id(app: str) -> str:
    """FIFO group of an app: its name when it fits (an Application name is a DNS subdomain of
    up to 253 characters), else a prefix plus a hash of the whole name, so that two long names
    with the same prefix still get groups of their own."""
    if len(app) <= MAX_GROUP_ID:
        return app
    return f"{app[:MAX_GROUP_ID - 17]}-{hashlib.sha256(app.encode()).hexdigest()[:16]}"


class Queues:
    """One FIFO group per application keeps each app's events ordered and never
    processed twice at once by a stage. The deduplication id is given explicitly:
    content-based deduplication would drop a legitimate repeat (the same drift
    check twice within five minutes)."""

    def __init__(self, urls: dict[type[BaseModel], str] | None = None, client: Any = None) -> None:
        self._urls = urls
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

    def url_for(self, message: BaseModel) -> str:
        kind = type(message)
        if self._urls is not None:
            return self._urls[kind]
        return os.environ[_QUEUE_ENV[kind]]

    def send(self, message: RenderRequest | DiffRequest | ApplyRequest | ReportRequest, *, dedup: str) -> None:
        """Send ``message``; ``dedup`` names the logical event (SQS drops repeats within 5 min)."""
        self.client.send_message(QueueUrl=self.url_for(message), **_entry(message, dedup))

    def send_later(self, message: FollowUpRequest, *, now: float) -> int:
        """Put ``message`` on the standard FollowUpQueue, delivered at its ``dueAt`` (or after
        SQS's 900 s maximum, when the follow-up handler delays it again). Returns the delay."""
        delay = min(MAX_DELAY_SECONDS, max(0, math.ceil(message.due_at - now)))
        self.client.send_message(QueueUrl=self.url_for(message), MessageBody=message.model_dump_json(by_alias=True),
                                 DelaySeconds=delay)
        return delay

    def send_many(self, messages: list[tuple[RenderRequest | DiffRequest | ApplyRequest | ReportRequest, str]],
                  workers: int = SEND_WORKERS) -> None:
        """Send (message, dedup) pairs ten per SendMessageBatch call, up to ``workers`` calls at
        once: a poll tick that schedules a thousand drift checks makes a hundred calls, not a
        thousand, and does not wait for them one by one. An app's FIFO order holds: its second
        message to a queue goes out only after the call carrying its first one returned. Refused entries
        (or a failed call) raise once the calls sent alongside have returned."""
        rounds: list[list[tuple[str, list[dict[str, str]]]]] = []
        by_queue: dict[str, list[dict[str, str]]] = {}
        for message, dedup in messages:
            by_queue.setdefault(self.url_for(message), []).append(_entry(message, dedup))
        for url, entries in by_queue.items():
            layers: list[list[dict[str, str]]] = []
            seen: dict[str, int] = {}
            for entry in entries:
                depth = seen[entry["MessageGroupId"]] = seen.get(entry["MessageGroupId"], -1) + 1
                if depth == len(layers):
                    layers.append([])
                layers[depth].append(entry)
            for depth, layer in enumerate(layers):
                if depth == len(rounds):
                    rounds.append([])
                rounds[depth] += [(url, layer[start:start + 10]) for start in range(0, len(layer), 10)]
        failures: list[str] = []
        for calls in rounds:
            if workers <= 1 or len(calls) == 1:
                failures += [f for call in calls for f in self._send_batch(*call)]
                continue
            with ThreadPoolExecutor(max_workers=min(workers, len(calls)), thread_name_prefix="gitferry-send") as pool:
                futures = [pool.submit(self._send_batch, *call) for call in calls]
            errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                raise errors[0]  # type: ignore[misc]
            failures += [failure for f in futures for failure in f.result()]
        if failures:
            raise RuntimeError(f"SQS refused {len(failures)} message(s): {failures[0]}")

    def _send_batch(self, url: str, entries: list[dict[str, str]]) -> list[str]:
        """One SendMessageBatch call; the refused entries, described."""
        chunk = [{"Id": str(i), **e} for i, e in enumerate(entries)]
        failed = self.client.send_message_batch(QueueUrl=url, Entries=chunk).get("Failed") or []
        return [f"{url}: {f.get('Message')}" for f in failed]


def _entry(message: RenderRequest | DiffRequest | ApplyRequest | ReportRequest, dedup: str) -> dict[str, str]:
    app = message.app
    return {
        "MessageBody": message.model_dump_json(by_alias=True),
        "MessageGroupId": group_id(app),
        "MessageDeduplicationId": hashlib.sha256(f"{type(message).__name__}:{app}:{dedup}".encode()).hexdigest(),
    }
