"""git.py against real ``git http-backend`` (local.gitserver), and the server
against the real ``git`` CLI."""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from gitferry import git
from gitferry.errors import GitAuthError, GitError, RevisionNotFoundError
from gitferry.secrets import RepoCredentials

from local.gitserver import GitServer


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def history(git_server: GitServer) -> dict[str, str]:
    """A repo with commits c0 -> c1 -> c2 on main, dev branch, annotated v1 at c1,
    lightweight tag light at c2."""
    name = unique("apps")
    url = git_server.make_repo(name, {"guestbook/cm.yaml": "kind: ConfigMap\n"}, message="c0")
    c0 = git_server.rev_parse(name, "HEAD")
    c1 = git_server.commit(name, {"guestbook/svc.yaml": "kind: Service\n"}, "c1")
    git_server.tag(name, "v1", c1, message="release v1")
    c2 = git_server.commit(name, {"guestbook/cm.yaml": "kind: ConfigMap\n# c2\n"}, "c2")
    git_server.tag(name, "light", c2)
    dev = git_server.commit(name, {"dev.yaml": "kind: X\n"}, "dev work", branch="dev")
    return {"name": name, "url": url, "c0": c0, "c1": c1, "c2": c2, "dev": dev}


def test_ls_remote_is_one_request_and_lists_refs(git_server: GitServer, history: dict[str, str]) -> None:
    before = len(git_server.requests_for(history["name"]))
    refs = git.ls_remote(history["url"])
    assert len(git_server.requests_for(history["name"])) - before == 1
    assert refs["HEAD"] == history["c2"]
    assert refs["refs/heads/main"] == history["c2"]
    assert refs["refs/heads/dev"] == history["dev"]
    assert refs["refs/tags/v1^{}"] == history["c1"]  # annotated tag peeled
    assert refs["refs/tags/v1"] != history["c1"]  # ... the tag object itself


def test_resolve_branch_tag_head_and_shas(history: dict[str, str]) -> None:
    refs = git.ls_remote(history["url"])
    url = history["url"]
    assert git.resolve(refs, "HEAD", url) == history["c2"]
    assert git.resolve(refs, "", url) == history["c2"]
    assert git.resolve(refs, "dev", url) == history["dev"]
    assert git.resolve(refs, "refs/heads/dev", url) == history["dev"]
    assert git.resolve(refs, "v1", url) == history["c1"]  # commit, not the tag object
    assert git.resolve(refs, "refs/tags/v1", url) == history["c1"]
    assert git.resolve(refs, "light", url) == history["c2"]
    assert git.resolve(refs, history["dev"][:8], url) == history["dev"]  # abbreviated tip
    assert git.resolve(refs, history["dev"].upper(), url) == history["dev"]
    assert git.resolve(refs, history["c0"], url) == history["c0"]  # full SHA, not a tip: as is
    with pytest.raises(RevisionNotFoundError) as info:
        git.resolve(refs, "nope", url)
    assert (
        str(info.value) == f'revision "nope" not found in {url}: branches are dev, main; tags are light, v1'
    )
    with pytest.raises(RevisionNotFoundError):
        git.resolve(refs, history["c0"][:8], url)  # abbreviated and no tip: cannot know


def test_checkout_materialises_commit_and_caches_it(
    git_server: GitServer, history: dict[str, str], git_cache: Path
) -> None:
    url, name = history["url"], history["name"]
    tree = git.checkout(url, history["c2"], None, git_cache)
    assert tree.name == history["c2"]
    assert (tree / "guestbook/cm.yaml").read_text() == "kind: ConfigMap\n# c2\n"
    assert not (tree / "dev.yaml").exists() and not (tree / ".git").exists()
    before = len(git_server.requests_for(name))
    assert git.checkout(url, history["c2"], None, git_cache) == tree
    assert len(git_server.requests_for(name)) == before  # same commit: no network at all
    # an older commit that no ref points to any more can be fetched by SHA
    old = git.checkout(url, history["c0"], None, git_cache)
    assert sorted(p.name for p in (old / "guestbook").iterdir()) == ["cm.yaml"]
    assert (tree / "guestbook/svc.yaml").exists()


def test_checkout_unknown_commit_is_clear(history: dict[str, str], git_cache: Path) -> None:
    with pytest.raises(RevisionNotFoundError) as info:
        git.checkout(history["url"], "0123456789abcdef0123456789abcdef01234567", None, git_cache)
    assert "0123456789abcdef0123456789abcdef01234567" in str(info.value) and history["url"] in str(info.value)
    with pytest.raises(GitError, match="full commit SHA"):
        git.checkout(history["url"], "main", None, git_cache)


def test_checkout_keeps_symlinks_and_exec_bits(git_server: GitServer, git_cache: Path) -> None:
    name = unique("links")
    url = git_server.make_repo(name, {"a/real.yaml": "kind: A\n"}, symlinks={"a/link.yaml": "real.yaml"})
    tree = git.checkout(url, git.resolve(git.ls_remote(url), "HEAD"), None, git_cache)
    assert (tree / "a/link.yaml").is_symlink() and (tree / "a/link.yaml").read_text() == "kind: A\n"


