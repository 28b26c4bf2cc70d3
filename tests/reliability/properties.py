"""The properties of the input parsers, shared by the hypothesis tests (test_properties.py) and
the coverage-guided fuzz targets (fuzz.py): each takes arbitrary input and fails (raises
AssertionError or an unexpected exception) only when gitferry misbehaves."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from gitferry import diff, render, webhooks
from gitferry.errors import InvalidSpecError, RenderError
from gitferry.model import Application

BASE_APP: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "guestbook", "namespace": "argocd"},
    "spec": {
        "project": "default",
        "source": {"repoURL": "https://git.example/org/apps.git", "targetRevision": "HEAD", "path": "guestbook"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"],
                       "retry": {"limit": 2, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}},
        "ignoreDifferences": [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}],
        "revisionHistoryLimit": 5,
    },
}

#: where mutations of the Application land (so they hit real fields, not only unknown ones)
APP_PATHS: list[tuple[str, ...]] = [
    (), ("metadata",), ("metadata", "name"), ("spec",), ("spec", "project"), ("spec", "source"),
    ("spec", "source", "repoURL"), ("spec", "source", "targetRevision"), ("spec", "source", "path"),
    ("spec", "source", "helm"), ("spec", "source", "kustomize"), ("spec", "source", "directory"),
    ("spec", "source", "chart"), ("spec", "destination"), ("spec", "destination", "server"),
    ("spec", "destination", "name"), ("spec", "syncPolicy"), ("spec", "syncPolicy", "automated"),
    ("spec", "syncPolicy", "syncOptions"), ("spec", "syncPolicy", "retry"),
    ("spec", "syncPolicy", "retry", "backoff"), ("spec", "ignoreDifferences"), ("spec", "revisionHistoryLimit"),
    ("spec", "sources"), ("kind",), ("apiVersion",),
]

_LOCATION = re.compile(r"^.+?: \S", re.S)  # "<field path>: <message>" (a key may be " " or hold ":")


def check_application(mutations: list[tuple[tuple[str, ...], Any]]) -> str:
    """Apply ``mutations`` (path -> value) to a valid Application; parsing must give an
    Application that round-trips or InvalidSpecError whose every problem names a field."""
    doc: Any = copy.deepcopy(BASE_APP)
    for path, value in mutations:
        if not path:
            doc = value
            continue
        node = doc
        for key in path[:-1]:
            if not isinstance(node, dict) or not isinstance(node.get(key), dict):
                break
            node = node[key]
        else:
            if isinstance(node, dict):
                node[path[-1]] = value
    try:
        app = Application.from_manifest(doc)
    except InvalidSpecError as exc:
        assert exc.problems, "InvalidSpecError without problems"
        for problem in exc.problems:
            assert _LOCATION.match(problem), f"problem without a field location: {problem!r}"
        return "refused"
    again = Application.from_manifest(app.to_manifest())
    assert again == app, "an accepted Application does not round-trip"
    return "accepted"


def check_manifest_text(text: str, name: str = "manifests.yaml") -> str:
    """The YAML/JSON manifest loader: documents, or a RenderError naming the file."""
    try:
        docs = render._parse(text, name)
    except RenderError as exc:
        assert name in str(exc), f"RenderError does not name the file: {exc}"
        return "refused"
    assert isinstance(docs, list)
    json.dumps(docs)  # what is loaded must be storable (JSON, string keys)
    return "loaded"


PROVIDER_HEADERS: dict[str, dict[str, str]] = {
    "github": {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"},
    "gitea": {"X-Gitea-Event": "push", "X-Gitea-Delivery": "d-1"},
    "gitlab": {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "d-1"},
    "bitbucket": {"X-Request-UUID": "d-1"},
    "bitbucket-server": {"X-Request-Id": "d-1"},
}


def check_webhook(provider: str, body: bytes, headers: dict[str, str] | None = None) -> str:
    """A (signature-verified) push body: a PushEvent or a 400 WebhookError, never a crash."""
    try:
        event = webhooks.parse_push(provider, headers if headers is not None else PROVIDER_HEADERS[provider], body)
    except webhooks.WebhookError as exc:
        assert exc.status in (400, 404), exc.status
        return "refused"
    assert isinstance(event.ref, str) and isinstance(event.commit, str)
    assert all(isinstance(u, str) for u in event.repo_urls)
    for url in event.repo_urls:
        webhooks.normalise_repo_url(url)
    return "parsed"


SEEDS: dict[str, bytes] = {
    "application": b"\x05" + json.dumps(BASE_APP["spec"]["syncPolicy"]).encode(),
    "yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n---\nkind: List\nitems: []\n",
    "json": b'{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}',
    "webhook": b"\x00" + json.dumps({"ref": "refs/heads/main", "after": "a" * 40, "repository": {
        "clone_url": "https://git.example/o/r.git"}, "push": {"changes": [{"new": {"name": "main", "type": "branch",
                                                                                  "target": {"hash": "b" * 40}}}]},
        "changes": [{"refId": "refs/heads/main", "toHash": "c" * 40}]}).encode(),
    "diff": b'{"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"replicas": 2, "template": {"spec": '
            b'{"containers": [{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}',
}


def check_diff(obj: dict[str, Any]) -> str:
    """normalise is idempotent, and an object compared with itself has no drift."""
    once = diff.normalise(obj)
    assert diff.normalise(once) == once, "normalise is not idempotent"
    result = diff.compare_one_offline(obj, copy.deepcopy(obj))
    assert result.status == diff.SYNCED, (result.status, result.changed_paths)
    return "synced"
