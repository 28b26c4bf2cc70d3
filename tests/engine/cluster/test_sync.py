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
