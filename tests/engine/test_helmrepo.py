"""helmrepo against a real Helm repository: charts packaged and indexed by the real helm
binary, served over HTTP on loopback (optionally behind basic auth), read by gitferry."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gitferry import helmrepo
from gitferry.errors import HelmRepoError
from gitferry.secrets import RepoCredentials

from local.helmrepo import HelmRepoServer

CM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
data:
  greeting: {{ .Values.greeting | quote }}
"""
FILES = {"values.yaml": "greeting: hello\n", "templates/cm.yaml": CM}
VERSIONS = ["0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.2.7", "1.3.0-beta.1", "2.0.0-rc.1", "2.0.0", "2.1.0"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRepoServer]:
    with HelmRepoServer(tmp_path_factory.mktemp("charts")) as server:
        for v in VERSIONS:
            server.add_chart("web", v, FILES)
        yield server


@pytest.fixture(scope="module")
def private_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRepoServer]:
    with HelmRepoServer(tmp_path_factory.mktemp("private"), auth=("reader", "s3cret-pw")) as server:
        server.add_chart("secret-web", "0.1.0", FILES)
        yield server


# ------------------------------------------------------------------ index


def test_index_lists_the_published_versions(repo: HelmRepoServer) -> None:
    index = helmrepo.fetch_index(repo.url)
    assert sorted(e["version"] for e in index["entries"]["web"]) == sorted(VERSIONS)


def test_private_index_needs_and_accepts_credentials(private_repo: HelmRepoServer) -> None:
    with pytest.raises(HelmRepoError) as refused:
        helmrepo.fetch_index(private_repo.url)
    assert private_repo.url in str(refused.value) and "requires authentication" in str(refused.value)

    with pytest.raises(HelmRepoError) as wrong:
        helmrepo.fetch_index(private_repo.url, RepoCredentials(username="reader", password="nope-wrong"))
    assert "refused the stored credentials" in str(wrong.value)
    assert "nope-wrong" not in str(wrong.value)

    creds = RepoCredentials(username="reader", password="s3cret-pw")
    index = helmrepo.fetch_index(private_repo.url, creds)
    picked = helmrepo.resolve(index, "secret-web", "0.1.0")
    chart = helmrepo.fetch_chart(private_repo.url, "secret-web", picked.version, picked.digest, creds,
                                 private_repo.root.parent / "private-cache", urls=picked.urls)
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["name"] == "secret-web"


def test_unreachable_repo_is_named(tmp_path: Path) -> None:
    with HelmRepoServer(tmp_path / "gone") as gone:
        url = gone.url
    with pytest.raises(HelmRepoError) as exc:
        helmrepo.fetch_index(url)
    assert f"cannot reach Helm repository {url}" in str(exc.value)


def test_oversized_index_is_refused(repo: HelmRepoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helmrepo, "MAX_INDEX_BYTES", 100)
    with pytest.raises(HelmRepoError, match="larger than"):
        helmrepo.fetch_index(repo.url)


# ------------------------------------------------------------------ constraints


@pytest.mark.parametrize(("constraint", "expected"), [
    ("1.2.0", "1.2.0"),             # exact
    ("2.0.0-rc.1", "2.0.0-rc.1"),   # an exact pre-release is taken when named
    ("^1.0", "1.2.7"),              # caret: highest 1.x, pre-release 1.3.0-beta.1 skipped
    ("^1.2", "1.2.7"),
    ("~1.2.0", "1.2.7"),            # tilde: highest 1.2.x
    ("~1", "1.2.7"),
    ("1.2.*", "1.2.7"),             # wildcard
    ("1.x", "1.2.7"),
    ("1.2", "1.2.7"),               # missing patch acts as a wildcard
    (">=1.0.0 <2.0.0", "1.2.7"),    # AND with a space
    (">=1.0.0, <2.0.0", "1.2.7"),   # AND with a comma (Helm's usual spelling)
    ("1.0.0 - 1.2.0", "1.2.0"),     # hyphen range
    ("<1.0.0 || >=2.1.0", "2.1.0"),  # OR
    (">=1.0.0-0 <1.4.0", "1.3.0-beta.1"),  # pre-releases only when the range names one
    ("^2", "2.1.0"),
    ("*", "2.1.0"),                  # latest release, never a pre-release
    ("^0.9", "0.9.0"),
    ("!=2.1.0 <3", "2.0.0"),
])
def test_constraints_pick_the_highest_match(repo: HelmRepoServer, constraint: str, expected: str) -> None:
    index = helmrepo.fetch_index(repo.url)
    assert helmrepo.resolve(index, "web", constraint).version == expected


def test_prerelease_only_when_asked() -> None:
    index = {"entries": {"c": [{"version": v, "urls": ["c.tgz"]} for v in ("1.0.0", "1.1.0-alpha.2", "1.1.0-alpha.10")]}}
    assert helmrepo.resolve(index, "c", ">=1.0.0").version == "1.0.0"
    # numeric identifiers compare numerically: alpha.10 > alpha.2
    assert helmrepo.resolve(index, "c", ">=1.0.0-0").version == "1.1.0-alpha.10"
    assert helmrepo.resolve(index, "c", "~1.1.0-0").version == "1.1.0-alpha.10"


