"""A Git smart-HTTP server on loopback for tests and the local stack.

Real ``git http-backend`` does the protocol (so clients see exactly what GitHub
or Gitea would send), behind a small threaded CGI bridge on the standard
library's ``http.server``. Repositories are bare repos in one root directory,
served as ``http://127.0.0.1:<port>/<name>.git``; each can require HTTP basic
auth. Helpers create repos and push commits from a work tree with the real
``git`` binary, so test fixtures are built the way users build theirs.

    with GitServer(tmp_path) as gs:
        url = gs.make_repo("apps", {"guestbook/cm.yaml": "..."})
        sha = gs.commit("apps", {"guestbook/cm.yaml": "..."}, "change")
"""

from __future__ import annotations

import base64
import hmac
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

__all__ = ["GitServer"]

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "gitferry test",
    "GIT_AUTHOR_EMAIL": "test@gitferry.invalid",
    "GIT_COMMITTER_NAME": "gitferry test",
    "GIT_COMMITTER_EMAIL": "test@gitferry.invalid",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _http_backend() -> str:
    out = subprocess.run(["git", "--exec-path"], check=True, capture_output=True, text=True).stdout.strip()
    return str(Path(out) / "git-http-backend")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean; requests are recorded in GitServer.requests

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self, repo: str) -> str | None:
        """REMOTE_USER for this request, "" for anonymous, None when refused."""
        creds = self.server.gitserver.auth.get(repo)
        header = self.headers.get("Authorization", "")
        user = ""
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            if creds is None:
                return user
            ok = hmac.compare_digest(user, creds[0]) & hmac.compare_digest(password, creds[1])
            return user if ok else None
        return None if creds else ""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        body = self._read_body()
        repo = path.lstrip("/").split(".git", 1)[0] if ".git" in path else path.lstrip("/").split("/", 1)[0]
        self.server.gitserver._record(self.command, path, parts.query)
        user = self._authorized(repo)
        if user is None:
            msg = b"authentication required\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="gitferry-test"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.gitserver.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.server.gitserver.root),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            # http-backend allows push (receive-pack) only to an authenticated user
            "REMOTE_USER": user or "anonymous",
        }
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run([self.server.backend], input=body, env=env, capture_output=True, check=False)
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = proc.stdout.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name.strip(), value.strip()))
        if proc.returncode != 0 and not sep:
            status, payload, headers = 500, proc.stderr, [("Content-Type", "text/plain")]
        self.send_response(status)
        for name, value in headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 overflows when a poll tick opens 16 connections at
    # once while this process is busy: the kernel drops the SYNs and each client waits out
    # TCP's 1 s retransmission (a 1 s stall per dropped connection, seen in the poll bench).
    request_queue_size = 128
    gitserver: GitServer
    backend: str

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up mid-request are normal (git gives up on a 401); keep
        anything else in ``GitServer.errors`` for tests to look at."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            return
        self.gitserver.errors.append(traceback.format_exc())


class GitServer:
    """Serve the bare repos under ``root`` over smart HTTP on 127.0.0.1."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.auth: dict[str, tuple[str, str]] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._work = Path(tempfile.mkdtemp(prefix="gitserver-work-"))
        self._httpd = _Server((host, port), _Handler)
        self._httpd.gitserver = self
        self._httpd.backend = _http_backend()
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GitServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gitserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- repos ------------------------------------------------------------------

    def url_for(self, name: str) -> str:
        return f"{self.base_url}/{name}.git"

    def set_auth(self, name: str, username: str, password: str) -> None:
        """Require HTTP basic auth with these credentials for repo ``name``."""
        self.auth[name] = (username, password)

    def make_repo(
        self,
        name: str,
        files: Mapping[str, str],
        *,
        auth: tuple[str, str] | None = None,
        branch: str = "main",
        message: str = "initial",
        symlinks: Mapping[str, str] | None = None,
    ) -> str:
        """Create bare repo ``name`` with one commit of ``files`` on ``branch``; returns its URL."""
        bare = self.root / f"{name}.git"
        if bare.exists():
            raise FileExistsError(f"repo {name} exists")
        self._git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        work = self._work / name
        self._git("init", "--quiet", f"--initial-branch={branch}", str(work))
        self._git("remote", "add", "origin", str(bare), cwd=work)
        if auth:
            self.set_auth(name, *auth)
        self.commit(name, files, message, branch=branch, symlinks=symlinks)
        return self.url_for(name)

    def commit(
        self,
        name: str,
        files: Mapping[str, str],
        message: str = "update",
        delete: Iterable[str] = (),
        *,
        branch: str = "main",
        symlinks: Mapping[str, str] | None = None,
    ) -> str:
        """Write ``files`` (path -> text), remove ``delete``, commit on ``branch``
        (created from the current commit when new) and push; returns the commit SHA."""
        work = self._work / name
        has_head = (
            self._git("rev-parse", "--verify", "--quiet", "HEAD", cwd=work, check=False).returncode == 0
        )
        if has_head:
            self._git("checkout", "--quiet", "-B", branch, cwd=work)
        for rel, text in files.items():
            p = work / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.is_symlink():
                p.unlink()
            p.write_text(text)
        for rel, target in (symlinks or {}).items():
            p = work / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.exists() or p.is_symlink():
                p.unlink()
            p.symlink_to(target)
        for rel in delete:
            self._git("rm", "--quiet", "-r", "--", rel, cwd=work)
        self._git("add", "--all", cwd=work)
        self._git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
        self._git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return self.rev_parse(name, "HEAD")

    def tag(self, name: str, tag: str, ref: str = "HEAD", message: str | None = None) -> str:
        """Create (lightweight, or annotated with ``message``) tag ``tag`` at ``ref``
        and push it; returns the SHA of the commit it points to."""
        work = self._work / name
        args = ["tag", "-f"] + (["-a", "-m", message] if message else []) + [tag, ref]
        self._git(*args, cwd=work)
        self._git("push", "--quiet", "--force", "origin", f"refs/tags/{tag}", cwd=work)
        return self.rev_parse(name, f"{ref}^{{commit}}")

    def rev_parse(self, name: str, ref: str) -> str:
        return self._git("rev-parse", ref, cwd=self._work / name).stdout.strip()

    def set_head(self, name: str, branch: str) -> None:
        """Point the served repo's HEAD at ``branch`` (its default branch)."""
        self._git("symbolic-ref", "HEAD", f"refs/heads/{branch}", cwd=self.root / f"{name}.git")

    # -- plumbing ---------------------------------------------------------------

    def _record(self, method: str, path: str, query: str) -> None:
        with self._lock:
            self.requests.append((method, path, query))

    def requests_for(self, name: str) -> list[tuple[str, str, str]]:
        """Requests received so far for repo ``name`` (method, path, query)."""
        with self._lock:
            return [r for r in self.requests if r[1].lstrip("/").startswith(f"{name}.git")]

    def _git(
        self, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **_GIT_ENV}
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc
