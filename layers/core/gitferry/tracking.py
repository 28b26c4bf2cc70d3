"""Which live objects belong to which application.

Two marks, as in Argo CD's annotation tracking:

- the label ``gitferry.dev/app=<app>`` lets the diff stage LIST candidates cheaply with a
  label selector (label values are limited to 63 characters, so long app names are
  shortened with a hash);
- the annotation ``gitferry.dev/tracking-id: <app>:<group>/<kind>:<namespace>/<name>``
  proves ownership. Labels and annotations are copied along with objects (``kubectl get -o
  yaml | kubectl apply``, Helm charts setting ``app.kubernetes.io/instance``), so only an
  annotation that names *this exact object* counts; everything else is never diffed as ours
  and never pruned.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

APP_LABEL: Final = "gitferry.dev/app"
TRACKING_ANNOTATION: Final = "gitferry.dev/tracking-id"

_LABEL_VALUE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(app: str) -> str:
    """Value of the app label: the app name, or a stable shortened form when it is not a valid
    label value (more than 63 characters), so LIST by label works for every app name."""
    if len(app) <= 63 and _LABEL_VALUE.match(app):
        return app
    digest = hashlib.sha256(app.encode()).hexdigest()[:10]
    head = re.sub(r"[^A-Za-z0-9_.-]", "-", app)[:52].rstrip("-_.") or "app"
    return f"{head}-{digest}"


def label_selector(app: str) -> str:
    """Label selector that finds the candidate objects of ``app``."""
    return f"{APP_LABEL}={label_value(app)}"


def group_of(obj: Mapping[str, Any]) -> str:
    """API group of an object ("" for the core group)."""
    api_version = str(obj.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def tracking_id(app: str, obj: Mapping[str, Any]) -> str:
    """``<app>:<group>/<kind>:<namespace>/<name>`` (namespace empty for cluster-scoped objects).

    The version is left out on purpose: the same object read at another version of its group
    (autoscaling/v1 vs v2) is still the same object.
    """
    meta = obj.get("metadata") or {}
    return f"{app}:{group_of(obj)}/{obj.get('kind', '')}:{meta.get('namespace') or ''}/{meta.get('name', '')}"


def _copy_json(value: Any) -> Any:
    """Deep copy of JSON-shaped data (plain dicts, lists, scalars), several times faster than
    ``copy.deepcopy`` on the 500-object apps the engine handles; anything else is deep-copied."""
    kind = type(value)
    if kind is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if kind is list:
        return [_copy_json(v) for v in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


def stamp(app: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``obj`` carrying the app label and the tracking annotation (idempotent).

    Call it after namespace defaulting: the tracking id names the namespace.
    """
    return _stamp_in_place(app, _copy_json(dict(obj)))


def _stamp_in_place(app: str, out: dict[str, Any]) -> dict[str, Any]:
    meta = out.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels[APP_LABEL] = label_value(app)
    meta["labels"] = labels
    annotations = dict(meta.get("annotations") or {})
    annotations[TRACKING_ANNOTATION] = tracking_id(app, out)
    meta["annotations"] = annotations
    return out


def is_owned(app: str, obj: Mapping[str, Any]) -> bool:
    """True only when the tracking annotation names ``app`` *and* this very object.

    A copy of another object (or of another app's object) keeps the original annotation and
    therefore does not match: it is never ours to prune.
    """
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(TRACKING_ANNOTATION) == tracking_id(app, obj)


