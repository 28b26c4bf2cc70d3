"""A fault-injecting HTTP proxy for the reliability suite (``tests/reliability``).

Put it in front of any HTTP(S) server of the local stack (kubesim, the git server, moto) and
point the client at it instead; every request goes through real sockets::

    with FaultProxy("https://127.0.0.1:6443", ca_file=kube.ca_path) as proxy:   # clients speak HTTP to it
        rule = proxy.add(Fault(method="PATCH", path=r"/api/v1/namespaces/shop/configmaps/late",
                               status=500, times=1))
        ...
        assert rule.hits == 1

A :class:`Fault` matches on method, a path regex, a header regex and a body regex, and then
answers ``status`` with ``body`` (the upstream is not called), or waits ``delay`` seconds
before forwarding (a slow or timed-out server), or ``drop`` closes the connection without an
answer; with none of these it forwards (useful with ``then``, a callback run when it fires). ``times`` bounds how often it fires (``None`` = until removed); ``skip`` lets that many
matching requests through first ("mid-wave": the second PATCH fails). Requests no fault takes are
forwarded unchanged and answered with the upstream's answer.
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from local.httpserver import LoopbackHTTPServer

__all__ = ["Fault", "FaultProxy", "dynamodb_error", "kube_status"]

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


@dataclass
class Fault:
    """One injected fault; ``hits`` counts the requests it took, ``seen`` all that matched."""

    method: str | None = None
    path: str | None = None  # regex searched in the request path (with query)
    header: tuple[str, str] | None = None  # (name, regex)
    body: str | None = None  # regex searched in the decoded request body
    status: int | None = None
    response: bytes | str = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    times: int | None = 1
    skip: int = 0
    then: Any = None  # called (no arguments) each time the fault fires: chain faults ("after wave 0 ...")
    hits: int = 0
    seen: int = 0

    def matches(self, method: str, path: str, headers: Any, body: bytes) -> bool:
        if self.method and method.upper() != self.method.upper():
            return False
        if self.path and not re.search(self.path, path):
            return False
        if self.header and not re.search(self.header[1], headers.get(self.header[0]) or ""):
            return False
        if self.body and not re.search(self.body, body.decode("utf-8", "replace")):
            return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


def kube_status(code: int, reason: str, message: str) -> Fault:
    """The body a real API server sends with an error status (``metav1.Status``)."""
    import json

    return Fault(status=code, response=json.dumps({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code}))


def dynamodb_error(code: str, message: str, status: int = 400) -> Fault:
    """A DynamoDB JSON-protocol error answer (what the service sends for ``code``)."""
    import json

    return Fault(status=status, content_type="application/x-amz-json-1.0",
                 response=json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}))


class FaultProxy:
    """A loopback HTTP server forwarding to ``upstream`` (http or https) unless a fault takes
    the request. ``ca_file`` verifies an https upstream (kubesim's CA); ``log`` records
    ``(method, path, status)`` of every request."""

    def __init__(self, upstream: str, *, ca_file: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(upstream)
        self.scheme = parts.scheme
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=ca_file) if parts.scheme == "https" else None
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any  # noqa: N815

        self._server = LoopbackHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.base_path}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, fault: Fault, **match: Any) -> Fault:
        """Install ``fault`` (``match`` overrides its fields: ``method=``, ``path=``, ``times=`` ...)."""
        for k, v in match.items():
            setattr(fault, k, v)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take(self, method: str, path: str, headers: Any, body: bytes) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.exhausted or not fault.matches(method, path, headers, body):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.hits += 1
                if fault.then is not None:
                    fault.then()
                return fault
        return None

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        fault = self._take(req.command, req.path, req.headers, body)
        if fault is not None and fault.drop:
            self.log.append((req.command, req.path, 0))
            req.close_connection = True
            try:
                req.connection.shutdown(2)
            except OSError:
                pass
            return
        if fault is not None and fault.status is not None:
            payload = fault.response.encode() if isinstance(fault.response, str) else fault.response
            self._answer(req, fault.status, {"Content-Type": fault.content_type, **fault.headers}, payload)
            return
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        self._forward(req, body)

    def _forward(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        if self._ssl is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.upstream_host, self.upstream_port, context=self._ssl, timeout=300)
        else:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=300)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP and k.lower() != "host"}
        headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
        try:
            conn.request(req.command, req.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP and k.lower() != "content-length"}
            self._answer(req, resp.status, out, payload)
        except OSError as exc:
            self._answer(req, 502, {"Content-Type": "text/plain"}, f"fault proxy: upstream failed: {exc}".encode())
        finally:
            conn.close()

    def _answer(self, req: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.log.append((req.command, req.path, status))
        try:
            req.send_response(status)
            for k, v in headers.items():
                req.send_header(k, v)
            req.send_header("Content-Length", str(len(payload)))
            req.end_headers()
            if req.command != "HEAD":
                req.wfile.write(payload)
        except OSError:
            pass  # the client gave up (its own timeout)
