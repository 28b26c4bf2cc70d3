"""Render hardening with the real kubectl (kustomize) and helm: what a hostile repository
tried and must be refused with a RenderError naming the file, bounded in memory and time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gitferry import loader
from gitferry.errors import RenderError
from gitferry.model import ApplicationSource
from gitferry.render import render_source

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\ndata:\n  secret: stolen\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def source(path: str, **extra: Any) -> ApplicationSource:
    return ApplicationSource.model_validate({"repoURL": "https://git.example.com/r.git", "path": path, **extra},
                                            by_alias=True, by_name=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write(tmp_path / "outside", {"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": CM,
                                 "env.txt": "A=1\n"})
    return write(tmp_path / "repo", {"app/cm.yaml": CM.replace("outside", "inside")})


# kustomize reads its keys through Go's encoding/json: any case of any key counts.
@pytest.mark.parametrize("kustomization", [
    "RESOURCES: [../../outside]\n",
    "Resources: [../../outside]\n",
    "Bases: [../../outside]\n",
    "resources: [cm.yaml]\nComponents: [../../outside]\n",
    "resources: [cm.yaml]\nPatchesStrategicMerge: [../../outside/cm.yaml]\n",
    "resources: [cm.yaml]\nconfigMapGenerator:\n- name: g\n  FILES: [../../outside/cm.yaml]\n",
    "resources: [cm.yaml]\nSecretGenerator:\n- name: g\n  Envs: [../../outside/env.txt]\n",
    "resources: [cm.yaml]\npatches:\n- Path: ../../outside/cm.yaml\n",
    "resources: [cm.yaml]\nReplacements:\n- path: ../../outside/cm.yaml\n",
    "resources: [cm.yaml]\nOpenAPI:\n  PATH: ../../outside/cm.yaml\n",
    "resources: [cm.yaml]\nTransformers: [../../outside/cm.yaml]\n",
    "resources: [cm.yaml]\nCRDs: [../../outside/cm.yaml]\n",
])
def test_kustomize_keys_are_checked_case_insensitively(repo: Path, kustomization: str) -> None:
    write(repo, {"app/kustomization.yaml": kustomization})
    with pytest.raises(RenderError, match=r"^app/kustomization.yaml: \w+ '../../outside[^']*' resolves outside"):
        render_source(repo, source("app"), app_name="a", namespace=None)


@pytest.mark.parametrize("ref", [
    "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1",
    "git@github.com:org/repo.git//base",
    "github.com/org/repo/base?ref=main",
    "git::https://example.com/org/repo.git",
    "ssh://git@example.com/org/repo.git",
])
def test_remote_bases_in_any_case_are_refused(repo: Path, ref: str) -> None:
    write(repo, {"app/kustomization.yaml": f"Resources: ['{ref}']\n"})
    with pytest.raises(RenderError, match="remote resources are not supported by gitferry") as err:
        render_source(repo, source("app"), app_name="a", namespace=None)
    assert err.value.file == "app/kustomization.yaml"


def test_absolute_kustomize_paths_are_refused(repo: Path) -> None:
    """kustomize reads ``/x`` from the Lambda's filesystem, not from the repository."""
    write(repo, {"app/kustomization.yaml": f"resources: [{repo.parent / 'outside'}]\n"})
    with pytest.raises(RenderError, match="absolute paths are not allowed"):
        render_source(repo, source("app"), app_name="a", namespace=None)


def test_inline_transformer_file_references_are_checked(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": (
        "resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n"
        "  metadata: {name: p}\n  Path: ../../outside/cm.yaml\n")})
    with pytest.raises(RenderError, match="resolves outside"):
        render_source(repo, source("app"), app_name="a", namespace=None)


def test_helm_charts_inside_kustomize_are_refused_in_any_case(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": "HelmCharts:\n- name: x\n  repo: https://charts.example.com\n"})
    with pytest.raises(RenderError, match="not supported by gitferry"):
        render_source(repo, source("app"), app_name="a", namespace=None)


def test_inside_references_still_render(repo: Path) -> None:
    write(repo, {"app/kustomization.yaml": "RESOURCES: [cm.yaml]\n"})
    objs = render_source(repo, source("app"), app_name="a", namespace=None)
    assert [o["metadata"]["name"] for o in objs] == ["inside"]


# --------------------------------------------------------------------------- bounded parsing

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(7))


def test_yaml_alias_bomb_is_refused_naming_the_file(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 1024  # 10^8 nodes once expanded
    repo = write(tmp_path, {"app/bomb.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n"
                            + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())})
    with pytest.raises(RenderError, match=r"^app/bomb.yaml:\d+: document expands to more than \d+ nodes"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)
    assert repo


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    write(tmp_path, {"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: &l {a: b}, "
                                    "annotations: *l}\n"})
    [cm] = render_source(tmp_path, source("app"), app_name="a", namespace=None)
    assert cm["metadata"]["annotations"] == {"a": "b"}


def test_deep_json_is_a_render_error_not_a_recursion_error(tmp_path: Path) -> None:
    write(tmp_path, {"app/deep.json": "[" * 10_000 + "]" * 10_000})
    with pytest.raises(RenderError, match=r"^app/deep.json: nested deeper than \d+ levels"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_deep_yaml_is_a_render_error(tmp_path: Path) -> None:
    write(tmp_path, {"app/deep.yaml": "a: " + "[" * 500 + "]" * 500 + "\n"})
    with pytest.raises(RenderError, match=r"^app/deep.yaml:1: nested deeper than"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_too_many_documents_are_refused(tmp_path: Path) -> None:
    doc = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    write(tmp_path, {"app/many.yaml": doc * (loader.DEFAULT_LIMITS.max_documents + 1)})
    with pytest.raises(RenderError, match=r"^app/many.yaml:\d+: more than \d+ YAML documents"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_alias_bomb_in_a_kustomization_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"app/kustomization.yaml": "resources: []\ncommonAnnotations:\n"
                     + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())})
    with pytest.raises(RenderError, match=r"^app/kustomization.yaml:\d+: document expands"):
        render_source(tmp_path, source("app"), app_name="a", namespace=None)


def test_alias_bomb_in_chart_yaml_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\nannotations:\n"
                     + "".join("  " + line + "\n" for line in ALIAS_BOMB.splitlines())})
    with pytest.raises(RenderError, match=r"^chart/Chart.yaml:\d+: document expands"):
        render_source(tmp_path, source("chart", helm={}), app_name="a", namespace=None)


def test_loader_limits_are_per_call() -> None:
    with pytest.raises(loader.LoadError, match="larger than"):
        loader.load_all("a: 1\n" * 100, limits=loader.Limits(max_bytes=10))
    with pytest.raises(loader.LoadError, match="alias references"):
        loader.load_all("a: &a 1\nb: [" + ",".join(["*a"] * 20) + "]\n", limits=loader.Limits(max_aliases=10))
    with pytest.raises(loader.LoadError, match="recursive YAML alias"):
        loader.load_all("a: &a [*a]\n")
    with pytest.raises(loader.LoadError, match="not UTF-8"):
        loader.load_all(b"a: \xff\n")
    assert loader.load_all(json.dumps({"a": [1, {"b": None}]}), as_json=True) == [{"a": [1, {"b": None}]}]
    assert loader.load_all("d: 2024-01-01\n1: x\n") == [{"d": "2024-01-01", "1": "x"}]
