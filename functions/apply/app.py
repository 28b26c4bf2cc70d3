"""apply: run a sync operation (server-side apply, prune) under the app lease.

SQS FIFO batch: a failed record fails the rest of its app's group only, so one
application's events stay ordered and the others go on.
"""

from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from gitferry.messages import ApplyRequest
from gitferry.pipeline import Engine

logger = Logger()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


@cache
def engine() -> Engine:
    return Engine.from_env()


def record_handler(record: SQSRecord) -> None:
    message = ApplyRequest.model_validate_json(record.body)
    logger.append_keys(app=message.app, reason=message.reason)
    engine().apply(message)


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
