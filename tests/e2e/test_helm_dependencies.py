"""End to end: a chart in Git whose ``Chart.yaml`` depends on a chart from a Helm HTTP repository
(with basic auth) and one from an OCI registry (with basic auth), built by ``helm dependency
build`` with the registered credentials; ``Chart.lock`` honoured (pinned versions; a lock out of
sync with Chart.yaml is a ComparisonError naming Chart.lock); a second render of the same inputs
fetches nothing. Rendered objects equal plain ``helm dependency build && helm template``."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.helmrepo import HelmRepoServer, helm_binary
from local.ociregistry import OciRegistry, helm_push, package_chart
from local.story import LocalWorld, synced_healthy
from tests.e2e.test_oci import application, by_identity, manifests_of

SUB = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
data:
  version: {{ .Chart.Version | quote }}
  colour: {{ .Values.colour | default "none" | quote }}
"""
PARENT = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-parent
data:
  common: {{ .Values.common.colour | quote }}
"""
HTTP_AUTH = ("charts-user", "charts-pw")
OCI_AUTH = ("oci-user", "oci-pw")


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("render-caches")  # this module's caches start empty


@pytest.fixture(scope="module")
def world(caches: Path) -> Iterator[LocalWorld]:
    with LocalWorld(extra_env={"HELM_DEPS_CACHE_DIR": str(caches / "deps"), "OCI_CACHE_DIR": str(caches / "oci"),
                               "HELM_CACHE_DIR": str(caches / "helm")}) as w:
        yield w


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HelmRepoServer, OciRegistry]]:
    with HelmRepoServer(tmp_path_factory.mktemp("deps-repo"), auth=HTTP_AUTH) as repo, \
            OciRegistry(tmp_path_factory.mktemp("deps-oci"), auth=OCI_AUTH) as reg:
        for version in ("1.0.0", "1.1.0"):
            repo.add_chart("common", version, {"templates/cm.yaml": SUB})
        for version in ("0.3.0", "0.4.0"):
            helm_push(reg, package_chart("lib", version, {"templates/cm.yaml": SUB}), "deps")
        yield repo, reg


def chart_files(repo: HelmRepoServer, reg: OciRegistry, common: str = "^1.0") -> dict[str, str]:
    return {
        "app/Chart.yaml": yaml.safe_dump({"apiVersion": "v2", "name": "app", "version": "0.1.0", "dependencies": [
            {"name": "common", "version": common, "repository": repo.url},
            {"name": "lib", "version": "0.3.x", "repository": f"oci://{reg.host}/deps"},
        ]}),
        "app/values.yaml": "common:\n  colour: blue\nlib:\n  colour: green\n",
        "app/templates/cm.yaml": PARENT,
    }


def plain_helm(files: dict[str, str], repo: HelmRepoServer, reg: OciRegistry, release: str,
               namespace: str) -> tuple[list[dict[str, Any]], str]:
    """What a person gets with ``helm dependency build && helm template`` (logged in with helm)."""
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(text)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": tmp, "HELM_CACHE_HOME": f"{tmp}/c",
               "HELM_CONFIG_HOME": f"{tmp}/f", "HELM_DATA_HOME": f"{tmp}/d",
               "HELM_REGISTRY_CONFIG": f"{tmp}/registry.json"}
        helm = helm_binary()

        def run(*args: str) -> str:
            return subprocess.run([helm, *args], env=env, capture_output=True, text=True, check=True,
                                  timeout=120).stdout

        run("repo", "add", "common", repo.url, "--username", HTTP_AUTH[0], "--password", HTTP_AUTH[1])
        run("registry", "login", reg.host, "--plain-http", "--username", OCI_AUTH[0], "--password", OCI_AUTH[1])
        run("dependency", "build", f"{tmp}/app", "--plain-http")
        out = run("template", release, f"{tmp}/app", "--namespace", namespace, "--include-crds")
        lock = (Path(tmp) / "app" / "Chart.lock").read_text()
    return [d for d in yaml.safe_load_all(out) if d], lock


def register(world: LocalWorld, repo: HelmRepoServer, reg: OciRegistry) -> None:
    world.api_ok("POST", "/api/v1/repositories?upsert=true",
                 {"url": repo.url, "type": "helm", "username": HTTP_AUTH[0], "password": HTTP_AUTH[1]})
    world.api_ok("POST", "/api/v1/repositories?upsert=true",
                 {"url": f"oci://{reg.host}", "type": "oci", "plainHttp": True,
                  "username": OCI_AUTH[0], "password": OCI_AUTH[1]})


def git_app(world: LocalWorld, name: str, files: dict[str, str], server: str) -> str:
    url = world.git.make_repo(name, files)
    world.api_ok("POST", "/api/v1/applications", application(
        name, {"repoURL": url, "path": "app", "targetRevision": "HEAD"}, server, name))
    return url


def test_dependencies_from_helm_repo_and_oci_registry(world: LocalWorld,
                                                      servers: tuple[HelmRepoServer, OciRegistry]) -> None:
    repo, reg = servers
    server = world.register_cluster("local")
    register(world, repo, reg)
    files = chart_files(repo, reg)
    git_app(world, "deps", files, server)
    world.until("Synced and Healthy", synced_healthy(world, "deps"))
    expected, _lock = plain_helm(files, repo, reg, "deps", "deps")
    got = manifests_of(world, "deps")
    assert by_identity(got) == by_identity(expected)
    versions = {o["metadata"]["name"]: o["data"].get("version") for o in got}
    assert versions == {"deps-parent": None, "deps-common": "1.1.0", "deps-lib": "0.3.0"}
    assert repo.requests and set(repo.requests) <= set(repo.requests_with_auth)  # helm used the registered login
    assert "charts-pw" not in json.dumps(world.status("deps")) and "oci-pw" not in json.dumps(world.status("deps"))

    # a second render of the same inputs (a refresh) fetches nothing from either server
    from gitferry import helmdeps

    before_http, before_oci, builds = len(repo.requests), len(reg.requests()), helmdeps.BUILDS
    assert builds >= 1  # the first render did build (the counter is the one the render stage bumps)
    reconciled = world.status("deps")["reconciledAt"]
    world.api_ok("POST", "/api/v1/applications/deps/refresh")
    world.settle()
    assert world.status("deps")["sync"]["status"] == "Synced"
    assert world.status("deps")["reconciledAt"] != reconciled  # it was rendered and compared again
    assert helmdeps.BUILDS == builds  # no helm dependency build ran
    assert repo.requests[before_http:] == []
    assert [r for r in reg.requests()[before_oci:] if "/deps/lib/" in r] == []


def test_chart_lock_pins_versions_and_a_stale_lock_is_named(world: LocalWorld,
                                                            servers: tuple[HelmRepoServer, OciRegistry]) -> None:
    repo, reg = servers
    server = world.register_cluster("local")
    register(world, repo, reg)
    files = chart_files(repo, reg)
    # a lock made when common 1.0.0 was the newest: helm (and gitferry) keep 1.0.0
    pinned = dict(files)
    pinned["app/Chart.yaml"] = files["app/Chart.yaml"].replace("^1.0", "1.0.0")
    _objs, lock = plain_helm(pinned, repo, reg, "x", "x")
    with_lock = {**files, "app/Chart.yaml": pinned["app/Chart.yaml"], "app/Chart.lock": lock}
    git_app(world, "locked", with_lock, server)
    world.until("Synced", synced_healthy(world, "locked"))
    got = {o["metadata"]["name"]: o["data"].get("version") for o in manifests_of(world, "locked")}
    assert got["locked-common"] == "1.0.0"
    expected, _ = plain_helm(with_lock, repo, reg, "locked", "locked")
    assert by_identity(manifests_of(world, "locked")) == by_identity(expected)

    # Chart.yaml changed without updating the lock: helm's refusal, naming Chart.lock
    world.git.commit("locked", {"app/Chart.yaml": files["app/Chart.yaml"].replace("^1.0", "~1.1.0")})
    world.until("ComparisonError", lambda: any(c["type"] == "ComparisonError"
                                              for c in world.status("locked").get("conditions") or []))
    message = next(c["message"] for c in world.status("locked")["conditions"] if c["type"] == "ComparisonError")
    assert message.startswith("app/Chart.lock:") and "out of sync" in message, message
    assert "charts-pw" not in message and "oci-pw" not in message


def test_dependency_without_credentials_is_a_clear_error(world: LocalWorld,
                                                         servers: tuple[HelmRepoServer, OciRegistry]) -> None:
    repo, reg = servers
    server = world.register_cluster("local")
    for url in (repo.url, f"oci://{reg.host}"):
        world.call("DELETE", f"/api/v1/repositories?url={url}&force=true")
    files = chart_files(repo, reg)
    files["app/Chart.yaml"] = files["app/Chart.yaml"].replace("^1.0", "^1.1")  # not built before
    git_app(world, "nocreds", files, server)
    world.until("ComparisonError", lambda: any(c["type"] == "ComparisonError"
                                              for c in world.status("nocreds").get("conditions") or []))
    message = next(c["message"] for c in world.status("nocreds")["conditions"] if c["type"] == "ComparisonError")
    assert message.startswith("app/Chart.yaml:") and "helm dependency build" in message, message
    assert world.object_count("nocreds") == 0
    register(world, repo, reg)  # the other tests of the module use them


def _cache_entry_of(world: LocalWorld, app: str) -> tuple[str, dict[str, Any]]:
    """The render cache entry (key, body) that holds ``app``'s current manifests."""
    res = world.stack.resources
    s3, bucket = res.client("s3"), res.physical["ManifestBucket"]
    manifests = world.status(app)["sync"]["manifests"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="render-cache/"):
        for obj in page.get("Contents", []):
            body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            if body.get("manifests") == manifests:
                return obj["Key"], body
    raise AssertionError(f"no render cache entry holds {app}'s manifests {manifests}")


