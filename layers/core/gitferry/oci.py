"""OCI registries: Helm charts and plain-manifest artifacts stored as OCI artifacts.

Two Application forms read an OCI registry (Argo CD's):

- an **OCI Helm chart**: ``repoURL: registry.example.com/charts`` (no scheme, or
  ``oci://registry.example.com/charts``), ``chart: mychart``; the image is
  ``<repoURL>/<chart>``;
- an **OCI artifact** (Argo CD 3.1+, Flux ``OCIRepository``): ``repoURL: oci://host/repo``,
  ``path`` inside it. Its one content layer is a tar(.gz) of files (the media types of
  :data:`MANIFEST_LAYERS`: oras, flux, Argo CD), rendered like a Git directory (plain YAML,
  Kustomize or a chart found at ``path``); a layer of Helm's chart media type is rendered
  with ``helm template`` (``path`` must then be ``.``, as Argo CD says).

``targetRevision`` is a tag, a semver constraint over the tags (Helm's rules,
:mod:`gitferry.helmrepo`; a tag ``1.2.3_build`` reads as ``1.2.3+build`` as ``helm push``
writes it) or a digest ``sha256:...``. The poll lists the tags once per repository
(``GET /v2/<name>/tags/list``, paginated) and resolves the chosen tag to its manifest digest
(``HEAD /v2/<name>/manifests/<tag>``): **the digest is the revision** that travels the
pipeline and is recorded in status and history, so a tag moved to other content is a new
revision and a re-render pulls by digest (verified) and hits the digest-keyed cache
(:mod:`gitferry.ocipull`).

Credentials (:class:`RegistryAccess`) come from the registered repository whose URL is the
longest prefix of ``<host>/<repository>`` (type ``oci`` or ``helm``; ``plainHttp: true`` for a
registry without TLS, such as the local stack's); for an ECR host
(``<account>.dkr.ecr.<region>.amazonaws.com``), or a registration with ``ecrRegistryId``,
the function's IAM role gets a token with ``ecr:GetAuthorizationToken``, cached until its
expiry. A registry that answers with a Bearer challenge (Docker Hub, GHCR, Harbor) gets the
token flow of the distribution spec; credentials only ever go to the registry and its token
realm, never through a redirect to blob storage.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from gitferry.errors import OciError, redact_url
from gitferry.helmrepo import Version, parse_constraint

__all__ = [
    "HELM_CHART_LAYER",
    "MANIFEST_LAYERS",
    "Reference",
    "RegistryAccess",
    "RegistryClient",
    "access_for",
    "is_oci_source",
    "pick_tag",
    "reference_for",
    "resolver",
]

HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
#: layer media types of a plain-manifest artifact: ``oras push`` / Argo CD (OCI layer, gzipped or
#: not) and ``flux push artifact``
MANIFEST_LAYERS = (
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.cncf.flux.content.v1.tar+gzip",
)
#: layers that accompany content and are not content (a chart's provenance file)
SIDE_LAYERS = ("application/vnd.cncf.helm.chart.provenance.v1.prov",)
_MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                   "application/vnd.docker.distribution.manifest.v2+json")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TAGS = 20_000
HTTP_TIMEOUT_SECONDS = 30
HTTP_TOTAL_SECONDS = 60
#: an ECR token is renewed this long before the expiry ECR gives it (12 h after issue)
ECR_TOKEN_MARGIN_SECONDS = 300
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"(?::\d{1,5})?$")
_REPO_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference:
    """An OCI repository: ``host`` (with port) and ``repository`` (the name in ``/v2/<name>/``)."""

    host: str
    repository: str

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    @property
    def url(self) -> str:
        return f"oci://{self.name}"


def strip_scheme(url: str) -> str:
    return url.strip().removeprefix("oci://").rstrip("/")


def check_oci_url(url: str) -> str:
    """``url`` when it is ``oci://host[:port]/repository`` (or the scheme-less form);
    ValueError saying what is wrong otherwise (shown on registration)."""
    text = strip_scheme(url)
    host, _, path = text.partition("/")
    if "@" in text or any(c.isspace() for c in text):
        raise ValueError("must not contain credentials or spaces; register them with the repository instead")
    if not _HOST.match(host):
        raise ValueError(f"{host!r} is not a registry host (host[:port])")
    if path and not _REPO_PATH.match(path):
        raise ValueError(f"{path!r} is not an OCI repository name (lower case, digits, '.', '_', '-', '/')")
    return url


def looks_like_registry(url: str) -> bool:
    """A scheme-less ``host/path`` whose first part is a host name with a dot or a port
    (``registry.example.com/charts``, ``127.0.0.1:5000/charts``), Argo CD's OCI Helm form."""
    text = url.strip()
    if "://" in text or "@" in text or text.startswith(("/", ".")):
        return False
    host = text.split("/", 1)[0]
    return bool(_HOST.match(host)) and ("." in host or ":" in host or host == "localhost")


