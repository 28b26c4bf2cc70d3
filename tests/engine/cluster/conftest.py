"""Fixtures for the cluster side of the engine (kube, tracking, diff, health, sync).

``gitferry`` lives in ``layers/core`` (a Lambda layer), which is not a package directory of the
repo root, so make it importable when the venv's editable install does not already do it.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
for path in (os.path.join(ROOT, "layers", "core"), ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)



@pytest.fixture(scope="session")
def kubesim() -> Iterator[Any]:
    """One real HTTPS API emulator for the session; tests isolate themselves by namespace."""
    from local.kubesim.server import KubeSim

    with KubeSim() as sim:
        yield sim


@pytest.fixture
def kubeconfig_text(kubesim: Any) -> str:
    with open(kubesim.kubeconfig_path) as f:
        return f.read()


@pytest.fixture(scope="session")
def discovery_dir(tmp_path_factory: Any) -> str:
    """Shared discovery cache: as in a warm Lambda, discovery is fetched once."""
    return str(tmp_path_factory.mktemp("discovery"))


@pytest.fixture
def cluster(kubeconfig_text: str, discovery_dir: str) -> Iterator[Any]:
    from gitferry.kube import ClusterClient, api_client_from_kubeconfig

    client = ClusterClient(api_client_from_kubeconfig(kubeconfig_text), discovery_dir)
    yield client
    client.close()


@pytest.fixture
def namespace(cluster: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.ensure_namespace(name)
    return name


@pytest.fixture
def app_name() -> str:
    return f"app-{uuid.uuid4().hex[:8]}"
