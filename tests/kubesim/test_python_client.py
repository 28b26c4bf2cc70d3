"""The official ``kubernetes`` Python client against kubesim: typed APIs, dynamic client, watch.

gitferry's engine is built on this client, so its expectations (typed list models need
``items: []``, ConflictError on stale RVs, ApiException status codes) are checked here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ConflictError

from local.kubesim.server import KubeSim


def _deployment(name: str, replicas: int = 1) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}},
    }


def test_core_v1_configmap_crud(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    empty = core.list_namespaced_config_map(namespace)
    assert empty.items == []
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"k": "v"}})
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    created.data["k"] = "w"
    replaced = core.replace_namespaced_config_map("c", namespace, created)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("c", namespace, created)
    assert stale.value.status == 409
    answer = core.delete_namespaced_config_map("c", namespace)
    status = answer if isinstance(answer, dict) else api.sanitize_for_serialization(answer)
    assert status["status"] == "Success"
    assert status["details"]["name"] == "c" and status["details"]["uid"] == created.metadata.uid
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("c", namespace)
    assert missing.value.status == 404


def test_create_into_missing_namespace_is_404(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(api).create_namespaced_config_map("nope-missing", {"metadata": {"name": "c"}})
    assert exc.value.status == 404
    assert 'namespaces \\"nope-missing\\" not found' in exc.value.body or 'namespaces "nope-missing" not found' in exc.value.body


def test_apps_v1_generation_moves_only_on_spec(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    dep = apps.create_namespaced_deployment(namespace, _deployment("gen"))
    assert dep.metadata.generation == 1
    assert dep.spec.strategy.type == "RollingUpdate"  # server-side defaults
    labelled = apps.patch_namespaced_deployment("gen", namespace, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("gen", namespace, {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    scale = apps.read_namespaced_deployment_scale("gen", namespace)
    assert scale.spec.replicas == 3
    apps.patch_namespaced_deployment_scale("gen", namespace, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("gen", namespace).spec.replicas == 4


def test_dynamic_server_side_apply(dyn: dynamic.DynamicClient, namespace: str) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = _deployment("ssa", replicas=2)
    with pytest.raises(ApiException) as no_manager:
        deployments.server_side_apply(body=body, name="ssa", namespace=namespace)
    assert no_manager.value.status == 422
    dry = deployments.server_side_apply(body=body, name="ssa", namespace=namespace, field_manager="gitferry",
                                        dry_run="All")
    assert dry.spec.replicas == 2 and not dry.metadata.resourceVersion
    with pytest.raises(ApiException) as not_there:
        deployments.get(name="ssa", namespace=namespace)
    assert not_there.value.status == 404
    applied = deployments.server_side_apply(body=body, name="ssa", namespace=namespace, field_manager="gitferry")
    assert applied.spec.replicas == 2
    managers = [(m.manager, m.operation) for m in applied.metadata.managedFields]
    assert ("gitferry", "Apply") in managers


def test_dynamic_stale_replace_is_conflict(dyn: dynamic.DynamicClient, namespace: str) -> None:
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    created = cms.create(body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stale"},
                               "data": {"a": "1"}}, namespace=namespace)
    stale = created.to_dict()
    cms.patch(body={"data": {"a": "2"}}, name="stale", namespace=namespace,
              content_type="application/merge-patch+json")
    with pytest.raises(ConflictError):
        cms.replace(body=stale, namespace=namespace)


def test_watch_stream_from_resource_version(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version

    def writer() -> None:
        c = client.CoreV1Api(api)
        c.create_namespaced_config_map(namespace, {"metadata": {"name": "w1"}})
        c.patch_namespaced_config_map("w1", namespace, {"data": {"a": "b"}})
        c.delete_namespaced_config_map("w1", namespace)

    threading.Thread(target=writer).start()
    w = watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=10):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_strategic_patch_on_custom_resource_is_415(api: client.ApiClient, dyn: dynamic.DynamicClient,
                                                   namespace: str) -> None:
    group = namespace.replace("-", "") + ".example.com"
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(body={
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    })
    custom = client.CustomObjectsApi(api)
    obj = custom.create_namespaced_custom_object(group, "v1", namespace, "gadgets", {
        "apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"n": 1}})
    assert obj["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as exc:
        dyn.resources.get(api_version=f"{group}/v1", kind="Gadget").patch(
            body={"spec": {"n": 2}}, name="g", namespace=namespace,
            content_type="application/strategic-merge-patch+json")
    assert exc.value.status == 415
    merged = custom.patch_namespaced_custom_object(group, "v1", namespace, "gadgets", "g", {"spec": {"n": 2}})
    assert merged["spec"]["n"] == 2 and merged["metadata"]["generation"] == 2
    without_rv = {k: v for k, v in merged.items()}
    without_rv["metadata"] = {k: v for k, v in merged["metadata"].items() if k != "resourceVersion"}
    with pytest.raises(ApiException) as no_rv:
        custom.replace_namespaced_custom_object(group, "v1", namespace, "gadgets", "g", without_rv)
    assert no_rv.value.status == 422
    listed = custom.list_namespaced_custom_object(group, "v1", namespace, "gadgets")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g"]
    assert listed["items"][0]["kind"] == "Gadget"  # custom resource list items keep kind
    crds.delete(name=f"gadgets.{group}")


def test_read_only_token_cannot_write(kubesim: KubeSim, namespace: str, tmp_path: Path) -> None:
    path = kubesim.write_kubeconfig(str(tmp_path / "ro"), read_only=True)
    ro = config.new_client_from_config(config_file=path)
    core = client.CoreV1Api(ro)
    assert core.list_namespaced_config_map(namespace).items == []
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    assert exc.value.status == 403
    ro.close()
