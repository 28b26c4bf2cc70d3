"""A poll tick at scale: POLL_BENCH_APPS apps (default 5,000) over a tenth as many repositories.

Run by ``make bench`` only (marker ``bench``). The fleet is on the local stack
(``local.story.LocalWorld``: moto server mode, ``git http-backend``, the poll handler run by the
local runner as Lambda would). Apps and statuses are written through ``StateStore`` (the
poll reads them, nothing renders), and every repository is a copy of one bare repository, so
seeding takes minutes, not the hour a full first sync of 5,000 apps takes (docs/cost.md).

Two ticks are measured, interleaved with their peer, ROUNDS times each:

* **steady**: nothing is due (every app was compared at the head a moment ago): the tick is
  the listing, the statuses and one ``info/refs`` per repository;
* **due**: POLL_BENCH_DUE apps (default all of them) have no status yet (as right after they
  were created), so each gets a RenderRequest: 5,000 messages in 500 ``SendMessageBatch`` calls
  at 5,000 apps. moto's own FIFO send slowed down as a queue filled (it rebuilt the queue's
  attributes, ``ApproximateNumberOfMessages*`` included, several times per message: about
  1.2 ms per queued message per call, 25 minutes of moto's time for 5,000 messages); the local
  stack's moto computes attributes only when they are read (``local/motosqs.py``), so a send
  to a deep queue costs what SQS's does: constant. The RenderQueue is purged before each such
  tick (one purge a minute, as SQS allows) and the wall time the tick spent inside SQS send
  calls (the union of their intervals, so concurrent sends count once) is reported apart; the
  row "without SQS sends" is the tick minus that.

Peers, in the same run, each tick interleaved with them:

* the **sequential order**: the same engine (same clients, same moto) doing the tick in the order
  the poll had before issue 10 (commit e43b192): every page listed, then every status, then the
  repositories (16 at a time), then the SendMessageBatch calls one by one. Beside it the
  current ``Engine.poll()`` called the same way (no handler, no runner), so the two differ only
  in order and concurrency; the direct engines send to a fresh FIFO queue each tick;
* ``git ls-remote`` of every repository by the git CLI, 16 at a time (what the repository reads
  alone cost, with no DynamoDB, no SQS and no Python at all). The goal
(issue 10): a tick at 5,000 apps / 500 repositories within 5 s, one ls-remote per repository.
Asserted: counts only (exactly one ``info/refs`` per repository per tick, every app scheduled
when due, none when not, no errors), never a time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from local.story import LocalWorld

pytestmark = pytest.mark.bench
APPS = int(os.environ.get("POLL_BENCH_APPS") or 5000)
REPOS = max(1, APPS // 10)
ROUNDS = int(os.environ.get("POLL_BENCH_ROUNDS") or 3)
DUE = int(os.environ.get("POLL_BENCH_DUE") or APPS)
GOAL_S = 5.0
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  app: '0'\n"


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmarks run with make bench (-m bench)")


class SendSpans:
    """(start, end) of every SQS send call of one function's boto3 session (botocore hooks)."""

    def __init__(self, session: boto3.session.Session) -> None:
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

        def before(model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
            if context is not None and model.name in ("SendMessage", "SendMessageBatch"):
                context["poll_bench_started"] = time.perf_counter()

        def after(context: dict[str, Any] | None = None, **_: Any) -> None:
            started = (context or {}).get("poll_bench_started")
            if started is not None:
                with self._lock:
                    self.spans.append((started, time.perf_counter()))

        session.events.register("before-call.sqs", before, unique_id="poll-bench-before")
        session.events.register("after-call.sqs", after, unique_id="poll-bench-after")

    def wall_since(self, t0: float) -> tuple[float, int]:
        """Seconds covered by the union of the send calls that started after ``t0``, and their count."""
        with self._lock:
            spans = sorted(s for s in self.spans if s[0] >= t0)
        covered, end = 0.0, float("-inf")
        for start, stop in spans:
            if stop > end:
                covered += stop - max(start, end)
                end = stop
        return covered, len(spans)


def sequential_tick(engine: Any, queues: Any) -> int:
    """The poll tick in the order it had before issue 10 (pipeline.py at e43b192, its decisions
    unchanged): list every page, read every status, read the repositories 16 at a time, decide,
    then send ten per call, one call after the other. Returns the renders scheduled."""
    from gitferry.messages import RenderRequest
    from gitferry.pipeline import _repo_key, due_reason, pinned_revision

    now = engine.clock()
    apps = [stored.app for stored in engine.state.list_apps() if not stored.deletion]
    statuses = engine.state.get_statuses([a.name for a in apps])
    keys = list(dict.fromkeys(_repo_key(src) for app in apps for src in app.spec.all_sources))
    with ThreadPoolExecutor(max_workers=16) as pool:
        resolvers = dict(zip(keys, pool.map(lambda key: engine._resolver(*key), keys), strict=True))
    outgoing = []
    for app in apps:
        status = statuses.get(app.name)
        commit = pinned_revision(app, resolvers)
        reason = due_reason(status, commit, now, engine.settings.drift_check_seconds)
        if reason is not None:
            outgoing.append((RenderRequest(app=app.name, commit=commit, reason=reason, initiatedBy="poll",
                                           startedAt=now.timestamp()), f"{commit}:{reason}:{now.timestamp()}"))
    queues.send_many(outgoing, workers=1)
    return len(outgoing)


class Fleet:
    def __init__(self) -> None:
        self.world = LocalWorld(drift_check_seconds=3600)
        stack = self.world.stack
        poll = stack.resources.function_named("PollFunction").logical_id
        session = boto3.session.Session()  # the one the runner gives the poll (as it would itself)
        from local import iam

        iam.REGISTRY.watch(session)
        stack._sessions[poll] = session
        self.sends = SendSpans(session)
        self.names = [f"fleet{r:03d}" for r in range(REPOS)]
        self._purged = -1e9
        self._direct_session = boto3.session.Session()
        self.direct_sends = SendSpans(self._direct_session)
        self._engines: dict[bool, Any] = {}

    def direct_engine(self, sequential: bool) -> Any:
        """An Engine on the poll's table and secrets with clients of a session of its own, one
        per order and kept (warm, as the handler's is); its renders (and fleet summary) go to a
        fresh FIFO queue at each tick."""
        from gitferry.blobs import ManifestStore
        from gitferry.messages import RenderRequest, ReportRequest
        from gitferry.pipeline import Engine, Settings
        from gitferry.queues import Queues
        from gitferry.secrets import SecretStore
        from gitferry.state import StateStore

        from local.aws import DUMMY_CREDENTIALS

        res = self.world.stack.resources

        def client(service: str) -> Any:
            return self._direct_session.client(
                service, endpoint_url=res.endpoint, region_name=res.region,
                aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"])

        if sequential in self._engines:
            engine = self._engines[sequential]
            url = engine.queues.client.create_queue(QueueName=f"poll-bench-{time.monotonic_ns()}.fifo",
                                                    Attributes={"FifoQueue": "true"})["QueueUrl"]
            engine.queues = Queues({RenderRequest: url, ReportRequest: url}, client=engine.queues.client)
            return engine
        sqs = client("sqs")
        url = sqs.create_queue(QueueName=f"poll-bench-{time.monotonic_ns()}.fifo",
                               Attributes={"FifoQueue": "true"})["QueueUrl"]
        env = self.world.stack.environment(res.function_named("PollFunction"))
        settings = Settings(table_name=res.tables["StateTable"], bucket_name=next(iter(res.buckets.values())),
                            secret_prefix=env.get("SECRET_PREFIX") or "gitferry/", drift_check_seconds=3600)
        queues = Queues({RenderRequest: url, ReportRequest: url}, client=sqs)
        engine = self._engines[sequential] = Engine(
            settings, StateStore(settings.table_name, client=client("dynamodb")),
            ManifestStore(settings.bucket_name, client=client("s3")),
            SecretStore(settings.secret_prefix, client=client("secretsmanager")), queues)
        return engine

    def direct(self, sequential: bool) -> dict[str, Any]:
        engine = self.direct_engine(sequential)
        g0 = len(self.world.git.requests)
        t0 = time.perf_counter()
        scheduled = sequential_tick(engine, engine.queues) if sequential else len(engine.poll().scheduled)
        wall = time.perf_counter() - t0
        sends_s, sends = self.direct_sends.wall_since(t0)
        info_refs = sum(1 for q in self.world.git.requests[g0:] if "info/refs" in q[1])
        return {"wall": wall, "sends_s": sends_s, "sends": sends, "scheduled": scheduled, "info_refs": info_refs}

    def seed(self) -> None:
        from gitferry.model import Application, AppStatus, SyncStatus
        from gitferry.state import StateStore

        w = self.world
        server = w.register_cluster("local")
        w.git.make_repo(self.names[0], {"app/cm.yaml": CONFIGMAP})
        for name in self.names[1:]:  # identical content, separate repositories (URLs, info/refs)
            shutil.copytree(w.git.root / f"{self.names[0]}.git", w.git.root / f"{name}.git")
        self.head = w.git.rev_parse(self.names[0], "main")
        res = w.stack.resources
        store = StateStore(res.tables["StateTable"], client=res.client("dynamodb"))
        now = datetime.now(UTC)
        for n in range(APPS):
            name = f"app-{n:05d}"
            store.put_app(Application.from_manifest({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name},
                "spec": {"source": {"repoURL": w.git.url_for(self.names[n % REPOS]), "path": "app",
                                    "targetRevision": "main"},
                         "destination": {"server": server, "namespace": f"ns-{n:05d}"}}}))
            store.put_status(name, AppStatus(sync=SyncStatus(status="Synced", revision=self.head), reconciled_at=now))

    def forget_statuses(self, count: int) -> None:
        """``count`` apps (spread over the fleet) without a status: due at every tick from now on."""
        res = self.world.stack.resources
        ddb, table = res.client("dynamodb"), res.tables["StateTable"]
        step = APPS / count
        keys = [{"pk": {"S": f"APP#app-{int(i * step):05d}"}, "sk": {"S": "STATUS"}} for i in range(count)]
        for i in range(0, len(keys), 25):
            pending: dict[str, Any] = {table: [{"DeleteRequest": {"Key": k}} for k in keys[i:i + 25]]}
            while pending:
                pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def purge_renders(self) -> None:
        """Empty the RenderQueue (SQS, and moto, allow one PurgeQueue a minute: wait for it)."""
        res = self.world.stack.resources
        time.sleep(max(0.0, self._purged + 61 - time.monotonic()))
        res.client("sqs").purge_queue(QueueUrl=res.queues["RenderQueue"].url)
        self._purged = time.monotonic()

    def tick(self) -> dict[str, Any]:
        w = self.world
        g0 = len(w.git.requests)
        t0 = time.perf_counter()
        inv = w.stack.tick("PollFunction")[0]
        wall = time.perf_counter() - t0
        assert inv.error is None, inv.error
        sends_s, sends = self.sends.wall_since(t0)
        per_repo: dict[str, int] = {}
        for q in w.git.requests[g0:]:
            if "info/refs" in q[1]:
                repo = q[1].lstrip("/").split(".git/")[0]
                per_repo[repo] = per_repo.get(repo, 0) + 1
        return {"wall": wall, "sends_s": sends_s, "sends": sends, "result": inv.result,
                "info_refs": sum(per_repo.values()), "per_repo": per_repo}

    def git_cli_peer(self) -> float:
        """``git ls-remote`` of every repository by the git CLI, 16 at a time."""
        urls = [self.world.git.url_for(n) for n in self.names]
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(lambda u: subprocess.run(["git", "ls-remote", u], capture_output=True,
                                                            env=env, check=False).returncode, urls))
        elapsed = time.perf_counter() - t0
        assert codes == [0] * len(urls)
        return elapsed


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    f = Fleet()
    try:
        t0 = time.perf_counter()
        f.seed()
        print(f"\npoll bench: seeded {APPS} apps / {REPOS} repositories in {time.perf_counter() - t0:.0f} s")
        yield f
    finally:
        f.world.close()


