"""run_sync() syncOptions and per-resource sync-options against kubesim: each option changes
what lands in the cluster, and an option gitferry does not implement fails the sync by name."""

from __future__ import annotations

from typing import Any

from gitferry import diff, kube, sync, tracking

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"


def cm(name: str, data: dict[str, str] | None = None, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": dict(annotations)},
            "data": dict(data or {"n": name})}


def run(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]],
        options: sync.SyncOptions | None = None, **kwargs: Any) -> sync.SyncResult:
    live = cluster.list_by_label(tracking.label_selector(app))
    return sync.run_sync(cluster, app, desired, live, prune=True, create_namespace=False, namespace=ns,
                         options=options, **kwargs)


def other_manager_sets(cluster: kube.ClusterClient, ns: str, name: str, data: dict[str, str]) -> None:
    """Someone else (kubectl, a controller) takes over some fields with its own apply."""
    cluster.server_side_apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
                               "data": data}, field_manager="someone-else")


def data(cluster: kube.ClusterClient, ns: str, name: str) -> dict[str, str] | None:
    live = cluster.get("v1", "ConfigMap", name, ns)
    return None if live is None else live.get("data")


def test_replace_puts_the_whole_object_and_drops_fields_others_added(cluster: kube.ClusterClient, namespace: str,
                                                                     app_name: str) -> None:
    desired = [cm("a", {"k": "git"}), cm("b", {"k": "git"})]
    assert run(cluster, app_name, namespace, desired).phase == "Succeeded"
    for name in ("a", "b"):
        other_manager_sets(cluster, namespace, name, {"extra": "theirs"})
    result = run(cluster, app_name, namespace, desired)  # apply: another manager's field stays
    assert result.phase == "Succeeded", result.message
    assert data(cluster, namespace, "a") == {"k": "git", "extra": "theirs"}
    result = run(cluster, app_name, namespace, desired, sync.SyncOptions(replace=True))
    assert result.phase == "Succeeded", result.message
    assert data(cluster, namespace, "a") == {"k": "git"} and data(cluster, namespace, "b") == {"k": "git"}
    # per resource: only the annotated object is replaced
    for name in ("a", "b"):
        other_manager_sets(cluster, namespace, name, {"extra": "theirs"})
    annotated = [cm("a", {"k": "git"}, **{SYNC_OPTIONS: "Replace=true"}), cm("b", {"k": "git"})]
    assert run(cluster, app_name, namespace, annotated).phase == "Succeeded"
    assert data(cluster, namespace, "a") == {"k": "git"}
    assert data(cluster, namespace, "b") == {"k": "git", "extra": "theirs"}
    # Replace of an object that does not exist creates it
    assert run(cluster, app_name, namespace, [*desired, cm("c")], sync.SyncOptions(replace=True)).phase == "Succeeded"
    assert data(cluster, namespace, "c") == {"n": "c"}