def is_oci_source(repo_url: str, chart: str | None) -> bool:
    """Whether a source with this ``repoURL`` / ``chart`` reads an OCI registry."""
    return repo_url.strip().startswith("oci://") or (chart is not None and looks_like_registry(repo_url))


_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def check_revision(text: str) -> bool:
    """A tag (the distribution spec's grammar), a ``sha256:`` digest or a semver constraint."""
    value = text.strip()
    if DIGEST.match(value) or _TAG.match(value):
        return True
    try:
        parse_constraint(value)
    except ValueError:
        return False
    return True


def reference_for(repo_url: str, chart: str | None) -> Reference:
    """The OCI repository of a source: ``<repoURL>/<chart>`` for a chart, ``repoURL`` otherwise."""
    text = strip_scheme(repo_url)
    if chart:
        text = f"{text}/{chart}"
    host, _, repository = text.partition("/")
    if not repository:
        raise OciError(f"repoURL {repo_url!r} names no repository in registry {host}", repo_url)
    return Reference(host, repository)


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class RegistryAccess:
    """How to talk to one registry; values hidden from ``repr``."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    plain_http: bool = False
    ecr_registry_id: str | None = None
    ecr_region: str | None = None
    #: the registered repository URL these came from (named in errors)
    source: str | None = None

    @property
    def has_credentials(self) -> bool:
        return bool(self.password) or self.ecr_registry_id is not None

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password): the registered ones, or an ECR token (cached until its expiry)."""
        if self.ecr_registry_id is not None:
            return ecr_token(self.ecr_registry_id, self.ecr_region)
        if self.password:
            return (self.username or "", self.password)
        return None


def _registered_prefix(url: str) -> str:
    return strip_scheme(url).lower()


def access_for(ref: Reference, repositories: list[Any], secrets: Any) -> RegistryAccess:
    """The access for ``ref``: the registered repository (``oci`` / ``helm`` type) whose URL is
    the longest prefix of ``<host>/<repository>`` at a ``/`` boundary; an ECR host without one
    uses the function's role. ``secrets`` is a :class:`gitferry.secrets.SecretStore`."""
    name = ref.name.lower()
    best: Any = None
    for repo in repositories:
        if getattr(repo, "type", "git") not in ("oci", "helm"):
            continue
        prefix = _registered_prefix(repo.url)
        if (name == prefix or name.startswith(prefix + "/")) and (
                best is None or len(prefix) > len(_registered_prefix(best.url))):
            best = repo
    ecr = _ECR_HOST.match(ref.host.split(":")[0])
    if best is None:
        if ecr:
            return RegistryAccess(ecr_registry_id=ecr.group("account"), ecr_region=ecr.group("region"))
        return RegistryAccess()
    registry_id = getattr(best, "ecr_registry_id", None) or (ecr.group("account") if ecr and not best.has_credentials
                                                                else None)
    if registry_id is not None:
        return RegistryAccess(plain_http=bool(getattr(best, "plain_http", False)), ecr_registry_id=registry_id,
                              ecr_region=ecr.group("region") if ecr else None, source=best.url)
    creds = secrets.get_repo_credentials(best.url) if best.has_credentials else None
    username, password = creds.basic_auth() if creds is not None else (None, None)
    return RegistryAccess(username=username or None, password=password or None,
                          plain_http=bool(getattr(best, "plain_http", False)), source=best.url)


