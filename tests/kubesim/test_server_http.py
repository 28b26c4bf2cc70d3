"""kubesim's HTTP surface over a real TLS socket, checked request by request.

These pin down the wire details clients depend on but that kubectl would hide: status
codes, Status bodies, watch framing, discovery shapes, dry-run, selectors, paging.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.kubesim.server import KubeSim

REPO = Path(__file__).resolve().parents[2]


class Http:
    """A keep-alive HTTPS connection verified against the server's CA."""

    def __init__(self, sim: KubeSim, token: str | None = None) -> None:
        ctx = ssl.create_default_context(cadata=sim.certs.ca_pem.decode())
        self.conn = http.client.HTTPSConnection(sim.host, sim.port, context=ctx, timeout=30)
        self.token = sim.token if token is None else token

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
             accept: str = "application/json") -> tuple[int, Any, http.client.HTTPResponse]:
        headers = {"Accept": accept, "User-Agent": "kubesim-test/1.0"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode()
        return resp.status, parsed, resp

    def watch(self, path: str, count: int) -> list[dict[str, Any]]:
        """Read ``count`` events (or until the stream ends) from a watch URL."""
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        resp = self.conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Transfer-Encoding") == "chunked"
        events = []
        while len(events) < count:
            line = resp.readline()
            if not line:
                break
            events.append(json.loads(line))
        resp.close()
        self.conn.close()
        return events


@pytest.fixture
def h(kubesim: KubeSim) -> Http:
    return Http(kubesim)


def cm(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **extra}, "data": {"k": "v"}}


def test_auth_required(kubesim: KubeSim) -> None:
    status, body, _ = Http(kubesim, token="").call("GET", "/api/v1/namespaces")
    assert status == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    status, _, _ = Http(kubesim, token="wrong").call("GET", "/version")
    assert status == 401


def test_read_only_token_gets_403_on_writes(kubesim: KubeSim, namespace: str) -> None:
    ro = Http(kubesim, token=kubesim.read_only_token)
    assert ro.call("GET", f"/api/v1/namespaces/{namespace}/configmaps")[0] == 200
    status, body, _ = ro.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm("x"))
    assert status == 403 and body["reason"] == "Forbidden" and "cannot create" in body["message"]


def test_discovery_shapes(h: Http) -> None:
    status, api, _ = h.call("GET", "/api")
    assert status == 200 and api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    _, groups, resp = h.call("GET", "/apis")
    assert resp.getheader("Content-Type") == "application/json"
    for g in groups["groups"]:
        assert g["preferredVersion"] in g["versions"]
    _, apps, _ = h.call("GET", "/apis/apps/v1")
    by_name = {r["name"]: r for r in apps["resources"]}
    dep = by_name["deployments"]
    assert dep["kind"] == "Deployment" and dep["namespaced"] and "watch" in dep["verbs"]
    assert dep["singularName"] == "deployment" and "deploy" in dep["shortNames"]
    assert "deployments/status" in by_name and "deployments/scale" in by_name
    _, core, _ = h.call("GET", "/api/v1")
    assert {"configmaps", "namespaces", "pods", "services"} <= {r["name"] for r in core["resources"]}
    assert h.call("GET", "/apis/nope.example.com/v1")[0] == 404
    _, version, _ = h.call("GET", "/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")


def test_openapi_v3_index_lists_every_group_version(h: Http) -> None:
    _, index, _ = h.call("GET", "/openapi/v3")
    paths = index["paths"]
    assert "api/v1" in paths and "apis/apps/v1" in paths
    status, doc, _ = h.call("GET", paths["apis/apps/v1"]["serverRelativeURL"])
    assert status == 200 and "paths" in doc


def test_create_generate_name_and_system_fields(h: Http, namespace: str) -> None:
    status, obj, _ = h.call("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                            {"metadata": {"generateName": "gen-"}, "data": {}})
    assert status == 201
    meta = obj["metadata"]
    assert meta["name"].startswith("gen-") and len(meta["name"]) == len("gen-") + 5
    assert meta["uid"] and meta["creationTimestamp"] and int(meta["resourceVersion"]) > 0
    assert "generation" not in meta  # ConfigMaps have no generation on a real server
    status, body, _ = h.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm(meta["name"]))
    assert status == 409 and body["reason"] == "AlreadyExists"
    status, body, _ = h.call("POST", "/api/v1/namespaces/missing-ns/configmaps", cm("a"))
    assert status == 404 and body["message"] == 'namespaces "missing-ns" not found'


