"""Rendering a chart with dependencies: gitferry against plain ``helm dependency build && helm
template`` on the same input. Run by ``make bench`` only (marker ``bench``).

The chart depends on one chart from a Helm HTTP repository (local/helmrepo.py) and one from the
OCI registry (Debian's docker-registry). Rows, each the median of REPEATS runs:

- plain helm: a fresh helm home, ``helm dependency build`` then ``helm template`` (what a person
  or a CI job runs);
- gitferry, cold: ``render.render_source`` with an empty dependency cache (copy of the chart,
  private helm home, ``helm dependency build``, ``helm template``, parsing and checks);
- gitferry, warm: the same inputs again: the dependency cache answers, no request reaches either
  server and no ``helm dependency build`` runs (only ``helm template``).

Prints the times and the cold overhead ratio (goal <= 1.1x); asserts correctness (same objects as
plain helm, nothing fetched on the warm render), never timings.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitferry import helmdeps, render
from gitferry.model import ApplicationSource, Repository

from local.helmrepo import HelmRepoServer, helm_binary
from local.ociregistry import OciRegistry, helm_push, package_chart

pytestmark = pytest.mark.bench
REPEATS = 5
SUB = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-{{ $.Chart.Name }}-{{ $i }}
data:
  version: {{ $.Chart.Version | quote }}
"""


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HelmRepoServer, OciRegistry]]:
    many = "{{- range $i := until 20 }}\n---\n" + SUB + "{{- end }}\n"
    with HelmRepoServer(tmp_path_factory.mktemp("bench-repo")) as repo, \
            OciRegistry(tmp_path_factory.mktemp("bench-oci")) as reg:
        repo.add_chart("common", "1.0.0", {"templates/cm.yaml": many})
        helm_push(reg, package_chart("lib", "0.3.0", {"templates/cm.yaml": many}), "deps")
        yield repo, reg


def _chart(root: Path, repo: HelmRepoServer, reg: OciRegistry) -> None:
    (root / "app" / "templates").mkdir(parents=True)
    (root / "app" / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "app", "version": "0.1.0", "dependencies": [
            {"name": "common", "version": "^1.0", "repository": repo.url},
            {"name": "lib", "version": "0.3.x", "repository": f"oci://{reg.host}/deps"}]}))
    (root / "app" / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-parent\n")


def _plain(root: Path) -> tuple[float, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as home:
        work = Path(home) / "app"
        shutil.copytree(root / "app", work)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "HELM_CACHE_HOME": f"{home}/c",
               "HELM_CONFIG_HOME": f"{home}/f", "HELM_DATA_HOME": f"{home}/d"}
        started = time.perf_counter()
        subprocess.run([helm_binary(), "dependency", "build", str(work), "--plain-http"], env=env, check=True,
                       capture_output=True, timeout=120)
        out = subprocess.run([helm_binary(), "template", "bench", str(work), "--namespace", "bench",
                              "--include-crds"], env=env, check=True, capture_output=True, text=True,
                             timeout=120).stdout
        elapsed = time.perf_counter() - started
    return elapsed, [d for d in yaml.safe_load_all(out) if d]


def _gitferry(root: Path, access: helmdeps.Access) -> tuple[float, list[dict[str, Any]]]:
    source = ApplicationSource.model_validate({"repoURL": "https://git.example.com/bench", "path": "app"})
    started = time.perf_counter()
    objs = render.render_source(root, source, app_name="bench", namespace="bench", dependencies=access)
    return time.perf_counter() - started, objs


def _key(objs: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def test_dependency_chart_render_overhead_and_warm_cache(servers: tuple[HelmRepoServer, OciRegistry],
                                                         tmp_path: Path) -> None:
    repo, reg = servers
    _chart(tmp_path / "repo", repo, reg)
    root = tmp_path / "repo"
    repositories = [Repository(url=f"oci://{reg.host}", type="oci", plain_http=True)]
    plain_times, cold_times = [], []
    expected: list[dict[str, Any]] = []
    for i in range(REPEATS):
        elapsed, expected = _plain(root)
        plain_times.append(elapsed)
        access = helmdeps.Access(secrets=None, list_repositories=lambda: repositories,
                                 cache_dir=str(tmp_path / f"cache-{i}"))  # empty: a cold render
        elapsed, got = _gitferry(root, access)
        cold_times.append(elapsed)
        assert _key(got) == _key(expected)
    warm = helmdeps.Access(secrets=None, list_repositories=lambda: repositories,
                           cache_dir=str(tmp_path / "cache-0"))
    http_before, oci_before, builds = len(repo.requests), len(reg.requests()), helmdeps.BUILDS
    warm_times = []
    for _ in range(REPEATS):
        elapsed, got = _gitferry(root, warm)
        warm_times.append(elapsed)
        assert _key(got) == _key(expected)
    assert repo.requests[http_before:] == [] and reg.requests()[oci_before:] == []
    assert helmdeps.BUILDS == builds

    plain, cold, hot = (statistics.median(t) for t in (plain_times, cold_times, warm_times))
    print(f"\nchart with 2 dependencies ({len(expected)} objects), median of {REPEATS}:")
    print(f"  helm dependency build && helm template   {plain * 1000:8.1f} ms")
    print(f"  gitferry render, cold dependency cache    {cold * 1000:8.1f} ms   ratio {cold / plain:.2f}x (goal <= 1.1x)")
    print(f"  gitferry render, warm (0 requests, 0 dependency builds) "
          f"{hot * 1000:8.1f} ms   ratio {hot / plain:.2f}x")
