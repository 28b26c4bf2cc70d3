"""gitferry's engine against kubectl on the same kubesim: sync, no-change diff, no-change re-sync.

Run by ``make bench`` only (marker ``bench``). One kubesim with its controllers off, so only
API work is measured (no rollouts, no ReplicaSets appearing between the rows). An app of
N=1,000 realistic objects (500 ConfigMaps, 200 Deployments, 200 Services, 100 Secrets) in 3
sync waves is synced by gitferry (``run_sync``, server-side apply as field manager ``gitferry``) into one namespace
and by ``kubectl apply --server-side`` into another, from the same manifests. kubesim runs in
its own process (``python -m local.kubesim serve``), as an API server would: in the test
process it would share the GIL with gitferry's client threads and bill its work to gitferry
only, while kubectl is a separate process either way. Run at 0 ms and at 15 ms of latency per
request (kubesim ``--latency-ms``). Prints wall times, speed-ups and requests per object (kubectl's
from its ``-v=6`` log, gitferry's counted on its REST client); asserts correctness (everything Synced, kubectl exit codes), never timings.

``GITFERRY_BENCH_PROFILE=<dir>`` additionally writes a cProfile of each gitferry row (main
thread) to ``<dir>/<row>.prof``.
"""

from __future__ import annotations

import cProfile
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.bench
REPO = Path(__file__).resolve().parents[2]
KUBECTL = str(REPO / "layers" / "tools" / "bin" / "kubectl")

N_CONFIGMAPS, N_DEPLOYMENTS, N_SERVICES, N_SECRETS = 500, 200, 200, 100  # 1,000 objects


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


# ---- realistic manifests ---------------------------------------------------------------------


def _configmap(n: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"settings-{n}", "labels": {"app.kubernetes.io/name": f"svc-{n % 100}",
                                                         "app.kubernetes.io/part-of": "shop"}},
        "data": {
            "LOG_LEVEL": "info",
            "FEATURE_FLAGS": "checkout,search,recommendations",
            "application.yaml": "server:\n  port: 8080\nspring:\n  datasource:\n"
                                f"    url: jdbc:postgresql://db-{n % 7}:5432/shop\n    pool: {n % 20 + 5}\n",
            "nginx.conf": "worker_processes 1;\nevents { worker_connections 1024; }\n"
                          "http { server { listen 80; location / { proxy_pass http://127.0.0.1:8080; } } }\n",
        },
    }


def _deployment(n: int) -> dict[str, Any]:
    name = f"svc-{n}"
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": {"team": "payments"}},
        "spec": {
            "replicas": 2 + n % 3,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {
                    "serviceAccountName": "default",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        {
                            "name": "app",
                            "image": f"registry.example.com/shop/{name}:1.{n % 10}.3",
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["--config", "/etc/app/application.yaml"],
                            "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                            "env": [
                                {"name": "MODE", "value": "production"},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"creds-{n % N_SECRETS}",
                                                                                        "key": "password"}}},
                            ],
                            "envFrom": [{"configMapRef": {"name": f"settings-{n}"}}],
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                          "limits": {"cpu": "1", "memory": "512Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                              "initialDelaySeconds": 10},
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True}],
                        },
                        {
                            "name": "proxy",
                            "image": "nginx:1.27",
                            "ports": [{"name": "web", "containerPort": 80}],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/nginx/nginx.conf",
                                              "subPath": "nginx.conf"}],
                        },
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": f"settings-{n}"}}],
                },
            },
        },
    }


def _service(n: int) -> dict[str, Any]:
    name = f"svc-{n}"
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "web"},
                      {"name": "metrics", "port": 9090, "targetPort": "metrics"}],
        },
    }


def _secret(n: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": f"creds-{n}"},
        "type": "Opaque",
        "stringData": {"username": f"user{n}", "password": f"s3cr3t-{n:04d}-{uuid.UUID(int=n).hex[:12]}"},
    }