def _row(label: str, values: list[float], peer: float | None = None, goal: str = "") -> str:
    low, med = min(values), statistics.median(values)
    ratio = f"{med / peer:6.2f}x" if peer else "       "
    return f"  {label:<44}{low:8.2f}{med:8.2f} {ratio}  {goal}"


def _check_one_ls_remote(tick: dict[str, Any]) -> None:
    assert tick["info_refs"] == REPOS, (tick["info_refs"], REPOS)
    assert set(tick["per_repo"].values()) == {1}, {r: c for r, c in tick["per_repo"].items() if c != 1}


@pytest.mark.timeout(3600)
def test_poll_tick_at_scale(fleet: Fleet) -> None:
    fleet.tick()  # first invocations: imports, clients and caches, not what a warm tick costs
    fleet.direct(sequential=True)
    fleet.direct(sequential=False)
    rows: dict[str, list[float]] = {}

    def keep(label: str, value: float) -> None:
        rows.setdefault(label, []).append(value)

    for due in (0, DUE):
        if due:
            fleet.forget_statuses(DUE)
        for _ in range(ROUNDS):
            keep("peer: git ls-remote", fleet.git_cli_peer())
            for sequential in (True, False):
                d = fleet.direct(sequential)
                assert (d["scheduled"], d["info_refs"]) == (due, REPOS), d
                name = "sequential order (before)" if sequential else "Engine.poll() now"
                keep(f"{due}:{name}", d["wall"])
                keep(f"{due}:{name} without SQS sends", d["wall"] - d["sends_s"])
            if due:
                fleet.purge_renders()
            tick = fleet.tick()
            _check_one_ls_remote(tick)
            assert tick["result"] == {"apps": APPS, "scheduled": due, "errors": 0}, tick["result"]
            if due:
                assert tick["sends"] >= DUE // 10  # RenderQueue batches of 10 (+ the fleet summary)
            keep(f"{due}:poll handler tick", tick["wall"])
            keep(f"{due}:poll handler tick without SQS sends", tick["wall"] - tick["sends_s"])
    p = statistics.median(rows["peer: git ls-remote"])
    goal = f"goal <= {GOAL_S:.0f} s at 5,000 / 500"
    print(f"\npoll tick, {APPS} apps / {REPOS} repositories, {ROUNDS} rounds; seconds min / median; "
          f"x = median over the git CLI's median; SQS send time is moto's (see the module doc)")
    print(_row(f"peer: git ls-remote x{REPOS}, 16 at a time", rows["peer: git ls-remote"]))
    for due in (0, DUE):
        print(f"  -- {'nothing due' if not due else f'{due} due ({due} renders queued)'}")
        for name in ("sequential order (before)", "Engine.poll() now", "poll handler tick"):
            print(_row(name, rows[f"{due}:{name}"], p, goal if name == "poll handler tick" and not due else ""))
            if due:
                print(_row(f"{name} without SQS sends", rows[f"{due}:{name} without SQS sends"], p,
                           goal if name == "poll handler tick" else ""))
        before, now = (statistics.median(rows[f"{due}:{n}"]) for n in ("sequential order (before)", "Engine.poll() now"))
        print(f"  sequential order / Engine.poll() now (medians): {before / now:.2f}x")
    print(f"  info/refs per repository per tick: 1 (counted for each of {2 * ROUNDS} handler ticks; "
          f"{REPOS} per direct tick)")
