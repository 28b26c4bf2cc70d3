"""End to end: multi-source Applications (``spec.sources``) as Argo CD users write them, and the
render cache, through the handlers on the local stack.

A chart from a Helm repository takes its values from a second Git repository (``ref: values``,
``$values/...``): what gitferry renders is what ``helm template`` renders with that values
file, object for object; both revisions are shown in status and history; a push to the values
repository is synced on the next tick, and a rollback restores both revisions."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitferry import render

from local.helmrepo import HelmRepoServer, helm_binary
from local.story import LocalWorld

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}-web}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-web}
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
"""
CHART = {"values.yaml": "image: nginx:1.25\nreplicas: 1\ngreeting: default\n",
         "templates/deployment.yaml": DEPLOYMENT, "templates/configmap.yaml": CONFIGMAP}
PROD_VALUES = "replicas: 2\ngreeting: hello from prod\n"


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        yield w


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRepoServer]:
    with HelmRepoServer(tmp_path_factory.mktemp("helm-repo")) as repo:
        repo.add_chart("web", "1.0.0", CHART)
        yield repo


def multi_app(name: str, server: str, namespace: str, sources: list[dict[str, Any]], *,
              automated: bool = True) -> str:
    policy: dict[str, Any] = {"syncOptions": ["CreateNamespace=true"]}
    if automated:
        policy["automated"] = {"prune": True, "selfHeal": True}
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default", "sources": sources,
                 "destination": {"server": server, "namespace": namespace}, "syncPolicy": policy},
    }, sort_keys=False)


