"""Git over HTTPS with dulwich: ls-remote, revision resolution, cached checkout.

Why these shapes:

- ``ls_remote`` is what a poll tick runs for every tracked repo each minute, so
  it costs exactly ONE HTTP request (protocol v0 ref advertisement, which also
  carries HEAD's symref and peeled tags) and no disk.
- ``resolve`` is a pure function over that answer, so the poll stage resolves
  many apps sharing a repo with one request.
- ``checkout`` fetches only the wanted commit (depth 1) into a bare cache repo
  per URL, then materialises that commit's tree into a directory named by the
  commit SHA: renders of the same commit (every drift check) cost nothing, and
  a commit directory is immutable once it exists. The cache is bounded (LRU by
  last use) because Lambda ``/tmp`` is small and shared by warm invocations.

Credentials go only to the HTTP client (basic auth); every message uses the
URL without userinfo and never includes a username or password.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from dulwich.client import HTTPUnauthorized, SSHGitClient, default_urllib3_manager, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.repo import Repo

from gitferry.errors import GitAuthError, GitError, RevisionNotFoundError, redact_url

__all__ = ["Credentials", "is_ssh_url", "ls_remote", "resolve", "checkout", "GitCache", "DEFAULT_CACHE_DIR"]

DEFAULT_CACHE_DIR = "/tmp/gitferry-git"
#: bound on one fetched pack (one commit, depth 1): a hostile repo must not fill /tmp
MAX_FETCH_BYTES = 256 * 1024 * 1024
#: a whole fetch must finish within this; every socket read within HTTP_TIMEOUT_SECONDS
FETCH_TIMEOUT_SECONDS = 120
HTTP_TIMEOUT_SECONDS = 30.0  # default of GIT_REQUEST_TIMEOUT_SECONDS, read at each connection
PEELED = "^{}"
_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_CONNECT_FAILURES = ("Failed to establish a new connection", "Max retries exceeded", "timed out")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")


class Credentials(Protocol):
    """Anything that yields basic-auth (username, password), e.g. ``RepoCredentials``."""

    def basic_auth(self) -> tuple[str, str]: ...


# --------------------------------------------------------------------------- transport


def is_ssh_url(url: str) -> bool:
    """``ssh://...`` or scp-like ``user@host:path``."""
    return url.startswith("ssh://") or bool(_SCP_LIKE.match(url))


def _client(url: str, credentials: Credentials | None) -> tuple[Any, str]:
    if is_ssh_url(url):
        return _ssh_client(url, credentials)
    username = password = None
    if credentials is not None:
        username, password = credentials.basic_auth()
    pool = (default_urllib3_manager(
        None, base_url=url, timeout=float(os.environ.get("GIT_REQUEST_TIMEOUT_SECONDS") or HTTP_TIMEOUT_SECONDS))
            if url.startswith(("http://", "https://")) else None)
    try:
        return get_transport_and_path(url, username=username, password=password, quiet=True, pool_manager=pool)
    except Exception as exc:  # malformed URL, unsupported scheme
        raise GitError(f"cannot use repository URL {redact_url(url)}: {type(exc).__name__}", url) from None


def _ssh_client(url: str, credentials: Credentials | None) -> tuple[Any, str]:
    """dulwich's SSH client on gitferry.sshgit's paramiko vendor, with the registered key."""
    from gitferry.sshgit import KeyVendor

    key = getattr(credentials, "ssh_private_key", None)
    hosts = getattr(credentials, "ssh_known_hosts", None)
    if not key or not hosts:
        raise GitAuthError(f"{redact_url(url)} is an ssh repository: register its sshPrivateKey and sshKnownHosts", url)
    try:
        vendor = KeyVendor(key, hosts, url)
    except ValueError as exc:
        raise GitAuthError(f"the registered ssh credentials of {redact_url(url)} are unusable: {exc}", url) from None
    try:
        client, path = get_transport_and_path(url, quiet=True)
    except Exception as exc:  # malformed URL
        raise GitError(f"cannot use repository URL {redact_url(url)}: {type(exc).__name__}", url) from None
    if not isinstance(client, SSHGitClient):
        raise GitError(f"cannot use repository URL {redact_url(url)}: not an ssh URL", url)
    client.ssh_vendor = vendor  # never the ssh binary: Lambda has none, and no agent or key files
    return client, path


