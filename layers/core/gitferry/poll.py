"""The poll tick: what is due, from one read of each repository.

A tick lists the applications page by page and starts reading each repository (ls-remote,
index.yaml, tag list) as soon as the first app using it is known, while the next page and the
statuses of the pages already listed are being read: the phases overlap instead of following
each other. Each repository is read once per tick however many apps and sources use it.

Every read is bounded from its own start (``Settings.repo_timeout_seconds``): a repository
that has not answered by then is given up for this tick (its apps get a ComparisonError, the
next tick reads it again) and a fresh thread takes the slot of the one left waiting, so a few
hung servers cannot hold back the others. Reads still pending when the tick's own time runs
out (the Lambda's remaining time less :data:`SEND_RESERVE_SECONDS`) are given up the same way.

The decisions themselves (:func:`gitferry.pipeline.due_reason`, ``pinned_revision``) are the
pipeline's pure functions; the messages go out concurrently (:meth:`Queues.send_many`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gitferry.errors import GitError, GitferryError, HelmRepoError

if TYPE_CHECKING:
    from gitferry.pipeline import Engine, PollResult

#: repositories read at once (each read is mostly waiting on the Git / Helm / OCI server)
READ_WORKERS = 16
#: DynamoDB calls of the tick at once (statuses of listed pages, condition writes, flag clears)
STATE_WORKERS = 4
#: what a tick keeps of the Lambda's remaining time for what follows the reads (writes, sends)
SEND_RESERVE_SECONDS = 15.0

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class BoundedReads(Generic[K, R]):
    """``read(key)`` for each key submitted, at most ``workers`` at a time, each bounded by
    ``timeout`` seconds from its own start. A read past its bound is abandoned: its result is
    ``on_timeout(key)``, and its thread (a daemon, finishing on its own when the server or the
    socket timeout lets it) no longer counts against ``workers``."""

    def __init__(self, read: Callable[[K], R], *, workers: int, timeout: float,
                 on_timeout: Callable[[K], BaseException], name: str = "gitferry-read",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read, self._workers, self._timeout = read, workers, timeout
        self._on_timeout, self._name, self._clock = on_timeout, name, clock
        self._cv = threading.Condition()
        self._queued: deque[K] = deque()
        self._seen: set[K] = set()
        self._started: dict[K, float] = {}  # key -> start, while its read runs
        self._done: dict[K, R | BaseException] = {}
        self._abandoned: set[K] = set()
        self._running = 0  # threads that count against ``workers``
        self._closed = False

    def submit(self, key: K) -> None:
        """Queue ``key`` (once: a key already submitted is not read again)."""
        with self._cv:
            if key in self._seen or self._closed:
                return
            self._seen.add(key)
            self._queued.append(key)
            self._spawn()

    def _spawn(self) -> None:  # under the lock
        while self._running < self._workers and len(self._queued) > self._running - len(self._started):
            self._running += 1
            threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._cv:
                if not self._queued or self._closed:
                    self._running -= 1
                    self._cv.notify_all()
                    return
                key = self._queued.popleft()
                self._started[key] = self._clock()
            result: R | BaseException
            try:
                result = self._read(key)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the key
                result = exc
            with self._cv:
                self._started.pop(key, None)
                if key in self._abandoned:  # given up; a fresh thread took this one's place
                    self._abandoned.discard(key)
                    self._cv.notify_all()
                    return
                self._done[key] = result
                self._cv.notify_all()

    def results(self, deadline: float | None = None) -> dict[K, R | BaseException]:
        """Wait for every submitted key: its result, its exception, or ``on_timeout(key)`` when
        its read outlasted its bound or ``deadline`` (a ``clock`` value) came first."""
        with self._cv:
            while len(self._done) < len(self._seen):
                now = self._clock()
                for key, started in list(self._started.items()):
                    if now >= started + self._timeout or (deadline is not None and now >= deadline):
                        self._give_up(key)
                if deadline is not None and now >= deadline:
                    for key in list(self._queued):
                        self._done[key] = self._on_timeout(key)
                    self._queued.clear()
                if len(self._done) >= len(self._seen):
                    break
                wake = [s + self._timeout for s in self._started.values()] + ([deadline] if deadline else [])
                self._cv.wait(timeout=max(0.01, min(wake) - now) if wake else 1.0)
            return dict(self._done)

    def _give_up(self, key: K) -> None:  # under the lock
        del self._started[key]
        self._abandoned.add(key)
        self._done[key] = self._on_timeout(key)
        self._running -= 1  # its thread no longer holds a slot
        self._spawn()

    def close(self) -> None:
        """Start no further reads (threads already reading finish on their own)."""
        with self._cv:
            self._closed = True
            self._queued.clear()
            self._cv.notify_all()


def slow_repository(kind: str, url: str, seconds: float) -> GitferryError:
    what = {"helm": "Helm repository", "oci": "OCI repository"}.get(kind, "Git repository")
    message = f"{what} {url} did not answer within {seconds:g}s; skipped this poll tick"
    return HelmRepoError(message, url) if kind in ("helm", "oci") else GitError(message, url)


def tick(engine: Engine, remaining_ms: Callable[[], int] | None = None) -> PollResult:
    """One poll tick of ``engine`` (see :meth:`gitferry.pipeline.Engine.poll`)."""
    from gitferry import deletion
    from gitferry.messages import RenderRequest, ReportRequest
    from gitferry.pipeline import FLEET, PollResult, _repo_key, due_reason, pinned_revision

    now = engine.clock()
    settings = engine.settings
    # Made here, before any worker thread needs them: making clients from one boto3 session
    # in several threads at once is not safe.
    for adapter in (engine.state, engine.queues, engine.secrets):
        _ = adapter.client
    timeout = settings.repo_timeout_seconds
    reads: BoundedReads[tuple[str, str], Any] = BoundedReads(
        lambda key: engine._resolver(*key), workers=READ_WORKERS, timeout=timeout,
        on_timeout=lambda key: slow_repository(key[0], key[1], timeout), name="gitferry-poll")
    pool = ThreadPoolExecutor(max_workers=STATE_WORKERS, thread_name_prefix="gitferry-poll-state")
    try:
        stored_apps: list[Any] = []
        pages: list[tuple[list[Any], Future[dict[str, Any]] | None]] = []
        engine.poll_specs.next_round()
        engine.poll_statuses.next_round()
        for page in engine.state.iter_app_pages(specs=engine.poll_specs):
            stored_apps += page
            live = [stored.app for stored in page if not stored.deletion]  # deleting: deletion.py's
            for app in live:
                for source in app.spec.all_sources:
                    reads.submit(_repo_key(source))
            pages.append((live, pool.submit(engine.state.get_statuses, [a.name for a in live], engine.poll_statuses)
                          if live else None))
        apps = [app for live, _ in pages for app in live]
        statuses: dict[str, Any] = {}
        for _, statuses_of_page in pages:
            if statuses_of_page is not None:
                statuses.update(statuses_of_page.result())
        deadline = None
        if remaining_ms is not None:
            deadline = time.monotonic() + max(0.0, remaining_ms() / 1000 - SEND_RESERVE_SECONDS)
        resolvers: dict[tuple[str, str], Any] = {}
        for key, result in reads.results(deadline).items():
            if isinstance(result, BaseException) and not isinstance(result, GitferryError):
                raise result
            resolvers[key] = result

        scheduled: list[RenderRequest] = []
        outgoing: list[tuple[Any, str]] = []
        to_clear: list[str] = []  # request flags, cleared only once their messages are sent
        errors: dict[str, str] = {}
        recorded: list[Future[Any]] = []
        for app in apps:
            status = statuses.get(app.name)
            try:
                commit = pinned_revision(app, resolvers)
            except GitferryError as exc:
                errors[app.name] = str(exc)
                recorded.append(pool.submit(engine.record_comparison_error, app, status, None, exc))
                continue
            op = status.operation_state if status else None
            if op is not None and op.phase == "Running":
                # The safety net, not the mechanism: the operation's own follow-up moves it on.
                overdue = engine._overdue_follow_up(app.name, now)
                if overdue is not None:
                    outgoing.append(overdue)
            reason = due_reason(status, commit, now, settings.drift_check_seconds)
            if reason is None:
                continue
            request = RenderRequest(
                app=app.name, commit=commit, reason=reason, initiatedBy="poll",
                startedAt=now.timestamp(), sync=bool(status and status.sync_requested),
            )
            outgoing.append((request, f"{commit}:{reason}:{now.timestamp()}"))
            if status and (status.refresh_requested or status.sync_requested):
                to_clear.append(app.name)
            scheduled.append(request)
        outgoing += deletion.due_resumes(stored_apps, now)
        out_of_sync = sum(1 for s in statuses.values() if s.sync.status == "OutOfSync")
        degraded = sum(1 for s in statuses.values() if s.health.status == "Degraded")
        outgoing.append((
            ReportRequest(app=FLEET, event="fleet", outOfSync=out_of_sync, degraded=degraded, apps=len(apps),
                          startedAt=now.timestamp()),
            f"fleet:{now.timestamp()}",
        ))
        engine.queues.send_many(outgoing)
        _all(pool.map(engine.state.clear_requests, to_clear))
        _all(f.result() for f in recorded)
        return PollResult(scheduled, errors, len(apps), out_of_sync, degraded)
    finally:
        reads.close()
        pool.shutdown(wait=True, cancel_futures=True)


def _all(results: Iterable[Any]) -> None:
    """Wait for every result (re-raising the first failure)."""
    for _ in results:
        pass
