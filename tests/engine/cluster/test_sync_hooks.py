"""run_sync() hooks against kubesim: generateName hooks across resumed invocations, delete
policies, SyncFail, Helm install vs upgrade hooks and hook weights, PreDelete / PostDelete."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from gitferry import kube, sync, tracking


def cm(name: str, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": dict(annotations)},
            "data": {"n": name}}


def job(hook: str, *, name: str | None = None, generate: str | None = None, image: str = "busybox:1.36",
        **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"annotations": {"argocd.argoproj.io/hook": hook, **annotations}}
    if name:
        meta["name"] = name
    if generate:
        meta["generateName"] = generate
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                              "containers": [{"name": "m", "image": image}]}}}}


def helm_hook(name: str, hook: str, **annotations: str) -> dict[str, Any]:
    return cm(name, **{"helm.sh/hook": hook, **annotations})


def once(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]],
         options: sync.SyncOptions | None = None, **kwargs: Any) -> sync.SyncResult:
    live = cluster.list_by_label(tracking.label_selector(app))
    return sync.run_sync(cluster, app, desired, live, prune=True, create_namespace=False, namespace=ns,
                         options=options, **kwargs)


def drive(cluster: kube.ClusterClient, app: str, ns: str, desired: list[dict[str, Any]],
          options: sync.SyncOptions | None = None) -> list[sync.SyncResult]:
    """What the apply stage does: run, and while Running call again with ``resume_from`` and the
    operation's results so far (merged by resource and phase, as pipeline records them)."""
    base = options or sync.SyncOptions()
    runs = [once(cluster, app, ns, desired, base, wait_between_waves=True)]
    merged: dict[tuple[str, ...], sync.ResourceResult] = {}
    deadline = time.monotonic() + 40
    while True:
        for r in runs[-1].resources:
            merged[(r.group, r.kind, r.namespace, r.name, r.phase)] = r
        if runs[-1].phase != "Running" or time.monotonic() > deadline:
            return runs
        time.sleep(0.3)
        resumed = dataclasses.replace(base, earlier=tuple(merged.values()), previous_message=runs[-1].message)
        runs.append(once(cluster, app, ns, desired, resumed,
                         wait_between_waves=True, resume_from=runs[-1].resume_from))


def merged_results(runs: list[sync.SyncResult]) -> dict[str, sync.ResourceResult]:
    out: dict[str, sync.ResourceResult] = {}
    for run in runs:
        for r in run.resources:
            out[f"{r.phase}:{r.kind}/{r.name}"] = r
    return out


def jobs(cluster: kube.ClusterClient, ns: str) -> list[dict[str, Any]]:
    types = {rt.kind: rt for rt in cluster.served_types()}
    return cluster.list_in_namespace(types["Job"], ns)


