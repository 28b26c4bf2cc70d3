"""Sync planning: phase, wave, kind order, prune rules (pure)."""

from __future__ import annotations

from gitferry import sync, tracking


def obj(kind: str, name: str, api_version: str = "v1", wave: int | None = None, hook: str | None = None,
        namespace: str | None = "shop", **annotations: str) -> dict:
    ann = dict(annotations)
    if wave is not None:
        ann["argocd.argoproj.io/sync-wave"] = str(wave)
    if hook:
        ann["argocd.argoproj.io/hook"] = hook
    meta: dict = {"name": name, "annotations": ann}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def names(steps: list[sync.Step]) -> list[str]:
    return [f"{s.action}:{s.phase}:{s.wave}:{s.obj['kind']}/{s.obj['metadata']['name']}" for s in steps]


def test_kind_order_puts_namespaces_and_crds_first_and_custom_resources_last() -> None:
    desired = [
        obj("Widget", "w", "example.com/v1"),
        obj("Deployment", "web", "apps/v1"),
        obj("Service", "web"),
        obj("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1", namespace=None),
        obj("ConfigMap", "b"),
        obj("ConfigMap", "a"),
        obj("Namespace", "shop", namespace=None),
        obj("Ingress", "web", "networking.k8s.io/v1"),
        obj("Secret", "s"),
    ]
    assert [f"{s.obj['kind']}/{s.obj['metadata']['name']}" for s in sync.plan(desired, [], prune=True)] == [
        "Namespace/shop", "Secret/s", "ConfigMap/a", "ConfigMap/b",
        "CustomResourceDefinition/widgets.example.com", "Service/web", "Deployment/web", "Ingress/web", "Widget/w",
    ]


def test_phase_then_wave_then_kind() -> None:
    desired = [
        obj("Deployment", "web", "apps/v1", wave=1),
        obj("ConfigMap", "late", wave=5),
        obj("ConfigMap", "early", wave=-1),
        obj("Job", "migrate", "batch/v1", hook="PreSync"),
        obj("Job", "smoke", "batch/v1", hook="PostSync", wave=-3),
        obj("Job", "skipped", "batch/v1", hook="Skip"),
        obj("Service", "web"),
    ]
    steps = sync.plan(desired, [], prune=True)
    assert names(steps) == [
        "apply:PreSync:0:Job/migrate",
        "apply:Sync:-1:ConfigMap/early",
        "apply:Sync:0:Service/web",
        "apply:Sync:1:Deployment/web",
        "apply:Sync:5:ConfigMap/late",
        "apply:PostSync:-3:Job/smoke",
    ]
    assert steps[0].hook and not steps[1].hook
    assert sync.wave_boundaries(steps) == [0, 1, 2, 3, 4, 5]


def test_prune_after_applies_in_reverse_wave_and_kind_order() -> None:
    app = "shop"
    live = [tracking.stamp(app, o) for o in (
        obj("ConfigMap", "old-cfg", wave=1),
        obj("Deployment", "old-web", "apps/v1", wave=1),
        obj("Service", "old-svc", wave=3),
        obj("ConfigMap", "keep-me", **{"argocd.argoproj.io/sync-options": "Prune=false"}),
    )]
    desired = [obj("Deployment", "web", "apps/v1", wave=2), obj("Job", "check", "batch/v1", hook="PostSync")]
    steps = sync.plan(desired, live, prune=True)
    assert names(steps) == [
        "apply:Sync:2:Deployment/web",
        "prune:Sync:3:Service/old-svc",
        "prune:Sync:1:Deployment/old-web",
        "prune:Sync:1:ConfigMap/old-cfg",
        "prune:Sync:0:ConfigMap/keep-me",
        "apply:PostSync:0:Job/check",
    ]
    assert [s.skip_reason for s in steps if s.action == "prune"] == ["", "", "", "ignored (Prune=false)"]
    last = sync.plan(desired, live, prune=True, prune_last=True)
    assert [s.action for s in last][-4:] == ["prune"] * 4
    assert names(last)[1] == "apply:PostSync:0:Job/check"


def test_prune_disabled_reports_requires_pruning_and_desired_objects_are_not_pruned() -> None:
    live = [tracking.stamp("shop", obj("ConfigMap", "old")), tracking.stamp("shop", obj("ConfigMap", "kept"))]
    steps = sync.plan([obj("ConfigMap", "kept")], live, prune=False)
    assert names(steps) == ["apply:Sync:0:ConfigMap/kept", "prune:Sync:0:ConfigMap/old"]
    assert steps[1].skip_reason == "ignored (requires pruning)"


def test_kind_rank() -> None:
    assert sync.kind_rank("Namespace") == 0
    assert sync.kind_rank("CustomResourceDefinition") < sync.kind_rank("Deployment") < sync.kind_rank("Widget")


def helm(kind: str, name: str, hook: str, **annotations: str) -> dict:
    return obj(kind, name, "batch/v1" if kind == "Job" else "v1", **{"helm.sh/hook": hook, **annotations})


def test_helm_hooks_install_only_on_the_first_sync_upgrade_on_later_ones() -> None:
    desired = [helm("Job", "install", "pre-install"), helm("Job", "upgrade", "pre-upgrade"),
               helm("Job", "post", "post-install,post-upgrade"), helm("Job", "test", "test"),
               helm("Job", "gone", "pre-delete"), obj("ConfigMap", "app")]
    assert names(sync.plan(desired, [], prune=True, first_sync=True)) == [
        "apply:PreSync:0:Job/install", "apply:Sync:0:ConfigMap/app", "apply:PostSync:0:Job/post"]
    assert names(sync.plan(desired, [], prune=True, first_sync=False)) == [
        "apply:PreSync:0:Job/upgrade", "apply:Sync:0:ConfigMap/app", "apply:PostSync:0:Job/post"]
    assert tracking.hook_types(desired[4]) == ["PreDelete"]
    assert tracking.hook_types(desired[3]) == ["Skip"] and tracking.is_hook(desired[3])
    # Argo CD's annotation wins over Helm's
    both = obj("Job", "j", "batch/v1", hook="PostSync", **{"helm.sh/hook": "pre-install"})
    assert tracking.hook_types(both, first_sync=True) == ["PostSync"]


