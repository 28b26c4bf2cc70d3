"""App of apps: the ``argoproj.io/v1alpha1`` ``Application`` objects an app renders.

Argo CD users keep their Applications in Git and let a parent app render them. gitferry has no
Application custom resource in the destination cluster (and a cluster that has Argo CD's CRD would
only get inert objects), so an Application a parent renders is never sent to a cluster: it
becomes a gitferry application *owned* by the parent (``ownerApp`` on the child's SPEC item).

The parent's diff, sync and deletion see the destination cluster through :class:`ClusterView`,
a :class:`~gitferry.kube.ClusterClient` in which the Application kind is served by the state
table instead of the API server:

- ``list_by_label`` / ``get``: a child as an Application object (its spec as stored, the parent's
  tracking marks, and a ``status`` read from the child's STATUS item), so the parent's comparison
  is Synced when the child's spec equals the rendered one, and the parent's resource list and
  tree show the child with its own health;
- ``server_side_apply`` / ``create`` / ``replace``: the child validated exactly as the API
  validates a registration (:func:`validate_application`), then created or updated, and its
  first refresh requested (an automated child then syncs itself); a dry run only validates;
- ``delete``: the child app deleted; with the ``resources-finalizer.argocd.argoproj.io``
  finalizer through :mod:`gitferry.deletion`, so its own objects go first.

An app may adopt no app that another parent or the API registered: such a child is refused
(409) wherever the parent meets it, naming it; the existing app is untouched. A child's health
(:func:`gitferry.health.resource_health` on the object above, Argo CD's Application health
check) gates the parent's next sync wave, which orders app dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from gitferry import tracking
from gitferry.errors import GitferryError, InvalidSpecError, NotFoundError, RenderError
from gitferry.model import Application

if TYPE_CHECKING:
    from gitferry.pipeline import Engine
    from gitferry.state import StateStore, StoredApp

API_VERSION: Final = "argoproj.io/v1alpha1"
GROUP: Final = "argoproj.io"
KIND: Final = "Application"
#: audit actor and ``initiatedBy`` of what a parent does to its children
ACTOR_PREFIX: Final = "application:"


def is_application(obj: Mapping[str, Any]) -> bool:
    """An Argo CD Application manifest (any namespace)."""
    return obj.get("apiVersion") == API_VERSION and obj.get("kind") == KIND


class Sourced(dict[str, Any]):
    """A rendered Application that remembers the repository file it came from (set by the
    renderer), so a refused child names its file. JSON-wise a plain mapping."""

    source_file: str = ""


def remember_source(obj: dict[str, Any], file: str) -> dict[str, Any]:
    """``obj`` itself, or for an Application a :class:`Sourced` copy naming ``file``."""
    if not is_application(obj):
        return obj
    out = Sourced(obj)
    out.source_file = file
    return out


def child_manifest(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The Application as the child app is registered: gitferry's tracking marks and what a
    server or controller writes (status, uid ...) left out."""
    doc = json.loads(json.dumps(dict(obj)))
    doc.pop("status", None)
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
                    "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        for field, mark in (("labels", tracking.APP_LABEL), ("annotations", tracking.TRACKING_ANNOTATION)):
            values = meta.get(field)
            if isinstance(values, dict):
                values.pop(mark, None)
                if not values:
                    meta.pop(field)
    return doc


def check_destination(state: StateStore, app: Application) -> None:
    """The destination cluster must be registered (a typo in ``destination.server`` is refused
    at registration rather than failing every tick; ``kubernetes.default.svc`` needs a cluster
    marked in-cluster), and a Helm ``lookup`` app's cluster must allow it."""
    from gitferry import lookup_proxy

    bad_annotation = lookup_proxy.check_annotation(app)
    if bad_annotation or lookup_proxy.conflicts(app):
        raise InvalidSpecError([p for p in [bad_annotation, *lookup_proxy.conflicts(app)] if p])
    dest = app.spec.destination
    try:
        cluster = state.find_cluster(server=dest.server, name=dest.name)
    except NotFoundError as exc:
        where = f"server {dest.server!r}" if dest.server else f"name {dest.name!r}"
        if "marked as in-cluster" in str(exc):  # kubernetes.default.svc / in-cluster, none marked
            raise InvalidSpecError([f"spec.destination: {exc}"]) from None
        raise InvalidSpecError(
            [f"spec.destination: no cluster registered with {where}; register it with POST /api/v1/clusters"]
        ) from None
    if lookup_proxy.wanted(app) and not cluster.allow_helm_lookup:
        raise InvalidSpecError([f"metadata.annotations.{lookup_proxy.refusal(cluster.name)}"])


