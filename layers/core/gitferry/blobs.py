"""S3 blobs: rendered manifests (content-addressed) and JSON too big for DynamoDB.

Rendered manifests are keyed by the SHA-256 of their canonical JSON so that a
re-render of an unchanged commit writes nothing new and SQS messages carry a
short, immutable key instead of the manifests themselves. Objects are never
overwritten with different content, so readers never see a torn update.

Secret values never reach S3 in clear: when a manifest list holds ``v1`` Secrets
with ``data`` / ``stringData`` and a KMS key is configured (``MANIFEST_KEY_ID``,
the template's ``ManifestKey``), the blob is *sealed* with envelope encryption:
one ``GenerateDataKey`` per blob, the Secrets' values encrypted with AES-256-GCM
under that data key (the object's position and identity as associated data), only
the KMS-encrypted data key stored beside them; reading it takes one ``Decrypt``.
Everything else in the blob stays readable JSON.

Expiry: the template's lifecycle rule expires ``manifests/`` objects some days
after they were last written. A blob still in use is re-written onto itself
(``CopyObject``, which resets its age) when a render or a diff meets it and it is
older than ``touch_after`` seconds, so only what no app reads any more expires.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from gitferry.errors import NotFoundError, StateError

__all__ = ["ManifestStore", "canonical_json", "content_key", "is_sealed"]

MANIFEST_PREFIX = "manifests/"
#: marker of a sealed manifest blob (a JSON object instead of a plain list)
SEALED_FORMAT = "gitferry.dev/sealed-manifests/v1"
#: where a sealed Secret keeps its encrypted values (``data`` and ``stringData`` removed)
SEALED_FIELD = "gitferrySealed"
#: KMS encryption context of every data key (also usable in key policy conditions)
KMS_CONTEXT = {"gitferry:purpose": "manifests"}
#: a manifest blob met by a render / diff and older than this is re-written (lifecycle age reset)
TOUCH_AFTER_SECONDS = 7 * 24 * 3600
_FROM_ENV = object()


def is_sealed(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == SEALED_FORMAT


def _secret_values(obj: Any) -> bool:
    """A core/v1 Secret carrying values."""
    return (isinstance(obj, dict) and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"
            and bool(obj.get("data") or obj.get("stringData")))


def _aad(index: int, obj: dict[str, Any]) -> bytes:
    meta = obj.get("metadata") or {}
    return f"{index}/{meta.get('namespace', '')}/{meta.get('name', '')}".encode()


def canonical_json(obj: Any) -> bytes:
    """Stable bytes for ``obj`` (sorted keys, no spaces): equal data, equal hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_key(prefix: str, body: bytes) -> str:
    """``<prefix><sha256>.json`` for ``body``."""
    return f"{prefix}{hashlib.sha256(body).hexdigest()}.json"


