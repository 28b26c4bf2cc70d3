"""compare() against kubesim: no false drift after a sync, real drift named, three-way, masking."""

from __future__ import annotations

import base64
import copy
from typing import Any

from cluster_objects import deployment_manifest, secret_manifest, service_manifest
from gitferry import diff, kube, sync, tracking


def manifests() -> list[dict[str, Any]]:
    dep, svc = deployment_manifest(), service_manifest()
    # kubesim (at the time of writing) does not default the `protocol` list-map key of an applied
    # port before merging, so re-applying a port without it duplicates the port; the real
    # apiserver defaults it. Set it explicitly until kubesim does.
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"
    svc["spec"]["ports"][0]["protocol"] = "TCP"
    return [dep, svc, secret_manifest(),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}}]


def synced(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]]) -> diff.Comparison:
    live = cluster.list_by_label(tracking.label_selector(app))
    result = sync.run_sync(cluster, app, desired, live, prune=True, create_namespace=False, namespace=ns)
    assert result.phase == "Succeeded", result.message
    return diff.compare(cluster, app, desired, cluster.list_by_label(tracking.label_selector(app)), namespace=ns)


def by_name(comparison: diff.Comparison) -> dict[str, diff.ResourceDiff]:
    return {f"{r.kind}/{r.name}": r for r in comparison.resources}


def test_apply_then_compare_is_synced(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    comparison = synced(cluster, app_name, namespace, manifests())
    assert comparison.sync_status == "Synced", [(r.kind, r.changed_paths, r.message) for r in comparison.resources]
    assert len(comparison.resources) == 4
    assert all(r.status == "Synced" and r.changed_paths == [] and r.diff == "" for r in comparison.resources)
    # offline first: gitferry's own managedFields prove every object unchanged, no dry run needed
    assert all(r.method == "offline" for r in comparison.resources)
    # ... and the dry run, asked for every object, agrees
    full = diff.compare(cluster, app_name, manifests(), cluster.list_by_label(tracking.label_selector(app_name)),
                        namespace=namespace, offline_first=False)
    assert full.sync_status == "Synced" and all(r.method == "dry-run" for r in full.resources)


def test_a_no_change_compare_sends_no_dry_run(cluster: kube.ClusterClient, namespace: str, app_name: str,
                                              kubesim: Any) -> None:
    synced(cluster, app_name, namespace, manifests())
    live = cluster.list_by_label(tracking.label_selector(app_name))
    mine = f"/namespaces/{namespace}/"  # the session's kubesim serves other tests at the same time
    before = kubesim.log_mark()
    assert diff.compare(cluster, app_name, manifests(), live, namespace=namespace).sync_status == "Synced"
    dry_runs = [r for r in kubesim.requests_since(before) if "dryRun=All" in r[1] and mine in r[1]]
    assert dry_runs == []
    before = kubesim.log_mark()
    diff.compare(cluster, app_name, manifests(), live, namespace=namespace, offline_first=False)
    assert len([r for r in kubesim.requests_since(before) if "dryRun=All" in r[1] and mine in r[1]]) == 4


def test_live_change_is_out_of_sync_naming_the_field(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    synced(cluster, app_name, namespace, manifests())
    live = cluster.get("apps/v1", "Deployment", "web", namespace)
    assert live is not None
    # someone runs `kubectl scale` / `kubectl set image` (another field manager)
    cluster.server_side_apply({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "web", "namespace": namespace},
                               "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "web"}},
                                        "template": {"metadata": {"labels": {"app": "web"}},
                                                     "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}},
                              field_manager="kubectl-edit")
    comparison = diff.compare(cluster, app_name, manifests(), cluster.list_by_label(tracking.label_selector(app_name)),
                              namespace=namespace)
    web = by_name(comparison)["Deployment/web"]
    assert comparison.sync_status == "OutOfSync"
    assert web.status == "OutOfSync"
    # another manager took fields over: the offline comparison cannot decide, the dry run does
    assert web.method == "dry-run"
    assert "spec.replicas" in web.changed_paths
    assert "spec.template.spec.containers[name=web].image" in web.changed_paths
    assert "nginx:1.25" in web.diff and "nginx:1.27" in web.diff
    assert by_name(comparison)["Service/web"].status == "Synced"


def test_env_removed_from_git_is_out_of_sync(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    synced(cluster, app_name, namespace, manifests())
    changed = manifests()
    changed[0]["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "LOG", "value": "info"}]
    comparison = diff.compare(cluster, app_name, changed, cluster.list_by_label(tracking.label_selector(app_name)),
                              namespace=namespace)
    web = by_name(comparison)["Deployment/web"]
    assert web.status == "OutOfSync"
    assert web.changed_paths == ["spec.template.spec.containers[name=web].env[name=MODE]"]


def test_secret_values_never_appear(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    synced(cluster, app_name, namespace, manifests())
    cluster.server_side_apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": namespace},
                               "stringData": {"password": "tampered-value-123"}}, field_manager="intruder")
    comparison = diff.compare(cluster, app_name, manifests(), cluster.list_by_label(tracking.label_selector(app_name)),
                              namespace=namespace)
    secret = by_name(comparison)["Secret/db"]
    assert secret.status == "OutOfSync" and secret.changed_paths == ["data.password"]
    everything = repr([(r.diff, r.live, r.target, r.message) for r in comparison.resources])
    for value in ("hunter2-s3cr3t", "tampered-value-123", "admin"):
        assert value not in everything
        assert base64.b64encode(value.encode()).decode() not in everything
    assert "++++++++" in secret.diff


def test_missing_and_extraneous(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    synced(cluster, app_name, namespace, manifests())
    cfg = cluster.get("v1", "ConfigMap", "cfg", namespace)
    copied = copy.deepcopy(cfg)  # someone copies our ConfigMap with its marks
    copied["metadata"] = {"name": "cfg-copy", "namespace": namespace, "labels": cfg["metadata"]["labels"],
                          "annotations": cfg["metadata"]["annotations"]}
    cluster.server_side_apply(copied, field_manager="kubectl")
    desired = [m for m in manifests() if m["kind"] != "ConfigMap"]
    desired.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}, "data": {"b": "2"}})
    comparison = diff.compare(cluster, app_name, desired, cluster.list_by_label(tracking.label_selector(app_name)),
                              namespace=namespace)
    res = by_name(comparison)
    assert res["ConfigMap/new"].status == "OutOfSync" and res["ConfigMap/new"].health.status == "Missing"
    assert res["ConfigMap/cfg"].requires_pruning and res["ConfigMap/cfg"].status == "OutOfSync"
    assert "ConfigMap/cfg-copy" not in res
    assert comparison.sync_status == "OutOfSync"


def test_ignore_differences_for_fields_an_autoscaler_owns(cluster: kube.ClusterClient, namespace: str,
                                                          app_name: str) -> None:
    synced(cluster, app_name, namespace, manifests())
    cluster.server_side_apply({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "web", "namespace": namespace}, "spec": {"replicas": 4}},
                              field_manager="hpa-controller")
    live = cluster.list_by_label(tracking.label_selector(app_name))
    plain = diff.compare(cluster, app_name, manifests(), live, namespace=namespace)
    assert by_name(plain)["Deployment/web"].changed_paths == ["spec.replicas"]
    rules = [{"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["hpa-controller"]}]
    ignoring = diff.compare(cluster, app_name, manifests(), live, namespace=namespace, ignore_differences=rules)
    assert ignoring.sync_status == "Synced", [(r.name, r.changed_paths) for r in ignoring.resources]


def test_object_another_app_tracks_is_reported_shared(cluster: kube.ClusterClient, namespace: str,
                                                       app_name: str) -> None:
    synced(cluster, app_name, namespace, manifests())
    cfg = cluster.get("v1", "ConfigMap", "cfg", namespace)
    assert cfg is not None
    copied = {"apiVersion": "v1", "kind": "ConfigMap",  # a copy keeps the annotation naming "cfg": no claim
              "metadata": {"name": "cfg-copy", "namespace": namespace,
                           "annotations": dict(cfg["metadata"]["annotations"])}, "data": {"a": "1"}}
    cluster.server_side_apply(copied, field_manager="kubectl")
    other = f"{app_name}-other"
    theirs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"a": "2"}}
              for n in ("cfg", "cfg-copy")]
    comparison = diff.compare(cluster, other, theirs, cluster.list_by_label(tracking.label_selector(other)),
                              namespace=namespace)
    res = by_name(comparison)
    assert res["ConfigMap/cfg"].shared_with == app_name
    assert res["ConfigMap/cfg-copy"].shared_with is None
    assert comparison.shared_resource_warnings(other) == [f"ConfigMap/cfg is part of applications {other} and {app_name}"]
    mine = diff.compare(cluster, app_name, manifests(), cluster.list_by_label(tracking.label_selector(app_name)),
                        namespace=namespace)
    assert mine.shared_resource_warnings(app_name) == []