def test_helm_hook_weight_is_the_wave_unless_a_sync_wave_is_set() -> None:
    desired = [helm("Job", "late", "pre-upgrade", **{"helm.sh/hook-weight": "10"}),
               helm("Job", "early", "pre-upgrade", **{"helm.sh/hook-weight": "-5"}),
               helm("Job", "waved", "pre-upgrade", **{"helm.sh/hook-weight": "-9",
                                                      "argocd.argoproj.io/sync-wave": "3"})]
    assert names(sync.plan(desired, [], prune=True, first_sync=False)) == [
        "apply:PreSync:-5:Job/early", "apply:PreSync:3:Job/waved", "apply:PreSync:10:Job/late"]


def test_delete_policies_argo_and_helm() -> None:
    assert tracking.hook_delete_policies(obj("Job", "j", hook="PreSync")) == {"BeforeHookCreation"}
    assert tracking.hook_delete_policies(helm("Job", "j", "pre-install", **{
        "helm.sh/hook-delete-policy": "hook-succeeded,hook-failed"})) == {"HookSucceeded", "HookFailed"}
    assert tracking.hook_delete_policies(helm("Job", "j", "pre-install", **{
        "helm.sh/hook-delete-policy": "hook-succeeded",
        "argocd.argoproj.io/hook-delete-policy": "HookFailed"})) == {"HookFailed"}


def test_sync_fail_hooks_are_planned_last_and_delete_hooks_not_at_all() -> None:
    desired = [obj("Job", "on-fail", "batch/v1", hook="SyncFail"), obj("Job", "pre-del", "batch/v1", hook="PreDelete"),
               obj("Job", "post", "batch/v1", hook="PostSync"), obj("ConfigMap", "app")]
    steps = sync.plan(desired, [], prune=True, prune_last=True)
    assert names(steps) == ["apply:Sync:0:ConfigMap/app", "apply:PostSync:0:Job/post", "apply:SyncFail:0:Job/on-fail"]
    assert steps[-1].group == sync.SYNC_FAIL_GROUP


def test_resource_sync_options_outside_what_gitferry_implements_are_named() -> None:
    assert sync.resource_option_problem(obj("ConfigMap", "a", **{
        "argocd.argoproj.io/sync-options": "Prune=false, Replace=true,Force=true,SkipDryRunOnMissingResource=true"})) == ""
    problem = sync.resource_option_problem(obj("ConfigMap", "a", **{
        "argocd.argoproj.io/sync-options": "ServerSideApply=false,Prune=confirm,Bogus"}))
    assert "ServerSideApply=false, Prune=confirm, Bogus not supported by gitferry" in problem


def _app(*options: str) -> object:
    from gitferry.model import Application

    return Application.from_manifest({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "shop"},
        "spec": {"source": {"repoURL": "https://git.example.com/r.git", "path": "."},
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                 "ignoreDifferences": [{"kind": "Deployment", "jsonPointers": ["/spec/replicas"]}],
                 "syncPolicy": {"syncOptions": list(options)}}})


def test_options_for_reads_the_application_and_its_status() -> None:
    from gitferry.model import OperationState, ResourceResult, ResourceStatus

    app = _app("ApplyOutOfSyncOnly=true", "RespectIgnoreDifferences=true", "Replace=true", "Validate=false",
               "FailOnSharedResource=true")
    resources = [ResourceStatus(kind="ConfigMap", namespace="shop", name="a", status="Synced"),
                 ResourceStatus(kind="ConfigMap", namespace="shop", name="b", status="OutOfSync")]
    earlier = [ResourceResult(kind="Job", group="batch", version="v1", namespace="shop", name="migrate-x2b4z",
                              status="Synced", sync_phase="PreSync", hook_phase="Running", hook_type="PreSync")]
    opts = sync.options_for(app, resources=resources, previous=OperationState(phase="Running", message="m"),
                            earlier=earlier, has_history=False)
    assert (opts.apply_out_of_sync_only, opts.respect_ignore_differences, opts.replace, opts.validate,
            opts.fail_on_shared_resource, opts.first_sync) == (True, True, True, False, True, True)
    assert opts.out_of_sync == {("", "ConfigMap", "shop", "b")}
    assert [(r.name, r.phase, r.hook_phase, r.hook) for r in opts.earlier] == [("migrate-x2b4z", "PreSync", "Running", True)]
    assert opts.ignore_rules[0].json_pointers == ("/spec/replicas",) and opts.previous_message == "m"
    plain = sync.options_for(_app(), previous=OperationState(phase="Succeeded"))
    assert (plain.apply_out_of_sync_only, plain.replace, plain.validate, plain.first_sync, plain.out_of_sync) == (
        False, False, True, False, None)
    assert not sync.options_for(_app(), has_history=True).first_sync


def test_server_side_apply_false_is_refused_at_registration() -> None:
    import pytest
    from gitferry.errors import InvalidSpecError

    with pytest.raises(InvalidSpecError, match="ServerSideApply=false is not supported by gitferry"):
        _app("ServerSideApply=false")
    assert _app("ServerSideApply=true").has_sync_option("ServerSideApply")
