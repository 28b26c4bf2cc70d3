"""Helm chart dependencies: ``helm dependency build`` with the registered credentials, cached.

A chart whose ``Chart.yaml`` (or v1 ``requirements.yaml``) lists dependencies that are not
vendored in ``charts/`` gets them the way ``helm dependency build`` does, because that is what
runs: in a private copy of the chart (the checkout is a shared cache and is never written) with
a private helm home per render: ``repositories.yaml`` naming every Helm HTTP repository the
dependencies use (with the credentials registered for that URL) and a registry config with the
credentials of each OCI registry (``--plain-http`` when they are registered ``plainHttp``).
Those files live in the render's temporary directory only; they are never logged, and helm's
messages are scrubbed of the passwords.

``Chart.lock`` is honoured (helm pins the versions it lists); a lock that does not match
``Chart.yaml`` is helm's own refusal, reported as a ComparisonError naming ``Chart.lock``.
Without a lock, helm resolves the ranges (as ``helm dependency update``).

**Cache.** What a build fetched is kept per input: the key is the dependency list of
``Chart.yaml``, the lock file's bytes and the ``Chart.yaml`` of every ``file://`` dependency
(what helm's verdict depends on); the value lists every fetched archive with its (repository,
name, version, sha256 digest), the archives stored by digest. A second render of the same inputs
copies the archives into ``charts/`` and fetches nothing and runs no tool besides ``helm
template``. A chart without ``Chart.lock`` re-resolves its ranges after
``UNLOCKED_TTL_SECONDS`` (24 h, Argo CD's repository cache default); commit a lock to pin them.
A render that used such a build says so (:attr:`Access.expires`), and the render cache keeps
its entry no longer, so the next render after that re-resolves them too.
The cache is bounded (``MAX_CACHE_BYTES``, 256 MiB, least recently used first) like the chart cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitferry.errors import RenderError, redact_url

__all__ = ["Access", "missing", "prepare", "DEFAULT_CACHE_DIR", "UNLOCKED_TTL_SECONDS"]

DEFAULT_CACHE_DIR = "/tmp/gitferry-helmdeps"
UNLOCKED_TTL_SECONDS = 24 * 3600
MAX_CACHE_BYTES = 256 * 1024 * 1024  # /tmp also holds the Git and chart caches
#: what the fetched dependencies of one chart may weigh (each archive also ≤ helmrepo's bound)
MAX_DEPENDENCY_BYTES = 128 * 1024 * 1024
#: how many builds this process ran (``make bench`` shows a second render runs none)
BUILDS = 0


@dataclass
class Access:
    """The registered repositories and a secret store: credentials for dependency URLs.
    The repository list is read once per render, and only when a build is needed."""

    secrets: Any
    list_repositories: Any  # () -> list[Repository]
    cache_dir: str = DEFAULT_CACHE_DIR
    #: when a render that used this access must be redone (the earliest expiry of the unlocked
    #: dependency builds it used; None: only locked ones, or none). The render cache keeps an
    #: entry no longer than this, or a cached render would pin ranges that helm re-resolves.
    expires: float | None = None
    _repos: list[Any] | None = field(default=None, repr=False)

    def repositories(self) -> list[Any]:
        if self._repos is None:
            self._repos = list(self.list_repositories())
        return self._repos

    def http(self, url: str) -> tuple[str, str] | None:
        """Basic auth registered for Helm repository ``url`` (trailing ``/`` ignored)."""
        want = url.rstrip("/")
        for repo in self.repositories():
            if repo.url.rstrip("/") == want and repo.has_credentials:
                creds = self.secrets.get_repo_credentials(repo.url)
                return creds.basic_auth() if creds is not None else None
        return None

    def registry(self, url: str) -> Any:
        from gitferry import oci

        host, _, repository = oci.strip_scheme(url).partition("/")
        return oci.access_for(oci.Reference(host, repository or "_"), self.repositories(), self.secrets)


def _dependencies(chart: Path, meta: dict[str, Any]) -> tuple[list[dict[str, Any]], Path]:
    """(dependencies, the file listing them): Chart.yaml, or v1's requirements.yaml."""
    deps = [d for d in meta.get("dependencies") or [] if isinstance(d, dict)]
    if deps:
        return deps, chart / "Chart.yaml"
    req = chart / "requirements.yaml"
    if req.is_file():
        doc = yaml.safe_load(req.read_text(encoding="utf-8-sig")) or {}
        if isinstance(doc, dict):
            return [d for d in doc.get("dependencies") or [] if isinstance(d, dict)], req
    return [], chart / "Chart.yaml"


