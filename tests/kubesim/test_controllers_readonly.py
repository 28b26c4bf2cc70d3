"""Controllers read the store without copies: they must never change a stored object in place,
and skipping a settled pass must not hide any input change (objects, time, failure knobs)."""

from __future__ import annotations

import json
from typing import Any

from local.kubesim.clock import Clock
from local.kubesim.controllers import Controllers
from local.kubesim.schema import Schemas
from local.kubesim.store import Store

T0 = 1_800_000_000.0
KINDS = (("apps", "deployments"), ("apps", "replicasets"), ("", "pods"), ("", "namespaces"))


def _setup(n: int = 3) -> tuple[Store, Clock, Controllers, Any]:
    clock = Clock(start=T0, paused=True)
    store = Store(Schemas(), clock)
    deps = store.types.lookup("apps", "v1", "deployments")
    for i in range(n):
        store.create(deps, "default", {"metadata": {"name": f"d{i}"}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": f"d{i}"}},
            "template": {"metadata": {"labels": {"app": f"d{i}"}},
                         "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}, manager="t")
    return store, clock, Controllers(store, clock), deps


def _stored(store: Store) -> list[tuple[dict[str, Any], bytes]]:
    out = []
    for group, plural in KINDS:
        rt = store.types.lookup(group, "v1", plural)
        items, _, _ = store.list(rt, copy=False)
        out += [(obj, json.dumps(obj)) for obj in items]
    return out


def test_list_without_copy_returns_the_stored_objects_read_only() -> None:
    store, _, _, deps = _setup(1)
    fresh, rv, _ = store.list(deps, copy=False)
    again, rv2, _ = store.list(deps, copy=False)
    copied, _, _ = store.list(deps)
    assert rv == rv2 and fresh[0] is again[0] and copied[0] is not fresh[0] and copied == fresh
    snapshot = json.dumps(fresh[0])
    store.patch(deps, "default", "d0", "application/merge-patch+json", {"spec": {"replicas": 2}}, manager="t")
    assert json.dumps(fresh[0]) == snapshot  # a write stores a new object, the old view is unchanged
    assert store.list(deps, copy=False)[0][0]["spec"]["replicas"] == 2


def test_reconcile_never_mutates_stored_objects() -> None:
    store, clock, ctl, deps = _setup()
    for step in (0.0, 1.0, 1.0, 5.0):
        clock.advance(step)
        before = _stored(store)
        ctl.reconcile()
        assert all(json.dumps(obj) == snap for obj, snap in before)
    store.patch(deps, "default", "d1", "application/merge-patch+json",
                {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}},
                manager="t")
    for _ in range(6):
        clock.advance(2.0)
        before = _stored(store)
        ctl.reconcile()
        assert all(json.dumps(obj) == snap for obj, snap in before)
    assert ctl.reconcile() == 0


def test_settled_pass_reacts_to_client_writes_failures_and_time() -> None:
    store, clock, ctl, deps = _setup(1)
    pods = store.types.lookup("", "v1", "pods")
    ctl.reconcile()
    clock.advance(3)
    ctl.reconcile()
    assert ctl.reconcile() == 0  # settled
    dep = store.get(deps, "default", "d0")
    assert dep["status"]["readyReplicas"] == 1
    # a client write at the same simulated time
    store.patch(deps, "default", "d0", "application/merge-patch+json", {"spec": {"replicas": 2}}, manager="t")
    assert ctl.reconcile() > 0
    assert len(store.list(pods)[0]) == 2
    assert ctl.reconcile() == 0
    # a failure knob at the same simulated time: pods turn unready
    ctl.fail_image("nginx", "NeverReady")
    assert ctl.reconcile() > 0
    assert ctl.reconcile() == 0
    assert all(not c["ready"] for p in store.list(pods)[0] for c in p["status"]["containerStatuses"])
    ctl.clear_failures()
    assert ctl.reconcile() > 0
    # time alone: a new pod becomes Ready only once the clock moves
    store.patch(deps, "default", "d0", "application/merge-patch+json", {"spec": {"replicas": 3}}, manager="t")
    ctl.reconcile()
    assert ctl.reconcile() == 0
    assert store.get(deps, "default", "d0")["status"].get("readyReplicas") == 1  # only the first pod is 2 s old
    clock.advance(3)
    assert ctl.reconcile() > 0
    assert store.get(deps, "default", "d0")["status"]["readyReplicas"] == 3
