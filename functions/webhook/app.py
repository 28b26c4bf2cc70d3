"""webhook: POST /webhooks/{provider} -> verify the signature, queue renders, answer 202.

Idempotent per delivery (providers redeliver on timeouts): the answer to a delivery id
seen before is the first answer, and nothing is queued twice.
"""

import base64
import hashlib
import os
from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from gitferry.pipeline import Engine
from gitferry.service import Service
from gitferry.webhooks import MAX_BODY_BYTES, WebhookError

logger = Logger()
_idempotency = IdempotencyConfig(event_key_jmespath="[provider, delivery]", expires_after_seconds=24 * 3600)


@cache
def service() -> Service:
    return Service(Engine.from_env())


@cache
def deliver():
    """The idempotent unit of work, built on first use (the table name comes from the env)."""
    persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE_NAME"])

    @idempotent_function(data_keyword_argument="delivery", persistence_store=persistence, config=_idempotency)
    def run(delivery: dict) -> dict:
        try:
            status, body = service().webhook(delivery["provider"], delivery["headers"],
                                             delivery["body"].encode("latin-1"))
        except WebhookError as exc:  # a signed but unusable payload: remembered like any answer
            status, body = exc.status, {"message": exc.message}
        return {"status": status, "body": body}

    return run


def _response(status: int, body: dict) -> dict:
    import json

    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    provider = (event.get("pathParameters") or {}).get("provider", "")
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if len(body) > MAX_BODY_BYTES:
        return _response(413, {"message": f"payload larger than {MAX_BODY_BYTES} bytes"})
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    delivery_id = (headers.get("x-github-delivery") or headers.get("x-gitea-delivery")
                   or headers.get("x-gitlab-event-uuid") or headers.get("x-request-uuid")
                   or headers.get("x-request-id") or hashlib.sha256(body).hexdigest())
    try:
        # The signature is checked before the idempotency record is written, so an unsigned
        # request can neither queue work nor poison a real delivery's id.
        service().verify_webhook(provider, headers, body)
        _idempotency.register_lambda_context(context)
        result = deliver()(delivery={"provider": provider, "delivery": delivery_id, "headers": headers,
                                     "body": body.decode("latin-1")})
    except WebhookError as exc:
        logger.warning("webhook refused", extra={"provider": provider, "status": exc.status, "reason": exc.message})
        return _response(exc.status, {"message": exc.message})
    logger.info("webhook", extra={"provider": provider, "delivery": delivery_id, "result": result["body"]})
    return _response(result["status"], result["body"])
