"""The API routes a script relies on, through API Gateway on the local stack (moto server, kubesim
over HTTPS, git over HTTP): the app diff, cluster and repository get / delete / conflict, unknown
webhook providers, and status codes (400 names the field, 404 absent, 409 conflict, 422 impossible)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from local.story import DEPLOYMENT, SERVICE, LocalWorld, application, synced_healthy

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: creds
type: Opaque
data:
  password: {value}
"""


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.register_cluster("local")
        yield w


def _kubeconfig(world: LocalWorld) -> str:
    return Path(world.kube.kubeconfig_path).read_text()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_diff_lists_each_resource_with_a_unified_diff_and_masks_secrets(world: LocalWorld) -> None:
    files = {"app/deployment.yaml": DEPLOYMENT.format(replicas=1, image="nginx:1.25"), "app/service.yaml": SERVICE,
             "app/secret.yaml": SECRET.format(value=_b64("hunter2-old"))}
    repo = world.git.make_repo("diffapp", files)
    world.api_ok("POST", "/api/v1/applications", application("diffapp", repo, world.kube.url, automated=False,
                                                                path="app", namespace="diffapp"))
    world.settle()
    status, before = world.call("GET", "/api/v1/applications/diffapp/diff")
    assert status == 200, before
    rows = {(r["kind"], r["name"]): r for r in before["items"]}
    assert set(rows) == {("Deployment", "guestbook-ui"), ("Service", "guestbook-ui"), ("Secret", "creds")}
    assert rows[("Deployment", "guestbook-ui")]["group"] == "apps"
    assert rows[("Deployment", "guestbook-ui")]["namespace"] == "diffapp"
    assert all(r["status"] == "OutOfSync" for r in rows.values()) and before["differences"] is True
    assert rows[("Deployment", "guestbook-ui")]["diff"].startswith("--- live/")
    assert "+  replicas: 1" in rows[("Deployment", "guestbook-ui")]["diff"]
    assert _b64("hunter2-old") not in str(before) and "++++++++" in rows[("Secret", "creds")]["diff"]
    # the objects compared: live (none yet) and the desired one, Secret values masked there too
    assert rows[("Deployment", "guestbook-ui")]["live"] is None
    assert rows[("Deployment", "guestbook-ui")]["target"]["spec"]["replicas"] == 1
    assert set(rows[("Secret", "creds")]["target"]["data"].values()) <= {"+" * n for n in range(8, 64)}

    world.api_ok("POST", "/api/v1/applications/diffapp/sync", {})
    world.until("diffapp synced", synced_healthy(world, "diffapp"))
    synced = world.api_ok("GET", "/api/v1/applications/diffapp/diff")
    assert synced["differences"] is False
    assert all(r["status"] == "Synced" and r["diff"] == "" for r in synced["items"])

    world.git.commit("diffapp", {"app/deployment.yaml": DEPLOYMENT.format(replicas=3, image="nginx:1.26"),
                            "app/secret.yaml": SECRET.format(value=_b64("hunter2-new"))}, "bump")
    world.api_ok("POST", "/api/v1/applications/diffapp/refresh")
    world.settle()
    drift = world.api_ok("GET", "/api/v1/applications/diffapp/diff")
    rows = {(r["kind"], r["name"]): r for r in drift["items"]}
    deployment = rows[("Deployment", "guestbook-ui")]
    assert deployment["status"] == "OutOfSync" and "-  replicas: 1" in deployment["diff"]
    assert deployment["live"]["spec"]["replicas"] == 1 and deployment["target"]["spec"]["replicas"] == 3
    assert "hunter2" not in str(rows[("Secret", "creds")]) and _b64("hunter2-new") not in str(drift)
    assert "+  replicas: 3" in deployment["diff"] and "nginx:1.26" in deployment["diff"]
    assert rows[("Service", "guestbook-ui")] == {**rows[("Service", "guestbook-ui")], "status": "Synced", "diff": ""}
    secret_diff = rows[("Secret", "creds")]["diff"]
    assert secret_diff and "hunter2" not in secret_diff and _b64("hunter2-new") not in secret_diff
    assert _b64("hunter2-old") not in secret_diff


def test_diff_of_an_unknown_app_is_404(world: LocalWorld) -> None:
    status, answer = world.call("GET", "/api/v1/applications/nope/diff")
    assert status == 404 and "nope" in answer["message"]


