"""The sync request body (revision, prune, dryRun, resources, syncOptions), one operation at a
time, and app deletion (cascade, the resources finalizer, Delete=false, PostDelete hooks), all
through the API on the local stack (moto server, kubesim over HTTPS, git over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application, synced_healthy

CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
{annotations}data:
  key: "{value}"
"""


def config(name: str, value: str = "v", annotations: dict[str, str] | None = None,
           finalizers: list[str] | None = None) -> str:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {"key": value}}
    if annotations:
        doc["metadata"]["annotations"] = annotations
    if finalizers:
        doc["metadata"]["finalizers"] = finalizers
    return yaml.safe_dump(doc)


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.register_cluster("local")
        yield w


def _app(world: LocalWorld, name: str, files: dict[str, str], *, automated: bool = False,
         edit: Any = None) -> str:
    repo = world.git.make_repo(name, files)
    manifest = yaml.safe_load(application(name, repo, world.kube.url, automated=automated, path="app",
                                          namespace=name))
    if edit:
        edit(manifest)
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(manifest))
    world.settle()
    return repo


def _core(world: LocalWorld) -> Any:
    from kubernetes import client

    return client.CoreV1Api(world.k8s)


def _config_map(world: LocalWorld, namespace: str, name: str) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return _core(world).read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        assert exc.status == 404
        return None


def _deployment(world: LocalWorld, namespace: str, name: str = "guestbook-ui") -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return world.deployment(namespace, name)
    except ApiException as exc:
        assert exc.status == 404
        return None


def _versions(world: LocalWorld, namespace: str) -> dict[str, str]:
    """resourceVersion of every object of the app's kinds in ``namespace``."""
    from kubernetes import client

    apps, core = client.AppsV1Api(world.k8s), _core(world)
    out = {f"Deployment/{d.metadata.name}": d.metadata.resource_version
           for d in apps.list_namespaced_deployment(namespace).items}
    out.update({f"Service/{s.metadata.name}": s.metadata.resource_version
                for s in core.list_namespaced_service(namespace).items})
    out.update({f"ConfigMap/{c.metadata.name}": c.metadata.resource_version
                for c in core.list_namespaced_config_map(namespace).items})
    return out


def _operation(world: LocalWorld, app: str) -> dict[str, Any]:
    return world.status(app).get("operationState") or {}


def _results(op: dict[str, Any]) -> dict[str, str]:
    return {f"{r['kind']}/{r['name']}": r.get("message") or "" for r in (op.get("syncResult") or {}).get("resources", [])}


def _history(world: LocalWorld, app: str) -> list[dict[str, Any]]:
    return world.api_ok("GET", f"/api/v1/applications/{app}/history")["items"]


def _sync(world: LocalWorld, app: str, body: Any = None) -> tuple[int, Any]:
    return world.call("POST", f"/api/v1/applications/{app}/sync", body if body is not None else {})


# ---------------------------------------------------------------------- dry run


def test_dry_run_sync_leaves_the_cluster_untouched_and_reports_what_would_change(world: LocalWorld) -> None:
    app = "dryrun"
    _app(world, app, {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                      "app/svc.yaml": SERVICE})
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("first sync", synced_healthy(world, app))
    world.git.commit(app, {"app/deploy.yaml": DEPLOYMENT.format(replicas=3, image="nginx:1.28"),
                           "app/extra.yaml": config("extra")}, "change everything", delete=["app/svc.yaml"])
    before = _versions(world, app)
    history = _history(world, app)

    status, answer = _sync(world, app, {"dryRun": True, "prune": True})
    assert status == 202, answer
    assert answer["dryRun"] is True
    world.settle()

    op = _operation(world, app)
    assert op["phase"] == "Succeeded", op
    assert op["operation"]["sync"]["dryRun"] is True
    results = _results(op)
    assert results["Deployment/guestbook-ui"] == "configured (dry run)", results
    assert results["ConfigMap/extra"] == "created (dry run)", results
    assert results["Service/guestbook-ui"] == "pruned (dry run)", results
    assert _versions(world, app) == before  # nothing created, changed or deleted
    assert _deployment(world, app).spec.replicas == 1
    assert _history(world, app) == history  # an operation, not a deployment
    audit = world.api_ok("GET", "/api/v1/audit")["items"]
    assert any(e["action"] == "app.sync" and e["target"] == app and e["details"].get("dryRun") for e in audit), audit


