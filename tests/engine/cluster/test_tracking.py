"""Tracking label/annotation: ownership must name this exact object."""

from __future__ import annotations

import copy

from cluster_objects import deployment_manifest
from gitferry import tracking


def test_tracking_id_format_for_namespaced_core_and_cluster_scoped() -> None:
    dep = deployment_manifest()
    dep["metadata"]["namespace"] = "shop"
    assert tracking.tracking_id("guestbook", dep) == "guestbook:apps/Deployment:shop/web"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"}}
    assert tracking.tracking_id("guestbook", cm) == "guestbook:/ConfigMap:shop/cfg"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"}}
    assert tracking.tracking_id("guestbook", role) == "guestbook:rbac.authorization.k8s.io/ClusterRole:/reader"


def test_stamp_adds_label_and_annotation_without_touching_the_input() -> None:
    dep = deployment_manifest()
    dep["metadata"]["namespace"] = "shop"
    dep["metadata"]["annotations"] = {"team": "payments"}
    original = copy.deepcopy(dep)
    out = tracking.stamp("guestbook", dep)
    assert dep == original
    assert out["metadata"]["labels"] == {"app": "web", "gitferry.dev/app": "guestbook"}
    assert out["metadata"]["annotations"] == {"team": "payments",
                                              "gitferry.dev/tracking-id": "guestbook:apps/Deployment:shop/web"}
    assert tracking.stamp("guestbook", out) == out  # idempotent
    assert tracking.is_owned("guestbook", out)
    assert not tracking.is_owned("other", out)


def test_a_copied_object_keeps_the_annotation_but_is_not_owned() -> None:
    dep = deployment_manifest()
    dep["metadata"]["namespace"] = "shop"
    original = tracking.stamp("guestbook", dep)
    copied = copy.deepcopy(original)
    copied["metadata"]["name"] = "web-copy"  # `kubectl get -o yaml | sed | kubectl apply`
    assert tracking.is_owned("guestbook", original)
    assert not tracking.is_owned("guestbook", copied)
    moved = copy.deepcopy(original)
    moved["metadata"]["namespace"] = "staging"
    assert not tracking.is_owned("guestbook", moved)
    assert tracking.owner_app(copied) is None
    assert tracking.owner_app(original) == "guestbook"


def test_label_value_is_valid_even_for_long_app_names() -> None:
    name = "a-very-long-application-name-that-goes-well-beyond-sixty-three-characters"
    value = tracking.label_value(name)
    assert len(value) <= 63 and value != name
    assert value == tracking.label_value(name)
    assert tracking.label_value(name + "x") != value
    assert tracking.label_selector("guestbook") == "gitferry.dev/app=guestbook"


def test_argo_annotations() -> None:
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "annotations": {
        "argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "-2",
        "argocd.argoproj.io/sync-options": "Prune=false, Validate=false",
        "argocd.argoproj.io/compare-options": "IgnoreExtraneous"}}}
    assert tracking.hook_types(obj) == ["PreSync"]
    assert tracking.sync_wave(obj) == -2
    assert tracking.sync_options(obj) == {"Prune": "false", "Validate": "false"}
    assert tracking.compare_options(obj) == {"IgnoreExtraneous": "true"}
    helm = {"metadata": {"annotations": {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "5"}}}
    assert tracking.hook_types(helm) == ["PreSync"] and tracking.sync_wave(helm) == 5
    assert tracking.sync_wave({"metadata": {"annotations": {"argocd.argoproj.io/sync-wave": "soon"}}}) == 0


def test_prepare_desired_defaults_namespace_and_stamps_but_not_hooks() -> None:
    scope = {("apps/v1", "Deployment"): True, ("rbac.authorization.k8s.io/v1", "ClusterRole"): False}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget", "plural": "widgets"}}}
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "oops"}}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r", "namespace": "x"}}
    hook = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "annotations": {"argocd.argoproj.io/hook": "PreSync"}}}
    out = tracking.prepare_desired("shop", [deployment_manifest(), role, crd, widget, hook], "prod",
                                   lambda av, k: scope.get((av, k)) if k != "CustomResourceDefinition" else False)
    dep, role_out, _, widget_out, hook_out = out
    assert dep["metadata"]["namespace"] == "prod"
    assert dep["metadata"]["annotations"]["gitferry.dev/tracking-id"] == "shop:apps/Deployment:prod/web"
    assert "namespace" not in role_out["metadata"]
    assert "namespace" not in widget_out["metadata"]  # cluster-scoped per the CRD in the same manifests
    assert hook_out["metadata"]["namespace"] == "prod"  # unknown kind without CRD -> namespaced
    assert "gitferry.dev/tracking-id" not in hook_out["metadata"]["annotations"]