@contextlib.contextmanager
def _translate_errors(url: str, credentials: Credentials | None, revision: str = "") -> Iterator[None]:
    """Turn transport failures into GitErrors that name the repo (never credentials)."""
    safe = redact_url(url)
    try:
        yield
    except GitError:
        raise
    except HTTPUnauthorized:
        if credentials is None:
            msg = f"{safe} requires authentication: register credentials for this repository"
        else:
            msg = f"authentication failed for {safe}: the stored credentials were refused"
        raise GitAuthError(msg, url, revision) from None
    except NotGitRepository:
        raise GitError(f"repository not found: {safe}", url, revision) from None
    except (GitProtocolError, HangupException) as exc:
        text = _scrub(str(exc), credentials)
        if any(m in text for m in _CONNECT_FAILURES):
            reason = _ERRNO.search(text)
            why = reason.group(1).strip() if reason else (
                "timed out" if "timed out" in text else "connection failed")
            raise GitError(f"cannot reach {safe}: {why}", url, revision) from None
        # status codes, not digits of the URL (a port 40139 is no 401)
        codes = set(re.findall(r"\b[1-5]\d\d\b", text.replace(safe, "").replace(url, "")))
        if "404" in codes or "not found" in text.lower():
            raise GitError(f"repository not found: {safe}", url, revision) from None
        if codes & {"401", "403"}:
            raise GitAuthError(f"authentication failed for {safe}", url, revision) from None
        raise GitError(f"git protocol error from {safe}: {text}", url, revision) from None
    except OSError as exc:
        raise GitError(
            f"cannot reach {safe}: {type(exc).__name__}: {_scrub(str(exc), credentials)}", url
        ) from None
    except Exception as exc:  # urllib3 errors etc.
        raise GitError(f"cannot reach {safe}: {type(exc).__name__}", url, revision) from None


def _scrub(text: str, credentials: Credentials | None) -> str:
    text = redact_url(text)
    if credentials is not None:
        secrets = getattr(credentials, "secret_values", None)
        for secret in (secrets() if secrets else [credentials.basic_auth()[1]]):  # the username is not secret
            if secret:
                text = text.replace(secret, "***")
    return text


def ls_remote(url: str, credentials: Credentials | None = None) -> dict[str, str]:
    """All refs of ``url`` as ``{ref: sha}`` like ``git ls-remote``: ``HEAD``,
    ``refs/heads/*``, ``refs/tags/*`` and, for annotated tags, ``refs/tags/x^{}``
    with the commit. One HTTP request."""
    client, path = _client(url, credentials)
    with _translate_errors(url, credentials):
        result = client.get_refs(path.encode() if isinstance(path, str) else path, protocol_version=0)
    refs: dict[str, str] = {}
    for name, sha in result.refs.items():
        if sha is None:
            continue
        refs[name.decode()] = sha.decode()
    return refs


# --------------------------------------------------------------------------- resolve


def _names(refs: Mapping[str, str], prefix: str) -> list[str]:
    return sorted(r.removeprefix(prefix) for r in refs if r.startswith(prefix) and not r.endswith(PEELED))


def _peel(refs: Mapping[str, str], ref: str) -> str:
    return refs.get(ref + PEELED, refs[ref])


def resolve(refs: Mapping[str, str], target_revision: str, url: str = "") -> str:
    """The commit SHA ``target_revision`` names in ``refs`` (an ``ls_remote`` answer).

    Accepts ``HEAD`` (or empty), a branch, a tag (annotated tags are peeled to
    their commit), a full ``refs/...`` name, or a full / abbreviated SHA of a
    ref tip; a full 40-hex SHA that is no tip is taken as is (it is checked at
    checkout). Names resolve in git's order: ``refs/<x>``, tags, then branches.
    """
    rev = target_revision.strip()
    if rev in ("", "HEAD"):
        if "HEAD" in refs:
            return refs["HEAD"]
        raise RevisionNotFoundError(
            f"{redact_url(url) or 'repository'} has no HEAD (empty repository?)", url, rev
        )
    candidates = (
        [rev] if rev.startswith("refs/") else [f"refs/{rev}", f"refs/tags/{rev}", f"refs/heads/{rev}"]
    )
    for ref in candidates:
        if ref in refs:
            return _peel(refs, ref)
    low = rev.lower()
    if _HEX.match(low):
        tips = {sha for sha in refs.values()}
        if low in tips:
            return low
        matches = {sha for sha in tips if sha.startswith(low)}
        if len(matches) == 1:
            return matches.pop()
        if len(matches) > 1:
            raise RevisionNotFoundError(
                f'revision "{rev}" is ambiguous in {redact_url(url)}: use more characters', url, rev
            )
        if _FULL_SHA.match(low):
            return low
    branches = _names(refs, "refs/heads/")
    tags = _names(refs, "refs/tags/")
    detail = f"branches are {_few(branches)}" if branches else "it has no branches"
    if tags:
        detail += f"; tags are {_few(tags)}"
    raise RevisionNotFoundError(f'revision "{rev}" not found in {redact_url(url)}: {detail}', url, rev)