def manifests() -> list[dict[str, Any]]:
    return ([_configmap(n) for n in range(N_CONFIGMAPS)] + [_deployment(n) for n in range(N_DEPLOYMENTS)]
            + [_service(n) for n in range(N_SERVICES)] + [_secret(n) for n in range(N_SECRETS)])


# ---- timing helpers --------------------------------------------------------------------------


def _timed(label: str, fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s of this process, i.e. gitferry's client side in every thread, result)."""
    profile_dir = os.environ.get("GITFERRY_BENCH_PROFILE")
    prof = cProfile.Profile() if profile_dir else None
    start, cpu = time.perf_counter(), time.process_time()
    if prof is not None:
        prof.enable()
    out = fn()
    if prof is not None:
        prof.disable()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if prof is not None and profile_dir:
        os.makedirs(profile_dir, exist_ok=True)
        prof.dump_stats(os.path.join(profile_dir, f"{label}.prof"))
    return elapsed, cpu, out


@pytest.fixture(params=[0, 15], ids=lambda ms: f"latency-{ms}ms")
def kubeconfig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A standalone kubesim without controllers; stopped (SIGTERM, then waited for) at the end.
    At 0 ms and at 15 ms per request (``--latency-ms``: a wait, not CPU), the order of an API
    call from Lambda to EKS in the same region, where the round trip and not the server's CPU
    dominates and concurrency shows."""
    path = tmp_path / "kubesim" / "kubeconfig"
    path.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "local.kubesim", "serve", "--no-controllers",
                             "--latency-ms", str(request.param), "--kubeconfig", str(path)],
                            cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert proc.poll() is None, "kubesim exited"
            assert time.monotonic() < deadline, "kubesim did not start"
            time.sleep(0.05)
        yield str(path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_KUBECTL_REQUEST = re.compile(r'round_trippers\.go:\d+\] "Response" verb="[A-Z]+"')


def _kubectl(kubeconfig: str, env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, str, int]:
    """kubectl's wall time, stdout and HTTP requests (``-v=6`` logs one line per request)."""
    start = time.perf_counter()
    result = subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, "-v=6", *args],
                            capture_output=True, text=True, timeout=600, env=env)
    elapsed = time.perf_counter() - start
    assert result.returncode in ok, (args, result.returncode, result.stderr[-2000:])
    return elapsed, result.stdout, len(_KUBECTL_REQUEST.findall(result.stderr))


class _Requests:
    """Counts the HTTP requests gitferry's client sends (a wrapper on the REST client's
    ``request``, the way kube.py itself adds its timeouts)."""

    def __init__(self, api_client: Any) -> None:
        self.count = 0
        rest = api_client.rest_client
        inner = rest.request

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return inner(*args, **kwargs)

        rest.request = counted

    def since(self, before: int) -> int:
        return self.count - before


WAVES = {"ConfigMap": "0", "Secret": "0", "Service": "1", "Deployment": "2"}  # 3 waves; Deployments last


