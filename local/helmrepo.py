"""A Helm chart repository on loopback for tests and the local stack.

A chart repository is only static files: ``index.yaml`` plus ``<chart>-<version>.tgz``.
This serves a directory with the standard library's ``ThreadingHTTPServer`` (optionally
behind HTTP basic auth), and builds that directory with the real ``helm`` binary
(``helm package`` + ``helm repo index --url``), so gitferry reads exactly what a real
repository (ChartMuseum, GitHub Pages, S3) would give it.

    with HelmRepoServer(tmp_path / "charts") as repo:
        repo.add_chart("web", "1.0.0", {"templates/cm.yaml": "..."})
        url = repo.url
"""

from __future__ import annotations

import base64
import hmac
import os
import shutil
import subprocess
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

__all__ = ["HelmRepoServer", "helm_binary"]

_TOOLS = Path(__file__).resolve().parent.parent / "layers" / "tools" / "bin"


def helm_binary() -> str:
    """helm from PATH, else the tools layer of this checkout (``make tools``)."""
    found = shutil.which("helm")
    if found:
        return found
    local = _TOOLS / "helm"
    if local.is_file():
        return str(local)
    raise RuntimeError(f"helm not found on PATH nor in {_TOOLS} (run `make tools`)")


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # requests are recorded in HelmRepoServer.requests

    def _authorized(self) -> bool:
        expected = self.server.repo.auth
        if expected is None:
            return True
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(value.strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(given.encode(), f"{expected[0]}:{expected[1]}".encode())

    def do_GET(self) -> None:
        self.server.repo.requests.append(self.path)
        if self.headers.get("Authorization"):
            self.server.repo.requests_with_auth.append(self.path)
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if not self._authorized():
            self.send_response(401)
            self.end_headers()
            return
        super().do_HEAD()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # not socketserver's 5: see local/gitserver.py's _Server
    repo: HelmRepoServer


class HelmRepoServer:
    """A static Helm chart repository at ``url`` over directory ``root``.

    ``auth=(user, password)`` makes every request need those basic-auth credentials.
    ``requests`` lists the paths asked for, so tests can count index fetches, and
    ``requests_with_auth`` those that carried credentials."""

    def __init__(self, root: str | Path, auth: tuple[str, str] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.auth = auth
        self.requests: list[str] = []
        self.requests_with_auth: list[str] = []  # paths asked for with an Authorization header
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> HelmRepoServer:
        server = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(self.root)))
        server.repo = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="helmrepo", daemon=True)
        self._thread.start()
        if not (self.root / "index.yaml").exists():
            self._index()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HelmRepoServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("HelmRepoServer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- content ---------------------------------------------------------------

    def add_chart(self, name: str, version: str, files: dict[str, str]) -> None:
        """Publish chart ``name`` ``version``: ``files`` (paths relative to the chart, e.g.
        ``templates/deploy.yaml``, ``values.yaml``) are written to a chart directory, which
        ``helm package`` turns into ``<name>-<version>.tgz`` in the root; the index is rebuilt.
        A ``Chart.yaml`` is written when ``files`` has none."""
        with self._lock, tempfile.TemporaryDirectory(prefix="helmrepo-") as tmp:
            chart_dir = Path(tmp) / name
            chart_dir.mkdir()
            if "Chart.yaml" not in files:
                (chart_dir / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
            for rel, text in files.items():
                path = chart_dir / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            self._helm(["package", str(chart_dir), "--version", version, "--destination", str(self.root)],
                       Path(tmp))
            self._index()

    def _index(self) -> None:
        with tempfile.TemporaryDirectory(prefix="helmrepo-") as tmp:
            self._helm(["repo", "index", str(self.root), "--url", self.url], Path(tmp))

    def _helm(self, args: list[str], work: Path) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            "HELM_CACHE_HOME": str(work / "cache"),
            "HELM_CONFIG_HOME": str(work / "config"),
            "HELM_DATA_HOME": str(work / "data"),
        }
        proc = subprocess.run([helm_binary(), *args], env=env, capture_output=True, text=True, check=False,
                              timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")
