"""ManifestStore against a real moto S3 server."""

from __future__ import annotations

from typing import Any

import pytest
from gitferry.blobs import ManifestStore
from gitferry.errors import NotFoundError


def test_manifests_are_content_addressed_and_idempotent(bucket: str, s3: Any) -> None:
    store = ManifestStore(bucket, client=s3)
    manifests = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1.5"}}]
    key = store.put_manifests(manifests)
    assert key.startswith("manifests/") and key.endswith(".json") and len(key) == len("manifests/") + 64 + 5
    # same content (keys in another order) -> same key, still one object
    reordered = [{"metadata": {"name": "a"}, "data": {"x": "1.5"}, "kind": "ConfigMap", "apiVersion": "v1"}]
    assert store.put_manifests(reordered) == key
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    assert store.get_manifests(key) == manifests
    other = store.put_manifests(
        manifests + [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}]
    )
    assert other != key


def test_generic_json_and_missing_keys(bucket: str, s3: Any) -> None:
    store = ManifestStore(bucket, client=s3)
    store.put_json("diffs/app/1.json", {"n": 1.25, "ok": True})
    assert store.get_json("diffs/app/1.json") == {"n": 1.25, "ok": True}
    with pytest.raises(NotFoundError, match="nope.json"):
        store.get_json("manifests/nope.json")
    assert not store.exists("manifests/nope.json")


def test_an_unchanged_document_is_not_written_again(bucket: str, s3: Any) -> None:
    """What a drift check of an unchanged app costs for its tree: one HEAD, no PUT (and no new
    object version); a changed one is written."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = ManifestStore(bucket, client=s3)

    def versions() -> int:
        return len(s3.list_object_versions(Bucket=bucket, Prefix="trees/a.json").get("Versions", []))

    assert store.put_json_if_changed("trees/a.json", {"nodes": [{"name": "x", "health": "Healthy"}]}) is True
    assert store.put_json_if_changed("trees/a.json", {"nodes": [{"health": "Healthy", "name": "x"}]}) is False
    assert versions() == 1
    assert store.put_json_if_changed("trees/a.json", {"nodes": [{"name": "x", "health": "Degraded"}]}) is True
    assert versions() == 2 and store.get_json("trees/a.json")["nodes"][0]["health"] == "Degraded"
    store.put_json("trees/a.json", {"nodes": []})  # written without the digest: the next write is never skipped
    assert store.put_json_if_changed("trees/a.json", {"nodes": []}) is True
