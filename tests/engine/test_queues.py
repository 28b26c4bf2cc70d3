"""Queues.send_many against a real moto SQS server: batches of ten sent concurrently, each
app's FIFO order kept, a failed call raised after the calls sent alongside it returned."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from gitferry.messages import RenderRequest, ReportRequest
from gitferry.queues import Queues

from tests.engine.conftest import aws_client


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return aws_client("sqs", moto_endpoint)


def _fifo(sqs: Any) -> str:
    return sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message, in the order SQS hands them out (a FIFO group's next one only after its
    previous one was deleted)."""
    out: list[dict[str, Any]] = []
    for _ in range(200):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") or []
        if not got:
            return out
        out += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    raise AssertionError("queue never drained")


def _render(app: str, reason: str = "poll", commit: str = "c" * 40) -> RenderRequest:
    return RenderRequest(app=app, commit=commit, reason=reason, initiatedBy="poll", startedAt=1.0)


def test_send_many_sends_every_message_in_batches_and_keeps_each_apps_order(sqs: Any) -> None:
    render, report = _fifo(sqs), _fifo(sqs)
    calls: list[int] = []
    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch",
                             lambda params, **_: calls.append(len(params["Entries"])))
    messages: list[tuple[Any, str]] = [(_render(f"app-{i:02d}"), f"d{i}") for i in range(25)]
    messages[3:3] = [(_render("app-07", "refresh"), "x1")]  # app-07: refresh, then poll, then sync
    messages.append((_render("app-07", "sync"), "x2"))
    messages.append((ReportRequest(app="_fleet", event="fleet", apps=25, startedAt=1.0), "fleet"))
    Queues({RenderRequest: render, ReportRequest: report}, client=sqs).send_many(messages, workers=4)

    got = _drain(sqs, render)
    assert sorted(m["app"] for m in got) == sorted([f"app-{i:02d}" for i in range(25)] + ["app-07"] * 2)
    assert [m["reason"] for m in got if m["app"] == "app-07"] == ["refresh", "poll", "sync"]
    assert [m["event"] for m in _drain(sqs, report)] == ["fleet"]
    # 25 first messages in 3 calls + the fleet summary, then app-07's second and third, one call each
    assert sorted(calls) == [1, 1, 1, 5, 10, 10]


def test_a_refused_call_raises_after_the_others_went_out(sqs: Any) -> None:
    render = _fifo(sqs)
    big = "f" * 200_000  # ten of these are over SQS's 256 KiB per SendMessageBatch call
    messages: list[tuple[Any, str]] = [(_render(f"big-{i}", commit=big), f"b{i}") for i in range(10)]
    messages += [(_render(f"app-{i:02d}"), f"d{i}") for i in range(20)]
    with pytest.raises(ClientError, match="BatchRequestTooLong|too long|Batch requests cannot be longer"):
        Queues({RenderRequest: render}, client=sqs).send_many(messages, workers=3)
    assert sorted(m["app"] for m in _drain(sqs, render)) == [f"app-{i:02d}" for i in range(20)]
