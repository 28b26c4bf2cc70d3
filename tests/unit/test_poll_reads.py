"""gitferry.poll.BoundedReads: each read bounded from its own start, given-up readers replaced,
the tick's deadline ending what is left (a hung read is a thread blocked on an Event here)."""

from __future__ import annotations

import threading
import time

from gitferry.poll import BoundedReads


class _Reads:
    def __init__(self, hang: set[str]) -> None:
        self.hang, self.calls, self.release = hang, [], threading.Event()
        self._lock = threading.Lock()

    def __call__(self, key: str) -> str:
        with self._lock:
            self.calls.append(key)
        if key in self.hang:
            self.release.wait(10)
        if key == "boom":
            raise ValueError("boom")
        return key.upper()


def _reads(read: _Reads, workers: int, timeout: float) -> BoundedReads[str, str]:
    return BoundedReads(read, workers=workers, timeout=timeout, on_timeout=lambda k: TimeoutError(k))


def test_hung_reads_are_given_up_and_those_queued_behind_them_still_read() -> None:
    read = _Reads(hang={"h1", "h2"})
    reads = _reads(read, workers=2, timeout=0.3)
    try:
        for key in ("h1", "h2", "a", "boom", "a"):
            reads.submit(key)
        results = reads.results()
    finally:
        read.release.set()
        reads.close()
    assert isinstance(results["h1"], TimeoutError) and isinstance(results["h2"], TimeoutError)
    assert results["a"] == "A"
    assert isinstance(results["boom"], ValueError)
    assert sorted(read.calls) == ["a", "boom", "h1", "h2"]  # "a" submitted twice, read once


def test_the_deadline_ends_running_and_queued_reads() -> None:
    read = _Reads(hang={"h1", "h2", "h3"})
    reads = _reads(read, workers=1, timeout=30)
    try:
        for key in ("h1", "h2", "h3"):
            reads.submit(key)
        results = reads.results(deadline=time.monotonic() + 0.2)
    finally:
        read.release.set()
        reads.close()
    assert set(results) == {"h1", "h2", "h3"}
    assert all(isinstance(r, TimeoutError) for r in results.values())
    assert "h3" not in read.calls  # never started: the tick's time was up


def test_nothing_submitted_returns_at_once() -> None:
    assert _reads(_Reads(set()), workers=4, timeout=1).results() == {}