_ECR_TOKENS: dict[tuple[str, str | None], tuple[str, str, float]] = {}
_ECR_LOCK = threading.Lock()


def ecr_token(registry_id: str, region: str | None) -> tuple[str, str]:
    """``ecr:GetAuthorizationToken`` for ``registry_id`` through the function's IAM role,
    cached per (registry, region) until ``ECR_TOKEN_MARGIN_SECONDS`` before its expiry."""
    key = (registry_id, region)
    with _ECR_LOCK:
        hit = _ECR_TOKENS.get(key)
        if hit is not None and hit[2] > time.time():
            return hit[0], hit[1]
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client("ecr", **({"region_name": region} if region else {}))
        data = client.get_authorization_token(registryIds=[registry_id])["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise OciError(f"ECR refused a token for registry {registry_id} (ecr:GetAuthorizationToken: {code})",
                       registry_id) from None
    except (BotoCoreError, KeyError, IndexError, ValueError) as exc:
        raise OciError(f"cannot get an ECR token for registry {registry_id}: {type(exc).__name__}",
                       registry_id) from None
    expires = data.get("expiresAt")
    until = expires.timestamp() - ECR_TOKEN_MARGIN_SECONDS if hasattr(expires, "timestamp") else 0.0
    with _ECR_LOCK:
        _ECR_TOKENS[key] = (user, password, until)
    return user, password


# --------------------------------------------------------------------------- HTTP

_POOL: Any = None
_POOL_LOCK = threading.Lock()