def test_cluster_get_conflict_upsert_and_delete(world: LocalWorld) -> None:
    kubeconfig = _kubeconfig(world)
    assert world.call("POST", "/api/v1/clusters", {"name": "second", "kubeconfig": kubeconfig})[0] == 201
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "second", "kubeconfig": kubeconfig})
    assert status == 409 and "already registered" in answer["message"] and "upsert" in answer["message"]
    status, answer = world.call("POST", "/api/v1/clusters?upsert=true",
                                {"name": "second", "kubeconfig": kubeconfig, "namespace": "other"})
    assert status == 201 and answer["namespace"] == "other"
    got = world.api_ok("GET", "/api/v1/clusters/second")
    assert got["name"] == "second" and got["server"] == world.kube.url and got["applications"] == []
    assert "kubeconfig" not in got
    assert world.call("GET", "/api/v1/clusters/absent")[0] == 404
    assert world.call("DELETE", "/api/v1/clusters/second")[0] == 200
    assert world.call("GET", "/api/v1/clusters/second")[0] == 404
    assert "second" not in [c["name"] for c in world.api_ok("GET", "/api/v1/clusters")["items"]]
    assert world.call("DELETE", "/api/v1/clusters/second")[0] == 404


def test_a_cluster_in_use_is_kept_unless_forced(world: LocalWorld) -> None:
    kubeconfig = _kubeconfig(world)
    world.api_ok("POST", "/api/v1/clusters", {"name": "named", "kubeconfig": kubeconfig})
    repo = world.git.make_repo("byname", {"app/service.yaml": SERVICE})
    manifest = yaml.safe_load(application("byname", repo, world.kube.url, automated=False, path="app"))
    manifest["spec"]["destination"] = {"name": "named", "namespace": "byname"}
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(manifest))
    assert world.api_ok("GET", "/api/v1/clusters/named")["applications"] == ["byname"]
    status, answer = world.call("DELETE", "/api/v1/clusters/named")
    assert status == 409 and "byname" in answer["message"] and "force=true" in answer["message"]
    assert world.call("GET", "/api/v1/clusters/named")[0] == 200
    status, answer = world.call("DELETE", "/api/v1/clusters/named?force=yes")
    assert status == 400 and any(p.startswith("force:") for p in answer["problems"])
    status, answer = world.call("DELETE", "/api/v1/clusters/named?force=true")
    assert status == 200 and answer["applications"] == ["byname"]
    assert world.call("GET", "/api/v1/clusters/named")[0] == 404
    world.api_ok("DELETE", "/api/v1/applications/byname?cascade=false")


def test_a_kubeconfig_that_is_not_yaml_is_a_400_saying_so(world: LocalWorld) -> None:
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "bad", "kubeconfig": "clusters: [\n  - {name: x"})
    assert status == 400, answer
    assert any(p.startswith("kubeconfig: not YAML") for p in answer["problems"]), answer
    status, answer = world.call("POST", "/api/v1/clusters", {"name": "bad", "kubeconfig": "just words"})
    assert status == 400 and any(p.startswith("kubeconfig: not a kubeconfig") for p in answer["problems"])


def test_repository_get_conflict_upsert_and_delete(world: LocalWorld) -> None:
    url = world.git.make_repo("registered", {"app/service.yaml": SERVICE})
    assert world.call("POST", "/api/v1/repositories", {"url": url, "name": "reg"})[0] == 201
    status, answer = world.call("POST", "/api/v1/repositories", {"url": url})
    assert status == 409 and "already registered" in answer["message"]
    status, answer = world.call("POST", "/api/v1/repositories?upsert=true", {"url": url, "name": "renamed"})
    assert status == 201 and answer["name"] == "renamed"
    got = world.api_ok("GET", f"/api/v1/repositories?url={quote(url, safe='')}")
    assert got["url"] == url and got["applications"] == []
    assert world.api_ok("GET", "/api/v1/repositories/renamed")["url"] == url

    world.api_ok("POST", "/api/v1/applications", application("fromrepo", url, world.kube.url, automated=False,
                                                                path="app", namespace="fromrepo"))
    status, answer = world.call("DELETE", "/api/v1/repositories/renamed")
    assert status == 409 and "fromrepo" in answer["message"]
    assert world.call("GET", "/api/v1/repositories/renamed")[0] == 200
    assert world.call("DELETE", "/api/v1/repositories/renamed?force=true")[0] == 200
    assert world.call("GET", "/api/v1/repositories/renamed")[0] == 404
    assert url not in [r["url"] for r in world.api_ok("GET", "/api/v1/repositories")["items"]]
    assert world.call("DELETE", f"/api/v1/repositories?url={quote(url, safe='')}")[0] == 404
    world.api_ok("DELETE", "/api/v1/applications/fromrepo?cascade=false")


def test_unknown_webhook_provider_is_404_not_401(world: LocalWorld) -> None:
    status, answer = world.call("POST", "/webhooks/foo", b"{}", {"Content-Type": "application/json"})
    assert status == 404 and "unknown webhook provider 'foo'" in answer["message"]
    status, answer = world.call("POST", "/webhooks/gitlab", b"{}", {"Content-Type": "application/json"})
    assert status == 401  # a known provider without its secret is still refused as unauthorised
