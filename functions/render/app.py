"""render: fetch the commit, render the source, store the manifests in S3."""

from functools import cache

from aws_lambda_powertools import Logger
from gitferry.lambda_sqs import sqs_stage_handler
from gitferry.messages import RenderRequest
from gitferry.pipeline import Engine

logger = Logger()
engine = cache(Engine.from_env)
handler = sqs_stage_handler(RenderRequest, lambda message, _context: engine().render(message), logger)
