"""How often gitferry's Kubernetes client refreshes its credentials: at most once a second, not
before every request (gitferry.kube._RefreshOncePerSecond), for both ways gitferry authenticates.

Real sockets and the real client against kubesim; what is counted is a token source the test
owns: an exec credential plugin (a script that notes each run) in a kubeconfig, and a counting
wrapper around :meth:`gitferry.eks.EksAccess.refresh_hook` for an EKS cluster (kubesim verifying
the tokens against moto STS). The plugin's credential expires within the client's 5-minute skew,
so the loader's own hook runs the plugin every time it is called: a run of the plugin is a run of
the refresh. Nothing of the client library is patched.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitferry import eks, kube

from local.aws import MotoServer, client
from local.kubesim import eksauth
from local.kubesim.server import KubeSim

REQUESTS = 40
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/gitferry-apply"

_PLUGIN = """\
import datetime, json, sys
with open(sys.argv[1], "a") as f:
    f.write("run\\n")
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60)
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": sys.argv[2], "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}}))
"""


def _requests(cluster: kube.ClusterClient, sim: KubeSim, count: int) -> tuple[int, float]:
    """``count`` GETs; returns how many requests reached the server and how long they took."""
    before = len(sim.request_log)
    start = time.monotonic()
    for _ in range(count):
        assert cluster.get("v1", "Namespace", "default") is not None
    return len(sim.request_log) - before, time.monotonic() - start


def _at_most_once_a_second(refreshes: int, elapsed: float) -> bool:
    return refreshes <= int(elapsed) + 1


def test_a_kubeconfig_credential_is_refreshed_at_most_once_a_second(kubesim: KubeSim, tmp_path: Path) -> None:
    plugin, runs = tmp_path / "plugin.py", tmp_path / "runs"
    plugin.write_text(_PLUGIN)
    runs.touch()
    config = yaml.safe_load(kubesim.kubeconfig())
    config["users"][0]["user"] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
        "args": [str(plugin), str(runs), kubesim.token], "interactiveMode": "Never"}}
    cluster = kube.ClusterClient(kube.api_client_from_kubeconfig(yaml.safe_dump(config)), tempfile.mkdtemp())

    def count() -> int:
        return len(runs.read_text().splitlines())

    try:
        assert count() >= 1  # the loader ran the plugin to build the configuration
        cluster.get("v1", "Namespace", "default")  # discovery, first request
        first = count()
        sent, elapsed = _requests(cluster, kubesim, REQUESTS)
        assert sent >= REQUESTS
        refreshes = count() - first
        assert _at_most_once_a_second(refreshes, elapsed), (refreshes, sent, elapsed)
        # ... and still refreshed: a request more than a second after the last run runs it again
        time.sleep(1.1)
        before = count()
        cluster.get("v1", "Namespace", "default")
        assert count() == before + 1
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as m:
        yield m


@pytest.fixture(scope="module")
def eks_sim(moto: MotoServer) -> Iterator[KubeSim]:
    config = eksauth.EksAuthConfig(cluster_id="prod", sts_endpoints=[moto.endpoint], map_roles=[
        {"rolearn": ROLE, "username": "apply:{{SessionName}}", "groups": ["system:masters"]}])
    with KubeSim(eks_auth=config) as sim:
        yield sim


def test_an_eks_token_is_refreshed_at_most_once_a_second(eks_sim: KubeSim, moto: MotoServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    creds = client("sts", moto.endpoint).assume_role(RoleArn=ROLE, RoleSessionName="apply")["Credentials"]
    for key, value in (("AWS_ACCESS_KEY_ID", creds["AccessKeyId"]), ("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"]),
                       ("AWS_SESSION_TOKEN", creds["SessionToken"]), ("AWS_ENDPOINT_URL", moto.endpoint)):
        monkeypatch.setenv(key, value)
    access = eks.EksAccess(eks.EksTarget("prod", "us-east-1"))
    calls: list[float] = []

    def counting(configuration: Any, hook: Callable[[Any], None] = access.refresh_hook) -> None:
        calls.append(time.monotonic())
        hook(configuration)

    api = kube.api_client_for_token_source(eks_sim.url, eks_sim.certs.ca_pem.decode(), counting)
    cluster = kube.ClusterClient(api, tempfile.mkdtemp())
    try:
        cluster.get("v1", "Namespace", "default")
        first = len(calls)
        assert first >= 1
        sent, elapsed = _requests(cluster, eks_sim, REQUESTS)
        assert sent >= REQUESTS
        refreshes = len(calls) - first
        assert _at_most_once_a_second(refreshes, elapsed), (refreshes, sent, elapsed)
        time.sleep(1.1)
        cluster.get("v1", "Namespace", "default")
        assert len(calls) == first + refreshes + 1
    finally:
        cluster.close()
