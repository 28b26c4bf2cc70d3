"""Re-applying a manifest that leaves a defaulted field out is no spec change (no generation bump)."""

from __future__ import annotations

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

from local.kubesim.server import KubeSim

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}],  # protocol defaulted by the server
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],  # apiVersion defaulted
            }]},
        },
    },
}


def test_reapply_without_defaulted_fields_keeps_generation(kubesim: KubeSim, namespace: str, tmp_path) -> None:
    api = config.new_client_from_config(config_file=kubesim.kubeconfig_path)
    deployments = DynamicClient(api, cache_file=str(tmp_path / "discovery.json")).resources.get(
        api_version="apps/v1", kind="Deployment")
    first = deployments.server_side_apply(body=DEPLOYMENT, namespace=namespace, field_manager="gitferry", force=True)
    assert first.metadata.generation == 1
    env = first.spec.template.spec.containers[0].env[0]
    assert env.valueFrom.fieldRef.apiVersion == "v1"  # the server filled it in
    for _ in range(2):
        again = deployments.server_side_apply(body=DEPLOYMENT, namespace=namespace, field_manager="gitferry", force=True)
        assert again.metadata.generation == 1
    changed = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": 3}}
    assert deployments.server_side_apply(body=changed, namespace=namespace, field_manager="gitferry",
                                         force=True).metadata.generation == 2
    client.AppsV1Api(api).read_namespaced_deployment("web", namespace)
