"""render_directory on real directories (and on a real checkout from git)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitferry import git
from gitferry.errors import RenderError
from gitferry.model import DirectoryOptions
from gitferry.render import glob_match, render_directory

from local.gitserver import GitServer


def cm(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def names(objs: list[dict]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_multi_doc_lists_json_and_ignored_files(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "repo",
        {
            "app/b.yaml": "---\n" + cm("b1") + "---\n\n---\n# only a comment\n---\n" + cm("b2"),
            "app/a.yml": cm("a"),
            "app/c.json": '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}}',
            "app/d.yaml": "apiVersion: v1\nkind: ConfigMapList\nitems:\n- "
            + cm("d1").replace("\n", "\n  ")
            + "\n- "
            + cm("d2").replace("\n", "\n  "),
            "app/e.yaml": "apiVersion: v1\nkind: List\nitems: []\n",
            "app/README.md": "not yaml: [",
            "app/script.sh": "#!/bin/sh\n",
            "app/empty.yaml": "",
            "app/sub/deep.yaml": cm("deep"),
            "other/x.yaml": cm("x"),
        },
    )
    objs = render_directory(repo, "app")
    assert names(objs) == ["a", "b1", "b2", "c", "d1", "d2"]  # lexical file order, sub/ not recursed
    assert objs[3]["kind"] == "Service"
    # deterministic: same tree, same list
    assert render_directory(repo, "app") == objs


def test_recurse_include_exclude_with_argo_globs(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "r",
        {
            "a.yaml": cm("a"),
            "b.yaml": cm("b"),
            "c.json": '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}',
            "env-usw2/e.yaml": cm("e"),
            "nested/deeper/n.yml": cm("n"),
        },
    )
    assert names(render_directory(repo, ".", DirectoryOptions(recurse=True))) == ["a", "b", "c", "e", "n"]
    assert names(render_directory(repo, "", {"recurse": True, "include": "*.yaml"})) == ["a", "b", "e"]
    assert names(render_directory(repo, ".", {"include": "{a.yaml,c.json}"})) == ["a", "c"]
    assert names(render_directory(repo, ".", {"recurse": True, "exclude": "{c.json,env-usw2/*}"})) == [
        "a",
        "b",
        "n",
    ]
    assert names(
        render_directory(repo, ".", {"recurse": True, "include": "*.yaml", "exclude": "b.yaml"})
    ) == [
        "a",
        "e",
    ]
    assert glob_match("nested/*/n.yml", "nested/deeper/n.yml")
    assert not glob_match("{a,b}.yaml", "c.yaml")


def test_yaml_read_like_kubernetes(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "r",
        {"x.yaml": cm("x") + "data:\n  date: 2024-01-01\n  n: 1.50\n"},
    )
    (obj,) = render_directory(repo)
    assert obj["data"] == {"date": "2024-01-01", "n": 1.5}  # the date stays a string (JSON-safe)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "r", {"app/ok.yaml": cm("ok"), "app/bad.yaml": cm("b") + "data:\n  k: [unclosed\n  j: 2\n"}
    )
    with pytest.raises(RenderError) as info:
        render_directory(repo, "app")
    assert info.value.file == "app/bad.yaml"
    assert info.value.line in (6, 7)  # yaml reports where it noticed: the line after the bad flow sequence
    assert str(info.value).startswith(f"app/bad.yaml:{info.value.line}: invalid YAML")

    repo2 = write(tmp_path / "r2", {"p/bad.json": '{\n  "apiVersion": "v1",\n  "kind": \n}'})
    with pytest.raises(RenderError) as info2:
        render_directory(repo2, "p")
    assert (info2.value.file, info2.value.line) == ("p/bad.json", 4)

    repo3 = write(tmp_path / "r3", {"t.yml": "a: 1\n\tb: 2\n"})  # tab indentation
    with pytest.raises(RenderError) as info3:
        render_directory(repo3)
    assert info3.value.file == "t.yml" and info3.value.line == 2


def test_objects_must_be_kubernetes_objects(tmp_path: Path) -> None:
    cases = {
        "no-kind.yaml": (cm("a") + "---\napiVersion: v1\nmetadata:\n  name: b\n", "document 1: missing kind"),
        "no-name.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "document 0: missing metadata.name",
        ),
        "scalar.yaml": ("just a string\n", "document 0: expected a Kubernetes object (a mapping), got str"),
        "list-item.yaml": (
            "apiVersion: v1\nkind: List\nitems:\n- {kind: X}\n",
            "document 0, item 0: missing apiVersion, metadata.name",
        ),
    }
    for fname, (text, message) in cases.items():
        repo = write(tmp_path / fname.removesuffix(".yaml"), {fname: text})
        with pytest.raises(RenderError) as info:
            render_directory(repo)
        assert str(info.value) == f"{fname}: {message}"
    # a hook with generateName is fine (Argo CD users write hook Jobs this way)
    hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  annotations:\n    argocd.argoproj.io/hook: PreSync\n"
    assert render_directory(write(tmp_path / "hook", {"h.yaml": hook}))[0]["kind"] == "Job"


def test_path_escape_refused(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {"app/a.yaml": cm("a")})
    write(tmp_path, {"outside/secret.yaml": cm("stolen")})
    for bad in ("../outside", "app/../../outside", "/etc"):
        with pytest.raises(RenderError, match="outside the repository|relative"):
            render_directory(repo, bad)
    os.symlink("../../outside", repo / "app" / "escape")  # a symlinked *path* that leaves the repo
    with pytest.raises(RenderError, match="outside the repository"):
        render_directory(repo, "app/escape")
    with pytest.raises(RenderError, match="does not exist"):
        render_directory(repo, "missing")


def test_symlink_escape_refused_and_inside_links_followed(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {"app/a.yaml": cm("a"), "shared/common.yaml": cm("common")})
    write(tmp_path, {"outside.yaml": cm("stolen")})
    os.symlink("../shared/common.yaml", repo / "app" / "common.yaml")
    os.symlink("missing.yaml", repo / "app" / "dangling.yaml")
    assert names(render_directory(repo, "app")) == ["a", "common"]
    os.symlink(str(tmp_path / "outside.yaml"), repo / "app" / "z.yaml")
    with pytest.raises(RenderError) as info:
        render_directory(repo, "app")
    assert info.value.file == "app/z.yaml" and "outside the repository" in str(info.value)
    assert "stolen" not in str(info.value)


def test_jsonnet_files_render_and_libsonnet_is_only_imported(tmp_path: Path) -> None:
    repo = write(tmp_path / "r", {"a.yaml": cm("a"), "main.jsonnet": '(import "lib.libsonnet").cm("j")',
                                  "lib.libsonnet": '{ cm(n):: {apiVersion: "v1", kind: "ConfigMap", metadata: {name: n}} }'})
    assert names(render_directory(repo)) == ["a", "j"]
    assert names(render_directory(repo, ".", {"exclude": "*.jsonnet"})) == ["a"]


def test_render_a_real_checkout_with_an_escaping_symlink(git_server: GitServer, git_cache: Path) -> None:
    name = f"render-{os.getpid()}-{id(git_cache) % 10000}"
    url = git_server.make_repo(
        name,
        {"guestbook/cm.yaml": cm("guestbook"), "guestbook/svc.yaml": cm("svc")},
        symlinks={"guestbook/passwd.yaml": "../../../../../../etc/passwd"},
    )
    tree = git.checkout(url, git.resolve(git.ls_remote(url), "HEAD"), None, git_cache)
    with pytest.raises(RenderError, match="guestbook/passwd.yaml: illegal symlink"):
        render_directory(tree, "guestbook")
    sha = git_server.commit(name, {}, "drop the link", delete=["guestbook/passwd.yaml"])
    tree = git.checkout(url, sha, None, git_cache)
    assert names(render_directory(tree, "guestbook")) == ["guestbook", "svc"]
