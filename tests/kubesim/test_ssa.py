"""Server-side apply and managedFields against the real 1.37 schemas.

Expected shapes are what a real apiserver shows with ``kubectl get -o yaml
--show-managed-fields`` (structured-merge-diff semantics).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.kubesim import errors, ssa
from local.kubesim.schema import SchemaNode, Schemas
from local.kubesim.types import ResourceType

_SCHEMAS = Schemas()
_TYPES = {(t.group, t.kind): t for t in _SCHEMAS.builtin_types()}
DEPLOY_RT = _TYPES[("apps", "Deployment")]
DEPLOY: SchemaNode = _SCHEMAS.root(DEPLOY_RT)
CM_RT = _TYPES[("", "ConfigMap")]
CM: SchemaNode = _SCHEMAS.root(CM_RT)
SVC_RT = _TYPES[("", "Service")]
SVC: SchemaNode = _SCHEMAS.root(SVC_RT)
T0, T1, T2, T3 = (f"2026-11-26T15:0{i}:00Z" for i in range(4))


def manifest(replicas: int | None = 2, image: str = "nginx:1.25", labels: dict[str, str] | None = None,
             extra_containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "web", "image": image, "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                *(extra_containers or []),
            ]},
        },
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
        "spec": spec,
    }


def apply(live: dict[str, Any] | None, config: dict[str, Any], manager: str = "kubectl", *, force: bool = False,
          now: str = T0, node: SchemaNode = DEPLOY, rt: ResourceType = DEPLOY_RT,
          api_version: str = "apps/v1", subresource: str | None = None) -> dict[str, Any]:
    return ssa.apply(live, config, manager=manager, node=node, force=force, api_version=api_version, now=now,
                     rt=rt, subresource=subresource)


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["metadata"].get("managedFields", [])


def entry(obj: dict[str, Any], manager: str, operation: str | None = None) -> dict[str, Any]:
    found = [e for e in entries(obj) if e["manager"] == manager and (operation is None or e["operation"] == operation)]
    assert len(found) == 1, entries(obj)
    return found[0]


def server_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the store adds after apply (the server fields are never owned)."""
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "u-1", "resourceVersion": "7", "generation": 1,
                            "creationTimestamp": "2026-11-26T14:00:00Z"})
    return out


# ------------------------------------------------------------------ create via apply


def test_apply_creates_object_with_kubectl_shaped_managed_fields() -> None:
    obj = apply(None, manifest())
    assert obj["spec"]["replicas"] == 2 and obj["metadata"]["labels"] == {"app": "web"}
    assert entries(obj) == [{
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"web"}': {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                            ".": {}, "f:containerPort": {}, "f:protocol": {}}},
                    }}},
                },
            },
        },
    }]


def test_fields_v1_leaves_out_server_metadata_and_type_fields() -> None:
    obj = server_stored(manifest())
    fs = ssa.fields_v1(obj, DEPLOY)
    assert "f:apiVersion" not in fs and "f:kind" not in fs
    assert set(fs["f:metadata"]) == {"f:labels"}


def test_fields_v1_set_items_atomic_lists_and_granular_maps() -> None:
    obj = {"metadata": {"finalizers": ["a/b"], "annotations": {"x": "1"}},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["-v"], "env": [{"name": "E", "value": "1"}]}],
                                          "tolerations": [{"key": "k"}]}}}}
    fs = ssa.fields_v1(obj, DEPLOY)
    assert fs["f:metadata"] == {"f:annotations": {"f:x": {}}, "f:finalizers": {'v:"a/b"': {}}}
    pod = fs["f:spec"]["f:template"]["f:spec"]
    assert pod["f:tolerations"] == {}
    c = pod["f:containers"]['k:{"name":"c"}']
    assert c["f:args"] == {}
    assert c["f:env"] == {'k:{"name":"E"}': {".": {}, "f:name": {}, "f:value": {}}}


def test_fields_v1_multi_key_list_map_keys_are_sorted() -> None:
    fs = ssa.fields_v1({"spec": {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}]}}, SVC)
    assert list(fs["f:spec"]["f:ports"]) == ['k:{"port":80,"protocol":"TCP"}']


