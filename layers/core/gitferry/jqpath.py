"""``jqPathExpressions`` of ``spec.ignoreDifferences``: which paths of an object a jq expression
selects, evaluated with a bound on time and memory.

Argo CD evaluates ``del(<expression>)`` with gojq under a timeout (1 s by default). gitferry
asks jq (the ``jq`` binding of libjq) for ``path(<expression>)``, which yields the same paths
``del`` would delete, so the diff can remove them from both sides and the sync can tell which
fields to leave alone (``RespectIgnoreDifferences``).

libjq runs in C and cannot be interrupted from Python, and an expression such as
``[range(1e9)]`` would keep a Lambda busy until it is killed. So the evaluation runs in a
worker process (``python -c``, the parent's ``sys.path``): address space limited by
``RLIMIT_AS``, each request bounded by a wall-clock timeout after which the worker is killed
(the next request starts a fresh one), at most :data:`MAX_PATHS` paths per evaluation. One
worker serves every expression of a comparison; an expression that timed out or crashed the
worker is not run again in the same comparison.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

TIMEOUT_SECONDS: Final = 1.0  # Argo CD's --ignore-normalizer-jq-execution-timeout default
MEMORY_BYTES: Final = 512 * 2**20  # address space of the worker (python + libjq + the objects)
MAX_PATHS: Final = 10_000
MAX_EXPRESSION_LENGTH: Final = 1024
_START_TIMEOUT_SECONDS: Final = 30.0  # a cold interpreter on a busy machine; not evaluation time

JqPath = tuple[str | int, ...]


class JqError(Exception):
    """An expression that does not compile, fails, or exceeds a bound; ``str`` is the reason."""


def program_text(expression: str) -> str:
    return f"path({expression})"


def check_expression(expression: str) -> None:
    """Raise ValueError when ``expression`` is not a jq expression gitferry can use (for
    registration: compiling is bounded by the expression's length)."""
    if not expression.strip():
        raise ValueError("empty jq expression")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"jq expression longer than {MAX_EXPRESSION_LENGTH} characters")
    import jq

    try:
        jq.compile(expression)  # alone first: the error's column is then the user's
        jq.compile(program_text(expression))
    except ValueError as exc:
        raise ValueError(f"invalid jq expression {json.dumps(expression)}: {_compile_message(exc)}") from None


def _compile_message(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "compile error" not in ln]
    return (lines[0] if lines else str(exc)).removeprefix("jq: error: ").rstrip(":")


@dataclass(frozen=True)
class Result:
    """Paths one evaluation selected, or why it failed (``error``)."""

    paths: tuple[JqPath, ...] = ()
    error: str | None = None
    from_data: bool = False  # jq failed on this value (its message may quote the value)


class JqRunner:
    """A lazily started jq worker process shared by the threads of one comparison.

    ``select(expression, values)`` evaluates ``path(expression)`` on each value and returns one
    :class:`Result` per value; a compile error, a timeout or a crash fails every value of the
    call. Use it as a context manager (or call :meth:`close`) so the worker is reaped.
    """

    def __init__(self, timeout: float = TIMEOUT_SECONDS, memory_bytes: int = MEMORY_BYTES,
                 max_paths: int = MAX_PATHS) -> None:
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self.max_paths = max_paths
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._failed: dict[str, str] = {}

    def __enter__(self) -> JqRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def select(self, expression: str, values: Sequence[Any]) -> list[Result]:
        with self._lock:
            if expression in self._failed:
                return [Result(error=self._failed[expression])] * len(values)
            try:
                answer = self._ask({"e": program_text(expression), "i": list(values), "m": self.max_paths})
            except JqError as exc:
                self._failed[expression] = str(exc)
                return [Result(error=str(exc))] * len(values)
        if "error" in answer:
            return [Result(error=str(answer["error"]))] * len(values)
        out: list[Result] = []
        for item in answer["r"]:
            if isinstance(item, dict):
                out.append(Result(error=str(item.get("error")), from_data=True))
            else:
                out.append(Result(paths=tuple(tuple(p) for p in item)))
        return out

    # ---- the worker process (called with the lock held) ----

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", f"from gitferry.jqpath import _worker; _worker({self.memory_bytes})"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                )
            except OSError as exc:
                raise JqError(f"the jq worker could not start: {exc}") from None
            self._buffer = b""
            if self._read_line(time.monotonic() + _START_TIMEOUT_SECONDS) != b'"ready"':
                self._stop()
                raise JqError("the jq worker did not start")
        return self._proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        proc = self._start()
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(request, separators=(",", ":"), default=str).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            self._stop()
            raise JqError(f"the jq worker crashed (memory limit {self.memory_bytes // 2**20} MiB?)") from None
        line = self._read_line(time.monotonic() + self.timeout)
        if line is None:
            self._stop()
            raise JqError(f"evaluation exceeded the time limit of {self.timeout:g}s")
        if not line:
            self._stop()
            raise JqError(f"evaluation exceeded the memory limit of {self.memory_bytes // 2**20} MiB")
        answer = json.loads(line)
        return answer if isinstance(answer, dict) else {"error": "unexpected answer from the jq worker"}

    def _read_line(self, deadline: float) -> bytes | None:
        """One line from the worker; None at the deadline, b"" when the worker died."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


def _worker(memory_bytes: int) -> None:  # pragma: no cover - runs in the worker process
    """Answer one JSON request per line: ``{"e": program, "i": [values], "m": max_paths}``."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import jq

    programs: dict[str, Any] = {}
    out = sys.stdout.buffer
    out.write(b'"ready"\n')
    out.flush()
    for raw in sys.stdin.buffer:
        request = json.loads(raw)
        answer: dict[str, Any]
        try:
            program = programs.get(request["e"])
            if program is None:
                program = programs[request["e"]] = jq.compile(request["e"])
        except ValueError as exc:
            answer = {"error": f"invalid jq expression: {_compile_message(exc)}"}
        else:
            results: list[Any] = []
            for value in request["i"]:
                paths: list[Any] = []
                try:
                    for path in program.input_value(value):
                        if len(paths) >= request["m"]:
                            raise ValueError(f"selects more than {request['m']} paths")
                        paths.append(path)
                    results.append(paths)
                except (ValueError, MemoryError) as exc:
                    results.append({"error": str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__})
            answer = {"r": results}
        out.write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
        out.flush()


__all__ = ["JqError", "JqPath", "JqRunner", "Result", "check_expression", "program_text"]