def wait_until(predicate: Any, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_generate_name_hook_is_created_awaited_across_resumes_and_replaced_next_sync(
        cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    desired = [cm("app-config"), job("PreSync", generate="migrate-")]
    runs = drive(cluster, app_name, namespace, desired)
    first = runs[0]
    assert first.phase == "Running" and first.resume_from == (0, 0, 0)
    [hook] = first.resources
    assert hook.kind == "Job" and hook.name.startswith("migrate-") and len(hook.name) == len("migrate-") + 5
    assert (hook.hook_phase, hook.hook_type) == ("Running", "PreSync")
    # the resumed invocations wait for that very object, by its generated name
    assert f"Job.batch {namespace}/{hook.name}" in first.message
    assert len(runs) > 2 and all(hook.name in r.message for r in runs[1:-1])
    assert runs[-1].phase == "Succeeded", runs[-1].message
    results = merged_results(runs)
    assert results[f"PreSync:Job/{hook.name}"].hook_phase == "Succeeded"
    assert results["Sync:ConfigMap/app-config"].status == "Synced"
    live = cluster.get("batch/v1", "Job", hook.name, namespace)
    assert live is not None  # default policy BeforeHookCreation: kept until the next sync's hook
    assert live["metadata"]["labels"][tracking.HOOK_LABEL]
    assert tracking.APP_LABEL not in live["metadata"]["labels"]  # a hook is not an app resource

    again = drive(cluster, app_name, namespace, desired)
    assert again[-1].phase == "Succeeded", again[-1].message
    [second] = [r for r in again[0].resources if r.kind == "Job"]
    assert second.name != hook.name
    assert wait_until(lambda: [j["metadata"]["name"] for j in jobs(cluster, namespace)] == [second.name])


def test_generate_name_hook_deleted_when_it_succeeded(cluster: kube.ClusterClient, namespace: str,
                                                      app_name: str) -> None:
    desired = [job("PostSync", generate="smoke-", **{"argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}),
               cm("app-config")]
    runs = drive(cluster, app_name, namespace, desired)
    assert runs[-1].phase == "Succeeded", runs[-1].message
    [name] = [r.name for r in merged_results(runs).values() if r.kind == "Job"]
    assert merged_results(runs)[f"PostSync:Job/{name}"].hook_phase == "Succeeded"
    assert wait_until(lambda: cluster.get("batch/v1", "Job", name, namespace) is None)


def test_sync_fail_hook_runs_only_when_the_sync_fails(cluster: kube.ClusterClient, namespace: str,
                                                      app_name: str) -> None:
    on_fail = job("SyncFail", generate="on-fail-")
    good = drive(cluster, app_name, namespace, [cm("app-config"), on_fail])
    assert good[-1].phase == "Succeeded", good[-1].message
    assert jobs(cluster, namespace) == [] and all(r.phase != "SyncFail" for r in good[-1].resources)

    failing = [cm("app-config"), job("PreSync", name="migrate", image="busybox-fail:1"), on_fail]
    runs = drive(cluster, app_name, namespace, failing)
    assert [r.phase for r in runs][-1] == "Failed"
    assert any(r.resume_from == sync.SYNC_FAIL_GROUP for r in runs)  # Running while the SyncFail hook runs
    final = runs[-1]
    assert "hook Job.batch" in final.message and "migrate" in final.message, final.message
    results = merged_results(runs)
    [fail_hook] = [r for r in results.values() if r.phase == "SyncFail"]
    assert fail_hook.name.startswith("on-fail-") and fail_hook.hook_phase == "Succeeded"
    assert results["PreSync:Job/migrate"].hook_phase == "Failed"
    assert cluster.get("batch/v1", "Job", fail_hook.name, namespace) is not None


def test_sync_fail_hook_runs_when_the_dry_run_fails(cluster: kube.ClusterClient, namespace: str,
                                                    app_name: str) -> None:
    unserved = {"apiVersion": "nowhere.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    runs = drive(cluster, app_name, namespace, [cm("app-config"), unserved, job("SyncFail", generate="on-fail-")])
    assert runs[-1].phase == "Failed"
    assert "Gadget" in runs[-1].message and "nothing was applied" in runs[-1].message
    assert cluster.get("v1", "ConfigMap", "app-config", namespace) is None
    assert [r.hook_phase for r in merged_results(runs).values() if r.phase == "SyncFail"] == ["Succeeded"]


def test_helm_install_hooks_on_first_sync_upgrade_hooks_later(cluster: kube.ClusterClient, namespace: str,
                                                              app_name: str) -> None:
    desired = [cm("app"), helm_hook("installed", "pre-install"), helm_hook("upgraded", "pre-upgrade"),
               helm_hook("installed-after", "post-install"), helm_hook("both", "pre-install,pre-upgrade"),
               helm_hook("tested", "test"), helm_hook("before-delete", "pre-delete")]

    def created(runs: list[sync.SyncResult]) -> list[str]:
        return sorted(r.name for r in merged_results(runs).values() if r.hook)

    first = drive(cluster, app_name, namespace, desired, sync.SyncOptions(first_sync=True))
    assert first[-1].phase == "Succeeded", first[-1].message
    assert created(first) == ["both", "installed", "installed-after"]
    assert cluster.get("v1", "ConfigMap", "upgraded", namespace) is None
    later = drive(cluster, app_name, namespace, desired, sync.SyncOptions(first_sync=False))
    assert created(later) == ["both", "upgraded"]
    assert cluster.get("v1", "ConfigMap", "upgraded", namespace) is not None
    for never in ("tested", "before-delete"):
        assert cluster.get("v1", "ConfigMap", never, namespace) is None


def test_helm_hook_weight_orders_hooks_and_helm_delete_policy(cluster: kube.ClusterClient, namespace: str,
                                                             app_name: str) -> None:
    desired = [helm_hook("w5", "pre-install", **{"helm.sh/hook-weight": "5"}),
               helm_hook("w-1", "pre-install", **{"helm.sh/hook-weight": "-1"}),
               helm_hook("w0", "pre-install", **{"helm.sh/hook-delete-policy": "hook-succeeded"}),
               cm("app")]
    runs = drive(cluster, app_name, namespace, desired)
    assert runs[-1].phase == "Succeeded", runs[-1].message
    assert [(r.name, r.wave) for r in runs[0].resources if r.hook] == [("w-1", -1), ("w0", 0), ("w5", 5)]
    assert wait_until(lambda: cluster.get("v1", "ConfigMap", "w0", namespace) is None)  # hook-succeeded
    assert cluster.get("v1", "ConfigMap", "w5", namespace) is not None  # before-hook-creation (Helm's default)


def test_pre_delete_hooks_for_the_deletion_path(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    desired = [cm("app"), job("PreDelete", generate="cleanup-"), helm_hook("after", "post-delete")]
    synced = drive(cluster, app_name, namespace, desired)
    assert synced[-1].phase == "Succeeded" and jobs(cluster, namespace) == []  # a sync never runs them

    first = sync.run_delete_hooks(cluster, app_name, desired, "PreDelete", namespace=namespace)
    assert first.phase == "Running" and first.resume_from is not None
    [hook] = first.resources
    assert hook.name.startswith("cleanup-") and hook.hook_phase == "Running"
    result = first
    deadline = time.monotonic() + 30
    while result.phase == "Running" and time.monotonic() < deadline:
        time.sleep(0.3)
        result = sync.run_delete_hooks(cluster, app_name, desired, "PreDelete", namespace=namespace,
                                       resume_from=result.resume_from, earlier=first.resources)
    assert result.phase == "Succeeded", result.message
    assert [r.hook_phase for r in result.resources] == ["Succeeded"]
    post = sync.run_delete_hooks(cluster, app_name, desired, "PostDelete", namespace=namespace)
    assert post.phase == "Succeeded" and [r.name for r in post.resources] == ["after"]
    assert cluster.get("v1", "ConfigMap", "after", namespace) is not None
