"""End to end: an Application whose source is a chart in a Helm chart repository
(``spec.source.chart``), as Argo CD users write it. The repository is built by the real
helm binary and served over HTTP; gitferry resolves ``targetRevision`` against its index,
renders the chart with the app's helm options, applies it to kubesim, and follows new
chart versions as they are published."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from local.helmrepo import HelmRepoServer
from local.story import LocalWorld, synced_healthy

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  annotations:
    chart-version: {{ .Chart.Version | quote }}
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
"""
CHART = {"values.yaml": "image: nginx:1.25\nreplicas: 1\n", "templates/deployment.yaml": DEPLOYMENT}


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        yield w


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRepoServer]:
    with HelmRepoServer(tmp_path_factory.mktemp("helm-repo")) as repo:
        for version in ("1.0.0", "1.1.0", "1.2.0-beta.1", "2.0.0"):
            repo.add_chart("web", version, CHART)
        for version in ("0.1.0", "0.2.0"):
            repo.add_chart("api", version, CHART)
        yield repo


def chart_app(name: str, repo_url: str, server: str, chart: str, revision: str, namespace: str,
              helm: dict[str, Any] | None = None) -> str:
    """An Argo CD Application for a chart from a Helm repository, exactly as users write it."""
    source: dict[str, Any] = {"repoURL": repo_url, "chart": chart, "targetRevision": revision}
    if helm is not None:
        source["helm"] = helm
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": source,
            "destination": {"server": server, "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
        },
    }, sort_keys=False)


def test_chart_from_helm_repo_follows_new_versions(world: LocalWorld, charts: HelmRepoServer) -> None:
    server = world.register_cluster("local")
    helm = {"valuesObject": {"image": "nginx:1.27"}, "parameters": [{"name": "replicas", "value": "2"}]}
    world.api_ok("POST", "/api/v1/applications", chart_app("web", charts.url, server, "web", "^1.0", "web", helm))
    world.tick()
    # ^1.0: the highest 1.x release; 1.2.0-beta.1 (a pre-release) and 2.0.0 are not candidates
    world.until("1.1.0 Synced and Healthy", synced_healthy(world, "web", revision="1.1.0"))

    dep = world.deployment("web", "web-web")  # release name defaults to the app name
    assert dep.metadata.annotations["chart-version"] == "1.1.0"
    assert dep.spec.replicas == 2  # helm.parameters
    assert dep.spec.template.spec.containers[0].image == "nginx:1.27"  # helm.valuesObject
    status = world.status("web")
    assert not status.get("conditions")
    assert status["sync"]["comparedTo"]["source"]["chart"] == "web"
    assert "path" not in status["sync"]["comparedTo"]["source"]

    charts.add_chart("web", "1.2.0", CHART)  # published upstream: the next tick picks it up
    world.until("1.2.0 Synced and Healthy", synced_healthy(world, "web", revision="1.2.0"))
    assert world.deployment("web", "web-web").metadata.annotations["chart-version"] == "1.2.0"
    history = world.api_ok("GET", "/api/v1/applications/web/history")["items"]
    assert {"1.1.0", "1.2.0"} <= {h["revision"] for h in history}


def test_one_index_fetch_per_repo_per_tick(world: LocalWorld, charts: HelmRepoServer) -> None:
    """Two apps on one Helm repository: the poll reads its index once; a due render reads it
    again for the digest, and nothing else does."""
    server = world.register_cluster("local")
    for name in ("pair-a", "pair-b"):
        world.api_ok("POST", "/api/v1/applications", chart_app(name, charts.url, server, "api", "0.1.0", name))
    world.until("both synced", lambda: all(synced_healthy(world, n, "0.1.0")() for n in ("pair-a", "pair-b")))
    before = len(charts.requests)
    world.stack.tick("PollFunction")  # the poll alone, before what it causes is delivered
    polled = [p for p in charts.requests[before:] if p.endswith("index.yaml")]
    assert polled == ["/index.yaml"]
    world.settle()


def test_unknown_version_is_a_comparison_error_listing_versions(world: LocalWorld, charts: HelmRepoServer) -> None:
    server = world.register_cluster("local")
    world.api_ok("POST", "/api/v1/applications", chart_app("api-missing", charts.url, server, "api", "9.9.9", "missing"))
    world.tick()
    status = world.status("api-missing")
    conditions = status.get("conditions") or []
    assert [c["type"] for c in conditions] == ["ComparisonError"]
    message = conditions[0]["message"]
    assert "'9.9.9'" in message and "available: 0.2.0, 0.1.0" in message and charts.url in message
    assert status["sync"]["status"] == "Unknown"
    assert world.object_count("missing") == 0  # nothing applied


def test_sync_of_a_chart_version_the_repository_does_not_have_is_422(world: LocalWorld,
                                                                     charts: HelmRepoServer) -> None:
    server = world.register_cluster("local")
    world.api_ok("POST", "/api/v1/applications", chart_app("pinned", charts.url, server, "api", "0.1.0", "pinned"))
    world.settle()
    status, answer = world.call("POST", "/api/v1/applications/pinned/sync", {"revision": "9.9.9"})
    assert status == 422, answer
    assert "9.9.9" in answer["message"] and "0.2.0" in answer["message"]  # the versions there are named
    status, answer = world.call("POST", "/api/v1/applications/pinned/sync", {"revision": "0.2.0"})
    assert status == 202 and answer["revision"] == "0.2.0", answer
