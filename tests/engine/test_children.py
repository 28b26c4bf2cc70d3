"""App of apps building blocks: the child's ownership in the state table (moto server), the
validation of rendered Applications (file and field named), a child as an Application object,
and Argo CD's Application health check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gitferry import children, health, render
from gitferry.errors import RenderError
from gitferry.model import Application, AppStatus, Cluster, ComparedTo, HealthStatus, SyncStatus
from gitferry.state import StateStore

SERVER = "https://k8s.example"


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://git.example/w.git", "path": "app", "targetRevision": "HEAD"},
                 "destination": {"server": SERVER, "namespace": name}},
    }
    doc["spec"].update(spec)
    return doc


@pytest.fixture
def store(table: str, ddb: Any) -> StateStore:
    state = StateStore(table, client=ddb)
    state.put_cluster(Cluster(name="prod", server=SERVER))
    return state


def test_ownership_is_kept_on_update_listed_and_cleared(store: StateStore) -> None:
    child = Application.from_manifest(manifest("child"))
    store.put_app(child, owner="parent")
    store.put_app(Application.from_manifest(manifest("other")))
    assert [s.app.name for s in store.list_owned("parent")] == ["child"]
    # an update without owner (the API's upsert) keeps it: an UpdateItem, not a PutItem
    edited = Application.from_manifest(manifest("child", revisionHistoryLimit=3))
    store.put_app(edited, expected_version=1)
    stored = store.get_app("child")
    assert (stored.owner, stored.version, stored.app.spec.revision_history_limit) == ("parent", 2, 3)
    store.set_owner("child", None)
    assert store.get_app("child").owner is None and store.list_owned("parent") == []
    store.set_owner("child", "parent")
    store.delete_app("child")
    assert store.list_owned("parent") == []
    store.set_owner("gone", None)  # nothing to do, no error


def test_rendered_children_are_validated_naming_file_and_field(store: StateStore, tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    good = manifest("good")
    bad = manifest("bad")
    del bad["spec"]["destination"]
    (tmp_path / "apps" / "good.yaml").write_text(yaml.safe_dump(good))
    (tmp_path / "apps" / "bad.yaml").write_text(yaml.safe_dump(bad))
    rendered = render.render_directory(tmp_path, "apps")
    assert sorted(rendered, key=lambda o: o["metadata"]["name"]) == [bad, good]  # the objects as written
    with pytest.raises(RenderError) as err:
        children.check_rendered(store, "parent", rendered)
    assert str(err.value) == "apps/bad.yaml: Application 'bad': spec.destination: field required"
    children.check_rendered(store, "parent", [o for o in rendered if o["metadata"]["name"] == "good"])

    unknown = manifest("elsewhere", destination={"server": "https://nowhere.example", "namespace": "x"})
    with pytest.raises(RenderError, match="spec.destination: no cluster registered with server"):
        children.check_rendered(store, "parent", [unknown])
    with pytest.raises(RenderError, match="cannot render itself"):
        children.check_rendered(store, "parent", [manifest("parent")])
    with pytest.raises(RenderError, match="rendered twice"):
        children.check_rendered(store, "parent", [good, {**good, "metadata": {"name": "good", "namespace": "x"}}])
    hook = manifest("hooked")
    hook["metadata"]["annotations"] = {"argocd.argoproj.io/hook": "PreSync"}
    with pytest.raises(RenderError, match="not supported by gitferry"):
        children.check_rendered(store, "parent", [hook])


def test_child_manifest_drops_tracking_marks_and_server_fields() -> None:
    doc = manifest("c")
    doc["metadata"].update(labels={"gitferry.dev/app": "p"}, resourceVersion="3", uid="u",
                           annotations={"gitferry.dev/tracking-id": "p:argoproj.io/Application:argocd/c",
                                        "argocd.argoproj.io/sync-wave": "1"})
    doc["status"] = {"health": {"status": "Healthy"}}
    out = children.child_manifest(doc)
    assert out["metadata"] == {"name": "c", "namespace": "argocd", "annotations": {"argocd.argoproj.io/sync-wave": "1"}}
    assert "status" not in out and doc["metadata"]["uid"] == "u"  # the input is left alone


def _object(store: StateStore, status: AppStatus | None, **spec: Any) -> dict[str, Any]:
    app = Application.from_manifest(manifest("c", **spec))
    if not any(s.app.name == "c" for s in store.list_owned("p")):
        store.put_app(app, owner="p")
    return children.application_object(store.get_app("c"), status)


def test_application_health_is_argo_cds_check_with_the_status_caught_up(store: StateStore) -> None:
    automated = {"syncPolicy": {"automated": {"prune": True}}}
    obj = _object(store, None, **automated)
    assert health.resource_health(obj).status == "Progressing"  # no status yet: Argo CD's lua
    app = Application.from_manifest(manifest("c", **automated))
    compared = ComparedTo(source=app.spec.source, destination=app.spec.destination)
    healthy = AppStatus(sync=SyncStatus(status="Synced", compared_to=compared),
                        health=HealthStatus(status="Healthy"))
    obj = children.application_object(store.get_app("c"), healthy)
    assert health.resource_health(obj).status == "Healthy"
    assert obj["metadata"]["annotations"]["gitferry.dev/tracking-id"] == "p:argoproj.io/Application:argocd/c"
    degraded = healthy.model_copy(update={"health": HealthStatus(status="Degraded", message="crash")})
    assert health.resource_health(children.application_object(store.get_app("c"), degraded)) == \
        health.Health("Degraded", "crash")
    out_of_sync = healthy.model_copy(update={"sync": SyncStatus(status="OutOfSync", compared_to=compared)})
    assert health.resource_health(children.application_object(store.get_app("c"), out_of_sync)).status == \
        "Progressing"  # automated: its sync is on its way
    stale = healthy.model_copy(update={"sync": SyncStatus(status="Synced", compared_to=ComparedTo(
        source=app.spec.source.model_copy(update={"path": "old"}), destination=app.spec.destination))})
    assert health.resource_health(children.application_object(store.get_app("c"), stale)).message == \
        "waiting for the application's comparison at its current spec"
