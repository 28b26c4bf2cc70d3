"""Cold start: each handler's module import (Lambda's init phase) in a fresh interpreter, against
``python -c "import boto3"`` (poll, webhook, report, followup) and ``import boto3, kubernetes``
(diff, apply, api, render), in the same run and interleaved, with and without bytecode.

Run by ``make bench`` only (marker ``bench``). "With bytecode" is how ``make package`` ships the
layers (pycs beside the sources); "without" points ``PYTHONPYCACHEPREFIX`` at an empty
directory for every run, which is what a package with no pycs costs on Lambda's read-only code
directory: everything imported is compiled at every cold start. Peers get the same treatment.
The first invocation's deferred imports are not in these rows. Prints min / median of ROUNDS
runs; asserts only that every import succeeded.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench
REPO = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("BENCH_COLDSTART_ROUNDS") or 5)
LIGHT = ("poll", "webhook", "report", "followup")
CLUSTER = ("diff", "apply", "api", "render")
_TIMED = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


def _import_seconds(stmt: str, cwd: Path, bytecode: bool) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update({"PYTHONPATH": str(REPO / "layers" / "core"), "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1", "TABLE_NAME": "t", "BUCKET_NAME": "b", "POWERTOOLS_SERVICE_NAME": "gitferry",
                "POWERTOOLS_METRICS_NAMESPACE": "gitferry"})
    with tempfile.TemporaryDirectory() as empty:
        if not bytecode:
            env.update({"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"})
        out = subprocess.run([sys.executable, "-c", _TIMED.format(stmt=stmt)], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (stmt, cwd, out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def test_cold_start_imports() -> None:
    subjects = {f"{stage}": ("import app", REPO / "functions" / stage) for stage in (*LIGHT, *CLUSTER)}
    subjects["peer: import boto3"] = ("import boto3", REPO)
    subjects["peer: import boto3, kubernetes"] = ("import boto3, kubernetes.client", REPO)
    times: dict[tuple[str, bool], list[float]] = {}
    for _ in range(ROUNDS):  # interleaved, so load on the machine falls on every row alike
        for bytecode in (True, False):
            for name, (stmt, cwd) in subjects.items():
                times.setdefault((name, bytecode), []).append(_import_seconds(stmt, cwd, bytecode))

    def row(name: str, bytecode: bool) -> tuple[float, float]:
        runs = times[(name, bytecode)]
        return min(runs), statistics.median(runs)

    print(f"\ncold start: handler import in a fresh python{sys.version_info.major}.{sys.version_info.minor}, "
          f"min / median of {ROUNDS}, seconds; ratio = median / its peer's median (goal <= 1.3)")
    print(f"  {'':<32} {'with bytecode':>16} {'ratio':>6}   {'without bytecode':>16} {'ratio':>6}")
    for name in subjects:
        peer = "peer: import boto3, kubernetes" if name in CLUSTER else "peer: import boto3"
        cells = []
        for bytecode in (True, False):
            low, mid = row(name, bytecode)
            ratio = mid / row(peer, bytecode)[1] if not name.startswith("peer") else 1.0
            cells.append(f"{low:7.3f} / {mid:6.3f} {ratio:6.2f}")
        print(f"  {name:<32} {cells[0]}   {cells[1]}")
