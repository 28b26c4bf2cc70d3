"""Helm chart repositories: the index, semver constraints as Helm reads them, chart downloads.

An Argo CD Application may name a chart in a Helm repository instead of a path in Git
(``spec.source.chart`` + ``repoURL`` + ``targetRevision``). The poll stage fetches the
repository's ``index.yaml`` once per tick (:func:`fetch_index`), resolves every app's
``targetRevision`` to one chart version (:func:`resolve`), and that version travels the
pipeline where a Git app's commit SHA would. The render stage downloads the chart archive
(:func:`fetch_chart`), checks it against the index's sha256 digest, and extracts it into a
content-addressed cache, refusing archives that would write outside their directory.

Version constraints follow Masterminds/semver v3, the library Helm and Argo CD use, so a
``targetRevision`` means here what it means to ``helm install --version``:

- ``1.2.3`` exact (an exact string match in the index wins first, as in Helm);
- ``>``, ``>=``, ``<``, ``<=``, ``=``, ``!=``; comparators joined by spaces or commas are
  ANDed, groups joined by ``||`` are ORed; ``1.2 - 1.4.5`` is a hyphen range;
- wildcards ``1.2.*`` / ``1.2.x`` / ``*``; missing parts act as wildcards (``1.2`` = ``1.2.x``);
- ``~1.2.3`` = ``>=1.2.3 <1.3.0``; ``~1`` = ``>=1 <2``;
- ``^1.2`` = ``>=1.2.0 <2.0.0``, ``^0.2.3`` = ``>=0.2.3 <0.3.0``, ``^0.0.3`` = ``>=0.0.3 <0.0.4``;
- pre-releases are only candidates when a comparator of the same ``||`` group names a
  pre-release (``>=1.0.0-0``), otherwise they are skipped: a chart's ``2.0.0-rc.1`` must not
  reach a cluster that asked for ``^2``.

The highest version satisfying the constraint is chosen, as ``helm`` does.

No PyPI package implements these rules: ``packaging`` is PEP 440, ``semver`` has no ranges,
``node-semver`` follows npm (pre-releases limited to the same ``x.y.z``, no commas).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from gitferry import loader
from gitferry.errors import HelmRepoError, redact_url

__all__ = [
    "ChartVersion",
    "Constraint",
    "Credentials",
    "Version",
    "fetch_chart",
    "chart_from_archive",
    "cached_chart",
    "fetch_index",
    "is_constraint",
    "parse_constraint",
    "resolve",
    "DEFAULT_CACHE_DIR",
    "MAX_INDEX_BYTES",
    "MAX_CHART_BYTES",
]

DEFAULT_CACHE_DIR = "/tmp/gitferry-helm"
#: big public indexes are a few to tens of MiB; anything beyond this is refused rather than parsed
MAX_INDEX_BYTES = 32 * 1024 * 1024
#: what parsing an index may cost: helm writes no YAML aliases, so a few are plenty, and the
#: node budget stops an aliased index before it is expanded
INDEX_LIMITS = loader.Limits(max_bytes=MAX_INDEX_BYTES, max_documents=1, max_nodes=8_000_000,
                             max_aliases=1_000, max_depth=32)
#: a whole download (index or chart) must finish within this, however slowly the server drips
HTTP_TOTAL_SECONDS = 60
#: bound on a chart archive and on what it may extract to (a zip bomb must not fill /tmp)
MAX_CHART_BYTES = 32 * 1024 * 1024
MAX_EXTRACTED_BYTES = 128 * 1024 * 1024
MAX_MEMBERS = 10_000
#: bound on the chart cache: Lambda's /tmp is shared with the Git cache
MAX_CACHE_BYTES = 512 * 1024 * 1024
HTTP_TIMEOUT_SECONDS = 30


class Credentials(Protocol):
    """Anything that yields basic-auth (username, password), e.g. ``RepoCredentials``."""

    def basic_auth(self) -> tuple[str, str]: ...


# --------------------------------------------------------------------------- versions

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True)
class Version:
    """A semantic version; ordering is semver precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """Masterminds' ``NewVersion``: ``v`` prefix and missing minor/patch are accepted."""
        m = _VERSION.match(text.strip())
        if m is None:
            return None
        pre = tuple(m.group("pre").split(".")) if m.group("pre") else ()
        return cls(int(m.group("major")), int(m.group("minor") or 0), int(m.group("patch") or 0), pre)

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple[Any, ...]:
        # A release sorts after its pre-releases; numeric identifiers sort before alphanumeric ones.
        if not self.pre:
            return (self.release, 1, ())
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.release, 0, ids)

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{'.'.join(self.pre)}" if self.pre else "")


