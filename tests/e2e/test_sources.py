"""End to end: a Helm chart in Git, registered as an Argo CD Application with a ``helm``
block, rendered by the render function with the real helm binary, applied to kubesim and
reported Synced and Healthy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from local.story import LocalWorld, application, synced_healthy

CHART = {
    "charts/shop/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
    "charts/shop/values.yaml": "image: nginx:1.25\nreplicas: 1\n",
    "charts/shop/values-prod.yaml": "replicas: 2\n",
    "charts/shop/templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}-web}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-web}
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
""",
}


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        yield w


def test_helm_app_from_git_is_applied_synced_and_healthy(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("helm-shop", CHART)
    doc = yaml.safe_load(application("shop", repo, server, automated=True, path="charts/shop", namespace="shop"))
    doc["spec"]["source"]["helm"] = {
        "releaseName": "storefront",
        "valueFiles": ["values-prod.yaml"],
        "parameters": [{"name": "image", "value": "nginx:1.27"}],
    }
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(doc))
    world.tick()
    world.until("Synced and Healthy", synced_healthy(world, "shop"))

    dep = world.deployment("shop", "storefront-web")  # releaseName, destination namespace
    assert dep.spec.replicas == 2  # valueFiles
    assert dep.spec.template.spec.containers[0].image == "nginx:1.27"  # parameters
    status = world.status("shop")
    assert [(r["kind"], r["name"]) for r in status["resources"]] == [("Deployment", "storefront-web")]
    assert not status.get("conditions")
