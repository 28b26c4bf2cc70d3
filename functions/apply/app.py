"""apply: run a sync operation (server-side apply, prune) under the app lease."""

from functools import cache

from aws_lambda_powertools import Logger
from gitferry.lambda_sqs import sqs_stage_handler
from gitferry.messages import ApplyRequest
from gitferry.pipeline import Engine

logger = Logger()
engine = cache(Engine.from_env)
handler = sqs_stage_handler(ApplyRequest, lambda message: engine().apply(message), logger)
