"""What the management API and the webhook do, behind the thin api/webhook handlers.

Every answer is a plain JSON-able dict. Credentials go into Secrets Manager and are
never returned: repositories and clusters come back as metadata only.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any

import yaml

from gitferry import loader, webhooks
from gitferry.audit import AuditLog
from gitferry.errors import (
    GitferryError,
    InvalidSpecError,
    NotFoundError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from gitferry.model import Application, Cluster, Repository, check_cluster_name, check_repo_url
from gitferry.pipeline import Engine
from gitferry.secrets import RepoCredentials

#: the largest request body the API reads (an Application, a cluster with its kubeconfig)
MAX_BODY_BYTES = 1024 * 1024
#: what a request body may cost to parse (a YAML alias bomb is refused, not expanded)
BODY_LIMITS = loader.Limits(max_bytes=MAX_BODY_BYTES, max_documents=1, max_nodes=100_000,
                            max_aliases=100, max_depth=64)


def parse_document(body: str | bytes | None, what: str) -> dict[str, Any]:
    """A JSON or YAML mapping from a request body, or InvalidSpecError naming the line;
    PayloadTooLargeError above :data:`MAX_BODY_BYTES`."""
    if not body:
        raise InvalidSpecError(["body: a document is required"], f"invalid {what}")
    size = len(body.encode() if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body of {size} bytes is larger than the {MAX_BODY_BYTES} byte limit")
    try:
        doc = loader.load_one(body, limits=BODY_LIMITS)
    except loader.LoadError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise InvalidSpecError([f"body: {where}{exc.message}"], f"invalid {what}") from None
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
        scheme, _, given = (authorization or "").partition(" ")
        expected = self.secrets.get_api_token()
        if expected and scheme.lower() == "bearer" and not _same(given.strip(), expected):
            expected = self.secrets.get_api_token(fresh=True)  # rotated just now? (rate-limited)
        if not expected:
            raise UnauthorizedError(f"no API token configured: put one in Secrets Manager as {self.secrets.api_token_name()}")
        if scheme.lower() != "bearer" or not _same(given.strip(), expected):
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
        stored = self.state.get_app(name)
        status = self.state.get_status(name, include_history=True)
        manifest = stored.app.to_manifest()
        manifest["status"] = status.to_json_dict() if status else {}
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

    def audit_day(self, day: str | None, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of the audit trail of a UTC day (default today), newest first; ``nextCursor``
        is there when more events follow (pass it back as ``cursor``)."""
        from datetime import UTC, datetime

        from gitferry.audit import DEFAULT_PAGE

        day = day or f"{datetime.now(UTC):%Y-%m-%d}"
        try:
            datetime.strptime(day, "%Y-%m-%d")
        except ValueError:
            raise InvalidSpecError([f"date: {day!r} is not YYYY-MM-DD"], "invalid audit query") from None
        if limit is not None and not limit.isdigit():
            raise InvalidSpecError([f"limit: {limit[:20]!r} is not a number"], "invalid audit query")
        try:
            events, next_cursor = self.audit.day(day, int(limit) if limit else DEFAULT_PAGE, cursor or None)
        except ValueError as exc:
            field = "cursor" if "cursor" in str(exc) else "limit"
            raise InvalidSpecError([f"{field}: {exc}"], "invalid audit query") from None
        answer: dict[str, Any] = {"date": day, "items": [e.model_dump(mode="json") for e in events]}
        if next_cursor:
            answer["nextCursor"] = next_cursor
        return answer

    # ------------------------------------------------------------------ clusters and repositories

    def register_cluster(self, body: str | bytes | None, caller: str = "api") -> dict[str, Any]:
        """``{name, kubeconfig, server?, namespace?}``: the kubeconfig goes to Secrets Manager;
        ``server`` defaults to the kubeconfig's current cluster."""
        doc = parse_document(body, "cluster")
        problems = [f"{k}: field required" for k in ("name", "kubeconfig") if not doc.get(k)]
        unknown = sorted(set(doc) - {"name", "kubeconfig", "server", "namespace"})
        problems += [f"{k}: unknown field" for k in unknown]
        problems += _field_problems(doc, {"name": check_cluster_name, "namespace": _namespace})
        if not isinstance(doc.get("kubeconfig"), (str, dict)):
            problems.append("kubeconfig: must be a kubeconfig document (a string or a mapping)")
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
        problems += _field_problems(doc, {"url": check_repo_url})
        problems += [f"{k}: must be a string" for k in ("username", "password", "token", "name")
                     if doc.get(k) is not None and not isinstance(doc[k], str)]
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
        (see :meth:`verify_webhook`).

        The payload only says "look now": its commit SHA is never deployed (a replayed old
        body would roll a branch back). Each pushed repository is read once (ls-remote), and
        a push to ``refs/heads/X`` reaches only apps whose targetRevision resolves to that
        branch, a push to ``refs/tags/X`` only apps tracking that tag, exactly as the poll
        resolves them; HEAD apps follow pushes to the branch HEAD points at."""
        from gitferry import git

        event = webhooks.parse_push(provider, headers, body)
        if event.kind == "ping":
            return 200, {"message": "pong"}
        pushed = {webhooks.normalise_repo_url(u) for u in event.repo_urls}
        by_url: dict[str, list[Application]] = {}
        for stored in self.state.list_apps():
            app = stored.app
            if app.spec.source.chart is not None:
                continue  # a Helm repository is not pushed to; the poll sees its new versions
            if webhooks.normalise_repo_url(app.spec.source.repo_url) not in pushed:
                continue
            if event.branch is None and event.tag is None:
                continue
            by_url.setdefault(app.spec.source.repo_url, []).append(app)
        queued = []
        initiated_by = f"webhook:{provider}:{event.delivery}"
        for url, apps in by_url.items():
            credentials = self.secrets.get_repo_credentials(url)
            try:
                refs = git.ls_remote(url, credentials)  # one read per repository, as the poll does
            except GitferryError as exc:
                for app in apps:
                    self.engine.record_comparison_error(app, self.state.get_status(app.name), None, exc)
                continue
            for app in apps:
                if not _tracks(refs, app.spec.source.target_revision, event.ref):
                    continue
                try:
                    commit = git.resolve(refs, app.spec.source.target_revision, url)
                except GitferryError as exc:
                    self.engine.record_comparison_error(app, self.state.get_status(app.name), None, exc)
                    continue
                request = self.engine.request_render(app, reason="webhook", initiated_by=initiated_by,
                                                     commit=commit)
                queued.append({"app": app.name, "revision": request.commit})
                self.audit.record(initiated_by, "app.refresh", app.name, revision=request.commit, ref=event.ref)
        return 202, {"queued": queued}


def _tracks(refs: dict[str, str], target_revision: str, pushed_ref: str) -> bool:
    """Does a push of ``pushed_ref`` (``refs/heads/X`` / ``refs/tags/X``) move ``target_revision``?

    The revision is matched to the ref it resolves to in the repository, in git's order
    (``refs/<rev>``, then ``refs/tags/<rev>``, then ``refs/heads/<rev>``, as
    :func:`gitferry.git.resolve`): an app tracking tag ``v1`` is not moved by a push to a
    branch named ``v1``. HEAD follows pushes to the branch whose tip HEAD now is (the default
    branch). A commit SHA is pinned and never moved; a deleted ref moves nothing here (the
    poll reports it)."""
    if pushed_ref not in refs:
        return False  # deleted, or not visible to us: nothing to resolve
    rev = (target_revision or "HEAD").strip()
    if rev == "HEAD":
        return pushed_ref.startswith("refs/heads/") and refs.get("HEAD") == refs[pushed_ref]
    candidates = [rev] if rev.startswith("refs/") else [f"refs/{rev}", f"refs/tags/{rev}", f"refs/heads/{rev}"]
    tracked = next((ref for ref in candidates if ref in refs), None)
    return tracked == pushed_ref


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _namespace(value: str) -> str:
    if len(value) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value):
        raise ValueError("must be a DNS-1123 label (a Kubernetes namespace name)")
    return value


def _field_problems(doc: dict[str, Any], checks: dict[str, Callable[[str], str]]) -> list[str]:
    """``field: reason`` for every present field its check refuses (strings only)."""
    problems = []
    for key, check in checks.items():
        value = doc.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            problems.append(f"{key}: must be a string")
            continue
        try:
            check(value)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    return problems


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
