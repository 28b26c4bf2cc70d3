"""StateStore against a real moto DynamoDB server (and S3 for spilled statuses)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from gitferry.blobs import ManifestStore
from gitferry.errors import ConflictError, NotFoundError, StateError
from gitferry.model import (
    Application,
    AppStatus,
    Cluster,
    Condition,
    HealthStatus,
    HistoryEntry,
    OperationState,
    Repository,
    ResourceStatus,
    SyncStatus,
)
from gitferry.state import SPILL_THRESHOLD, StateStore, parsed_specs, parsed_statuses


def make_app(name: str, revision: str = "HEAD") -> Application:
    return Application.from_manifest(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name},
            "spec": {
                "source": {
                    "repoURL": "https://git.example/r.git",
                    "path": "apps",
                    "targetRevision": revision,
                },
                "destination": {"server": "https://k8s.example", "namespace": "default"},
                "syncPolicy": {"automated": {"prune": True}},
                "revisionHistoryLimit": 3,
            },
        }
    )


@pytest.fixture
def store(table: str, ddb: Any, s3: Any, bucket: str) -> StateStore:
    return StateStore(table, client=ddb, blobs=ManifestStore(bucket, client=s3))


def test_app_round_trip_and_optimistic_lock(store: StateStore) -> None:
    app = make_app("web")
    assert store.put_app(app) == 1
    got = store.get_app("web")
    assert got.app == app and got.version == 1

    with pytest.raises(ConflictError, match="already exists"):
        store.put_app(app)

    changed = make_app("web", revision="v2")
    assert store.put_app(changed, expected_version=1) == 2
    # a writer that read version 1 loses
    with pytest.raises(ConflictError, match="changed by someone else"):
        store.put_app(make_app("web", revision="v3"), expected_version=1)
    assert store.get_app("web").app.spec.source.target_revision == "v2"

    with pytest.raises(ConflictError):
        store.delete_app("web", expected_version=1)
    store.delete_app("web", expected_version=2)
    with pytest.raises(NotFoundError):
        store.get_app("web")


def test_delete_app_removes_status_lease_and_history(store: StateStore, ddb: Any, table: str) -> None:
    store.put_app(make_app("gone"))
    store.put_status("gone", AppStatus(sync=SyncStatus(status="Synced")))
    assert store.acquire_operation("gone", "op1", ttl=60)
    store.append_history("gone", HistoryEntry(id=0, revision="a" * 40))
    store.delete_app("gone")
    left = ddb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "APP#gone"}}
    )["Items"]
    assert left == []


def test_list_apps_is_paginated_through_the_gsi(store: StateStore) -> None:
    names = [f"app-{i:04d}" for i in range(1100)]
    # write directly in batches: put_app one by one would dominate the test time
    items = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": f"APP#{n}"},
                    "sk": {"S": "SPEC"},
                    "type": {"S": "app"},
                    "name": {"S": n},
                    "spec": {"S": json.dumps(make_app(n).to_manifest())},
                    "version": {"N": "1"},
                }
            }
        }
        for n in names
    ]
    for i in range(0, len(items), 25):
        store.client.batch_write_item(RequestItems={store.table_name: items[i : i + 25]})
    store.put_repository(Repository(url="https://git.example/r.git"))  # another type: must not show up

    page, cursor = store.list_apps_page(limit=100)
    assert len(page) == 100 and cursor is not None
    page2, _ = store.list_apps_page(limit=100, cursor=cursor)
    assert page2[0].app.name == "app-0100"

    listed = store.list_apps()
    assert [s.app.name for s in listed] == names
    assert store.list_app_names() == names


def test_pages_with_parsed_specs_are_the_pages_without(store: StateStore) -> None:
    """The poll's listing (``specs``): the same StoredApps as a plain listing, a spec parsed at
    one round given again at the next while unchanged, a changed spec parsed anew, a removed
    one let go, and a spec that does not parse refused each time as without ``specs``."""
    for name in ("a", "b", "c"):
        store.put_app(make_app(name))
    specs = parsed_specs()

    def listed() -> list[Any]:
        specs.next_round()
        return [s for page in store.iter_app_pages(limit=2, specs=specs) for s in page]

    first = listed()
    assert first == store.list_apps()
    again = listed()
    assert [s.app for s in again] == [s.app for s in first]
    assert all(x.app is y.app for x, y in zip(again, first, strict=True))  # not parsed again
    store.put_app(make_app("b", revision="v2"), expected_version=first[1].version)
    store.delete_app("c")
    changed = listed()
    assert changed == store.list_apps()
    assert changed[0].app is first[0].app and changed[1].app.spec.source.target_revision == "v2"
    listed()
    assert len(specs._last) == 2  # the old b and c are let go
    store.client.update_item(TableName=store.table_name, Key={"pk": {"S": "APP#a"}, "sk": {"S": "SPEC"}},
                             UpdateExpression="SET spec = :s", ExpressionAttributeValues={":s": {"S": '{"kind": 1}'}})
    for _ in range(2):
        with pytest.raises(StateError, match="stored spec of 'a' is unreadable"):
            listed()


def test_statuses_with_parsed_are_the_statuses_without(store: StateStore) -> None:
    """The poll's statuses (``parsed``): equal to a plain read, partial as it is (written back,
    the stored lists stay), the same object while unchanged, a changed status or request flag
    read anew."""
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = AppStatus(sync=SyncStatus(status="Synced", revision="a" * 40), reconciled_at=now,
                       resources=[ResourceStatus(kind="ConfigMap", name="c", namespace="d")])
    for name in ("a", "b"):
        store.put_status(name, status)
    parsed = parsed_statuses()

    def read() -> dict[str, AppStatus]:
        parsed.next_round()
        return store.get_statuses(["a", "b", "none"], parsed)

    first = read()
    assert first == store.get_statuses(["a", "b", "none"]) and set(first) == {"a", "b"}
    assert first["a"]._partial_lists and first["a"].resources == []
    again = read()
    assert again["a"] is first["a"] and again["b"] is first["b"]
    store.request("a", refresh=True)
    store.put_status("b", status.model_copy(update={"health": HealthStatus(status="Healthy")}))
    changed = read()
    assert changed == store.get_statuses(["a", "b"])
    assert changed["a"].refresh_requested and changed["b"].health.status == "Healthy"
    store.put_status("a", changed["a"])  # a partial status written back keeps the stored lists
    assert store.get_status("a").resources == status.resources


def test_status_round_trip_keeps_request_flags(store: StateStore) -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = AppStatus(
        sync=SyncStatus(status="OutOfSync", revision="b" * 40),
        health=HealthStatus(status="Progressing", message="rolling out"),
        resources=[ResourceStatus(group="apps", version="v1", kind="Deployment", namespace="d", name="w")],
        conditions=[Condition(type="ComparisonError", message="x", last_transition_time=now)],
        operation_state=OperationState(phase="Running", started_at=now),
        reconciled_at=now,
    )
    assert store.get_status("web") is None
    store.put_status("web", status)
    assert store.get_status("web") == status

    # the API asks for a sync while the diff stage rewrites the status: the request survives
    store.request("web", sync=True)
    store.put_status("web", status.model_copy(update={"health": HealthStatus(status="Healthy")}))
    got = store.get_status("web")
    assert got is not None and got.sync_requested and not got.refresh_requested
    assert got.health.status == "Healthy"
    store.clear_requests("web")
    got = store.get_status("web")
    assert got is not None and not got.sync_requested

    summary = store.get_statuses(["web", "missing"])
    assert set(summary) == {"web"} and summary["web"].resources == []
    assert summary["web"].sync.revision == "b" * 40


def test_status_with_2000_resources_spills_to_s3(store: StateStore, ddb: Any, table: str) -> None:
    resources = [
        ResourceStatus(
            group="apps",
            version="v1",
            kind="Deployment",
            namespace=f"team-{i % 40:02d}-production-namespace",
            name=f"service-{i:05d}-with-a-fairly-long-descriptive-name",
            status="Synced",
            health=HealthStatus(status="Degraded", message="Deployment exceeded its progress deadline " * 2),
            sync_wave=i % 5,
        )
        for i in range(2000)
    ]
    status = AppStatus(sync=SyncStatus(status="Synced", revision="c" * 40), resources=resources)
    assert len(json.dumps(status.to_json_dict())) > SPILL_THRESHOLD  # the test really is big
    store.put_status("big", status)

    item = ddb.get_item(TableName=table, Key={"pk": {"S": "APP#big"}, "sk": {"S": "STATUS"}})["Item"]
    assert "resources" not in item and item["resourcesRef"]["S"].startswith("status/big/")
    assert sum(len(v.get("S", "")) for v in item.values()) < SPILL_THRESHOLD
    got = store.get_status("big")
    assert got == status and len(got.resources) == 2000

    # shrinking again moves the list back inline
    store.put_status("big", AppStatus(resources=resources[:3]))
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "APP#big"}, "sk": {"S": "STATUS"}})["Item"]
    assert "resourcesRef" not in item
    assert len(store.get_status("big").resources) == 3  # type: ignore[union-attr]

    # without a blob store a big status is refused clearly rather than failing in DynamoDB
    with pytest.raises(StateError, match="too large"):
        StateStore(table, client=ddb).put_status("big", status)


def test_operation_lease_is_exclusive_until_release_or_expiry(store: StateStore) -> None:
    t0 = 1_700_000_000
    assert store.acquire_operation("web", "op-a", ttl=300, now=t0)
    assert not store.acquire_operation("web", "op-b", ttl=300, now=t0 + 10)
    assert store.acquire_operation("web", "op-a", ttl=300, now=t0 + 20)  # renewal by the holder
    lease = store.get_operation("web")
    assert lease is not None and lease.op_id == "op-a" and lease.expires_at == t0 + 320
    assert not store.release_operation("web", "op-b")  # not the holder
    assert store.release_operation("web", "op-a")
    assert store.acquire_operation("web", "op-b", ttl=60, now=t0 + 30)
    # an expired lease can be taken over, and the old holder can no longer release it
    assert store.acquire_operation("web", "op-c", ttl=60, now=t0 + 30 + 61)
    assert not store.release_operation("web", "op-b")
    assert store.get_operation("web").op_id == "op-c"  # type: ignore[union-attr]
    # leases are per app
    assert store.acquire_operation("other", "op-d", ttl=60, now=t0 + 100)


def test_history_append_assigns_ids_and_trims(store: StateStore) -> None:
    for i in range(6):
        stored = store.append_history("web", HistoryEntry(id=0, revision=f"{i:040d}"), limit=3)
        assert stored.id == i + 1
    hist = store.list_history("web")
    assert [h.id for h in hist] == [4, 5, 6]
    assert [h.revision for h in hist] == [f"{i:040d}" for i in (3, 4, 5)]
    assert store.get_history("web", 5).revision == f"{4:040d}"
    with pytest.raises(NotFoundError):
        store.get_history("web", 1)
    st = AppStatus()
    store.put_status("web", st)
    assert [h.id for h in store.get_status("web", include_history=True).history] == [4, 5, 6]  # type: ignore[union-attr]


def test_repositories_and_clusters_crud(store: StateStore) -> None:
    repo = Repository(url="https://git.example/private.git", username="bob", has_credentials=True)
    store.put_repository(repo)
    store.put_repository(Repository(url="https://git.example/public.git"))
    assert store.get_repository(repo.url) == repo
    assert {r.url for r in store.list_repositories()} == {repo.url, "https://git.example/public.git"}
    store.delete_repository(repo.url)
    with pytest.raises(NotFoundError):
        store.get_repository(repo.url)

    prod = Cluster(name="prod", server="https://prod.example:6443", namespace="apps")
    store.put_cluster(prod)
    store.put_cluster(Cluster(name="dev", server="https://dev.example:6443"))
    assert store.get_cluster("prod") == prod
    assert store.find_cluster(server="https://prod.example:6443/") == prod
    assert store.find_cluster(name="dev").namespace == "default"
    assert [c.name for c in store.list_clusters()] == ["dev", "prod"]
    store.delete_cluster("prod")
    with pytest.raises(NotFoundError):
        store.find_cluster(server="https://prod.example:6443")
    assert store.list_app_names() == []  # metadata items never appear as apps
