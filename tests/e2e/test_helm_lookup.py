"""End to end: Helm ``lookup`` (Argo CD issue #5202) through the handlers on the local stack.

An app annotated ``gitferry.dev/helm-lookup: "true"`` whose cluster was registered with
``allowHelmLookup: true`` renders its chart against the cluster (read-only): the value of a live
ConfigMap ends up in what is deployed. Without the cluster's allowance the app is refused at
registration, and a render after the allowance was withdrawn is a ComparisonError saying why.
Such renders are never taken from the render cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gitferry import render
from kubernetes import client

from local.story import LocalWorld, application, synced_healthy

CHART = {
    "chart/Chart.yaml": "apiVersion: v2\nname: lk\nversion: 0.1.0\n",
    "chart/templates/derived.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: derived
data:
  color: {{ dig "data" "color" "none" (lookup "v1" "ConfigMap" "platform" "shared-settings") | quote }}
""",
}


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        core = client.CoreV1Api(w.k8s)
        core.create_namespace({"metadata": {"name": "platform"}})
        core.create_namespaced_config_map("platform", {"metadata": {"name": "shared-settings"},
                                                       "data": {"color": "teal"}})
        yield w


def register(world: LocalWorld, name: str, allow: bool) -> str:
    world.api_ok("POST", "/api/v1/clusters?upsert=true",
                 {"name": name, "kubeconfig": Path(world.kube.kubeconfig_path).read_text(),
                  "allowHelmLookup": allow})
    return world.kube.url


def lookup_app(name: str, repo: str, cluster: str, namespace: str) -> str:
    doc = yaml.safe_load(application(name, repo, "https://unused", automated=True, path="chart",
                                     namespace=namespace))
    doc["metadata"]["annotations"] = {"gitferry.dev/helm-lookup": "true"}
    doc["spec"]["destination"] = {"name": cluster, "namespace": namespace}
    return yaml.safe_dump(doc)


def test_lookup_reads_the_live_configmap(world: LocalWorld) -> None:
    register(world, "lookup-ok", allow=True)
    repo = world.git.make_repo("lookup-chart", CHART)
    world.api_ok("POST", "/api/v1/applications", lookup_app("looks", repo, "lookup-ok", "looks"))
    world.tick()
    world.until("Synced and Healthy", synced_healthy(world, "looks"))
    derived = client.CoreV1Api(world.k8s).read_namespaced_config_map("derived", "looks")
    assert derived.data == {"color": "teal"}  # taken from the cluster at render time
    cluster = world.api_ok("GET", "/api/v1/clusters/lookup-ok")
    assert cluster["allowHelmLookup"] is True and "kubeconfig" not in cluster

    # never cached: a plain refresh of the same commit runs helm again
    before_runs = render.tool_runs()
    before = world.status("looks")["reconciledAt"]
    world.api_ok("POST", "/api/v1/applications/looks/refresh")
    world.until("compared again", lambda: world.status("looks")["reconciledAt"] != before, tick=False)
    assert render.tool_runs() - before_runs == 1


def test_lookup_refused_without_the_clusters_allowance(world: LocalWorld) -> None:
    register(world, "lookup-no", allow=False)
    repo = world.git.make_repo("lookup-chart-2", CHART)
    status, answer = world.call("POST", "/api/v1/applications", lookup_app("nolook", repo, "lookup-no", "nolook"))
    assert status == 400, answer
    assert "does not allow Helm lookup" in str(answer) and "allowHelmLookup" in str(answer)
    bad = yaml.safe_load(lookup_app("badlook", repo, "lookup-no", "nolook"))
    bad["metadata"]["annotations"]["gitferry.dev/helm-lookup"] = "yes"
    status, answer = world.call("POST", "/api/v1/applications", yaml.safe_dump(bad))
    assert status == 400 and 'must be "true" or "false"' in str(answer), answer
    pinned = yaml.safe_load(lookup_app("kvlook", repo, "lookup-no", "nolook"))
    pinned["spec"]["source"]["helm"] = {"kubeVersion": "1.29.0"}  # helm would ignore it against a cluster
    status, answer = world.call("POST", "/api/v1/applications", yaml.safe_dump(pinned))
    assert status == 400 and "spec.source.helm.kubeVersion: cannot be used with" in str(answer), answer

    # the allowance withdrawn after registration: a ComparisonError saying why, nothing rendered
    register(world, "lookup-later", allow=True)
    world.api_ok("POST", "/api/v1/applications", lookup_app("later", repo, "lookup-later", "later"))
    world.until("Synced", synced_healthy(world, "later"))
    register(world, "lookup-later", allow=False)
    world.api_ok("POST", "/api/v1/applications/later/refresh")
    world.until("ComparisonError", lambda: any(c["type"] == "ComparisonError" and "does not allow Helm lookup"
                                               in c["message"] for c in world.status("later").get("conditions") or []),
                tick=False)