def owner_app(obj: Mapping[str, Any]) -> str | None:
    """The app named by the tracking annotation when it matches the object, else None."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(TRACKING_ANNOTATION)
    if not isinstance(value, str) or ":" not in value:
        return None
    app = value.split(":", 1)[0]
    return app if is_owned(app, obj) else None


# ---- Argo CD annotations and desired-object preparation ------------------------------------

SYNC_WAVE_ANNOTATION: Final = "argocd.argoproj.io/sync-wave"
HOOK_ANNOTATION: Final = "argocd.argoproj.io/hook"
HOOK_DELETE_POLICY_ANNOTATION: Final = "argocd.argoproj.io/hook-delete-policy"
SYNC_OPTIONS_ANNOTATION: Final = "argocd.argoproj.io/sync-options"
COMPARE_OPTIONS_ANNOTATION: Final = "argocd.argoproj.io/compare-options"
HELM_HOOK_ANNOTATION: Final = "helm.sh/hook"
HELM_HOOK_WEIGHT_ANNOTATION: Final = "helm.sh/hook-weight"
HELM_HOOK_DELETE_POLICY_ANNOTATION: Final = "helm.sh/hook-delete-policy"
#: Stamped on hook objects (not app resources, so no app label): which hook of which app made
#: them, so BeforeHookCreation finds the previous run's ``generateName`` objects by label.
HOOK_LABEL: Final = "gitferry.dev/hook"
HOOK_ID_ANNOTATION: Final = "gitferry.dev/hook-id"

HOOK_TYPES: Final = ("PreSync", "Sync", "PostSync", "SyncFail", "Skip", "PreDelete", "PostDelete")

# Helm's hooks as Helm runs them: install hooks on the release's first installation only,
# upgrade hooks on every later one (Argo CD maps both to PreSync / PostSync, issue #7536).
_HELM_INSTALL: Final = {"pre-install": "PreSync", "post-install": "PostSync"}
_HELM_UPGRADE: Final = {"pre-upgrade": "PreSync", "post-upgrade": "PostSync"}
_HELM_DELETE: Final = {"pre-delete": "PreDelete", "post-delete": "PostDelete"}
_HELM_POLICIES: Final = {"before-hook-creation": "BeforeHookCreation", "hook-succeeded": "HookSucceeded",
                         "hook-failed": "HookFailed"}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def hook_types(obj: Mapping[str, Any], first_sync: bool | None = None) -> list[str]:
    """Argo CD hook types of an object for one sync; empty for an ordinary app resource.

    ``argocd.argoproj.io/hook`` wins; else ``helm.sh/hook`` as Helm means it: ``pre-install`` /
    ``post-install`` run only on the app's first sync (``first_sync``), ``pre-upgrade`` /
    ``post-upgrade`` only on later ones (``first_sync=None``: both, as Argo CD does),
    ``pre-delete`` / ``post-delete`` are PreDelete / PostDelete (run by app deletion), ``test``
    and the rollback hooks are never run by a sync. A Helm hook with nothing to do in this sync
    is ``["Skip"]``: still a hook, never applied.
    """
    ann = _annotations(obj)
    raw = ann.get(HOOK_ANNOTATION)
    if raw:
        return [h.strip() for h in str(raw).split(",") if h.strip()]
    helm = ann.get(HELM_HOOK_ANNOTATION)
    if not helm:
        return []
    table: dict[str, str] = dict(_HELM_DELETE)
    if first_sync is None or first_sync:
        table.update(_HELM_INSTALL)
    if first_sync is None or not first_sync:
        table.update(_HELM_UPGRADE)
    mapped = {table[h.strip()] for h in str(helm).split(",") if h.strip() in table}
    return sorted(mapped) or ["Skip"]


def hook_delete_policies(obj: Mapping[str, Any]) -> frozenset[str]:
    """``argocd.argoproj.io/hook-delete-policy`` (else ``helm.sh/hook-delete-policy`` mapped to
    Argo CD's names); BeforeHookCreation when neither is set (the default of both)."""
    ann = _annotations(obj)
    raw = ann.get(HOOK_DELETE_POLICY_ANNOTATION)
    if raw:
        return frozenset(p.strip() for p in str(raw).split(",") if p.strip())
    helm = ann.get(HELM_HOOK_DELETE_POLICY_ANNOTATION)
    if helm:
        mapped = {_HELM_POLICIES.get(p.strip(), p.strip()) for p in str(helm).split(",") if p.strip()}
        if mapped:
            return frozenset(mapped)
    return frozenset({"BeforeHookCreation"})


def is_hook(obj: Mapping[str, Any]) -> bool:
    """Hooks are not app resources: not diffed, not tracked, never pruned as drift."""
    ann = _annotations(obj)
    return bool(ann.get(HOOK_ANNOTATION) or ann.get(HELM_HOOK_ANNOTATION))


def hook_id(app: str, obj: Mapping[str, Any], phase: str) -> str:
    """Identity of one hook of one app in one phase, the same in every sync:
    ``<app>:<group>/<kind>:<namespace>/<name or generateName>:<phase>``."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or ""
    return f"{app}:{group_of(obj)}/{obj.get('kind', '')}:{meta.get('namespace') or ''}/{name}:{phase}"


def hook_label_value(hook: str) -> str:
    """Label value (63 characters at most) naming a hook id."""
    return hashlib.sha256(hook.encode()).hexdigest()[:40]


def stamp_hook(app: str, obj: Mapping[str, Any], phase: str) -> dict[str, Any]:
    """Copy of a hook carrying the hook label and id annotation (not the app label: a hook is
    not an app resource)."""
    out = _copy_json(dict(obj))
    meta = out.setdefault("metadata", {})
    hid = hook_id(app, out, phase)
    meta["labels"] = {**(meta.get("labels") or {}), HOOK_LABEL: hook_label_value(hid)}
    meta["annotations"] = {**(meta.get("annotations") or {}), HOOK_ID_ANNOTATION: hid}
    return out


def sync_wave(obj: Mapping[str, Any]) -> int:
    """``argocd.argoproj.io/sync-wave`` (default 0, negatives allowed; Helm hook weight as
    fallback). A value that is not an integer counts as 0 rather than failing the sync."""
    ann = _annotations(obj)
    for key in (SYNC_WAVE_ANNOTATION, HELM_HOOK_WEIGHT_ANNOTATION):
        if key in ann:
            try:
                return int(str(ann[key]).strip())
            except ValueError:
                return 0
    return 0


def _options(raw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in str(raw or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def sync_options(obj: Mapping[str, Any]) -> dict[str, str]:
    """``argocd.argoproj.io/sync-options: Prune=false,ServerSideApply=true`` as a dict."""
    return _options(_annotations(obj).get(SYNC_OPTIONS_ANNOTATION))


def compare_options(obj: Mapping[str, Any]) -> dict[str, str]:
    """``argocd.argoproj.io/compare-options: IgnoreExtraneous`` (flags without a value map to "true")."""
    raw = str(_annotations(obj).get(COMPARE_OPTIONS_ANNOTATION) or "")
    out = _options(raw)
    for part in raw.split(","):
        if part.strip() and "=" not in part:
            out[part.strip()] = "true"
    return out


def resource_key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): the identity used to match desired and live objects.
    The version is not part of it: a kind served at two versions is one object."""
    meta = obj.get("metadata") or {}
    return (group_of(obj), str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def prepare_desired(
    app: str,
    desired: list[Mapping[str, Any]],
    namespace: str | None,
    is_namespaced: Callable[[str, str], bool | None],
) -> list[dict[str, Any]]:
    """Rendered manifests as they will be applied: destination namespace defaulted on
    namespaced kinds that set none, namespace dropped from cluster-scoped kinds, app label and
    tracking annotation stamped (not on hooks: they are not app resources).

    ``is_namespaced`` answers from discovery and may return None for a kind the cluster does not
    serve yet; then a CustomResourceDefinition in the same manifests decides (a CRD and its
    custom resources are often synced together), else the kind is assumed namespaced.
    """
    crd_scope: dict[tuple[str, str], bool] = {}
    for obj in desired:
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if kind:
                crd_scope[(str(spec.get("group", "")), str(kind))] = spec.get("scope", "Namespaced") == "Namespaced"
    out: list[dict[str, Any]] = []
    for obj in desired:
        item = _copy_json(dict(obj))
        meta = item.setdefault("metadata", {})
        api_version, kind = str(item.get("apiVersion", "")), str(item.get("kind", ""))
        namespaced = is_namespaced(api_version, kind)
        if namespaced is None:
            namespaced = crd_scope.get((group_of(item), kind), True)
        if namespaced:
            if not meta.get("namespace") and namespace:
                meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        out.append(item if is_hook(item) else _stamp_in_place(app, item))  # item is already a copy
    return out
