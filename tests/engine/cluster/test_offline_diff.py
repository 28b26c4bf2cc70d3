"""The offline-first comparison (diff.offline_synced) against managedFields kubesim really wrote:
Synced without a request only when gitferry's own fields prove it; every doubt goes to the dry
run, which still names the change."""

from __future__ import annotations

import copy
from typing import Any

from cluster_objects import deployment_manifest, secret_manifest
from gitferry import diff, kube, sync, tracking


def _deployment() -> dict[str, Any]:
    dep = deployment_manifest()
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    return dep


def _applied(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]]) -> None:
    result = sync.run_sync(cluster, app, desired, cluster.list_by_label(tracking.label_selector(app)),
                           prune=True, create_namespace=False, namespace=ns)
    assert result.phase == "Succeeded", result.message


def _compare(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]]) -> diff.Comparison:
    return diff.compare(cluster, app, desired, cluster.list_by_label(tracking.label_selector(app)), namespace=ns)


def _one(comparison: diff.Comparison, kind: str) -> diff.ResourceDiff:
    return next(r for r in comparison.resources if r.kind == kind)


def test_quantities_in_another_notation_are_decided_offline(cluster: kube.ClusterClient, namespace: str,
                                                             app_name: str) -> None:
    # Git says cpu 0.5 and memory 1024Mi; the API server (kubesim as quantity.go) keeps the
    # canonical 500m and 1Gi
    _applied(cluster, app_name, namespace, [_deployment()])
    live = cluster.get("apps/v1", "Deployment", "web", namespace)
    assert live is not None
    requests = live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    git_requests = _deployment()["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert (git_requests["cpu"], git_requests["memory"]) == ("0.5", "1024Mi")
    assert (requests["cpu"], requests["memory"]) == ("500m", "1Gi")
    [desired] = tracking.prepare_desired(app_name, [_deployment()], namespace, lambda _v, _k: True)
    assert diff.offline_synced(desired, live) is True
    requests.update({"cpu": "501m"})
    assert diff.offline_synced(desired, live) is False
    requests.update({"cpu": "500m", "memory": "1073741824"})  # the same bytes, in another notation: a doubt
    assert diff.offline_synced(desired, live) is False


def test_a_changed_value_is_not_synced_offline_and_the_dry_run_names_it(cluster: kube.ClusterClient, namespace: str,
                                                                         app_name: str) -> None:
    _applied(cluster, app_name, namespace, [_deployment()])
    changed = _deployment()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    web = _one(_compare(cluster, app_name, namespace, [changed]), "Deployment")
    assert (web.status, web.method) == ("OutOfSync", "dry-run")
    assert "spec.template.spec.containers[name=web].image" in web.changed_paths


def test_a_field_dropped_from_git_is_a_doubt_the_dry_run_resolves(cluster: kube.ClusterClient, namespace: str,
                                                                   app_name: str) -> None:
    # gitferry owns env LOG; Git no longer sets it: every live value still equals what Git says,
    # but the apply would remove LOG. Offline cannot call that Synced.
    _applied(cluster, app_name, namespace, [_deployment()])
    dropped = _deployment()
    dropped["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MODE", "value": "prod"}]
    web = _one(_compare(cluster, app_name, namespace, [dropped]), "Deployment")
    assert (web.status, web.method) == ("OutOfSync", "dry-run"), (web.status, web.method, web.changed_paths)


def test_a_new_field_gitferry_never_owned_goes_to_the_dry_run(cluster: kube.ClusterClient, namespace: str,
                                                              app_name: str) -> None:
    _applied(cluster, app_name, namespace, [_deployment()])
    added = _deployment()
    added["spec"]["minReadySeconds"] = 5
    web = _one(_compare(cluster, app_name, namespace, [added]), "Deployment")
    assert (web.status, web.method) == ("OutOfSync", "dry-run")
    assert "spec.minReadySeconds" in web.changed_paths


def test_a_field_the_server_defaults_to_the_same_value_is_synced_by_the_dry_run(
        cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    # Git now spells out a default the server had filled in (imagePullPolicy IfNotPresent):
    # gitferry does not own it yet, so offline cannot decide; the dry run sees no change.
    _applied(cluster, app_name, namespace, [_deployment()])
    live = cluster.get("apps/v1", "Deployment", "web", namespace)
    assert live is not None
    policy = live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
    explicit = _deployment()
    explicit["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = policy
    web = _one(_compare(cluster, app_name, namespace, [explicit]), "Deployment")
    assert (web.status, web.method) == ("Synced", "dry-run")


def test_secret_string_data_is_compared_with_its_encoded_data(cluster: kube.ClusterClient, namespace: str,
                                                              app_name: str) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "one"}}
    _applied(cluster, app_name, namespace, [secret])
    same = _one(_compare(cluster, app_name, namespace, [copy.deepcopy(secret)]), "Secret")
    assert (same.status, same.method) == ("Synced", "offline")
    rotated = {**secret, "stringData": {"password": "two"}}
    other = _one(_compare(cluster, app_name, namespace, [rotated]), "Secret")
    assert (other.status, other.method) == ("OutOfSync", "dry-run")
    assert "one" not in other.diff and "two" not in other.diff  # masked either way


