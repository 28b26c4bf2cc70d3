"""The Lambda plumbing shared by the SQS-driven stages (render, diff, apply, followup).

A failed record of a FIFO queue fails only the rest of its application's group
(``skip_group_on_error``): one app's events stay ordered, the other apps go on. The
standard FollowUpQueue has no groups: a failed record is simply redelivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from gitferry.messages import _Message

M = TypeVar("M", bound=_Message)


def sqs_stage_handler(message_type: type[M], run: Callable[[M, LambdaContext], Any], logger: Logger, *,
                      fifo: bool = True) -> Callable[[dict, LambdaContext], dict]:
    """A Lambda handler that parses each record as ``message_type`` and passes it to ``run``
    with the invocation's context (the apply stage reads its remaining time)."""
    processor: Any = SqsFifoPartialProcessor(skip_group_on_error=True) if fifo else BatchProcessor(EventType.SQS)
    current: dict[str, LambdaContext] = {}

    def record_handler(record: SQSRecord) -> None:
        message = message_type.model_validate_json(record.body)
        logger.append_keys(app=message.app, reason=message.reason)
        run(message, current["context"])

    @logger.inject_lambda_context
    def handler(event: dict, context: LambdaContext) -> dict:
        current["context"] = context
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)

    return handler
