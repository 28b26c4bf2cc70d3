"""Server-side apply to the /status subresource: a controller's way of writing status."""

from __future__ import annotations

from kubernetes import client, config

from local.kubesim.server import KubeSim


def test_apply_to_status_sets_status_and_owns_it(kubesim: KubeSim, namespace: str) -> None:
    kubesim.pause_controllers()
    try:
        api = config.new_client_from_config(config_file=kubesim.kubeconfig_path)
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})  # the namespace works
        apps = client.AppsV1Api(api)
        apps.create_namespaced_deployment(namespace, {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
        })
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1}}
        apps.patch_namespaced_deployment_status(
            "web", namespace, body, field_manager="status-writer", force=True,
            _content_type="application/apply-patch+yaml")
        live = apps.read_namespaced_deployment(name="web", namespace=namespace)
        assert live.status.ready_replicas == 1
        entry = next(m for m in live.metadata.managed_fields if m.manager == "status-writer")
        assert entry.operation == "Apply" and entry.subresource == "status"
        assert "f:readyReplicas" in entry.fields_v1["f:status"]
        assert live.metadata.generation == 1  # status writes never bump generation
    finally:
        kubesim.resume_controllers()
