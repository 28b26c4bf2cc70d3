"""poll: EventBridge schedule tick -> render messages for the apps that are due."""

from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from gitferry.pipeline import Engine

logger = Logger()


@cache
def engine() -> Engine:
    return Engine.from_env()


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    result = engine().poll(remaining_ms=context.get_remaining_time_in_millis)
    for app, error in result.errors.items():
        logger.warning("app not resolved", extra={"app": app, "error": error})
    logger.info("poll tick", extra={"apps": result.apps, "scheduled": [r.app for r in result.scheduled]})
    return {"apps": result.apps, "scheduled": len(result.scheduled), "errors": len(result.errors)}
