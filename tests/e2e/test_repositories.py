"""Repositories as users register them, through API Gateway on the local stack: a connection
check before anything is kept (a wrong password, an unknown ssh key or a wrong host key is 422
naming why, never the secret), Git over ssh against a real OpenSSH server (Debian sshd, host key
checked) synced through the whole pipeline, a Helm repository behind basic auth, and credential
updates with PUT / PATCH."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from local.helmrepo import HelmRepoServer
from local.sshd import SshServer, keygen
from local.story import DEPLOYMENT, LocalWorld, application, synced_healthy

PASSWORD = "right-horse-battery-staple"


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.register_cluster("local")
        yield w


@pytest.fixture(scope="module")
def ssh(world: LocalWorld) -> Iterator[SshServer]:
    with SshServer(world.workdir / "sshd", world.git.root) as server:
        yield server


def files(replicas: int = 1) -> dict[str, str]:
    return {"app/deployment.yaml": DEPLOYMENT.format(replicas=replicas, image="nginx:1.25")}


def assert_no_secret(answer: object, *secrets: str) -> None:
    text = json.dumps(answer)
    for secret in secrets:
        assert secret not in text


def test_https_credentials_are_checked_before_they_are_kept(world: LocalWorld) -> None:
    url = world.git.make_repo("private", files(), auth=("deploy", PASSWORD))
    status, answer = world.call("POST", "/api/v1/repositories", {"url": url, "username": "deploy",
                                                                 "password": "wrong-" + PASSWORD})
    assert status == 422, answer
    assert "authentication failed" in answer["message"] and "credentials were refused" in answer["message"]
    assert_no_secret(answer, "wrong-" + PASSWORD)
    assert world.call("GET", f"/api/v1/repositories?url={quote(url, safe='')}")[0] == 404  # nothing kept
    status, answer = world.call("POST", "/api/v1/repositories", {"url": url})
    assert status == 422 and "requires authentication" in answer["message"]
    status, answer = world.call("POST", "/api/v1/repositories", {"url": url, "username": "deploy", "password": PASSWORD,
                                                                 "name": "private"})
    assert status == 201, answer
    assert answer == {"url": url, "type": "git", "name": "private", "username": "deploy", "hasCredentials": True}
    # PATCH: a wrong new password is refused and the stored one still works; a token replaces it
    status, answer = world.call("PATCH", "/api/v1/repositories/private", {"password": "rotated-wrong"})
    assert status == 422 and "rotated-wrong" not in json.dumps(answer)
    world.git.set_auth("private", "deploy", "rotated-" + PASSWORD)
    status, answer = world.call("PATCH", "/api/v1/repositories/private", {"token": "rotated-" + PASSWORD})
    assert status == 200, answer
    assert answer["username"] == "deploy" and answer["hasCredentials"] is True
    stored = json.loads(world.stack.resources.client("secretsmanager").get_secret_value(
        SecretId=_secret_name(url))["SecretString"])
    assert stored == {"username": "deploy", "token": "rotated-" + PASSWORD}  # the old password is gone
    status, answer = world.call("PATCH", "/api/v1/repositories/private", {"url": url + "x"})
    assert status == 400 and answer["problems"] == ["url: cannot be changed (register the new URL, delete the old one)"]
    # PUT replaces the whole registration (by URL here), also checked first
    status, answer = world.call("PUT", f"/api/v1/repositories?url={quote(url, safe='')}",
                                {"username": "deploy", "password": "rotated-" + PASSWORD})
    assert status == 200 and "name" not in answer
    assert world.call("PUT", "/api/v1/repositories/nothere", {"url": url})[0] == 404
    audit = world.api_ok("GET", "/api/v1/audit?limit=1000")["items"]
    assert {(e["action"], e["actor"]) for e in audit if e["target"] == url} == {
        ("repository.register", "api:admin"), ("repository.update", "api:admin")}
    assert_no_secret(audit, PASSWORD)


def _secret_name(url: str) -> str:
    import hashlib

    return f"gitferry/repos/{hashlib.sha256(url.encode()).hexdigest()[:32]}"


def test_unreachable_and_badly_formed_repositories(world: LocalWorld) -> None:
    status, answer = world.call("POST", "/api/v1/repositories", {"url": "http://127.0.0.1:9/nothing.git"})
    assert status == 422 and "cannot reach" in answer["message"], answer
    status, answer = world.call("POST", "/api/v1/repositories", {
        "url": "http://127.0.0.1:9/x.git", "password": "a", "token": "b", "sshPrivateKey": "k", "insecure": True})
    assert status == 400
    assert set(answer["problems"]) == {"insecure: not supported by gitferry",
                                       "token: give a password or a token, not both",
                                       "sshPrivateKey: only for an ssh URL (ssh://... or user@host:path)"}
    status, answer = world.call("POST", "/api/v1/repositories", {"url": "ssh://git:hunter2@127.0.0.1/x.git"})
    assert status == 400 and answer["problems"] == [
        "url: must not contain a password; register an ssh private key with the repository"]


def test_ssh_repository_synced_through_the_pipeline_with_its_host_key_checked(world: LocalWorld,
                                                                              ssh: SshServer) -> None:
    world.git.make_repo("overssh", files(replicas=2))
    url = ssh.url("overssh")
    body = {"url": url, "sshPrivateKey": ssh.private_key, "sshKnownHosts": ssh.known_hosts}
    # a host key that is not the server's: refused (as StrictHostKeyChecking=yes), nothing kept
    _, other_host = keygen(world.workdir / "other-host", "other")
    wrong_hosts = f"[127.0.0.1]:{ssh.port} " + " ".join(other_host.split()[:2]) + "\n"
    status, answer = world.call("POST", "/api/v1/repositories", {**body, "sshKnownHosts": wrong_hosts})
    assert status == 422 and "host key of 127.0.0.1:" in answer["message"] and "does not match" in answer["message"]
    status, answer = world.call("POST", "/api/v1/repositories", {**body, "sshKnownHosts": "github.com " +
                                                                 " ".join(other_host.split()[:2])})
    assert status == 422 and "is not in the registered known hosts" in answer["message"]
    unknown_key, _ = keygen(world.workdir / "unknown-client", "unknown")
    status, answer = world.call("POST", "/api/v1/repositories", {**body, "sshPrivateKey": unknown_key})
    assert status == 422 and "the private key was refused" in answer["message"]
    assert_no_secret(answer, unknown_key.splitlines()[1])
    status, answer = world.call("POST", "/api/v1/repositories", {**body, "sshPrivateKey": "-----BEGIN OPENSSH "
                                                                 "PRIVATE KEY-----\nnot-a-key\n", "sshKnownHosts": "x"})
    assert status == 400
    assert answer["problems"][0].startswith("sshPrivateKey: is not an OpenSSH or PEM private key")
    assert answer["problems"][1] == "sshKnownHosts: line 1: not a known_hosts entry (host keytype base64-key)"
    assert "not-a-key" not in json.dumps(answer)
    status, answer = world.call("POST", "/api/v1/repositories", {"url": url})
    assert status == 400 and set(answer["problems"]) == {"sshPrivateKey: field required for an ssh URL",
                                                         "sshKnownHosts: field required for an ssh URL"}
    assert world.call("GET", f"/api/v1/repositories?url={quote(url, safe='')}")[0] == 404

    status, answer = world.call("POST", "/api/v1/repositories", body)
    assert status == 201, answer
    assert answer == {"url": url, "type": "git", "hasCredentials": True}
    assert_no_secret(answer, ssh.private_key.splitlines()[1])
    world.api_ok("POST", "/api/v1/applications", application("overssh", url, world.kube.url, automated=True,
                                                             path="app", namespace="overssh"))
    world.until("overssh synced over ssh", synced_healthy(world, "overssh"), timeout=120)
    assert world.deployment("overssh", "guestbook-ui").spec.replicas == 2
    sha = world.git.commit("overssh", files(replicas=3), "three")
    world.until("new commit over ssh", synced_healthy(world, "overssh", sha), timeout=120)
    assert world.deployment("overssh", "guestbook-ui").spec.replicas == 3
    got = world.api_ok("GET", f"/api/v1/repositories?url={quote(url, safe='')}")
    assert got["applications"] == ["overssh"] and "sshPrivateKey" not in got and "sshKnownHosts" not in got


def test_helm_repository_with_basic_auth(world: LocalWorld, tmp_path: Path) -> None:
    chart = {"Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n", "values.yaml": "x: 1\n",
             "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"}
    with HelmRepoServer(tmp_path / "charts", auth=("helm", PASSWORD)) as charts:
        charts.add_chart("web", "1.0.0", chart)
        status, answer = world.call("POST", "/api/v1/repositories", {"url": charts.url, "type": "helm",
                                                                     "username": "helm", "password": "nope"})
        assert status == 422 and "refused the stored credentials" in answer["message"], answer
        status, answer = world.call("POST", "/api/v1/repositories", {"url": charts.url, "type": "helm"})
        assert status == 422 and "requires authentication" in answer["message"]
        status, answer = world.call("POST", "/api/v1/repositories", {"url": charts.url, "type": "helm",
                                                                     "username": "helm", "password": PASSWORD})
        assert status == 201 and answer["type"] == "helm", answer
        assert charts.requests_with_auth  # the index was fetched with the credentials
        status, answer = world.call("POST", "/api/v1/repositories", {"url": "ssh://git@127.0.0.1:9/x", "type": "helm",
                                                                     "sshPrivateKey": "k", "sshKnownHosts": "h"})
        assert status == 400 and "url: a Helm repository is read over http(s), not ssh" in answer["problems"]
