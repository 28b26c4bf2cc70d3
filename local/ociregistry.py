"""A real OCI registry on loopback for tests and the local stack: Debian's ``docker-registry``
(the CNCF distribution registry, ``github.com/distribution/distribution``).

:func:`ensure_installed` installs the Debian package when ``/usr/bin/docker-registry`` is
missing (CI is a clean machine); :class:`OciRegistry` writes a config (filesystem storage in
its own directory, a free loopback port, optional htpasswd basic auth with bcrypt hashes,
which is the only hash the registry accepts), starts the binary and stops it. It speaks plain
HTTP, so gitferry must be told (repository registration ``plainHttp: true``) and helm gets
``--plain-http``.

:meth:`OciRegistry.push_artifact` / :meth:`push_chart` publish content with the OCI
distribution HTTP API itself (blob upload POST + PUT, manifest PUT), the way oras, flux and
helm do, so tests exercise exactly what a real registry serves.

    with OciRegistry(tmp_path / "registry", auth=("ci", "secret")) as reg:
        digest = reg.push_artifact("team/manifests", "1.0.0", {"deploy.yaml": "..."})
        reg.host   # 127.0.0.1:<port>
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["OciRegistry", "ensure_installed", "REGISTRY_BINARY",
           "OCI_MANIFEST", "OCI_LAYER_TAR_GZIP", "HELM_CHART_LAYER", "HELM_CHART_CONFIG",
           "FLUX_CONTENT_LAYER", "FLUX_CONFIG", "OCI_EMPTY_CONFIG"]

REGISTRY_BINARY = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_CHART_CONFIG = "application/vnd.cncf.helm.config.v1+json"
FLUX_CONTENT_LAYER = "application/vnd.cncf.flux.content.v1.tar+gzip"
FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"


def ensure_installed() -> str:
    """Path of the registry binary, installing Debian's ``docker-registry`` when it is missing
    (``apt-get`` as root; the package's service is not started: policy-rc.d / no systemd)."""
    if os.access(REGISTRY_BINARY, os.X_OK):
        return REGISTRY_BINARY
    found = shutil.which("docker-registry")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "docker-registry"]
    proc = subprocess.run(install, env=env, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False, timeout=600)
        proc = subprocess.run(install, env=env, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0 or not os.access(REGISTRY_BINARY, os.X_OK):
        raise RuntimeError(f"cannot install docker-registry: {proc.stderr.strip()[-500:]}")
    return REGISTRY_BINARY


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"


def tar_gz(files: dict[str, str | bytes], prefix: str = "") -> bytes:
    """A reproducible ``.tar.gz`` of ``files`` (relative path -> content), under ``prefix/``."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        dirs: set[str] = set()
        for rel in sorted(files):
            name = f"{prefix}/{rel}" if prefix else rel
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            content = files[rel]
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The distribution spec's token service (what Docker Hub, GHCR and Harbor run in front of
    their registries): ``GET /token?service=&scope=`` with basic auth answers a JWT signed by
    a self-signed key whose certificate the registry trusts (``rootcertbundle``), carrying the
    ``access`` the scope asked for. ``requests`` records (path, had Authorization)."""

    def __init__(self, root: Path, auth: tuple[str, str], service: str, issuer: str) -> None:
        import datetime
        import threading
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import parse_qs, urlsplit

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.x509.oid import NameOID

        from local.httpserver import LoopbackHTTPServer

        self.auth, self.service, self.issuer = auth, service, issuer
        self.requests: list[tuple[str, bool]] = []
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitferry-local-token")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.cert_path = root / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:
                given = self.headers.get("Authorization", "")
                outer.requests.append((self.path, bool(given)))
                expected = "Basic " + base64.b64encode(f"{outer.auth[0]}:{outer.auth[1]}".encode()).decode()
                if given != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                query = parse_qs(urlsplit(self.path).query)
                access = []
                for scope in query.get("scope", []):
                    kind, _, rest = scope.partition(":")
                    repo, _, actions = rest.rpartition(":")
                    access.append({"type": kind, "name": repo, "actions": actions.split(",")})
                at = int(time.time())
                claims = {"iss": outer.issuer, "sub": outer.auth[0], "aud": outer.service, "exp": at + 300,
                          "nbf": at - 10, "iat": at, "jti": hashlib.sha256(os.urandom(8)).hexdigest(),
                          "access": access}
                header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
                signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
                signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
                body = json.dumps({"token": f"{signing}.{_b64url(signature)}", "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oci-token", daemon=True)
        self._thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class OciRegistry:
    """``docker-registry serve`` on ``127.0.0.1:<free port>``, storage under ``root``.

    ``auth=(user, password)`` turns on htpasswd basic auth for every request; with
    ``bearer=True`` the registry asks for tokens from a :class:`TokenServer` instead (the
    distribution token flow), which takes those credentials."""

    def __init__(self, root: str | Path, auth: tuple[str, str] | None = None, *, bearer: bool = False) -> None:
        self.root = Path(root)
        self.auth = auth
        self.bearer = bearer
        self.port = 0
        self.token_server: TokenServer | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> OciRegistry:
        binary = ensure_installed()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "storage").mkdir(exist_ok=True)
        self.port = _free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "storage")},
                        "delete": {"enabled": True}, "cache": {"blobdescriptor": "inmemory"}},
            "http": {"addr": f"127.0.0.1:{self.port}", "secret": hashlib.sha256(os.urandom(16)).hexdigest()},
        }
        if self.auth is not None and self.bearer:
            self.token_server = TokenServer(self.root, self.auth, "gitferry-local", "gitferry-token")
            config["auth"] = {"token": {"realm": self.token_server.realm, "service": "gitferry-local",
                                        "issuer": "gitferry-token",
                                        "rootcertbundle": str(self.token_server.cert_path)}}
        elif self.auth is not None:
            (self.root / "htpasswd").write_text(_htpasswd_line(*self.auth) + "\n")
            config["auth"] = {"htpasswd": {"realm": "gitferry-local", "path": str(self.root / "htpasswd")}}
        (self.root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        self._log = open(self.root / "registry.log", "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen([binary, "serve", str(self.root / "config.yml")], stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("docker-registry did not listen within 20s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None

    def __enter__(self) -> OciRegistry:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: what goes after ``oci://`` in a repoURL."""
        if not self.port:
            raise RuntimeError("OciRegistry is not started")
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- the distribution API (what oras / flux / helm push do) ----------------

    def _request(self, method: str, path: str, data: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        url = path if path.startswith("http") else f"{self.url}{path}"
        all_headers = dict(headers or {})
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            all_headers["Authorization"] = f"Basic {token}"
            if self.token_server is not None:  # the test's own pushes: a push+pull token for the repository
                from urllib.parse import urlencode, urlsplit

                repo = urlsplit(url).path.removeprefix("/v2/").split("/blobs/")[0].split("/manifests/")[0]
                repo = repo.split("/tags/")[0]
                query = urlencode({"service": "gitferry-local", "scope": f"repository:{repo}:pull,push"})
                req = urllib.request.Request(f"{self.token_server.realm}?{query}",
                                             headers={"Authorization": f"Basic {token}"})
                with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                    all_headers["Authorization"] = f"Bearer {json.load(resp)['token']}"
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            raise RuntimeError(f"{method} {path}: HTTP {exc.code} {body[:300]!r}") from None

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _status, headers, _ = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        location = headers.get("Location") or headers.get("location") or ""
        sep = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{sep}digest={digest}", data,
                      {"Content-Type": "application/octet-stream"})
        return digest

    def push_manifest(self, repo: str, tag: str, manifest: dict[str, Any]) -> str:
        """PUT the manifest under ``tag``; its digest (what gitferry records as the revision)."""
        body = json.dumps(manifest, separators=(",", ":")).encode()
        _s, headers, _ = self._request("PUT", f"/v2/{repo}/manifests/{tag}", body,
                                       {"Content-Type": manifest.get("mediaType", OCI_MANIFEST)})
        return headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()

    def push_layers(self, repo: str, tag: str, layers: list[tuple[str, bytes, dict[str, str]]],
                    config: tuple[str, bytes] = (OCI_EMPTY_CONFIG, b"{}"),
                    artifact_type: str | None = None, annotations: dict[str, str] | None = None) -> str:
        """An image manifest with ``config`` and ``layers`` (media type, content, annotations)."""
        config_digest = self.push_blob(repo, config[1])
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config[0], "digest": config_digest, "size": len(config[1])},
            "layers": [],
        }
        if artifact_type:
            manifest["artifactType"] = artifact_type
        for media_type, data, layer_annotations in layers:
            entry: dict[str, Any] = {"mediaType": media_type, "digest": self.push_blob(repo, data), "size": len(data)}
            if layer_annotations:
                entry["annotations"] = layer_annotations
            manifest["layers"].append(entry)
        if annotations:
            manifest["annotations"] = annotations
        return self.push_manifest(repo, tag, manifest)

    def push_artifact(self, repo: str, tag: str, files: dict[str, str | bytes], *,
                      media_type: str = OCI_LAYER_TAR_GZIP, flavour: str = "oras") -> str:
        """Plain manifests as an OCI artifact: one ``.tar.gz`` layer of ``files``.

        ``flavour`` ``oras`` (``oras push dir/``: empty config, the layer titled by
        ``org.opencontainers.image.title``), ``flux`` (``flux push artifact``: flux's config and
        content media types) or ``argocd`` (Argo CD's documented form: one
        ``application/vnd.oci.image.layer.v1.tar+gzip`` layer)."""
        data = tar_gz(files)
        if flavour == "flux":
            return self.push_layers(repo, tag, [(FLUX_CONTENT_LAYER, data, {})], config=(FLUX_CONFIG, b"{}"))
        annotations = {"org.opencontainers.image.title": "manifests", "io.deis.oras.content.unpack": "true"}
        return self.push_layers(repo, tag, [(media_type, data, annotations if flavour == "oras" else {})],
                                artifact_type="application/vnd.gitferry.manifests" if flavour == "oras" else None)

    def push_chart(self, repo: str, version: str, archive: bytes, chart_yaml: dict[str, Any]) -> str:
        """A packaged chart (``helm package`` output) as ``helm push`` stores it: the chart
        config (Chart.yaml as JSON) and one chart content layer; tag = version with ``+`` as ``_``."""
        config = json.dumps(chart_yaml, separators=(",", ":")).encode()
        return self.push_layers(repo, version.replace("+", "_"), [(HELM_CHART_LAYER, archive, {})],
                                config=(HELM_CHART_CONFIG, config))

    def digest(self, repo: str, tag: str) -> str:
        """The manifest digest ``tag`` points at (what gitferry records as the revision)."""
        accept = ", ".join((OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"))
        _s, headers, _ = self._request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
        return headers["Docker-Content-Digest"]

    def requests(self) -> list[str]:
        """``METHOD path`` of every request the registry served so far (its access log)."""
        import re

        log = (self.root / "registry.log").read_text(errors="replace") if (self.root / "registry.log").exists() else ""
        return [f"{m.group(1)} {m.group(2)}" for m in re.finditer(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP', log)]

    def tags(self, repo: str) -> list[str]:
        _s, _h, body = self._request("GET", f"/v2/{repo}/tags/list")
        return list(json.loads(body).get("tags") or [])


def package_chart(name: str, version: str, files: dict[str, str], work: Path | None = None) -> bytes:
    """``helm package`` of a chart made of ``files`` (a Chart.yaml is written when missing)."""
    from local.helmrepo import helm_binary

    with tempfile.TemporaryDirectory(prefix="ocichart-", dir=work) as tmp:
        chart_dir = Path(tmp) / name
        chart_dir.mkdir()
        if "Chart.yaml" not in files:
            (chart_dir / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
        for rel, text in files.items():
            path = chart_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp,
               "HELM_CACHE_HOME": f"{tmp}/c", "HELM_CONFIG_HOME": f"{tmp}/f", "HELM_DATA_HOME": f"{tmp}/d"}
        out = Path(tmp) / "out"
        proc = subprocess.run([helm_binary(), "package", str(chart_dir), "--version", version, "--destination",
                               str(out)], env=env, capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"helm package failed: {proc.stderr.strip()}")
        return next(out.glob("*.tgz")).read_bytes()


def helm_push(registry: OciRegistry, archive: bytes, namespace: str) -> str:
    """``helm push <chart>.tgz oci://<host>/<namespace> --plain-http`` with the real helm (logged
    in through a private registry config when the registry has auth); the pushed digest."""
    from local.helmrepo import helm_binary

    with tempfile.TemporaryDirectory(prefix="helmpush-") as tmp:
        chart = Path(tmp) / "chart.tgz"
        chart.write_bytes(archive)
        config = Path(tmp) / "registry.json"
        auths: dict[str, Any] = {}
        if registry.auth is not None:
            token = base64.b64encode(f"{registry.auth[0]}:{registry.auth[1]}".encode()).decode()
            auths[registry.host] = {"auth": token}
        config.write_text(json.dumps({"auths": auths}))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp,
               "HELM_CACHE_HOME": f"{tmp}/c", "HELM_CONFIG_HOME": f"{tmp}/f", "HELM_DATA_HOME": f"{tmp}/d",
               "HELM_REGISTRY_CONFIG": str(config)}
        proc = subprocess.run([helm_binary(), "push", str(chart), f"oci://{registry.host}/{namespace}",
                               "--plain-http"], env=env, capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"helm push failed: {proc.stderr.strip()}")
        for line in (proc.stdout + proc.stderr).splitlines():
            if line.startswith("Digest:"):
                return line.split(":", 1)[1].strip()
        raise RuntimeError(f"helm push printed no digest: {proc.stdout} {proc.stderr}")