def _few(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


# --------------------------------------------------------------------------- checkout


class FetchBoundError(GitError):
    """A fetch over MAX_FETCH_BYTES or FETCH_TIMEOUT_SECONDS."""


def _bounded_fetch(client: Any, path: Any, repo: Repo, determine_wants: Any, url: str, sha: str) -> None:
    """What dulwich's ``fetch`` does (depth 1, thin pack resolved against the store), with the
    pack counted as it arrives: refused past MAX_FETCH_BYTES or FETCH_TIMEOUT_SECONDS."""
    from tempfile import SpooledTemporaryFile

    deadline = time.monotonic() + FETCH_TIMEOUT_SECONDS
    size = 0
    with SpooledTemporaryFile(max_size=16 * 1024 * 1024, prefix="incoming-",
                              dir=getattr(repo.object_store, "path", None)) as pack:

        def write(chunk: bytes) -> int:
            nonlocal size
            size += len(chunk)
            if size > MAX_FETCH_BYTES:
                bound = (f"{MAX_FETCH_BYTES // (1024 * 1024)} MiB" if MAX_FETCH_BYTES % (1024 * 1024) == 0
                         else f"{MAX_FETCH_BYTES // 1024} KiB")
                raise FetchBoundError(f"fetching {sha[:12]} from {redact_url(url)} exceeds {bound}; refused",
                                      url, sha)
            if time.monotonic() > deadline:
                raise FetchBoundError(f"fetching {sha[:12]} from {redact_url(url)} did not finish within "
                                      f"{FETCH_TIMEOUT_SECONDS}s", url, sha)
            return pack.write(chunk)

        result = client.fetch_pack(path, determine_wants, repo.get_graph_walker(), write, depth=1)
        if pack.tell():
            pack.seek(0)
            repo.object_store.add_thin_pack(pack.read, None)
    repo.update_shallow(result.new_shallow, result.new_unshallow)


class GitCache:
    """Bounded on-disk cache: ``repos/<key>.git`` (bare, objects of fetched
    commits) and ``trees/<key>/<sha>/`` (materialised trees). Least recently
    used trees go first when there are more than ``max_trees`` or they take
    more than ``max_bytes``; bare repos beyond ``max_repos`` likewise."""

    def __init__(
        self,
        root: str | Path | None = None,
        max_trees: int = 32,
        max_repos: int = 16,
        max_bytes: int = 1 << 30,
    ) -> None:
        self.root = Path(root or os.environ.get("GIT_CACHE_DIR") or DEFAULT_CACHE_DIR)
        self.max_trees = max_trees
        self.max_repos = max_repos
        self.max_bytes = max_bytes

    @staticmethod
    def key(url: str) -> str:
        return hashlib.sha256(redact_url(url).rstrip("/").encode()).hexdigest()[:24]

    def tree_dir(self, url: str, sha: str) -> Path:
        return self.root / "trees" / self.key(url) / sha

    def repo_dir(self, url: str) -> Path:
        return self.root / "repos" / f"{self.key(url)}.git"

    @contextlib.contextmanager
    def lock(self, url: str) -> Iterator[None]:
        """Serialise fetches of one repo across processes sharing the cache."""
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        with open(self.root / "locks" / self.key(url), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def checkout(self, url: str, sha: str, credentials: Credentials | None = None) -> Path:
        """Directory holding the tree of commit ``sha`` of ``url`` (fetched if needed)."""
        sha = sha.lower()
        if not _FULL_SHA.match(sha):
            raise GitError(f"checkout needs a full commit SHA, got {sha!r}; resolve() it first", url, sha)
        target = self.tree_dir(url, sha)
        if target.is_dir():
            _touch(target)
            return target
        with self.lock(url):
            if target.is_dir():
                _touch(target)
                return target
            repo = self._open_repo(url)
            try:
                commit = self._commit(repo, url, sha, credentials)
                self._materialise(repo, commit.tree, target, url, sha)
                _touch(self.repo_dir(url))
            finally:
                repo.close()
        self.evict(keep=target)
        return target

    def _open_repo(self, url: str) -> Repo:
        path = self.repo_dir(url)
        if path.is_dir():
            try:
                return Repo(str(path))
            except NotGitRepository:
                shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return Repo.init_bare(str(path), mkdir=True)

    def _commit(self, repo: Repo, url: str, sha: str, credentials: Credentials | None) -> Commit:
        want = sha.encode()
        if want not in repo.object_store:
            client, path = _client(url, credentials)

            def determine_wants(refs: Mapping[bytes, bytes | None], depth: int | None = None) -> list[bytes]:
                return [want]

            try:
                with _translate_errors(url, credentials, sha):
                    _bounded_fetch(client, path, repo, determine_wants, url, sha)
            except (GitAuthError, FetchBoundError):
                raise
            except GitError:
                # git upload-pack answers an unknown want by hanging up ("not our
                # ref"); if the repo itself answers, the commit is what is missing.
                ls_remote(url, credentials)
                raise RevisionNotFoundError(
                    f'commit "{sha}" not found in {redact_url(url)}', url, sha
                ) from None
        try:
            obj = repo[want]
        except KeyError:
            raise RevisionNotFoundError(f'commit "{sha}" not found in {redact_url(url)}', url, sha) from None
        while isinstance(obj, Tag):
            obj = repo[obj.object[1]]
        if not isinstance(obj, Commit):
            raise RevisionNotFoundError(f'"{sha}" in {redact_url(url)} is not a commit', url, sha)
        return obj

    def _materialise(self, repo: Repo, tree_id: bytes, target: Path, url: str, sha: str) -> None:
        """Write the tree into a temp dir, then rename: a commit dir is complete or absent."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{sha[:12]}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            store = repo.object_store
            for entry in store.iter_tree_contents(tree_id):
                rel = entry.path.decode("utf-8", "surrogateescape")
                parts = rel.split("/")
                if any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
                    raise GitError(f"unsafe path {rel!r} in {redact_url(url)}@{sha}", url, sha)
                dest = tmp.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                mode = entry.mode
                if stat.S_ISDIR(mode) or mode == 0o160000:  # gitlink (submodule): not fetched
                    dest.mkdir(exist_ok=True)
                    continue
                blob = store[entry.sha]
                assert isinstance(blob, Blob)
                if stat.S_ISLNK(mode):
                    os.symlink(blob.as_raw_string().decode("utf-8", "surrogateescape"), dest)
                else:
                    dest.write_bytes(blob.as_raw_string())
                    if mode & 0o111:
                        dest.chmod(0o755)
            assert isinstance(store[tree_id], Tree)
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # -- eviction -------------------------------------------------------------------

    def evict(self, keep: Path | None = None) -> None:
        """Drop least recently used trees / repos beyond the bounds."""
        trees = sorted(
            (p for p in (self.root / "trees").glob("*/*") if p.is_dir() and not p.name.startswith(".tmp-")),
            key=_mtime,
        )
        sizes = {p: _du(p) for p in trees}
        total = sum(sizes.values())
        repos = sorted((p for p in (self.root / "repos").glob("*.git") if p.is_dir()), key=_mtime)
        total += sum(_du(p) for p in repos)
        while trees and (len(trees) > self.max_trees or total > self.max_bytes):
            victim = trees.pop(0)
            if victim == keep:
                continue
            shutil.rmtree(victim, ignore_errors=True)
            total -= sizes[victim]
        while len(repos) > self.max_repos:
            shutil.rmtree(repos.pop(0), ignore_errors=True)


def _touch(path: Path) -> None:
    now = time.time()
    with contextlib.suppress(OSError):
        os.utime(path, (now, now))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def checkout(
    url: str,
    sha: str,
    credentials: Credentials | None = None,
    cache_dir: str | Path | None = None,
    **bounds: int,
) -> Path:
    """Tree of commit ``sha`` of ``url`` as a directory in the cache (``GIT_CACHE_DIR``
    by default). ``bounds`` are :class:`GitCache` limits (``max_trees``, ``max_repos``,
    ``max_bytes``)."""
    return GitCache(cache_dir, **bounds).checkout(url, sha, credentials)
