"""moto's SQS, made to send to a deep queue in constant time, as SQS does.

moto 5.2 builds a queue's whole attribute dictionary, ``ApproximateNumberOfMessages``,
``...NotVisible`` and ``...Delayed`` included, each time it needs ONE attribute: a FIFO send
asks for ``ContentBasedDeduplication`` up to six times per message (validation, twice per
batch entry; the send; the enqueue), and each of those counts walks every message in the
queue. A ``SendMessageBatch`` of 10 to a FIFO queue holding 1,000 messages so costs about
1.5 s of moto's time, and the cost grows with the queue (the poll bench at 5,000 apps could
not queue them all). Real SQS does not slow down as a queue fills.

:func:`install` replaces ``Queue.attributes`` with a read-only mapping of the same keys whose
values are computed when read (once per mapping): the counts are still exact whenever they
are asked for (GetQueueAttributes, the create-queue comparison), and a send that reads
``ContentBasedDeduplication`` no longer counts messages. Nothing else moto does changes: the
dedup check, the group order, receive and delete are moto's own. Applied in this process's
moto, which the local stack runs in-process (``local.aws.MotoServer``), like ``local.motosts``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_installed = False
_lock = threading.Lock()
#: moto's own property, kept for tests that compare the two
original_attributes: Callable[[Any], dict[str, Any]] | None = None


class QueueAttributes(Mapping[str, Any]):
    """What moto's ``Queue.attributes`` returns (same keys, same values: booleans as "true" /
    "false", RedrivePolicy as JSON), each value computed on first read."""

    __slots__ = ("_keys", "_queue", "_values")

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        keys = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            keys += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            keys += queue.KMS_ATTRIBUTES
        self._keys = dict.fromkeys(keys)
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._values:
            self._values[key] = self._compute(key)
        return self._values[key]

    def _compute(self, key: str) -> Any:
        from moto.core.utils import camelcase_to_underscores

        value = getattr(self._queue, camelcase_to_underscores(key))
        if key == "RedrivePolicy" and value:
            value = json.dumps(value)
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"QueueAttributes({dict(self)!r})"


def install() -> None:
    """Patch moto's ``Queue.attributes`` (idempotent)."""
    global _installed, original_attributes
    with _lock:
        if _installed:
            return
        from moto.sqs.models import Queue

        original_attributes = Queue.attributes.fget
        Queue.attributes = property(QueueAttributes)  # type: ignore[assignment]
        _installed = True