def _age(world: LocalWorld, caches: Path, key: str, entry: dict[str, Any]) -> None:
    """What 24 h do to the caches: the unlocked entries (render and dependency build) expire."""
    res = world.stack.resources
    past = time.time() - 1
    res.client("s3").put_object(Bucket=res.physical["ManifestBucket"], Key=key,
                                Body=json.dumps({**entry, "expires": past}).encode())
    for build in (caches / "deps" / "builds").glob("*.json"):
        doc = json.loads(build.read_text())
        if doc.get("expires") is not None:
            build.write_text(json.dumps({**doc, "expires": past}))


def test_unlocked_ranges_are_re_resolved_when_the_render_cache_entry_expires(
        world: LocalWorld, servers: tuple[HelmRepoServer, OciRegistry], caches: Path) -> None:
    """Without a Chart.lock the commit does not pin what helm resolves: the render cache keeps
    such a render only as long as the dependency build (24 h, Argo CD's repository cache
    default); within it a newer chart is not picked, after it it is, at the same commit."""
    from gitferry import helmdeps

    repo, reg = servers
    server = world.register_cluster("local")
    register(world, repo, reg)
    files = chart_files(repo, reg, common="~1.1.0")
    git_app(world, "unlocked", files, server)
    world.until("Synced and Healthy", synced_healthy(world, "unlocked"))
    assert {o["metadata"]["name"]: o["data"].get("version") for o in manifests_of(world, "unlocked")
            }["unlocked-common"] == "1.1.0"
    key, entry = _cache_entry_of(world, "unlocked")
    assert abs(entry.get("expires", 0) - (time.time() + helmdeps.UNLOCKED_TTL_SECONDS)) < 600, entry

    repo.add_chart("common", "1.1.1", {"templates/cm.yaml": SUB})
    reconciled = world.status("unlocked")["reconciledAt"]
    world.api_ok("POST", "/api/v1/applications/unlocked/refresh")
    world.settle()
    assert world.status("unlocked")["reconciledAt"] != reconciled  # compared again...
    assert world.status("unlocked")["sync"]["manifests"] == entry["manifests"]  # ...with the cached render

    _age(world, caches, key, entry)
    world.api_ok("POST", "/api/v1/applications/unlocked/refresh")
    world.until("the new dependency", lambda: world.status("unlocked")["sync"]["manifests"] != entry["manifests"])
    got = {o["metadata"]["name"]: o["data"].get("version") for o in manifests_of(world, "unlocked")}
    assert got["unlocked-common"] == "1.1.1"
    _key, again = _cache_entry_of(world, "unlocked")
    assert again["expires"] > time.time() + helmdeps.UNLOCKED_TTL_SECONDS - 600  # a fresh 24 h