def test_dry_run_of_an_app_never_synced_into_a_namespace_it_would_create(world: LocalWorld) -> None:
    from kubernetes.client.exceptions import ApiException

    app = "dryfresh"
    _app(world, app, {"app/cm.yaml": config("c")})
    assert _sync(world, app, {"dryRun": True})[0] == 202
    world.settle()
    op = _operation(world, app)
    assert op["phase"] == "Succeeded", op
    assert _results(op)["ConfigMap/c"] == "created (dry run): its namespace is created by this sync"
    assert _results(op)[f"Namespace/{app}"] == "namespace created (dry run)"
    with pytest.raises(ApiException) as err:
        _core(world).read_namespace(app)
    assert err.value.status == 404  # CreateNamespace was a dry run too


def test_a_dry_run_does_not_count_as_synced_for_automation(world: LocalWorld) -> None:
    """Automated (no selfHeal) syncs a commit once; a dry run at that commit must not stand in
    for the real sync."""
    app = "dryauto"
    repo = _app(world, app, {"app/cm.yaml": config("settings", "one")})
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("first sync", synced_healthy(world, app))
    world.git.commit(app, {"app/cm.yaml": config("settings", "two")}, "two")
    assert _sync(world, app, {"dryRun": True})[0] == 202
    world.settle()
    assert _results(_operation(world, app))["ConfigMap/settings"] == "configured (dry run)"
    assert _config_map(world, app, "settings").data["key"] == "one"

    manifest = yaml.safe_load(application(app, repo, world.kube.url, automated=False, path="app", namespace=app))
    manifest["spec"]["syncPolicy"]["automated"] = {"prune": False, "selfHeal": False}
    world.api_ok("POST", "/api/v1/applications?upsert=true", yaml.safe_dump(manifest))
    world.settle()
    world.until("automation synced the commit the dry run previewed",
                lambda: _config_map(world, app, "settings").data["key"] == "two")
    assert _operation(world, app)["initiatedBy"].get("automated") is True


# ---------------------------------------------------------------------- selective sync, prune, syncOptions


def test_selective_sync_applies_only_the_named_resource(world: LocalWorld) -> None:
    app = "selective"
    _app(world, app, {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                      "app/svc.yaml": SERVICE, "app/a.yaml": config("a"), "app/b.yaml": config("b")})
    status, answer = _sync(world, app, {"resources": [{"kind": "ConfigMap", "name": "nope", "namespace": app},
                                                      {"kind": "Secret", "name": "a"}]})
    assert status == 400, answer
    assert "resources[0]: ConfigMap selective/nope is not a resource" in answer["problems"][0]
    assert answer["problems"][1].startswith("resources[1]: Secret a is not a resource")

    status, answer = _sync(world, app, {"resources": [{"group": "", "kind": "ConfigMap", "name": "a"}]})
    assert status == 202, answer
    assert answer["resources"] == [{"group": "", "kind": "ConfigMap", "namespace": app, "name": "a"}]
    world.settle()
    op = _operation(world, app)
    assert op["phase"] == "Succeeded", op
    assert _config_map(world, app, "a") is not None
    assert _config_map(world, app, "b") is None
    assert _deployment(world, app) is None
    assert not world.service_exists(app, "guestbook-ui")
    assert set(_results(op)) == {"Namespace/selective", "ConfigMap/a"}
    assert op["operation"]["sync"]["resources"] == [{"group": "", "kind": "ConfigMap", "namespace": app, "name": "a"}]

    # Selective prune: only the named object that left Git goes; the other one stays.
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("all synced", synced_healthy(world, app))
    world.git.commit(app, {}, "drop a and b", delete=["app/a.yaml", "app/b.yaml"])
    world.api_ok("POST", f"/api/v1/applications/{app}/refresh")
    world.settle()
    assert _sync(world, app, {"prune": True, "resources": [{"kind": "ConfigMap", "name": "b", "namespace": app}]})[0] == 202
    world.settle()
    assert _config_map(world, app, "b") is None
    assert _config_map(world, app, "a") is not None
    assert _deployment(world, app) is not None