def test_unknown_version_lists_what_is_available(repo: HelmRepoServer) -> None:
    index = helmrepo.fetch_index(repo.url)
    with pytest.raises(HelmRepoError) as exc:
        helmrepo.resolve(index, "web", "^3.0")
    message = str(exc.value)
    assert "'^3.0'" in message and repo.url in message
    assert "available: 2.1.0, 2.0.0, 2.0.0-rc.1, 1.3.0-beta.1, 1.2.7" in message
    with pytest.raises(HelmRepoError, match="chart 'nope' not found .* charts: web"):
        helmrepo.resolve(index, "nope", "1.0.0")


@pytest.mark.parametrize("bad", ["HEAD", "main", "1.2.3.4", ">=", "^x.y", "1.0 ||"])
def test_invalid_constraints_are_refused(bad: str) -> None:
    assert not helmrepo.is_constraint(bad)
    with pytest.raises(ValueError, match="invalid version constraint|empty"):
        helmrepo.parse_constraint(bad)


# ------------------------------------------------------------------ charts


def test_fetch_chart_verifies_extracts_and_reuses_the_cache(repo: HelmRepoServer, tmp_path: Path) -> None:
    index = helmrepo.fetch_index(repo.url)
    version, digest, urls = helmrepo.resolve(index, "web", "^1.0")
    cache = tmp_path / "cache"
    before = len(repo.requests)
    chart = helmrepo.fetch_chart(repo.url, "web", version, digest, None, cache, urls=urls)
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == "1.2.7"
    assert (chart / "templates" / "cm.yaml").read_text() == CM
    assert chart.is_relative_to(cache / digest)
    assert repo.requests[before:] == ["/web-1.2.7.tgz"]

    again = helmrepo.fetch_chart(repo.url, "web", version, digest, None, cache, urls=urls)
    assert again == chart
    assert len(repo.requests) == before + 1  # served from the cache: no download


def test_digest_mismatch_is_refused(repo: HelmRepoServer, tmp_path: Path) -> None:
    index = helmrepo.fetch_index(repo.url)
    version, digest, urls = helmrepo.resolve(index, "web", "1.0.0")
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(HelmRepoError) as exc:
        helmrepo.fetch_chart(repo.url, "web", version, wrong, None, tmp_path / "cache", urls=urls)
    assert "does not match the digest in index.yaml" in str(exc.value) and digest in str(exc.value)
    assert not any((tmp_path / "cache").glob("*/chart"))


def _tgz(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(("member", "why"), [
    (_file("../../escape.txt"), "unsafe path"),
    (_file("/etc/cron.d/evil"), "unsafe path"),
    (_link("evil/templates/x.yaml", "/etc/passwd"), "links are refused"),
    (_link("evil/templates/y.yaml", "../../../../outside"), "links are refused"),
    (_link("evil/templates/z.yaml", "/etc/passwd", tarfile.LNKTYPE), "links are refused"),
])
def test_unsafe_archives_are_refused(tmp_path: Path, member: tarfile.TarInfo, why: str) -> None:
    data = _tgz([(_file("evil/Chart.yaml"), b"apiVersion: v2\nname: evil\nversion: 1.0.0\n"), (member, b"x")])
    root = tmp_path / "repo"
    root.mkdir()
    (root / "evil-1.0.0.tgz").write_bytes(data)
    cache = tmp_path / "cache"
    with HelmRepoServer(root) as server:
        with pytest.raises(HelmRepoError, match=why):
            helmrepo.fetch_chart(server.url, "evil", "1.0.0", hashlib.sha256(data).hexdigest(), None, cache,
                                 urls=["evil-1.0.0.tgz"])
    assert not (tmp_path / "escape.txt").exists()
    assert [p.name for p in cache.iterdir()] == []  # nothing half-extracted left behind


def test_absolute_chart_urls_are_followed(tmp_path: Path) -> None:
    """An index may point at another host (a CDN): the absolute URL is used as is, and the
    repository's credentials are not sent there."""
    with HelmRepoServer(tmp_path / "cdn") as cdn, HelmRepoServer(tmp_path / "repo", auth=("u", "pw")) as repo:
        cdn.add_chart("web", "1.0.0", FILES)
        index = helmrepo.fetch_index(cdn.url)
        version, digest, urls = helmrepo.resolve(index, "web", "1.0.0")
        assert urls[0].startswith(cdn.url)  # helm repo index --url wrote absolute URLs
        chart = helmrepo.fetch_chart(repo.url, "web", version, digest, RepoCredentials(username="u", password="pw"),
                                     tmp_path / "cache", urls=urls)
        assert (chart / "values.yaml").is_file()
        assert cdn.requests[-1] == "/web-1.0.0.tgz"
        assert cdn.requests_with_auth == []


def test_aliased_index_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    """A hostile repository's index.yaml: one entry referenced 200,000 times by alias (what made
    every poll tick take 11-13 s) is refused by the parse budget, naming the repository."""
    entry = "{apiVersion: v2, name: web, version: 1.0.0, digest: " + "a" * 64 + ", urls: [web-1.0.0.tgz]}"
    (tmp_path / "hostile").mkdir()
    (tmp_path / "hostile/index.yaml").write_text(
        "apiVersion: v1\nx: &e " + entry + "\nentries:\n  web: [" + ", ".join(["*e"] * 200_000) + "]\n")
    with HelmRepoServer(tmp_path / "hostile") as hostile:
        url = hostile.url
        with pytest.raises(HelmRepoError) as exc:
            helmrepo.fetch_index(url)
    assert str(exc.value).startswith(f"index.yaml of Helm repository {url} (line 2): more than ")
    assert "alias" in str(exc.value)
