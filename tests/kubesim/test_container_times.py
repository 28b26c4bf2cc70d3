"""Times of simulated containers come from the simulated clock.

A crash-looping pod's ``lastState.terminated.startedAt`` / ``finishedAt`` and the running
containers' ``state.running.startedAt`` are instants shortly before the simulated now, so
``kubectl get pods`` shows ``RESTARTS  3 (25s ago)`` like a real cluster (it used to print
"56y ago": seconds after the pod's creation were rendered as epoch seconds). The clock here is
paused in 2030, far from the real time, so only times taken from it pass.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from local.kubesim.clock import Clock, parse_rfc3339
from local.kubesim.server import KubeSim

REPO = Path(__file__).resolve().parents[2]
KUBECTL_BINARIES = {"kubectl-1.37": REPO / "layers" / "tools" / "bin" / "kubectl", "kubectl-1.32": Path("/usr/bin/kubectl")}
T0 = parse_rfc3339("2030-03-01T12:00:00Z")


@pytest.fixture
def sim() -> Iterator[KubeSim]:
    with KubeSim(clock=Clock(start=T0, paused=True), run_controllers=False) as s:
        s.store.create(s.store.ns_rt, None, {"metadata": {"name": "apps"}}, manager="test-setup")
        yield s


def _pods(sim: KubeSim) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=sim.kubeconfig_path))


def _run_pods(sim: KubeSim, seconds: float) -> None:
    core = _pods(sim)
    for name, image in (("crashy", "example/crashloop:1"), ("fine", "nginx:1.27")):
        core.create_namespaced_pod("apps", {"metadata": {"name": name},
                                            "spec": {"containers": [{"name": "app", "image": image}]}})
    sim.controllers.reconcile()
    step = 5.0
    t = 0.0
    while t < seconds:
        sim.clock.advance(step)
        t += step
        sim.controllers.reconcile()


def test_crash_loop_times_are_near_the_simulated_now(sim: KubeSim) -> None:
    _run_pods(sim, 120)
    now = sim.clock.now()
    core = _pods(sim)
    crashy = core.read_namespaced_pod("crashy", "apps").to_dict()["status"]
    cs = crashy["container_statuses"][0]
    assert cs["restart_count"] >= 3
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    term = cs["last_state"]["terminated"]
    started, finished = term["started_at"].timestamp(), term["finished_at"].timestamp()
    assert T0 <= started <= finished <= now
    assert now - finished <= 120  # the last crash was within the simulated two minutes
    fine = core.read_namespaced_pod("fine", "apps").to_dict()["status"]
    running = fine["container_statuses"][0]["state"]["running"]["started_at"].timestamp()
    assert T0 <= running <= now
    assert T0 <= fine["start_time"].timestamp() <= now


@pytest.mark.kubectl
@pytest.mark.parametrize("version", sorted(KUBECTL_BINARIES))
def test_kubectl_get_pods_restarts_column(sim: KubeSim, version: str) -> None:
    binary = KUBECTL_BINARIES[version]
    if not binary.exists():
        if version == "kubectl-1.32":
            pytest.skip(f"{binary} not on this machine")
        raise FileNotFoundError(f"{binary} missing: run make tools")
    _run_pods(sim, 120)
    out = subprocess.run([str(binary), "--kubeconfig", sim.kubeconfig_path, "get", "pods", "-n", "apps"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("crashy"))
    m = re.search(r"CrashLoopBackOff\s+(\d+) \((\d+)s ago\)\s+(\S+)", line)
    assert m, out.stdout
    assert int(m.group(1)) >= 3 and int(m.group(2)) < 120
    assert m.group(3) in ("2m", "2m1s", "2m5s", "120s"), out.stdout  # AGE from the same clock
