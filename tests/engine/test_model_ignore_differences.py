"""spec.ignoreDifferences at registration: what would fail every diff is refused, field named."""

from __future__ import annotations

import pytest
from gitferry.errors import InvalidSpecError
from gitferry.model import Application


def manifest(rule: dict) -> dict:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "shop"},
            "spec": {"source": {"repoURL": "https://git.example/shop.git", "path": "."},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                     "ignoreDifferences": [{"group": "apps", "kind": "Deployment"}, rule]}}


def problems(rule: dict) -> list[str]:
    with pytest.raises(InvalidSpecError) as info:
        Application.from_manifest(manifest(rule))
    return [ln.strip() for ln in str(info.value).splitlines()[1:]]


def test_valid_rules_are_kept() -> None:
    rule = {"kind": "Deployment", "group": "apps", "jsonPointers": ["/spec/replicas"],
            "jqPathExpressions": ['.spec.template.spec.containers[] | select(.name == "istio-proxy")', ".spec.x[]?"],
            "managedFieldsManagers": ["kube-controller-manager"]}
    app = Application.from_manifest(manifest(rule))
    kept = app.spec.ignore_differences[1]
    assert kept.jq_path_expressions == rule["jqPathExpressions"]
    assert kept.managed_fields_managers == ["kube-controller-manager"]


def test_invalid_jq_expressions_are_refused_naming_each() -> None:
    got = problems({"kind": "Deployment", "jqPathExpressions": [".spec.replicas", ".spec[", "  ", "." * 2000]})
    assert got == [
        'spec.ignoreDifferences[1].jqPathExpressions[1]: invalid jq expression ".spec[": syntax error, '
        "unexpected end of file at <top-level>, line 1, column 6",
        "spec.ignoreDifferences[1].jqPathExpressions[2]: empty jq expression",
        "spec.ignoreDifferences[1].jqPathExpressions[3]: jq expression longer than 1024 characters",
    ]


def test_json_pointer_without_leading_slash_is_refused() -> None:
    got = problems({"kind": "Deployment", "jsonPointers": ["/spec/replicas", "spec/replicas"]})
    assert got == ["spec.ignoreDifferences[1].jsonPointers: 'spec/replicas': a JSON pointer starts with '/' (RFC 6901)"]