def test_prune_in_the_request_prunes_although_automated_prune_is_off(world: LocalWorld) -> None:
    app = "bodyprune"
    _app(world, app, {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"), "app/svc.yaml": SERVICE})
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("synced", synced_healthy(world, app))
    world.git.commit(app, {}, "drop the service", delete=["app/svc.yaml"])

    assert _sync(world, app)[0] == 202  # prune not asked for: the Service stays, reported
    world.settle()
    assert world.service_exists(app, "guestbook-ui")
    skipped = [r for r in _operation(world, app)["syncResult"]["resources"] if r["kind"] == "Service"]
    assert skipped and skipped[0]["status"] == "PruneSkipped", skipped

    status, answer = _sync(world, app, {"prune": True})
    assert status == 202 and answer["prune"] is True
    world.settle()
    assert not world.service_exists(app, "guestbook-ui")
    pruned = [r for r in _operation(world, app)["syncResult"]["resources"] if r["kind"] == "Service"]
    assert pruned[0]["status"] == "Pruned"


def test_sync_options_of_the_request_replace_the_apps_for_that_operation(world: LocalWorld) -> None:
    app = "syncopts"

    def without_create_namespace(manifest: dict[str, Any]) -> None:
        manifest["spec"]["syncPolicy"]["syncOptions"] = []

    _app(world, app, {"app/cm.yaml": config("c")}, edit=without_create_namespace)
    status, answer = _sync(world, app, {"syncOptions": ["CreateNamespace=maybe"]})
    assert status == 400 and answer["problems"][0].startswith("syncOptions: unsupported sync option"), answer
    assert _sync(world, app)[0] == 202  # the app's own options: no namespace, so the sync fails
    world.settle()
    op = _operation(world, app)
    assert op["phase"] == "Failed" and "syncopts" in op["message"], op

    status, answer = _sync(world, app, {"syncOptions": {"items": ["CreateNamespace=true"]}})  # Argo CD's REST shape
    assert status == 202, answer
    world.settle()
    op = _operation(world, app)
    assert op["phase"] == "Succeeded", op
    assert op["operation"]["sync"]["syncOptions"] == ["CreateNamespace=true"]
    assert _config_map(world, app, "c") is not None
    spec = world.api_ok("GET", f"/api/v1/applications/{app}")["spec"]
    assert spec["syncPolicy"].get("syncOptions", []) == []  # the app itself is unchanged


def test_sync_request_fields_are_checked(world: LocalWorld) -> None:
    app = "badbody"
    _app(world, app, {"app/cm.yaml": config("c")})
    status, answer = _sync(world, app, {"dryrun": True, "strategy": {"hook": {}}, "prune": "yes",
                                        "resources": [{"kind": "ConfigMap", "nam": "c"}]})
    assert status == 400, answer
    problems = answer["problems"]
    assert "dryrun: unknown field" in problems
    assert "strategy: not supported by gitferry" in problems
    assert "prune: must be true or false" in problems
    assert "resources[0].nam: unknown field" in problems and "resources[0].name: field required" in problems
    assert _operation(world, app) == {}


def test_sync_of_a_revision_and_of_one_that_does_not_exist(world: LocalWorld) -> None:
    app = "revision"
    _app(world, app, {"app/cm.yaml": config("c", "one")})
    first = world.git.commit(app, {"app/cm.yaml": config("c", "two")}, "two")
    world.git.commit(app, {"app/cm.yaml": config("c", "three")}, "three")
    status, answer = _sync(world, app, {"revision": "no-such-branch"})
    assert status == 422, answer
    assert "no-such-branch" in answer["message"] and "not found" in answer["message"]
    assert _operation(world, app) == {}

    status, answer = _sync(world, app, {"revision": first})  # a commit that is no branch tip
    assert status == 202 and answer["revision"] == first, answer
    world.settle()
    assert _config_map(world, app, "c").data["key"] == "two"
    assert _history(world, app)[-1]["revision"] == first


# ---------------------------------------------------------------------- one operation at a time


def test_a_second_sync_is_refused_while_one_is_requested_or_running(world: LocalWorld) -> None:
    app = "busy"
    _app(world, app, {"app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
                      "app/later.yaml": config("later", annotations={"argocd.argoproj.io/sync-wave": "1"})})
    assert _sync(world, app)[0] == 202
    status, answer = _sync(world, app)  # the first one is still in the queues
    assert status == 409, answer
    assert answer["message"] == "another operation is already in progress"
    world.settle()
    world.until("synced", synced_healthy(world, app))
    assert len(_history(world, app)) == 1  # one request, one deployment

    world.git.commit(app, {"app/deploy.yaml": DEPLOYMENT.format(replicas=2, image="nginx:1.28")}, "roll")
    world.kube.pause_controllers()  # the Deployment cannot become healthy: the operation waits at wave 1
    try:
        assert _sync(world, app)[0] == 202
        world.settle()
        op = _operation(world, app)
        assert op["phase"] == "Running", op
        status, answer = _sync(world, app)
        assert status == 409 and "in progress" in answer["message"], answer
        status, answer = world.call("POST", f"/api/v1/applications/{app}/rollback/1")
        assert status == 409, answer
    finally:
        world.kube.resume_controllers()
    world.until("finished", lambda: _operation(world, app)["phase"] == "Succeeded")
    assert len(_history(world, app)) == 2
    assert _sync(world, app)[0] == 202  # free again once it finished
    world.settle()


def test_a_request_that_ends_without_an_operation_gives_the_app_back(world: LocalWorld) -> None:
    """A render error ends the chain before any operation: the next sync must not be refused."""
    app = "giveback"
    _app(world, app, {"app/cm.yaml": config("c")})
    world.git.commit(app, {"app/broken.yaml": "kind: [unclosed\n"}, "broken")
    assert _sync(world, app)[0] == 202
    world.settle()
    assert [c["type"] for c in world.status(app)["conditions"]] == ["ComparisonError"]
    world.git.commit(app, {}, "fixed", delete=["app/broken.yaml"])
    status, answer = _sync(world, app)
    assert status == 202, answer
    world.settle()
    assert _config_map(world, app, "c") is not None


def test_rollback_deploys_the_source_recorded_with_the_entry(world: LocalWorld) -> None:
    """Argo CD's rollback: the history entry's revision *and* source. After the spec's path
    changed, rolling back to an entry of the old path applies the old path's objects (not the
    new path at the old commit), records that source in the new entry and the operation, and
    the next comparison against the spec shows OutOfSync (automation is off for a rollback)."""
    app = "rollsource"
    _app(world, app, {"app/cm.yaml": config("c", "from-app"), "next/cm.yaml": config("c", "from-next")})
    assert _sync(world, app)[0] == 202
    world.settle()
    first = _history(world, app)[-1]
    assert first["source"]["path"] == "app" and _config_map(world, app, "c").data == {"key": "from-app"}
    spec = world.api_ok("GET", f"/api/v1/applications/{app}")
    spec["spec"]["source"]["path"] = "next"
    world.api_ok("PUT", f"/api/v1/applications/{app}", {k: spec[k] for k in ("apiVersion", "kind", "metadata", "spec")
                                                         if k in spec})
    world.settle()
    assert _sync(world, app)[0] == 202
    world.settle()
    assert _history(world, app)[-1]["source"]["path"] == "next"
    assert _config_map(world, app, "c").data == {"key": "from-next"}

    world.api_ok("POST", f"/api/v1/applications/{app}/rollback/{first['id']}")
    world.settle()
    op = _operation(world, app)
    assert op["phase"] == "Succeeded", op
    assert op["syncResult"]["source"]["path"] == "app" and op["syncResult"]["revision"] == first["revision"], op
    assert _history(world, app)[-1]["source"]["path"] == "app"
    assert _config_map(world, app, "c").data == {"key": "from-app"}  # the old path's object, not next/
    world.api_ok("POST", f"/api/v1/applications/{app}/refresh")
    world.settle()
    assert world.status(app)["sync"]["status"] == "OutOfSync"  # the spec still says "next"
    assert world.status(app)["sync"]["comparedTo"]["source"]["path"] == "next"


# ---------------------------------------------------------------------- deletion


def _gone(world: LocalWorld, app: str) -> bool:
    return world.call("GET", f"/api/v1/applications/{app}")[0] == 404


def test_cascade_delete_with_the_finalizer_deletes_in_reverse_wave_order_then_the_app(world: LocalWorld) -> None:
    from kubernetes.client.exceptions import ApiException

    app = "cascade"
    hold = "example.com/hold"  # a finalizer of someone else's controller: the object stays until it is removed

    def with_finalizer(manifest: dict[str, Any]) -> None:
        manifest["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]

    _app(world, app, {
        "app/deploy.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.27"),
        "app/late.yaml": config("late", annotations={"argocd.argoproj.io/sync-wave": "2"}, finalizers=[hold]),
        "app/keep.yaml": config("keep", annotations={"argocd.argoproj.io/sync-options": "Delete=false",
                                                     "argocd.argoproj.io/sync-wave": "3"}),
    }, edit=with_finalizer)
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("synced", synced_healthy(world, app))

    status, answer = world.call("DELETE", f"/api/v1/applications/{app}")  # cascade by default
    assert status == 202, answer
    assert answer["cascade"] is True and answer["propagationPolicy"] == "foreground"
    world.settle()
    # Wave 2 is being deleted and holds the deletion: wave 0 is not touched yet.
    late = _config_map(world, app, "late")
    assert late is not None and late.metadata.deletion_timestamp is not None
    deployment = _deployment(world, app)
    assert deployment is not None and deployment.metadata.deletion_timestamp is None
    shown = world.api_ok("GET", f"/api/v1/applications/{app}")
    assert shown["metadata"]["deletionTimestamp"]
    assert shown["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    assert any(a["metadata"]["name"] == app and a["metadata"].get("deletionTimestamp")
               for a in world.api_ok("GET", "/api/v1/applications")["items"])
    assert _sync(world, app)[0] == 409  # nothing is synced into an app being deleted
    world.tick()
    assert _deployment(world, app) is not None and not _gone(world, app)

    _core(world).patch_namespaced_config_map("late", app, {"metadata": {"finalizers": None}})
    world.until("app deleted", lambda: _gone(world, app))
    assert _deployment(world, app) is None
    assert _config_map(world, app, "late") is None
    assert _config_map(world, app, "keep") is not None  # Delete=false
    trail = world.api_ok("GET", "/api/v1/audit")["items"]
    actions = [e["action"] for e in trail if e["target"] == app]
    assert "app.deleted" in actions and "app.delete" in actions
    try:
        _core(world).read_namespace(app)  # namespaces gitferry created are not the app's to delete
    except ApiException as exc:  # pragma: no cover - the assertion explains
        raise AssertionError("the destination namespace was deleted") from exc


def hook_job(name: str, hook: str, image: str = "busybox:1", policy: str = "HookFailed") -> str:
    return yaml.safe_dump({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/hook": hook,
                                                   "argocd.argoproj.io/hook-delete-policy": policy}},
        "spec": {"backoffLimit": 0,
                 "template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": image, "command": ["true"]}]}}},
    })