def test_engine_vs_kubectl(tmp_path: Path, kubeconfig: str, request: pytest.FixtureRequest) -> None:
    from gitferry import diff, sync, tracking
    from gitferry.kube import ClusterClient, api_client_from_kubeconfig

    docs = manifests()
    for doc in docs:  # sync waves, as apps use them (kubectl has none: it applies everything at once)
        doc["metadata"].setdefault("annotations", {})["argocd.argoproj.io/sync-wave"] = WAVES[doc["kind"]]
    n = len(docs)
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()
    for kind in ("ConfigMap", "Deployment", "Service", "Secret"):
        (manifest_dir / f"{kind.lower()}s.yaml").write_text(
            yaml.safe_dump_all([d for d in docs if d["kind"] == kind], sort_keys=False))
    env = dict(os.environ, HOME=str(tmp_path / "home"), KUBECACHEDIR=str(tmp_path / "kubecache"))

    app, ns_gf, ns_kc = "bench-app", "bench-gitferry", "bench-kubectl"
    rows: list[tuple[str, float, float, float, int, int]] = []
    api = api_client_from_kubeconfig(Path(kubeconfig).read_text())
    cluster = ClusterClient(api, str(tmp_path / "discovery"))
    sent = _Requests(api)
    try:
        cluster.ensure_namespace(ns_kc)  # kubesim speaks JSON only; `kubectl create` sends protobuf
        _kubectl(kubeconfig, env, "api-resources")  # both sides start with discovery cached
        cluster.served_types()
        selector = tracking.label_selector(app)

        def gitferry_sync() -> sync.SyncResult:
            live = cluster.list_by_label(selector)
            return sync.run_sync(cluster, app, docs, live, prune=True, create_namespace=True, namespace=ns_gf)

        # 1. first sync
        before = sent.count
        gf, cpu, result = _timed("first-sync", gitferry_sync)
        assert result.phase == "Succeeded", result.message
        assert sum(1 for r in result.resources if r.message == "created") == n
        gf_requests = sent.since(before)
        kc, _, kc_requests = _kubectl(kubeconfig, env, "apply", "--server-side", "-n", ns_kc, "-f", str(manifest_dir))
        rows.append((f"first sync ({n} objects, 3 waves)", gf, cpu, kc, gf_requests, kc_requests))

        # 2. no-change comparison
        def gitferry_diff() -> diff.Comparison:
            live = cluster.list_by_label(selector)
            return diff.compare(cluster, app, docs, live, namespace=ns_gf)

        before = sent.count
        gf, cpu, comparison = _timed("no-change-diff", gitferry_diff)
        assert comparison.sync_status == diff.SYNCED, [
            (r.kind, r.name, r.changed_paths) for r in comparison.resources if r.status != diff.SYNCED][:5]
        assert len(comparison.resources) == n
        gf_requests = sent.since(before)
        kc, out, kc_requests = _kubectl(kubeconfig, env, "diff", "--server-side", "--field-manager=kubectl",
                                        "--force-conflicts", "-n", ns_kc, "-f", str(manifest_dir))
        assert out == "", out[:2000]
        rows.append(("no-change diff", gf, cpu, kc, gf_requests, kc_requests))

        # 3. no-change re-sync
        before = sent.count
        gf, cpu, result = _timed("no-change-resync", gitferry_sync)
        assert result.phase == "Succeeded", result.message
        assert sum(1 for r in result.resources if r.message == "unchanged") == n
        gf_requests = sent.since(before)
        kc, _, kc_requests = _kubectl(kubeconfig, env, "apply", "--server-side", "-n", ns_kc, "-f", str(manifest_dir))
        rows.append(("no-change re-sync", gf, cpu, kc, gf_requests, kc_requests))
    finally:
        cluster.close()

    width = max(len(r[0]) for r in rows)
    latency = request.node.callspec.params["kubeconfig"]
    print(f"\ngitferry engine vs kubectl {N_CONFIGMAPS} ConfigMaps + {N_DEPLOYMENTS} Deployments + "
          f"{N_SERVICES} Services + {N_SECRETS} Secrets, kubesim (own process, {latency} ms per request) "
          "without controllers")
    print(f"  {'':<{width}}  {'gitferry s':>10}  {'kubectl s':>10}  {'speed-up':>8}  {'gitferry CPU s':>14}"
          f"  {'req/obj gitferry':>16}  {'req/obj kubectl':>15}")
    for name, gf, cpu, kc, gf_req, kc_req in rows:
        print(f"  {name:<{width}}  {gf:10.2f}  {kc:10.2f}  {kc / gf:7.2f}x  {cpu:14.2f}  {gf_req / n:16.2f}"
              f"  {kc_req / n:15.2f}")
    print("  (speed-up = kubectl / gitferry wall time; goals: no-change diff >= 5x, re-sync >= 3x at 15 ms;"
          " CPU = the test process, i.e. gitferry's client side)")

