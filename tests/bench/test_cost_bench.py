"""The cost table: gitferry's month at 10 / 100 / 1,000 / 5,000 apps, next to Argo CD on its own nodes.

Run by ``make bench`` only (marker ``bench``). Reads the scale rig's measurements
(``.cache/bench-scale.json``, written by ``make bench-scale``); without them, measures a small
world itself (``tools/bench_scale.py`` at ``BENCH_COST_APPS``, default 40 apps) and says so.
Prints the table of ``gitferry.cost`` (AWS list prices, us-east-1, named in that module) at
1-minute polling and 3-minute drift checks; asserts the model's shape, never a price.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from gitferry import cost

pytestmark = pytest.mark.bench
REPO = Path(__file__).resolve().parents[2]
MEASURED = REPO / ".cache" / "bench-scale.json"


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


def test_cost_table() -> None:
    if MEASURED.is_file():
        doc = json.loads(MEASURED.read_text())
        source = f"{MEASURED.relative_to(REPO)}"
    else:
        sys.path.insert(0, str(REPO / "tools"))
        import bench_scale

        apps = int(os.environ.get("BENCH_COST_APPS") or 40)
        doc = bench_scale.run(apps, commits=min(200, apps // 10 or 1))
        source = f"a {apps}-app world measured now (make bench-scale for the full rig)"
    s = doc["scale"]
    rows = cost.fleet_table(doc)
    print(f"\ncost per month, us-east-1 list prices, poll 60 s, drift check 180 s; measured by {source}: "
          f"{s['apps']} apps / {s['repositories']} repositories / {s['clusters']} clusters")
    print(cost.format_table(rows, cost.argocd_nodes_monthly()))
    for n, month in rows:
        print(f"  {n:>5} apps: Lambda {', '.join(f'{k[7:]} {v:.2f}' for k, v in sorted(month.detail.items()))}")
    totals = [m.total for _, m in rows]
    assert totals == sorted(totals) and totals[0] > 0
