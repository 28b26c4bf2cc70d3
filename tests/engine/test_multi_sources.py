"""spec.sources rendering (gitferry.sources) with the real helm on checked-out trees, and the
render cache's key (gitferry.rendercache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gitferry import render, rendercache, sources
from gitferry.errors import RenderError
from gitferry.model import Application, ApplicationSource

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    "values.yaml": "greeting: default\n",
    "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                         "data:\n  greeting: {{ .Values.greeting | quote }}\n",
}


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def app(srcs: list[dict[str, Any]]) -> Application:
    return Application.from_manifest({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "shop"},
        "spec": {"sources": srcs, "destination": {"server": "https://k", "namespace": "shop"}}})


def run(application: Application, roots: dict[str, Path], commit: str) -> tuple[list[dict[str, Any]], list[str]]:
    def materialize(source: ApplicationSource, revision: str) -> tuple[Path, ApplicationSource]:
        return roots[source.repo_url], source

    def render_one(root: Path, source: ApplicationSource, refs: dict[str, Path]) -> list[dict[str, Any]]:
        return render.render_source(root, source, app_name="shop", namespace="shop", refs=refs)

    return sources.render_sources(application, commit, materialize, render_one)


def test_ref_value_files_and_last_source_wins(tmp_path: Path) -> None:
    charts = tree(tmp_path / "charts", {f"web/{k}": v for k, v in CHART.items()})
    values = tree(tmp_path / "values", {
        "prod/values.yaml": "greeting: prod\n",
        "extra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {greeting: git}\n",
        "extra/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"})
    roots = {"https://git.example/charts": charts, "https://git.example/values": values}
    only_values = app([
        {"repoURL": "https://git.example/charts", "path": "web", "helm": {"valueFiles": ["$values/prod/values.yaml"]}},
        {"repoURL": "https://git.example/values", "ref": "values"},
    ])
    objects, warnings = run(only_values, roots, "a" * 40 + "," + "b" * 40)
    assert [o["data"]["greeting"] for o in objects] == ["prod"] and warnings == []  # the ref source is not rendered
    with_path = app([
        {"repoURL": "https://git.example/charts", "path": "web", "helm": {"valueFiles": ["$values/prod/values.yaml"]}},
        {"repoURL": "https://git.example/values", "ref": "values", "path": "extra"},
    ])
    objects, warnings = run(with_path, roots, "a" * 40 + "," + "b" * 40)
    assert [(o["metadata"]["name"], (o.get("data") or {}).get("greeting")) for o in objects] == [
        ("settings", "git"), ("other", None)]
    assert warnings == ["Resource /ConfigMap/shop/settings appeared 2 times among application resources."]


def test_ref_value_file_outside_its_repository_is_refused(tmp_path: Path) -> None:
    charts = tree(tmp_path / "charts", {f"web/{k}": v for k, v in CHART.items()})
    values = tree(tmp_path / "values", {"v.yaml": "greeting: x\n"})
    tree(tmp_path, {"secret.yaml": "greeting: stolen\n"})
    roots = {"https://git.example/charts": charts, "https://git.example/values": values}
    escaping = app([
        {"repoURL": "https://git.example/charts", "path": "web", "helm": {"valueFiles": ["$values/../secret.yaml"]}},
        {"repoURL": "https://git.example/values", "ref": "values"},
    ])
    with pytest.raises(RenderError, match=r"spec.sources\[0\].*resolves outside the repository"):
        run(escaping, roots, "a,b")
    missing = app([
        {"repoURL": "https://git.example/charts", "path": "web", "helm": {"valueFiles": ["$values/nope.yaml"]}},
        {"repoURL": "https://git.example/values", "ref": "values"},
    ])
    with pytest.raises(RenderError, match="does not exist in the repository of ref 'values'"):
        run(missing, roots, "a,b")


def test_pinned_revision_needs_one_revision_per_source() -> None:
    two = app([{"repoURL": "https://git.example/a", "path": "."}, {"repoURL": "https://git.example/b", "ref": "b"}])
    assert sources.pinned(["x", "y"]) == "x,y" and sources.revisions_of(two, "x,y") == ["x", "y"]
    with pytest.raises(RenderError, match="one revision for each of the 2"):
        sources.revisions_of(two, "x")
    assert sources.status_fields(two, "x,y") == {"revisions": ["x", "y"]}


def test_render_cache_key_follows_every_input() -> None:
    base = [{"repoURL": "https://charts.example", "chart": "web", "targetRevision": "1.0.0"},
            {"repoURL": "https://git.example/v", "ref": "v", "path": "m"}]
    one = app(base)

    def key(application: Application, revisions: list[str], digest: str = "sha256:1", kube: str = "v1.30.0") -> str:
        return rendercache.cache_key(rendercache.cache_inputs(application, revisions, {0: digest}, kube))

    first = key(one, ["1.0.0", "c1"])
    assert first == key(app(base), ["1.0.0", "c1"])  # stable
    assert first.startswith("render-cache/") and first.endswith(".json")
    changed = [
        key(one, ["1.0.0", "c2"]),  # another commit
        key(one, ["1.0.0", "c1"], digest="sha256:2"),  # the chart republished under the same version
        key(one, ["1.0.0", "c1"], kube="v1.31.0"),  # another cluster version
        key(app([{**base[0], "helm": {"parameters": [{"name": "a", "value": "b"}]}}, base[1]]), ["1.0.0", "c1"]),
    ]
    assert len({first, *changed}) == 5