def test_apply_reapply_same_config_is_a_noop_that_keeps_time() -> None:
    obj = server_stored(apply(None, manifest(), now=T0))
    again = apply(obj, manifest(), now=T1)
    assert entry(again, "kubectl")["time"] == T0
    assert again == obj


def test_apply_strips_status_on_main_resource() -> None:
    cfg = manifest()
    cfg["status"] = {"replicas": 5}
    obj = apply(None, cfg)
    assert "status" not in obj
    assert "f:status" not in entry(obj, "kubectl")["fieldsV1"]


# ------------------------------------------------------------------ conflicts and force


def test_apply_conflict_with_other_applier_exact_message() -> None:
    live = server_stored(apply(None, manifest(replicas=2)))
    with pytest.raises(errors.ApiError) as exc:
        apply(live, manifest(replicas=5), "other")
    err = exc.value
    assert err.code == 409 and err.reason == "Conflict"
    # printManager names an applier without apiVersion
    assert err.message == 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    assert err.status()["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl"', "field": ".spec.replicas"}]
    assert err.status()["details"]["name"] == "web"


def test_apply_conflict_with_updater_names_api_version() -> None:
    live = server_stored(apply(None, manifest(replicas=2)))
    edited = copy.deepcopy(live)
    edited["spec"]["replicas"] = 4
    ssa.record_update(live, edited, manager="kubectl", node=DEPLOY, api_version="apps/v1", now=T1)
    with pytest.raises(errors.ApiError) as exc:
        apply(edited, manifest(replicas=2), now=T2)
    assert exc.value.message == 'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'


def test_apply_multiple_conflicts_are_grouped_by_manager() -> None:
    live = server_stored(apply(None, manifest(replicas=2, image="nginx:1")))
    with pytest.raises(errors.ApiError) as exc:
        apply(live, manifest(replicas=3, image="nginx:2"), "other")
    assert exc.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl":\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="web"].image'
    )
    assert [c["field"] for c in exc.value.status()["details"]["causes"]] == [
        ".spec.replicas", '.spec.template.spec.containers[name="web"].image']


def test_force_takes_ownership() -> None:
    live = server_stored(apply(None, manifest(replicas=2)))
    obj = apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                       "spec": {"replicas": 5}}, "other", force=True, now=T1)
    assert obj["spec"]["replicas"] == 5
    assert entry(obj, "other")["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entry(obj, "kubectl")["fieldsV1"]["f:spec"]
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"


def test_api_version_and_kind_never_conflict() -> None:
    live = server_stored(apply(None, manifest()))
    obj = apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                       "spec": {"paused": True}}, "other")
    assert obj["spec"]["paused"] is True


# ------------------------------------------------------------------ shared ownership and dropped fields


def test_same_value_is_shared_ownership_and_survives_one_owner_leaving() -> None:
    live = server_stored(apply(None, manifest(replicas=2)))
    shared = apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                          "spec": {"replicas": 2}}, "other", now=T1)
    assert "f:replicas" in entry(shared, "kubectl")["fieldsV1"]["f:spec"]
    assert "f:replicas" in entry(shared, "other")["fieldsV1"]["f:spec"]
    # kubectl drops replicas: "other" still owns it, the value stays
    dropped = apply(server_stored(shared), manifest(replicas=None), now=T2)
    assert dropped["spec"]["replicas"] == 2
    assert "f:replicas" not in entry(dropped, "kubectl")["fieldsV1"]["f:spec"]


def test_dropped_field_is_removed_when_nobody_else_owns_it() -> None:
    live = server_stored(apply(None, manifest(labels={"app": "web", "tier": "fe"})))
    obj = apply(live, manifest(labels={"app": "web"}), now=T1)
    assert obj["metadata"]["labels"] == {"app": "web"}
    obj = apply(server_stored(obj), manifest(replicas=None), now=T2)
    assert "replicas" not in obj["spec"]  # the store re-defaults it to 1 afterwards
    assert entry(obj, "kubectl")["time"] == T2


def test_dropped_field_stays_when_an_updater_owns_it() -> None:
    live = server_stored(apply(None, manifest(labels={"app": "web", "tier": "fe"})))
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["tier"] = "be"
    ssa.record_update(live, edited, manager="kubectl-edit", node=DEPLOY, api_version="apps/v1", now=T1)
    obj = apply(edited, manifest(labels={"app": "web"}), now=T2)
    assert obj["metadata"]["labels"] == {"app": "web", "tier": "be"}