def validate_application(state: StateStore, doc: Any) -> Application:
    """The one validation of an Application, for the API's registration and for a child a
    parent renders: the model (every bad field named) and a registered destination."""
    app = Application.from_manifest(doc)
    check_destination(state, app)
    return app


def check_rendered(state: StateStore, parent: str, manifests: Iterable[Mapping[str, Any]]) -> None:
    """Refuse the parent's render (a :class:`RenderError`, so a ComparisonError on the parent and
    nothing of it applied) when a child Application is invalid, names the parent itself, or
    appears twice; the message names the file and the field."""
    seen: dict[str, str] = {}
    for obj in manifests:
        if not is_application(obj):
            continue
        file = getattr(obj, "source_file", "") or None
        name = str((obj.get("metadata") or {}).get("name") or "")
        what = f"Application {name!r}" if name else "Application"
        if tracking.is_hook(obj):
            raise RenderError(f"{what}: an Application as a sync hook is not supported by gitferry", file)
        try:
            app = validate_application(state, child_manifest(obj))
        except InvalidSpecError as exc:
            raise RenderError(f"{what}: {'; '.join(exc.problems)}", file) from None
        if app.name == parent:
            raise RenderError(f"{what}: metadata.name: an application cannot render itself", file)
        if app.name in seen:
            where = f" (also in {seen[app.name]})" if seen[app.name] else ""
            raise RenderError(f"{what}: metadata.name: rendered twice{where}; application names are unique", file)
        seen[app.name] = file or ""


def _conflict(message: str, obj: Mapping[str, Any], code: int = 409, reason: str = "Conflict") -> Exception:
    from gitferry.kube import KubeError

    meta = obj.get("metadata") or {}
    return KubeError(message, code=code, reason=reason, kind=KIND, api_version=API_VERSION,
                     namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""))


def adoption_refused(parent: str, stored: StoredApp) -> str | None:
    """Why ``parent`` may not manage the existing app ``stored`` (None: it may)."""
    if stored.owner == parent:
        return None
    name = stored.app.name
    if stored.owner:
        return (f"application {name!r} is managed by application {stored.owner!r}; application {parent!r} "
                "may not adopt it")
    return (f"application {name!r} was registered through the API; application {parent!r} may not adopt it "
            "(delete it first, or rename the child)")


def application_object(stored: StoredApp, status: Any) -> dict[str, Any]:
    """A child as the parent's diff and sync see it: its stored manifest with its owner's
    tracking marks, ``resourceVersion`` = the SPEC version, ``deletionTimestamp`` while being
    deleted, and the child's own status (sync, health, operation) as Argo CD's CR carries it."""
    doc = stored.app.to_manifest()
    if stored.owner:
        doc = tracking.stamp(stored.owner, doc)
    meta = doc.setdefault("metadata", {})
    meta["resourceVersion"] = str(stored.version)
    meta["uid"] = f"gitferry-app-{stored.app.name}"
    if stored.deletion:
        meta["deletionTimestamp"] = stored.deletion.get("deletionTimestamp")
    if status is not None:
        data = status.to_json_dict()
        out: dict[str, Any] = {k: data[k] for k in ("sync", "health", "reconciledAt") if k in data}
        op = data.get("operationState") or {}
        if op:
            out["operationState"] = {k: op[k] for k in ("phase", "message", "startedAt", "finishedAt") if k in op}
        doc["status"] = out
    return doc


