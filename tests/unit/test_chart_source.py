"""The Application model for charts from Helm repositories: what is accepted, what is
refused (with a message naming the fields), and that a stored document reads back."""

from __future__ import annotations

from typing import Any

import pytest
from gitferry.errors import InvalidSpecError
from gitferry.messages import ApplyRequest, DiffRequest, RenderRequest
from gitferry.model import Application


def manifest(source: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "web"},
            "spec": {"source": source, "destination": {"server": "https://k8s", "namespace": "web"}}}


@pytest.mark.parametrize("revision", ["1.2.3", "1.2.*", ">=1.0.0 <2.0.0", "^1.2", "~1.2.0", ">=1.0.0, <2.0.0 || 3.x"])
def test_chart_source_accepted_and_reads_back(revision: str) -> None:
    app = Application.from_manifest(manifest({"repoURL": "https://charts.example.com", "chart": "nginx",
                                              "targetRevision": revision, "helm": {"releaseName": "r"}}))
    assert app.spec.source.chart == "nginx"
    stored = app.to_manifest()
    assert "path" not in stored["spec"]["source"]  # the default path is not written back ...
    assert Application.from_manifest(stored) == app  # ... so the stored document reads back


@pytest.mark.parametrize(("extra", "expected"), [
    ({"path": "charts/nginx"}, "exactly one of path"),
    ({"kustomize": {}}, "kustomize cannot be used with chart"),
    ({"directory": {"recurse": True}}, "directory cannot be used with chart"),
    ({"targetRevision": "main"}, "targetRevision: invalid version constraint 'main'"),
    ({"targetRevision": None}, "targetRevision is required with chart"),
])
def test_chart_source_refusals_name_the_fields(extra: dict[str, Any], expected: str) -> None:
    source: dict[str, Any] = {"repoURL": "https://charts.example.com", "chart": "nginx", "targetRevision": "1.0.0"}
    source.update(extra)
    if extra.get("targetRevision", "") is None:
        del source["targetRevision"]
    with pytest.raises(InvalidSpecError) as exc:
        Application.from_manifest(manifest(source))
    assert any(p.startswith("spec.source") and expected in p for p in exc.value.problems), exc.value.problems


def test_git_sources_unchanged() -> None:
    app = Application.from_manifest(manifest({"repoURL": "https://git.example.com/x.git", "path": "apps"}))
    assert app.spec.source.chart is None and app.to_manifest()["spec"]["source"]["path"] == "apps"


def test_messages_carry_chart_versions_and_shas() -> None:
    for commit in ("1", "1.2.0", "0123456789abcdef0123456789abcdef01234567"):
        assert RenderRequest(app="web", commit=commit).commit == commit
        assert DiffRequest(app="web", commit=commit, manifests="k").commit == commit
        assert ApplyRequest(app="web", commit=commit, manifests="k").commit == commit
    with pytest.raises(ValueError):
        RenderRequest(app="web", commit="")
