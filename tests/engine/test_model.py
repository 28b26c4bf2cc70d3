"""Application parsing: Argo CD manifests accepted as is, every bad field named."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
import yaml
from gitferry.errors import InvalidSpecError
from gitferry.model import (
    Application,
    AppStatus,
    HistoryEntry,
    OperationInitiator,
    OperationState,
    Repository,
    ResourceStatus,
)

GUESTBOOK = yaml.safe_load(
    """
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: HEAD
    path: guestbook
    directory:
      recurse: true
      include: '{a.yaml,b.yaml}'
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
      - CreateNamespace=true
      - PrunePropagationPolicy=background
"""
)


def problems(doc: object) -> list[str]:
    with pytest.raises(InvalidSpecError) as info:
        Application.from_manifest(doc)
    return info.value.problems


def test_argo_manifest_parses_with_argo_defaults() -> None:
    app = Application.from_manifest(GUESTBOOK)
    assert app.name == "guestbook"
    assert app.spec.source.repo_url.endswith("argocd-example-apps.git")
    assert app.spec.source.directory is not None and app.spec.source.directory.recurse is True
    assert app.automated is not None and app.automated.prune and app.automated.self_heal
    assert app.automated.allow_empty is False
    assert app.has_sync_option("CreateNamespace")
    assert app.sync_option("PrunePropagationPolicy") == "background"
    assert app.spec.revision_history_limit == 10


def test_defaults_for_minimal_manifest_and_manual_sync() -> None:
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "m"},
        "spec": {"source": {"repoURL": "https://h/r.git"}, "destination": {"name": "in-cluster"}},
    }
    app = Application.from_manifest(doc)
    assert app.spec.project == "default"
    assert app.spec.source.target_revision == "HEAD"
    assert app.automated is None  # no automated block = manual
    assert app.sync_option("CreateNamespace") is None


def test_round_trip() -> None:
    app = Application.from_manifest(GUESTBOOK)
    manifest = app.to_manifest()
    assert manifest["spec"]["source"]["repoURL"] == GUESTBOOK["spec"]["source"]["repoURL"]
    assert manifest["spec"]["syncPolicy"]["automated"]["selfHeal"] is True
    assert "server" in manifest["spec"]["destination"] and "name" not in manifest["spec"]["destination"]
    assert Application.from_manifest(manifest) == app
    # YAML round trip too (what the API hands back to users)
    assert Application.from_manifest(yaml.safe_load(yaml.safe_dump(manifest))) == app


def test_every_bad_field_is_named_by_path() -> None:
    doc = copy.deepcopy(GUESTBOOK)
    doc["metadata"]["name"] = "Not_A_Label"
    del doc["spec"]["source"]["repoURL"]
    doc["spec"]["source"]["plugin"] = {"name": "cdk8s"}  # helm/kustomize are supported now
    doc["spec"]["source"]["directory"]["recurse"] = "yes"
    doc["spec"]["destination"]["name"] = "in-cluster"  # both server and name
    doc["spec"]["foo"] = 1
    doc["spec"]["syncPolicy"]["syncOptions"].append("Bogus=true")
    doc["spec"]["revisionHistoryLimit"] = -1
    got = problems(doc)
    paths = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in got}
    assert paths["spec.destination"] == "exactly one of server or name"
    assert paths["spec.source.repoURL"] == "field required"
    assert paths["spec.foo"] == "unknown field"
    assert paths["spec.source.plugin"].startswith("not supported by gitferry")
    assert "render the manifests in CI and commit the output" in paths["spec.source.plugin"]
    assert "lower case" in paths["metadata.name"]
    assert "boolean" in paths["spec.source.directory.recurse"]
    assert "'Bogus=true'" in paths["spec.syncPolicy.syncOptions"]
    assert "spec.revisionHistoryLimit" in paths
    assert len(got) == 8


def test_destination_needs_one_of_server_or_name() -> None:
    doc = copy.deepcopy(GUESTBOOK)
    doc["spec"]["destination"] = {"namespace": "x"}
    assert problems(doc) == ["spec.destination: exactly one of server or name"]


def test_missing_top_level_and_wrong_kind() -> None:
    got = problems({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert any(p.startswith("apiVersion: ") for p in got)
    assert any(p.startswith("kind: ") for p in got)
    assert "spec: field required" in got
    assert problems(["not", "a", "mapping"]) == ["(root): must be a mapping, got list"]


def test_name_length_limit_and_list_index_paths() -> None:
    doc = copy.deepcopy(GUESTBOOK)
    doc["metadata"]["name"] = "a" * 254
    doc["spec"]["ignoreDifferences"] = [{"group": "apps"}]
    got = problems(doc)
    assert any(p.startswith("metadata.name: must be at most 253") for p in got)
    assert "spec.ignoreDifferences[0].kind: field required" in got


def test_credentials_in_repo_url_refused_without_echoing_them() -> None:
    doc = copy.deepcopy(GUESTBOOK)
    doc["spec"]["source"]["repoURL"] = "https://bob:hunter2@git.example/r.git"
    got = problems(doc)
    assert got[0].startswith("spec.source.repoURL: must not contain credentials")
    assert "hunter2" not in "\n".join(got)


def test_server_metadata_and_status_are_ignored() -> None:
    doc = copy.deepcopy(GUESTBOOK)
    doc["metadata"].update(uid="u", resourceVersion="5", creationTimestamp="2024-01-01T00:00:00Z")
    doc["status"] = {"sync": {"status": "Synced"}}
    assert Application.from_manifest(doc).name == "guestbook"


def test_status_models_use_argo_camel_case() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    st = AppStatus(
        resources=[
            ResourceStatus(kind="Deployment", group="apps", version="v1", name="web", requires_pruning=True)
        ],
        operation_state=OperationState(
            phase="Succeeded", started_at=now, initiated_by=OperationInitiator(automated=True)
        ),
        history=[HistoryEntry(id=1, revision="abc", deployed_at=now)],
        reconciled_at=now,
        sync_requested=True,
    )
    doc = st.to_json_dict()
    assert doc["resources"][0]["requiresPruning"] is True
    assert doc["resources"][0]["syncWave"] == 0
    assert doc["operationState"]["initiatedBy"] == {"automated": True}
    assert doc["history"][0]["deployedAt"] == "2024-05-01T12:00:00Z"
    assert doc["syncRequested"] is True
    assert AppStatus.model_validate(doc) == st
    assert (
        "password"
        not in Repository(url="https://h/r.git", username="bob", has_credentials=True).to_json_dict()
    )
