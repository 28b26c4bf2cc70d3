"""Helm ``lookup`` against the destination, read-only (what Argo CD cannot do, issue #5202).

Argo CD renders offline, so a chart's ``lookup`` always returns an empty result there; gitferry
does the same by default. An application opts in with the annotation
``gitferry.dev/helm-lookup: "true"`` (an Argo CD Application has no field for it), and only when
its destination cluster was registered with ``allowHelmLookup: true``; otherwise the app is
refused at registration, and a render of it (the cluster's allowance withdrawn since) is a
ComparisonError saying why.

Such an app's Helm sources render with ``helm template --dry-run=server`` against a kubeconfig
naming :class:`ReadOnlyProxy`: a small HTTP server on 127.0.0.1 started for that one render.
It forwards **GET** requests only (get, list, discovery) to the real cluster through the
official ``kubernetes`` client, which adds the real credential itself: helm never sees a token,
a certificate or the cluster's address. Everything else is refused with a Kubernetes ``Status``
403: every write (POST, PUT, PATCH, DELETE) and ``watch`` (unbounded). Each forwarded request
is bounded in time (:data:`REQUEST_TIMEOUT_SECONDS`) and size (:data:`MAX_RESPONSE_BYTES`), and
all of one render's responses together by :data:`MAX_TOTAL_BYTES`. Such renders are never cached
(their output depends on the cluster). What ``lookup`` reads (Secrets included, the common use:
keeping a generated password) ends up in the rendered manifests, which are stored like any
other (Secret values sealed with KMS, ``gitferry.blobs``).
"""

from __future__ import annotations

import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from gitferry.model import Application

__all__ = ["ANNOTATION", "ReadOnlyProxy", "check_annotation", "conflicts", "refusal", "wanted"]

ANNOTATION = "gitferry.dev/helm-lookup"
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_REQUESTS = 2000


def check_annotation(app: Application) -> str | None:
    """A problem line for a bad annotation value, else None."""
    value = app.metadata.annotations.get(ANNOTATION)
    if value is None or value in ("true", "false"):
        return None
    return f"metadata.annotations.{ANNOTATION}: must be \"true\" or \"false\" (got {value[:40]!r})"


def conflicts(app: Application) -> list[str]:
    """Problem lines for options a lookup render could not honour: against a cluster helm takes
    the cluster's version, so ``helm.kubeVersion`` would be silently ignored."""
    if not wanted(app):
        return []
    return [f"{where}.helm.kubeVersion: cannot be used with {ANNOTATION}: \"true\" (rendering against the "
            "cluster, helm takes the cluster's version)"
            for where, src in app.spec.all_sources_with_paths() if src.helm is not None and src.helm.kube_version]


def wanted(app: Application) -> bool:
    """Does ``app`` ask to render Helm ``lookup`` against its destination?"""
    return app.metadata.annotations.get(ANNOTATION) == "true"


def refusal(cluster: str) -> str:
    return (f"{ANNOTATION}: cluster {cluster!r} does not allow Helm lookup: register it with "
            "allowHelmLookup: true to let this application's charts read it (read-only), "
            "or remove the annotation to render offline as Argo CD does")


def _status(code: int, reason: str, message: str) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _reply(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self) -> None:
        self.server.refused.append(f"{self.command} {urlsplit(self.path).path}")
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_RESPONSE_BYTES:
            self.rfile.read(length)  # drain it so the connection stays usable
        self._reply(403, _status(403, "Forbidden", f"gitferry: Helm lookup is read-only: {self.command} "
                                 "requests are refused"))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _refuse  # noqa: N815

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(k == "watch" and v not in ("", "0", "false") for k, v in query) or "/watch/" in parts.path:
            self.server.refused.append(f"WATCH {parts.path}")
            self._reply(403, _status(403, "Forbidden", "gitferry: Helm lookup does not watch"))
            return
        self.server.count += 1
        if self.server.count > MAX_REQUESTS:
            self._reply(429, _status(429, "TooManyRequests", f"gitferry: more than {MAX_REQUESTS} lookups"))
            return
        code, body, content_type = self.server.forward(parts.path, query, self.headers.get("Accept"))
        self._reply(code, body, content_type)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api_client: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api_client = api_client
        self.count = 0
        self.total = 0
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def forward(self, path: str, query: list[tuple[str, str]], accept: str | None) -> tuple[int, bytes, str]:
        api = self.api_client
        headers = {"Accept": accept or "application/json"}
        try:
            method, url, header_params, _body, _post = api.param_serialize(
                "GET", path, query_params=query or None, header_params=headers, auth_settings=["BearerToken"])
            response = api.call_api(method, url, header_params=header_params,
                                    _request_timeout=(min(10.0, REQUEST_TIMEOUT_SECONDS), REQUEST_TIMEOUT_SECONDS))
        except Exception as exc:  # noqa: BLE001 - a transport failure is helm's error to report
            return 502, _status(502, "BadGateway", f"gitferry: the cluster did not answer: {type(exc).__name__}"), \
                "application/json"
        raw = response.response
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = raw.read(64 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                with self._lock:
                    self.total += len(chunk)
                    over_total = self.total > MAX_TOTAL_BYTES
                if size > MAX_RESPONSE_BYTES or over_total:
                    return 413, _status(413, "RequestEntityTooLarge",
                                        "gitferry: a Helm lookup answer is larger than gitferry allows"), \
                        "application/json"
                chunks.append(chunk)
        finally:
            raw.release_conn()
        content_type = str(response.headers.get("Content-Type") or "application/json")
        return int(response.status), b"".join(chunks), content_type


class ReadOnlyProxy:
    """The proxy for one render: ``with ReadOnlyProxy(api_client) as proxy: ... proxy.kubeconfig``."""

    def __init__(self, api_client: Any) -> None:
        self._server = _Server(api_client)
        self._thread = threading.Thread(target=self._server.serve_forever, name="gitferry-lookup-proxy",
                                        daemon=True)
        self._dir = tempfile.TemporaryDirectory(prefix="gitferry-lookup-")
        self.kubeconfig = Path(self._dir.name) / "kubeconfig"

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def refused(self) -> list[str]:
        """The requests refused so far (``POST /api/v1/...``), for logs and tests."""
        return list(self._server.refused)

    def __enter__(self) -> ReadOnlyProxy:
        self._thread.start()
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "lookup",
               "clusters": [{"name": "lookup", "cluster": {"server": self.url}}],
               "users": [{"name": "lookup", "user": {}}],
               "contexts": [{"name": "lookup", "context": {"cluster": "lookup", "user": "lookup"}}]}
        self.kubeconfig.write_text(yaml.safe_dump(doc))
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._dir.cleanup()