def test_pre_and_post_delete_hooks_run_around_the_deletion(world: LocalWorld) -> None:
    from kubernetes import client

    app = "posthook"
    _app(world, app, {"app/cm.yaml": config("c"), "app/cleanup.yaml": hook_job("cleanup", "PostDelete"),
                      "app/backup.yaml": hook_job("backup", "PreDelete")})
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("synced", synced_healthy(world, app))
    batch = client.BatchV1Api(world.k8s)
    assert batch.list_namespaced_job(app).items == []  # not a sync hook: nothing ran at sync

    assert world.call("DELETE", f"/api/v1/applications/{app}?cascade=true")[0] == 202
    world.until("app deleted", lambda: _gone(world, app))
    assert _config_map(world, app, "c") is None
    jobs = {j.metadata.name: j for j in batch.list_namespaced_job(app).items}
    assert set(jobs) == {"backup", "cleanup"}  # kept once done: their policy is HookFailed
    assert jobs["backup"].status.succeeded == 1 and jobs["cleanup"].status.succeeded == 1
    # PreDelete finished before the app's objects went, PostDelete started after.
    assert jobs["backup"].status.completion_time <= jobs["cleanup"].metadata.creation_timestamp


def test_a_failed_pre_delete_hook_stops_the_deletion_and_says_why(world: LocalWorld) -> None:
    app = "prefail"
    _app(world, app, {"app/cm.yaml": config("c"), "app/backup.yaml": hook_job("backup", "PreDelete", "example/fail:1")})
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("synced", synced_healthy(world, app))
    assert world.call("DELETE", f"/api/v1/applications/{app}")[0] == 202
    world.until("DeletionError", lambda: any(c["type"] == "DeletionError" for c in world.status(app).get("conditions", [])))
    condition = next(c for c in world.status(app)["conditions"] if c["type"] == "DeletionError")
    assert condition["message"].startswith("PreDelete hooks failed:"), condition
    assert "prefail/backup failed: Job has reached the specified backoff limit" in condition["message"], condition
    assert _config_map(world, app, "c") is not None  # nothing of the app was deleted
    assert world.api_ok("GET", f"/api/v1/applications/{app}")["metadata"]["deletionTimestamp"]
    # The way out, as in Argo CD (remove the finalizer): forget the app, leave its objects.
    status, answer = world.call("DELETE", f"/api/v1/applications/{app}?cascade=false")
    assert status == 200, answer
    assert _gone(world, app) and _config_map(world, app, "c") is not None