def test_force_with_replace_deletes_and_recreates(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    assert run(cluster, app_name, namespace, [cm("a")]).phase == "Succeeded"
    uid = cluster.get("v1", "ConfigMap", "a", namespace)["metadata"]["uid"]
    assert run(cluster, app_name, namespace, [cm("a", {"v": "2"})], sync.SyncOptions(replace=True)).phase == "Succeeded"
    assert cluster.get("v1", "ConfigMap", "a", namespace)["metadata"]["uid"] == uid  # replace keeps the object
    forced = cm("a", {"v": "3"}, **{SYNC_OPTIONS: "Replace=true,Force=true"})
    result = run(cluster, app_name, namespace, [forced])
    assert result.phase == "Succeeded", result.message
    live = cluster.get("v1", "ConfigMap", "a", namespace)
    assert live["metadata"]["uid"] != uid and live["data"] == {"v": "3"} and tracking.is_owned(app_name, live)


def test_force_gets_an_apply_through_an_immutable_field(cluster: kube.ClusterClient, namespace: str,
                                                        app_name: str) -> None:
    def deploy(selector: str, **annotations: str) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "annotations": annotations},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": selector}},
                         "template": {"metadata": {"labels": {"app": selector}},
                                      "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}

    assert run(cluster, app_name, namespace, [deploy("one")]).phase == "Succeeded"
    uid = cluster.get("apps/v1", "Deployment", "web", namespace)["metadata"]["uid"]
    plain = run(cluster, app_name, namespace, [deploy("two")])
    assert plain.phase == "Failed" and "field is immutable" in plain.message, plain.message
    forced = run(cluster, app_name, namespace, [deploy("two", **{SYNC_OPTIONS: "Force=true"})])
    assert forced.phase == "Succeeded", forced.message
    live = cluster.get("apps/v1", "Deployment", "web", namespace)
    assert live["metadata"]["uid"] != uid and live["spec"]["selector"] == {"matchLabels": {"app": "two"}}


def test_validate_false_lets_unknown_fields_through(cluster: kube.ClusterClient, namespace: str,
                                                    app_name: str) -> None:
    odd = {**cm("odd"), "bogus": "field"}
    strict = run(cluster, app_name, namespace, [cm("ok"), odd], sync.SyncOptions(replace=True))
    assert strict.phase == "Failed" and 'unknown field "bogus"' in strict.message
    assert data(cluster, namespace, "ok") is None  # the dry run failed: nothing applied
    lax = run(cluster, app_name, namespace, [cm("ok"), odd], sync.SyncOptions(replace=True, validate=False))
    assert lax.phase == "Succeeded", lax.message
    assert data(cluster, namespace, "odd") == {"n": "odd"}
    per_resource = {**cm("odd2", **{SYNC_OPTIONS: "Replace=true,Validate=false"}), "bogus": "field"}
    assert run(cluster, app_name, namespace, [per_resource]).phase == "Succeeded"


def test_apply_out_of_sync_only_applies_what_the_comparison_found(cluster: kube.ClusterClient, namespace: str,
                                                                  app_name: str) -> None:
    assert run(cluster, app_name, namespace, [cm("a"), cm("b")]).phase == "Succeeded"
    changed = [cm("a", {"v": "2"}), cm("b", {"v": "2"}), cm("new")]
    only_b = frozenset({("", "ConfigMap", namespace, "b")})
    result = run(cluster, app_name, namespace, changed,
                 sync.SyncOptions(apply_out_of_sync_only=True, out_of_sync=only_b))
    assert result.phase == "Succeeded", result.message
    assert sorted(r.name for r in result.resources) == ["b", "new"]  # missing objects are always applied
    assert data(cluster, namespace, "a") == {"n": "a"} and data(cluster, namespace, "b") == {"v": "2"}
    everything = run(cluster, app_name, namespace, changed, sync.SyncOptions(out_of_sync=only_b))
    assert everything.phase == "Succeeded" and data(cluster, namespace, "a") == {"v": "2"}


def test_respect_ignore_differences_keeps_live_values(cluster: kube.ClusterClient, namespace: str,
                                                      app_name: str) -> None:
    desired = [cm("a", {"k": "git", "other": "git"}), cm("b", {"k": "git"})]
    assert run(cluster, app_name, namespace, desired).phase == "Succeeded"
    rules = tuple(diff.ignore_rules([
        {"kind": "ConfigMap", "name": "a", "jsonPointers": ["/data/k"]},
        {"kind": "ConfigMap", "name": "b", "managedFieldsManagers": ["someone-else"]},
    ]))
    other_manager_sets(cluster, namespace, "a", {"k": "live"})
    other_manager_sets(cluster, namespace, "b", {"k": "live", "x": "theirs"})
    respected = run(cluster, app_name, namespace, desired,
                    sync.SyncOptions(respect_ignore_differences=True, ignore_rules=rules))
    assert respected.phase == "Succeeded", respected.message
    assert data(cluster, namespace, "a") == {"k": "live", "other": "git"}
    assert data(cluster, namespace, "b") == {"k": "live", "x": "theirs"}
    overwritten = run(cluster, app_name, namespace, desired, sync.SyncOptions(ignore_rules=rules))
    assert overwritten.phase == "Succeeded"
    assert data(cluster, namespace, "a") == {"k": "git", "other": "git"}
    # jqPathExpressions select the same fields as in the comparison (diff.ignored_paths).
    other_manager_sets(cluster, namespace, "a", {"k": "live"})
    jq = tuple(diff.ignore_rules([{"kind": "ConfigMap", "name": "a", "jqPathExpressions": [".data.k"]}]))
    by_jq = run(cluster, app_name, namespace, desired, sync.SyncOptions(respect_ignore_differences=True,
                                                                        ignore_rules=jq))
    assert by_jq.phase == "Succeeded", by_jq.message
    assert data(cluster, namespace, "a") == {"k": "live", "other": "git"}
    hostile = tuple(diff.ignore_rules([{"kind": "ConfigMap", "name": "a", "jqPathExpressions": ["[range(1e9)]"]}]))
    refused = run(cluster, app_name, namespace, desired, sync.SyncOptions(respect_ignore_differences=True,
                                                                          ignore_rules=hostile))
    assert refused.phase == "Failed" and "jqPathExpressions" in refused.message, refused.message


def test_fail_on_shared_resource(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    other = f"{app_name}-other"
    assert run(cluster, other, namespace, [cm("shared")]).phase == "Succeeded"
    refused = run(cluster, app_name, namespace, [cm("mine"), cm("shared")],
                  sync.SyncOptions(fail_on_shared_resource=True))
    assert refused.phase == "Failed"
    assert f"ConfigMap {namespace}/shared: FailOnSharedResource=true: the object is part of application {other}" \
        in refused.message
    assert data(cluster, namespace, "mine") is None
    taken = run(cluster, app_name, namespace, [cm("mine"), cm("shared")])  # without it: applied (the diff warns)
    assert taken.phase == "Succeeded"
    assert tracking.owner_app(cluster.get("v1", "ConfigMap", "shared", namespace)) == app_name


def test_unsupported_resource_option_fails_the_sync_before_any_write(cluster: kube.ClusterClient, namespace: str,
                                                                     app_name: str) -> None:
    csa = cm("csa", **{SYNC_OPTIONS: "ServerSideApply=false"})
    result = run(cluster, app_name, namespace, [cm("a"), csa])
    assert result.phase == "Failed"
    assert "ServerSideApply=false not supported by gitferry" in result.message
    assert data(cluster, namespace, "a") is None
    ok = run(cluster, app_name, namespace, [cm("a"), cm("ssa", **{SYNC_OPTIONS: "ServerSideApply=true, Prune=false"})])
    assert ok.phase == "Succeeded", ok.message


def test_unserved_kind_fails_the_dry_run_unless_skip_dry_run_on_missing_resource(
        cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    gadget = {"apiVersion": "nowhere.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    refused = run(cluster, app_name, namespace, [cm("a"), gadget])
    assert refused.phase == "Failed"
    assert "Gadget" in refused.message and "does not serve kind Gadget" in refused.message
    assert data(cluster, namespace, "a") is None  # nothing applied
    skipping = {**gadget, "metadata": {"name": "g", "annotations": {SYNC_OPTIONS: "SkipDryRunOnMissingResource=true"}}}
    result = run(cluster, app_name, namespace, [cm("a"), skipping])
    # no dry run for it: the ConfigMap is applied, the Gadget fails at its own apply
    assert result.phase == "Failed" and "nothing was applied" not in result.message
    assert data(cluster, namespace, "a") == {"n": "a"}


def test_delete_false_is_exposed_for_the_deletion_path() -> None:
    assert not sync.delete_allowed(cm("keep", **{SYNC_OPTIONS: "Delete=false"}))
    assert sync.delete_allowed(cm("go", **{SYNC_OPTIONS: "Prune=false"}))
    assert sync.delete_allowed(cm("plain"))