class ManifestStore:
    """Blob store over one S3 bucket. The boto3 client is created on first use
    so importing the engine (Lambda cold start) costs nothing."""

    def __init__(self, bucket: str, client: Any = None, *, kms_key_id: Any = _FROM_ENV, kms_client: Any = None,
                 touch_after: float = TOUCH_AFTER_SECONDS) -> None:
        self.bucket = bucket
        self._client = client
        self.kms_key_id: str | None = (os.environ.get("MANIFEST_KEY_ID") or None) if kms_key_id is _FROM_ENV \
            else kms_key_id
        self._kms = kms_client
        self.touch_after = touch_after
        self._data_keys: dict[bytes, bytes] = {}  # encrypted data key -> plaintext (this container only)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("s3")
        return self._client

    @property
    def kms(self) -> Any:
        if self._kms is None:
            self._kms = boto3.client("kms")
        return self._kms

    # -- manifests ------------------------------------------------------------

    def put_manifests(self, manifests: list[dict[str, Any]]) -> str:
        """Store a rendered manifest list; returns its key ``manifests/<sha256>.json``.
        Idempotent: the same list always gives the same key and is written once (sealed
        when it holds Secret values); an existing blob has its lifecycle age reset when old."""
        key = content_key(MANIFEST_PREFIX, canonical_json(manifests))
        modified = self._last_modified(key)
        if modified is None:
            self._put(key, canonical_json(self._seal(manifests)))
        else:
            self._touch_if_old(key, modified)
        return key

    def get_manifests(self, key: str) -> list[dict[str, Any]]:
        """The manifest list stored under ``key`` (unsealed)."""
        data, modified = self._get(key)
        if key.startswith(MANIFEST_PREFIX):
            self._touch_if_old(key, modified)
        if is_sealed(data):
            data = self._unseal(key, data)
        if not isinstance(data, list):
            raise StateError(f"s3://{self.bucket}/{key} is not a manifest list")
        return data

    # -- sealing --------------------------------------------------------------

    def _seal(self, manifests: list[dict[str, Any]]) -> Any:
        if self.kms_key_id is None or not any(_secret_values(m) for m in manifests):
            return manifests
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            resp = self.kms.generate_data_key(KeyId=self.kms_key_id, KeySpec="AES_256",
                                              EncryptionContext=KMS_CONTEXT)
        except ClientError as exc:
            raise StateError(f"KMS key {self.kms_key_id}: cannot generate a data key: {exc}") from None
        aes = AESGCM(resp["Plaintext"])
        out: list[dict[str, Any]] = []
        for i, obj in enumerate(manifests):
            if not _secret_values(obj):
                out.append(obj)
                continue
            values = {k: obj[k] for k in ("data", "stringData") if k in obj}
            nonce = os.urandom(12)
            sealed = {k: v for k, v in obj.items() if k not in values}
            sealed[SEALED_FIELD] = {
                "nonce": base64.b64encode(nonce).decode(),
                "ciphertext": base64.b64encode(aes.encrypt(nonce, canonical_json(values), _aad(i, obj))).decode(),
            }
            out.append(sealed)
        return {"format": SEALED_FORMAT, "keyId": resp.get("KeyId", self.kms_key_id),
                "encryptedKey": base64.b64encode(resp["CiphertextBlob"]).decode(), "manifests": out}

    def _unseal(self, key: str, blob: dict[str, Any]) -> list[dict[str, Any]]:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        encrypted = base64.b64decode(blob["encryptedKey"])
        plain = self._data_keys.get(encrypted)
        if plain is None:
            try:
                plain = self.kms.decrypt(CiphertextBlob=encrypted, EncryptionContext=KMS_CONTEXT)["Plaintext"]
            except ClientError as exc:
                raise StateError(f"s3://{self.bucket}/{key}: cannot decrypt its data key: {exc}") from None
            if len(self._data_keys) > 64:
                self._data_keys.clear()
            self._data_keys[encrypted] = plain
        aes = AESGCM(plain)
        out: list[dict[str, Any]] = []
        for i, obj in enumerate(blob.get("manifests") or []):
            sealed = obj.get(SEALED_FIELD) if isinstance(obj, dict) else None
            if sealed is None:
                out.append(obj)
                continue
            restored = {k: v for k, v in obj.items() if k != SEALED_FIELD}
            try:
                values = aes.decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]),
                                     _aad(i, restored))
            except (InvalidTag, KeyError, ValueError):
                raise StateError(f"s3://{self.bucket}/{key}: sealed Secret #{i} does not decrypt") from None
            restored.update(json.loads(values))
            out.append(restored)
        return out

    # -- lifecycle ------------------------------------------------------------

    def _touch_if_old(self, key: str, modified: datetime | None) -> None:
        """Re-write ``key`` onto itself (same bytes, new age) when older than ``touch_after``."""
        if modified is None or time.time() - modified.timestamp() < self.touch_after:
            return
        try:
            self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                                    MetadataDirective="REPLACE", ContentType="application/json",
                                    Metadata={"touched": str(int(time.time()))})
        except ClientError as exc:
            raise StateError(f"refreshing s3://{self.bucket}/{key}: {exc}") from None

    def _last_modified(self, key: str) -> datetime | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StateError(f"checking s3://{self.bucket}/{key}: {exc}") from None
        return resp.get("LastModified")

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

    def put_json_if_changed(self, key: str, obj: Any) -> bool:
        """Store ``obj`` under ``key`` unless the object there already holds exactly it (its
        ``sha256`` metadata, which every write here sets, says so): a HEAD costs a twelfth of a
        PUT, and a drift check of an app that did not change writes the same tree every time.
        True when written."""
        body = canonical_json(obj)
        digest = hashlib.sha256(body).hexdigest()
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise StateError(f"checking s3://{self.bucket}/{key}: {exc}") from None
            head = {}
        if (head.get("Metadata") or {}).get("sha256") == digest:
            return False
        self._put(key, body, metadata={"sha256": digest})
        return True

    def get_json(self, key: str) -> Any:
        """Load the JSON stored under ``key``; :class:`NotFoundError` when absent."""
        return self._get(key)[0]

    def _get(self, key: str) -> tuple[Any, datetime | None]:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise NotFoundError(f"s3://{self.bucket}/{key} not found") from None
            raise StateError(f"reading s3://{self.bucket}/{key}: {exc}") from None
        return json.loads(resp["Body"].read()), resp.get("LastModified")

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

    def _put(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json",
                                   **({"Metadata": metadata} if metadata else {}))
        except ClientError as exc:
            raise StateError(f"writing s3://{self.bucket}/{key}: {exc}") from None