def missing(chart: Path, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The dependencies not vendored in ``charts/`` (as a directory or a ``<name>-*.tgz``)."""
    deps, _ = _dependencies(chart, meta)
    charts_dir = chart / "charts"
    present = set(os.listdir(charts_dir)) if charts_dir.is_dir() else set()
    out = []
    for dep in deps:
        name = dep.get("name")
        if not isinstance(name, str):
            continue
        if (charts_dir / name / "Chart.yaml").is_file() or any(
                f.startswith(f"{name}-") and f.endswith(".tgz") for f in present):
            continue
        out.append(dep)
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _copy(src: Path, dst: Path) -> None:
    """Copy a chart directory with symlinks resolved (they were checked to stay inside the repo)."""
    shutil.copytree(src, dst, symlinks=False, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))


def prepare(root: Path, chart: Path, meta: dict[str, Any], work: Path, access: Access) -> Path:
    """The chart directory to render: a copy of ``chart`` under ``work`` whose ``charts/`` holds
    every dependency (from the cache, or from ``helm dependency build``). RenderErrors name
    ``Chart.yaml`` / ``Chart.lock``."""
    from gitferry.render import resolve_in_repo

    deps, listing = _dependencies(chart, meta)
    chart_file = _rel(chart / "Chart.yaml", root)
    lock = chart / ("Chart.lock" if listing.name == "Chart.yaml" else "requirements.lock")
    lock_bytes = lock.read_bytes() if lock.is_file() else b""
    tree = work / "deps-tree"
    copy = tree / _rel(chart, root) if chart != root else tree / "chart"
    _copy(chart, copy)
    http_repos: list[str] = []
    registries: dict[str, Any] = {}
    local: list[tuple[str, Path]] = []
    for i, dep in enumerate(deps):
        repo = str(dep.get("repository") or "").strip()
        name = str(dep.get("name") or "")
        where = f"{_rel(listing, root)}: dependencies[{i}] ({name})"
        if repo.startswith(("http://", "https://")):
            if repo.rstrip("/") not in http_repos:
                http_repos.append(repo.rstrip("/"))
        elif repo.startswith("oci://"):
            from gitferry import oci

            host = oci.strip_scheme(repo).split("/", 1)[0]
            registries.setdefault(host, access.registry(repo))
        elif repo.startswith("file://"):
            target = resolve_in_repo(root, chart, repo.removeprefix("file://"), file=_rel(listing, root),
                                     field=f"dependencies[{i}].repository")
            if not (target / "Chart.yaml").is_file():
                raise RenderError(f"dependencies[{i}].repository {repo!r}: no Chart.yaml there", _rel(listing, root))
            local.append((name, target))
            if not (target == chart or chart in target.parents):
                _copy(target, tree / _rel(target, root))  # relative file:// paths resolve in the copy too
        elif repo.startswith("@") or repo.startswith("alias:"):
            raise RenderError(f"{where}: repository {repo!r} names a local helm repository alias, which is not "
                              "supported by gitferry: write the repository URL", _rel(listing, root))
        else:
            raise RenderError(f"{where} is not in charts/ and has no repository URL (http(s)://, oci:// or file://)",
                              _rel(listing, root))
    plain = {h for h, a in registries.items() if a.plain_http}
    if plain and plain != set(registries):
        raise RenderError("dependencies from OCI registries with and without TLS in one chart are not supported by "
                          f"gitferry (plain HTTP: {', '.join(sorted(plain))})", chart_file)
    key = hashlib.sha256(json.dumps({
        "deps": deps, "lock": hashlib.sha256(lock_bytes).hexdigest(),
        "local": {n: hashlib.sha256((p / "Chart.yaml").read_bytes()).hexdigest() for n, p in local},
    }, sort_keys=True, default=str).encode()).hexdigest()
    cache = Path(access.cache_dir)
    hit = _from_cache(cache, key, copy, local)
    if hit is not None:
        expires = hit.expires
    else:
        entries = _build(copy, work, http_repos, registries, access, chart_file, _rel(lock, root), bool(plain))
        expires = _store(cache, key, copy, entries, locked=bool(lock_bytes))
    if expires is not None:
        access.expires = expires if access.expires is None else min(access.expires, expires)
    return copy




class _Hit:
    """A cached build copied into the chart; ``expires`` as stored (None: a locked build)."""

    def __init__(self, expires: float | None) -> None:
        self.expires = expires


def _from_cache(cache: Path, key: str, copy: Path, local: list[tuple[str, Path]]) -> _Hit | None:
    index = cache / "builds" / f"{key}.json"
    try:
        doc = json.loads(index.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("expires") is not None and doc["expires"] < time.time():
        return None
    archives = [(cache / "archives" / f"{e['digest']}.tgz", e["file"]) for e in doc.get("entries", [])]
    if not all(a.is_file() for a, _ in archives):
        return None
    charts = copy / "charts"
    charts.mkdir(exist_ok=True)
    for archive, name in archives:
        shutil.copyfile(archive, charts / Path(name).name)
        os.utime(archive)
    for name, target in local:  # file:// dependencies: the repository's current content
        _copy(target, charts / name)
    os.utime(index)
    return _Hit(doc.get("expires"))


def _build(copy: Path, work: Path, http_repos: list[str], registries: dict[str, Any], access: Access,
           chart_file: str, lock_file: str, plain_http: bool) -> list[dict[str, Any]]:
    """Run ``helm dependency build`` in ``copy`` with a private helm home; the fetched archives."""
    global BUILDS
    from gitferry import render

    home = work / "deps-home"
    config = home / "helm" / "config"
    config.mkdir(parents=True, exist_ok=True)
    secrets: list[str] = []
    repos = []
    for i, url in enumerate(http_repos):
        entry: dict[str, Any] = {"name": f"gitferry-{i}", "url": url}
        creds = access.http(url)
        if creds is not None and (creds[0] or creds[1]):
            entry.update(username=creds[0], password=creds[1])
            secrets.append(creds[1])
        repos.append(entry)
    (config / "repositories.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "", "generated": "0001-01-01T00:00:00Z", "repositories": repos}))
    auths = {}
    for host, reg in registries.items():
        basic = reg.basic_auth()
        if basic is not None:
            auths[host] = {"auth": base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()}
            secrets.append(basic[1])
    registry_config = home / "registry.json"
    registry_config.write_text(json.dumps({"auths": auths}))
    os.chmod(registry_config, 0o600)
    os.chmod(config / "repositories.yaml", 0o600)
    argv = [render.find_tool("helm"), "dependency", "build", str(copy)] + (["--plain-http"] if plain_http else [])
    BUILDS += 1
    code, _stdout, stderr = render._run_tool(
        argv, work=home, cwd=home, what="helm dependency build", subject=chart_file,
        extra_env={"HELM_REGISTRY_CONFIG": str(registry_config),
                   "HELM_REPOSITORY_CONFIG": str(config / "repositories.yaml")})
    if code != 0:
        message = render._clean_stderr(stderr, copy.parent, home)
        for secret in secrets:
            if secret:
                message = message.replace(secret, "***")
        message = message.replace(str(copy), "<chart>")
        if "Chart.lock" in message or "requirements.lock" in message or "lock file" in message:
            raise RenderError(f"helm dependency build: {message}", lock_file)
        raise RenderError(f"helm dependency build: {message}", chart_file)
    return _fetched(copy, chart_file)


def _fetched(copy: Path, chart_file: str) -> list[dict[str, Any]]:
    """The archives helm put in ``charts/`` for remote dependencies, per the lock it used."""
    lock_path = copy / "Chart.lock" if (copy / "Chart.lock").is_file() else copy / "requirements.lock"
    try:
        lock = yaml.safe_load(lock_path.read_text()) or {}
    except OSError:
        lock = {}
    entries = []
    total = 0
    for dep in lock.get("dependencies") or [] if isinstance(lock, dict) else []:
        repo = str(dep.get("repository") or "")
        if not repo.startswith(("http://", "https://", "oci://")):
            continue
        archive = copy / "charts" / f"{dep.get('name')}-{dep.get('version')}.tgz"
        if not archive.is_file():
            continue
        from gitferry.helmrepo import MAX_CHART_BYTES

        size = archive.stat().st_size
        total += size
        if size > MAX_CHART_BYTES or total > MAX_DEPENDENCY_BYTES:
            raise RenderError(f"dependency {dep.get('name')} {dep.get('version')} from {redact_url(repo)} is too "
                              f"large ({size} bytes; at most {MAX_CHART_BYTES} each, {MAX_DEPENDENCY_BYTES} in all)",
                              chart_file)
        entries.append({"name": dep.get("name"), "version": str(dep.get("version")), "repository": redact_url(repo),
                        "digest": hashlib.sha256(archive.read_bytes()).hexdigest(), "file": archive.name})
    return entries


def _store(cache: Path, key: str, copy: Path, entries: list[dict[str, Any]], *, locked: bool) -> float | None:
    """Keep a build; its expiry (None for a locked one)."""
    (cache / "archives").mkdir(parents=True, exist_ok=True)
    (cache / "builds").mkdir(parents=True, exist_ok=True)
    for entry in entries:
        target = cache / "archives" / f"{entry['digest']}.tgz"
        if not target.is_file():
            tmp = target.with_suffix(f".tmp-{os.getpid()}")
            shutil.copyfile(copy / "charts" / entry["file"], tmp)
            os.replace(tmp, target)
    doc = {"entries": entries, "expires": None if locked else time.time() + UNLOCKED_TTL_SECONDS}
    tmp = cache / "builds" / f".{key}.{os.getpid()}"
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, cache / "builds" / f"{key}.json")
    _trim(cache)
    return doc["expires"]


def _trim(cache: Path) -> None:
    files = [(f.stat().st_mtime, f, f.stat().st_size) for f in (cache / "archives").glob("*.tgz")]
    total = sum(size for _, _, size in files)
    for _mtime, f, size in sorted(files):
        if total <= MAX_CACHE_BYTES:
            break
        f.unlink(missing_ok=True)  # a build whose archive is gone is a miss, rebuilt next time
        total -= size
