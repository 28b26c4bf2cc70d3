"""S3 blobs: rendered manifests (content-addressed) and JSON too big for DynamoDB.

Rendered manifests are keyed by the SHA-256 of their canonical JSON so that a
re-render of an unchanged commit writes nothing new and SQS messages carry a
short, immutable key instead of the manifests themselves. Objects are never
overwritten with different content, so readers never see a torn update; old
blobs are left to an S3 lifecycle rule.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
from botocore.exceptions import ClientError

from gitferry.errors import NotFoundError, StateError

__all__ = ["ManifestStore", "canonical_json", "content_key"]

MANIFEST_PREFIX = "manifests/"


def canonical_json(obj: Any) -> bytes:
    """Stable bytes for ``obj`` (sorted keys, no spaces): equal data, equal hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_key(prefix: str, body: bytes) -> str:
    """``<prefix><sha256>.json`` for ``body``."""
    return f"{prefix}{hashlib.sha256(body).hexdigest()}.json"


class ManifestStore:
    """Blob store over one S3 bucket. The boto3 client is created on first use
    so importing the engine (Lambda cold start) costs nothing."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("s3")
        return self._client

    # -- manifests ------------------------------------------------------------

    def put_manifests(self, manifests: list[dict[str, Any]]) -> str:
        """Store a rendered manifest list; returns its key ``manifests/<sha256>.json``.
        Idempotent: the same list always gives the same key and is written once."""
        return self.put_json_addressed(MANIFEST_PREFIX, manifests)

    def get_manifests(self, key: str) -> list[dict[str, Any]]:
        """The manifest list stored under ``key``."""
        data = self.get_json(key)
        if not isinstance(data, list):
            raise StateError(f"s3://{self.bucket}/{key} is not a manifest list")
        return data

    # -- generic JSON ---------------------------------------------------------

    def put_json_addressed(self, prefix: str, obj: Any) -> str:
        """Store ``obj`` under ``<prefix><sha256>.json`` (skipped when already there)."""
        body = canonical_json(obj)
        key = content_key(prefix, body)
        if not self.exists(key):
            self._put(key, body)
        return key

    def put_json(self, key: str, obj: Any) -> str:
        """Store ``obj`` as JSON under ``key`` (overwrites); returns ``key``."""
        self._put(key, canonical_json(obj))
        return key

    def get_json(self, key: str) -> Any:
        """Load the JSON stored under ``key``; :class:`NotFoundError` when absent."""
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise NotFoundError(f"s3://{self.bucket}/{key} not found") from None
            raise StateError(f"reading s3://{self.bucket}/{key}: {exc}") from None
        return json.loads(resp["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StateError(f"checking s3://{self.bucket}/{key}: {exc}") from None
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def _put(self, key: str, body: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        except ClientError as exc:
            raise StateError(f"writing s3://{self.bucket}/{key}: {exc}") from None