class ClusterView:
    """The destination cluster as app ``parent``'s comparison, sync and deletion see it: every
    call goes to the real :class:`~gitferry.kube.ClusterClient` except for Applications, which
    are gitferry apps (see the module docstring). ``waiting_on_children`` is set when a child
    read for a health gate was not healthy yet (the apply stage then hands the wait to the
    operation's follow-up instead of polling: a child is whole pipeline stages away)."""

    def __init__(self, engine: Engine, parent: str, cluster: Any) -> None:
        self.engine = engine
        self.parent = parent
        self.cluster = cluster
        self.waiting_on_children = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)

    # ---- reads ---------------------------------------------------------------------------

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        if (api_version, kind) == (API_VERSION, KIND):
            return True
        return bool(self.cluster.is_namespaced(api_version, kind))

    def list_by_label(self, selector: str, **kwargs: Any) -> list[dict[str, Any]]:
        live = [o for o in self.cluster.list_by_label(selector, **kwargs) if not is_application(o)]
        if selector != tracking.label_selector(self.parent):
            return live
        owned = self.engine.state.list_owned(self.parent)
        statuses = self.engine.state.get_statuses([s.app.name for s in owned]) if owned else {}
        return live + [application_object(s, statuses.get(s.app.name)) for s in owned]

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        if (api_version, kind) != (API_VERSION, KIND):
            return self.cluster.get(api_version, kind, name, namespace)
        stored = self._stored(name)
        if stored is None:
            return None
        refused = adoption_refused(self.parent, stored)
        if refused:
            raise _conflict(refused, {"metadata": {"name": name, "namespace": namespace}})
        obj = application_object(stored, self.engine.state.get_statuses([name]).get(name))
        from gitferry import health

        if health.resource_health(obj).status not in (health.HEALTHY, health.SUSPENDED):
            self.waiting_on_children = True
        return obj

    def list_selected(self, api_version: str, kind: str, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        if (api_version, kind) == (API_VERSION, KIND):
            return []  # hooks only: an Application is never one
        return list(self.cluster.list_selected(api_version, kind, namespace, selector))

    # ---- writes --------------------------------------------------------------------------

    def server_side_apply(self, obj: Mapping[str, Any], *args: Any, dry_run: bool = False,
                          **kwargs: Any) -> dict[str, Any]:
        if not is_application(obj):
            return dict(self.cluster.server_side_apply(obj, *args, dry_run=dry_run, **kwargs))
        return self._write(obj, dry_run)

    def create(self, obj: Mapping[str, Any], *args: Any, dry_run: bool = False, **kwargs: Any) -> dict[str, Any]:
        if not is_application(obj):
            return dict(self.cluster.create(obj, *args, dry_run=dry_run, **kwargs))
        return self._write(obj, dry_run)

    def replace(self, obj: Mapping[str, Any], *args: Any, dry_run: bool = False, **kwargs: Any) -> dict[str, Any]:
        if not is_application(obj):
            return dict(self.cluster.replace(obj, *args, dry_run=dry_run, **kwargs))
        return self._write(obj, dry_run)

    def delete(self, obj: Mapping[str, Any], propagation: str = "Foreground",
               dry_run: bool = False) -> dict[str, Any] | None:
        if not is_application(obj):
            return self.cluster.delete(obj, propagation=propagation, dry_run=dry_run)  # type: ignore[no-any-return]
        name = str((obj.get("metadata") or {}).get("name") or "")
        stored = self._stored(name)
        if stored is None:
            return None
        refused = adoption_refused(self.parent, stored)
        if refused:
            raise _conflict(f"not deleted: {refused}", obj)
        if dry_run or stored.deletion:
            return application_object(stored, None)
        delete_child(self.engine, stored, initiated_by=f"{ACTOR_PREFIX}{self.parent}")
        return application_object(stored, None)

    # ---- helpers -------------------------------------------------------------------------

    def _stored(self, name: str) -> StoredApp | None:
        try:
            return self.engine.state.get_app(name)
        except NotFoundError:
            return None

    def _write(self, obj: Mapping[str, Any], dry_run: bool) -> dict[str, Any]:
        """Create or update the child ``obj`` names (a dry run: only check it)."""
        from gitferry.audit import AuditLog

        if tracking.is_hook(obj) or tracking.HOOK_LABEL in ((obj.get("metadata") or {}).get("labels") or {}):
            raise _conflict("an Application as a sync hook is not supported by gitferry", obj, 422, "Invalid")
        try:
            app = validate_application(self.engine.state, child_manifest(obj))
        except InvalidSpecError as exc:
            raise _conflict("; ".join(exc.problems), obj, 422, "Invalid") from None
        if app.name == self.parent:
            raise _conflict("an application cannot render itself", obj, 422, "Invalid")
        stored = self._stored(app.name)
        if stored is not None:
            refused = adoption_refused(self.parent, stored)
            if refused:
                raise _conflict(refused, obj)
            if stored.deletion:
                raise _conflict(f"application {app.name!r} is being deleted; the next sync creates it again once "
                                "it is gone", obj)
        if dry_run:
            if stored is not None and stored.app.to_manifest() == app.to_manifest():
                return application_object(stored, None)
            return tracking.stamp(self.parent, app.to_manifest())
        actor = f"{ACTOR_PREFIX}{self.parent}"
        source = app.spec.source
        details = {"repoURL": source.repo_url, "targetRevision": source.target_revision, "ownerApp": self.parent,
                   **({"chart": source.chart} if source.chart else {"path": source.path})}
        if stored is None:
            self.engine.state.put_app(app, owner=self.parent)
            AuditLog(self.engine.state).record(actor, "app.create", app.name, **details)
            reason = "create"
        elif stored.app.to_manifest() != app.to_manifest():
            self.engine.state.put_app(app, expected_version=stored.version, owner=self.parent)
            AuditLog(self.engine.state).record(actor, "app.update", app.name, **details)
            reason = "refresh"
        else:
            return application_object(stored, None)
        try:  # its first (or next) refresh now, as for an app registered through the API
            self.engine.request_render(app, reason=reason, initiated_by=actor)
        except GitferryError as exc:
            self.engine.record_comparison_error(app, None, None, exc)
        return application_object(self.engine.state.get_app(app.name), None)


def view(engine: Engine, parent: str, cluster: Any) -> ClusterView:
    return ClusterView(engine, parent, cluster)


def waiting_on_children(cluster: Any) -> bool:
    """Whether the last health gate found a child app not healthy yet (and forget it)."""
    waiting = bool(getattr(cluster, "waiting_on_children", False))
    if waiting:
        cluster.waiting_on_children = False
    return waiting


def delete_child(engine: Engine, stored: StoredApp, *, initiated_by: str) -> None:
    """Delete a child app as Argo CD deletes an Application: with the resources finalizer its
    objects go first (:mod:`gitferry.deletion`), without it the app alone (its objects stay)."""
    from gitferry import deletion
    from gitferry.audit import AuditLog
    from gitferry.pipeline import tree_key

    finalizers = stored.app.metadata.finalizers
    if any(f in deletion.FINALIZERS for f in finalizers):
        deletion.start(engine, stored, propagation=deletion.propagation_for(finalizers, None),
                       initiated_by=initiated_by)
        AuditLog(engine.state).record(initiated_by, "app.delete", stored.app.name, cascade=True)
        return
    engine.state.delete_app(stored.app.name)
    engine.manifests.delete(tree_key(stored.app.name))
    AuditLog(engine.state).record(initiated_by, "app.delete", stored.app.name, cascade=False)


def orphan_children(state: StateStore, parent: str) -> list[str]:
    """A parent forgotten without cascade: its children stay, owned by nobody (as if
    registered through the API). Returns their names."""
    names = [s.app.name for s in state.list_owned(parent)]
    for name in names:
        state.set_owner(name, None)
    return names


__all__ = ["API_VERSION", "ClusterView", "Sourced", "adoption_refused", "application_object", "check_destination",
           "check_rendered", "child_manifest", "delete_child", "is_application", "orphan_children",
           "remember_source", "validate_application", "view", "waiting_on_children"]