def helm_template(chart_tgz: Path, release: str, namespace: str, values: str) -> list[dict[str, Any]]:
    """What the real helm renders for the chart with ``values`` (the comparison's reference)."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "values.yaml").write_text(values)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "HELM_CACHE_HOME": f"{tmp}/c",
               "HELM_CONFIG_HOME": f"{tmp}/g", "HELM_DATA_HOME": f"{tmp}/d"}
        out = subprocess.run([helm_binary(), "template", release, str(chart_tgz), "--namespace", namespace,
                              "--values", f"{tmp}/values.yaml"], env=env, capture_output=True, text=True,
                             check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def rendered(world: LocalWorld, app: str) -> list[dict[str, Any]]:
    """The manifests gitferry rendered for ``app`` (the S3 blob its last comparison used)."""
    from gitferry.blobs import ManifestStore

    res = world.stack.resources
    key = world.status(app)["sync"]["manifests"]
    return ManifestStore(res.physical["ManifestBucket"], client=res.client("s3")).get_manifests(key)


def by_identity(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def revisions_are(world: LocalWorld, app: str, revisions: list[str], replicas: int, namespace: str) -> Any:
    def check() -> bool:
        st = world.status(app)
        sync = st.get("sync") or {}
        if sync.get("revisions") != revisions or sync.get("status") != "Synced":
            return False
        if (st.get("health") or {}).get("status") != "Healthy":
            return False
        return bool(world.deployment(namespace, f"{app}-web").spec.replicas == replicas)
    return check


def test_chart_with_values_from_a_ref_source(world: LocalWorld, charts: HelmRepoServer) -> None:
    server = world.register_cluster("local")
    values_repo = world.git.make_repo("shop-values", {"envs/prod/values.yaml": PROD_VALUES})
    first_sha = world.git.rev_parse("shop-values", "HEAD")
    sources = [
        {"repoURL": charts.url, "chart": "web", "targetRevision": "1.0.0",
         "helm": {"valueFiles": ["$values/envs/prod/values.yaml"]}},
        {"repoURL": values_repo, "targetRevision": "HEAD", "ref": "values"},
    ]
    world.api_ok("POST", "/api/v1/applications", multi_app("shop", server, "shop", sources))
    world.tick()
    first = ["1.0.0", first_sha]
    world.until("Synced and Healthy at both revisions", revisions_are(world, "shop", first, 2, "shop"))

    # object for object what helm renders with the same values file
    expected = helm_template(charts.root / "web-1.0.0.tgz", "shop", "shop", PROD_VALUES)
    got = rendered(world, "shop")
    assert by_identity(got) == by_identity(expected)
    assert len(got) == len(expected) == 2
    cm = next(o for o in got if o["kind"] == "ConfigMap")
    assert cm["data"]["greeting"] == "hello from prod"

    status = world.status("shop")
    assert status["sync"]["revision"] == ",".join(first)
    assert [s.get("ref") for s in status["sync"]["comparedTo"]["sources"]] == [None, "values"]
    assert status["operationState"]["syncResult"]["revisions"] == first
    assert not [c for c in status.get("conditions") or [] if c["type"].endswith("Error")]
    history = world.api_ok("GET", "/api/v1/applications/shop/history")["items"]
    assert [h["revisions"] for h in history] == [first]

    # a push to the values repository: synced on the next tick (one ls-remote per repo per tick)
    second_sha = world.git.commit("shop-values", {"envs/prod/values.yaml": "replicas: 3\ngreeting: three\n"})
    world.tick()
    second = ["1.0.0", second_sha]
    world.until("the values push synced", revisions_are(world, "shop", second, 3, "shop"))
    history = world.api_ok("GET", "/api/v1/applications/shop/history")["items"]
    assert [h["revisions"] for h in history] == [first, second]

    # rollback (automation off, as Argo CD requires) restores both revisions of entry 1, with the
    # two sources recorded with it although the spec has three by now
    world.api_ok("POST", "/api/v1/applications?upsert=true", multi_app(
        "shop", server, "shop", [*sources, {"repoURL": values_repo, "targetRevision": "HEAD", "ref": "more"}],
        automated=False))
    answer = world.api_ok("POST", f"/api/v1/applications/shop/rollback/{history[0]['id']}")
    assert answer["revision"] == ",".join(first)
    world.until("rolled back to both first revisions", revisions_are(world, "shop", first, 2, "shop"), tick=False)
    op = world.status("shop")["operationState"]
    assert op["phase"] == "Succeeded" and op["syncResult"]["revisions"] == first
    assert [s.get("ref") for s in op["syncResult"]["sources"]] == [None, "values"]
    assert [s.get("ref") for s in world.api_ok("GET", "/api/v1/applications/shop/history")["items"][-1]["sources"]
            ] == [None, "values"]


def test_render_cache_hit_and_hard_refresh(world: LocalWorld, charts: HelmRepoServer) -> None:
    """A refresh of unchanged inputs runs no helm; a hard refresh renders again."""
    server = world.register_cluster("local")
    values_repo = world.git.make_repo("cache-values", {"values.yaml": "replicas: 1\ngreeting: cached\n"})
    sources = [
        {"repoURL": charts.url, "chart": "web", "targetRevision": "1.0.0", "helm": {"valueFiles": ["$v/values.yaml"]}},
        {"repoURL": values_repo, "targetRevision": "HEAD", "ref": "v"},
    ]
    world.api_ok("POST", "/api/v1/applications", multi_app("cached", server, "cached", sources))
    world.until("Synced", lambda: (world.status("cached").get("sync") or {}).get("status") == "Synced")
    world.settle()

    def refreshed(query: str) -> tuple[int, str]:
        before_runs = render.tool_runs()
        before = world.status("cached")["reconciledAt"]
        world.api_ok("POST", f"/api/v1/applications/cached/refresh{query}")
        world.until("compared again", lambda: world.status("cached")["reconciledAt"] != before, tick=False)
        return render.tool_runs() - before_runs, world.status("cached")["sync"]["manifests"]

    key = world.status("cached")["sync"]["manifests"]
    runs, again = refreshed("")
    assert runs == 0 and again == key  # a cache hit: compared again, nothing rendered
    runs, again = refreshed("?hard=true")
    assert runs == 1 and again == key  # rendered again (one helm template), same output
    status, answer = world.call("POST", "/api/v1/applications/cached/refresh?hard=maybe")
    assert status == 400 and "hard" in str(answer)


def test_repeated_object_last_source_wins(world: LocalWorld, charts: HelmRepoServer) -> None:
    """Argo CD's rule: an object produced by two sources is taken from the last one, with a
    RepeatedResourceWarning; a Git source with ref and a path is rendered too."""
    server = world.register_cluster("local")
    override = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup-settings"},
                               "data": {"greeting": "from git"}})
    repo = world.git.make_repo("dup-overrides", {"values.yaml": "greeting: from values\n",
                                                 "manifests/settings.yaml": override})
    sources = [
        {"repoURL": charts.url, "chart": "web", "targetRevision": "1.0.0", "helm": {"valueFiles": ["$o/values.yaml"]}},
        {"repoURL": repo, "targetRevision": "HEAD", "ref": "o", "path": "manifests"},
    ]
    world.api_ok("POST", "/api/v1/applications", multi_app("dup", server, "dup", sources))
    world.until("Synced", lambda: (world.status("dup").get("sync") or {}).get("status") == "Synced")
    objects = rendered(world, "dup")
    assert [o["data"]["greeting"] for o in objects if o["kind"] == "ConfigMap"] == ["from git"]
    warnings = [c["message"] for c in world.status("dup").get("conditions") or []
                if c["type"] == "RepeatedResourceWarning"]
    assert warnings == ["Resource /ConfigMap/dup/dup-settings appeared 2 times among application resources."]


def test_multi_source_refusals(world: LocalWorld, charts: HelmRepoServer) -> None:
    server = world.register_cluster("local")
    both = yaml.safe_load(multi_app("both", server, "both", [{"repoURL": charts.url, "chart": "web",
                                                               "targetRevision": "1.0.0"}]))
    both["spec"]["source"] = {"repoURL": charts.url, "chart": "web", "targetRevision": "1.0.0"}
    status, answer = world.call("POST", "/api/v1/applications", yaml.safe_dump(both))
    assert status == 400 and "spec.source or spec.sources, not both" in str(answer), answer
    unknown_ref = multi_app("noref", server, "noref", [
        {"repoURL": charts.url, "chart": "web", "targetRevision": "1.0.0",
         "helm": {"valueFiles": ["$nowhere/values.yaml"]}}])
    status, answer = world.call("POST", "/api/v1/applications", unknown_ref)
    assert status == 400 and "no source in spec.sources has ref 'nowhere'" in str(answer), answer
    plugin = multi_app("plugin", server, "plugin", [{"repoURL": charts.url, "path": ".", "plugin": {"name": "x"}}])
    status, answer = world.call("POST", "/api/v1/applications", plugin)
    assert status == 400 and "not supported by gitferry" in str(answer) and "commit the output" in str(answer)


def test_one_read_per_repository_per_tick_shared_by_sources_and_apps(world: LocalWorld,
                                                                   charts: HelmRepoServer) -> None:
    """Two multi-source apps on the same chart repository and the same values repository (one
    of them also a directory source of its own): the poll reads each repository once."""
    server = world.register_cluster("local")
    repo = world.git.make_repo("shared-values", {"values.yaml": "replicas: 1\n",
                                                 "extra/cm.yaml": "apiVersion: v1\nkind: ConfigMap\n"
                                                                  "metadata: {name: extra}\n"})
    for name in ("share-a", "share-b"):
        sources = [
            {"repoURL": charts.url, "chart": "web", "targetRevision": "1.0.0", "helm": {"valueFiles": ["$v/values.yaml"]}},
            {"repoURL": repo, "targetRevision": "HEAD", "ref": "v"},
            {"repoURL": repo, "targetRevision": "HEAD", "path": "extra"},
        ]
        world.api_ok("POST", "/api/v1/applications", multi_app(name, server, name, sources))
    world.until("both synced", lambda: all((world.status(n).get("sync") or {}).get("status") == "Synced"
                                           for n in ("share-a", "share-b")))
    git_before, helm_before = len(world.git.requests_for("shared-values")), len(charts.requests)
    world.stack.tick("PollFunction")  # the poll alone, before what it causes is delivered
    ls_remotes = [r for r in world.git.requests_for("shared-values")[git_before:] if r[1].endswith("/info/refs")]
    indexes = [p for p in charts.requests[helm_before:] if p.endswith("index.yaml")]
    assert len(ls_remotes) == 1 and indexes == ["/index.yaml"]
    world.settle()
    sha = world.git.rev_parse("shared-values", "HEAD")
    assert world.status("share-a")["sync"]["revisions"] == ["1.0.0", sha, sha]
