"""The read-only proxy Helm ``lookup`` renders through (gitferry.lookup_proxy), against kubesim:
GETs reach the cluster with gitferry's credential, nothing else does, and helm never holds it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitferry import lookup_proxy, render
from gitferry.model import ApplicationSource, HelmOptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

LOOKUP_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: derived
data:
  color: {{ dig "data" "color" "none" (lookup "v1" "ConfigMap" "%s" "live") | quote }}
"""


def chart_repo(tmp_path: Path, namespace: str) -> Path:
    chart = tmp_path / "repo" / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: lk\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(LOOKUP_TEMPLATE % namespace)
    return tmp_path / "repo"


def test_lookup_reads_the_live_object_only_through_the_proxy(cluster: Any, namespace: str, tmp_path: Path) -> None:
    client.CoreV1Api(cluster.api_client).create_namespaced_config_map(
        namespace, {"metadata": {"name": "live"}, "data": {"color": "blue"}})
    repo = chart_repo(tmp_path, namespace)
    source = ApplicationSource(repoURL="https://git.example/x", path="chart", helm=HelmOptions())
    offline = render.render_source(repo, source, app_name="a", namespace=namespace)
    assert offline[0]["data"]["color"] == "none"  # as Argo CD: lookup finds nothing offline
    with lookup_proxy.ReadOnlyProxy(cluster.api_client) as proxy:
        online = render.render_source(repo, source, app_name="a", namespace=namespace, kubeconfig=proxy.kubeconfig)
        handed = yaml.safe_load(proxy.kubeconfig.read_text())
    assert online[0]["data"]["color"] == "blue"
    # helm's kubeconfig names the proxy on localhost and holds no credential of any kind
    assert handed["clusters"][0]["cluster"] == {"server": proxy.url}
    assert handed["users"][0]["user"] == {}
    assert proxy.url.startswith("http://127.0.0.1:")


def test_writes_and_watches_through_the_proxy_are_refused(cluster: Any, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "keep"}, "data": {"v": "1"}})
    with lookup_proxy.ReadOnlyProxy(cluster.api_client) as proxy:
        # what a chart, a plugin or anything else in the render sandbox could do with that kubeconfig
        via = config.new_client_from_config(config_file=str(proxy.kubeconfig))
        proxied = client.CoreV1Api(via)
        assert proxied.read_namespaced_config_map("keep", namespace).data == {"v": "1"}  # reads work
        attempts = [
            lambda: proxied.create_namespaced_config_map(namespace, {"metadata": {"name": "planted"}}),
            lambda: proxied.patch_namespaced_config_map("keep", namespace, {"data": {"v": "2"}}),
            lambda: proxied.replace_namespaced_config_map("keep", namespace,
                                                          {"metadata": {"name": "keep"}, "data": {"v": "3"}}),
            lambda: proxied.delete_namespaced_config_map("keep", namespace),
        ]
        for attempt in attempts:
            with pytest.raises(ApiException) as refused:
                attempt()
            assert refused.value.status == 403
            assert json.loads(refused.value.body)["reason"] == "Forbidden"
        with pytest.raises(urllib.error.HTTPError) as watch:
            urllib.request.urlopen(f"{proxy.url}/api/v1/namespaces/{namespace}/configmaps?watch=true", timeout=10)
        assert watch.value.code == 403
        assert [r.split(" ")[0] for r in proxy.refused] == ["POST", "PATCH", "PUT", "DELETE", "WATCH"]
        via.close()
    assert core.read_namespaced_config_map("keep", namespace).data == {"v": "1"}  # the cluster is untouched
    names = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
    assert "planted" not in names
