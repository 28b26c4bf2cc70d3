"""App of apps on the local stack: a Helm chart of Argo CD Applications (the ``apps`` chart
pattern: ``{{ .Values.spec.source.repoURL }}`` ...) rendered by a parent app become gitferry
applications owned by it, created in sync-wave order (each wave's child Healthy before the next
is created), synced by the pipeline like API-registered apps, updated, pruned (cascading when
finalized), refused when invalid or owned by someone else, and deleted (or orphaned) with the
parent. Everything through the handlers: moto server, kubesim over HTTPS, git over HTTP, real
helm and kustomize."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.story import LocalWorld, application, synced_healthy


def deployment(name: str, replicas: str = "1", image: str = "nginx:1.27") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
"""


WORKLOADS = {
    "dir-app/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dir-config\ndata:\n  key: v\n",
    "dir-app/deployment.yaml": deployment("dir-web"),
    "kustomize-app/kustomization.yaml": "resources:\n- deployment.yaml\nnamePrefix: kust-\n",
    "kustomize-app/deployment.yaml": deployment("web"),
    "helm-app/Chart.yaml": "apiVersion: v2\nname: helm-app\nversion: 0.1.0\n",
    "helm-app/values.yaml": "replicas: 1\n",
    "helm-app/templates/deployment.yaml": deployment("{{ .Release.Name }}-web", "{{ .Values.replicas }}"),
}


def child_template(name: str, path: str, wave: int, *, finalizer: bool = True, helm: bool = False) -> str:
    """One template of the apps chart, as argocd-example-apps' ``apps`` chart writes them."""
    finalizers = "  finalizers:\n  - resources-finalizer.argocd.argoproj.io\n" if finalizer else ""
    helm_block = ("    helm:\n      parameters:\n      - name: replicas\n"
                  "        value: \"{{ .Values.helmChild.replicas }}\"\n") if helm else ""
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
{finalizers}  annotations:
    argocd.argoproj.io/sync-wave: "{wave}"
spec:
  destination:
    namespace: {name}
    server: {{{{ .Values.spec.destination.server }}}}
  project: default
  source:
    path: {path}
    repoURL: {{{{ .Values.spec.source.repoURL }}}}
    targetRevision: {{{{ .Values.spec.source.targetRevision }}}}
{helm_block}  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
    - CreateNamespace=true
