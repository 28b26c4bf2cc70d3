"""Fixtures for kubesim tests: one real HTTPS server per test session (per xdist worker).

Tests isolate themselves with ``fresh_namespace`` instead of starting servers, which keeps
the suite fast; tests that need a private server (CLI, read-only token, compaction) start
their own ``KubeSim``. Other test folders can reuse the same pattern::

    from local.kubesim.server import KubeSim
    with KubeSim() as sim: ...
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic

from local.kubesim.server import KubeSim

REPO = Path(__file__).resolve().parents[2]
KUBECTL_BINARIES = {
    "kubectl-1.37": REPO / "layers" / "tools" / "bin" / "kubectl",
    "kubectl-1.32": Path("/usr/bin/kubectl"),
}
_counter = itertools.count()


@pytest.fixture(scope="session")
def kubesim() -> Iterator[KubeSim]:
    """A running KubeSim shared by the session; controllers run every 50 ms."""
    with KubeSim(read_only_token=True) as sim:
        yield sim


@pytest.fixture
def fresh_namespace(kubesim: KubeSim) -> Callable[[str], str]:
    """Factory creating a new, unique namespace (through the store, like an admin would)."""

    def make(prefix: str = "t") -> str:
        name = f"{prefix}-{os.getpid()}-{next(_counter)}"
        kubesim.store.create(kubesim.store.ns_rt, None, {"metadata": {"name": name}}, manager="test-setup")
        return name

    return make


@pytest.fixture
def namespace(fresh_namespace: Callable[[str], str]) -> str:
    """One fresh namespace for the test."""
    return fresh_namespace("t")


@pytest.fixture(params=sorted(KUBECTL_BINARIES))
def kubectl(request: pytest.FixtureRequest, kubesim: KubeSim) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run one kubectl version (parametrised: 1.37 and 1.32) against the session server."""
    binary = KUBECTL_BINARIES[request.param]
    if not binary.exists():
        # Only the machine's own kubectl 1.32 is optional ("where present"); 1.37 comes from make tools.
        if request.param == "kubectl-1.32":
            pytest.skip(f"{binary} not on this machine")
        raise FileNotFoundError(f"{binary} missing: run make tools")

    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), "--kubeconfig", kubesim.kubeconfig_path, *args],
            input=input, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "KUBECTL_EXTERNAL_DIFF": "diff -u -N", "HOME": os.environ.get("HOME", "/tmp")},
        )

    run.binary = str(binary)  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def api(kubesim: KubeSim) -> Iterator[client.ApiClient]:
    """The official client's ApiClient for the shared server, from its kubeconfig."""
    api_client = config.new_client_from_config(config_file=kubesim.kubeconfig_path)
    yield api_client
    api_client.close()


@pytest.fixture(scope="module")
def dyn(api: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> dynamic.DynamicClient:
    """The official dynamic client over ``api``, with its discovery cache in a temp dir."""
    return dynamic.DynamicClient(api, cache_file=str(tmp_path_factory.mktemp("discovery") / "cache.json"))
