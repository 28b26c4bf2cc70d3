"""kubesim throughput: GET and server-side-apply PATCH requests/second, kubectl apply wall time.

Run by ``make bench`` only (marker ``bench``); prints a small table and asserts nothing
about timing, so a slow CI machine never fails it. The ``/version`` peer row shows how much
of a request is HTTP+TLS overhead versus store work.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from local.kubesim.server import KubeSim

pytestmark = pytest.mark.bench
REPO = Path(__file__).resolve().parents[2]
THREADS = 8


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


def _pool(sim: KubeSim, total: int, make_request) -> float:
    """Run ``total`` requests from THREADS keep-alive connections; returns requests/second."""
    ctx = ssl.create_default_context(cadata=sim.certs.ca_pem.decode())
    per_thread = total // THREADS
    errors: list[str] = []

    def worker(idx: int) -> None:
        conn = http.client.HTTPSConnection(sim.host, sim.port, context=ctx, timeout=60)
        for i in range(per_thread):
            method, path, body, ctype = make_request(idx, i)
            headers = {"Authorization": f"Bearer {sim.token}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = ctype
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 400:
                errors.append(f"{method} {path}: {resp.status}")
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert not errors, errors[:5]
    return per_thread * THREADS / elapsed


def test_kubesim_throughput(tmp_path: Path) -> None:
    rows: list[tuple[str, str]] = []
    with KubeSim() as sim:
        cms = sim.store.types.lookup("", "v1", "configmaps")
        for n in range(THREADS):
            sim.store.create(cms, "default", {"metadata": {"name": f"bench-{n}"}, "data": {"k": "v"}}, manager="b")
        version = _pool(sim, 2000, lambda t, i: ("GET", "/version", None, ""))
        get = _pool(sim, 2000, lambda t, i: ("GET", f"/api/v1/namespaces/default/configmaps/bench-{t}", None, ""))

        def ssa(t: int, i: int) -> tuple[str, str, str, str]:
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": f"ssa-{t}"}, "data": {"i": str(i)}})
            return ("PATCH", f"/api/v1/namespaces/default/configmaps/ssa-{t}?fieldManager=bench&force=true",
                    body, "application/apply-patch+yaml")

        patch = _pool(sim, 800, ssa)
        rows += [("GET /version (peer)", f"{version:8.0f} req/s"), ("GET configmap", f"{get:8.0f} req/s"),
                 ("GET / peer ratio", f"{get / version:8.2f}"), ("SSA PATCH configmap", f"{patch:8.0f} req/s")]

        docs = []
        for n in range(250):
            docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: many-{n}\n  namespace: default\n"
                        f"data:\n  n: \"{n}\"\n")
            docs.append(
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: many-{n}\n  namespace: default\n"
                f"spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: many-{n}}}\n  template:\n"
                f"    metadata:\n      labels: {{app: many-{n}}}\n    spec:\n      containers:\n"
                f"      - name: app\n        image: nginx:1.27\n")
        manifest = tmp_path / "many.yaml"
        manifest.write_text("---\n".join(docs))
        kubectl = str(REPO / "layers" / "tools" / "bin" / "kubectl")
        for label in ("create", "unchanged"):
            start = time.perf_counter()
            result = subprocess.run([kubectl, "--kubeconfig", sim.kubeconfig_path, "apply", "-f", str(manifest)],
                                    capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr[-2000:]
            rows.append((f"kubectl apply 500 objects ({label})", f"{time.perf_counter() - start:8.2f} s"))
    width = max(len(r[0]) for r in rows)
    print("\nkubesim benchmark (8 client threads)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