def test_dropping_the_last_label_removes_the_empty_map() -> None:
    live = server_stored(apply(None, manifest(labels={"team": "a"})))
    cfg = manifest()
    del cfg["metadata"]["labels"]
    obj = apply(live, cfg, now=T1)
    assert "labels" not in obj["metadata"]


def test_list_map_item_removed_when_dropped_and_kept_when_other_applier_owns_it() -> None:
    sidecar = {"name": "sidecar", "image": "envoy:1"}
    live = server_stored(apply(None, manifest(extra_containers=[sidecar])))
    names = [c["name"] for c in live["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "sidecar"]
    obj = apply(live, manifest(), now=T1)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web"]
    # a second applier co-owning the item keeps it alive
    co = apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                      "spec": {"template": {"spec": {"containers": [sidecar]}}}}, "mesh", now=T1)
    obj = apply(server_stored(co), manifest(), now=T2)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar"]


def test_atomic_list_is_replaced_and_granular_map_merged() -> None:
    cfg = manifest()
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = ["-a", "-b"]
    live = server_stored(apply(None, cfg))
    live["metadata"]["labels"]["added-by-someone"] = "x"
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = ["-c"]
    obj = apply(live, cfg, now=T1)
    assert obj["spec"]["template"]["spec"]["containers"][0]["args"] == ["-c"]
    assert obj["metadata"]["labels"] == {"app": "web", "added-by-someone": "x"}


def test_new_list_items_keep_config_order_around_live_items() -> None:
    live = server_stored(apply(None, manifest(extra_containers=[{"name": "b", "image": "b"}])))
    cfg = manifest(extra_containers=[{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    obj = apply(live, cfg, now=T1)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["web", "a", "b"]


# ------------------------------------------------------------------ updates (create/update/patch)


def test_record_update_on_create_matches_real_update_entry_shape() -> None:
    new = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "x", "namespace": "default", "labels": {"app": "x"}},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                    "template": {"metadata": {"labels": {"app": "x"}}, "spec": {
                        "containers": [{"name": "nginx", "image": "nginx",
                                        "ports": [{"containerPort": 80, "protocol": "TCP"}], "resources": {}}],
                        "securityContext": {}}}}}
    ssa.record_update(None, new, manager="kubectl-create", node=DEPLOY, api_version="apps/v1", now=T0)
    (e,) = entries(new)
    assert {k: e[k] for k in ("manager", "operation", "apiVersion", "time", "fieldsType")} == {
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1"}
    assert "subresource" not in e
    # containers the empty typed object lacks get "." (labels, rollingUpdate, ports);
    # value-typed structs and required lists (spec, template, strategy, containers) do not
    assert e["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}},
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {'k:{"name":"nginx"}': {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {".": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {
                            ".": {}, "f:containerPort": {}, "f:protocol": {}}},
                        "f:resources": {},
                    }},
                    "f:securityContext": {},
                },
            },
        },
    }


def test_update_after_apply_steals_without_conflict_then_apply_conflicts() -> None:
    live = server_stored(apply(None, manifest(replicas=2)))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 7
    ssa.record_update(live, scaled, manager="kubectl-scale", node=DEPLOY, api_version="apps/v1", now=T1,
                      subresource="scale")
    assert scaled["spec"]["replicas"] == 7
    assert entry(scaled, "kubectl-scale") == {
        "manager": "kubectl-scale", "operation": "Update", "apiVersion": "apps/v1", "time": T1,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}
    assert "f:replicas" not in entry(scaled, "kubectl")["fieldsV1"]["f:spec"]
    with pytest.raises(errors.ApiError) as exc:
        apply(scaled, manifest(replicas=2), now=T2)
    assert exc.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-scale" with subresource '
                                 '"scale" using apps/v1: .spec.replicas')
    # re-applying the value the updater set is shared ownership, not a conflict
    obj = apply(scaled, manifest(replicas=7), now=T2)
    assert "f:replicas" in entry(obj, "kubectl")["fieldsV1"]["f:spec"]