def test_cache_is_bounded_lru(git_server: GitServer, git_cache: Path) -> None:
    name = unique("lru")
    url = git_server.make_repo(name, {"f.yaml": "n: 0\n"})
    shas = [git_server.rev_parse(name, "HEAD")] + [
        git_server.commit(name, {"f.yaml": f"n: {i}\n"}, f"c{i}") for i in range(1, 4)
    ]
    cache = git.GitCache(git_cache, max_trees=2)
    first = cache.checkout(url, shas[0])
    cache.checkout(url, shas[1])
    cache.checkout(url, shas[0])  # used again: now the most recent
    cache.checkout(url, shas[2])  # evicts shas[1], the least recently used
    trees = sorted(p.name for p in first.parent.iterdir() if not p.name.startswith("."))
    assert trees == sorted([shas[0], shas[2]])
    assert (cache.checkout(url, shas[1]) / "f.yaml").read_text() == "n: 1\n"  # comes back from the bare repo


def test_private_repo_basic_auth(git_server: GitServer, git_cache: Path) -> None:
    name = unique("private")
    password = "s3cret-" + uuid.uuid4().hex
    url = git_server.make_repo(name, {"x.yaml": "a: 1\n"}, auth=("bob", password))

    with pytest.raises(GitAuthError) as anon:
        git.ls_remote(url)
    assert "requires authentication" in str(anon.value) and url in str(anon.value)

    wrong = RepoCredentials(username="bob", password="not-" + password)
    with pytest.raises(GitAuthError) as info:
        git.ls_remote(url, wrong)
    msg = str(info.value)
    assert msg == f"authentication failed for {url}: the stored credentials were refused"
    assert "not-" + password not in msg and password not in repr(info.value.args)

    good = RepoCredentials(username="bob", password=password)
    refs = git.ls_remote(url, good)
    tree = git.checkout(url, refs["HEAD"], good, git_cache)
    assert (tree / "x.yaml").read_text() == "a: 1\n"

    # a token is sent as the basic-auth password
    tname = unique("token")
    turl = git_server.make_repo(tname, {"t.yaml": "t: 1\n"}, auth=("x-access-token", "tok-" + password))
    assert "HEAD" in git.ls_remote(turl, RepoCredentials(token="tok-" + password))


def test_unreachable_server_names_the_repo(git_cache: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = f"http://127.0.0.1:{port}/gone.git"
    with pytest.raises(GitError) as info:
        git.ls_remote(url, RepoCredentials(username="u", password="pw-should-not-show"))
    assert url in str(info.value) and "pw-should-not-show" not in str(info.value)
    assert str(info.value) == f"cannot reach {url}: Connection refused"
    with pytest.raises(GitError, match="cannot reach"):
        git.checkout(url, "0123456789abcdef0123456789abcdef01234567", None, git_cache)


def test_missing_repo_on_live_server(git_server: GitServer) -> None:
    with pytest.raises(GitError) as info:
        git.ls_remote(git_server.url_for("does-not-exist"))
    assert "does-not-exist.git" in str(info.value)


def test_git_cli_clones_public_and_private(git_server: GitServer, tmp_path: Path) -> None:
    name = unique("cli")
    url = git_server.make_repo(name, {"k/a.yaml": "a: 1\n"})
    sha = git_server.commit(name, {"k/b.yaml": "b: 2\n"}, "second")
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "clone", "-q", url, str(tmp_path / "pub")], check=True, env=env)
    assert (tmp_path / "pub/k/b.yaml").read_text() == "b: 2\n"
    head = subprocess.run(
        ["git", "-C", str(tmp_path / "pub"), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert head.stdout.strip() == sha

    pname = unique("cli-private")
    purl = git_server.make_repo(pname, {"p.yaml": "p: 1\n"}, auth=("alice", "pw1"))
    denied = subprocess.run(["git", "clone", "-q", purl, str(tmp_path / "no")], env=env, capture_output=True)
    assert denied.returncode != 0
    authed = purl.replace("http://", "http://alice:pw1@")
    subprocess.run(["git", "clone", "-q", authed, str(tmp_path / "priv")], check=True, env=env)
    assert (tmp_path / "priv/p.yaml").read_text() == "p: 1\n"
    # push over HTTP works too (http-backend receive-pack behind auth)
    work = tmp_path / "priv"
    (work / "q.yaml").write_text("q: 1\n")
    genv = {
        **env,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@x",
    }
    subprocess.run(["git", "-C", str(work), "add", "q.yaml"], check=True, env=genv)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "q"], check=True, env=genv)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True, env=genv)
    refs = git.ls_remote(purl, RepoCredentials(username="alice", password="pw1"))
    assert (
        refs["refs/heads/main"]
        == subprocess.run(
            ["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    )


def test_a_fetch_larger_than_the_bound_is_refused_and_leaves_no_tree(
        git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    name = f"huge-{uuid.uuid4().hex[:6]}"
    url = git_server.make_repo(name, {"app/blob.txt": os.urandom(600_000).hex()})  # 1.2 MB, incompressible
    sha = git_server.rev_parse(name, "HEAD")
    monkeypatch.setattr(git, "MAX_FETCH_BYTES", 256 * 1024)
    with pytest.raises(git.FetchBoundError, match=r"exceeds 256 KiB; refused"):
        git.checkout(url, sha, cache_dir=tmp_path)
    assert not git.GitCache(tmp_path).tree_dir(url, sha).exists()
    monkeypatch.setattr(git, "MAX_FETCH_BYTES", 64 * 1024 * 1024)
    assert (git.checkout(url, sha, cache_dir=tmp_path) / "app/blob.txt").stat().st_size == 1_200_000