def test_dry_run_persists_nothing(kubesim: KubeSim, h: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    status, obj, _ = h.call("POST", base + "?dryRun=All", cm("dry"))
    assert status == 201 and not obj["metadata"].get("resourceVersion")
    assert h.call("GET", base + "/dry")[0] == 404
    _, live, _ = h.call("POST", base, cm("dry"))
    rv_before = kubesim.store.resource_version
    status, patched, _ = h.call("PATCH", base + "/dry?dryRun=All", {"data": {"k": "changed"}},
                                content_type="application/merge-patch+json")
    assert status == 200 and patched["data"]["k"] == "changed"
    assert patched["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    status, _, _ = h.call("DELETE", base + "/dry?dryRun=All")
    assert status == 200
    _, after, _ = h.call("GET", base + "/dry")
    assert after["data"]["k"] == "v" and kubesim.store.resource_version == rv_before
    assert h.call("POST", base + "?dryRun=Some", cm("x"))[0] == 400


def test_field_validation_modes(h: Http, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fv"},
           "spec": {"replicas": 1, "bogus": True, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    status, body, _ = h.call("POST", base + "?fieldValidation=Strict", dep)
    assert status in (400, 422) and 'unknown field "spec.bogus"' in body["message"]
    status, obj, resp = h.call("POST", base + "?fieldValidation=Warn", dep)
    assert status == 201 and "spec.bogus" in (resp.getheader("Warning") or "")
    assert "bogus" not in obj["spec"]  # pruned like the real decoder drops it
    assert h.call("POST", base + "?fieldValidation=Nope", dep)[0] == 400


def test_update_conflicts_and_unsupported_patches(h: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj, _ = h.call("POST", base, cm("u"))
    obj["data"]["k"] = "2"
    status, updated, _ = h.call("PUT", base + "/u", obj)
    assert status == 200 and updated["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
    status, body, _ = h.call("PUT", base + "/u", obj)
    assert status == 409 and body["reason"] == "Conflict" and "the object has been modified" in body["message"]
    del obj["metadata"]["resourceVersion"]
    obj["data"]["k"] = "3"
    assert h.call("PUT", base + "/u", obj)[0] == 200  # unconditional for built-ins
    status, body, _ = h.call("PATCH", base + "/u?force=true", {"data": {}}, content_type="application/merge-patch+json")
    assert status == 422
    status, body, _ = h.call("PATCH", base + "/u", {"data": {}}, content_type="text/plain")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    status, body, _ = h.call("PATCH", base + "/u", yaml.safe_dump(cm("u")), content_type="application/apply-patch+yaml")
    assert status == 422 and "fieldManager" in body["message"]
    status, body, _ = h.call("PATCH", base + "/u", [{"op": "test", "path": "/data/k", "value": "nope"}],
                             content_type="application/json-patch+json")
    assert status >= 400 and body["kind"] == "Status"
    status, body, _ = h.call("GET", f"/api/v1/namespaces/{namespace}/pods/x/log")
    assert status in (404, 501)


def test_list_selectors_and_paging(h: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    for i, (tier, env) in enumerate([("web", "prod"), ("web", "dev"), ("db", "prod"), ("db", None)]):
        labels = {"tier": tier, **({"env": env} if env else {})}
        h.call("POST", base, cm(f"c{i}", labels=labels))

    def names(query: str) -> list[str]:
        status, body, _ = h.call("GET", base + "?" + query)
        assert status == 200, body
        return [i["metadata"]["name"] for i in body["items"]]

    assert names("labelSelector=tier%3Dweb") == ["c0", "c1"]
    assert names("labelSelector=tier%3D%3Dweb,env!%3Dprod") == ["c1"]
    assert names("labelSelector=env+in+(prod,dev)") == ["c0", "c1", "c2"]
    assert names("labelSelector=env+notin+(prod)") == ["c1", "c3"]
    assert names("labelSelector=env") == ["c0", "c1", "c2"]
    assert names("labelSelector=!env") == ["c3"]
    assert names("fieldSelector=metadata.name%3Dc2") == ["c2"]
    assert names("fieldSelector=metadata.name!%3Dc2") == ["c0", "c1", "c3"]
    assert h.call("GET", base + "?fieldSelector=spec.foo%3Dx")[0] == 400
    assert h.call("GET", base + "?labelSelector=a%3D%3D%3Db(")[0] == 400
    _, page1, _ = h.call("GET", base + "?limit=3")
    assert len(page1["items"]) == 3 and page1["metadata"]["continue"]
    assert "kind" not in page1["items"][0]  # built-in list items carry no kind
    _, page2, _ = h.call("GET", base + "?limit=3&continue=" + page1["metadata"]["continue"])
    assert [i["metadata"]["name"] for i in page2["items"]] == ["c3"] and not page2["metadata"].get("continue")
    _, everywhere, _ = h.call("GET", "/api/v1/configmaps?labelSelector=tier")
    assert len(everywhere["items"]) >= 4


def test_table_answers(h: Http, namespace: str) -> None:
    h.call("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm("tab"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    _, table, _ = h.call("GET", f"/api/v1/namespaces/{namespace}/configmaps", accept=accept)
    assert table["kind"] == "Table" and table["columnDefinitions"][0]["name"] == "Name"
    assert table["rows"][0]["object"]["metadata"]["name"] == "tab"
    _, single, _ = h.call("GET", f"/api/v1/namespaces/{namespace}/configmaps/tab", accept=accept)
    assert single["kind"] == "Table" and len(single["rows"]) == 1
    _, plain, _ = h.call("GET", f"/api/v1/namespaces/{namespace}/configmaps/tab",
                         accept="application/vnd.kubernetes.protobuf,application/json")
    assert plain["kind"] == "ConfigMap"


def test_watch_from_rv_and_initial_events(kubesim: KubeSim, h: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _, first, _ = h.call("POST", base, cm("w0"))
    rv = first["metadata"]["resourceVersion"]
    h.call("POST", base, cm("w1"))
    h.call("DELETE", base + "/w0")
    events = Http(kubesim).watch(f"{base}?watch=1&resourceVersion={rv}&timeoutSeconds=5", 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1"), ("DELETED", "w0")]
    initial = Http(kubesim).watch(
        f"/api/v1/watch/namespaces/{namespace}/configmaps?sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=5", 2)
    assert initial[0]["type"] == "ADDED" and initial[0]["object"]["metadata"]["name"] == "w1"
    assert initial[1]["type"] == "BOOKMARK"
    assert initial[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    status, body, _ = h.call("GET", f"{base}?watch=1&sendInitialEvents=true")
    assert status == 422
    ended = Http(kubesim).watch(f"{base}?watch=1&resourceVersion={kubesim.store.resource_version}&timeoutSeconds=1", 5)
    assert ended == []


def test_watch_too_old_rv_is_410_error_event() -> None:
    with KubeSim(run_controllers=False) as sim:
        h = Http(sim)
        h.call("POST", "/api/v1/namespaces/default/configmaps", cm("a"))
        sim.store.compact()
        events = Http(sim).watch("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1", 1)
        assert events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_delete_finalizers_propagation_and_gc(kubesim: KubeSim, h: Http, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    _, owner, _ = h.call("POST", base, cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    h.call("POST", base, cm("dep", ownerReferences=[ref]))
    status, body, _ = h.call("DELETE", base + "/owner")
    assert status == 200 and body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "owner", "kind": "configmaps", "uid": owner["metadata"]["uid"]}
    _wait(lambda: h.call("GET", base + "/dep")[0] == 404)
    # finalizer holds the object
    h.call("POST", base, cm("held", finalizers=["example.com/x"]))
    status, body, _ = h.call("DELETE", base + "/held")
    assert status == 200 and body["kind"] == "ConfigMap" and body["metadata"]["deletionTimestamp"]
    status, body, _ = h.call("PATCH", base + "/held", {"metadata": {"finalizers": None}},
                             content_type="application/merge-patch+json")
    assert status == 200
    assert h.call("GET", base + "/held")[0] == 404
    # foreground / orphan add their finalizers
    _, fg, _ = h.call("POST", base, cm("fg"))
    h.call("POST", base, cm("fg-dep", ownerReferences=[{**ref, "name": "fg", "uid": fg["metadata"]["uid"]}]))
    _, body, _ = h.call("DELETE", base + "/fg", {"propagationPolicy": "Foreground"})
    assert "foregroundDeletion" in body["metadata"]["finalizers"]
    _wait(lambda: h.call("GET", base + "/fg")[0] == 404 and h.call("GET", base + "/fg-dep")[0] == 404)
    _, orphan_owner, _ = h.call("POST", base, cm("or"))
    h.call("POST", base, cm("or-dep", ownerReferences=[{**ref, "name": "or", "uid": orphan_owner["metadata"]["uid"]}]))
    _, body, _ = h.call("DELETE", base + "/or?propagationPolicy=Orphan")
    assert "orphan" in body["metadata"]["finalizers"]
    _wait(lambda: h.call("GET", base + "/or")[0] == 404)
    status, kept, _ = h.call("GET", base + "/or-dep")
    assert status == 200 and not kept["metadata"].get("ownerReferences")


def test_namespace_termination(kubesim: KubeSim, h: Http, fresh_namespace) -> None:
    ns = fresh_namespace("nsdel")
    h.call("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("a"))
    status, body, _ = h.call("DELETE", f"/api/v1/namespaces/{ns}")
    assert status == 200 and body["status"]["phase"] == "Terminating"
    _wait(lambda: h.call("GET", f"/api/v1/namespaces/{ns}")[0] == 404)


def test_crd_makes_resources_real(kubesim: KubeSim, h: Http, namespace: str) -> None:
    group = namespace.replace("-", "") + ".kubesim.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "things", "singular": "thing", "kind": "Thing", "shortNames": ["th"],
                           "categories": ["all"]},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}, "scale": {
                                   "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                                   "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}}}]},
    }
    status, created, _ = h.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status == 201
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert created["status"]["acceptedNames"]["kind"] == "Thing"
    _, res, _ = h.call("GET", f"/apis/{group}/v1")
    names = {r["name"]: r for r in res["resources"]}
    assert names["things"]["shortNames"] == ["th"] and "things/status" in names and "things/scale" in names
    _, index, _ = h.call("GET", "/openapi/v3")
    assert f"apis/{group}/v1" in index["paths"]
    base = f"/apis/{group}/v1/namespaces/{namespace}/things"
    status, thing, _ = h.call("POST", base, {"apiVersion": f"{group}/v1", "kind": "Thing",
                                             "metadata": {"name": "t"}, "spec": {"replicas": 1},
                                             "status": {"replicas": 9}})
    assert status == 201 and "status" not in thing and thing["metadata"]["generation"] == 1
    status, st, _ = h.call("PATCH", base + "/t/status", {"status": {"replicas": 1}},
                           content_type="application/merge-patch+json")
    assert status == 200 and st["status"]["replicas"] == 1 and st["metadata"]["generation"] == 1
    _, scale, _ = h.call("GET", base + "/t/scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
    status, _, _ = h.call("PATCH", base + "/t/scale", {"spec": {"replicas": 3}},
                          content_type="application/merge-patch+json")
    assert status == 200
    _, thing, _ = h.call("GET", base + "/t")
    assert thing["spec"]["replicas"] == 3 and thing["metadata"]["generation"] == 2
    status, _, _ = h.call("PATCH", base + "/t", {"spec": {"replicas": 4}},
                          content_type="application/strategic-merge-patch+json")
    assert status == 415
    assert h.call("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.{group}")[0] == 200
    assert h.call("GET", base)[0] == 404
    assert h.call("GET", f"/apis/{group}/v1")[0] == 404


def test_cli_serve_writes_kubeconfig_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc" / "config"
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.kubesim", "serve", "--port", "0", "--kubeconfig", str(kubeconfig)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    try:
        _wait(kubeconfig.exists, timeout=60)
        doc = yaml.safe_load(kubeconfig.read_text())
        cluster = doc["clusters"][0]["cluster"]
        token = doc["users"][0]["user"]["token"]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        host, port = cluster["server"].removeprefix("https://").split(":")
        conn = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(cadata=ca))
        conn.request("GET", "/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        assert resp.status == 200  # ready as soon as the kubeconfig exists
        names = [i["metadata"]["name"] for i in json.loads(resp.read())["items"]]
        assert "default" in names and "kube-system" in names
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def _wait(cond: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
