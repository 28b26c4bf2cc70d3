"""diff: compare rendered manifests with the live cluster; status, health, resources."""

from functools import cache

from aws_lambda_powertools import Logger
from gitferry.lambda_sqs import sqs_stage_handler
from gitferry.messages import DiffRequest
from gitferry.pipeline import Engine

logger = Logger()
engine = cache(Engine.from_env)
handler = sqs_stage_handler(DiffRequest, lambda message, _context: engine().diff(message), logger)
