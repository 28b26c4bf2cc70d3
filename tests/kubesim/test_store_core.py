"""Store rules that every write path shares (no HTTP): RVs, generation, no-op writes, watch filters.

The server and the controllers both go through these methods, so a rule broken here is
broken for every client; testing them directly keeps failures easy to locate.
"""

from __future__ import annotations

import pytest

from local.kubesim.clock import Clock
from local.kubesim.errors import ApiError
from local.kubesim.schema import Schemas
from local.kubesim.selectors import label_matcher, parse_label_selector
from local.kubesim.store import Store


@pytest.fixture
def store() -> Store:
    return Store(Schemas(), Clock())


def _deploy(name: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"a": name}},
                     "template": {"metadata": {"labels": {"a": name}},
                                  "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}


def test_rv_is_global_and_noop_writes_do_not_bump_it(store: Store) -> None:
    cms = store.types.lookup("", "v1", "configmaps")
    a = store.create(cms, "default", {"metadata": {"name": "a"}, "data": {"x": "1"}}, manager="m")
    b = store.create(cms, "default", {"metadata": {"name": "b"}}, manager="m")
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    same = store.update(cms, "default", "a", a, manager="m")
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    rv = store.resource_version
    store.patch(cms, "default", "a", "application/merge-patch+json", {"data": {"x": "1"}}, manager="m")
    assert store.resource_version == rv


def test_generation_only_on_spec_changes(store: Store) -> None:
    deps = store.types.lookup("apps", "v1", "deployments")
    d = store.create(deps, "default", _deploy("d"), manager="m")
    assert d["metadata"]["generation"] == 1 and d["spec"]["replicas"] == 1
    d = store.patch(deps, "default", "d", "application/merge-patch+json", {"metadata": {"labels": {"l": "1"}}},
                    manager="m")
    assert d["metadata"]["generation"] == 1
    d["status"] = {"replicas": 5}
    d = store.update(deps, "default", "d", d, manager="kube-controller-manager", subresource="status")
    assert d["metadata"]["generation"] == 1 and d["status"]["replicas"] == 5
    d = store.patch(deps, "default", "d", "application/merge-patch+json", {"spec": {"replicas": 2}, "status": {}},
                    manager="m")
    assert d["metadata"]["generation"] == 2 and d["status"]["replicas"] == 5  # main resource ignores status


def test_watch_turns_selector_transitions_into_added_and_deleted(store: Store) -> None:
    cms = store.types.lookup("", "v1", "configmaps")
    rv = store.resource_version
    w = store.watch(cms, "default", rv, label_selector="team=a")
    store.create(cms, "default", {"metadata": {"name": "x", "labels": {"team": "b"}}}, manager="m")
    store.patch(cms, "default", "x", "application/merge-patch+json", {"metadata": {"labels": {"team": "a"}}},
                manager="m")
    store.patch(cms, "default", "x", "application/merge-patch+json", {"metadata": {"labels": {"team": "c"}}},
                manager="m")
    store.create(cms, "kube-system",
                 {"metadata": {"name": "y", "labels": {"team": "a"}}}, manager="m")
    events = []
    while (ev := w.next(0.05)) is not None:
        events.append((ev[0], ev[1]["metadata"]["name"]))
    assert events == [("ADDED", "x"), ("DELETED", "x")]
    w.close()


def test_compacted_rv_is_expired(store: Store) -> None:
    cms = store.types.lookup("", "v1", "configmaps")
    store.create(cms, "default", {"metadata": {"name": "a"}}, manager="m")
    store.compact()
    with pytest.raises(ApiError) as exc:
        store.watch(cms, "default", 1)
    assert exc.value.code == 410


def test_label_selector_grammar() -> None:
    assert [r.op for r in parse_label_selector("a=b,c==d,e!=f,g in (h, i),j notin (k),l,!m")] == [
        "=", "=", "!=", "in", "notin", "exists", "!"]
    match = label_matcher("env in (prod),!legacy")
    assert match({"metadata": {"labels": {"env": "prod"}}})
    assert not match({"metadata": {"labels": {"env": "prod", "legacy": "1"}}})
    for bad in ("a b", "a in b", "=x", "a=(b"):
        with pytest.raises(ApiError):
            parse_label_selector(bad)
