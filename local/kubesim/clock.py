"""Simulated clock for kubesim.

Controllers must be deterministic in tests: a pod becomes Ready 2 s after it
was created, a rollout fails after ``progressDeadlineSeconds`` and so on. Those
rules read time only from this clock, so a test can ``pause()`` it and
``advance()`` step by step instead of sleeping, while the local stack simply
lets it follow real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Simulated epoch seconds: real time plus an offset, or frozen while paused.

    Thread-safe: the server's controller thread reads it while a test thread
    advances it. ``advance`` accepts negative values too (tests that need to
    look "before" something, or undo a step).
    """

    def __init__(self, start: float | None = None, *, paused: bool = False) -> None:
        """``start``: simulated time at construction (default: real time now)."""
        self._lock = threading.Lock()
        real = time.time()
        self._offset = 0.0 if start is None else start - real
        self._frozen: float | None = (real + self._offset) if paused else None

    def now(self) -> float:
        """Simulated epoch seconds: frozen while paused, real time + offset otherwise."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return time.time() + self._offset

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._frozen is not None

    def pause(self) -> None:
        """Freeze simulated time where it is now (idempotent)."""
        with self._lock:
            if self._frozen is None:
                self._frozen = time.time() + self._offset

    def resume(self) -> None:
        """Follow real time again from the frozen instant (no jump forward)."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None

    def advance(self, seconds: float) -> None:
        """Move simulated time by ``seconds`` (negative moves it back), paused or not."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def rfc3339(self, t: float | None = None) -> str:
        """``2026-11-26T15:00:00Z``: whole seconds in UTC, the format of metav1.Time."""
        return format_rfc3339(self.now() if t is None else t)


def format_rfc3339(t: float) -> str:
    """Render epoch seconds the way the API server renders ``metav1.Time`` (second precision, Z)."""
    return datetime.fromtimestamp(int(t // 1), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> float:
    """Parse a ``metav1.Time`` / ``MicroTime`` string back to epoch seconds (``Z`` or offset)."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
