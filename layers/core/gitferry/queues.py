"""Sending stage messages to the SQS FIFO queues named by the environment."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import boto3
from pydantic import BaseModel

from gitferry.messages import ApplyRequest, DiffRequest, RenderRequest, ReportRequest

_QUEUE_ENV = {
    RenderRequest: "RENDER_QUEUE_URL",
    DiffRequest: "DIFF_QUEUE_URL",
    ApplyRequest: "APPLY_QUEUE_URL",
    ReportRequest: "REPORT_QUEUE_URL",
}


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
        body = message.model_dump_json(by_alias=True)
        dedup_id = hashlib.sha256(f"{type(message).__name__}:{message.app}:{dedup}".encode()).hexdigest()
        self.client.send_message(
            QueueUrl=self.url_for(message),
            MessageBody=body,
            MessageGroupId=message.app,
            MessageDeduplicationId=dedup_id,
        )
