"""local/motosqs.py: moto's SQS with queue attributes computed when read. Through a real
(in-process) moto server: the counts stay exact, FIFO dedup and group order hold, the mapping
equals moto's own attributes for every kind of queue, and a send to a deep FIFO queue no
longer walks the queue's messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local import motosqs
from local.aws import ACCOUNT_ID, REGION, MotoServer, client


@pytest.fixture(scope="module")
def sqs() -> Iterator[Any]:
    with MotoServer() as moto:
        yield client("sqs", moto.endpoint)


def _counts(sqs: Any, url: str) -> dict[str, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {n.removeprefix("ApproximateNumberOfMessages") or "visible": int(got[n]) for n in names}


def _batch(sqs: Any, url: str, items: list[tuple[str, str, str]]) -> None:
    for i in range(0, len(items), 10):
        resp = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": f"e{n}", "MessageBody": body, "MessageGroupId": group, "MessageDeduplicationId": dedup}
            for n, (body, group, dedup) in enumerate(items[i:i + 10])])
        assert not resp.get("Failed"), resp


def _queue_model(url: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[ACCOUNT_ID][REGION].queues[url.rsplit("/", 1)[1]]


def test_counts_dedup_and_group_order_on_a_fifo_queue(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="motosqs-order.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    items = [(f"{group}-{n}", group, f"{group}-{n}") for n in range(30) for group in ("a", "b")]
    _batch(sqs, url, items)
    assert _counts(sqs, url) == {"visible": 60, "NotVisible": 0, "Delayed": 0}
    _batch(sqs, url, items[:20])  # the same deduplication ids again: dropped, as SQS does in 5 minutes
    assert _counts(sqs, url) == {"visible": 60, "NotVisible": 0, "Delayed": 0}

    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
    assert _counts(sqs, url) == {"visible": 50, "NotVisible": 10, "Delayed": 0}
    for m in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert _counts(sqs, url) == {"visible": 50, "NotVisible": 0, "Delayed": 0}

    seen: dict[str, list[int]] = {"a": [], "b": []}
    for m in got:
        group, n = m["Body"].split("-")
        seen[group].append(int(n))
    while True:
        more = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not more:
            break
        for m in more:
            group, n = m["Body"].split("-")
            seen[group].append(int(n))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert seen == {"a": list(range(30)), "b": list(range(30))}  # each group in the order it was sent
    assert _counts(sqs, url) == {"visible": 0, "NotVisible": 0, "Delayed": 0}


def test_delayed_messages_are_counted_apart(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="motosqs-delayed")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    sqs.send_message(QueueUrl=url, MessageBody="now")
    assert _counts(sqs, url) == {"visible": 1, "NotVisible": 0, "Delayed": 1}


def test_the_mapping_is_mosts_own_attributes_for_every_kind_of_queue(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="motosqs-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    urls = [
        dlq,
        sqs.create_queue(QueueName="motosqs-plain")["QueueUrl"],
        sqs.create_queue(QueueName="motosqs-redrive.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "90",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})})["QueueUrl"],
        sqs.create_queue(QueueName="motosqs-kms", Attributes={
            "KmsMasterKeyId": "alias/aws/sqs", "Policy": json.dumps({"Version": "2012-10-17", "Statement": []})})["QueueUrl"],
    ]
    sqs.send_message(QueueUrl=urls[2], MessageBody="x", MessageGroupId="g")
    sqs.send_message(QueueUrl=urls[1], MessageBody="y", DelaySeconds=300)
    assert motosqs.original_attributes is not None
    for url in urls:
        queue = _queue_model(url)
        mapping = queue.attributes
        assert isinstance(mapping, motosqs.QueueAttributes)
        assert dict(mapping) == motosqs.original_attributes(queue), url
        everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert everything == {k: str(v) for k, v in motosqs.original_attributes(queue).items() if v is not None}
    # creating an existing queue again compares its attributes: same ones pass, others refuse
    assert sqs.create_queue(QueueName="motosqs-redrive.fifo", Attributes={"VisibilityTimeout": "90",
                                                                          "FifoQueue": "true"})["QueueUrl"] == urls[2]
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName="motosqs-redrive.fifo", Attributes={"VisibilityTimeout": "91", "FifoQueue": "true"})


def test_a_send_to_a_deep_fifo_queue_does_not_walk_its_messages(sqs: Any) -> None:
    """moto counted every message (its visibility and delay) several times per message sent."""
    from moto.sqs.models import Message

    url = sqs.create_queue(QueueName="motosqs-deep.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    _batch(sqs, url, [(f"m{n}", f"g{n % 7}", f"d{n}") for n in range(500)])
    reads = {"visible": 0, "delayed": 0}
    originals = {name: getattr(Message, name) for name in reads}

    def counted(name: str) -> property:
        def read(message: Any) -> bool:
            reads[name] += 1
            return bool(originals[name].fget(message))
        return property(read)

    try:
        for name in reads:
            setattr(Message, name, counted(name))
        _batch(sqs, url, [(f"n{n}", "g0", f"e{n}") for n in range(10)])
    finally:
        for name, prop in originals.items():
            setattr(Message, name, prop)
    assert reads == {"visible": 0, "delayed": 0}
    assert _counts(sqs, url)["visible"] == 510
