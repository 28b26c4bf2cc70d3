"""The reliability suite: faults injected through real sockets (local/faults.py) into the whole
local stack, planted secrets, property-based tests. ``make reliability`` runs all of it and
prints one table at the end (see :func:`pytest_terminal_summary`); ``make test`` runs the
tests not marked ``slow``.

Each test records what it tried with the ``outcome`` fixture::

    outcome("Kubernetes API 500 mid-wave", cases=1, result="operation Failed, lease released")

The row is kept in the test report's ``user_properties``, so the table also works under xdist.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.faults import FaultProxy
from local.story import LocalWorld

Outcome = Callable[..., None]


@pytest.fixture
def outcome(request: pytest.FixtureRequest) -> Outcome:
    def record(fault: str, *, cases: int = 1, result: str) -> None:
        request.node.user_properties.append(("reliability", json.dumps(
            {"fault": fault, "cases": cases, "result": result})))
    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows: list[tuple[str, int, str, str]] = []
    for when in ("passed", "failed", "xfailed", "xpassed", "error"):
        for rep in terminalreporter.stats.get(when, []):
            if getattr(rep, "when", "call") not in ("call", None) and when != "error":
                continue
            for key, value in getattr(rep, "user_properties", []) or []:
                if key == "reliability":
                    row = json.loads(value)
                    rows.append((row["fault"], row["cases"], row["result"], when))
    if not rows:
        return
    terminalreporter.write_sep("=", "gitferry reliability report")
    width = max(len(r[0]) for r in rows)
    terminalreporter.write_line(f"{'fault / input class':<{width}}  {'cases':>6}  {'test':<8}  outcome")
    for fault, cases, result, when in sorted(rows):
        terminalreporter.write_line(f"{fault:<{width}}  {cases:>6}  {when:<8}  {result}")


# ---------------------------------------------------------------------------- the faulty world

class FaultyWorld:
    """A LocalWorld whose Kubernetes API, Git server and DynamoDB are reached through fault
    proxies: ``kube_proxy`` (cluster ``faulty`` registered through it), ``git_proxy`` (use
    :meth:`repo` for repository URLs through it), ``ddb_proxy`` (every handler's DynamoDB
    endpoint). With no fault installed each proxy forwards everything unchanged."""

    def __init__(self) -> None:
        self.world = LocalWorld()
        self.tmp = Path(tempfile.mkdtemp(prefix="gitferry-faults-"))
        kubeconfig = yaml.safe_load(Path(self.world.kube.kubeconfig_path).read_text())
        cluster = kubeconfig["clusters"][0]["cluster"]
        ca = self.tmp / "ca.crt"
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        self.kube_proxy = FaultProxy(cluster["server"], ca_file=str(ca)).start()
        self.git_proxy = FaultProxy(self.world.git.base_url).start()
        self.ddb_proxy = FaultProxy(self.world.stack.resources.endpoint).start()
        self.world.stack.extra_env["AWS_ENDPOINT_URL_DYNAMODB"] = self.ddb_proxy.url
        self.world.stack.extra_env["KUBE_REQUEST_TIMEOUT_SECONDS"] = "2"  # test_faults.KUBE_TIMEOUT
        self.world.stack.extra_env["GIT_REQUEST_TIMEOUT_SECONDS"] = "2"  # test_faults.GIT_TIMEOUT
        proxied = json.loads(json.dumps(kubeconfig))
        proxied["clusters"][0]["cluster"] = {"server": self.kube_proxy.url}
        self.world.api_ok("POST", "/api/v1/clusters", {"name": "faulty", "kubeconfig": yaml.safe_dump(proxied)})
        self.server = self.kube_proxy.url

    def repo(self, name: str, files: dict[str, str]) -> str:
        url = self.world.git.make_repo(name, files)
        return url.replace(self.world.git.base_url.rstrip("/"), self.git_proxy.url.rstrip("/"))

    def clear(self) -> None:
        for proxy in (self.kube_proxy, self.git_proxy, self.ddb_proxy):
            proxy.clear()

    def close(self) -> None:
        for proxy in (self.kube_proxy, self.git_proxy, self.ddb_proxy):
            proxy.stop()
        self.world.close()


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyWorld]:
    w = FaultyWorld()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture(autouse=True)
def _no_fault_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "faulty" in request.fixturenames:
        request.getfixturevalue("faulty").clear()
