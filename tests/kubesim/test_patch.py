"""Merge patch, JSON patch and strategic merge patch against the real 1.37 schemas.

Expected results follow k8s.io/apimachinery strategicpatch and evanphx/json-patch
(what kube-apiserver runs), including list order and error codes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.kubesim import errors
from local.kubesim.patch import json_merge_patch, json_patch, strategic_merge_patch
from local.kubesim.schema import SchemaNode, Schemas

_SCHEMAS = Schemas()
_TYPES = {(t.group, t.kind): t for t in _SCHEMAS.builtin_types()}


def root(group: str, kind: str) -> SchemaNode:
    return _SCHEMAS.root(_TYPES[(group, kind)])


DEPLOY = root("apps", "Deployment")
POD = root("", "Pod")
SERVICE = root("", "Service")
CONFIGMAP = root("", "ConfigMap")


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "fe"},
                     "finalizers": ["a.example/x", "b.example/y"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "args": ["--a", "--b"],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}],
                        },
                        {"name": "sidecar", "image": "envoy:1"},
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                },
            },
        },
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def smp_containers(patch_containers: list[Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": patch_containers, **extra}
    return {"spec": {"template": {"spec": spec}}}


# ------------------------------------------------------------------ JSON merge patch


def test_merge_patch_null_deletes_and_lists_replace_whole() -> None:
    live = deployment()
    out = json_merge_patch(live, {"metadata": {"labels": {"tier": None, "new": "x"}},
                                  "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "i"}]}}}})
    assert out["metadata"]["labels"] == {"app": "web", "new": "x"}
    assert containers(out) == [{"name": "only", "image": "i"}]
    assert live == deployment(), "input must not be mutated"


def test_merge_patch_nulls_inside_added_object_are_pruned() -> None:
    out = json_merge_patch({"a": 1}, {"b": {"c": None, "d": 1}, "a": None})
    assert out == {"b": {"d": 1}}


def test_merge_patch_object_replaces_scalar_and_scalar_replaces_object() -> None:
    assert json_merge_patch({"a": 1, "b": {"x": 1}}, {"a": {"x": None, "y": 2}, "b": 3}) == {"a": {"y": 2}, "b": 3}


def test_merge_patch_rejects_non_object_patch() -> None:
    with pytest.raises(errors.ApiError) as exc:
        json_merge_patch({}, [1])  # type: ignore[arg-type]
    assert exc.value.code == 400


# ------------------------------------------------------------------ JSON patch


def test_json_patch_add_replace_remove() -> None:
    out = json_patch(deployment(), [
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/labels/new~1key", "value": "v"},
        {"op": "remove", "path": "/metadata/labels/tier"},
        {"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value": {"name": "C", "value": "3"}},
        {"op": "add", "path": "/spec/template/spec/containers/0/args/0", "value": "--first"},
    ])
    assert out["spec"]["replicas"] == 5
    assert out["metadata"]["labels"] == {"app": "web", "new/key": "v"}
    assert [e["name"] for e in containers(out)[0]["env"]] == ["A", "B", "C"]
    assert containers(out)[0]["args"] == ["--first", "--a", "--b"]


def test_json_patch_test_success_then_apply() -> None:
    out = json_patch(deployment(), [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ])
    assert out["spec"]["replicas"] == 3


def test_json_patch_failed_test_is_422_like_the_apiserver() -> None:
    live = deployment()
    with pytest.raises(errors.ApiError) as exc:
        json_patch(live, [
            {"op": "replace", "path": "/spec/replicas", "value": 9},
            {"op": "test", "path": "/spec/replicas", "value": 2},
        ])
    err = exc.value
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == "the server rejected our request due to an error in our request"
    assert err.status()["details"] == {}
    assert str(err.__cause__) == "testing value /spec/replicas failed: test failed"
    assert live["spec"]["replicas"] == 2, "a failed patch changes nothing"


def test_json_patch_test_is_type_strict() -> None:
    with pytest.raises(errors.ApiError):
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    with pytest.raises(errors.ApiError):
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.5}])
    json_patch({"a": {"x": [1, "s"]}}, [{"op": "test", "path": "/a", "value": {"x": [1, "s"]}}])


def test_json_patch_test_missing_member_equals_null() -> None:
    # evanphx v4: a missing member tests equal to null; anything else fails
    assert json_patch({"a": 1}, [{"op": "test", "path": "/b", "value": None}]) == {"a": 1}
    with pytest.raises(errors.ApiError):
        json_patch({"a": 1}, [{"op": "test", "path": "/b", "value": 0}])


def test_json_patch_move_copy_and_negative_index() -> None:
    out = json_patch({"a": [1, 2]}, [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "move", "from": "/a/0", "path": "/b"},
        {"op": "copy", "from": "/b", "path": "/a/0"},
        {"op": "remove", "path": "/a/-1"},
    ])
    assert out == {"a": [1, 2], "b": 1}


@pytest.mark.parametrize("ops", [
    [{"op": "replace", "path": "/spec/missing", "value": 1}],
    [{"op": "remove", "path": "/metadata/annotations/x"}],
    [{"op": "add", "path": "/nope/deeper", "value": 1}],
    [{"op": "add", "path": "/spec/template/spec/containers/9", "value": {}}],
    [{"op": "remove", "path": "/spec/template/spec/containers/x"}],
    [{"op": "move", "from": "/spec/nothing", "path": "/spec/x"}],
    [{"op": "frobnicate", "path": "/spec"}],
    [{"op": "add"}],
])
def test_json_patch_failures_are_422(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(errors.ApiError) as exc:
        json_patch(deployment(), ops)
    assert exc.value.code == 422


def test_json_patch_body_must_be_a_list() -> None:
    with pytest.raises(errors.ApiError) as exc:
        json_patch({}, {"op": "add"})  # type: ignore[arg-type]
    assert exc.value.code == 400
    assert "cannot unmarshal object" in exc.value.message


# ------------------------------------------------------------------ strategic merge patch: containers


def test_smp_merges_containers_by_name_and_keeps_others() -> None:
    out = strategic_merge_patch(deployment(), smp_containers([{"name": "web", "image": "nginx:1.26"}]), DEPLOY)
    assert [c["name"] for c in containers(out)] == ["web", "sidecar"]
    assert containers(out)[0]["image"] == "nginx:1.26"
    assert containers(out)[0]["env"] == deployment()["spec"]["template"]["spec"]["containers"][0]["env"]


def test_smp_new_container_goes_before_server_only_items() -> None:
    # strategicpatch puts patch items first unless the live order ranks them
    out = strategic_merge_patch(deployment(), smp_containers([{"name": "new", "image": "busybox"}]), DEPLOY)
    assert [c["name"] for c in containers(out)] == ["new", "web", "sidecar"]


def test_smp_patch_order_wins_for_items_it_names_and_live_order_interleaves() -> None:
    patch = smp_containers([{"name": "sidecar", "image": "envoy:2"}, {"name": "new", "image": "b"}])
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert [c["name"] for c in containers(out)] == ["web", "sidecar", "new"]


def test_smp_set_element_order_reorders() -> None:
    patch = smp_containers([{"name": "web", "image": "nginx:2"}],
                           **{"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]})
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert [c["name"] for c in containers(out)] == ["sidecar", "web"]
    assert containers(out)[1]["image"] == "nginx:2"
    assert "$setElementOrder/containers" not in out["spec"]["template"]["spec"]


def test_smp_set_element_order_alone_only_reorders() -> None:
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}}}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert [c["name"] for c in containers(out)] == ["sidecar", "web"]


def test_smp_set_element_order_must_match_patch_order() -> None:
    patch = smp_containers([{"name": "web", "image": "x"}, {"name": "sidecar", "image": "y"}],
                           **{"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]})
    with pytest.raises(errors.ApiError) as exc:
        strategic_merge_patch(deployment(), patch, DEPLOY)
    assert exc.value.code == 500
    assert "doesn't match $setElementOrder list" in exc.value.message


def test_smp_delete_directive_in_list_removes_item() -> None:
    out = strategic_merge_patch(deployment(), smp_containers([{"name": "sidecar", "$patch": "delete"}]), DEPLOY)
    assert [c["name"] for c in containers(out)] == ["web"]


def test_smp_replace_directive_in_list_replaces_list() -> None:
    patch = smp_containers([{"name": "solo", "image": "x"}, {"$patch": "replace"}])
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert containers(out) == [{"name": "solo", "image": "x"}]


def test_smp_merge_directive_in_list_is_rejected() -> None:
    with pytest.raises(errors.ApiError) as exc:
        strategic_merge_patch(deployment(), smp_containers([{"$patch": "merge"}]), DEPLOY)
    assert exc.value.code == 500
    assert exc.value.message == "merging lists cannot yet be specified in the patch"


def test_smp_replace_directive_in_map_replaces_map() -> None:
    patch = {"metadata": {"labels": {"$patch": "replace", "only": "this"}}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert out["metadata"]["labels"] == {"only": "this"}


def test_smp_delete_directive_in_map_empties_it() -> None:
    out = strategic_merge_patch(deployment(), {"metadata": {"labels": {"$patch": "delete"}}}, DEPLOY)
    assert out["metadata"]["labels"] == {}


def test_smp_unknown_directive_is_an_error() -> None:
    with pytest.raises(errors.ApiError) as exc:
        strategic_merge_patch(deployment(), {"metadata": {"labels": {"$patch": "frob"}}}, DEPLOY)
    assert exc.value.code == 500
    assert exc.value.message.startswith("unknown patch type: frob in map:")


def test_smp_missing_merge_key_is_an_error() -> None:
    with pytest.raises(errors.ApiError) as exc:
        strategic_merge_patch(deployment(), smp_containers([{"image": "x"}]), DEPLOY)
    assert exc.value.code == 500
    assert exc.value.message == "map: map[image:x] does not contain declared merge key: name"


def test_smp_directives_never_reach_new_fields() -> None:
    live = deployment()
    del live["spec"]["template"]["spec"]["volumes"]
    patch = {"spec": {"template": {"spec": {"volumes": [{"name": "x", "$patch": "delete"}, {"name": "y", "emptyDir": {}}]}}}}
    out = strategic_merge_patch(live, patch, DEPLOY)
    assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "y", "emptyDir": {}}]


# ------------------------------------------------------------------ env, ports, volumes, args, tolerations


def test_smp_env_merge_by_name_with_delete_and_null_value() -> None:
    patch = smp_containers([{"name": "web", "env": [{"name": "B", "value": None}, {"name": "A", "$patch": "delete"},
                                                     {"name": "C", "value": "3"}]}])
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    # B's value is deleted (null), A removed, C added before the server-only remainder
    assert containers(out)[0]["env"] == [{"name": "B"}, {"name": "C", "value": "3"}]


def test_smp_env_delete_of_last_item_leaves_empty_list() -> None:
    patch = smp_containers([{"name": "web", "env": [{"name": "A", "$patch": "delete"}, {"name": "B", "$patch": "delete"}]}])
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert containers(out)[0]["env"] == []


def test_smp_ports_merge_by_container_port() -> None:
    patch = smp_containers([{"name": "web", "ports": [{"containerPort": 80, "name": "http"},
                                                       {"containerPort": 443, "protocol": "TCP"}]}])
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert containers(out)[0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 443, "protocol": "TCP"},
    ]


def test_smp_merge_key_values_compare_with_go_types() -> None:
    # 80 (int64) and 80.0 (float64) are different merge-key values in Go
    patch = smp_containers([{"name": "web", "ports": [{"containerPort": 80.0, "name": "f"}]}])
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert len(containers(out)[0]["ports"]) == 2


def test_smp_volume_mounts_by_mount_path_and_volumes_by_name() -> None:
    patch = {"spec": {"template": {"spec": {
        "containers": [{"name": "web", "volumeMounts": [{"mountPath": "/etc/cfg", "readOnly": True},
                                                        {"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }}}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert containers(out)[0]["volumeMounts"] == [
        {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True}, {"name": "data", "mountPath": "/data"}]
    assert [v["name"] for v in out["spec"]["template"]["spec"]["volumes"]] == ["data", "cfg"]


def test_smp_volume_retain_keys_switches_source() -> None:
    patch = {"spec": {"template": {"spec": {"volumes": [
        {"name": "cfg", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]}}}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert out["spec"]["template"]["spec"]["volumes"] == [{"name": "cfg", "secret": {"secretName": "s"}}]


def test_smp_lists_without_strategy_are_replaced() -> None:
    patch = smp_containers([{"name": "web", "args": ["--c"]}], tolerations=[{"key": "z", "operator": "Exists"}])
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert containers(out)[0]["args"] == ["--c"]
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "z", "operator": "Exists"}]


def test_smp_service_ports_merge_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}], "selector": {"app": "a"}}}
    patch = {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}], "selector": {"app": None, "b": "c"}}}
    out = strategic_merge_patch(live, patch, SERVICE)
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "protocol": "TCP"}, {"port": 443}]
    assert out["spec"]["selector"] == {"b": "c"}


# ------------------------------------------------------------------ retainKeys, conditions, finalizers, nulls


def test_smp_retain_keys_on_deployment_strategy() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_smp_retain_keys_must_cover_patch_fields() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}}
    with pytest.raises(errors.ApiError) as exc:
        strategic_merge_patch(deployment(), patch, DEPLOY)
    assert (exc.value.code, exc.value.message) == (400, "invalid patch format of retainKeys")


def test_smp_status_conditions_merge_by_type() -> None:
    live = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}}
    out = strategic_merge_patch(live, patch, POD)
    # mergeSortedSlice: a server-only item only goes first when the live order ranks it
    # before the next patch item; PodScheduled is not live, so it precedes Initialized
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"},
    ]


def test_smp_finalizers_merge_as_a_set() -> None:
    out = strategic_merge_patch(deployment(), {"metadata": {"finalizers": ["b.example/y", "c.example/z"]}}, DEPLOY)
    assert out["metadata"]["finalizers"] == ["a.example/x", "b.example/y", "c.example/z"]
    out = strategic_merge_patch(deployment(), {"metadata": {"finalizers": ["c.example/z"]}}, DEPLOY)
    assert out["metadata"]["finalizers"] == ["c.example/z", "a.example/x", "b.example/y"]


def test_smp_delete_from_primitive_list() -> None:
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x"]}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert out["metadata"]["finalizers"] == ["b.example/y"]


def test_smp_delete_from_missing_primitive_list_is_a_noop() -> None:
    live = deployment()
    del live["metadata"]["finalizers"]
    out = strategic_merge_patch(live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}, DEPLOY)
    assert "finalizers" not in out["metadata"]


def test_smp_set_element_order_for_primitive_list_with_delete() -> None:
    patch = {"metadata": {
        "$setElementOrder/finalizers": ["c.example/z", "b.example/y"],
        "$deleteFromPrimitiveList/finalizers": ["a.example/x"],
        "finalizers": ["c.example/z"],
    }}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert out["metadata"]["finalizers"] == ["c.example/z", "b.example/y"]


def test_smp_bad_delete_list_key() -> None:
    with pytest.raises(errors.ApiError) as exc:
        strategic_merge_patch(deployment(), {"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}}, DEPLOY)
    assert (exc.value.code, exc.value.message) == (400, "invalid patch format of primitive list")


def test_smp_null_deletes_and_unmatched_nulls_are_ignored() -> None:
    patch = {"spec": {"replicas": None, "paused": None, "template": {"metadata": {"annotations": {"x": None}}}}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert "replicas" not in out["spec"] and "paused" not in out["spec"]
    assert out["spec"]["template"]["metadata"]["annotations"] == {}


def test_smp_configmap_data_is_a_plain_map() -> None:
    live = {"data": {"a": "1", "b": "2"}}
    out = strategic_merge_patch(live, {"data": {"a": None, "c": "3"}}, CONFIGMAP)
    assert out["data"] == {"b": "2", "c": "3"}


def test_smp_does_not_mutate_inputs() -> None:
    live, patch = deployment(), smp_containers([{"name": "sidecar", "$patch": "delete"}])
    saved = copy.deepcopy(patch)
    strategic_merge_patch(live, patch, DEPLOY)
    assert live == deployment() and patch == saved


def test_smp_client_side_apply_shape_round_trip() -> None:
    """The patch kubectl apply computes when an env var is removed from the manifest."""
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
        "containers": [{"$setElementOrder/env": [{"name": "A"}], "name": "web",
                        "env": [{"$patch": "delete", "name": "B"}]}],
    }}}}
    out = strategic_merge_patch(deployment(), patch, DEPLOY)
    assert [c["name"] for c in containers(out)] == ["web", "sidecar"]
    assert containers(out)[0]["env"] == [{"name": "A", "value": "1"}]


def test_go_stable_sort_matches_a_stable_sort_for_consistent_orders() -> None:
    """The SymMerge path (lists longer than 20) must be a correct stable sort."""
    import random

    from local.kubesim.patch import _go_slice_stable

    rng = random.Random(7)
    for n in (0, 1, 19, 20, 21, 45, 130):
        items = [(rng.randint(0, 9), i) for i in range(n)]
        got = _go_slice_stable(list(items), lambda a, b: a[0] < b[0])
        assert got == sorted(items, key=lambda x: x[0])


def test_smp_long_env_list_keeps_patch_order_with_set_element_order() -> None:
    env = [{"name": f"V{i:02d}", "value": str(i)} for i in range(30)]
    live = deployment()
    containers(live)[0]["env"] = env
    order = [{"name": f"V{i:02d}"} for i in reversed(range(30))]
    patch = smp_containers([{"name": "web", "$setElementOrder/env": order, "env": [{"name": "V05", "value": "x"}]}])
    out = strategic_merge_patch(live, patch, DEPLOY)
    assert [e["name"] for e in containers(out)[0]["env"]] == [f"V{i:02d}" for i in reversed(range(30))]
    assert containers(out)[0]["env"][24] == {"name": "V05", "value": "x"}
