"""Rendering a Jsonnet app: gitferry against the bare binding, and the render cache.

Run by ``make bench`` only (marker ``bench``). Prints times and ratios; asserts correctness (the
same objects, no tool on a cache hit), never timings.

1. ``directory.jsonnet`` with tlas and a library: gitferry's ``render_source`` (a bounded child
   process evaluating with the ``jsonnet`` binding, imports confined to the repository, the
   output parsed and checked) against the binding's own command line on the same input
   (``python -c`` calling ``_jsonnet.evaluate_file`` with the same tlas and library path: the
   ``jsonnet`` command of that binding, a process per file either way). Goal: overhead <= 1.1x.
2. Through the handlers on the local stack: a refresh of unchanged inputs (render cache hit,
   no tool started) against a hard refresh (rendered again), render stage only.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitferry import render
from gitferry.model import ApplicationSource

pytestmark = pytest.mark.bench
ROUNDS = 9

LIB = """\
{
  deployment(name, replicas, image):: {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: name, labels: { app: name } },
    spec: {
      replicas: replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } },
                  spec: { containers: [{ name: name, image: image, ports: [{ containerPort: 8080 }] }] } },
    },
  },
  service(name):: { apiVersion: 'v1', kind: 'Service', metadata: { name: name },
                    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } },
  config(name, n):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name + '-config' },
                      data: { ['key-%d' % i]: 'value-%d' % i for i in std.range(1, n) } },
}
"""
MAIN = """\
local k = import 'k.libsonnet';
function(env, replicas=2, services=20)
  std.flattenArrays([
    [k.deployment('svc-%d-%s' % [i, env], replicas, 'registry.example/svc:%d' % i),
     k.service('svc-%d-%s' % [i, env]),
     k.config('svc-%d-%s' % [i, env], 10)]
    for i in std.range(1, services)
  ])
"""
TLAS = [{"name": "env", "value": "prod"}, {"name": "replicas", "value": "3", "code": True}]


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


def _repo(tmp: Path) -> Path:
    (tmp / "app").mkdir(parents=True)
    (tmp / "lib").mkdir()
    (tmp / "lib" / "k.libsonnet").write_text(LIB)
    (tmp / "app" / "main.jsonnet").write_text(MAIN)
    return tmp


def _source(repo_url: str = "https://git.example/bench") -> ApplicationSource:
    return ApplicationSource.model_validate({
        "repoURL": repo_url, "path": "app",
        "directory": {"jsonnet": {"tlas": TLAS, "libs": ["lib"]}}})


PEER = """\
import _jsonnet, sys
print(_jsonnet.evaluate_file(sys.argv[1], jpathdir=[sys.argv[2]], tla_vars={"env": "prod"},
                             tla_codes={"replicas": "3"}))
"""


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def test_jsonnet_render_overhead_against_the_binding(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    source = _source()

    def ours() -> list[dict[str, Any]]:
        return render.render_source(repo, source, app_name="bench", namespace="bench")

    def peer() -> list[dict[str, Any]]:
        out = subprocess.run([sys.executable, "-c", PEER, str(repo / "app" / "main.jsonnet"), str(repo / "lib")],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        return list(json.loads(out))

    assert ours() == peer()  # the same objects, in the same order
    assert len(ours()) == 60
    times_ours, times_peer = [], []
    for _ in range(ROUNDS):  # interleaved, so machine load hits both alike
        times_ours.append(_timed(ours)[0])
        times_peer.append(_timed(peer)[0])
    mine, theirs = statistics.median(times_ours), statistics.median(times_peer)
    print(f"\njsonnet render (60 objects, tlas + lib), median of {ROUNDS}: gitferry {mine * 1000:.0f} ms, "
          f"binding's command {theirs * 1000:.0f} ms, overhead {mine / theirs:.2f}x (goal <= 1.10x)")


HELM_OBJECTS = 1000
CHART_YAML = "apiVersion: v2\nname: big\nversion: 1.0.0\n"
CHART_TEMPLATE = """\
{{- range $i := until (int .Values.count) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "settings-%d" $i }}
  labels:
    app.kubernetes.io/name: {{ $.Release.Name }}