# --------------------------------------------------------------------------- constraints

_OPS = ("!=", ">=", "=>", "<=", "=<", "~>", ">", "<", "=", "~", "^")
_PART = r"(?:0|[1-9]\d*|[xX*])"
_CONSTRAINT_VERSION = (
    rf"v?{_PART}(?:\.{_PART})?(?:\.{_PART})?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_COMPARATOR = re.compile(rf"\s*(?P<op>!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?\s*(?P<ver>{_CONSTRAINT_VERSION})\s*,?")
_HYPHEN = re.compile(rf"(?P<lo>{_CONSTRAINT_VERSION})\s+-\s+(?P<hi>{_CONSTRAINT_VERSION})")


@dataclass(frozen=True)
class _Comparator:
    op: str
    base: Version
    given: int  # how many of major/minor/patch are concrete (the rest are wildcards)

    @property
    def has_pre(self) -> bool:
        return bool(self.base.pre)

    def _upper(self, level: int) -> tuple[int, int, int]:
        """The release bound just past the wildcarded part: level 1 -> next major, 2 -> next minor."""
        b = self.base
        return (b.major + 1, 0, 0) if level == 1 else (b.major, b.minor + 1, 0) if level == 2 else (
            b.major, b.minor, b.patch + 1)

    def _in_wild(self, v: Version) -> bool:
        """``=1.2`` / ``1.2.x``: any version of that major.minor (release part compared only)."""
        if self.given == 0:
            return True
        if self.given == 3:
            return v._key() == self.base._key()
        return self.base.release <= v.release < self._upper(self.given)

    def check(self, v: Version) -> bool:
        b, op, n = self.base, self.op, self.given
        if op in ("", "="):
            return self._in_wild(v)
        if op == "!=":
            return not self._in_wild(v)
        if op == ">":
            if n == 0:
                return False
            return v > b if n == 3 else v.release >= self._upper(n)
        if op == ">=":
            return v >= b
        if op == "<":
            return v < b
        if op == "<=":
            return v <= b if n == 3 else v.release < self._upper(max(n, 1)) if n else True
        if op == "~":
            if n == 0:
                return True
            return v >= b and v.release < self._upper(1 if n == 1 else 2)
        if op == "^":
            if n == 0:
                return True
            if b.major > 0 or n == 1:
                upper = self._upper(1)
            elif b.minor > 0 or n == 2:
                upper = self._upper(2)
            else:
                upper = self._upper(3)
            return v >= b and v.release < upper
        raise AssertionError(op)


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: OR of AND-groups of comparators (Masterminds/semver v3)."""

    text: str
    groups: tuple[tuple[_Comparator, ...], ...]

    def check(self, v: Version) -> bool:
        for group in self.groups:
            # Masterminds v3: a group considers pre-releases only when one of its comparators names one.
            if v.pre and not any(c.has_pre for c in group):
                continue
            if all(c.check(v) for c in group):
                return True
        return False


def _comparator(op: str, text: str) -> _Comparator:
    op = {"=>": ">=", "=<": "<=", "~>": "~"}.get(op, op)
    body = text.strip().lstrip("vV")
    body = body.split("+", 1)[0]
    core, _, pre = body.partition("-")
    parts = core.split(".")
    given = 0
    for p in parts:
        if p in ("x", "X", "*"):
            break
        given += 1
    nums = [int(p) for p in parts[:given]] + [0] * (3 - given)
    return _Comparator(op, Version(nums[0], nums[1], nums[2], tuple(pre.split(".")) if pre and given == 3 else ()),
                       given)


def parse_constraint(text: str) -> Constraint:
    """Parse ``text`` or raise ValueError saying what is wrong (shown on the Application)."""
    source = text.strip()
    if not source:
        raise ValueError("empty version constraint")
    groups: list[tuple[_Comparator, ...]] = []
    for raw in source.split("||"):
        part = _HYPHEN.sub(lambda m: f">={m.group('lo')} <={m.group('hi')}", raw.strip())
        if not part:
            raise ValueError(f"invalid version constraint {text!r}: empty group around ||")
        comparators: list[_Comparator] = []
        pos = 0
        while pos < len(part):
            m = _COMPARATOR.match(part, pos)
            if m is None or m.end() == pos:
                raise ValueError(
                    f"invalid version constraint {text!r} near {part[pos:].strip()!r}: use a version "
                    "(1.2.3) or a semver constraint (1.2.*, ^1.2, ~1.2.0, >=1.0.0 <2.0.0)"
                )
            comparators.append(_comparator(m.group("op") or "", m.group("ver")))
            pos = m.end()
        groups.append(tuple(comparators))
    return Constraint(source, tuple(groups))


def is_constraint(text: str) -> bool:
    """True when ``text`` parses as a version or a constraint."""
    try:
        parse_constraint(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- HTTP


def _auth_header(credentials: Credentials | None) -> dict[str, str]:
    if credentials is None:
        return {}
    user, password = credentials.basic_auth()
    if not user and not password:
        return {}
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _scrub(text: str, credentials: Credentials | None) -> str:
    text = redact_url(text)
    if credentials is not None:
        secret = credentials.basic_auth()[1]
        if secret:
            text = text.replace(secret, "***")
    return text


def _get(url: str, repo_url: str, credentials: Credentials | None, limit: int, what: str) -> bytes:
    """GET ``url`` with a timeout and a size bound; every failure is a HelmRepoError naming the
    repository and never the password. Credentials go only to the repository's own host, as
    Helm does unless ``passCredentials`` (a chart URL may point at a CDN)."""
    import urllib.error
    import urllib.request

    safe_repo = redact_url(repo_url)
    same_host = urlsplit(url).netloc == urlsplit(repo_url).netloc
    headers = {"User-Agent": "gitferry", **(_auth_header(credentials) if same_host else {})}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as resp:  # noqa: S310 - http(s) only
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise HelmRepoError(f"{what} from Helm repository {safe_repo} is larger than "
                                    f"{limit // (1024 * 1024)} MiB", repo_url)
            data = _read_bounded(resp, limit, time.monotonic() + HTTP_TOTAL_SECONDS, what, safe_repo, repo_url)
    except HelmRepoError:
        raise
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            if credentials is None:
                msg = f"Helm repository {safe_repo} requires authentication (HTTP {exc.code}): register credentials for it"
            else:
                msg = f"Helm repository {safe_repo} refused the stored credentials (HTTP {exc.code})"
        elif exc.code == 404:
            msg = f"{what} not found in Helm repository {safe_repo} (HTTP 404 for {redact_url(url)})"
        else:
            msg = f"Helm repository {safe_repo} answered HTTP {exc.code} for {what}"
        raise HelmRepoError(msg, repo_url) from None
    except urllib.error.URLError as exc:
        reason = _scrub(str(getattr(exc, "reason", exc)), credentials)
        raise HelmRepoError(f"cannot reach Helm repository {safe_repo}: {reason}", repo_url) from None
    except (OSError, ValueError) as exc:
        raise HelmRepoError(f"cannot reach Helm repository {safe_repo}: {type(exc).__name__}: "
                            f"{_scrub(str(exc), credentials)}", repo_url) from None
    if len(data) > limit:
        raise HelmRepoError(f"{what} from Helm repository {safe_repo} is larger than "
                            f"{limit // (1024 * 1024)} MiB", repo_url)
    return data


def _read_bounded(resp: Any, limit: int, deadline: float, what: str, safe_repo: str, repo_url: str) -> bytes:
    """At most ``limit + 1`` bytes, in chunks, refusing a server that drips past ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = resp.read(min(1024 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline:
            raise HelmRepoError(f"{what} from Helm repository {safe_repo} did not arrive within "
                                f"{HTTP_TOTAL_SECONDS}s", repo_url)
    return b"".join(chunks)


def _check_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise HelmRepoError(f"Helm repository URL {redact_url(url)!r} must be http(s) (oci:// is not supported)", url)


def fetch_index(url: str, credentials: Credentials | None = None) -> dict[str, Any]:
    """``<url>/index.yaml`` parsed: one GET, bounded, basic auth from the repository's credentials."""
    _check_url(url)
    index_url = url.rstrip("/") + "/index.yaml"
    data = _get(index_url, url, credentials, MAX_INDEX_BYTES, "index.yaml")
    try:
        doc = loader.load_one(data, limits=INDEX_LIMITS)
    except loader.LoadError as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise HelmRepoError(f"index.yaml of Helm repository {redact_url(url)}{where}: {exc.message}", url) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
        raise HelmRepoError(f"index.yaml of Helm repository {redact_url(url)} has no entries "
                            "(is this a Helm chart repository?)", url)
    doc["_url"] = url  # resolve() names the repository in its errors
    return doc


# --------------------------------------------------------------------------- resolve


@dataclass(frozen=True)
class ChartVersion:
    """What :func:`resolve` picked: the version, the index's sha256 digest and download URLs."""

    version: str
    digest: str
    urls: tuple[str, ...]

    def __iter__(self) -> Any:  # unpacks as (version, digest, urls)
        return iter((self.version, self.digest, self.urls))


def _few(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def resolve(index: dict[str, Any], chart: str, constraint: str) -> ChartVersion:
    """The chart version Helm would pick for ``constraint``: an exact match in the index first,
    otherwise the highest version that satisfies it. Not found lists the available versions."""
    repo = redact_url(str(index.get("_url", "")))
    entries = (index.get("entries") or {}).get(chart)
    if not entries:
        names = sorted(str(n) for n in (index.get("entries") or {}))
        raise HelmRepoError(f"chart {chart!r} not found in Helm repository {repo}; charts: "
                            f"{_few(names) or 'none'}", repo, chart)
    candidates: list[tuple[Version, dict[str, Any]]] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("version") is None:
            continue
        text = str(entry["version"])
        if text == constraint.strip():
            return _chart_version(entry, repo, chart)
        parsed = Version.parse(text)
        if parsed is not None:
            candidates.append((parsed, entry))
    candidates.sort(key=lambda c: c[0], reverse=True)
    try:
        parsed_constraint = parse_constraint(constraint)
    except ValueError as exc:
        raise HelmRepoError(str(exc), repo, chart) from None
    for version, entry in candidates:
        if parsed_constraint.check(version):
            return _chart_version(entry, repo, chart)
    available = [str(e["version"]) for _, e in candidates]
    raise HelmRepoError(f"no version of chart {chart!r} in Helm repository {repo} matches {constraint!r}; "
                        f"available: {_few(available) or 'none'}", repo, chart)


def _chart_version(entry: dict[str, Any], repo: str, chart: str) -> ChartVersion:
    urls = tuple(str(u) for u in entry.get("urls") or [] if u)
    if not urls:
        raise HelmRepoError(f"chart {chart!r} {entry['version']} in Helm repository {repo} has no download URL",
                            repo, chart)
    return ChartVersion(str(entry["version"]), str(entry.get("digest") or ""), urls)


# --------------------------------------------------------------------------- charts


def _digest_hex(digest: str) -> str:
    return digest.strip().lower().removeprefix("sha256:")


def fetch_chart(url: str, chart: str, version: str, digest: str, credentials: Credentials | None,
                cache_dir: str | Path = DEFAULT_CACHE_DIR, urls: tuple[str, ...] | list[str] = ()) -> Path:
    """The extracted directory of ``chart`` ``version`` (the one holding ``Chart.yaml``).

    ``urls`` are the index's download URLs, absolute or relative to repository ``url``
    (default ``<url>/<chart>-<version>.tgz``). The archive must have the index's sha256
    ``digest``; extracted charts are cached by that digest, so a cached chart is used without
    any request, and a republished archive with other content is a different cache entry."""
    _check_url(url)
    cache = Path(cache_dir)
    want = _digest_hex(digest)
    if want and not re.fullmatch(r"[0-9a-f]{64}", want):
        raise HelmRepoError(f"index.yaml of {redact_url(url)} gives chart {chart!r} {version} an invalid "
                            f"sha256 digest {digest!r}", url, version)
    if want:
        hit = _cached(cache, want)
        if hit is not None:
            return hit
    base = url.rstrip("/") + "/"
    chart_urls = list(urls) or [f"{chart}-{version}.tgz"]
    data = b""
    errors: list[str] = []
    for ref in chart_urls:
        try:
            data = _get(urljoin(base, ref), url, credentials, MAX_CHART_BYTES, f"chart {chart} {version}")
            break
        except HelmRepoError as exc:
            errors.append(str(exc))
    else:
        raise HelmRepoError("; ".join(errors), url, version)
    got = hashlib.sha256(data).hexdigest()
    if want and got != want:
        raise HelmRepoError(f"chart {chart!r} {version} from Helm repository {redact_url(url)} does not match "
                            f"the digest in index.yaml (expected sha256 {want}, got {got}); refused", url, version)
    hit = _cached(cache, got)
    if hit is not None:
        return hit
    return _extract(data, got, cache, chart, version, url)


def chart_from_archive(data: bytes, cache_dir: str | Path, chart: str, version: str, url: str) -> Path:
    """The extracted directory of chart archive ``data`` (a ``.tgz`` obtained elsewhere, e.g.
    an OCI registry's chart layer), with the same refusals and the same digest-keyed cache as
    :func:`fetch_chart`."""
    cache = Path(cache_dir)
    digest = hashlib.sha256(data).hexdigest()
    hit = _cached(cache, digest)
    return hit if hit is not None else _extract(data, digest, cache, chart, version, url)


def cached_chart(cache_dir: str | Path, sha256_hex: str) -> Path | None:
    """The extracted chart cached under archive digest ``sha256_hex``, or None."""
    return _cached(Path(cache_dir), _digest_hex(sha256_hex))


def _cached(cache: Path, digest: str) -> Path | None:
    entry = cache / digest
    marker = entry / ".complete"
    if not marker.is_file():
        return None
    try:
        os.utime(marker)  # least recently used goes first when the cache is trimmed
        chart_dir = Path((entry / ".chartdir").read_text()).name
    except OSError:
        return None
    path = entry / "chart" / chart_dir
    return path if (path / "Chart.yaml").is_file() else None


def _safe_members(tar: tarfile.TarFile, chart: str, version: str, url: str) -> list[tarfile.TarInfo]:
    """Every member, or HelmRepoError for anything that could write outside the extraction
    directory (absolute paths, ``..``, links, devices) or exhaust the disk."""
    members: list[tarfile.TarInfo] = []
    total = 0
    where = f"chart {chart!r} {version} from Helm repository {redact_url(url)}"
    for member in tar:
        if len(members) >= MAX_MEMBERS:
            raise HelmRepoError(f"{where} has more than {MAX_MEMBERS} files; refused", url, version)
        name = member.name
        pure = PurePosixPath(name)
        if name.startswith(("/", "\\")) or pure.is_absolute() or ".." in pure.parts or "\\" in name or not name:
            raise HelmRepoError(f"{where} contains the unsafe path {name!r} (outside the chart); refused", url, version)
        if member.issym() or member.islnk():
            raise HelmRepoError(f"{where} contains the link {name!r} -> {member.linkname!r}; links are refused",
                                url, version)
        if not (member.isfile() or member.isdir()):
            raise HelmRepoError(f"{where} contains {name!r}, which is not a file or directory; refused", url, version)
        total += max(member.size, 0)
        if total > MAX_EXTRACTED_BYTES:
            raise HelmRepoError(f"{where} extracts to more than {MAX_EXTRACTED_BYTES // (1024 * 1024)} MiB; refused",
                                url, version)
        members.append(member)
    return members


def _extract(data: bytes, digest: str, cache: Path, chart: str, version: str, url: str) -> Path:
    import io

    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                members = _safe_members(tar, chart, version, url)
                target = tmp / "chart"
                target.mkdir()
                for member in members:
                    out = target / member.name
                    if member.isdir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    if src is None:
                        continue
                    with src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise HelmRepoError(f"chart {chart!r} {version} from Helm repository {redact_url(url)} is not a "
                                f"valid .tgz archive: {type(exc).__name__}", url, version) from None
        tops = sorted(p.name for p in (tmp / "chart").iterdir() if p.is_dir() and (p / "Chart.yaml").is_file())
        if chart in tops:
            top = chart
        elif len(tops) == 1:
            top = tops[0]
        else:
            raise HelmRepoError(f"chart {chart!r} {version} from Helm repository {redact_url(url)} has no "
                                f"{chart}/Chart.yaml", url, version)
        (tmp / ".chartdir").write_text(top)
        (tmp / ".complete").write_text(version)
        entry = cache / digest
        try:
            os.rename(tmp, entry)  # atomic: a concurrent render sees all of it or none
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another render got there first
        tmp = Path()
    finally:
        if tmp != Path() and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _trim(cache, keep=digest)
    hit = _cached(cache, digest)
    if hit is None:
        raise HelmRepoError(f"chart cache {cache} is not usable", url, version)
    return hit


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _trim(cache: Path, keep: str, limit: int | None = None) -> None:
    """Drop least recently used charts until the cache fits ``limit`` (default MAX_CACHE_BYTES)."""
    limit = MAX_CACHE_BYTES if limit is None else limit
    entries: list[tuple[float, Path, int]] = []
    for entry in cache.iterdir():
        marker = entry / ".complete"
        if entry.name.startswith(".extract-"):
            if time.time() - entry.stat().st_mtime > 3600:  # left by a crashed render
                shutil.rmtree(entry, ignore_errors=True)
            continue
        if marker.is_file():
            entries.append((marker.stat().st_mtime, entry, _size(entry)))
    total = sum(size for _, _, size in entries)
    for _mtime, entry, size in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if entry.name == keep:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        total -= size
