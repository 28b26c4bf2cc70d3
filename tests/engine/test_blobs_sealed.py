"""Secret values are sealed (KMS envelope, AES-256-GCM) before the manifest blob reaches S3;
a blob in use has its lifecycle age reset. Real moto server (S3 + KMS) over HTTP."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from gitferry.blobs import KMS_CONTEXT, ManifestStore, is_sealed
from gitferry.errors import StateError

PASSWORD = "hunter2-planted-db-password"
TOKEN = "tok-planted-9f8e7d6c5b4a"


@pytest.fixture
def kms(moto_endpoint: str) -> Any:
    return boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def key_id(kms: Any) -> str:
    return str(kms.create_key(Description="gitferry manifests")["KeyMetadata"]["KeyId"])


def manifests() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"mode": "fast"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
         "type": "Opaque", "data": {"password": base64.b64encode(PASSWORD.encode()).decode()},
         "stringData": {"token": TOKEN}},
    ]


def raw(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_secret_values_are_sealed_in_s3_and_round_trip(bucket: str, s3: Any, kms: Any, key_id: str) -> None:
    store = ManifestStore(bucket, client=s3, kms_key_id=key_id, kms_client=kms)
    key = store.put_manifests(manifests())
    body = raw(s3, bucket, key)
    for planted in (PASSWORD, TOKEN, base64.b64encode(PASSWORD.encode()).decode(),
                    base64.b64encode(TOKEN.encode()).decode()):
        assert planted.encode() not in body
    blob = json.loads(body)
    assert is_sealed(blob) and blob["manifests"][0]["data"] == {"mode": "fast"}  # the rest stays readable
    assert "data" not in blob["manifests"][1] and "stringData" not in blob["manifests"][1]
    # a fresh store (another Lambda container) decrypts through KMS
    assert ManifestStore(bucket, client=s3, kms_key_id=key_id, kms_client=kms).get_manifests(key) == manifests()
    # the data key is bound to gitferry's encryption context
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=base64.b64decode(blob["encryptedKey"]))
    assert kms.decrypt(CiphertextBlob=base64.b64decode(blob["encryptedKey"]),
                       EncryptionContext=KMS_CONTEXT)["Plaintext"]
    # idempotent: the same list is the same key and is not written twice
    assert store.put_manifests(manifests()) == key
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_a_tampered_or_moved_sealed_secret_is_refused(bucket: str, s3: Any, kms: Any, key_id: str) -> None:
    store = ManifestStore(bucket, client=s3, kms_key_id=key_id, kms_client=kms)
    key = store.put_manifests(manifests())
    blob = json.loads(raw(s3, bucket, key))
    blob["manifests"][1]["metadata"]["name"] = "other"  # the values were sealed for shop/db
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(blob).encode())
    with pytest.raises(StateError, match="does not decrypt"):
        ManifestStore(bucket, client=s3, kms_key_id=key_id, kms_client=kms).get_manifests(key)


def test_without_secrets_nothing_is_encrypted(bucket: str, s3: Any, kms: Any, key_id: str) -> None:
    store = ManifestStore(bucket, client=s3, kms_key_id=key_id, kms_client=kms)
    key = store.put_manifests(manifests()[:1])
    assert json.loads(raw(s3, bucket, key)) == manifests()[:1]


def test_a_blob_in_use_has_its_age_reset(bucket: str, s3: Any, kms: Any, key_id: str) -> None:
    fresh = ManifestStore(bucket, client=s3, kms_key_id=key_id, kms_client=kms)
    key = fresh.put_manifests(manifests())
    fresh.get_manifests(key)
    fresh.put_manifests(manifests())
    assert "touched" not in s3.head_object(Bucket=bucket, Key=key)["Metadata"]  # young: left alone
    old = ManifestStore(bucket, client=s3, kms_key_id=key_id, kms_client=kms, touch_after=0)
    before = raw(s3, bucket, key)
    assert old.get_manifests(key) == manifests()
    head = s3.head_object(Bucket=bucket, Key=key)
    assert "touched" in head["Metadata"] and raw(s3, bucket, key) == before  # same bytes, new age
    s3.delete_object(Bucket=bucket, Key=key)  # (a render of it again writes it back)
    old.put_manifests(manifests())
    assert old.get_manifests(key) == manifests()
