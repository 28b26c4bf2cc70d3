"""What the management API and the webhook do, behind the thin api/webhook handlers.

Every answer is a plain JSON-able dict. Credentials go into Secrets Manager and are
never returned: repositories and clusters come back as metadata only.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import yaml
from pydantic import ValidationError

from gitferry import deletion, webhooks
from gitferry.audit import AuditLog
from gitferry.errors import (
    ConflictError,
    GitferryError,
    HelmRepoError,
    InvalidSpecError,
    NotFoundError,
    RevisionNotFoundError,
    UnauthorizedError,
    UnprocessableError,
)
from gitferry.messages import ManualSync, SyncResource
from gitferry.model import Application, Cluster, Repository, SyncPolicy, format_validation_error
from gitferry.pipeline import Engine
from gitferry.secrets import RepoCredentials


def parse_document(body: str | bytes | None, what: str) -> dict[str, Any]:
    """A JSON or YAML mapping from a request body, or InvalidSpecError naming the line."""
    if not body:
        raise InvalidSpecError(["body: a document is required"], f"invalid {what}")
    text = body.decode() if isinstance(body, bytes) else body
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidSpecError([f"body: {where}{getattr(exc, 'problem', None) or exc}"], f"invalid {what}") from None
    if not isinstance(doc, dict):
        raise InvalidSpecError(["body: must be a mapping"], f"invalid {what}")
    return doc


class Service:
    """API operations over the engine's stores."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state = engine.state
        self.secrets = engine.secrets
        self.audit = AuditLog(engine.state)

    # ------------------------------------------------------------------ authentication

    def authorize(self, authorization: str | None) -> None:
        """Require ``Authorization: Bearer <token>`` matching the token in Secrets Manager
        (``<prefix>api-token``). No token configured means no access at all: the API registers
        clusters and credentials, so it never runs open by default."""
        expected = self.secrets.get_api_token()
        if not expected:
            raise UnauthorizedError(f"no API token configured: put one in Secrets Manager as {self.secrets.api_token_name()}")
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise UnauthorizedError("missing or invalid bearer token")

    # ------------------------------------------------------------------ applications

    def create_app(self, body: str | bytes | None, *, upsert: bool = False, caller: str = "api") -> dict[str, Any]:
        """Register an Application manifest. Its destination cluster must be registered first,
        so a typo in ``destination.server`` is refused now rather than failing every tick."""
        app = Application.from_manifest(parse_document(body, "Application"))
        dest = app.spec.destination
        try:
            self.state.find_cluster(server=dest.server, name=dest.name)
        except NotFoundError:
            where = f"server {dest.server!r}" if dest.server else f"name {dest.name!r}"
            raise InvalidSpecError(
                [f"spec.destination: no cluster registered with {where}; register it with POST /api/v1/clusters"]
            ) from None
        expected = None
        if upsert:
            try:
                stored = self.state.get_app(app.name)
            except NotFoundError:
                stored = None
            if stored is not None and stored.deletion:
                raise ConflictError(f"application {app.name!r} is being deleted")
            expected = stored.version if stored is not None else None
        self.state.put_app(app, expected_version=expected)
        self.audit.record(caller, "app.update" if expected is not None else "app.create", app.name,
                          repoURL=app.spec.source.repo_url,
                          **({"chart": app.spec.source.chart} if app.spec.source.chart else {"path": app.spec.source.path}),
                          targetRevision=app.spec.source.target_revision)
        # Look at it now rather than at the next tick; a Git error shows as a condition.
        try:
            self.engine.request_render(app, reason="create", initiated_by=caller)
        except GitferryError as exc:
            self.engine.record_comparison_error(app, None, None, exc)
        return self.get_app(app.name)

    def list_apps(self) -> dict[str, Any]:
        stored = self.state.list_apps()
        statuses = self.state.get_statuses([s.app.name for s in stored]) if stored else {}
        items = []
        for s in stored:
            status = statuses.get(s.app.name)
            items.append({
                "metadata": {"name": s.app.name, **_deletion_metadata(s.app, s.deletion)},
                "spec": s.app.to_manifest()["spec"],
                "status": _summary(status.to_json_dict()) if status else {},
            })
        return {"items": items}

    def get_app(self, name: str) -> dict[str, Any]:
        stored = self.state.get_app(name)
        status = self.state.get_status(name, include_history=True)
        manifest = stored.app.to_manifest()
        manifest["metadata"].update(_deletion_metadata(stored.app, stored.deletion))
        manifest["status"] = status.to_json_dict() if status else {}
        return manifest

    def delete_app(self, name: str, query: dict[str, str] | None = None, caller: str = "api") -> tuple[int, dict[str, Any]]:
        """Argo CD's app deletion. ``cascade`` (default true, as ``argocd app delete``): the app's
        objects are deleted first, asynchronously by the apply stage (deletion.py), and the app
        shows ``metadata.deletionTimestamp`` until they are gone: 202. ``cascade=false``: the app
        is forgotten now and its objects stay: 200. ``propagationPolicy``: foreground (default,
        or the ``/background`` finalizer's) | background."""
        from gitferry.pipeline import tree_key

        cascade, propagation = _delete_options(query or {})
        stored = self.state.get_app(name)  # 404 for an app that does not exist
        if not cascade:
            self.state.delete_app(name)
            self.engine.manifests.delete(tree_key(name))
            self.audit.record(caller, "app.delete", name, cascade=False)
            return 200, {"deleted": name, "cascade": False}
        record = deletion.start(self.engine, stored, propagation=deletion.propagation_for(
            stored.app.metadata.finalizers, propagation), initiated_by=caller)
        self.audit.record(caller, "app.delete", name, cascade=True, propagation=record.get("propagation"))
        return 202, {"app": name, "cascade": True, "deletionTimestamp": record["deletionTimestamp"],
                     "propagationPolicy": str(record.get("propagation", "")).lower(), "queued": True}

    def sync(self, name: str, body: str | bytes | None, caller: str) -> dict[str, Any]:
        """Argo CD's sync request: ``{revision, prune, dryRun, resources, syncOptions}``, every
        field optional. Refused with 409 while another operation is requested or Running."""
        stored = self.state.get_app(name)
        app = stored.app
        options = parse_document(body, "sync request") if body else {}
        request_fields = _sync_request(name, options)
        if stored.deletion:
            raise ConflictError(f"application {name!r} is being deleted")
        resources = request_fields.get("resources")
        if resources is not None:
            resources = self._check_resources(name, resources)
        revision = request_fields.get("revision")
        commit = self._resolve(app, revision) if revision else self._resolve(app, None)
        manual = ManualSync(operationId=uuid.uuid4().hex, prune=request_fields.get("prune"),
                            dryRun=bool(request_fields.get("dryRun")), resources=resources,
                            syncOptions=request_fields.get("syncOptions"))
        request = self._queue_operation(app, "sync", caller, commit, manual)
        self.audit.record(caller, "app.sync", name, revision=request.commit,
                          **{k: v for k, v in options.items() if k in ("prune", "dryRun") and v},
                          **({"resources": len(resources)} if resources is not None else {}))
        answer: dict[str, Any] = {"app": name, "revision": request.commit, "queued": True}
        answer.update({k: options[k] for k in ("prune", "dryRun", "syncOptions") if k in options})
        if resources is not None:
            answer["resources"] = [r.model_dump() for r in resources]
        return answer

    def _resolve(self, app: Application, revision: str | None) -> str:
        """The commit (or chart version) to sync. A revision the repository does not have is the
        request's fault (422); a repository that cannot be read stays a 502 (GitError) or a
        HelmRepoError. The repository is read first (the engine's one ls-remote / index fetch),
        then the revision looked up in what was read, so the two failures never mix."""
        from gitferry.pipeline import _repo_key

        source = app.spec.source
        revision_of = self.engine._resolver(*_repo_key(source))
        try:
            return revision_of(source, revision or source.target_revision)
        except (RevisionNotFoundError, HelmRepoError) as exc:
            raise UnprocessableError(f"revision: {exc}") from None

    def _check_resources(self, name: str, resources: list[SyncResource]) -> list[SyncResource]:
        """Selective sync names objects of the app as its last comparison saw them; a resource
        given without a namespace matches the app's only object of that group, kind and name."""
        status = self.state.get_status(name)
        known = [(r.group, r.kind, r.namespace, r.name) for r in (status.resources if status else [])]
        out: list[SyncResource] = []
        problems: list[str] = []
        for i, r in enumerate(resources):
            matches = [k for k in known if k[:2] == (r.group, r.kind) and k[3] == r.name
                       and (k[2] == r.namespace or not r.namespace)]
            if len(matches) == 1:
                out.append(SyncResource(group=r.group, kind=r.kind, namespace=matches[0][2], name=r.name))
                continue
            what = f"{r.kind}{'.' + r.group if r.group else ''} {r.namespace + '/' if r.namespace else ''}{r.name}"
            problems.append(f"resources[{i}]: {what} is "
                            + ("ambiguous: give its namespace" if matches else f"not a resource of application {name!r}"))
        if problems:
            raise InvalidSpecError(problems, "invalid sync request")
        return out

    def _orphaned(self, name: str) -> bool:
        """A Running operation that nothing runs or will resume: no live lease, and neither a
        wave boundary (``resumeFrom``) nor a retry (``retryAt``) for the poll to pick up."""
        status = self.state.get_status(name)
        op = status.operation_state if status else None
        if op is None or op.phase != "Running":
            return False
        doc = (op.operation or {}).get("sync") or {}
        if doc.get("resumeFrom") or doc.get("retryAt"):
            return False
        lease = self.state.get_operation(name)
        return lease is None or lease.expires_at <= int(self.engine.clock().timestamp())

    def _queue_operation(self, app: Application, reason: str, caller: str, commit: str,
                         manual: ManualSync) -> Any:
        """Mark the operation requested (409 if one is already), then queue its render; the mark
        is given back if queueing fails, else by the pipeline (Engine.end_request)."""
        stale_after = self.engine.settings.operation_timeout_seconds
        try:
            self.state.request_operation(app.name, manual.operation_id, stale_after=stale_after)
        except ConflictError:
            if not self._orphaned(app.name):
                raise
            # Its apply died after recording Running (Lambda timeout): nothing would ever finish
            # it, so a new operation may take over once its lease has expired.
            self.state.request_operation(app.name, manual.operation_id, stale_after=stale_after, over_orphan=True)
        try:
            return self.engine.request_render(app, reason=reason, initiated_by=caller, sync=True, commit=commit,
                                              manual=manual)
        except BaseException:
            self.state.clear_operation_request(app.name, manual.operation_id)
            raise

    def refresh(self, name: str, caller: str) -> dict[str, Any]:
        app = self.state.get_app(name).app
        request = self.engine.request_render(app, reason="refresh", initiated_by=caller)
        self.audit.record(caller, "app.refresh", name, revision=request.commit)
        return {"app": name, "revision": request.commit, "queued": True}

    def rollback(self, name: str, history_id: int, caller: str) -> dict[str, Any]:
        """Re-apply a recorded revision. Refused while automated sync is on, as in Argo CD:
        the next poll would undo it."""
        app = self.state.get_app(name).app
        if app.automated is not None:
            raise InvalidSpecError(["spec.syncPolicy.automated: rollback cannot be initiated when auto-sync is enabled"])
        entry = self.state.get_history(name, history_id)
        request = self._queue_operation(app, "rollback", caller, entry.revision,
                                        ManualSync(operationId=uuid.uuid4().hex))
        self.audit.record(caller, "app.rollback", name, revision=request.commit, history=history_id)
        return {"app": name, "revision": request.commit, "queued": True, "history": history_id}

    def history(self, name: str) -> dict[str, Any]:
        self.state.get_app(name)
        return {"items": [h.to_json_dict() for h in self.state.list_history(name)]}

    def resources(self, name: str) -> dict[str, Any]:
        self.state.get_app(name)
        status = self.state.get_status(name)
        return {"items": [r.to_json_dict() for r in (status.resources if status else [])]}

    def resource_tree(self, name: str) -> dict[str, Any]:
        """Argo CD's ApplicationTree shape: managed objects and their live descendants, as the
        last comparison saw them (empty before the first one)."""
        from gitferry.pipeline import tree_key

        self.state.get_app(name)
        try:
            return self.engine.manifests.get_json(tree_key(name))
        except NotFoundError:
            return {"nodes": [], "truncated": False}

    def audit_day(self, day: str | None) -> dict[str, Any]:
        """The audit trail of one UTC day (default today), newest first."""
        from datetime import UTC, datetime

        day = day or f"{datetime.now(UTC):%Y-%m-%d}"
        try:
            events = self.audit.day(day)
        except ValueError:
            raise InvalidSpecError([f"date: {day!r} is not YYYY-MM-DD"], "invalid audit query") from None
        return {"date": day, "items": [e.model_dump(mode="json") for e in events]}

    # ------------------------------------------------------------------ clusters and repositories

    def register_cluster(self, body: str | bytes | None, caller: str = "api") -> dict[str, Any]:
        """``{name, kubeconfig, server?, namespace?}``: the kubeconfig goes to Secrets Manager;
        ``server`` defaults to the kubeconfig's current cluster."""
        doc = parse_document(body, "cluster")
        problems = [f"{k}: field required" for k in ("name", "kubeconfig") if not doc.get(k)]
        unknown = sorted(set(doc) - {"name", "kubeconfig", "server", "namespace"})
        problems += [f"{k}: unknown field" for k in unknown]
        if problems:
            raise InvalidSpecError(problems, "invalid cluster")
        kubeconfig = doc["kubeconfig"] if isinstance(doc["kubeconfig"], str) else yaml.safe_dump(doc["kubeconfig"])
        server = doc.get("server") or _kubeconfig_server(kubeconfig)
        version = _server_version(kubeconfig)
        cluster = Cluster(name=str(doc["name"]), server=server, namespace=str(doc.get("namespace") or "default"),
                          server_version=version)
        self.secrets.put_kubeconfig(cluster.name, kubeconfig)
        self.state.put_cluster(cluster)
        self.audit.record(caller, "cluster.register", cluster.name, server=cluster.server)
        return cluster.to_json_dict()

    def list_clusters(self) -> dict[str, Any]:
        return {"items": [c.to_json_dict() for c in self.state.list_clusters()]}

    def register_repository(self, body: str | bytes | None, caller: str = "api") -> dict[str, Any]:
        """``{url, username?, password?, token?}``: credentials to Secrets Manager only."""
        doc = parse_document(body, "repository")
        problems = [] if doc.get("url") else ["url: field required"]
        problems += [f"{k}: unknown field" for k in sorted(set(doc) - {"url", "username", "password", "token", "name"})]
        if problems:
            raise InvalidSpecError(problems, "invalid repository")
        creds = RepoCredentials(username=doc.get("username"), password=doc.get("password"), token=doc.get("token"))
        has_credentials = bool(creds.password or creds.token)
        if has_credentials:
            self.secrets.put_repo_credentials(doc["url"], creds)
        repo = Repository(url=doc["url"], name=doc.get("name"), username=doc.get("username"),
                          has_credentials=has_credentials)
        self.state.put_repository(repo)
        self.audit.record(caller, "repository.register", repo.url, hasCredentials=has_credentials)
        return repo.to_json_dict()

    def list_repositories(self) -> dict[str, Any]:
        return {"items": [r.to_json_dict() for r in self.state.list_repositories()]}

    # ------------------------------------------------------------------ webhooks

    def verify_webhook(self, provider: str, headers: dict[str, str], body: bytes) -> None:
        """Raise WebhookError (401/404/413) unless the delivery is signed with the provider's
        secret from Secrets Manager. Done before anything else touches the request."""
        secret = self.secrets.get_webhook_secret(provider)
        if not secret:
            raise webhooks.WebhookError(401, f"no webhook secret configured for {provider}")
        webhooks.verify_signature(provider, headers, body, secret)

    def webhook(self, provider: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Queue a render for every app tracking the pushed ref of a VERIFIED delivery
        (see :meth:`verify_webhook`). Answers fast: one table read, a queue message per app."""
        event = webhooks.parse_push(provider, headers, body)
        if event.kind == "ping":
            return 200, {"message": "pong"}
        pushed = {webhooks.normalise_repo_url(u) for u in event.repo_urls}
        queued = []
        for stored in self.state.list_apps():
            app = stored.app
            if app.spec.source.chart is not None:
                continue  # a Helm repository is not pushed to; the poll sees its new versions
            if webhooks.normalise_repo_url(app.spec.source.repo_url) not in pushed:
                continue
            if not _tracks(app.spec.source.target_revision, event):
                continue
            # The pushed tip is the commit for a branch/tag the app tracks by name; HEAD is
            # re-resolved (the push may not be to the default branch).
            exact = event.commit and app.spec.source.target_revision not in ("HEAD", "")
            request = self.engine.request_render(
                app, reason="webhook", initiated_by=f"webhook:{provider}:{event.delivery}",
                commit=event.commit if exact else None,
            )
            queued.append({"app": app.name, "revision": request.commit})
            self.audit.record(request.initiated_by, "app.refresh", app.name, revision=request.commit, ref=event.ref)
        return 202, {"queued": queued}


#: Argo CD SyncRequest fields gitferry does not implement (refused rather than ignored).
_SYNC_UNSUPPORTED = frozenset({"strategy", "manifests", "infos", "retryStrategy", "revisions", "sourcePositions",
                               "appNamespace", "project"})
_SYNC_FIELDS = frozenset({"name", "revision", "prune", "dryRun", "resources", "syncOptions"})


def _sync_request(app: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Validate a sync request body; every problem named by its field."""
    problems: list[str] = []
    for key in sorted(set(doc) - _SYNC_FIELDS, key=str):
        problems.append(f"{key}: {'not supported by gitferry' if key in _SYNC_UNSUPPORTED else 'unknown field'}")
    out: dict[str, Any] = {}
    if "name" in doc and doc["name"] != app:
        problems.append(f"name: {doc['name']!r} is not the application of the path ({app!r})")
    revision = doc.get("revision")
    if revision is not None:
        if not isinstance(revision, str | int | float) or isinstance(revision, bool) or not str(revision).strip():
            problems.append("revision: must be a non-empty string")
        else:
            out["revision"] = str(revision).strip()
    for key in ("prune", "dryRun"):
        if key in doc and doc[key] is not None:
            if not isinstance(doc[key], bool):
                problems.append(f"{key}: must be true or false")
            else:
                out[key] = doc[key]
    options = doc.get("syncOptions")
    if isinstance(options, dict) and set(options) <= {"items"}:  # Argo CD's REST shape {items: [...]}
        options = options.get("items") or []
    if options is not None:
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            problems.append("syncOptions: must be a list of strings like CreateNamespace=true")
        else:
            try:
                SyncPolicy.model_validate({"syncOptions": options})
            except ValidationError as exc:
                problems += format_validation_error(exc)
            else:
                out["syncOptions"] = options
    resources = doc.get("resources")
    if resources is not None:
        if not isinstance(resources, list):
            problems.append("resources: must be a list of {group, kind, namespace, name}")
        else:
            parsed: list[SyncResource] = []
            for i, item in enumerate(resources):
                if not isinstance(item, dict):
                    problems.append(f"resources[{i}]: must be a mapping of group, kind, namespace, name")
                    continue
                bad = sorted(set(item) - {"group", "kind", "namespace", "name"}, key=str)
                problems += [f"resources[{i}].{k}: unknown field" for k in bad]
                missing = [k for k in ("kind", "name") if not item.get(k)]
                problems += [f"resources[{i}].{k}: field required" for k in missing]
                wrong = [k for k in ("group", "kind", "namespace", "name") if k in item and not isinstance(item[k], str)]
                problems += [f"resources[{i}].{k}: must be a string" for k in wrong]
                if not bad and not missing and not wrong:
                    parsed.append(SyncResource(**{k: item.get(k) or "" for k in ("group", "kind", "namespace", "name")}))
            out["resources"] = parsed
    if problems:
        raise InvalidSpecError(problems, "invalid sync request")
    return out


def _delete_options(query: dict[str, str]) -> tuple[bool, str | None]:
    """``cascade`` (default true) and ``propagationPolicy`` of a DELETE; anything else is refused."""
    problems = [f"{k}: unknown query parameter" for k in sorted(set(query) - {"cascade", "propagationPolicy"})]
    cascade_text = query.get("cascade", "true").lower()
    if cascade_text not in ("true", "false"):
        problems.append(f"cascade: {query.get('cascade')!r} is not true or false")
    propagation = query.get("propagationPolicy")
    if propagation is not None and propagation.lower() not in ("foreground", "background"):
        problems.append(f"propagationPolicy: {propagation!r} is not foreground or background")
    if problems:
        raise InvalidSpecError(problems, "invalid delete request")
    return cascade_text == "true", propagation.lower() if propagation else None


def _deletion_metadata(app: Application, record: dict[str, Any] | None) -> dict[str, Any]:
    """What Argo CD shows on an Application being deleted: its deletionTimestamp, and the resources
    finalizer that holds it until its objects are gone."""
    if not record:
        return {}
    finalizers = list(app.metadata.finalizers)
    if not any(f in deletion.FINALIZERS for f in finalizers):
        finalizers.append(deletion.FINALIZER)
    return {"deletionTimestamp": record.get("deletionTimestamp"), "finalizers": finalizers}


def _tracks(target_revision: str, event: webhooks.PushEvent) -> bool:
    """Does a push of ``event.ref`` move ``target_revision``? HEAD follows any branch push
    (resolved later against the remote's HEAD, so a push elsewhere re-renders to no effect)."""
    if event.commit.strip("0") == "":
        return False  # ref deleted
    rev = target_revision or "HEAD"
    if rev == "HEAD":
        return event.branch is not None
    return rev in (event.branch, event.tag, event.ref)


def _server_version(kubeconfig: str) -> str:
    """Connect once, as ``argocd cluster add`` does: a kubeconfig that cannot reach its cluster
    is refused now, with the reason, instead of failing every comparison later."""
    from kubernetes import client as k8s_client

    from gitferry.kube import KubeError, api_client_from_kubeconfig

    try:
        api = api_client_from_kubeconfig(kubeconfig)
    except KubeError as exc:
        raise InvalidSpecError([f"kubeconfig: {exc}"], "invalid cluster") from None
    try:
        return str(k8s_client.VersionApi(api).get_code(_request_timeout=10).git_version)
    except Exception as exc:  # noqa: BLE001 - any transport/auth failure is the user's to fix
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise InvalidSpecError([f"kubeconfig: cannot reach the cluster's API server: {reason}"],
                               "invalid cluster") from None
    finally:
        api.close()


def _kubeconfig_server(kubeconfig: str) -> str:
    try:
        doc = yaml.safe_load(kubeconfig)
        contexts = {c["name"]: c["context"] for c in doc.get("contexts", [])}
        clusters = {c["name"]: c["cluster"] for c in doc.get("clusters", [])}
        current = doc.get("current-context") or next(iter(contexts))
        return str(clusters[contexts[current]["cluster"]]["server"])
    except Exception:
        raise InvalidSpecError(["kubeconfig: cannot find the current context's cluster server"], "invalid cluster") from None


def _summary(status: dict[str, Any]) -> dict[str, Any]:
    """A list row: no resource list (an app may have thousands)."""
    return {k: v for k, v in status.items() if k not in ("resources", "history")}


__all__ = ["Service", "parse_document"]
