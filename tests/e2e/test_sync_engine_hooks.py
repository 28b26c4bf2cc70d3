"""Hooks the way users meet them, through the handlers on the local stack: a ``generateName``
PreSync Job (Argo CD's sync-waves example) created by the server, awaited across apply
invocations, recorded with its generated name and hookPhase, replaced by the next sync; Helm
install hooks on the first sync and upgrade hooks on the next one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.story import LocalWorld, application

MIGRATE = """\
apiVersion: batch/v1
kind: Job
metadata:
  generateName: migrate-
  annotations:
    argocd.argoproj.io/hook: PreSync
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: busybox:1.36
"""

HELM_HOOKS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: installed
  annotations:
    helm.sh/hook: pre-install
data: {when: install}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: upgraded
  annotations:
    helm.sh/hook: pre-upgrade
data: {when: upgrade}
"""


def config(version: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  version: \"{version}\"\n"


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld() as w:
        yield w


def _jobs(world: LocalWorld, ns: str) -> list[Any]:
    from kubernetes import client

    return list(client.BatchV1Api(world.k8s).list_namespaced_job(ns).items)


def _config_map_exists(world: LocalWorld, ns: str, name: str) -> bool:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(world.k8s).read_namespaced_config_map(name, ns)
        return True
    except ApiException as exc:
        assert exc.status == 404
        return False


def _finished(world: LocalWorld, app: str, revision: str) -> bool:
    op = world.status(app).get("operationState") or {}
    return op.get("phase") == "Succeeded" and (op.get("syncResult") or {}).get("revision") == revision


def test_generate_name_hook_and_helm_install_upgrade_hooks(world: LocalWorld) -> None:
    server = world.register_cluster("local")
    repo = world.git.make_repo("hooks", {"app/settings.yaml": config("1"), "app/migrate.yaml": MIGRATE,
                                         "app/helm-hooks.yaml": HELM_HOOKS})
    first_sha = world.git.rev_parse("hooks", "HEAD")
    world.api_ok("POST", "/api/v1/applications", application("hooks", repo, server, automated=True, path="app",
                                                             namespace="hooks"))
    world.until("first sync finished", lambda: _finished(world, "hooks", first_sha), timeout=90)
    results = world.status("hooks")["operationState"]["syncResult"]["resources"]
    [hook] = [r for r in results if r["kind"] == "Job"]
    assert hook["name"].startswith("migrate-") and len(hook["name"]) == len("migrate-") + 5
    assert (hook["hookPhase"], hook["hookType"], hook["syncPhase"]) == ("Succeeded", "PreSync", "PreSync")
    assert [j.metadata.name for j in _jobs(world, "hooks")] == [hook["name"]]
    assert _config_map_exists(world, "hooks", "installed")  # first sync: Helm's install hook
    assert not _config_map_exists(world, "hooks", "upgraded")

    second_sha = world.git.commit("hooks", {"app/settings.yaml": config("2")})
    world.api_ok("POST", "/api/v1/applications/hooks/sync")
    world.until("second sync finished", lambda: _finished(world, "hooks", second_sha), timeout=90)
    results = world.status("hooks")["operationState"]["syncResult"]["resources"]
    [again] = [r for r in results if r["kind"] == "Job"]
    assert again["name"] != hook["name"] and again["hookPhase"] == "Succeeded"
    # BeforeHookCreation (the default) removed the first run's Job, found by the hook label
    world.until("old hook Job deleted", lambda: [j.metadata.name for j in _jobs(world, "hooks")] == [again["name"]],
                tick=False)
    assert _config_map_exists(world, "hooks", "upgraded")  # a later sync: Helm's upgrade hook
