"""report: per-app and fleet metrics as CloudWatch EMF (the drift alarm reads OutOfSyncApps)."""

import warnings
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from gitferry.messages import ReportRequest
from gitferry.notify import Notifier, notifications_for
from gitferry.pipeline import Engine

logger = Logger()
metrics = Metrics()
# A batch of per-app events has only single metrics (each with its own app dimension), so the
# shared metric set is legitimately empty: not worth a warning on every invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


@cache
def engine() -> Engine:
    return Engine.from_env()


@cache
def notifier() -> Notifier:
    return Notifier()


def record_handler(record: SQSRecord) -> None:
    message = ReportRequest.model_validate_json(record.body)
    for point in engine().report(message):
        if point.dimensions:
            # Per-app metrics carry their own dimensions: one EMF document each.
            with single_metric(name=point.name, unit=MetricUnit(point.unit), value=point.value,
                               default_dimensions={"service": metrics.service or "gitferry"}) as metric:
                for key, value in point.dimensions.items():
                    metric.add_dimension(name=key, value=value)
        else:
            metrics.add_metric(name=point.name, unit=MetricUnit(point.unit), value=point.value)
    for notification in notifications_for(message):
        notifier().publish(notification)
        logger.info("notified", extra={"app": message.app, "trigger": notification.trigger})
    logger.info("report", extra={"app": message.app, "event": message.event, "sync": message.sync_status,
                                 "health": message.health, "drifted": message.drifted})


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
