"""What the management API and the webhook do, behind the thin api/webhook handlers.

Every answer is a plain JSON-able dict. Credentials go into Secrets Manager and are
never returned: repositories and clusters come back as metadata only.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

import yaml

from gitferry import webhooks
from gitferry.audit import AuditLog
from gitferry.errors import GitferryError, InvalidSpecError, NotFoundError, UnauthorizedError
from gitferry.model import Application, Cluster, Repository
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
                expected = self.state.get_app(app.name).version
            except NotFoundError:
                expected = None
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
                "metadata": {"name": s.app.name},
                "spec": s.app.to_manifest()["spec"],
                "status": _summary(status.to_json_dict()) if status else {},
            })
        return {"items": items}

    def get_app(self, name: str) -> dict[str, Any]:
        """Spec and status. The status's two per-object lists (``resources`` and
        ``operationState.syncResult.resources``) are cut to the first :data:`SHOWN_RESOURCES`
        so the answer stays far below Lambda's 6 MB response limit for any app size;
        ``status.resourcesSummary`` counts everything and links the pages of the rest."""
        stored = self.state.get_app(name)
        status = self.state.get_status(name, include_history=True)
        manifest = stored.app.to_manifest()
        manifest["status"] = _bounded_status(name, status.to_json_dict()) if status else {}
        return manifest

    def delete_app(self, name: str, caller: str = "api") -> dict[str, Any]:
        """Forget the app. Like Argo CD without the resources finalizer, live objects stay."""
        from gitferry.pipeline import tree_key

        self.state.delete_app(name)
        self.engine.manifests.delete(tree_key(name))
        self.audit.record(caller, "app.delete", name)
        return {"deleted": name}

    def sync(self, name: str, body: str | bytes | None, caller: str) -> dict[str, Any]:
        """Sync now at the tracked revision (or ``revision`` from the body)."""
        app = self.state.get_app(name).app
        options = parse_document(body, "sync request") if body else {}
        revision = options.get("revision")
        commit = None
        if revision:  # a Git ref or, for a chart from a Helm repository, a version / constraint
            commit = self.engine.resolve_revision(app, str(revision))
        request = self.engine.request_render(app, reason="sync", initiated_by=caller, sync=True, commit=commit)
        self.audit.record(caller, "app.sync", name, revision=request.commit)
        return {"app": name, "revision": request.commit, "queued": True}

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
        request = self.engine.request_render(app, reason="rollback", initiated_by=caller, sync=True,
                                             commit=entry.revision)
        self.audit.record(caller, "app.rollback", name, revision=request.commit, history=history_id)
        return {"app": name, "revision": request.commit, "queued": True, "history": history_id}

    def history(self, name: str) -> dict[str, Any]:
        self.state.get_app(name)
        return {"items": [h.to_json_dict() for h in self.state.list_history(name)]}

    def resources(self, name: str, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of the resource list: ``items``, ``total`` and ``nextCursor`` (absent on
        the last page; pass it back as ``cursor``)."""
        size, offset = _page_args(limit, cursor)
        self.state.get_app(name)
        status = self.state.get_status(name)
        rows = [r.to_json_dict() for r in (status.resources if status else [])]
        return _page(rows, offset, size)

    def sync_results(self, name: str, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of the last operation's per-object results (``operationState.syncResult.resources``)."""
        size, offset = _page_args(limit, cursor)
        self.state.get_app(name)
        status = self.state.get_status(name)
        result = status.operation_state.sync_result if status and status.operation_state else None
        return _page([r.to_json_dict() for r in (result.resources if result else [])], offset, size)

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
    """A list row: no resource list nor per-object results (an app may have thousands)."""
    row = {k: v for k, v in status.items() if k not in ("resources", "history")}
    result = (row.get("operationState") or {}).get("syncResult")
    if isinstance(result, dict) and "resources" in result:
        row["operationState"] = {**row["operationState"], "syncResult": {
            k: v for k, v in result.items() if k != "resources"}}
    return row


#: per-object rows shown in GET /api/v1/applications/{name}; the rest are paged.
SHOWN_RESOURCES = 500
#: page size bounds of the resources / sync-results routes (default, maximum).
DEFAULT_PAGE, MAX_PAGE = 500, 1000


def _bounded_status(name: str, status: dict[str, Any]) -> dict[str, Any]:
    resources = status.get("resources") or []
    by_sync: dict[str, int] = {}
    by_health: dict[str, int] = {}
    for r in resources:
        by_sync[str(r.get("status"))] = by_sync.get(str(r.get("status")), 0) + 1
        health = (r.get("health") or {}).get("status")
        if health:
            by_health[health] = by_health.get(health, 0) + 1
    summary: dict[str, Any] = {"total": len(resources), "shown": min(len(resources), SHOWN_RESOURCES),
                               "bySync": by_sync, "byHealth": by_health}
    if len(resources) > SHOWN_RESOURCES:
        status["resources"] = resources[:SHOWN_RESOURCES]
        summary["next"] = f"/api/v1/applications/{name}/resources?cursor={_cursor(SHOWN_RESOURCES)}"
    result = (status.get("operationState") or {}).get("syncResult")
    if isinstance(result, dict) and len(result.get("resources") or []) > SHOWN_RESOURCES:
        summary["syncResults"] = {"total": len(result["resources"]), "shown": SHOWN_RESOURCES,
                                  "next": f"/api/v1/applications/{name}/sync-results?cursor={_cursor(SHOWN_RESOURCES)}"}
        result["resources"] = result["resources"][:SHOWN_RESOURCES]
    status["resourcesSummary"] = summary
    return status


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _page_args(limit: str | None, cursor: str | None) -> tuple[int, int]:
    problems = []
    size = DEFAULT_PAGE
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
            problems.append(f"limit: must be an integer from 1 to {MAX_PAGE}")
        else:
            size = int(limit)
    offset = 0
    if cursor:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            if not text.startswith("offset:") or not text[7:].isdigit():
                raise ValueError(text)
            offset = int(text[7:])
        except ValueError:
            problems.append("cursor: not a cursor this API returned")
    if problems:
        raise InvalidSpecError(problems, "invalid page request")
    return size, offset


def _page(rows: list[dict[str, Any]], offset: int, size: int) -> dict[str, Any]:
    page: dict[str, Any] = {"items": rows[offset:offset + size], "total": len(rows)}
    if offset + size < len(rows):
        page["nextCursor"] = _cursor(offset + size)
    return page


__all__ = ["Service", "parse_document"]
