"""Messages passed between pipeline stages through SQS FIFO queues (and the standard
FollowUpQueue, whose messages carry a per-message delay).

Messages carry references (commit SHAs, S3 keys), never whole manifests, so they
stay far below SQS's 256 KB limit whatever the size of an application.

``commit`` is the revision a render is pinned to: a Git commit SHA, or for a chart from
a Helm repository the resolved chart version (``1.2.0``, possibly one character long).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gitferry.model import ApplicationSource, SourceEntry

# Why a stage was asked to look at an application; shown in history and audit.
Reason = Literal["poll", "webhook", "refresh", "drift-check", "sync", "rollout", "create", "update", "rollback", "delete"]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    app: str = Field(min_length=1)
    reason: Reason = "poll"
    # Who or what asked: "poll", "webhook:github:<delivery>", "api:<caller>".
    initiated_by: str = Field(default="gitferry", alias="initiatedBy")
    # When the chain started (epoch seconds); every stage reports its latency against it.
    started_at: float = Field(default=0.0, alias="startedAt")


class SyncResource(BaseModel):
    """One object of a selective sync (Argo CD's SyncOperationResource)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    group: str = ""
    kind: str = Field(min_length=1)
    namespace: str = ""
    name: str = Field(min_length=1)


class ManualSync(BaseModel):
    """What a person's sync request asked for (``POST .../sync`` body), carried render -> diff ->
    apply. ``operation_id`` is the token of the app's "operation requested" mark (state.py), given
    back when the operation starts or the chain ends without one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    operation_id: str = Field(alias="operationId", min_length=1)
    # None: the app's policy decides (automated.prune); True/False: the request decides.
    prune: bool | None = None
    dry_run: bool = Field(default=False, alias="dryRun")
    # Selective sync: only these objects are applied / pruned; None means all.
    resources: list[SyncResource] | None = None
    # Replaces spec.syncPolicy.syncOptions for this operation when set.
    sync_options: list[str] | None = Field(default=None, alias="syncOptions")
    # A rollback: the source(s) its history entry recorded, rendered (and recorded) instead of
    # the spec's, as Argo CD's rollback does; None: the spec's.
    source: ApplicationSource | None = None
    sources: list[SourceEntry] | None = None


class RenderRequest(_Message):
    """poll / webhook / api -> render: render ``app`` at ``commit``."""

    commit: str = Field(min_length=1)
    # True when a person asked for a sync (API) or a rollback: apply even without automation.
    sync: bool = False
    manual: ManualSync | None = None
    # A hard refresh: render again even when the render cache has these inputs (Argo CD's hard refresh).
    hard: bool = False


class DiffRequest(_Message):
    """render -> diff, apply -> diff: compare the rendered ``manifests`` with the cluster."""

    commit: str = Field(min_length=1)
    manifests: str  # S3 key of the rendered manifest list
    sync: bool = False
    manual: ManualSync | None = None
    # >= 1: a health re-check after a sync (the n-th); the diff schedules the next one while
    # the app is Progressing, up to a bound (pipeline.health_check_delay).
    check: int = 0
    # RepeatedResourceWarning messages of the render (an object produced by two spec.sources);
    # None from anything but the render (apply, follow-ups): those recorded for the manifests stay.
    warnings: list[str] | None = Field(default=None, max_length=51)


class ApplyRequest(_Message):
    """diff -> apply: run a sync operation of ``manifests`` at ``commit``; api / poll -> apply:
    ``operation="delete"`` deletes the app's objects (cascade) and then the app (deletion.py)."""

    commit: str = Field(min_length=1)
    manifests: str
    prune: bool = False
    operation: Literal["sync", "delete"] = "sync"
    manual: ManualSync | None = None
    # Which operation this request starts (or carries on), decided where the sync was decided:
    # the diff (a digest of its decision's FIFO deduplication basis) or a person's sync (the API's
    # ManualSync id). A second delivery of the same request finds it recorded and does nothing.
    operation_id: str | None = Field(default=None, alias="operationId", min_length=1)
    # When the decision's chain began (epoch seconds, the chain's startedAt): a request older
    # than the operation last recorded is refused, so a late delivery never rolls the app back.
    decided_at: float | None = Field(default=None, alias="decidedAt")
    # Set when continuing an operation that paused at a wave boundary (sync.run_sync's resume_from).
    resume_from: list[int] | None = Field(default=None, alias="resumeFrom")
    # Set when re-running a failed operation under spec.syncPolicy.retry (the attempt number).
    retry: int = 0
    # The token of the operation's follow-up this message carries out (next wave, awaited hook,
    # retry): apply runs it only while it is still the operation's pending follow-up, so a
    # duplicate or stale delivery does nothing.
    follow_up: str | None = Field(default=None, alias="followUp")


class ReportRequest(_Message):
    """Any stage -> report: publish what changed for ``app`` (or the fleet summary from poll)."""

    event: Literal["status", "operation", "fleet"] = "status"
    # Stage durations (seconds) measured by the sender, emitted as metrics.
    durations: dict[str, float] = Field(default_factory=dict)
    # The app's state when the event happened (a later read could already see the healed state).
    sync_status: str | None = Field(default=None, alias="syncStatus")
    health: str | None = None
    drifted: int = 0  # resources OutOfSync
    operation_phase: str | None = Field(default=None, alias="operationPhase")
    operation_message: str | None = Field(default=None, alias="operationMessage")
    health_message: str | None = Field(default=None, alias="healthMessage")
    # The health before this event, so a transition is announced once.
    previous_health: str | None = Field(default=None, alias="previousHealth")
    # Fleet summary (event == "fleet"): counts over every application, from the poll tick.
    out_of_sync: int = Field(default=0, alias="outOfSync")
    degraded: int = 0
    apps: int = 0


class FollowUpRequest(_Message):
    """apply / diff -> FollowUpQueue (standard, DelaySeconds) -> followup -> ApplyQueue / DiffQueue.

    Exactly one of ``apply`` / ``diff``: what to hand into the app's FIFO queue once ``dueAt``
    (epoch seconds) has come. A time further away than SQS's 900 s delay is re-delayed."""

    due_at: float = Field(alias="dueAt")
    # Names this follow-up: the FIFO deduplication id of the forwarded message, so a standard
    # queue's duplicate delivery is dropped by the FIFO queue (and by apply's token check).
    token: str = Field(min_length=1)
    apply: ApplyRequest | None = None
    diff: DiffRequest | None = None
