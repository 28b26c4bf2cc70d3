"""gitferry.cost against prices worked out by hand."""

from __future__ import annotations

import pytest
from gitferry import cost


def test_one_stage_per_tick_is_lambda_time_and_requests() -> None:
    stage = cost.StageUse(name="poll", memory_mb=1024, per="tick", invocations=1, ms=1000)
    month = cost.monthly([stage], cost.Fleet(apps=1, secrets=0))
    ticks = 30 * 24 * 60
    assert month.lambda_compute == pytest.approx(ticks * 1.0 * cost.LAMBDA_GB_SECOND_X86)
    assert month.lambda_requests == pytest.approx(ticks / 1e6 * 0.20)
    arm = cost.monthly([stage], cost.Fleet(apps=1, secrets=0, arm=True))
    assert arm.lambda_compute < month.lambda_compute


def test_drift_checks_scale_with_apps_and_round_up_to_ticks() -> None:
    stage = cost.StageUse(name="render", memory_mb=1024, per="check", invocations=1, ms=0, s3_put=1000)
    fleet = cost.Fleet(apps=10, secrets=0, drift_check_seconds=150)  # checked at the third tick
    checks = 10 * 30 * 24 * 3600 / 180
    assert cost.units_per_month(stage, fleet) == pytest.approx(checks)
    assert cost.monthly([stage], fleet).s3 == pytest.approx(checks * cost.S3_PER_1000_PUT)


def test_a_stage_priced_per_tick_and_per_check_shows_both_parts() -> None:
    """The poll runs every tick and does extra work for each drift-checked app: its line in the
    detail is the sum (it showed only the per-check part, 0.00, before)."""
    tick = cost.StageUse(name="poll", memory_mb=1024, per="tick", invocations=1, ms=1000, at_apps=1)
    check = cost.StageUse(name="poll", memory_mb=1024, per="check", invocations=0, ms=10)
    both = cost.monthly([tick, check], cost.Fleet(apps=1, secrets=0))
    alone = [cost.monthly([s], cost.Fleet(apps=1, secrets=0)).detail["lambda:poll"] for s in (tick, check)]
    assert both.detail["lambda:poll"] == pytest.approx(sum(alone)) and alone[0] > 0 and alone[1] > 0


def test_fixed_costs_and_metric_tiers() -> None:
    month = cost.monthly([], cost.Fleet(apps=1, secrets=3, metrics=10_100, alarms=2))
    assert month.secrets_manager == pytest.approx(3 * 0.40)
    assert month.cloudwatch == pytest.approx(10_000 * 0.30 + 100 * 0.10 + 2 * 0.10)
    assert cost.argocd_nodes_monthly() == pytest.approx(3 * 0.096 * 720)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="per"):
        cost.StageUse(name="x", memory_mb=128, per="month", invocations=1, ms=1)
    stage = cost.StageUse(name="x", memory_mb=128, per="check", invocations=1, ms=1)
    with pytest.raises(ValueError, match="positive"):
        cost.monthly([stage], cost.Fleet(apps=1, drift_check_seconds=0))