def test_update_entries_are_keyed_by_api_version_apply_entries_are_not() -> None:
    live = server_stored(apply(None, manifest(), api_version="apps/v1"))
    a = copy.deepcopy(live)
    a["metadata"]["labels"]["x"] = "1"
    ssa.record_update(live, a, manager="ctl", node=DEPLOY, api_version="apps/v1", now=T1)
    b = copy.deepcopy(a)
    b["metadata"]["labels"]["y"] = "1"
    ssa.record_update(a, b, manager="ctl", node=DEPLOY, api_version="apps/v1beta2", now=T2)
    assert sorted(e["apiVersion"] for e in entries(b) if e["manager"] == "ctl") == ["apps/v1", "apps/v1beta2"]
    c = apply(server_stored(b), manifest(), api_version="apps/v1beta2", now=T3)
    assert [e["apiVersion"] for e in entries(c) if e["manager"] == "kubectl"] == ["apps/v1beta2"]


def test_update_entry_merges_repeated_writes_and_drops_emptied_entries() -> None:
    base: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    ssa.record_update(None, base, manager="one", node=CM, api_version="v1", now=T0)
    assert entry(base, "one")["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
    nxt = copy.deepcopy(base)
    nxt["data"]["b"] = "2"
    ssa.record_update(base, nxt, manager="one", node=CM, api_version="v1", now=T1)
    assert entry(nxt, "one")["fieldsV1"] == {"f:data": {".": {}, "f:a": {}, "f:b": {}}}
    assert entry(nxt, "one")["time"] == T1
    third = copy.deepcopy(nxt)
    third["data"] = {"a": "9", "b": "9"}
    ssa.record_update(nxt, third, manager="two", node=CM, api_version="v1", now=T2)
    # "one" lost both keys; only the map itself remains its own, so it keeps an entry
    assert entry(third, "one")["fieldsV1"] == {"f:data": {}}
    assert entry(third, "two")["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    fourth = copy.deepcopy(third)
    del fourth["data"]
    ssa.record_update(third, fourth, manager="two", node=CM, api_version="v1", now=T3)
    assert "managedFields" not in fourth["metadata"], "entries with empty sets are dropped"


def test_unchanged_update_keeps_entries_untouched() -> None:
    live = server_stored(apply(None, manifest()))
    same = copy.deepcopy(live)
    ssa.record_update(live, same, manager="noop", node=DEPLOY, api_version="apps/v1", now=T1)
    assert entries(same) == entries(live)


def test_managed_fields_single_empty_entry_strips_them_but_empty_list_does_not() -> None:
    live = server_stored(apply(None, manifest()))
    kept = copy.deepcopy(live)
    kept["metadata"]["managedFields"] = []
    kept["metadata"]["labels"]["x"] = "1"
    ssa.record_update(live, kept, manager="x", node=DEPLOY, api_version="apps/v1", now=T1)
    assert [e["manager"] for e in entries(kept)] == ["kubectl", "x"]
    stripped = copy.deepcopy(live)
    stripped["metadata"]["managedFields"] = [{}]
    ssa.record_update(live, stripped, manager="x", node=DEPLOY, api_version="apps/v1", now=T1)
    assert "managedFields" not in stripped["metadata"]


def test_apply_rejects_managed_fields_in_config() -> None:
    cfg = manifest()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(errors.ApiError) as exc:
        apply(None, cfg)
    assert (exc.value.code, exc.value.message) == (400, "metadata.managedFields must be nil")


def test_more_than_ten_updaters_fold_into_ancient_changes() -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    for i in range(12):
        nxt = copy.deepcopy(obj)
        nxt["data"][f"k{i}"] = "v"
        ssa.record_update(obj, nxt, manager=f"m{i:02d}", node=CM, api_version="v1", now=f"2026-11-26T15:{i:02d}:00Z")
        obj = nxt
    managers = [e["manager"] for e in entries(obj)]
    assert len(managers) == 10
    assert managers[0] == "ancient-changes"
    ancient = entry(obj, "ancient-changes")
    assert ancient["fieldsV1"] == {"f:data": {"f:k0": {}, "f:k1": {}, "f:k2": {}}}
    assert ancient["time"] == "2026-11-26T15:02:00Z"


def test_entries_sorted_apply_first_then_time() -> None:
    live = server_stored(apply(None, manifest(), now=T2))
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["e"] = "1"
    ssa.record_update(live, edited, manager="aaa-editor", node=DEPLOY, api_version="apps/v1", now=T1)
    obj = apply(edited, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                         "spec": {"paused": True}}, "zzz", now=T3)
    assert [(e["operation"], e["manager"]) for e in entries(obj)] == [
        ("Apply", "kubectl"), ("Apply", "zzz"), ("Update", "aaa-editor")]


# ------------------------------------------------------------------ status subresource


def test_status_apply_only_touches_status() -> None:
    live = server_stored(apply(None, manifest()))
    cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 99}, "status": {"replicas": 2, "readyReplicas": 2}}
    obj = apply(live, cfg, "controller", now=T1, subresource="status")
    assert obj["spec"]["replicas"] == 2
    assert obj["status"] == {"replicas": 2, "readyReplicas": 2}
    assert entry(obj, "controller") == {
        "manager": "controller", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:readyReplicas": {}, "f:replicas": {}}},
        "subresource": "status"}
    # a main-resource apply leaves the status alone
    again = apply(server_stored(obj), manifest(), now=T2)
    assert again["status"] == {"replicas": 2, "readyReplicas": 2}


