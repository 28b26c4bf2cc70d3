"""kubesim's simulated round trip (``KubeSim(latency_ms=...)``, ``--latency-ms``).

The option models the network between a client and a remote API server: each request waits
before it is answered, and that wait is a sleep in the request's own thread, so requests sent
side by side wait side by side (what a client's concurrency buys against a real cluster). The
bounds below are behaviour, not speed: a request can never be answered before its wait, and
ten concurrent waits of 1 s end long before the 10 s they would take one after another.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.kubesim.server import KubeSim
from tests.kubesim.test_server_http import Http

REPO = Path(__file__).resolve().parents[2]


def test_each_request_waits_and_concurrent_requests_wait_together() -> None:
    with KubeSim(run_controllers=False, latency_ms=1000) as sim:
        http = Http(sim)
        start = time.monotonic()
        code, body, _ = http.call("GET", "/api/v1/namespaces/default")
        assert (code, body["metadata"]["name"]) == (200, "default")
        assert time.monotonic() - start >= 1.0

        def one(_: int) -> int:
            return Http(sim).call("GET", "/api/v1/namespaces/default")[0]

        deadline = time.monotonic() + 5  # the first answer is logged just after it is sent
        while len(sim.request_log) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = sim.log_mark()
        start = time.monotonic()
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(one, range(10)))
        elapsed = time.monotonic() - start
        assert codes == [200] * 10
        deadline = time.monotonic() + 5
        while len(sim.requests_since(before)) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sim.requests_since(before)) == 10
        assert 1.0 <= elapsed < 9.0, elapsed  # waiting, not CPU: together, where one after another takes >= 10 s


def test_no_latency_by_default_and_negative_refused() -> None:
    assert KubeSim(run_controllers=False).latency_s == 0
    with pytest.raises(ValueError, match="latency_ms must be >= 0"):
        KubeSim(run_controllers=False, latency_ms=-1)


def test_command_line_option(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "local.kubesim", "serve", "--kubeconfig", str(tmp_path / "k"),
                          "--latency-ms", "-5"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--latency-ms must be >= 0" in bad.stderr
    path = tmp_path / "kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "local.kubesim", "serve", "--no-controllers", "--latency-ms", "600",
                             "--kubeconfig", str(path)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "kubesim exited"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        start = time.monotonic()
        out = subprocess.run([str(REPO / "layers" / "tools" / "bin" / "kubectl"), "--kubeconfig", str(path),
                              "get", "--raw", "/api/v1/namespaces/default"], capture_output=True, text=True,
                             timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        assert '"name":"default"' in out.stdout
        assert time.monotonic() - start >= 0.6
    finally:
        proc.terminate()
        proc.wait(timeout=15)
