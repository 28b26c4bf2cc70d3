"""What the management API and the webhook do, behind the thin api/webhook handlers.

Every answer is a plain JSON-able dict. Credentials go into Secrets Manager and are
never returned: repositories and clusters come back as metadata only.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from gitferry import children, clusters, deletion, loader, repositories, webhooks
from gitferry.audit import AuditLog
from gitferry.errors import (
    ConflictError,
    GitferryError,
    HelmRepoError,
    InvalidSpecError,
    NotFoundError,
    PayloadTooLargeError,
    RevisionNotFoundError,
    UnauthorizedError,
    UnprocessableError,
)
from gitferry.messages import ManualSync, SyncResource
from gitferry.model import (
    IN_CLUSTER_NAME,
    IN_CLUSTER_SERVER,
    Application,
    Cluster,
    Repository,
    SyncPolicy,
    format_validation_error,
)
from gitferry.pipeline import Engine
from gitferry.secrets import RepoCredentials
from gitferry.tokens import ADMIN, Principal, TokenStore

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
        self.tokens = TokenStore(engine.secrets, engine.state)

    # ------------------------------------------------------------------ authentication

    def authorize(self, authorization: str | None, *, iam_arn: str | None = None,
                  iam: bool = False) -> Principal:
        """Who is calling (tokens.py). ``iam``: API Gateway authenticated the caller with SigV4
        (template parameter ApiAuth=AWS_IAM) and its IAM policy allowed the method; the caller
        is its principal ARN, with the admin role (narrow it with execute-api IAM policies)."""
        if iam:
            if not iam_arn:
                raise UnauthorizedError("no IAM identity on the request (ApiAuth=AWS_IAM): sign it with SigV4")
            return Principal(f"api:{iam_arn}", ADMIN)
        return self.tokens.authenticate(authorization)

    def create_token(self, body: str | bytes | None, caller: str) -> dict[str, Any]:
        created = self.tokens.create(parse_document(body, "token"))
        self.audit.record(caller, "token.create", created["name"], role=created["role"])
        return created

    def list_tokens(self) -> dict[str, Any]:
        return {"items": self.tokens.list()}

    def revoke_token(self, name: str, caller: str) -> dict[str, Any]:
        answer = self.tokens.revoke(name)
        self.audit.record(caller, "token.revoke", name, role=answer.get("role"))
        return answer

    # ------------------------------------------------------------------ applications

    def create_app(self, body: str | bytes | None, *, upsert: bool = False, caller: str = "api") -> dict[str, Any]:
        """Register an Application manifest. Its destination cluster must be registered first,
        so a typo in ``destination.server`` is refused now rather than failing every tick."""
        app = children.validate_application(self.state, parse_document(body, "Application"))
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
        first = app.spec.all_sources[0]
        self.audit.record(caller, "app.update" if expected is not None else "app.create", app.name,
                          repoURL=first.repo_url,
                          **({"chart": first.chart} if first.chart else {"path": first.path}),
                          targetRevision=first.target_revision,
                          **({"sources": len(app.spec.all_sources)} if app.spec.multi_source else {}))
        # Look at it now rather than at the next tick; a Git error shows as a condition.
        try:
            self.engine.request_render(app, reason="create", initiated_by=caller)
        except GitferryError as exc:
            self.engine.record_comparison_error(app, None, None, exc)
        return self.get_app(app.name)

    def _check_destination(self, app: Application) -> None:
        children.check_destination(self.state, app)

    def update_app(self, name: str, body: str | bytes | None, caller: str, *, patch: bool) -> dict[str, Any]:
        """``PUT`` (``patch=False``: the whole manifest, its name the path's) or ``PATCH`` (a JSON
        merge patch of spec / labels / annotations / finalizers) of a registered app, checked like
        a create and written under the optimistic lock (409 when it changed meanwhile, or since
        the ``metadata.resourceVersion`` sent). A changed spec is compared again at once."""
        from gitferry import appupdate

        stored = self.state.get_app(name)  # 404
        doc = parse_document(body, "Application patch" if patch else "Application")
        if stored.deletion:
            raise ConflictError(f"application {name!r} is being deleted")
        expected = appupdate.expected_version(doc, stored.version, name)
        before = stored.app.to_manifest()
        manifest = (appupdate.patched_manifest(before, doc, name) if patch
                    else appupdate.put_manifest(doc, name))
        app = Application.from_manifest(manifest)
        self._check_destination(app)
        after = app.to_manifest()
        if after == before:
            return self.get_app(name)  # nothing changed: no new version, no refresh
        self.state.put_app(app, expected_version=expected)
        changed = appupdate.changed_spec_fields(before.get("spec") or {}, after.get("spec") or {})
        self.audit.record(caller, "app.update", name, method="PATCH" if patch else "PUT", version=expected + 1,
                          spec=changed, metadata=before.get("metadata") != after.get("metadata"))
        if changed:
            try:
                self.engine.request_render(app, reason="update", initiated_by=caller)
            except GitferryError as exc:
                self.engine.record_comparison_error(app, self.state.get_status(name), None, exc)
        return self.get_app(name)

    def terminate_operation(self, name: str, caller: str) -> tuple[int, dict[str, Any]]:
        """``argocd app terminate-op``: 200 when the operation was ended now (it waited between
        invocations), 202 when the running apply stops at its next wave boundary (termination.py)."""
        from gitferry import termination

        answer = termination.terminate(self.engine, name, caller)
        return (202 if answer["phase"] == "Terminating" else 200), answer

    def events(self, name: str, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
        """One page of the app's audit events, newest first (``nextCursor`` while more follow)."""
        from gitferry.audit import DEFAULT_PAGE

        self.state.get_app(name)  # 404
        if limit is not None and not limit.isdigit():
            raise InvalidSpecError([f"limit: {limit[:20]!r} is not a number"], "invalid events query")
        try:
            events, next_cursor = self.audit.app_events(name, int(limit) if limit else DEFAULT_PAGE, cursor or None)
        except ValueError as exc:
            field = "cursor" if "cursor" in str(exc) else "limit"
            raise InvalidSpecError([f"{field}: {exc}"], "invalid events query") from None
        answer: dict[str, Any] = {"app": name, "items": [e.model_dump(mode="json") for e in events]}
        if next_cursor:
            answer["nextCursor"] = next_cursor
        return answer

    def list_apps(self, query: dict[str, str] | None = None) -> dict[str, Any]:
        """One page of applications in name order, filtered (:mod:`gitferry.applist`): ``items``
        and ``nextCursor`` (absent on the last page; pass it back as ``cursor``)."""
        from gitferry import applist

        filters = applist.Filters.from_query(query)

        def row(doc: dict[str, Any], version: int, record: dict[str, Any] | None,
                status: dict[str, Any] | None, owner: str | None) -> dict[str, Any]:
            meta = doc.get("metadata") or {}
            metadata: dict[str, Any] = {"name": meta.get("name"), "resourceVersion": str(version)}
            if meta.get("labels"):
                metadata["labels"] = meta["labels"]
            if record:
                finalizers = list(meta.get("finalizers") or [])
                if not any(f in deletion.FINALIZERS for f in finalizers):
                    finalizers.append(deletion.FINALIZER)
                metadata.update({"deletionTimestamp": record.get("deletionTimestamp"), "finalizers": finalizers})
            summary = _summary(status) if status else {}
            if owner:  # app of apps: as in GET /applications/{name}
                summary["ownerApp"] = owner
            return {"metadata": metadata, "spec": doc.get("spec") or {}, "status": summary}

        return applist.list_page(self.state, filters, row)

    def count_apps(self, query: dict[str, str] | None = None) -> dict[str, Any]:
        """Apps per sync and per health status over the whole fleet (the list's filters apply)."""
        from gitferry import applist

        return applist.count(self.state, applist.Filters.from_query(query, applist.COUNT_PARAMETERS))

    def get_app(self, name: str) -> dict[str, Any]:
        """Spec and status. The status's two per-object lists (``resources`` and
        ``operationState.syncResult.resources``) are cut to the first :data:`SHOWN_RESOURCES`
        so the answer stays far below Lambda's 6 MB response limit for any app size;
        ``status.resourcesSummary`` counts everything and links the pages of the rest."""
        stored = self.state.get_app(name)
        status = self.state.get_status(name, include_history=True)
        manifest = stored.app.to_manifest()
        manifest["metadata"].update(_deletion_metadata(stored.app, stored.deletion))
        manifest["metadata"]["resourceVersion"] = str(stored.version)  # pass back on PUT / PATCH
        manifest["status"] = _bounded_status(name, status.to_json_dict()) if status else {}
        op = manifest["status"].get("operationState") or {}
        if op.get("phase") == "Running":
            from gitferry import termination

            if termination.requested_by(self.state, name, termination.operation_id(status)):
                op["phase"] = "Terminating"  # asked to stop: the running apply ends it at its next wave
        if stored.owner:  # app of apps: the parent whose render this app comes from (read-only)
            manifest["status"]["ownerApp"] = stored.owner
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
            children.orphan_children(self.state, name)  # app of apps: its children stay, owned by nobody
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

        if app.spec.multi_source:
            if revision:
                raise UnprocessableError("revision: a sync to one revision is not supported by gitferry for "
                                         "spec.sources applications: change the sources' targetRevision instead")
            return self.engine.resolve_revision(app)
        source = app.spec.source
        assert source is not None
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

    def refresh(self, name: str, caller: str, *, hard: bool = False) -> dict[str, Any]:
        """Argo CD's refresh: render and compare now. ``hard``: render again even when the render
        cache holds these inputs (a normal refresh uses the cache)."""
        app = self.state.get_app(name).app
        request = self.engine.request_render(app, reason="refresh", initiated_by=caller, hard=hard)
        self.audit.record(caller, "app.refresh", name, revision=request.commit, **({"hard": True} if hard else {}))
        return {"app": name, "revision": request.commit, "queued": True, **({"hard": True} if hard else {})}

    def rollback(self, name: str, history_id: int, caller: str) -> dict[str, Any]:
        """Re-apply a recorded revision with the source(s) recorded with it. Refused while
        automated sync is on, as in Argo CD: the next poll would undo it."""
        app = self.state.get_app(name).app
        if app.automated is not None:
            raise InvalidSpecError(["spec.syncPolicy.automated: rollback cannot be initiated when auto-sync is enabled"])
        entry = self.state.get_history(name, history_id)
        # The entry's own source(s), as Argo CD rolls back: the spec's path, chart or sources
        # may have changed since (entries recorded before sources were kept use the spec's).
        request = self._queue_operation(app, "rollback", caller, entry.revision,
                                        ManualSync(operationId=uuid.uuid4().hex, source=entry.source,
                                                   sources=entry.sources))
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

    def diff(self, name: str) -> dict[str, Any]:
        """``argocd app diff``: per resource its group, kind, namespace, name, status and a
        unified diff (live -> target, Secret values masked); the objects compared again also carry
        ``live`` and ``target`` (normalised, Secret values masked; ``live`` null when missing).

        The objects the last comparison found OutOfSync (at most :data:`MAX_DIFF_RESOURCES`)
        are compared again now, with the server-side dry run of :func:`gitferry.diff.compare`,
        against the manifests that comparison used (``status.sync.manifests``); the rest are
        listed with their stored status. Diff text is cut after :data:`MAX_DIFF_BYTES` in all
        (``truncated`` says so). 422 before the first comparison."""
        from gitferry import diff as diffing
        from gitferry import tracking

        app = self.state.get_app(name).app
        status = self.state.get_status(name)
        key = status.sync.manifests if status else None
        if status is None or not key:
            raise UnprocessableError(f"application {name!r} has not been compared yet: refresh it and try again")
        try:
            desired = self.engine.manifests.get_manifests(key)
        except NotFoundError:
            raise UnprocessableError(f"the manifests of application {name!r}'s last comparison are gone "
                                     "(expired): refresh it and try again") from None
        stored = [r for r in status.resources if not r.hook]
        wanted = {(r.group, r.kind, r.namespace, r.name) for r in stored
                  if r.status != "Synced" or r.requires_pruning}
        wanted = set(sorted(wanted)[:MAX_DIFF_RESOURCES])
        loose = {(g, k, n) for g, k, _, n in wanted}
        desired = [d for d in desired if (tracking.group_of(d), str(d.get("kind", "")),
                                          str((d.get("metadata") or {}).get("name") or "")) in loose]
        fresh: dict[tuple[str, str, str, str], Any] = {}
        if wanted:
            cluster = self.engine.cluster_for(app)
            live = [o for o in cluster.list_by_label(tracking.label_selector(app.name))
                    if tracking.resource_key(o) in wanted]
            comparison = diffing.compare(cluster, app.name, desired, live, namespace=app.spec.destination.namespace,
                                         ignore_differences=app.spec.ignore_differences)
            fresh = {(r.group, r.kind, r.namespace, r.name): r for r in comparison.resources}
        items: list[dict[str, Any]] = []
        budget, truncated = MAX_DIFF_BYTES, False
        for r in stored:
            row_key = (r.group, r.kind, r.namespace, r.name)
            row: dict[str, Any] = {"group": r.group, "kind": r.kind, "namespace": r.namespace, "name": r.name,
                                   "status": r.status or "Unknown", "requiresPruning": r.requires_pruning, "diff": ""}
            now = fresh.get(row_key)
            if now is not None:
                row["status"], row["requiresPruning"] = now.status, now.requires_pruning
                if now.message and now.status == "Unknown":
                    row["message"] = now.message
                if len(now.diff.encode()) <= budget:
                    row["diff"] = now.diff
                    budget -= len(now.diff.encode())
                    # the live and desired objects the diff compares (normalised, Secret values masked)
                    manifests = {"live": now.live, "target": now.target}
                    size = len(json.dumps(manifests, separators=(",", ":")).encode())
                    if size <= budget:
                        row.update(manifests)
                        budget -= size
                    else:
                        truncated = True
                else:
                    truncated = True
            elif row_key in wanted:
                row["status"] = "Synced"  # compared again: no difference any more
            elif r.status != "Synced" and not r.requires_pruning:
                truncated = True  # beyond MAX_DIFF_RESOURCES: status as last seen, no diff
            items.append(row)
        differs = any(i["status"] != "Synced" or i["requiresPruning"] for i in items)
        return {"app": name, "revision": status.sync.revision, "items": items, "differences": differs,
                "truncated": truncated}

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

    def register_cluster(self, body: str | bytes | None, caller: str = "api", *, upsert: bool = False) -> dict[str, Any]:
        """``{name, kubeconfig | eks, context?, server?, namespace?, inCluster?}`` (gitferry.clusters):
        a kubeconfig goes to Secrets Manager, an EKS cluster stores no credential. ``server``
        defaults to the context's cluster. A name already registered is 409 unless ``upsert``
        (then it is replaced)."""
        doc = parse_document(body, "cluster")
        problems = clusters.check_document(doc)
        if problems:
            raise InvalidSpecError(problems, "invalid cluster")
        if not upsert and self._cluster_or_none(str(doc["name"])) is not None:
            raise ConflictError(f"cluster {doc['name']!r} is already registered: "
                                "delete it first or register with ?upsert=true to replace it")
        return self._store_cluster(clusters.prepare(doc), caller, "cluster.register")

    def update_cluster(self, name: str, body: str | bytes | None, caller: str = "api", *,
                       merge: bool) -> dict[str, Any]:
        """PUT (``merge=False``: the whole registration document) or PATCH (a JSON merge patch of
        it: kubeconfig, context, eks.roleArn, namespace, inCluster...). Connects again; 404 for
        an unknown cluster, 409 when the server changes under applications that name it."""
        current = self.state.get_cluster(name)
        doc = parse_document(body, "cluster")
        if merge:
            doc = clusters.merge_patch(current, doc, lambda: self.secrets.get_kubeconfig(name))
        else:
            doc.setdefault("name", name)
        if doc.get("name") != name:
            raise InvalidSpecError([f"name: {doc.get('name')!r} differs from the cluster in the path ({name!r})"],
                                   "invalid cluster")
        registration = clusters.prepare(doc)  # checks the document first
        if registration.cluster.server.rstrip("/") != current.server.rstrip("/"):
            by_server = [a for a in self._apps_on(current)
                         if not self.state.get_app(a).spec.destination.name]
            if by_server:
                raise ConflictError(f"cluster {name!r}: its server would change from {current.server} to "
                                    f"{registration.cluster.server} under application(s) {', '.join(by_server)} "
                                    "that name it by server")
        return self._store_cluster(registration, caller, "cluster.update")

    def _store_cluster(self, registration: clusters.Registration, caller: str, action: str) -> dict[str, Any]:
        cluster = registration.cluster
        registered = self.state.list_clusters()
        # Moving or dropping the in-cluster mark would retarget (or strand) the apps it resolves.
        losing = [c for c in registered if c.in_cluster and (c.name != cluster.name) == cluster.in_cluster]
        for old in losing:
            users = sorted(self._in_cluster_apps(old, registered))
            if users:
                raise ConflictError(f"cluster {old.name!r} is what https://kubernetes.default.svc / in-cluster means "
                                    f"for application(s) {', '.join(users)}: moving or removing the in-cluster mark "
                                    "would retarget them; change or delete them first")
        if registration.kubeconfig is not None:
            self.secrets.put_kubeconfig(cluster.name, registration.kubeconfig)
        else:  # EKS: no credential; a kubeconfig stored earlier under this name is removed
            self.secrets.delete_kubeconfig(cluster.name)
        if cluster.in_cluster:  # at most one cluster is what kubernetes.default.svc means
            for other in registered:
                if other.in_cluster and other.name != cluster.name:
                    self.state.put_cluster(other.model_copy(update={"in_cluster": False}))
        self.state.put_cluster(cluster)
        self.audit.record(caller, action, cluster.name, server=cluster.server, inCluster=cluster.in_cluster,
                          **({"eks": cluster.eks.arn or cluster.eks.cluster} if cluster.eks else {}))
        return cluster.to_json_dict()

    def list_clusters(self) -> dict[str, Any]:
        return {"items": [c.to_json_dict() for c in self.state.list_clusters()]}

    def _cluster_or_none(self, name: str) -> Cluster | None:
        try:
            return self.state.get_cluster(name)
        except NotFoundError:
            return None

    def get_cluster(self, name: str) -> dict[str, Any]:
        """A registered cluster's metadata (never its kubeconfig) and the apps deploying to it."""
        cluster = self.state.get_cluster(name)
        return {**cluster.to_json_dict(), "auth": cluster.auth, "applications": self._apps_on(cluster),
                "info": clusters.connection_info(cluster, lambda: self.secrets.get_kubeconfig(name))}

    def _apps_on(self, cluster: Cluster) -> list[str]:
        """Apps that deploy through this cluster: named by it, or by its server when no other
        registered cluster has that server (they would lose their destination without it)."""
        server = cluster.server.rstrip("/")
        registered = self.state.list_clusters()
        shared = any(c.server.rstrip("/") == server for c in registered if c.name != cluster.name)
        via_mark = self._in_cluster_apps(cluster, registered)
        return sorted(s.app.name for s in self.state.list_apps()
                      if s.app.spec.destination.name == cluster.name
                      or (not shared and not s.app.spec.destination.name
                          and (s.app.spec.destination.server or "").rstrip("/") == server)
                      or s.app.name in via_mark)

    def _in_cluster_apps(self, cluster: Cluster, registered: list[Cluster]) -> set[str]:
        """Apps whose ``kubernetes.default.svc`` / ``in-cluster`` destination means ``cluster``
        (it is marked, and no cluster is registered under that literal server / name)."""
        if not cluster.in_cluster:
            return set()
        literal_name = any(c.name == IN_CLUSTER_NAME for c in registered)
        literal_server = any(c.server.rstrip("/") == IN_CLUSTER_SERVER for c in registered)
        return {s.app.name for s in self.state.list_apps()
                if (s.app.spec.destination.name == IN_CLUSTER_NAME and not literal_name)
                or ((s.app.spec.destination.server or "").rstrip("/") == IN_CLUSTER_SERVER and not literal_server)}

    def delete_cluster(self, name: str, query: dict[str, str] | None = None, caller: str = "api") -> dict[str, Any]:
        """Forget a cluster and its kubeconfig. 409 while an application deploys to it, unless
        ``force=true`` (its apps then show a ComparisonError until it is registered again)."""
        force = _force(query or {})
        cluster = self.state.get_cluster(name)
        users = self._apps_on(cluster)
        if users and not force:
            raise ConflictError(f"cluster {name!r} is the destination of application(s) {', '.join(users)}: "
                                "delete them first or use ?force=true")
        self.state.delete_cluster(name)
        self.secrets.delete_kubeconfig(name)
        self.audit.record(caller, "cluster.delete", name, force=force, applications=len(users))
        return {"deleted": name, "applications": users}

    def register_repository(self, body: str | bytes | None, caller: str = "api", *,
                            upsert: bool = False) -> dict[str, Any]:
        """Register a repository (repositories.py: fields, connection check); credentials go to
        Secrets Manager only. A URL already registered is 409 unless ``upsert`` (then replaced)."""
        repo, creds = repositories.parse(parse_document(body, "repository"))
        existing = self._repository_or_none(repo.url)
        if not upsert and existing is not None:
            raise ConflictError(f"repository {repo.url!r} is already registered: "
                                "delete it first or register with ?upsert=true to replace it")
        return self._store_repository(repo, creds, existing, caller, "repository.register")

    def update_repository(self, ref: str, body: str | bytes | None, caller: str, *, replace: bool) -> dict[str, Any]:
        """PUT (``replace``: the body is the whole registration) or PATCH (only the fields given
        change; ``null`` removes one) a registered repository, e.g. to rotate its credentials."""
        existing = self._find_repository(ref)
        doc = parse_document(body, "repository")
        if replace:
            doc.setdefault("url", existing.url)
            if doc["url"] != existing.url:
                raise InvalidSpecError(["url: cannot be changed (register the new URL, delete the old one)"],
                                       "invalid repository update")
        else:
            doc = repositories.merge(existing, self.secrets.get_repo_credentials(existing.url)
                                     if existing.has_credentials else None, doc)
        repo, creds = repositories.parse(doc)
        return self._store_repository(repo, creds, existing, caller, "repository.update")

    def _store_repository(self, repo: Repository, creds: RepoCredentials, existing: Repository | None,
                          caller: str, action: str) -> dict[str, Any]:
        repositories.check_connection(repo, creds)  # 422 naming why, before anything is kept
        if repo.has_credentials:
            self.secrets.put_repo_credentials(repo.url, creds)
        elif existing is not None and existing.has_credentials:
            self.secrets.delete_repo_credentials(repo.url)
        self.state.put_repository(repo)
        self.audit.record(caller, action, repo.url, type=repo.type, hasCredentials=repo.has_credentials)
        return repo.to_json_dict()

    def list_repositories(self) -> dict[str, Any]:
        return {"items": [r.to_json_dict() for r in self.state.list_repositories()]}

    def _repository_or_none(self, url: str) -> Repository | None:
        if len(url.encode("utf-8", errors="surrogatepass")) > _MAX_KEY_TEXT:
            return None  # longer than any key DynamoDB stores: never registered (and no 500 asking)
        try:
            return self.state.get_repository(url)
        except NotFoundError:
            return None

    def _find_repository(self, ref: str) -> Repository:
        """A repository by its URL or its ``name``."""
        found = self._repository_or_none(ref)
        if found is None:
            found = next((r for r in self.state.list_repositories() if r.name and r.name == ref), None)
        if found is None:
            raise NotFoundError(f"repository {ref!r} is not registered")
        return found

    def _apps_from(self, repo: Repository) -> list[str]:
        url = webhooks.normalise_repo_url(repo.url)
        return sorted(s.app.name for s in self.state.list_apps()
                      if any(webhooks.normalise_repo_url(src.repo_url) == url for src in s.app.spec.all_sources))

    def get_repository(self, ref: str) -> dict[str, Any]:
        """A registered repository (by URL or name; never its credentials) and the apps using it."""
        repo = self._find_repository(ref)
        return {**repo.to_json_dict(), "applications": self._apps_from(repo)}

    def delete_repository(self, ref: str, query: dict[str, str] | None = None, caller: str = "api") -> dict[str, Any]:
        """Forget a repository and its credentials. 409 while an application's source is in it,
        unless ``force=true`` (public repositories keep working without credentials)."""
        force = _force(query or {})
        repo = self._find_repository(ref)
        users = self._apps_from(repo)
        if users and not force:
            raise ConflictError(f"repository {repo.url!r} is the source of application(s) {', '.join(users)}: "
                                "delete them first or use ?force=true")
        self.state.delete_repository(repo.url)
        if repo.has_credentials:
            self.secrets.delete_repo_credentials(repo.url)
        self.audit.record(caller, "repository.delete", repo.url, force=force, applications=len(users))
        return {"deleted": repo.url, "applications": users}

    # ------------------------------------------------------------------ webhooks

    def verify_webhook(self, provider: str, headers: dict[str, str], body: bytes) -> None:
        """Raise WebhookError (401/404/413) unless the delivery is signed with the provider's
        secret from Secrets Manager. Done before anything else touches the request."""
        if provider not in webhooks.PROVIDERS:
            raise webhooks.WebhookError(404, f"unknown webhook provider {provider!r}: use {', '.join(webhooks.PROVIDERS)}")
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
        multi: list[Application] = []
        for stored in self.state.list_apps():
            app = stored.app
            if app.spec.source is None:  # spec.sources: any of its Git repositories pushed to
                if (event.branch is not None or event.tag is not None) and any(
                        src.chart is None and not src.repo_url.startswith("oci://")
                        and webhooks.normalise_repo_url(src.repo_url) in pushed
                        for src in app.spec.all_sources):
                    multi.append(app)
                continue
            if app.spec.source.chart is not None or app.spec.source.repo_url.startswith("oci://"):
                continue  # a Helm repository / OCI registry is not pushed to; the poll sees new versions
            if webhooks.normalise_repo_url(app.spec.source.repo_url) not in pushed:
                continue
            if event.branch is None and event.tag is None:
                continue
            by_url.setdefault(app.spec.source.repo_url, []).append(app)
        queued = []
        initiated_by = f"webhook:{provider}:{event.delivery}"
        for app in multi:  # every source resolved again (a refresh of an unchanged one is harmless)
            try:
                request = self.engine.request_render(app, reason="webhook", initiated_by=initiated_by)
            except GitferryError as exc:
                self.engine.record_comparison_error(app, self.state.get_status(app.name), None, exc)
                continue
            queued.append({"app": app.name, "revision": request.commit})
            self.audit.record(initiated_by, "app.refresh", app.name, revision=request.commit, ref=event.ref)
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


#: bytes of a name or URL inside a DynamoDB key (the partition key limit is 2048 bytes)
_MAX_KEY_TEXT = 2000


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


def _force(query: dict[str, str]) -> bool:
    problems = [f"{k}: unknown query parameter" for k in sorted(set(query) - {"force"})]
    text = query.get("force", "false").lower()
    if text not in ("true", "false"):
        problems.append(f"force: {query.get('force')!r} is not true or false")
    if problems:
        raise InvalidSpecError(problems, "invalid delete request")
    return text == "true"


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
#: objects GET .../diff compares again, and the diff text it returns in all
MAX_DIFF_RESOURCES, MAX_DIFF_BYTES = 500, 2 * 1024 * 1024
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
