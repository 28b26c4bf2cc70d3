"""The scale rig's accounting on a world small enough to know every count (tools/bench_scale.py).

6 apps over 2 repositories and 2 clusters, every app automated: a drift tick renders and diffs
all 6 (RenderQueue holds 6, batches of 10: one render and one diff invocation), the steady tick
after it asks each repository once and schedules nothing, and a burst of 2 commits (one per
repository) reaches the cluster. The AWS counts come from the rig's botocore hooks; what they
must equal is known from the template (batch sizes, FIFO queues) and the world's shape.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import bench_scale  # noqa: E402
from gitferry import cost  # noqa: E402

APPS, REPOS = 6, 2


@pytest.fixture(scope="module")
def doc() -> dict:
    return bench_scale.run(APPS, repos=REPOS, drift_seconds=3, commits=REPOS)


def test_steady_tick_asks_each_repository_once_and_schedules_nothing(doc: dict) -> None:
    steady = doc["phases"]["steady"]
    assert steady["git_info_refs"] == REPOS and steady["git_round_trips_per_tick"] == REPOS
    assert steady["stages"]["PollFunction"]["invocations"] == 1
    assert "RenderFunction" not in steady["stages"] and steady["kubernetes_requests"] == 0
    assert steady["messages_in_flight_max"]["RenderQueue"] == 0


def test_drift_tick_checks_every_app_and_counts_its_calls(doc: dict) -> None:
    drift = doc["phases"]["drift"]
    assert drift["checked_apps"] == APPS and drift["messages_in_flight_max"]["RenderQueue"] == APPS
    poll = drift["stages"]["PollFunction"]
    assert poll["invocations"] == 1 and poll["errors"] == 0
    render_sends = {k: v for k, v in poll["sqs_calls_by_queue"].items() if "RenderQueue" in k}
    assert render_sends == {next(iter(render_sends)): math.ceil(APPS / 10)}, poll["sqs_calls_by_queue"]
    assert next(iter(render_sends)).endswith(".fifo:SendMessageBatch")
    assert poll["sqs_fifo_calls"] >= math.ceil(APPS / 10)
    for stage in ("RenderFunction", "DiffFunction"):
        s = drift["stages"][stage]
        assert s["invocations"] == math.ceil(APPS / 10) and s["errors"] == 0
        assert s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] and s["mean_ms"] > 0
        assert sum(v for k, v in s["aws_calls"].items() if k.startswith("dynamodb:")) > 0
    assert drift["kubernetes_requests_per_checked_app"] > 0
    assert drift["git_info_refs"] == REPOS


def test_burst_commits_reach_the_cluster(doc: dict) -> None:
    burst = doc["phases"]["burst"]
    assert doc["burst_not_applied"] == [] and burst["checked_apps"] == REPOS
    assert burst["stages"]["ApplyFunction"]["invocations"] >= REPOS
    assert doc["custom_metrics"]["fleet"] > 0 and doc["alarms"] > 0


def test_cost_model_prices_the_measured_stages(doc: dict) -> None:
    stages = cost.stages_from_rig(doc)
    assert {s.name for s in stages if s.per == "tick"} >= {"PollFunction"}
    assert {s.name for s in stages if s.per == "check"} >= {"RenderFunction", "DiffFunction"}
    rows = cost.fleet_table(doc, (10, 100))
    small, big = rows[0][1], rows[1][1]
    assert 0 < small.total < big.total
    # ten times the apps: ten times the drift checks, the per-tick part unchanged
    assert big.lambda_requests == pytest.approx(
        cost.monthly([s for s in stages if s.per == "tick"], cost.Fleet(apps=100)).lambda_requests
        + 10 * cost.monthly([s for s in stages if s.per == "check"], cost.Fleet(apps=10)).lambda_requests)
