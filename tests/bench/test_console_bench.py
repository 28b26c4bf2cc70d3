"""The console in Chromium: navigation -> first application rows at 5,000 registered apps, and
the fleet's counts at the top, and the topology of an app of 500 live objects, each against the API calls it waits for, measured in
the browser (Resource Timing) as the peer.

Run by ``make bench`` only (marker ``bench``). The 5,000 apps are written through the state store
(``StateStore.put_app`` + ``put_status``, as the API's create and the pipeline write them); the
500-object app is real: 125 Deployments of 2 replicas synced into kubesim, whose controllers make
the 125 ReplicaSets and 250 Pods. No background loop runs while the browser measures. Prints times and ratios; asserts what is shown, never timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.story import LocalWorld, application
from tests.console.conftest import DESKTOP, Page, browser  # noqa: F401 - the browser fixture

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]
N_APPS, N_DEPLOYMENTS, RUNS = 5000, 125, 5

FLEET_COUNTS = "() => document.querySelector('section.counts[data-scope=fleet]') ? performance.now() : false"
FIRST_ROWS = "() => document.querySelector('li.app-row') ? performance.now() : false"
ALL_NODES = f"() => document.querySelectorAll('.topology g.node').length > {N_DEPLOYMENTS * 4} ? performance.now() : false"
API_DONE = """(part) => Math.max(0, ...performance.getEntriesByType('resource')
    .filter((e) => e.name.includes(part)).map((e) => e.responseEnd))"""
LAYOUT_MS = """() => Math.max(0, ...performance.getEntriesByName('topology-layout').map((e) => e.duration))"""
API_TIME = """(part) => Math.max(0, ...performance.getEntriesByType('resource')
    .filter((e) => e.name.includes(part)).map((e) => e.responseEnd - e.startTime))"""


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:  # no background loop: nothing runs while the browser measures
        yield w


def _fleet(world: LocalWorld, server: str) -> None:
    from gitferry.model import Application, AppStatus
    from gitferry.state import StateStore

    store = StateStore(world.stack.resources.tables["StateTable"], client=world.stack.resources.client("dynamodb"))

    def one(n: int) -> None:
        app = Application.from_manifest({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": f"fleet-{n:05d}", "labels": {"team": f"team-{n % 10}"}},
            "spec": {"project": "default", "source": {"repoURL": f"https://git.example.com/org/svc-{n % 50}.git",
                                                      "path": f"deploy/{n}", "targetRevision": "HEAD"},
                     "destination": {"server": server, "namespace": f"ns-{n % 40}"}}})
        store.put_app(app)
        store.put_status(app.name, AppStatus.model_validate({
            "sync": {"status": "OutOfSync" if n % 3 == 0 else "Synced", "revision": f"{n:040x}"},
            "health": {"status": "Degraded" if n % 7 == 0 else "Healthy"},
            "operationState": {"phase": "Succeeded", "message": "successfully synced",
                               "startedAt": "2026-12-02T10:00:00Z", "finishedAt": "2026-12-02T10:00:05Z"}}))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(N_APPS)))


def _deployments() -> dict[str, str]:
    docs = []
    for i in range(N_DEPLOYMENTS):
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-{i:03d}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web-{i:03d}}}
  template:
    metadata:
      labels: {{app: web-{i:03d}}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
""")
    return {"app/deployments.yaml": "---\n".join(docs)}


def _runs(tab: Any, path: str, done: str, api_part: str,
          settle: str | None = None) -> list[tuple[float, float, float, float]]:
    """(navigation -> shown, the API call's own time, shown - API answer, the layout's own time)
    in ms, one row per run (RUNS). ``settle``: waited for after each run, so a run's requests
    still in the server (the fleet's counts read every app) do not slow the next navigation."""
    rows = []
    for _ in range(RUNS):
        tab.goto(path)
        shown = tab.page.wait_for_function(done, polling="raf", timeout=180_000).json_value()
        rows.append((shown, tab.page.evaluate(API_TIME, api_part), shown - tab.page.evaluate(API_DONE, api_part),
                     tab.page.evaluate(LAYOUT_MS)))
        if settle:
            tab.page.wait_for_function(settle, polling=100, timeout=180_000)
    return sorted(rows)


def test_console_first_rows_and_big_topology(world: LocalWorld, browser: Any) -> None:  # noqa: F811
    server = world.register_cluster("local")
    repo = world.git.make_repo("big", _deployments())
    world.api_ok("POST", "/api/v1/applications", application("big", repo, server, automated=True, path="app",
                                                             namespace="big"))
    world.until("the big app healthy", lambda: (world.status("big").get("health") or {}).get("status") == "Healthy"
                and len(world.api_ok("GET", "/api/v1/applications/big/resource-tree")["nodes"]) >= 4 * N_DEPLOYMENTS,
                timeout=300)
    t0 = time.monotonic()
    _fleet(world, server)  # after the big app: the poll is not asked to look at the 5,000
    print(f"\nwrote {N_APPS} apps in {time.monotonic() - t0:.0f} s")

    tab = Page(browser, world, DESKTOP)
    try:
        tab.page.set_default_timeout(180_000)
        tab.sign_in("clusters")
        list_rows = _runs(tab, "/applications", FIRST_ROWS, "/api/v1/applications?", settle=FLEET_COUNTS)
        assert tab.page.locator("li.app-row").count() == 100  # one page shown, the rest behind "Load more"
        count_rows = _runs(tab, "/applications", FLEET_COUNTS, "/application-counts", settle=FLEET_COUNTS)
        assert tab.page.locator("section.counts [data-total]").get_attribute("data-total") == str(N_APPS + 1)
        topo_rows = _runs(tab, "/applications/big", ALL_NODES, "/resource-tree")
        nodes = tab.page.locator(".topology g.node").count()
        assert nodes == 1 + 4 * N_DEPLOYMENTS, nodes  # app + Deployments + ReplicaSets + Pods
        tab.shot("bench-topology-500")
    finally:
        tab.close()
    print(f"\nconsole in chromium, {RUNS} runs (ms), min / median   shown        API call     after API    layout")
    for label, rows in ((f"first rows of {N_APPS} apps", list_rows), (f"fleet counts of {N_APPS} apps", count_rows),
                        (f"topology of {nodes - 1} objects", topo_rows)):
        cols = [sorted(r[i] for r in rows) for i in range(4)]
        print(f"{label:<40} " + " ".join(f"{c[0]:>5.0f} /{c[len(c) // 2]:>5.0f}" for c in cols)
              + f"   shown/API {cols[0][len(rows) // 2] / max(cols[1][len(rows) // 2], 1):.1f}x")
