"""The pipeline's pure decisions: what a poll tick schedules, when a sync runs, what report emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from gitferry import followups
from gitferry.messages import DiffRequest, ReportRequest
from gitferry.model import Application, AppStatus, OperationState, SyncOperationResult, SyncStatus
from gitferry.pipeline import Engine, Settings, due_reason, sync_decision

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
A, B = "a" * 40, "b" * 40


def app(automated: dict | None = None) -> Application:
    spec = {
        "source": {"repoURL": "https://git.example.com/org/apps.git", "path": "guestbook"},
        "destination": {"server": "https://k8s.example.com", "namespace": "guestbook"},
    }
    if automated is not None:
        spec["syncPolicy"] = {"automated": automated}
    return Application.from_manifest({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                      "metadata": {"name": "guestbook"}, "spec": spec})


def status(revision: str | None = A, reconciled: timedelta | None = timedelta(seconds=10), **kw) -> AppStatus:
    st = AppStatus(sync=SyncStatus(status="Synced", revision=revision), **kw)
    st.reconciled_at = NOW - reconciled if reconciled is not None else None
    return st


@pytest.mark.parametrize(("st", "commit", "expected"), [
    (None, A, "poll"),
    (status(revision=None), A, "poll"),
    (status(), B, "poll"),
    (status(), A, None),
    (status(reconciled=timedelta(seconds=180)), A, "drift-check"),
    (status(reconciled=None), A, "drift-check"),
    (status(refresh_requested=True), A, "refresh"),
    (status(sync_requested=True), A, "sync"),
    (status(next_check_at=NOW - timedelta(seconds=1)), A, "rollout"),
    (status(next_check_at=NOW + timedelta(seconds=5)), A, None),
])
def test_due_reason(st: AppStatus | None, commit: str, expected: str | None) -> None:
    assert due_reason(st, commit, NOW, 180) == expected


@dataclass
class Res:
    status: str
    requires_pruning: bool = False


@dataclass
class Cmp:
    sync_status: str
    resources: list[Res] = field(default_factory=list)


def diff_request(reason: str = "poll", sync: bool = False, commit: str = A) -> DiffRequest:
    return DiffRequest(app="guestbook", commit=commit, manifests="manifests/x.json", reason=reason, sync=sync)


def synced_at(commit: str) -> AppStatus:
    return AppStatus(operation_state=OperationState(phase="Succeeded", sync_result=SyncOperationResult(revision=commit)))


OUT = Cmp("OutOfSync", [Res("OutOfSync")])


def test_manual_app_never_syncs_by_itself_but_a_person_can() -> None:
    assert sync_decision(app(), AppStatus(), OUT, diff_request()) is None
    assert sync_decision(app(), AppStatus(), OUT, diff_request("sync", sync=True)) == "sync"


def test_automated_syncs_a_new_commit_once() -> None:
    auto = app({"prune": True})
    assert sync_decision(auto, AppStatus(), OUT, diff_request()) == "poll"
    assert sync_decision(auto, synced_at(B), OUT, diff_request()) == "poll"
    # Drift at a commit already synced: only selfHeal re-applies.
    assert sync_decision(auto, synced_at(A), OUT, diff_request("drift-check")) is None
    assert sync_decision(app({"selfHeal": True}), synced_at(A), OUT, diff_request("drift-check")) == "drift-check"


def test_a_failed_sync_at_this_commit_is_not_retried_by_automation() -> None:
    failed = AppStatus(operation_state=OperationState(phase="Failed", sync_result=SyncOperationResult(revision=A)))
    assert sync_decision(app({"selfHeal": True}), failed, OUT, diff_request("drift-check")) is None
    assert sync_decision(app({"selfHeal": True}), failed, OUT, diff_request(commit=B)) == "poll"  # a new commit is


def test_synced_app_is_left_alone() -> None:
    assert sync_decision(app({"selfHeal": True}), AppStatus(), Cmp("Synced", [Res("Synced")]), diff_request()) is None


def test_pruning_alone_does_not_trigger_a_sync_that_cannot_prune() -> None:
    only_prune = Cmp("OutOfSync", [Res("Synced"), Res("OutOfSync", requires_pruning=True)])
    assert sync_decision(app({"prune": False}), AppStatus(), only_prune, diff_request()) is None
    assert sync_decision(app({"prune": True}), AppStatus(), only_prune, diff_request()) == "poll"


def test_report_metrics_come_from_the_event_snapshot() -> None:
    engine = Engine(Settings(table_name="t", bucket_name="b", per_app_metrics="all"), state=None, manifests=None,  # type: ignore[arg-type]
                    secrets=None, queues=None)
    fleet = engine.report(ReportRequest(app="_fleet", event="fleet", outOfSync=2, degraded=1, apps=5))
    assert {(p.name, p.value) for p in fleet} == {("OutOfSyncApps", 2), ("DegradedApps", 1), ("Applications", 5)}
    assert all(not p.dimensions for p in fleet)
    points = engine.report(ReportRequest(app="guestbook", event="operation", syncStatus="OutOfSync", health="Degraded",
                                         drifted=3, operationPhase="Failed", durations={"apply": 1.5}))
    by_name = {p.name: p for p in points}
    assert by_name["OutOfSync"].value == 1.0 and by_name["OutOfSync"].dimensions == {"app": "guestbook"}
    assert by_name["DriftedResources"].value == 3
    assert by_name["Degraded"].value == 1.0 and by_name["Healthy"].value == 0.0
    assert "SyncFailed" in by_name and "SyncSucceeded" not in by_name
    assert by_name["StageDuration"].dimensions == {"app": "guestbook", "stage": "apply"}


def test_per_app_metrics_follow_the_template_parameter() -> None:
    """Each app x metric name is a billed custom metric: the default keeps two per app."""
    request = ReportRequest(app="guestbook", event="operation", syncStatus="OutOfSync", health="Degraded",
                            drifted=3, operationPhase="Succeeded", durations={"apply": 1.5, "diff": 0.2})
    fleet = ReportRequest(app="_fleet", event="fleet", outOfSync=2, degraded=1, apps=5)

    def names(level: str, req: ReportRequest) -> set[str]:
        engine = Engine(Settings(table_name="t", bucket_name="b", per_app_metrics=level), state=None,  # type: ignore[arg-type]
                        manifests=None, secrets=None, queues=None)
        return {p.name for p in engine.report(req)}

    assert Settings(table_name="t", bucket_name="b").per_app_metrics == "status"
    assert names("status", request) == {"OutOfSync", "Degraded"}
    assert names("none", request) == set()
    assert names("all", request) == {"OutOfSync", "Degraded", "Healthy", "DriftedResources", "SyncSucceeded",
                                     "StageDuration"}
    for level in ("none", "status", "all"):  # the drift alarm's fleet metric is always there
        assert names(level, fleet) == {"OutOfSyncApps", "DegradedApps", "Applications"}
    with pytest.raises(ValueError, match="PER_APP_METRICS"):
        names("some", request)


def test_retry_backoff_follows_argo_cd() -> None:
    from gitferry.model import RetryStrategy, parse_duration
    from gitferry.pipeline import retry_delay

    assert parse_duration("1m30s") == 90 and parse_duration("5s") == 5 and parse_duration("1h") == 3600
    with pytest.raises(ValueError):
        parse_duration("5 sec")
    retry = RetryStrategy.model_validate({"limit": 3, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "12s"}})
    assert [retry_delay(retry, n) for n in range(4)] == [5, 10, 12, None]
    assert retry_delay(None, 0) is None
    assert retry_delay(RetryStrategy.model_validate({"limit": 0}), 0) is None
    unlimited = RetryStrategy.model_validate({"limit": -1})
    assert retry_delay(unlimited, 50) == 180  # default maxDuration 3m


def test_a_dry_run_is_invisible_to_automation() -> None:
    """A dry run at commit A after a real sync at B: automation still sees B (and syncs A)."""
    from gitferry.pipeline import _last_real_operation, _operation_summary

    real = OperationState(phase="Succeeded", sync_result=SyncOperationResult(revision=B))
    dry = OperationState(phase="Succeeded", sync_result=SyncOperationResult(revision=A),
                         operation={"sync": {"revision": A, "dryRun": True, "before": _operation_summary(real)}})
    previous = status(operation_state=dry)
    assert _last_real_operation(previous).sync_result.revision == B
    assert sync_decision(app({"prune": False}), previous, OUT, DiffRequest(
        app="guestbook", commit=A, manifests="k", reason="poll")) == "poll"
    assert sync_decision(app({"prune": False}), status(operation_state=OperationState(
        phase="Succeeded", sync_result=SyncOperationResult(revision=A))), OUT, DiffRequest(
        app="guestbook", commit=A, manifests="k", reason="poll")) is None


# ---------------------------------------------------------------------- when an operation looks again


def test_health_is_rechecked_every_2s_then_5s_with_a_bound() -> None:
    delays = [followups.health_check_delay(n) for n in range(1, followups.HEALTH_MAX_CHECKS + 1)]
    assert delays[:4] == [2.0] * 4 and delays[4] == 5.0
    assert delays[-1] is None and all(d is not None for d in delays[:-1])  # bounded: stops after the last


def _healed(count: int, ago: float, revision: str = A) -> OperationState:
    return OperationState(phase="Succeeded", finished_at=NOW - timedelta(seconds=ago),
                          operation={"sync": {"revision": revision, "selfHealAttemptsCount": count}},
                          sync_result=SyncOperationResult(revision=revision))


@pytest.mark.parametrize(("count", "ago", "wait"), [
    (0, 0, 0.0),        # the sync of a commit is no self-heal: the first heal runs at once
    (1, 0, 5.0),        # 5 s after the first self-heal
    (1, 3, 2.0),
    (2, 0, 10.0),       # doubling
    (3, 1, 19.0),
    (9, 0, 180.0),      # capped at 3 minutes
    (9, 200, 0.0),      # long ago: may run now
])
def test_self_heal_backoff(count: int, ago: float, wait: float) -> None:
    assert followups.self_heal_wait(_healed(count, ago), NOW, 5, 2, 180) == pytest.approx(wait)


def test_self_heal_count_grows_only_for_self_heals_of_the_same_commit_in_a_fight() -> None:
    assert followups.next_self_heal_count(_healed(2, 30), "drift-check", A, NOW, 180) == 3
    assert followups.next_self_heal_count(_healed(2, 30), "poll", A, NOW, 180) == 0       # a new sync
    assert followups.next_self_heal_count(_healed(2, 30), "drift-check", B, NOW, 180) == 0  # new commit
    assert followups.next_self_heal_count(_healed(2, 400), "drift-check", A, NOW, 180) == 1  # quiet since
    assert followups.next_self_heal_count(None, "drift-check", A, NOW, 180) == 0