def test_status_update_records_under_status_subresource_and_main_update_ignores_status() -> None:
    live = server_stored(apply(None, manifest()))
    new = copy.deepcopy(live)
    new["status"] = {"observedGeneration": 1}
    ssa.record_update(live, new, manager="kube-controller-manager", node=DEPLOY, api_version="apps/v1", now=T1,
                      subresource="status")
    assert entry(new, "kube-controller-manager")["fieldsV1"] == {"f:status": {".": {}, "f:observedGeneration": {}}}
    assert entry(new, "kube-controller-manager")["subresource"] == "status"
    main = copy.deepcopy(new)
    main["status"] = {"observedGeneration": 2}
    ssa.record_update(new, main, manager="someone", node=DEPLOY, api_version="apps/v1", now=T2)
    assert all(e["manager"] != "someone" for e in entries(main))


def test_list_map_key_defaults_are_filled_like_the_server() -> None:
    """``ports: [{containerPort: 80}]`` is the item ``containerPort=80,protocol=TCP``: applying it
    over the defaulted live object must not duplicate the port."""
    cfg = manifest()
    cfg["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    live = server_stored(apply(None, cfg))
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"  # the store's default
    again = apply(live, cfg, "other", now=T1)
    assert again["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    ports = entry(again, "other")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"web"}']["f:ports"]
    assert ports == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}


def test_client_rewritten_managed_fields_are_kept_on_unchanged_body() -> None:
    """kubectl migrates client-side-apply ownership by rewriting managedFields only."""
    live = server_stored(apply(None, manifest()))
    rewritten = copy.deepcopy(live)
    rewritten["metadata"]["managedFields"][0]["manager"] = "renamed"
    ssa.record_update(live, rewritten, manager="kubectl", node=DEPLOY, api_version="apps/v1", now=T1)
    assert [e["manager"] for e in entries(rewritten)] == ["renamed"]


def test_custom_resource_sets_follow_the_crd_schema() -> None:
    crd = {"spec": {"group": "ex.io", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced",
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "size": {"type": "integer"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "items": {"type": "array", "x-kubernetes-list-type": "map",
                                      "x-kubernetes-list-map-keys": ["id"],
                                      "items": {"type": "object", "properties": {
                                          "id": {"type": "string"}, "v": {"type": "integer"}}}}}}}}}}]}}
    rt = _SCHEMAS.types_for_crd(crd)[0]
    node = _SCHEMAS.root(rt)
    cfg = {"apiVersion": "ex.io/v1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"size": 1, "tags": ["x"], "items": [{"id": "a", "v": 1}]}}
    obj = apply(None, cfg, "m", node=node, rt=rt, api_version="ex.io/v1")
    assert entry(obj, "m")["fieldsV1"] == {"f:spec": {
        "f:items": {'k:{"id":"a"}': {".": {}, "f:id": {}, "f:v": {}}}, "f:size": {}, "f:tags": {}}}
    # a custom resource starts from an empty object: a create owns spec itself too
    created = {"apiVersion": "ex.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}
    ssa.record_update(None, created, manager="c", node=node, api_version="ex.io/v1", now=T0)
    assert entry(created, "c")["fieldsV1"] == {"f:spec": {".": {}, "f:size": {}}}
