"""The stage logic of gitferry: poll, render, diff, apply, report.

Each public method of :class:`Engine` is what one Lambda stage does with one
message; the handlers only parse events and shape responses. The decisions
(what is due, whether to sync) are pure functions at the bottom of this module,
so they are tested without any I/O.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from gitferry import children, followups, tracking
from gitferry import diff as diffing
from gitferry.blobs import ManifestStore
from gitferry.errors import (
    GitError,
    GitferryError,
    HelmRepoError,
    NotFoundError,
    RenderError,
    RevisionNotFoundError,
)
from gitferry.messages import ApplyRequest, DiffRequest, FollowUpRequest, RenderRequest, ReportRequest
from gitferry.model import (
    Application,
    ApplicationSource,
    AppStatus,
    ComparedTo,
    Condition,
    HealthStatus,
    HelmOptions,
    HistoryEntry,
    OperationInitiator,
    OperationState,
    ResourceResult,
    ResourceStatus,
    SyncOperationResult,
    SyncStatus,
    parse_duration,
)
from gitferry.queues import Queues
from gitferry.secrets import SecretStore
from gitferry.state import StateStore, parsed_specs, parsed_statuses

FLEET = "_fleet"  # message group / app name of the fleet summary sent by each poll tick
# Conditions a comparison owns: replaced by every comparison, so a fixed error disappears.
COMPARISON_CONDITIONS = ("ComparisonError", "InvalidSpecError")
# Desired objects live with another app's tracking annotation; replaced by every successful comparison.
SHARED_RESOURCE = "SharedResourceWarning"
# An object produced by more than one of spec.sources (the last one wins); replaced by every comparison.
REPEATED_RESOURCE = "RepeatedResourceWarning"
MAX_SHARED_CONDITIONS = 50


@dataclass(frozen=True)
class Settings:
    """Everything the engine reads from the environment (template.yaml sets it)."""

    table_name: str
    bucket_name: str
    secret_prefix: str = "gitferry/"
    git_cache_dir: str = "/tmp/gitferry-git"
    # Extracted charts from Helm repositories, by digest (helmrepo.fetch_chart).
    helm_cache_dir: str = "/tmp/gitferry-helm"
    # Pulled OCI charts and artifacts, by manifest digest (ocipull.pull); chart dependencies (helmdeps).
    oci_cache_dir: str = "/tmp/gitferry-oci"
    helm_deps_cache_dir: str = "/tmp/gitferry-helmdeps"
    discovery_cache_dir: str = "/tmp/gitferry-discovery"
    drift_check_seconds: int = 180
    # Per-app CloudWatch metrics (each app x name is a custom metric, $0.30 a month at list
    # price): "status" = OutOfSync and Degraded per app, "all" = also Healthy, DriftedResources,
    # SyncSucceeded/SyncFailed and StageDuration, "none" = the fleet metrics only.
    per_app_metrics: str = "status"
    # While a rollout is in progress the app is looked at again this often (poll picks it up).
    rollout_check_seconds: int = 10
    operation_timeout_seconds: int = 900
    # How long one apply invocation may wait for a wave / hook to settle (also bounded by the
    # Lambda's remaining time minus sync_wait_margin_seconds), polling every sync_poll_seconds.
    sync_wait_seconds: float = 600.0
    sync_wait_margin_seconds: float = 60.0
    sync_poll_seconds: float = 1.0
    # Delay of the follow-up message when a wave outlasts the wait; and how overdue a follow-up
    # must be before the poll (the safety net) re-sends it.
    followup_seconds: float = 2.0
    followup_grace_seconds: float = 60.0
    # How soon an ApplyRequest that finds another operation's lease looks again (a delayed
    # follow-up, at the latest when the lease expires) instead of failing into the DLQ.
    lease_busy_seconds: float = 5.0
    # Argo CD's self-heal backoff: 5 s after the first self-heal, doubling up to 3 minutes.
    self_heal_backoff_seconds: float = 5.0
    self_heal_backoff_factor: float = 2.0
    self_heal_backoff_max_seconds: float = 180.0
    # How long one poll tick waits for a repository's ls-remote / index.yaml (all run at once).
    repo_timeout_seconds: int = 20

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            table_name=env["TABLE_NAME"],
            bucket_name=env["BUCKET_NAME"],
            secret_prefix=env.get("SECRET_PREFIX", "gitferry/"),
            git_cache_dir=env.get("GIT_CACHE_DIR", "/tmp/gitferry-git"),
            helm_cache_dir=env.get("HELM_CACHE_DIR", "/tmp/gitferry-helm"),
            oci_cache_dir=env.get("OCI_CACHE_DIR", "/tmp/gitferry-oci"),
            helm_deps_cache_dir=env.get("HELM_DEPS_CACHE_DIR", "/tmp/gitferry-helmdeps"),
            discovery_cache_dir=env.get("DISCOVERY_CACHE_DIR", "/tmp/gitferry-discovery"),
            drift_check_seconds=int(env.get("DRIFT_CHECK_SECONDS", "180")),
            per_app_metrics=env.get("PER_APP_METRICS", "status"),
            rollout_check_seconds=int(env.get("ROLLOUT_CHECK_SECONDS", "10")),
            sync_wait_seconds=float(env.get("SYNC_WAIT_SECONDS", "600")),
            followup_grace_seconds=float(env.get("FOLLOWUP_GRACE_SECONDS", "60")),
            self_heal_backoff_seconds=float(env.get("SELF_HEAL_BACKOFF_SECONDS", "5")),
            self_heal_backoff_max_seconds=float(env.get("SELF_HEAL_BACKOFF_MAX_SECONDS", "180")),
            repo_timeout_seconds=int(env.get("POLL_REPO_TIMEOUT_SECONDS", "20")),
        )


@dataclass
class MetricPoint:
    """One metric for the report stage to emit as EMF (dimensions beyond ``service``)."""

    name: str
    value: float
    unit: str = "Count"
    dimensions: dict[str, str] = field(default_factory=dict)


@dataclass
class PollResult:
    scheduled: list[RenderRequest]
    errors: dict[str, str]
    apps: int
    out_of_sync: int
    degraded: int


def now_utc() -> datetime:
    return datetime.now(UTC)


class Engine:
    """The pipeline over its adapters. Build with :meth:`from_env` in a Lambda."""

    def __init__(
        self,
        settings: Settings,
        state: StateStore,
        manifests: ManifestStore,
        secrets: SecretStore,
        queues: Queues,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.settings = settings
        self.state = state
        self.manifests = manifests
        self.secrets = secrets
        self.queues = queues
        self.clock = clock
        self.followups = followups.FollowUpStore(state)
        self._clusters: dict[str, tuple[str, Any]] = {}
        #: the specs and statuses the last poll tick parsed, kept for the next (a warm Lambda's
        #: ticks read the same apps, mostly unchanged); only the poll reads them, and never changes them
        self.poll_specs = parsed_specs()
        self.poll_statuses = parsed_statuses()

    @classmethod
    def from_env(cls) -> Engine:
        settings = Settings.from_env()
        manifests = ManifestStore(settings.bucket_name)
        return cls(
            settings,
            StateStore(settings.table_name, blobs=manifests),
            manifests,
            SecretStore(settings.secret_prefix),
            Queues(),
        )

    # ------------------------------------------------------------------ poll

    def poll(self, remaining_ms: Callable[[], int] | None = None) -> PollResult:
        """One tick: ONE ls-remote per Git repository and ONE index.yaml fetch per Helm chart
        repository, then a render message for every app whose commit (or resolved chart
        version) changed, whose refresh/sync was asked for, whose rollout is being followed or
        whose drift check is due. Ends with the fleet summary for the drift alarm. Listing,
        repository reads and sends overlap; each read is bounded (:mod:`gitferry.poll`);
        ``remaining_ms`` (the Lambda's remaining time) bounds them all."""
        from gitferry import poll as polling

        return polling.tick(self, remaining_ms)

    def request_render(self, app: Application, *, reason: str, initiated_by: str, sync: bool = False,
                       commit: str | None = None, manual: Any = None, hard: bool = False) -> RenderRequest:
        """Resolve the app's revision now (one ls-remote, or one index.yaml fetch for a chart) and
        queue a render: what the API's sync / refresh / rollback and the webhook do instead of
        waiting for the next tick."""
        if commit is None:
            commit = self.resolve_revision(app)
        now = self.clock()
        request = RenderRequest(app=app.name, commit=commit, reason=reason, initiatedBy=initiated_by,
                                startedAt=now.timestamp(), sync=sync, manual=manual, hard=hard)
        self.queues.send(request, dedup=f"{commit}:{reason}:{initiated_by}:{now.timestamp()}")
        return request

    def resolve_revision(self, app: Application, revision: str | None = None) -> str:
        """``revision`` (default the app's targetRevision) as the pipeline pins it: a commit SHA
        for a Git source, the chosen chart version for a chart from a Helm repository."""
        if app.spec.multi_source:
            if revision is not None:
                raise RevisionNotFoundError(
                    "a sync to one revision is not supported by gitferry for spec.sources applications: "
                    "change the sources' targetRevision instead", app.name, revision)
            return pinned_revision(app, {key: self._resolver(*key) for key in
                                         dict.fromkeys(_repo_key(s) for s in app.spec.all_sources)})
        source = app.spec.source
        assert source is not None
        kind, url = _repo_key(source)
        return self._resolver(kind, url)(source, revision or source.target_revision)

    def _resolver(self, kind: str, url: str) -> Callable[[ApplicationSource, str], str]:
        """Read the repository once (ls-remote / index.yaml) and return how to resolve a source's
        revision against what was read, so a tick costs one request per repository."""
        if kind == "oci":
            from gitferry import oci

            ref = oci.reference_for(url, None)
            return oci.resolver(ref, self._oci_access(ref))  # type: ignore[no-any-return]
        credentials = self.secrets.get_repo_credentials(url)
        if kind == "helm":
            from gitferry import helmrepo

            index = helmrepo.fetch_index(url, credentials)

            def chart_version(source: ApplicationSource, revision: str) -> str:
                return helmrepo.resolve(index, source.chart or "", revision).version

            return chart_version
        from gitferry import git  # dulwich: only the stages that read Git pay for its import

        refs = git.ls_remote(url, credentials)

        def commit_of(source: ApplicationSource, revision: str) -> str:
            return git.resolve(refs, revision, url)

        return commit_of

    # ------------------------------------------------------------------ render

    def render(self, request: RenderRequest) -> DiffRequest | None:
        """Render the app's sources at the pinned revision(s) and store the manifests; a Git or
        render error is recorded on the app as a ComparisonError condition naming the file, and
        the cluster is not touched. The same inputs are rendered once (:mod:`gitferry.rendercache`)
        unless the request is a hard refresh or the app reads the cluster (Helm ``lookup``)."""
        from gitferry import lookup_proxy, rendercache

        started = time.monotonic()
        app = self._app_or_none(request.app, request.manual)
        if app is None:
            return None
        try:
            kube_version = self._kube_version(app)
            lookup = lookup_proxy.wanted(app)
            if lookup:
                self._lookup_cluster(app)  # refused unless the destination allows it
            cache = rendercache.RenderCache(self.manifests)
            cache_key = None if lookup else self._render_cache_key(app, request.commit, kube_version)
            hit = cache.get(cache_key) if cache_key is not None and not request.hard else None
            if hit is not None:
                key, warnings = hit
            else:
                from gitferry import helmdeps

                dependencies = helmdeps.Access(self.secrets, self.state.list_repositories,
                                               self.settings.helm_deps_cache_dir)
                manifests, warnings = self._render_app(app, request.commit, kube_version, lookup, dependencies)
                children.check_rendered(self.state, app.name, manifests)  # app of apps: each child as the API would
                key = self.manifests.put_manifests(manifests)
                if cache_key is not None:  # no longer than the unlocked Helm dependencies it used
                    cache.put(cache_key, key, warnings, expires=dependencies.expires)
        except (GitError, RenderError, HelmRepoError) as exc:
            status = self.record_comparison_error(app, self.state.get_status(app.name), request.commit, exc)
            self.end_request(app.name, request.manual)
            self._report(app.name, "status", request, {"render": time.monotonic() - started}, status)
            return None
        diff_request = DiffRequest(
            app=app.name, commit=request.commit, manifests=key, reason=request.reason,
            initiatedBy=request.initiated_by, startedAt=request.started_at, sync=request.sync,
            manual=request.manual, warnings=warnings,
        )
        self.queues.send(diff_request, dedup=f"{request.commit}:{key}:{request.reason}:{request.started_at}")
        return diff_request

    def _render_app(self, app: Application, commit: str, kube_version: str | None, lookup: bool,
                    dependencies: Any) -> tuple[list[dict[str, Any]], list[str]]:
        """Check out / fetch every source and render them (one source, or spec.sources combined)."""
        from gitferry import git, lookup_proxy, render
        from gitferry import sources as multi

        def materialize(source: ApplicationSource, revision: str) -> tuple[Path, ApplicationSource]:
            if _repo_key(source)[0] == "oci":
                from gitferry import oci, ocipull

                ref = oci.reference_for(source.repo_url, source.chart)
                root, rendered = ocipull.source_tree(source, revision, self._oci_access(ref),
                                                     self.settings.oci_cache_dir)
                return Path(root), rendered
            credentials = self.secrets.get_repo_credentials(source.repo_url)
            if source.chart is not None:
                return self._fetch_chart(source, revision, credentials)
            return Path(git.checkout(source.repo_url, revision, credentials, self.settings.git_cache_dir)), source

        def render_with(kubeconfig: Path | None) -> tuple[list[dict[str, Any]], list[str]]:
            def render_one(root: Path, source: ApplicationSource, refs: dict[str, Path]) -> list[dict[str, Any]]:
                return render.render_source(root, source, app_name=app.name,
                                            namespace=app.spec.destination.namespace,
                                            kube_version=kube_version, refs=refs, kubeconfig=kubeconfig,
                                            dependencies=dependencies)

            return multi.render_sources(app, commit, materialize, render_one)

        if not lookup:
            return render_with(None)
        with lookup_proxy.ReadOnlyProxy(self._lookup_cluster(app).api_client) as proxy:
            return render_with(proxy.kubeconfig)

    def _render_cache_key(self, app: Application, commit: str, kube_version: str | None) -> str | None:
        """The cache key of this render: no checkout, no tool; a chart's digest from the index
        (None, not cached, for a chart its index gives no digest for: its content is unpinned)."""
        from gitferry import helmrepo, rendercache
        from gitferry import sources as multi

        revisions = multi.revisions_of(app, commit)
        digests: dict[int, str] = {}
        for i, (source, revision) in enumerate(zip(app.spec.all_sources, revisions, strict=True)):
            if source.chart is not None and _repo_key(source)[0] != "oci":  # an OCI revision is its digest
                index = helmrepo.fetch_index(source.repo_url, self.secrets.get_repo_credentials(source.repo_url))
                digests[i] = helmrepo.resolve(index, source.chart, revision).digest
                if not digests[i]:
                    return None
        return rendercache.cache_key(rendercache.cache_inputs(app, revisions, digests, kube_version))

    def _lookup_cluster(self, app: Application) -> Any:
        """The destination's client for a Helm ``lookup`` render, or a RenderError saying why not."""
        dest = app.spec.destination
        try:
            cluster = self.state.find_cluster(server=dest.server, name=dest.name)
        except NotFoundError as exc:
            raise RenderError(str(exc)) from None
        from gitferry import lookup_proxy

        if not cluster.allow_helm_lookup:
            raise RenderError(lookup_proxy.refusal(cluster.name))
        if lookup_proxy.conflicts(app):
            raise RenderError("; ".join(lookup_proxy.conflicts(app)))
        return self.cluster_for(app)

    def _oci_access(self, ref: Any) -> Any:
        """Credentials / plain HTTP for an OCI repository from the registered repositories."""
        from gitferry import oci

        return oci.access_for(ref, self.state.list_repositories(), self.secrets)

    def _fetch_chart(self, source: ApplicationSource, version: str,
                     credentials: Any) -> tuple[Path, ApplicationSource]:
        """The extracted chart ``version`` (checked against the index's digest; cached by it) and
        the source to render it with: the chart directory is the root, its helm options apply."""
        from gitferry import helmrepo

        chart = source.chart or ""
        index = helmrepo.fetch_index(source.repo_url, credentials)
        picked = helmrepo.resolve(index, chart, version)
        if picked.version != version:
            # A pinned revision is exact: the message says which version was chosen at poll time.
            raise HelmRepoError(f"chart {chart!r} version {version!r} is no longer in Helm repository "
                                f"{source.repo_url}", source.repo_url, version)
        chart_dir = helmrepo.fetch_chart(source.repo_url, chart, picked.version, picked.digest, credentials,
                                         self.settings.helm_cache_dir, urls=picked.urls)
        rendered = source.model_copy(update={"path": ".", "chart": None,
                                             "helm": source.helm or HelmOptions()})
        return chart_dir, rendered

    # ------------------------------------------------------------------ diff

    def diff(self, request: DiffRequest) -> ApplyRequest | None:
        """Compare the rendered manifests with the live cluster, store status, health and the
        resource list, and ask for a sync when the policy (or a person) says so."""
        from gitferry import sources as multi

        started = time.monotonic()
        app = self._app_or_none(request.app, request.manual)
        if app is None:
            return None
        previous = self.state.get_status(app.name) or AppStatus()
        if _superseded_recheck(request, previous):
            return None
        result = previous.operation_state.sync_result if previous.operation_state else None
        if request.reason == "rollout" and result is not None and result.revision == request.commit:
            app = multi.as_deployed(app, result)  # the operation's manifests, named by its sources (a rollback's)
        try:
            cluster = self.cluster_for(app)
            desired = self.manifests.get_manifests(request.manifests)
            live = cluster.list_by_label(tracking.label_selector(app.name))
            comparison = diffing.compare(cluster, app.name, desired, live,
                                         namespace=app.spec.destination.namespace,
                                         ignore_differences=app.spec.ignore_differences)
        except GitferryError as exc:
            self.record_comparison_error(app, previous, request.commit, exc)
            self.end_request(app.name, request.manual)
            return None
        except Exception as exc:  # a cluster we cannot reach: Unknown, recorded, retried next tick
            self.record_comparison_error(app, previous, request.commit, exc)
            self.end_request(app.name, request.manual)
            return None
        self._store_tree(app, cluster, live)
        now = self.clock()
        status = previous.model_copy(deep=True)
        status.sync = SyncStatus(
            status=comparison.sync_status, revision=request.commit, manifests=request.manifests,
            compared_to=ComparedTo(**multi.source_fields(app), destination=app.spec.destination),
            **multi.status_fields(app, request.commit),
        )
        app_health = comparison.health
        status.health = HealthStatus(status=app_health, message=_health_message(comparison))
        status.resources = [_resource_status(r) for r in comparison.resources]
        shared_since = {c.message: c.last_transition_time for c in status.conditions if c.type == SHARED_RESOURCE}
        repeated_since = {c.message: c.last_transition_time for c in status.conditions if c.type == REPEATED_RESOURCE}
        repeated = request.warnings
        if repeated is None:  # not from a render: the warnings of these manifests' render stay
            repeated = list(repeated_since) if previous.sync.manifests == request.manifests else []
        status.conditions = [c for c in status.conditions
                             if c.type not in COMPARISON_CONDITIONS and c.type not in (SHARED_RESOURCE, REPEATED_RESOURCE)]
        for message in repeated:  # an object produced by more than one of spec.sources
            status.conditions.append(Condition(type=REPEATED_RESOURCE, message=message,
                                               last_transition_time=repeated_since.get(message) or now))
        if comparison.errors:
            status.conditions.append(Condition(type="ComparisonError", message="; ".join(comparison.errors)[:2000],
                                               last_transition_time=now))
        shared = comparison.shared_resource_warnings(app.name)
        for message in shared[:MAX_SHARED_CONDITIONS]:  # one per object, as Argo CD; bounded for the status item
            status.conditions.append(Condition(type=SHARED_RESOURCE, message=message,
                                               last_transition_time=shared_since.get(message) or now))
        if len(shared) > MAX_SHARED_CONDITIONS:
            status.conditions.append(Condition(
                type=SHARED_RESOURCE, last_transition_time=now,
                message=f"{len(shared) - MAX_SHARED_CONDITIONS} more objects are part of other applications too"))
        status.reconciled_at = now
        status.observed_at = now
        following = app_health in ("Progressing", "Missing") or comparison.sync_status == "OutOfSync"
        # The diff's own refresh schedule (the poll looks again while a rollout or drift is
        # open). It never schedules an operation: that is the operation's follow-up record.
        status.next_check_at = (
            datetime.fromtimestamp(now.timestamp() + self.settings.rollout_check_seconds, UTC) if following else None
        )
        # The operation belongs to apply: keep the one stored now, not the one read before the
        # comparison (an apply may have recorded its outcome meanwhile).
        latest = self.state.get_statuses([app.name]).get(app.name)
        if latest is not None:
            status.operation_state = latest.operation_state
            previous = previous.model_copy(update={"operation_state": latest.operation_state})
        self.state.put_status(app.name, status)
        apply_request: ApplyRequest | None = None
        decision = sync_decision(app, previous, comparison, request)
        if (decision == "drift-check" and not request.sync
                and followups.is_self_heal(previous.operation_state, decision, request.commit)):
            wait = followups.self_heal_wait(previous.operation_state, now, self.settings.self_heal_backoff_seconds,
                                            self.settings.self_heal_backoff_factor,
                                            self.settings.self_heal_backoff_max_seconds)
            if wait > 0:  # another controller keeps reverting the app: heal again after a backoff
                decision = None
                last = previous.operation_state
                self._send_follow_up(FollowUpRequest(
                    app=app.name, dueAt=now.timestamp() + wait,
                    token=f"self-heal:{request.commit}:{last.finished_at if last else ''}",
                    diff=request.model_copy(update={"reason": "drift-check", "check": 0})))
        if request.check and app_health in ("Progressing", "Missing"):
            delay = followups.health_check_delay(request.check)
            if delay is not None:  # health after a sync: looked at again in seconds, with a bound
                self._send_follow_up(FollowUpRequest(
                    app=app.name, dueAt=now.timestamp() + delay, token=f"health:{uuid.uuid4().hex}",
                    diff=request.model_copy(update={"check": request.check + 1})))
        if decision is not None:
            # Automated decisions taken from the same last operation are one sync: two diffs of
            # the same commit in flight (a create and a poll, a webhook and a poll) apply once.
            basis = (f"person:{request.started_at}" if request.sync else
                     f"auto:{previous.operation_state.finished_at if previous.operation_state else 'never'}")
            dedup = f"{request.commit}:{request.manifests}:{decision}:{basis}"
            apply_request = ApplyRequest(
                app=app.name, commit=request.commit, manifests=request.manifests, reason=decision,
                initiatedBy=request.initiated_by if request.sync else "automated",
                startedAt=request.started_at, prune=_prune_for(app, request), manual=request.manual,
                operationId=decided_operation_id(request, dedup),
                decidedAt=request.started_at or now.timestamp(),
            )
            self.queues.send(apply_request, dedup=dedup)
        self._report(app.name, "status", request, {"diff": time.monotonic() - started}, status, previous)
        return apply_request

    # ------------------------------------------------------------------ apply

    def apply(self, request: ApplyRequest, remaining_ms: Callable[[], int] | None = None) -> OperationState | None:
        """Run (or carry on) one sync operation under the app's operation lease. The Running
        operation is recorded before anything touches the cluster, so a crash mid-way leaves a
        record, and the lease is given back on every path (try/finally).

        Waves and hooks wait for health, as in Argo CD. The wait happens here, polling the
        cluster every ``sync_poll_seconds`` for as long as the invocation may run
        (``remaining_ms``, the Lambda context's remaining time, minus a margin; at most
        ``sync_wait_seconds``). What takes longer, and a retry's backoff, becomes the
        operation's follow-up (:mod:`gitferry.followups`): a record plus a delayed message.
        An ``operation="delete"`` request is a cascading app deletion (:mod:`gitferry.deletion`)."""
        if request.operation == "delete":
            from gitferry import deletion

            deletion.run(self, request)
            return None
        app = self._app_or_none(request.app, request.manual)
        if app is None:
            self.end_request(request.app, request.manual)
            return None
        app = manual_app(app, request.manual)  # syncOptions of the request, for this operation only
        invocation = uuid.uuid4().hex
        # The lease is held in the operation's name: a redelivery of a message whose invocation
        # died renews its own operation's lease instead of meeting it (SQS redelivers only after
        # the visibility timeout, longer than the Lambda's, so the first holder is gone).
        lease_id = request.operation_id or invocation
        if not self.state.acquire_operation(app.name, lease_id, self.settings.operation_timeout_seconds):
            # Another operation holds the lease (live, or dead until it expires): look again
            # shortly through a delayed follow-up instead of failing the message into the DLQ.
            lease = self.state.get_operation(app.name)
            now = self.clock().timestamp()
            due = now + self.settings.lease_busy_seconds
            if lease is not None and lease.expires_at > now:
                due = min(due, float(lease.expires_at))
            self._send_follow_up(FollowUpRequest(app=app.name, dueAt=due,
                                                 token=f"{request.follow_up or lease_id}:busy:{invocation}",
                                                 apply=request))
            return None
        try:
            return self._apply_leased(app, request, lease_id, invocation, remaining_ms)
        finally:
            self.state.release_operation(app.name, lease_id)

    def _apply_leased(self, app: Application, request: ApplyRequest, lease_id: str, invocation: str,
                      remaining_ms: Callable[[], int] | None) -> OperationState | None:
        status = self.state.get_status(app.name) or AppStatus()
        previous = status.operation_state
        pending = self.followups.get(app.name)
        resuming = request.follow_up is not None
        taking_over = False
        if resuming:
            if (pending is None or pending.token != request.follow_up or previous is None
                    or previous.phase != "Running"):
                return None  # a duplicate or stale delivery: that follow-up was carried out already
            if pending.due_at > self.clock().timestamp() + 0.5:
                # Early (a retry's backoff is not over): it goes back to wait for its time.
                self._send_follow_up(FollowUpRequest(app=app.name, dueAt=pending.due_at,
                                                     token=f"{pending.token}:early:{invocation}", apply=request))
                return previous
        else:
            verdict = delivery_verdict(request, previous, pending.op_id if pending else None)
            if verdict == "duplicate":
                return None  # this very operation ran (or its follow-up carries it on)
            if verdict == "stale":
                self._refuse_stale(app, request, previous)
                return None
            if verdict == "take-over":
                # Its invocation died mid-way: carry the recorded operation on from its last
                # recorded wave boundary (re-applying a wave is idempotent, server-side apply).
                doc = ((previous.operation if previous else None) or {}).get("sync") or {}
                request = request.model_copy(update={"resume_from": doc.get("resumeFrom") or None})
                resuming = taking_over = True
            elif pending is not None:
                self.followups.clear(app.name)  # a new operation replaces the one that was waiting
        assert previous is not None or not resuming
        operation_id = pending.op_id if resuming and pending is not None and not taking_over else lease_id
        started = (previous.started_at if resuming and previous and previous.started_at else None) or self.clock()
        initiator = (OperationInitiator(automated=True) if request.initiated_by == "automated"
                     else OperationInitiator(username=request.initiated_by))
        earlier: list[ResourceResult] = (
            list(previous.sync_result.resources)
            if resuming and request.resume_from and previous and previous.sync_result else [])
        self_heals = (_self_heal_count(previous) if resuming else
                      followups.next_self_heal_count(previous, request.reason, request.commit, self.clock(),
                                                     self.settings.self_heal_backoff_max_seconds))
        outcome = _Outcome(app, request, started, initiator, operation_id, self_heals, earlier)
        if request.manual is not None and request.manual.dry_run:
            real = _last_real_operation(status)  # what automation keeps looking at while this dry run shows
            outcome.before = _operation_summary(real) if real is not None else None
            if resuming and previous is not None:
                outcome.before = ((previous.operation or {}).get("sync") or {}).get("before")
        try:
            if not resuming:
                self._record_running(outcome, "sync started")
            if not resuming or taking_over:
                self.end_request(app.name, request.manual)  # the Running operation now says "busy"
            self._run_operation(outcome, resuming, remaining_ms, status, previous, earlier)
        except Exception as exc:  # recorded, then re-raised so SQS retries / DLQ keeps the message
            outcome.phase, outcome.message, outcome.resume_from, outcome.retry_at = (
                "Error", f"{type(exc).__name__}: {exc}", None, None)
            self._finish_safely(outcome)
            raise
        operation = self._finish_safely(outcome)
        # Look again at once (health while the rollout runs); while Progressing the diff
        # re-checks every few seconds (DiffRequest.check), not at the next poll tick.
        self.queues.send(
            DiffRequest(app=app.name, commit=request.commit, manifests=request.manifests, reason="rollout",
                        initiatedBy=request.initiated_by, startedAt=request.started_at,
                        check=0 if outcome.phase == "Running" else 1),
            dedup=f"{request.commit}:{invocation}:after-sync",
        )
        if outcome.phase != "Running":
            self._report(app.name, "operation", request,
                         {"apply": (self.clock() - started).total_seconds(),
                          "total": max(0.0, self.clock().timestamp() - request.started_at) if request.started_at else 0.0},
                         self.state.get_status(app.name))
        return operation

    def _refuse_stale(self, app: Application, request: ApplyRequest, previous: OperationState | None) -> None:
        """An ApplyRequest decided before the operation last recorded: it would roll the app
        back to an older decision. Nothing runs; the operation and history stay as they are;
        the audit log says why (and a person's "operation requested" mark is given back)."""
        from gitferry.audit import AuditLog

        self.end_request(app.name, request.manual)
        seen_id, seen_at = operation_identity(previous)
        AuditLog(self.state).record(request.initiated_by, "operation.superseded", app.name, now=self.clock(),
                                    revision=request.commit, reason=request.reason,
                                    operation=request.operation_id or "", decidedAt=request.decided_at,
                                    newer=seen_id or "", newerDecidedAt=seen_at)

    def _run_operation(self, outcome: _Outcome, resuming: bool, remaining_ms: Callable[[], int] | None,
                       status: AppStatus, previous: OperationState | None, earlier: list[ResourceResult]) -> None:
        """Run the sync, waiting here while a wave or hook settles and time allows; fills
        ``outcome`` (phase, message, resources, resume point, retry time)."""
        from gitferry import sync as syncing
        from gitferry import termination

        app, request = outcome.app, outcome.request

        def stop() -> str | None:
            """Asked before each wave and at each wave boundary: was the operation terminated?"""
            actor = termination.requested_by(self.state, app.name, outcome.operation_id)
            if actor is None:
                return None
            outcome.terminated_by = actor
            return termination.reason(actor)

        desired = self.manifests.get_manifests(request.manifests)
        automated = app.automated
        if not desired and automated is not None and not automated.allow_empty and request.initiated_by == "automated":
            outcome.phase, outcome.message = "Failed", "auto-sync will wipe out all resources (allowEmpty is false)"
        else:
            budget = self.settings.sync_wait_seconds
            if remaining_ms is not None:
                budget = min(budget, remaining_ms() / 1000 - self.settings.sync_wait_margin_seconds)
            deadline = time.monotonic() + max(0.0, budget)
            cluster = self.cluster_for(app)
            live = cluster.list_by_label(tracking.label_selector(app.name))
            resume = tuple(request.resume_from) if resuming and request.resume_from else None
            selected = request.manual.resources if request.manual else None
            missing: list[str] = []
            if selected is not None:  # selective sync: the named objects only, no hooks
                from gitferry import selection

                desired, live, missing = selection.select(desired, live, selected,
                                                          app.spec.destination.namespace, cluster.is_namespaced)
            has_history = bool(self.state.list_history(app.name))
            while True:
                why = stop()
                if why:  # terminated while it waited (or before this follow-up ran): nothing more is written
                    outcome.phase, outcome.message, outcome.resume_from = "Failed", why, None
                    break
                # The results so far (this invocation's and earlier ones'): a resumed run finds its
                # generateName hooks by the names recorded there.
                options = syncing.options_for(app, resources=status.resources, previous=previous,
                                              earlier=outcome.resources or earlier, has_history=has_history)
                if missing:
                    from gitferry import selection

                    result = selection.not_found(app.name, missing)
                    outcome.resources = _merge_results(outcome.resources, result.resources)
                    outcome.phase, outcome.message, outcome.resume_from = result.phase, result.message, None
                    break
                result = syncing.run_sync(
                    cluster, app.name, desired, live, prune=request.prune,
                    dry_run=bool(request.manual and request.manual.dry_run),
                    create_namespace=app.has_sync_option("CreateNamespace"),
                    namespace=app.spec.destination.namespace,
                    prune_last=app.has_sync_option("PruneLast"),
                    propagation=(app.sync_option("PrunePropagationPolicy") or "foreground").capitalize(),
                    wait_between_waves=True,
                    resume_from=resume,
                    options=options,
                    stop=stop,
                )
                outcome.resources = _merge_results(outcome.resources, result.resources)
                outcome.phase, outcome.message = result.phase, result.message
                outcome.resume_from = list(result.resume_from) if result.resume_from else None
                if result.phase != "Running" or result.resume_from is None:
                    break
                if children.waiting_on_children(cluster):
                    break  # a child app is whole pipeline stages away: the follow-up looks again
                if time.monotonic() + self.settings.sync_poll_seconds > deadline:
                    break  # longer than this invocation may wait: the follow-up carries on
                if tuple(result.resume_from) != resume:
                    self._record_running(outcome, result.message)  # progress shown while waiting
                resume = tuple(result.resume_from)
                time.sleep(self.settings.sync_poll_seconds)
        if outcome.phase == "Failed" and outcome.terminated_by is None:  # a terminated one is not retried
            delay = retry_delay(app.spec.sync_policy.retry if app.spec.sync_policy else None, request.retry)
            if delay is not None:  # spec.syncPolicy.retry: the operation goes on after a backoff
                outcome.retry_at = datetime.fromtimestamp(self.clock().timestamp() + delay, UTC)
                outcome.phase = "Running"
                outcome.message = (f"{outcome.message}. Retrying attempt #{request.retry + 1} "
                                   f"at {outcome.retry_at:%H:%M:%S}.")

    def _record_running(self, outcome: _Outcome, message: str) -> None:
        status = self.state.get_status(outcome.app.name) or AppStatus()
        status.operation_state = self._operation_state(outcome, "Running", message, None)
        self.state.put_status(outcome.app.name, status)

    def _operation_state(self, outcome: _Outcome, phase: str, message: str,
                         finished: datetime | None) -> OperationState:
        from gitferry import sources as multi

        request = outcome.request
        doc = _operation_doc(request, outcome.resume_from if phase == "Running" else None)
        doc["sync"]["operationId"] = outcome.operation_id
        if request.decided_at is not None:
            doc["sync"]["decidedAt"] = request.decided_at
        if outcome.before:
            doc["sync"]["before"] = outcome.before
        if outcome.self_heals:
            doc["sync"]["selfHealAttemptsCount"] = outcome.self_heals
        if outcome.retry_at is not None and phase == "Running":
            doc["sync"]["retryAt"] = outcome.retry_at.isoformat()
        return OperationState(
            operation=doc, retry_count=request.retry + (1 if outcome.retry_at is not None else 0),
            phase=phase, message=message, started_at=outcome.started,
            finished_at=None if phase == "Running" else finished, initiated_by=outcome.initiator,
            sync_result=SyncOperationResult(revision=request.commit, resources=list(outcome.resources),
                                            **multi.source_fields(outcome.app),
                                            **multi.status_fields(outcome.app, request.commit)),
        )

    def _finish_safely(self, outcome: _Outcome) -> OperationState:
        """Record the outcome; when that fails (a status too large, DynamoDB refusing), record a
        small Error operation saying so instead, so the app is never left Running."""
        try:
            return self._finish_operation(outcome)
        except Exception as exc:
            outcome.phase = "Error"
            outcome.message = (f"{outcome.message[:500]} - but its result could not be recorded: "
                               f"{type(exc).__name__}: {str(exc)[:500]}")
            outcome.resources, outcome.resume_from, outcome.retry_at = [], None, None
            return self._finish_operation(outcome)

    def _finish_operation(self, outcome: _Outcome) -> OperationState:
        app, request = outcome.app, outcome.request
        finished = self.clock()
        phase, message = outcome.phase, outcome.message
        status = self.state.get_status(app.name) or AppStatus()
        operation = self._operation_state(outcome, phase, message, finished)
        status.operation_state = operation
        status.conditions = [c for c in status.conditions if c.type != "SyncError"]
        if phase in ("Failed", "Error") or outcome.retry_at is not None:
            status.conditions.append(Condition(type="SyncError", message=message, last_transition_time=finished))
        if phase == "Running":
            # The record first: from here on the follow-up, not the lease, owns the next step.
            self._schedule_operation(outcome, finished)
        else:
            self.followups.clear(app.name)
        self.state.put_status(app.name, status)
        if outcome.terminated_by is not None and phase != "Running":
            from gitferry import termination

            termination.clear(self.state, app.name)
        from gitferry.audit import AuditLog

        if phase != "Running":
            AuditLog(self.state).record(request.initiated_by, f"operation.{phase.lower()}", app.name, now=finished,
                                        revision=request.commit, reason=request.reason, message=message[:500])
        elif outcome.retry_at is not None:
            AuditLog(self.state).record(request.initiated_by, "operation.attempt-failed", app.name, now=finished,
                                        revision=request.commit, attempt=request.retry, message=message[:500])
        if phase == "Succeeded" and not (request.manual and request.manual.dry_run):  # a dry run deployed nothing
            from gitferry import sources as multi

            self.state.append_history(app.name, HistoryEntry(
                id=0, revision=request.commit, deployed_at=finished, deploy_started_at=outcome.started,
                initiated_by=outcome.initiator, **multi.source_fields(app), **multi.status_fields(app, request.commit),
            ), limit=app.spec.revision_history_limit)
        return operation

    def _schedule_operation(self, outcome: _Outcome, now: datetime) -> None:
        """Write the operation's follow-up record and send its delayed message."""
        request = outcome.request
        token = uuid.uuid4().hex
        common = {"app": request.app, "commit": request.commit, "manifests": request.manifests,
                  "prune": request.prune, "initiatedBy": request.initiated_by, "reason": request.reason,
                  "startedAt": request.started_at, "followUp": token, "manual": request.manual,
                  "operationId": outcome.operation_id, "decidedAt": request.decided_at}
        if outcome.retry_at is not None:
            kind, due = followups.RETRY, outcome.retry_at.timestamp()
            follow = ApplyRequest(**common, retry=request.retry + 1)
        else:
            kind, due = followups.WAVE, now.timestamp() + self.settings.followup_seconds
            follow = ApplyRequest(**common, retry=request.retry, resumeFrom=outcome.resume_from)
        self.followups.put(request.app, followups.FollowUp(outcome.operation_id, token, kind, due, follow))
        try:
            self._send_follow_up(FollowUpRequest(app=request.app, dueAt=due, token=token, apply=follow))
        except Exception:  # noqa: BLE001 - the record stands; the poll re-sends an overdue follow-up
            pass

    def _send_follow_up(self, message: FollowUpRequest) -> None:
        self.queues.send_later(message, now=self.clock().timestamp())

    def follow_up(self, message: FollowUpRequest) -> str:
        """The follow-up stage: a delayed message whose time has come is handed into the app's
        FIFO queue (per-app order kept, the token as deduplication id); one whose time is still
        more than a second away (a backoff beyond SQS's 900 s) is delayed again; an operation
        follow-up that is no longer the operation's pending one is dropped."""
        now = self.clock().timestamp()
        if message.due_at - now > 1.0:
            self._send_follow_up(message)
            return "delayed"
        if message.apply is not None:
            if message.apply.follow_up is not None:  # an operation's next step: only while it is pending
                pending = self.followups.get(message.app)
                if pending is None or pending.token != message.apply.follow_up:
                    return "stale"
            # The message's own token: a re-delayed copy (early, lease busy) has a token of its
            # own, so the FIFO queue drops only true duplicates of this very message.
            self.queues.send(message.apply, dedup=f"followup:{message.token}")
            return "apply"
        if message.diff is not None:
            self.queues.send(message.diff, dedup=f"followup:{message.token}")
            return "diff"
        return "empty"

    def _overdue_follow_up(self, app: str, now: datetime) -> tuple[ApplyRequest, str] | None:
        """The poll's safety net for a Running operation: its follow-up message when the record
        says it is overdue (the message was lost), or None. An operation Running with neither
        a follow-up nor an apply holding its lease is ended as Error: nothing would finish it."""
        pending = self.followups.get(app)
        if pending is not None:
            if pending.due_at + self.settings.followup_grace_seconds <= now.timestamp():
                return pending.request, f"overdue:{pending.token}:{now.timestamp()}"
            return None
        lease = self.state.get_operation(app)
        if lease is not None and lease.expires_at > now.timestamp():
            return None  # an apply is carrying it
        status = self.state.get_status(app)
        op = status.operation_state if status else None
        if status is None or op is None or op.phase != "Running":
            return None
        op.phase, op.finished_at = "Error", now
        op.message = (f"{op.message or ''} - interrupted: no apply holds the operation and nothing was "
                      "scheduled to finish it; sync again")[:2000]
        status.conditions = [c for c in status.conditions if c.type != "SyncError"]
        status.conditions.append(Condition(type="SyncError", message=op.message, last_transition_time=now))
        self.state.put_status(app, status)
        return None

    # ------------------------------------------------------------------ report

    def report(self, request: ReportRequest) -> list[MetricPoint]:
        """The metrics of one report message: the fleet summary feeds the drift alarm
        (``OutOfSyncApps``); an app's report gives its sync, health and stage durations."""
        if request.event == "fleet":
            return [
                MetricPoint("OutOfSyncApps", request.out_of_sync),
                MetricPoint("DegradedApps", request.degraded),
                MetricPoint("Applications", request.apps),
            ]
        dims = {"app": request.app}
        points = [MetricPoint("StageDuration", seconds, "Seconds", {"app": request.app, "stage": stage})
                  for stage, seconds in request.durations.items()]
        if request.sync_status is not None:
            points.append(MetricPoint("OutOfSync", 1.0 if request.sync_status == "OutOfSync" else 0.0, "Count", dims))
            points.append(MetricPoint("DriftedResources", float(request.drifted), "Count", dims))
        if request.health is not None:
            points.append(MetricPoint("Healthy", 1.0 if request.health == "Healthy" else 0.0, "Count", dims))
            points.append(MetricPoint("Degraded", 1.0 if request.health == "Degraded" else 0.0, "Count", dims))
        if request.event == "operation" and request.operation_phase is not None:
            failed = request.operation_phase in ("Failed", "Error")
            points.append(MetricPoint("SyncFailed" if failed else "SyncSucceeded", 1.0, "Count", dims))
        return [p for p in points if _per_app_metric_kept(p.name, self.settings.per_app_metrics)]

    # ------------------------------------------------------------------ helpers

    def cluster_for(self, app: Application) -> Any:
        """A ClusterClient for the app's destination, built from the kubeconfig in Secrets
        Manager and kept while the kubeconfig is unchanged (warm Lambdas reuse connections)."""
        from gitferry import kube

        dest = app.spec.destination
        cluster = self.state.find_cluster(server=dest.server, name=dest.name)
        if cluster.eks is not None:  # no stored credential: DescribeCluster + an IAM token (gitferry.eks)
            from gitferry import eks

            digest = hashlib.sha256(json.dumps(cluster.to_json_dict(), sort_keys=True).encode()).hexdigest()
            cached = self._clusters.get(cluster.name)
            if cached is not None and cached[0] == digest:
                return children.view(self, app.name, cached[1])  # Applications are gitferry apps
            api_client = eks.api_client(eks.EksTarget(cluster.eks.cluster, cluster.eks.region, cluster.eks.role_arn))[0]
        else:
            kubeconfig = self.secrets.get_kubeconfig(cluster.name)
            digest = hashlib.sha256(f"{cluster.context}\n{kubeconfig}".encode()).hexdigest()
            cached = self._clusters.get(cluster.name)
            if cached is not None and cached[0] == digest:
                return children.view(self, app.name, cached[1])  # Applications are gitferry apps
            api_client = kube.api_client_from_kubeconfig(kubeconfig, cluster.context)
        client = kube.ClusterClient(api_client, os.path.join(self.settings.discovery_cache_dir, cluster.name))
        self._clusters[cluster.name] = (digest, client)
        return children.view(self, app.name, client)

    def _kube_version(self, app: Application) -> str | None:
        """The destination's Kubernetes version recorded at registration (for Helm charts)."""
        try:
            dest = app.spec.destination
            return self.state.find_cluster(server=dest.server, name=dest.name).server_version
        except NotFoundError:
            return None

    def _store_tree(self, app: Application, cluster: Any, live: list[dict[str, Any]]) -> None:
        """The resource tree (managed objects + live descendants) goes to S3 under a fixed key per
        app: a 5,000-node tree is megabytes, far beyond a DynamoDB item. A cluster error only
        shortens the tree to the managed objects; it never fails the comparison."""
        from gitferry import tree as restree
        from gitferry.kube import KubeError

        managed = [o for o in live if tracking.is_owned(app.name, o)]
        try:
            built = restree.build_tree(managed, restree.collect_children(cluster, managed))
        except KubeError:
            built = restree.build_tree(managed, [])
        self.manifests.put_json_if_changed(tree_key(app.name), built.to_json_dict())  # steady state: a HEAD

    def _app_or_none(self, name: str, manual: Any = None) -> Application | None:
        """The app as this chain deploys it (a rollback's recorded sources, see
        :func:`gitferry.sources.as_deployed`), or None when it is gone or being deleted."""
        from gitferry import sources as multi

        try:
            stored = self.state.get_app(name)
        except NotFoundError:
            return None  # deleted while its message was in flight: nothing to do
        return None if stored.deletion else multi.as_deployed(stored.app, manual)  # being deleted: never synced

    def end_request(self, app: str, manual: Any) -> None:
        """Give back a person's "operation requested" mark (service.sync) once its chain started
        the operation or ended without one."""
        if manual is not None:
            self.state.clear_operation_request(app, manual.operation_id)

    def record_comparison_error(self, app: Application, status: AppStatus | None, commit: str | None,
                                 exc: BaseException) -> AppStatus:
        """Sync Unknown with a ComparisonError condition; resources and health are kept (the
        cluster was not looked at, so nothing about it changed)."""
        status = (status or self.state.get_status(app.name) or AppStatus()).model_copy(deep=True)
        now = self.clock()
        condition_type = getattr(exc, "condition_type", "ComparisonError")
        if condition_type not in COMPARISON_CONDITIONS:
            condition_type = "ComparisonError"
        status.conditions = [c for c in status.conditions if c.type not in COMPARISON_CONDITIONS]
        status.conditions.append(Condition(type=condition_type, message=str(exc)[:2000], last_transition_time=now))
        from gitferry import sources as multi

        revision = commit or status.sync.revision
        status.sync = SyncStatus(status="Unknown", revision=revision, **multi.status_fields(app, revision),
                                 compared_to=ComparedTo(**multi.source_fields(app), destination=app.spec.destination))
        status.reconciled_at = now
        status.next_check_at = None
        self.state.put_status(app.name, status)
        return status

    def _report(self, app: str, event: str, request: Any, durations: dict[str, float],
                status: AppStatus | None = None, previous: AppStatus | None = None) -> None:
        snapshot: dict[str, Any] = {}
        if status is not None:
            snapshot = {
                "syncStatus": status.sync.status,
                "health": status.health.status,
                "healthMessage": status.health.message,
                "drifted": sum(1 for r in status.resources if r.status == "OutOfSync"),
                "operationPhase": status.operation_state.phase if status.operation_state else None,
                "operationMessage": status.operation_state.message if status.operation_state else None,
            }
        if previous is not None:
            snapshot["previousHealth"] = previous.health.status
        self.queues.send(
            ReportRequest(app=app, event=event, durations=durations, reason=request.reason,
                          initiatedBy=request.initiated_by, startedAt=request.started_at, **snapshot),
            dedup=f"{event}:{uuid.uuid4().hex}",
        )


# ---------------------------------------------------------------------- pure decisions


def pinned_revision(app: Application,
                    resolvers: dict[tuple[str, str], Callable[[ApplicationSource, str], str] | GitferryError]) -> str:
    """The app's pinned revision from what this tick read of each repository (one resolver per
    repository, shared by apps and sources); the first repository error of its sources is raised."""
    from gitferry import sources as multi

    revisions: list[str] = []
    for source in app.spec.all_sources:
        resolver = resolvers[_repo_key(source)]
        if isinstance(resolver, GitferryError):
            raise resolver
        revisions.append(resolver(source, source.target_revision))
    return multi.pinned(revisions)


def _repo_key(source: ApplicationSource) -> tuple[str, str]:
    """("oci", host/repository) for an OCI chart or artifact, ("helm", url) for a chart from a
    Helm repository, ("git", url) otherwise: each is read differently, so a tag list, an index
    fetch and an ls-remote never share a group."""
    from gitferry import oci

    if oci.is_oci_source(source.repo_url, source.chart):
        return ("oci", oci.reference_for(source.repo_url, source.chart).name)
    return ("helm" if source.chart is not None else "git", source.repo_url)


def tree_key(app: str) -> str:
    """S3 key of an app's latest resource tree."""
    return f"trees/{app}.json"


#: Per-app metrics each PerAppMetrics level emits (the fleet metrics are always emitted).
PER_APP_METRICS: Final[dict[str, frozenset[str]]] = {
    "none": frozenset(),
    "status": frozenset({"OutOfSync", "Degraded"}),
    "all": frozenset({"OutOfSync", "Degraded", "Healthy", "DriftedResources", "SyncSucceeded", "SyncFailed",
                      "StageDuration"}),
}


def _per_app_metric_kept(name: str, level: str) -> bool:
    if level not in PER_APP_METRICS:
        raise ValueError(f"PER_APP_METRICS={level!r}: one of {', '.join(PER_APP_METRICS)}")
    return name in PER_APP_METRICS[level]


def due_reason(status: AppStatus | None, commit: str, now: datetime, drift_check_seconds: int) -> str | None:
    """Why an app must be rendered and compared at this tick, or None."""
    if status is None or status.sync.revision is None:
        return "poll"
    if status.sync.revision != commit:
        return "poll"
    if status.sync_requested:
        return "sync"
    if status.refresh_requested:
        return "refresh"
    if status.next_check_at is not None and status.next_check_at <= now:
        return "rollout"
    if status.reconciled_at is None or (now - status.reconciled_at).total_seconds() >= drift_check_seconds:
        return "drift-check"
    return None


def sync_decision(app: Application, previous: AppStatus, comparison: Any, request: DiffRequest) -> str | None:
    """Argo CD's automation rules: a person's sync always runs; automated sync runs once per
    new commit; at an already-synced commit only selfHeal re-applies drift; a failed sync is not
    retried at the same commit unless selfHeal; objects that merely need pruning, with prune off,
    never trigger a sync (it could not fix them). Retries of a failed sync come from
    ``spec.syncPolicy.retry`` only."""
    if request.sync:
        return request.reason if request.reason in ("sync", "rollback") else "sync"
    automated = app.automated
    if automated is None or comparison.sync_status != "OutOfSync":
        return None
    if previous.operation_state is not None and previous.operation_state.phase == "Running":
        return None  # one operation at a time; the running one goes on through its follow-up
    fixable = [r for r in comparison.resources if r.status == "OutOfSync" and (automated.prune or not r.requires_pruning)]
    if not fixable:
        return None
    last = _last_real_operation(previous)
    # Argo CD's alreadyAttemptedSync: the same revision *and* the same source (a PUT / PATCH that
    # changes the source is a new desired state even at the same commit).
    synced_this_commit = (last is not None and last.sync_result is not None
                          and last.sync_result.revision == request.commit
                          and (last.sync_result.source is None or last.sync_result.source == app.spec.source))
    if not synced_this_commit:
        return "poll" if request.reason in ("poll", "webhook", "create", "update") else request.reason
    if last is not None and last.phase != "Succeeded":
        return None  # Argo CD: a failed attempt at this commit is not re-tried, selfHeal or not
    if automated.self_heal:
        return "drift-check"
    return None


def decided_operation_id(request: DiffRequest, dedup: str) -> str:
    """The id of the operation a diff decides to run: a person's sync keeps the id the API gave
    it; an automated one is named by its decision (the same commit, manifests and last
    operation give the same id, so a redelivered diff decides the same operation)."""
    if request.manual is not None:
        return request.manual.operation_id
    return hashlib.sha256(dedup.encode()).hexdigest()[:32]


def operation_identity(op: OperationState | None) -> tuple[str | None, float | None]:
    """(operationId, decidedAt) recorded with an operation; (None, None) for an older record."""
    doc = ((op.operation if op else None) or {}).get("sync") or {}
    decided = doc.get("decidedAt")
    return (str(doc["operationId"]) if doc.get("operationId") else None,
            float(decided) if isinstance(decided, int | float) else None)


def delivery_verdict(request: ApplyRequest, previous: OperationState | None,
                     pending_op: str | None) -> str:
    """What apply does with an ApplyRequest that is not a follow-up, given the operation last
    recorded and the op id of the pending follow-up (if any):

    - ``"duplicate"``: the same operation is recorded (ended, or paused with its follow-up
      pending): a second delivery of one request; nothing to do.
    - ``"take-over"``: the same operation is recorded Running with no follow-up: the invocation
      that ran it died (the caller holds its lease now); carry it on from where it was recorded.
    - ``"stale"``: decided before the operation last recorded; refused (no rollback).
    - ``"run"``: a new operation."""
    seen_id, seen_at = operation_identity(previous)
    if request.operation_id is not None and seen_id == request.operation_id:
        if previous is not None and previous.phase == "Running" and pending_op != request.operation_id:
            return "take-over"
        return "duplicate"
    if request.decided_at is not None and seen_at is not None and request.decided_at < seen_at:
        return "stale"
    return "run"


def retry_delay(retry: Any, attempt: int) -> float | None:
    """Seconds before retry ``attempt + 1`` of a failed sync, or None when no retry is left:
    ``duration * factor ** attempt`` capped at ``maxDuration``; ``limit`` -1 is unlimited."""
    if retry is None or retry.limit == 0 or (retry.limit > 0 and attempt >= retry.limit):
        return None
    base = parse_duration(retry.backoff.duration)
    cap = parse_duration(retry.backoff.max_duration)
    return min(base * (retry.backoff.factor ** attempt), cap)


def _operation_doc(request: ApplyRequest, resume_from: list[int] | None) -> dict[str, Any]:
    """What the operation is, enough to send it again when it pauses at a wave boundary."""
    doc: dict[str, Any] = {"revision": request.commit, "prune": request.prune, "manifests": request.manifests,
                           "initiatedBy": request.initiated_by}
    if resume_from:
        doc["resumeFrom"] = resume_from
    if request.manual is not None:  # Argo CD's operation.sync fields, and the request to resume it with
        manual = request.manual.model_dump(mode="json", by_alias=True, exclude_none=True)
        doc["manual"] = manual
        doc["dryRun"] = request.manual.dry_run
        for key in ("resources", "syncOptions"):
            if key in manual:
                doc[key] = manual[key]
    return {"sync": doc}


def manual_app(app: Application, manual: Any) -> Application:
    """The app as one operation sees it: a sync request's ``syncOptions`` replace the app's."""
    if manual is None or manual.sync_options is None:
        return app
    from gitferry.model import SyncPolicy

    policy = (app.spec.sync_policy or SyncPolicy()).model_copy(update={"sync_options": list(manual.sync_options)})
    return app.model_copy(update={"spec": app.spec.model_copy(update={"sync_policy": policy})})


def _last_real_operation(status: AppStatus) -> OperationState | None:
    """The last operation that was not a dry run: a dry run changes nothing, so automation must
    not take its commit as synced (nor its failure as a failed attempt)."""
    op = status.operation_state
    if op is None or not ((op.operation or {}).get("sync") or {}).get("dryRun"):
        return op
    before = ((op.operation or {}).get("sync") or {}).get("before")
    return OperationState.model_validate(before) if before else None


def _operation_summary(op: OperationState) -> dict[str, Any]:
    """An operation without its per-resource results (kept small inside another one)."""
    doc = op.to_json_dict()
    doc.pop("operation", None)
    if "syncResult" in doc:
        doc["syncResult"].pop("resources", None)
    return doc


@dataclass
class _Outcome:
    """What one apply invocation knows about the operation it runs, filled in as it goes."""

    app: Application
    request: ApplyRequest
    started: datetime
    initiator: OperationInitiator
    operation_id: str
    self_heals: int
    resources: list[ResourceResult] = field(default_factory=list)
    phase: str = "Running"
    message: str = ""
    resume_from: list[int] | None = None
    retry_at: datetime | None = None
    before: dict[str, Any] | None = None  # a dry run: the last real operation, for automation
    terminated_by: str | None = None  # DELETE .../operation asked to stop it (termination.py)


def _merge_results(earlier: list[ResourceResult], results: Iterable[Any]) -> list[ResourceResult]:
    """One line per (group, kind, namespace, name, phase): later results replace earlier ones."""
    merged = {(r.group, r.kind, r.namespace, r.name, r.sync_phase): r for r in earlier}
    for r in results:
        merged[(r.group, r.kind, r.namespace, r.name, r.phase)] = ResourceResult(
            group=r.group, version=r.version, kind=r.kind, namespace=r.namespace, name=r.name,
            status=r.status, message=r.message or None, sync_phase=r.phase,
            hook_phase=getattr(r, "hook_phase", "") or None, hook_type=getattr(r, "hook_type", "") or None)
    return list(merged.values())


def _self_heal_count(operation: OperationState | None) -> int:
    return followups.self_heal_attempts(operation)


def _superseded_recheck(request: DiffRequest, previous: AppStatus) -> bool:
    """A look after a sync (``rollout``) at the operation's revision, when a comparison made
    after that operation finished already compared another revision (the branch head after a
    rollback, a newer commit): it would write the older revision's Synced over it. Dropped; the
    newer comparison schedules its own looks."""
    op = previous.operation_state
    if request.reason != "rollout" or op is None or op.finished_at is None or previous.reconciled_at is None:
        return False
    return (previous.sync.revision not in (None, "", request.commit)
            and previous.reconciled_at > op.finished_at)


def _prune_for(app: Application, request: DiffRequest) -> bool:
    automated = app.automated
    if request.manual is not None and request.manual.prune is not None:
        return request.manual.prune  # the sync request's ``prune`` decides, whatever the policy
    if request.sync:
        # A person's sync prunes like an automated one when the policy prunes; otherwise not
        # (Argo CD's sync button leaves prune unchecked unless asked).
        return bool(automated and automated.prune)
    return bool(automated and automated.prune)


def _resource_status(r: Any) -> ResourceStatus:
    return ResourceStatus(
        group=r.group, version=r.version, kind=r.kind, namespace=r.namespace, name=r.name,
        status=r.status if r.status in ("Synced", "OutOfSync", "Unknown") else "Unknown",
        health=HealthStatus(status=r.health.status, message=r.health.message or None) if r.health else None,
        requires_pruning=r.requires_pruning, sync_wave=r.sync_wave,
    )


def _health_message(comparison: Any) -> str | None:
    worst = comparison.health
    if worst == "Healthy":
        return None
    for r in comparison.resources:
        if r.health and r.health.status == worst and not r.requires_pruning:
            return f"{r.kind}/{r.name}: {r.health.message}" if r.health.message else f"{r.kind}/{r.name} is {worst}"
    return None


__all__ = ["Engine", "FLEET", "MetricPoint", "PollResult", "Settings", "due_reason", "sync_decision"]