def _pool() -> Any:
    """One urllib3 pool per process (a warm Lambda reuses connections). urllib3 drops the
    Authorization header when a redirect leaves the host (ECR sends blobs to S3)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            import urllib3

            _POOL = urllib3.PoolManager(num_pools=32, maxsize=8,
                                        timeout=urllib3.Timeout(connect=10, read=HTTP_TIMEOUT_SECONDS))
        return _POOL


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) for m in re.finditer(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class RegistryClient:
    """The OCI distribution API of one registry, every answer bounded in size and time and
    every failure an :class:`OciError` naming the registry and never the password."""

    def __init__(self, host: str, access: RegistryAccess | None = None) -> None:
        self.host = host
        self.access = access or RegistryAccess()
        self.base = f"{'http' if self.access.plain_http else 'https'}://{host}"
        self._auth: dict[str, str] = {}  # scope -> Authorization header
        self._held = "stored"  # whose credentials a refusal names: "given" while registering
        self.requests = 0  # HTTP requests made (the poll's one tag list per repository is counted)

    # -- plumbing --------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        text = redact_url(text)
        if self.access.password:
            text = text.replace(self.access.password, "***")
        return text

    def _raw(self, method: str, url: str, headers: dict[str, str], *, redirect: bool = True) -> Any:
        import urllib3

        self.requests += 1
        try:
            return _pool().request(method, url, headers={"User-Agent": "gitferry", **headers},
                                   preload_content=False, redirect=redirect,
                                   retries=urllib3.Retry(total=3, connect=2, read=0, redirect=5, status=0))
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise OciError(f"cannot reach OCI registry {self.host}: {self._scrub(str(reason))}", self.host) from None

    def _token(self, params: dict[str, str], scope: str, basic: tuple[str, str] | None) -> str:
        realm = params.get("realm", "")
        if urlsplit(realm).scheme not in ("http", "https"):
            raise OciError(f"OCI registry {self.host} gave an invalid token realm", self.host)
        query = {k: v for k, v in (("service", params.get("service")), ("scope", params.get("scope") or scope)) if v}
        headers = {"Authorization": _basic(basic)} if basic else {}
        resp = self._raw("GET", f"{realm}?{urlencode(query)}", headers)
        try:
            if resp.status in (401, 403):
                raise self._auth_error(resp.status)
            if resp.status != 200:
                raise OciError(f"token service of OCI registry {self.host} answered HTTP {resp.status}", self.host)
            doc = json.loads(_read(resp, 1024 * 1024, self.host, "token"))
        except ValueError:
            raise OciError(f"token service of OCI registry {self.host} answered no JSON", self.host) from None
        finally:
            resp.release_conn()
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise OciError(f"token service of OCI registry {self.host} gave no token", self.host)
        return f"Bearer {token}"

    def _auth_error(self, code: int) -> OciError:
        where = f"OCI registry {self.host}"
        if not self.access.has_credentials:
            return OciError(f"{where} requires authentication (HTTP {code}): register credentials for it "
                            "(a repository of type oci with username and password)", self.host)
        return OciError(f"{where} refused the {self._held} credentials (HTTP {code})"
                        + (f" registered for {self.access.source}" if self.access.source else ""), self.host)

    def _request(self, method: str, path: str, repository: str, accept: str = "") -> Any:
        """``method`` on ``/v2/<path>`` with the auth the registry asks for (preemptive Basic
        when we hold credentials; a Bearer challenge is answered with the token flow)."""
        scope = f"repository:{repository}:pull"
        url = path if path.startswith("http") else f"{self.base}/v2/{path}"
        headers = {"Accept": accept} if accept else {}
        basic = self.access.basic_auth()
        auth = self._auth.get(scope) or (_basic(basic) if basic else None)
        resp = self._raw(method, url, {**headers, **({"Authorization": auth} if auth else {})})
        if resp.status == 401:
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.drain_conn()
            resp.release_conn()
            scheme, params = _challenge(challenge)
            if scheme != "bearer":  # Basic was sent already when we hold credentials
                raise self._auth_error(401)
            self._auth[scope] = self._token(params, scope, basic)
            resp = self._raw(method, url, {**headers, "Authorization": self._auth[scope]})
            if resp.status == 401:
                resp.release_conn()
                raise self._auth_error(401)
        elif auth:
            self._auth[scope] = auth
        if resp.status == 403:
            resp.release_conn()
            raise self._auth_error(403)
        return resp

    # -- the API ---------------------------------------------------------------

    def tags(self, repository: str, page: int = 1000) -> list[str]:
        """Every tag of ``repository`` (the ``Link`` pagination followed, at most MAX_TAGS)."""
        tags: list[str] = []
        path = f"{repository}/tags/list?n={page}"
        while path:
            resp = self._request("GET", path, repository)
            try:
                if resp.status == 404:
                    raise OciError(f"repository {repository} not found in OCI registry {self.host}", self.host)
                if resp.status != 200:
                    raise OciError(f"OCI registry {self.host} answered HTTP {resp.status} listing the tags of "
                                   f"{repository}", self.host)
                doc = json.loads(_read(resp, MAX_MANIFEST_BYTES, self.host, "tag list"))
                link = resp.headers.get("Link", "")
            except ValueError:
                raise OciError(f"OCI registry {self.host} answered no JSON tag list for {repository}",
                               self.host) from None
            finally:
                resp.release_conn()
            tags += [t for t in (doc.get("tags") or []) if isinstance(t, str)] if isinstance(doc, dict) else []
            if len(tags) > MAX_TAGS:
                raise OciError(f"repository {repository} in OCI registry {self.host} has more than {MAX_TAGS} tags",
                               self.host)
            m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
            path = urljoin(self.base + "/", m.group(1)) if m else ""
        return tags

    def digest_of(self, repository: str, reference: str) -> str:
        """The manifest digest ``reference`` (a tag or digest) names: ``HEAD`` and its
        ``Docker-Content-Digest``; a registry that gives none is asked with ``GET``."""
        accept = ", ".join((*_MANIFEST_TYPES, *INDEX_TYPES))
        resp = self._request("HEAD", f"{repository}/manifests/{reference}", repository, accept)
        try:
            if resp.status == 404:
                raise OciError(f"{reference!r} not found in repository {repository} of OCI registry {self.host}",
                               self.host, reference)
            if resp.status != 200:
                raise OciError(f"OCI registry {self.host} answered HTTP {resp.status} for manifest {reference}",
                               self.host, reference)
            digest = resp.headers.get("Docker-Content-Digest", "")
        finally:
            resp.release_conn()
        if DIGEST.match(digest):
            return digest
        _doc, raw = self._manifest_bytes(repository, reference)
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def _manifest_bytes(self, repository: str, reference: str) -> tuple[dict[str, Any], bytes]:
        accept = ", ".join((*_MANIFEST_TYPES, *INDEX_TYPES))
        resp = self._request("GET", f"{repository}/manifests/{reference}", repository, accept)
        try:
            if resp.status == 404:
                raise OciError(f"manifest {reference} not found in repository {repository} of OCI registry "
                               f"{self.host}", self.host, reference)
            if resp.status != 200:
                raise OciError(f"OCI registry {self.host} answered HTTP {resp.status} for manifest {reference}",
                               self.host, reference)
            raw = _read(resp, MAX_MANIFEST_BYTES, self.host, "manifest")
        finally:
            resp.release_conn()
        try:
            doc = json.loads(raw)
        except ValueError:
            raise OciError(f"manifest {reference} in OCI registry {self.host} is not JSON", self.host) from None
        if not isinstance(doc, dict):
            raise OciError(f"manifest {reference} in OCI registry {self.host} is not a JSON object", self.host)
        return doc, raw

    def manifest(self, repository: str, digest: str) -> dict[str, Any]:
        """The manifest with ``digest``, its content checked against the digest."""
        doc, raw = self._manifest_bytes(repository, digest)
        got = "sha256:" + hashlib.sha256(raw).hexdigest()
        if got != digest:
            raise OciError(f"manifest {digest} from OCI registry {self.host} has digest {got}; refused",
                           self.host, digest)
        return doc

    def blob(self, repository: str, digest: str, limit: int) -> bytes:
        """Blob ``digest`` (at most ``limit`` bytes), checked against its digest; a redirect to
        storage elsewhere is followed without our credentials."""
        if not DIGEST.match(digest):
            raise OciError(f"OCI registry {self.host}: unsupported blob digest {digest!r} (sha256 only)", self.host)
        resp = self._request("GET", f"{repository}/blobs/{digest}", repository)
        try:
            if resp.status != 200:
                raise OciError(f"OCI registry {self.host} answered HTTP {resp.status} for blob {digest}",
                               self.host, digest)
            data = _read(resp, limit, self.host, f"blob {digest}")
        finally:
            resp.release_conn()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise OciError(f"blob {digest} from OCI registry {self.host} does not match its digest; refused",
                           self.host, digest)
        return data

    def login(self) -> None:
        """The check ``docker login`` / ``helm registry login`` make: ``GET /v2/`` (the
        distribution API's version check) with the credentials held; a Bearer challenge is
        answered with a token request for no scope. Raises :class:`OciError` saying what failed."""
        self._held = "given"
        basic = self.access.basic_auth()
        resp = self._raw("GET", f"{self.base}/v2/", {"Authorization": _basic(basic)} if basic else {})
        try:
            status, challenge = resp.status, resp.headers.get("WWW-Authenticate", "")
            resp.drain_conn()
        finally:
            resp.release_conn()
        if status == 200:
            return
        if status == 401:
            scheme, params = _challenge(challenge)
            if scheme != "bearer":
                raise self._auth_error(401)
            self._token(params, "", basic)
            return
        if status == 403:
            raise self._auth_error(403)
        if status == 404:
            raise OciError(f"{self.host} is not an OCI registry (no /v2/ API: HTTP 404)", self.host)
        raise OciError(f"OCI registry {self.host} answered HTTP {status} to its version check (GET /v2/)", self.host)


def check_registry(url: str, plain_http: bool, ecr_registry_id: str | None, basic: tuple[str, str] | None) -> None:
    """Log in to the registry an ``oci`` registration names, as the poll and render will."""
    host = strip_scheme(url).split("/", 1)[0]
    ecr = _ECR_HOST.match(host.split(":")[0])
    access = RegistryAccess(username=(basic or (None, None))[0] or None, password=(basic or (None, None))[1] or None,
                            plain_http=plain_http, ecr_registry_id=ecr_registry_id,
                            ecr_region=ecr.group("region") if ecr else None, source=url)
    RegistryClient(host, access).login()


def _basic(creds: tuple[str, str] | None) -> str:
    user, password = creds or ("", "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _read(resp: Any, limit: int, host: str, what: str) -> bytes:
    length = resp.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise OciError(f"{what} from OCI registry {host} is larger than {limit // (1024 * 1024)} MiB", host)
    deadline = time.monotonic() + HTTP_TOTAL_SECONDS
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = resp.read(min(1024 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise OciError(f"{what} from OCI registry {host} is larger than {limit // (1024 * 1024)} MiB", host)
        if time.monotonic() > deadline:
            raise OciError(f"{what} from OCI registry {host} did not arrive within {HTTP_TOTAL_SECONDS}s", host)
    return b"".join(chunks)


# --------------------------------------------------------------------------- tags


def tag_version(tag: str) -> Version | None:
    """A tag as a semantic version (``helm push`` writes ``+`` as ``_``)."""
    return Version.parse(tag.replace("_", "+"))


def pick_tag(tags: list[str], constraint: str, where: str) -> str:
    """The tag ``constraint`` picks: an exact tag first, otherwise the highest tag that is a
    version satisfying it (Helm's rules: pre-releases only when the constraint names one)."""
    wanted = constraint.strip()
    if wanted in tags:
        return wanted
    try:
        parsed = parse_constraint(wanted)
    except ValueError as exc:
        raise OciError(f"tag {wanted!r} not found in {where} and it is no version constraint ({exc}); tags: "
                       f"{_few(sorted(tags)) or 'none'}", where, wanted) from None
    candidates = sorted(((v, t) for t in tags if (v := tag_version(t)) is not None), key=lambda c: c[0], reverse=True)
    for version, tag in candidates:
        if parsed.check(version):
            return tag
    shown = [t for _, t in candidates] or sorted(tags)
    raise OciError(f"no tag of {where} matches {wanted!r}; tags: {_few(shown) or 'none'}", where, wanted)


def _few(items: list[str], limit: int = 20) -> str:
    return ", ".join(items[:limit]) + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


# --------------------------------------------------------------------------- the poll's view


def resolver(ref: Reference, access: RegistryAccess) -> Any:
    """What the poll does per repository: ONE tag list now, then a function resolving a
    source's ``targetRevision`` to the manifest digest (one HEAD per distinct tag)."""
    client = RegistryClient(ref.host, access)
    tags = client.tags(ref.repository)
    digests: dict[str, str] = {}

    def digest_of(_source: Any, revision: str) -> str:
        wanted = revision.strip()
        if DIGEST.match(wanted):
            tag = wanted
        else:
            tag = pick_tag(tags, wanted, ref.url)
        if tag not in digests:
            digests[tag] = client.digest_of(ref.repository, tag)
        return digests[tag]

    return digest_of