def test_jq_rules_through_the_dry_run(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    """jq expressions remove what they select from the server's prediction and the live object;
    one that never ends is cut off and reported in ``errors`` naming the rule."""
    synced(cluster, app_name, namespace, manifests())
    cluster.server_side_apply({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"name": "web", "namespace": namespace}, "spec": {"replicas": 4}},
                              field_manager="hpa-controller")
    cluster.server_side_apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": namespace},
                               "stringData": {"password": "rotated-by-operator"}}, field_manager="operator")
    live = cluster.list_by_label(tracking.label_selector(app_name))
    rules = [{"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.replicas"]},
             {"kind": "Secret", "jqPathExpressions": ['.data | .password']}]
    ignoring = diff.compare(cluster, app_name, manifests(), live, namespace=namespace, ignore_differences=rules)
    assert ignoring.sync_status == "Synced", [(r.name, r.changed_paths, r.message) for r in ignoring.resources]
    assert ignoring.errors == []
    hostile = [{"group": "apps", "kind": "Deployment", "jqPathExpressions": ["[range(1e9)]"]}]
    cut = diff.compare(cluster, app_name, manifests(), live, namespace=namespace, ignore_differences=hostile)
    web = by_name(cut)["Deployment/web"]
    assert web.status == "Unknown" and cut.sync_status == "OutOfSync"  # the Secret differs, no rule for it
    (error,) = cut.errors
    assert error.startswith('spec.ignoreDifferences[0].jqPathExpressions[0] "[range(1e9)]": evaluation exceeded the ')
    assert f"on apps/Deployment/{namespace}/web; the rule was not applied" in error
    everything = repr([(r.diff, r.live, r.target, r.message) for r in ignoring.resources + cut.resources]) + repr(cut.errors)
    for value in ("rotated-by-operator", "hunter2-s3cr3t"):
        assert value not in everything and base64.b64encode(value.encode()).decode() not in everything