"""


APPS_CHART = {
    "apps/Chart.yaml": "apiVersion: v2\nname: apps\nversion: 0.1.0\n",
    "apps/values.yaml": ("spec:\n  destination:\n    server: https://kubernetes.default.svc\n"
                         "  source:\n    repoURL: https://github.com/argoproj/argocd-example-apps.git\n"
                         "    targetRevision: HEAD\nhelmChild:\n  replicas: 1\n"),
    "apps/templates/dir.yaml": child_template("child-dir", "dir-app", 0),
    "apps/templates/kustomize.yaml": child_template("child-kustomize", "kustomize-app", 1),
    "apps/templates/helm.yaml": child_template("child-helm", "helm-app", 2, finalizer=False, helm=True),
}
CHILDREN = ("child-dir", "child-kustomize", "child-helm")


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        w.register_cluster("local")
        yield w


@pytest.fixture(scope="module")
def repos(world: LocalWorld) -> dict[str, str]:
    return {"workloads": world.git.make_repo("workloads", WORKLOADS),
            "apps": world.git.make_repo("apps", APPS_CHART)}


def parent_manifest(world: LocalWorld, name: str, repo: str, workloads: str) -> dict[str, Any]:
    doc = yaml.safe_load(application(name, repo, world.kube.url, automated=True, path="apps", namespace="argocd"))
    doc["spec"]["syncPolicy"]["syncOptions"] = []
    doc["spec"]["source"]["helm"] = {"parameters": [
        {"name": "spec.source.repoURL", "value": workloads},
        {"name": "spec.destination.server", "value": world.kube.url},
    ]}
    return doc


def app_or_none(world: LocalWorld, name: str) -> dict[str, Any] | None:
    code, body = world.call("GET", f"/api/v1/applications/{name}")
    if code == 404:
        return None
    assert code == 200, body
    return body  # type: ignore[no-any-return]


def deployment_or_none(world: LocalWorld, namespace: str, name: str) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return world.deployment(namespace, name)
    except ApiException as exc:
        assert exc.status == 404
        return None


def conditions(world: LocalWorld, app: str, kind: str = "ComparisonError") -> list[str]:
    return [c["message"] for c in world.status(app).get("conditions") or [] if c["type"] == kind]


def helm_template(chart_files: dict[str, str], release: str, namespace: str, sets: dict[str, str]) -> list[Any]:
    """``helm template`` of the same chart, with the real helm binary gitferry renders with."""
    from gitferry.render import find_tool

    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in chart_files.items():
            path = Path(tmp) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        argv = [find_tool("helm"), "template", release, str(Path(tmp) / "apps"), "--namespace", namespace]
        for key, value in sets.items():
            argv += ["--set", f"{key}={value}"]
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def stored_manifests(world: LocalWorld, key: str) -> list[dict[str, Any]]:
    from gitferry.blobs import ManifestStore

    res = world.stack.resources
    return ManifestStore(res.buckets["ManifestBucket"], res.client("s3"), kms_key_id=None).get_manifests(key)


def test_children_are_created_in_wave_order_synced_and_healthy(world: LocalWorld, repos: dict[str, str]) -> None:
    world.api_ok("POST", "/api/v1/applications",
                 yaml.safe_dump(parent_manifest(world, "platform", repos["apps"], repos["workloads"])))
    seen: list[dict[str, tuple[str, str] | None]] = []

    def observe() -> bool:
        now: dict[str, tuple[str, str] | None] = {}
        for name in ("platform", *CHILDREN):
            body = app_or_none(world, name)
            status = (body or {}).get("status") or {}
            now[name] = None if body is None else ((status.get("sync") or {}).get("status", ""),
                                                   (status.get("health") or {}).get("status", ""))
        seen.append(now)
        # The wave gate: a child of wave n exists only once every child of the waves before is Healthy.
        for earlier, later in (("child-dir", "child-kustomize"), ("child-kustomize", "child-helm")):
            if now[later] is not None:
                assert now[earlier] == ("Synced", "Healthy"), f"{later} created while {earlier} is {now[earlier]}"
        return all(now[n] == ("Synced", "Healthy") for n in ("platform", *CHILDREN))

    world.until("the parent and its three children Synced and Healthy", observe, timeout=240)
    # the first observation already had a child but not all of them: the waves came one by one
    assert any(s["child-dir"] is not None and s["child-helm"] is None for s in seen)

    # the children really run: their workloads are in the cluster, rendered by directory, kustomize, helm
    assert deployment_or_none(world, "child-dir", "dir-web") is not None
    assert deployment_or_none(world, "child-kustomize", "kust-web") is not None
    assert deployment_or_none(world, "child-helm", "child-helm-web").spec.replicas == 1
    # never sent to the cluster as custom resources
    from kubernetes import client

    served = {g.name for g in client.ApisApi(world.k8s).get_api_versions().groups}
    assert "argoproj.io" not in served

    # owned by the parent, validated and stored as registered through the API
    child = world.api_ok("GET", "/api/v1/applications/child-kustomize")
    assert child["status"]["ownerApp"] == "platform"
    rows = {r["metadata"]["name"]: r for r in world.api_ok("GET", "/api/v1/applications")["items"]}
    assert rows["child-kustomize"]["status"]["ownerApp"] == "platform"  # the list says so too
    assert "ownerApp" not in rows["platform"]["status"]
    assert child["spec"]["source"] == {"repoURL": repos["workloads"], "path": "kustomize-app",
                                       "targetRevision": "HEAD"}
    assert child["spec"]["destination"] == {"server": world.kube.url, "namespace": "child-kustomize"}
    assert "gitferry.dev/tracking-id" not in (child["metadata"].get("annotations") or {})

    # the parent's resource list and tree show the children with their own status
    status = world.status("platform")
    rows = {r["name"]: r for r in status["resources"]}
    assert set(rows) == set(CHILDREN)
    for name in CHILDREN:
        assert (rows[name]["group"], rows[name]["kind"], rows[name]["namespace"]) == ("argoproj.io", "Application",
                                                                                     "argocd")
        assert rows[name]["status"] == "Synced" and rows[name]["health"]["status"] == "Healthy"
    assert [rows[n]["syncWave"] for n in CHILDREN] == [0, 1, 2]
    tree = world.api_ok("GET", "/api/v1/applications/platform/resource-tree")
    nodes = {n["name"]: n for n in tree["nodes"] if n["kind"] == "Application"}
    assert set(nodes) == set(CHILDREN)
    assert nodes["child-helm"]["health"]["status"] == "Healthy"
    assert {"name": "Sync Status", "value": "Synced"} in nodes["child-helm"]["info"]
    assert not [c for c in status.get("conditions") or [] if c["type"] != "SharedResourceWarning"]

    # what was rendered is `helm template` of the same chart, object for object
    rendered = stored_manifests(world, status["sync"]["manifests"])
    expected = helm_template(APPS_CHART, "platform", "argocd",
                             {"spec.source.repoURL": repos["workloads"], "spec.destination.server": world.kube.url})
    key = lambda o: o["metadata"]["name"]  # noqa: E731
    assert sorted(rendered, key=key) == sorted(expected, key=key)

    # the child was created by the parent (audit actor), after the wave before it was synced
    events = world.api_ok("GET", "/api/v1/audit")["items"]
    created = {e["target"]: e for e in events if e["action"] == "app.create" and e["target"] in CHILDREN}
    assert {e["actor"] for e in created.values()} == {"application:platform"}
    for earlier, later in (("child-dir", "child-kustomize"), ("child-kustomize", "child-helm")):
        history = world.api_ok("GET", f"/api/v1/applications/{earlier}/history")["items"]
        first_deploy = min(datetime.fromisoformat(h["deployedAt"]) for h in history)
        assert first_deploy < datetime.fromisoformat(created[later]["at"]), (earlier, later)


def test_child_edited_in_git_is_updated_on_the_next_commit(world: LocalWorld, repos: dict[str, str]) -> None:
    values = APPS_CHART["apps/values.yaml"].replace("replicas: 1", "replicas: 2")
    commit = world.git.commit("apps", {"apps/values.yaml": values}, "two replicas for the helm child")
    world.until("the helm child's deployment has 2 replicas",
                lambda: (d := deployment_or_none(world, "child-helm", "child-helm-web")) is not None
                and d.spec.replicas == 2, timeout=120)
    child = world.api_ok("GET", "/api/v1/applications/child-helm")
    assert [(p["name"], p["value"]) for p in child["spec"]["source"]["helm"]["parameters"]] == [("replicas", "2")]
    world.until("parent and child Synced", lambda: synced_healthy(world, "platform", commit)()
                and synced_healthy(world, "child-helm")(), timeout=120)


def test_invalid_child_is_the_parents_comparison_error_and_nothing_is_applied(world: LocalWorld,
                                                                            repos: dict[str, str]) -> None:
    bad = child_template("child-bad", "dir-app", 0).split("spec:\n  destination:")[0] + (
        "spec:\n  project: default\n  source:\n    path: dir-app\n    repoURL: {{ .Values.spec.source.repoURL }}\n")
    world.git.commit("apps", {"apps/templates/bad.yaml": bad}, "a child without a destination")
    world.until("a ComparisonError on the parent", lambda: bool(conditions(world, "platform")), timeout=60)
    [message] = conditions(world, "platform")
    assert "apps/templates/bad.yaml" in message and "child-bad" in message
    assert "spec.destination: field required" in message
    assert app_or_none(world, "child-bad") is None
    assert world.status("platform")["sync"]["status"] == "Unknown"
    world.git.commit("apps", {}, "remove the bad child", delete=["apps/templates/bad.yaml"])
    world.until("the error is gone", lambda: not conditions(world, "platform")
                and synced_healthy(world, "platform")(), timeout=60)
    assert app_or_none(world, "child-bad") is None


def test_adopting_an_app_registered_through_the_api_is_refused(world: LocalWorld, repos: dict[str, str]) -> None:
    mine = yaml.safe_load(application("taken", repos["workloads"], world.kube.url, automated=False,
                                      path="dir-app", namespace="taken"))
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(mine))
    before = world.api_ok("GET", "/api/v1/applications/taken")
    world.git.commit("apps", {"apps/templates/taken.yaml": child_template("taken", "kustomize-app", 0)},
                     "a child named like an app of the API")
    world.until("the parent names the refused child",
                lambda: any("taken" in m and "registered through the API" in m for m in conditions(world, "platform")),
                timeout=60)
    after = world.api_ok("GET", "/api/v1/applications/taken")
    assert after["spec"] == before["spec"] and "ownerApp" not in after["status"]
    row = next(r for r in world.status("platform")["resources"] if r["name"] == "taken")
    assert row["status"] == "Unknown"
    world.git.commit("apps", {}, "give up", delete=["apps/templates/taken.yaml"])
    world.until("the parent clean again", lambda: not conditions(world, "platform")
                and synced_healthy(world, "platform")(), timeout=60)
    assert world.api_ok("GET", "/api/v1/applications/taken")["spec"] == before["spec"]
    world.call("DELETE", "/api/v1/applications/taken?cascade=false")


def test_child_removed_from_git_is_deleted_with_its_objects(world: LocalWorld, repos: dict[str, str]) -> None:
    assert deployment_or_none(world, "child-dir", "dir-web") is not None
    world.git.commit("apps", {}, "retire the directory child", delete=["apps/templates/dir.yaml"])
    world.until("child-dir and its objects gone",
                lambda: app_or_none(world, "child-dir") is None
                and deployment_or_none(world, "child-dir", "dir-web") is None, timeout=120)
    world.until("the parent Synced without it", lambda: synced_healthy(world, "platform")()
                and {r["name"] for r in world.status("platform")["resources"]} == {"child-kustomize", "child-helm"},
                timeout=60)


def test_parent_deleted_with_cascade_deletes_its_children(world: LocalWorld, repos: dict[str, str]) -> None:
    code, body = world.call("DELETE", "/api/v1/applications/platform")
    assert code == 202, body
    world.until("the parent and its children gone",
                lambda: all(app_or_none(world, n) is None for n in ("platform", "child-kustomize", "child-helm")),
                timeout=120)
    # child-kustomize carried the resources finalizer: its objects went with it; child-helm did not
    world.until("the finalized child's objects gone",
                lambda: deployment_or_none(world, "child-kustomize", "kust-web") is None, timeout=60)
    assert deployment_or_none(world, "child-helm", "child-helm-web") is not None


def test_parent_deleted_without_cascade_orphans_its_children(world: LocalWorld, repos: dict[str, str]) -> None:
    files = {"apps/Chart.yaml": APPS_CHART["apps/Chart.yaml"], "apps/values.yaml": APPS_CHART["apps/values.yaml"],
             "apps/templates/solo.yaml": child_template("solo-child", "dir-app", 0)}
    repo = world.git.make_repo("solo-apps", files)
    world.api_ok("POST", "/api/v1/applications", yaml.safe_dump(parent_manifest(world, "solo", repo,
                                                                                 repos["workloads"])))
    world.until("solo and its child Synced and Healthy", lambda: synced_healthy(world, "solo")()
                and app_or_none(world, "solo-child") is not None and synced_healthy(world, "solo-child")(),
                timeout=120)
    assert world.api_ok("GET", "/api/v1/applications/solo-child")["status"]["ownerApp"] == "solo"
    code, body = world.call("DELETE", "/api/v1/applications/solo?cascade=false")
    assert code == 200, body
    child = world.api_ok("GET", "/api/v1/applications/solo-child")
    assert "ownerApp" not in child["status"]
    assert deployment_or_none(world, "solo-child", "dir-web") is not None
    world.call("DELETE", "/api/v1/applications/solo-child?cascade=false")