def test_offline_synced_refuses_what_it_cannot_prove(cluster: kube.ClusterClient, namespace: str,
                                                     app_name: str) -> None:
    _applied(cluster, app_name, namespace, [_deployment(), secret_manifest()])
    live = cluster.get("apps/v1", "Deployment", "web", namespace)
    assert live is not None
    [desired] = tracking.prepare_desired(app_name, [_deployment()], namespace, lambda _v, _k: True)
    assert diff.offline_synced(desired, live) is True  # what compare() asks, answered from managedFields
    assert diff.offline_synced(desired, None) is False  # not live
    other_version = {**desired, "apiVersion": "apps/v1beta2"}
    assert diff.offline_synced(other_version, live) is False
    deleting = copy.deepcopy(live)
    deleting["metadata"]["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    assert diff.offline_synced(desired, deleting) is False
    no_fields = copy.deepcopy(live)
    no_fields["metadata"]["managedFields"] = []
    assert diff.offline_synced(desired, no_fields) is False
    assert diff.offline_synced({**desired, "status": {"replicas": 1}}, live) is False


def _patches(kubesim: Any, before: int, namespace: str) -> list[str]:
    """PATCHes into ``namespace`` since the mark (the session's kubesim serves other tests too)."""
    return [path for method, path, _status, _agent in kubesim.requests_since(before)
            if method == "PATCH" and f"/namespaces/{namespace}/" in path]


def test_a_re_sync_sends_only_what_may_differ(cluster: kube.ClusterClient, namespace: str, app_name: str,
                                              kubesim: Any) -> None:
    desired = [_deployment(), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                               "data": {"a": "1"}}]
    _applied(cluster, app_name, namespace, desired)
    before = kubesim.log_mark()
    result = sync.run_sync(cluster, app_name, desired, cluster.list_by_label(tracking.label_selector(app_name)),
                           prune=True, create_namespace=False, namespace=namespace)
    assert result.phase == "Succeeded"
    assert {r.message for r in result.resources if r.kind != "Namespace"} == {"unchanged"}
    assert _patches(kubesim, before, namespace) == []  # no apply and no dry run: both were proven no-ops
    # drift on the ConfigMap (another manager): it alone is dry-run and applied again
    cluster.server_side_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": namespace},
                               "data": {"a": "2"}}, field_manager="kubectl-edit", force=True)
    before = kubesim.log_mark()
    result = sync.run_sync(cluster, app_name, desired, cluster.list_by_label(tracking.label_selector(app_name)),
                           prune=True, create_namespace=False, namespace=namespace)
    messages = {r.kind: r.message for r in result.resources}
    assert messages["ConfigMap"] == "configured" and messages["Deployment"] == "unchanged"
    patched = _patches(kubesim, before, namespace)
    assert len(patched) == 2 and all("/configmaps/cfg" in p for p in patched), patched  # dry run + apply
    live = cluster.get("v1", "ConfigMap", "cfg", namespace)
    assert live is not None and live["data"] == {"a": "1"}


def test_apply_out_of_sync_only_false_asks_for_a_full_sync(cluster: kube.ClusterClient, namespace: str,
                                                           app_name: str, kubesim: Any) -> None:
    from gitferry.model import Application

    desired = [_deployment()]
    _applied(cluster, app_name, namespace, desired)
    app = Application.model_validate({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": app_name},
        "spec": {"project": "default", "source": {"repoURL": "https://git.example.com/a.git", "path": "."},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
                 "syncPolicy": {"syncOptions": ["ApplyOutOfSyncOnly=false"]}}})
    opts = sync.options_for(app)
    assert opts.full_sync
    before = kubesim.log_mark()
    result = sync.run_sync(cluster, app_name, desired, cluster.list_by_label(tracking.label_selector(app_name)),
                           prune=True, create_namespace=False, namespace=namespace, options=opts)
    assert result.phase == "Succeeded"
    assert len(_patches(kubesim, before, namespace)) == 2  # the dry run and the apply, though nothing changed