def test_delete_without_cascade_leaves_the_objects(world: LocalWorld) -> None:
    app = "nocascade"

    def with_finalizer(manifest: dict[str, Any]) -> None:
        manifest["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]

    _app(world, app, {"app/cm.yaml": config("c")}, edit=with_finalizer)
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("synced", synced_healthy(world, app))
    status, answer = world.call("DELETE", f"/api/v1/applications/{app}?cascade=false")
    assert status == 200 and answer == {"deleted": app, "cascade": False}, answer
    world.settle()
    assert _gone(world, app)
    assert _config_map(world, app, "c") is not None


def test_delete_of_a_missing_app_is_404_and_bad_parameters_are_400(world: LocalWorld) -> None:
    status, answer = world.call("DELETE", "/api/v1/applications/never-was")
    assert status == 404, answer
    assert "never-was" in answer["message"]
    assert not [e for e in world.api_ok("GET", "/api/v1/audit")["items"] if e["target"] == "never-was"]
    _app(world, "params", {"app/cm.yaml": config("c")})
    status, answer = world.call("DELETE", "/api/v1/applications/params?cascade=maybe&orphan=1")
    assert status == 400, answer
    assert answer["problems"] == ["orphan: unknown query parameter", "cascade: 'maybe' is not true or false"]
    assert not _gone(world, "params")


def test_unknown_finalizers_are_refused(world: LocalWorld) -> None:
    repo = world.git.make_repo("finalizers", {"app/cm.yaml": config("c")})
    manifest = yaml.safe_load(application("finalizers", repo, world.kube.url, automated=False, path="app"))
    manifest["metadata"]["finalizers"] = ["example.com/other"]
    status, answer = world.call("POST", "/api/v1/applications", yaml.safe_dump(manifest))
    assert status == 400, answer
    assert "metadata.finalizers" in answer["problems"][0] and "not supported by gitferry" in answer["problems"][0]


def test_an_operation_whose_apply_died_does_not_block_syncs_forever(world: LocalWorld) -> None:
    """The apply Lambda timed out after recording Running: nothing will finish that operation.
    While its lease lasts a sync is refused; once the lease has expired a sync takes over."""
    import json
    import time as _time

    app = "orphan"
    _app(world, app, {"app/cm.yaml": config("c", "one")})
    assert _sync(world, app)[0] == 202
    world.settle()
    world.until("synced", synced_healthy(world, app))
    ddb = world.stack.resources.client("dynamodb")
    table = world.stack.resources.tables["StateTable"]
    key = {"pk": {"S": f"APP#{app}"}, "sk": {"S": "STATUS"}}
    doc = json.loads(ddb.get_item(TableName=table, Key=key)["Item"]["statusDoc"]["S"])
    doc["operationState"].update(phase="Running", message="sync started")
    doc["operationState"].pop("finishedAt", None)
    ddb.update_item(TableName=table, Key=key, UpdateExpression="SET statusDoc = :d, opPhase = :p",
                    ExpressionAttributeValues={":d": {"S": json.dumps(doc)}, ":p": {"S": "Running"}})
    lease = {"pk": {"S": f"APP#{app}"}, "sk": {"S": "OPERATION"}, "opId": {"S": "dead"},
             "expiresAt": {"N": str(int(_time.time()) + 600)}, "acquiredAt": {"N": str(int(_time.time()))}}
    ddb.put_item(TableName=table, Item=lease)
    world.git.commit(app, {"app/cm.yaml": config("c", "two")}, "two")

    status, answer = _sync(world, app)
    assert status == 409, answer  # its lease still says someone runs it

    ddb.put_item(TableName=table, Item={**lease, "expiresAt": {"N": str(int(_time.time()) - 1)}})
    status, answer = _sync(world, app)
    assert status == 202, answer
    world.settle()
    assert _operation(world, app)["phase"] == "Succeeded"
    assert _config_map(world, app, "c").data["key"] == "two"
