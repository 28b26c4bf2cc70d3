"""followup: a delayed message whose time has come goes into the app's FIFO queue.

FollowUpQueue is a standard queue (FIFO queues take no per-message delay): it carries an
operation's next step (next wave, awaited hook, retry after its backoff), health re-checks
after a sync and deferred self-heals. This stage forwards each into ApplyQueue / DiffQueue
(per-app order, the follow-up token as deduplication id), delays again what is still far
off, and drops an operation follow-up that is no longer pending (duplicate delivery).
"""

from functools import cache

from aws_lambda_powertools import Logger
from gitferry.lambda_sqs import sqs_stage_handler
from gitferry.messages import FollowUpRequest
from gitferry.pipeline import Engine

logger = Logger()
engine = cache(Engine.from_env)


def forward(message: FollowUpRequest, _context: object) -> None:
    outcome = engine().follow_up(message)
    logger.info("follow-up", extra={"app": message.app, "outcome": outcome, "token": message.token})


handler = sqs_stage_handler(FollowUpRequest, forward, logger, fifo=False)
