"""apply: run a sync operation (server-side apply, prune, waves, hooks) under the app lease.

The Lambda's remaining time bounds how long the operation may wait here for a wave or hook
to settle; what takes longer becomes the operation's delayed follow-up."""

from functools import cache

from aws_lambda_powertools import Logger
from gitferry.lambda_sqs import sqs_stage_handler
from gitferry.messages import ApplyRequest
from gitferry.pipeline import Engine

logger = Logger()
engine = cache(Engine.from_env)
handler = sqs_stage_handler(
    ApplyRequest,
    lambda message, context: engine().apply(message, remaining_ms=context.get_remaining_time_in_millis),
    logger,
)
