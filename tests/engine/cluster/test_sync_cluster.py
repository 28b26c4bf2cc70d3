"""run_sync() against kubesim: create namespace, apply, prune only what we own, failures, waves."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from gitferry import kube, sync, tracking


def cm(name: str, wave: int | None = None, **annotations: str) -> dict[str, Any]:
    ann = dict(annotations)
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": ann}, "data": {"n": name}}


def deployment(name: str, wave: int = 0, image: str = "nginx:1.27") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": str(wave)}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def run(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]], **kwargs: Any) -> sync.SyncResult:
    live = cluster.list_by_label(tracking.label_selector(app))
    options: dict[str, Any] = {"prune": True, "create_namespace": False, "namespace": ns}
    options.update(kwargs)
    return sync.run_sync(cluster, app, desired, live, **options)


def statuses(result: sync.SyncResult) -> dict[str, tuple[str, str]]:
    return {f"{r.kind}/{r.name}": (r.status, r.message) for r in result.resources}


def wait_gone(cluster: kube.ClusterClient, kind: str, name: str, ns: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cluster.get("v1", kind, name, ns) is None:
            return True
        time.sleep(0.1)
    return False


def test_create_namespace_apply_and_stamp(cluster: kube.ClusterClient, app_name: str) -> None:
    ns = f"n-{uuid.uuid4().hex[:8]}"
    result = run(cluster, app_name, ns, [cm("a"), deployment("web")], create_namespace=True)
    assert result.phase == "Succeeded", result.message
    assert statuses(result) == {"Namespace/" + ns: ("Synced", "namespace created"), "ConfigMap/a": ("Synced", "created"),
                                "Deployment/web": ("Synced", "created")}
    live = cluster.get("v1", "ConfigMap", "a", ns)
    assert live is not None
    assert live["metadata"]["labels"][tracking.APP_LABEL] == app_name
    assert tracking.is_owned(app_name, live)
    assert {m["manager"] for m in live["metadata"]["managedFields"]} == {"gitferry"}
    again = run(cluster, app_name, ns, [cm("a"), deployment("web")])
    assert statuses(again)["ConfigMap/a"] == ("Synced", "unchanged")


def test_without_create_namespace_a_missing_namespace_fails_per_resource(cluster: kube.ClusterClient, app_name: str) -> None:
    ns = f"n-{uuid.uuid4().hex[:8]}"
    result = run(cluster, app_name, ns, [cm("a")])
    assert result.phase == "Failed"
    status, message = statuses(result)["ConfigMap/a"]
    assert status == "SyncFailed" and "NotFound" in message
    assert f"ConfigMap v1 {ns}/a" in result.message


def test_prune_removes_only_owned_objects(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    assert run(cluster, app_name, namespace, [cm("keep"), cm("old")]).phase == "Succeeded"
    old = cluster.get("v1", "ConfigMap", "old", namespace)
    copied = copy.deepcopy(old)  # a copy keeps label and annotation of "old"
    copied["metadata"] = {"name": "old-copy", "namespace": namespace, "labels": old["metadata"]["labels"],
                          "annotations": old["metadata"]["annotations"]}
    copied["data"] = {"n": "copy"}
    cluster.server_side_apply(copied, field_manager="kubectl")
    foreign = tracking.stamp("another-app", dict(cm("theirs"), metadata={"name": "theirs", "namespace": namespace}))
    foreign["metadata"]["labels"][tracking.APP_LABEL] = app_name  # even with our label
    cluster.server_side_apply(foreign, field_manager="argocd-controller")

    result = run(cluster, app_name, namespace, [cm("keep")])
    assert result.phase == "Succeeded", result.message
    assert statuses(result) == {"ConfigMap/keep": ("Synced", "unchanged"), "ConfigMap/old": ("Pruned", "pruned")}
    assert wait_gone(cluster, "ConfigMap", "old", namespace)
    assert cluster.get("v1", "ConfigMap", "old-copy", namespace) is not None
    assert cluster.get("v1", "ConfigMap", "theirs", namespace) is not None


def test_prune_disabled_or_refused_by_annotation(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    desired = [cm("keep"), cm("old"), cm("precious", **{"argocd.argoproj.io/sync-options": "Prune=false"})]
    assert run(cluster, app_name, namespace, desired).phase == "Succeeded"
    result = run(cluster, app_name, namespace, [cm("keep")], prune=False)
    assert result.phase == "Succeeded"
    assert statuses(result)["ConfigMap/old"] == ("PruneSkipped", "ignored (requires pruning)")
    assert "require pruning" in result.message
    result = run(cluster, app_name, namespace, [cm("keep")], prune=True)
    assert statuses(result)["ConfigMap/precious"] == ("PruneSkipped", "ignored (Prune=false)")
    assert statuses(result)["ConfigMap/old"] == ("Pruned", "pruned")
    assert cluster.get("v1", "ConfigMap", "precious", namespace) is not None


def test_a_failed_dry_run_applies_nothing(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    broken = deployment("broken")
    del broken["spec"]["selector"]
    result = run(cluster, app_name, namespace, [cm("first", wave=0), broken, cm("later", wave=1)])
    assert result.phase == "Failed"
    assert result.message.startswith("the dry run of the sync failed, nothing was applied: Deployment.apps ")
    st = statuses(result)
    assert st["Deployment/broken"][0] == "SyncFailed" and "Invalid" in st["Deployment/broken"][1]
    assert "ConfigMap/first" not in st
    assert cluster.get("v1", "ConfigMap", "first", namespace) is None
    assert cluster.get("v1", "ConfigMap", "later", namespace) is None


def test_failure_is_recorded_and_later_waves_do_not_run(cluster: kube.ClusterClient, app_name: str) -> None:
    # Objects in a namespace the sync itself creates cannot be dry-run: their failure shows at apply.
    ns = f"n-{uuid.uuid4().hex[:8]}"
    broken = deployment("broken")
    del broken["spec"]["selector"]
    namespace_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    result = run(cluster, app_name, ns, [namespace_obj, cm("first", wave=0), broken, cm("later", wave=1)])
    assert result.phase == "Failed"
    st = statuses(result)
    assert st["ConfigMap/first"] == ("Synced", "created")
    assert st["Deployment/broken"][0] == "SyncFailed" and "Invalid" in st["Deployment/broken"][1]
    assert st["ConfigMap/later"] == ("SyncFailed", "not attempted: an earlier wave failed")
    assert "broken" in result.message
    assert cluster.get("v1", "ConfigMap", "later", ns) is None


def test_waves_pause_until_healthy_and_resume(kubesim: Any, cluster: kube.ClusterClient, namespace: str,
                                              app_name: str) -> None:
    desired = [deployment("db", wave=0), cm("after-db", wave=1)]
    kubesim.pause_controllers()
    try:
        first = run(cluster, app_name, namespace, desired, wait_between_waves=True)
    finally:
        kubesim.resume_controllers()
    assert first.phase == "Running", first.message
    assert first.resume_from == (1, 0, 0)  # waiting for wave 0 of the Sync phase
    assert "Deployment.apps " + namespace + "/db" in first.message
    assert cluster.get("v1", "ConfigMap", "after-db", namespace) is None
    deadline = time.monotonic() + 20
    second = first
    while time.monotonic() < deadline:
        second = run(cluster, app_name, namespace, desired, wait_between_waves=True, resume_from=first.resume_from)
        if second.phase != "Running":
            break
        time.sleep(0.3)
    assert second.phase == "Succeeded", second.message
    assert statuses(second) == {"ConfigMap/after-db": ("Synced", "created")}
    assert cluster.get("v1", "ConfigMap", "after-db", namespace) is not None


def test_dry_run_changes_nothing(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    result = run(cluster, app_name, namespace, [cm("a")], dry_run=True)
    assert result.phase == "Succeeded" and result.dry_run
    assert statuses(result)["ConfigMap/a"] == ("Synced", "created (dry run)")
    assert cluster.get("v1", "ConfigMap", "a", namespace) is None


def test_crd_and_its_custom_resources_in_one_sync(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    group = f"{app_name}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "size": {"type": "integer"}}}}}}}]}}
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    # the custom resource comes first in Git: ordering must still apply the CRD before it
    result = run(cluster, app_name, namespace, [widget, crd])
    assert result.phase == "Succeeded", result.message
    assert [f"{r.kind}/{r.name}" for r in result.resources] == [f"CustomResourceDefinition/widgets.{group}", "Widget/w1"]
    live = cluster.get(f"{group}/v1", "Widget", "w1", namespace)
    assert live is not None and live["spec"] == {"size": 3} and tracking.is_owned(app_name, live)
    found = {tracking.resource_key(o) for o in cluster.list_by_label(tracking.label_selector(app_name))}
    assert (group, "Widget", namespace, "w1") in found


def hook_job(name: str, hook: str, image: str = "busybox:1.36", policy: str | None = None) -> dict[str, Any]:
    ann = {"argocd.argoproj.io/hook": hook}
    if policy:
        ann["argocd.argoproj.io/hook-delete-policy"] = policy
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "annotations": ann},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                              "containers": [{"name": "m", "image": image}]}}}}


def sync_until_done(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]]) -> list[sync.SyncResult]:
    out = [run(cluster, app, ns, desired, wait_between_waves=True)]
    deadline = time.monotonic() + 30
    while out[-1].phase == "Running" and time.monotonic() < deadline:
        time.sleep(0.3)
        out.append(run(cluster, app, ns, desired, wait_between_waves=True, resume_from=out[-1].resume_from))
    return out


def test_presync_hook_runs_first_and_is_deleted_when_it_succeeded(cluster: kube.ClusterClient, namespace: str,
                                                                  app_name: str) -> None:
    desired = [cm("app-config"), hook_job("migrate", "PreSync", policy="HookSucceeded")]
    runs = sync_until_done(cluster, app_name, namespace, desired)
    assert runs[0].phase == "Running" and runs[0].resume_from == (0, 0, 0)
    assert statuses(runs[0]) == {"Job/migrate": ("Synced", "Job is running")}  # the ConfigMap waits for the hook
    assert [r.hook_phase for r in runs[0].resources] == ["Running"]
    assert runs[-1].phase == "Succeeded", runs[-1].message
    assert statuses(runs[-1])["ConfigMap/app-config"] == ("Synced", "created")
    assert wait_gone_job(cluster, "migrate", namespace)
    # a hook is not an app resource: never stamped, so never pruned or diffed as drift
    assert all(o["kind"] != "Job" for o in cluster.list_by_label(tracking.label_selector(app_name)))


def test_failed_hook_fails_the_sync(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    desired = [cm("app-config"), hook_job("migrate", "PreSync", image="busybox-fail:1")]
    runs = sync_until_done(cluster, app_name, namespace, desired)
    assert runs[-1].phase == "Failed", runs[-1].message
    assert "hook Job.batch" in runs[-1].message and "migrate failed" in runs[-1].message
    assert statuses(runs[-1])["Job/migrate"][0] == "SyncFailed"
    assert statuses(runs[-1])["ConfigMap/app-config"] == ("SyncFailed", "not attempted: an earlier wave failed")
    assert cluster.get("v1", "ConfigMap", "app-config", namespace) is None


def wait_gone_job(cluster: kube.ClusterClient, name: str, ns: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if cluster.get("batch/v1", "Job", name, ns) is None:
            return True
        time.sleep(0.1)
    return False
