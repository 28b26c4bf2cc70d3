"""A 20,000-object application through the StateStore on a real moto server (DynamoDB + S3).

Issue item 4: a sync of 20,000 objects applied everything, then failed to record because the
operation's per-object results alone were larger than a DynamoDB item may be (400 KB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from gitferry.blobs import ManifestStore
from gitferry.model import (
    AppStatus,
    Condition,
    HealthStatus,
    HistoryEntry,
    OperationInitiator,
    OperationState,
    ResourceResult,
    ResourceStatus,
    SyncOperationResult,
    SyncStatus,
)
from gitferry.state import SPILL_THRESHOLD, StateStore

N = 20_000
DDB_ITEM_LIMIT = 400 * 1024


def big_status(n: int = N, health: str = "Healthy") -> AppStatus:
    resources = [
        ResourceStatus(group="", version="v1", kind="ConfigMap", namespace=f"team-{i % 50:02d}",
                       name=f"settings-{i:05d}", status="Synced", health=HealthStatus(status=health),
                       sync_wave=i % 3)
        for i in range(n)
    ]
    results = [
        ResourceResult(group="", version="v1", kind="ConfigMap", namespace=f"team-{i % 50:02d}",
                       name=f"settings-{i:05d}", status="Synced", message="configmap/settings serverside-applied",
                       sync_phase="Sync")
        for i in range(n)
    ]
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return AppStatus(
        sync=SyncStatus(status="Synced", revision="a" * 40),
        health=HealthStatus(status="Healthy"),
        resources=resources,
        conditions=[Condition(type="SyncError", message="x" * 100_000, last_transition_time=now)],
        operation_state=OperationState(
            phase="Succeeded", message="successfully synced (all tasks run)", started_at=now, finished_at=now,
            sync_result=SyncOperationResult(revision="a" * 40, resources=results),
            initiated_by=OperationInitiator(automated=True),
        ),
    )


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings/numbers as their bytes)."""
    total = 0
    for k, v in item.items():
        total += len(k.encode())
        for typ, val in v.items():
            total += len(val.encode()) if typ in ("S", "N") else 1
    return total


@pytest.fixture
def store(table: str, ddb: Any, s3: Any, bucket: str) -> StateStore:
    return StateStore(table, client=ddb, blobs=ManifestStore(bucket, client=s3))


def status_item(ddb: Any, table: str, name: str) -> dict[str, Any]:
    return ddb.get_item(TableName=table, Key={"pk": {"S": f"APP#{name}"}, "sk": {"S": "STATUS"}})["Item"]


def test_a_20000_object_sync_is_recorded_within_the_item_limit(store: StateStore, ddb: Any, table: str,
                                                                 s3: Any, bucket: str) -> None:
    status = big_status()
    whole = len(json.dumps(status.to_json_dict()))
    assert whole > 10 * DDB_ITEM_LIMIT  # really big: several MB
    store.put_status("huge", status)

    item = status_item(ddb, table, "huge")
    assert item_size(item) < SPILL_THRESHOLD < DDB_ITEM_LIMIT
    assert item["resourcesRef"]["S"].startswith("status/huge/") and item["resultsRef"]["S"].startswith("status/huge/")
    got = store.get_status("huge")
    assert got is not None
    assert len(got.resources) == N and got.resources == status.resources
    assert got.operation_state is not None and got.operation_state.sync_result is not None
    assert got.operation_state.sync_result.resources == status.operation_state.sync_result.resources  # type: ignore[union-attr]
    # a 100 KB condition message is cut, saying how much was left out
    assert len(got.conditions[0].message) < 17_000 and got.conditions[0].message.endswith("more characters)")

    # the poll reads statuses without their lists; writing such a status back keeps the lists
    partial = store.get_statuses(["huge"])["huge"]
    assert partial.resources == []
    partial.conditions = []
    store.put_status("huge", partial)
    again = store.get_status("huge")
    assert again is not None and again.conditions == [] and len(again.resources) == N
    assert len(again.operation_state.sync_result.resources) == N  # type: ignore[union-attr]

    # a new status replaces the blobs: the old ones are deleted, only the current two remain
    store.put_status("huge", big_status(health="Progressing"))
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="status/huge/").get("Contents", [])
    item = status_item(ddb, table, "huge")
    assert {o["Key"] for o in listed} == {item["resourcesRef"]["S"], item["resultsRef"]["S"]}

    # history entries carry no resource list: small whatever the app's size
    store.append_history("huge", HistoryEntry(id=0, revision="a" * 40))
    hist = ddb.query(TableName=table, KeyConditionExpression="pk = :p AND begins_with(sk, :h)",
                     ExpressionAttributeValues={":p": {"S": "APP#huge"}, ":h": {"S": "HISTORY#"}})["Items"]
    assert hist and all(item_size(h) < 10_000 for h in hist)

    # deleting the app deletes its spilled lists
    from gitferry.model import Application
    store.put_app(Application.from_manifest({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "huge"},
        "spec": {"source": {"repoURL": "https://git.example/r.git", "path": "a"},
                 "destination": {"server": "https://k8s.example", "namespace": "default"}}}))
    store.delete_app("huge")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="status/huge/").get("KeyCount", 0) == 0


def test_small_lists_stay_inline_and_a_shrunk_status_drops_its_blobs(store: StateStore, ddb: Any, table: str,
                                                                     s3: Any, bucket: str) -> None:
    store.put_status("shrinks", big_status())
    store.put_status("shrinks", big_status(n=10))
    item = status_item(ddb, table, "shrinks")
    assert "resourcesRef" not in item and "resultsRef" not in item
    assert s3.list_objects_v2(Bucket=bucket, Prefix="status/shrinks/").get("KeyCount", 0) == 0
    got = store.get_status("shrinks")
    assert got is not None and len(got.resources) == 10
    assert len(got.operation_state.sync_result.resources) == 10  # type: ignore[union-attr]