data:
  index: {{ $i | quote }}
  application.yaml: |
    server:
      port: 8080
    pool: {{ add 5 (mod $i 20) }}
{{- end }}
"""


def test_helm_render_overhead_against_helm_template(tmp_path: Path) -> None:
    """A 1,000-object chart: gitferry's render (helm template in a bounded child process, its
    output parsed and checked) against ``helm template`` itself writing the same YAML."""
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART_YAML)
    (chart / "values.yaml").write_text(f"count: {HELM_OBJECTS}\n")
    (chart / "templates" / "cms.yaml").write_text(CHART_TEMPLATE)
    source = ApplicationSource.model_validate({"repoURL": "https://git.example/bench", "path": "chart",
                                               "helm": {"releaseName": "big"}})
    helm = render.find_tool("helm")

    def ours() -> list[dict[str, Any]]:
        return render.render_source(tmp_path, source, app_name="big", namespace="bench")

    def peer() -> str:
        return subprocess.run([helm, "template", "big", str(chart), "--namespace", "bench"],
                              capture_output=True, text=True, check=True, timeout=120).stdout

    assert len(ours()) == HELM_OBJECTS and peer().count("kind: ConfigMap") == HELM_OBJECTS
    times_ours, times_peer = [], []
    for _ in range(ROUNDS):
        times_ours.append(_timed(ours)[0])
        times_peer.append(_timed(peer)[0])
    mine, theirs = statistics.median(times_ours), statistics.median(times_peer)
    print(f"\nhelm render ({HELM_OBJECTS} objects), median of {ROUNDS}: gitferry {mine * 1000:.0f} ms "
          f"(min {min(times_ours) * 1000:.0f}), helm template {theirs * 1000:.0f} ms (min {min(times_peer) * 1000:.0f}), "
          f"overhead {mine / theirs:.2f}x (goal <= 1.10x)")


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    from local.story import LocalWorld

    with LocalWorld() as w:
        yield w


def test_second_render_of_the_same_inputs_runs_no_tool(world: Any, tmp_path: Path) -> None:
    from local.story import application

    server = world.register_cluster("local")
    repo = world.git.make_repo("bench-jsonnet", {"app/main.jsonnet": MAIN, "lib/k.libsonnet": LIB})
    doc = yaml.safe_load(application("jb", repo, server, automated=False, path="app", namespace="jb"))
    doc["spec"]["source"]["directory"] = {"jsonnet": {"tlas": TLAS, "libs": ["lib"]}}
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(doc))
    world.settle()

    def refresh(query: str) -> tuple[float, int]:
        runs = render.tool_runs()
        before = world.status("jb").get("reconciledAt")
        world.api_ok("POST", f"/api/v1/applications/jb/refresh{query}")
        start = time.perf_counter()
        world.stack.run_until_idle(timeout=60)
        elapsed = time.perf_counter() - start
        assert world.status("jb").get("reconciledAt") != before
        return elapsed, render.tool_runs() - runs

    hits, misses = [], []
    for _ in range(5):
        t, runs = refresh("")
        assert runs == 0  # a cache hit starts no helm / kustomize / jsonnet process
        hits.append(t)
        t, runs = refresh("?hard=true")
        assert runs == 1  # the one .jsonnet file evaluated again
        misses.append(t)
    hit, miss = statistics.median(hits), statistics.median(misses)
    print(f"\nrefresh through the handlers (render + diff), median of 5: cache hit {hit * 1000:.0f} ms "
          f"(0 tool runs), hard refresh {miss * 1000:.0f} ms (1 tool run), ratio {miss / hit:.2f}x")
