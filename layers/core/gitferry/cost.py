"""What gitferry costs per month: measured work per app and per tick times AWS list prices.

Pure and typed: no I/O. The inputs are measurements of the scale rig (``make bench-scale``,
``tools/bench_scale.py``) or of one app's own counts (the API's cost route); the prices are
AWS's public on-demand list prices for us-east-1, each named below with the page it comes
from. They were copied by hand (this machine has no network access to re-check them): the
date on each is when the page was read, and a price change on AWS's side makes this table
wrong until the constant is updated. Free tiers are left out (they do not scale).

The model, per month (``SECONDS_PER_MONTH`` = 30 days):

* every poll tick (``poll_seconds``, 60 s) runs the poll function once, whatever the app count,
  and costs the per-tick AWS calls the rig measured (they grow with apps and repositories);
* every app is drift-checked every ``drift_check_seconds`` (180 s): one render and one diff
  invocation and the DynamoDB / S3 / SQS calls the rig measured per drift-checked app;
* Lambda time: the measured mean duration of each stage's invocation times its memory;
* fixed: CloudWatch custom metrics and alarms of template.yaml, the secrets gitferry holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

SECONDS_PER_MONTH: Final = 30 * 24 * 3600
HOURS_PER_MONTH: Final = 30 * 24

# --- AWS Lambda, https://aws.amazon.com/lambda/pricing/ (us-east-1, first 6 B GB-s tier; read 2025-06)
LAMBDA_GB_SECOND_X86: Final = 0.0000166667
LAMBDA_GB_SECOND_ARM: Final = 0.0000133334
LAMBDA_PER_MILLION_REQUESTS: Final = 0.20
# SnapStart for Python, same page: cache per GB-s of each published version kept, restore per GB.
LAMBDA_SNAPSTART_CACHE_GB_SECOND: Final = 0.0000015046
LAMBDA_SNAPSTART_RESTORE_GB: Final = 0.0001397998
# --- Amazon SQS, https://aws.amazon.com/sqs/pricing/ (per million requests, each 64 KB chunk one; read 2025-06)
SQS_STANDARD_PER_MILLION: Final = 0.40
SQS_FIFO_PER_MILLION: Final = 0.50
# --- DynamoDB on-demand, https://aws.amazon.com/dynamodb/pricing/on-demand/ (after the Nov 2024 cut; read 2025-06)
DYNAMODB_PER_MILLION_RRU: Final = 0.125
DYNAMODB_PER_MILLION_WRU: Final = 0.625
DYNAMODB_STORAGE_GB_MONTH: Final = 0.25
# --- Amazon S3 Standard, https://aws.amazon.com/s3/pricing/ (read 2025-06)
S3_PER_1000_PUT: Final = 0.005  # PUT, COPY, POST, LIST
S3_PER_1000_GET: Final = 0.0004  # GET, SELECT and all other requests
S3_STORAGE_GB_MONTH: Final = 0.023  # first 50 TB
# --- Amazon CloudWatch, https://aws.amazon.com/cloudwatch/pricing/ (read 2025-06)
CLOUDWATCH_METRIC_MONTH: Final = 0.30  # first 10,000 custom metrics
CLOUDWATCH_METRIC_TIERS: Final = ((10_000, 0.30), (240_000, 0.10), (750_000, 0.05), (None, 0.02))
CLOUDWATCH_ALARM_METRIC_MONTH: Final = 0.10  # standard resolution
CLOUDWATCH_LOGS_INGEST_GB: Final = 0.50
CLOUDWATCH_LOGS_STORAGE_GB_MONTH: Final = 0.03
# --- AWS Secrets Manager, https://aws.amazon.com/secrets-manager/pricing/ (read 2025-06)
SECRETS_MANAGER_SECRET_MONTH: Final = 0.40
SECRETS_MANAGER_PER_10K_CALLS: Final = 0.05
# --- Amazon EC2 on-demand, https://aws.amazon.com/ec2/pricing/on-demand/ (Linux, us-east-1; read 2025-06)
EC2_M5_LARGE_HOUR: Final = 0.096  # 2 vCPU, 8 GiB

#: S3 operations billed at the PUT tier; every other operation is billed at the GET tier
S3_PUT_TIER: Final = frozenset({"PutObject", "CopyObject", "PostObject", "ListObjects", "ListObjectsV2",
                                "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                                "ListObjectVersions", "ListMultipartUploads"})


@dataclass(frozen=True)
class StageUse:
    """One Lambda stage: how often it runs and what one run costs in time and AWS calls.

    ``per`` says what the rates are counted against: ``"tick"`` (once per poll tick) or ``"check"``
    (once per drift-checked app). ``invocations`` and ``ms`` (Lambda time, all invocations
    together) per that unit; every other field is AWS calls (or log bytes) per that unit."""

    name: str
    memory_mb: int
    per: str
    invocations: float
    ms: float
    dynamodb_rru: float = 0.0
    dynamodb_wru: float = 0.0
    s3_put: float = 0.0
    s3_get: float = 0.0
    sqs_fifo: float = 0.0
    sqs_standard: float = 0.0
    secrets_calls: float = 0.0
    log_bytes: float = 0.0
    # A per-tick stage measured on a fleet of this many apps: its time and calls are scaled to
    # the priced fleet (a tick reads every app's state and resolves every repository), its
    # invocations are not (one poll per tick at any size). 0 = not scaled.
    at_apps: int = 0

    def __post_init__(self) -> None:
        if self.per not in ("tick", "check"):
            raise ValueError(f"StageUse.per: {self.per!r} is neither 'tick' nor 'check'")


@dataclass(frozen=True)
class Fleet:
    """What is priced: ``apps`` apps polled every ``poll_seconds`` and drift-checked every
    ``drift_check_seconds``; ``secrets`` held in Secrets Manager, ``metrics`` custom metrics and
    ``alarms`` alarms (template.yaml), ``stored_gb`` in DynamoDB and S3."""

    apps: int
    poll_seconds: int = 60
    drift_check_seconds: int = 180
    secrets: int = 1
    metrics: float = 0
    alarms: int = 0
    dynamodb_gb: float = 0.0
    s3_gb: float = 0.0
    arm: bool = False


@dataclass(frozen=True)
class MonthlyCost:
    """US dollars per month, by service; ``total`` is their sum."""

    lambda_compute: float
    lambda_requests: float
    sqs: float
    dynamodb: float
    s3: float
    secrets_manager: float
    cloudwatch: float
    detail: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return (self.lambda_compute + self.lambda_requests + self.sqs + self.dynamodb + self.s3
                + self.secrets_manager + self.cloudwatch)


def _per_million(count: float, price: float) -> float:
    return count / 1_000_000 * price


def units_per_month(stage: StageUse, fleet: Fleet) -> float:
    """How many of the stage's units (ticks or drift-checked apps) a month holds."""
    if fleet.poll_seconds <= 0 or fleet.drift_check_seconds <= 0:
        raise ValueError("poll_seconds and drift_check_seconds must be positive")
    ticks = SECONDS_PER_MONTH / fleet.poll_seconds
    if stage.per == "tick":
        return ticks
    # an app is checked at the first tick after its interval ran out
    interval = max(fleet.poll_seconds, -(-fleet.drift_check_seconds // fleet.poll_seconds) * fleet.poll_seconds)
    return fleet.apps * SECONDS_PER_MONTH / interval


def monthly(stages: list[StageUse], fleet: Fleet) -> MonthlyCost:
    """The month of ``fleet`` from the per-unit use of every stage."""
    gb_s = 0.0
    requests = rru = wru = s3_put = s3_get = fifo = standard = secrets = log_bytes = 0.0
    detail: dict[str, float] = {}
    price_gb_s = LAMBDA_GB_SECOND_ARM if fleet.arm else LAMBDA_GB_SECOND_X86
    for stage in stages:
        inv = stage.invocations * units_per_month(stage, fleet)
        n = units_per_month(stage, fleet) * (fleet.apps / stage.at_apps if stage.per == "tick" and stage.at_apps else 1)
        stage_gb_s = stage.ms * n / 1000 * stage.memory_mb / 1024
        gb_s += stage_gb_s
        requests += inv
        # a stage priced per tick and per check (the poll) adds both parts
        detail[f"lambda:{stage.name}"] = (detail.get(f"lambda:{stage.name}", 0.0) + stage_gb_s * price_gb_s
                                          + _per_million(inv, LAMBDA_PER_MILLION_REQUESTS))
        rru += stage.dynamodb_rru * n
        wru += stage.dynamodb_wru * n
        s3_put += stage.s3_put * n
        s3_get += stage.s3_get * n
        fifo += stage.sqs_fifo * n
        standard += stage.sqs_standard * n
        secrets += stage.secrets_calls * n
        log_bytes += stage.log_bytes * n
    gb = 1024 ** 3
    return MonthlyCost(
        lambda_compute=gb_s * price_gb_s,
        lambda_requests=_per_million(requests, LAMBDA_PER_MILLION_REQUESTS),
        sqs=_per_million(fifo, SQS_FIFO_PER_MILLION) + _per_million(standard, SQS_STANDARD_PER_MILLION),
        dynamodb=(_per_million(rru, DYNAMODB_PER_MILLION_RRU) + _per_million(wru, DYNAMODB_PER_MILLION_WRU)
                  + fleet.dynamodb_gb * DYNAMODB_STORAGE_GB_MONTH),
        s3=s3_put / 1000 * S3_PER_1000_PUT + s3_get / 1000 * S3_PER_1000_GET + fleet.s3_gb * S3_STORAGE_GB_MONTH,
        secrets_manager=fleet.secrets * SECRETS_MANAGER_SECRET_MONTH + secrets / 10_000 * SECRETS_MANAGER_PER_10K_CALLS,
        cloudwatch=(metrics_monthly(fleet.metrics) + fleet.alarms * CLOUDWATCH_ALARM_METRIC_MONTH
                    + log_bytes / gb * CLOUDWATCH_LOGS_INGEST_GB),
        detail=detail,
    )


def metrics_monthly(count: float) -> float:
    """Custom metrics for a month at CloudWatch's tiers (first 10,000 at $0.30, ...)."""
    total, left = 0.0, count
    for size, price in CLOUDWATCH_METRIC_TIERS:
        step = left if size is None else min(left, size)
        total += step * price
        left -= step
        if left <= 0:
            break
    return total


def argocd_nodes_monthly(nodes: int = 3, hourly: float = EC2_M5_LARGE_HOUR) -> float:
    """Argo CD on its own nodes: ``nodes`` on-demand instances at ``hourly`` all month (no EKS
    control plane, storage or load balancer counted: the least such a setup costs)."""
    return nodes * hourly * HOURS_PER_MONTH


def _per_unit(stage: dict[str, object], unit: float) -> dict[str, float]:
    calls = stage.get("aws_calls") or {}
    assert isinstance(calls, dict)

    def of(service: str, ops: frozenset[str] | None = None, invert: bool = False) -> float:
        total = 0
        for key, count in calls.items():
            svc, _, op = str(key).partition(":")
            if svc == service and (ops is None or ((op in ops) != invert)):
                total += int(count)
        return total / unit

    inv = float(stage.get("invocations") or 0)  # type: ignore[arg-type]
    mean = float(stage.get("mean_ms_without_sqs_sends") or 0)  # type: ignore[arg-type]
    fifo = float(stage.get("sqs_fifo_calls") or 0) / unit  # type: ignore[arg-type]
    return {
        "invocations": inv / unit, "ms": inv * mean / unit,
        "dynamodb_rru": float(stage.get("dynamodb_rru") or 0) / unit,  # type: ignore[arg-type]
        "dynamodb_wru": float(stage.get("dynamodb_wru") or 0) / unit,  # type: ignore[arg-type]
        "s3_put": of("s3", S3_PUT_TIER), "s3_get": of("s3", S3_PUT_TIER, invert=True),
        "sqs_fifo": fifo, "sqs_standard": of("sqs") - fifo,
        "secrets_calls": of("secretsmanager"),
        "log_bytes": float(stage.get("log_bytes") or 0) / unit,  # type: ignore[arg-type]
    }


def stages_from_rig(doc: dict[str, object]) -> list[StageUse]:
    """The per-unit use of every stage from a ``make bench-scale`` document: per tick from its
    ``steady`` phase (a tick with nothing due), per drift-checked app from its ``drift`` phase
    (every app due), the poll's part of that phase less its steady tick. Calls the local runner
    makes outside invocations (Lambda's own SQS polling) are not priced: see docs/cost.md."""
    phases = doc["phases"]
    assert isinstance(phases, dict)
    steady, drift = phases["steady"], phases["drift"]
    scale = doc.get("scale") or {}
    rig_apps = int(scale.get("apps") or 0) if isinstance(scale, dict) else 0
    ticks = float(steady.get("ticks") or 1)
    checked = float(drift.get("checked_apps") or 1)
    out: list[StageUse] = []
    per_tick: dict[str, dict[str, float]] = {}
    for name, stage in steady["stages"].items():
        if stage.get("memory_mb") is None:
            continue
        per_tick[name] = _per_unit(stage, ticks)
        out.append(StageUse(name=name, memory_mb=int(stage["memory_mb"]), per="tick", at_apps=rig_apps,
                            **per_tick[name]))
    for name, stage in drift["stages"].items():
        if stage.get("memory_mb") is None:
            continue
        values = _per_unit(stage, checked)
        if name in per_tick:  # what the steady tick already accounts for, once per tick
            values = {k: max(0.0, v - per_tick[name][k] / checked) for k, v in values.items()}
        out.append(StageUse(name=name, memory_mb=int(stage["memory_mb"]), per="check", **values))
    return out


def fleet_table(doc: dict[str, object], sizes: tuple[int, ...] = (10, 100, 1000, 5000), *,
                poll_seconds: int = 60, drift_check_seconds: int = 180, arm: bool = False) -> list[tuple[int, MonthlyCost]]:
    """Monthly cost of fleets of ``sizes`` apps from the rig's measurements; the fixed part
    (secrets: the API token and the webhook secret; metrics and alarms) from its document."""
    stages = stages_from_rig(doc)
    metrics = doc.get("custom_metrics") or {}
    assert isinstance(metrics, dict)
    fleet_metrics, app_metrics = float(metrics.get("fleet") or 0), float(metrics.get("per_app") or 0)
    alarms = int(doc.get("alarms") or 0)  # type: ignore[call-overload]
    return [(n, monthly(stages, Fleet(apps=n, poll_seconds=poll_seconds, drift_check_seconds=drift_check_seconds,
                                      secrets=2, metrics=fleet_metrics + app_metrics * n, alarms=alarms, arm=arm)))
            for n in sizes]


def format_table(rows: list[tuple[int, MonthlyCost]], argocd_nodes: float) -> str:
    """The cost table (US$ per month) as Markdown, Argo CD on its own nodes beside it."""
    lines = ["| apps | Lambda | SQS | DynamoDB | S3 | Secrets Manager | CloudWatch | total / month | per app |"
             " Argo CD on 3 x m5.large |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, c in rows:
        lines.append(f"| {n:,} | {c.lambda_compute + c.lambda_requests:.2f} | {c.sqs:.2f} | {c.dynamodb:.2f} | "
                     f"{c.s3:.2f} | {c.secrets_manager:.2f} | {c.cloudwatch:.2f} | **{c.total:.2f}** | "
                     f"{c.total / n:.4f} | {argocd_nodes:.2f} |")
    return "\n".join(lines)


#: One drift check of one app, as ``make bench-scale`` measured it (per drift-checked app, the
#: ``check`` stages of :func:`stages_from_rig`); :data:`MEASURED_AT` says where and when. The
#: API's per-app estimate uses these (a Lambda cannot run the rig), with the app's own interval.
MEASURED_AT: Final = "20 apps / 2 repositories / 2 clusters, local stack, 2026-12-03"
MEASURED_CHECK: Final[tuple[StageUse, ...]] = (
    StageUse(name='DiffFunction', memory_mb=1024, per='check', invocations=0.1, ms=123.95, dynamodb_rru=5.0, dynamodb_wru=2.0, s3_put=1.0, s3_get=1.0, sqs_fifo=1.0),
    StageUse(name='PollFunction', memory_mb=512, per='check', invocations=0.0, ms=0.565, sqs_fifo=0.1, log_bytes=11.75),
    StageUse(name='RenderFunction', memory_mb=1024, per='check', invocations=0.1, ms=24.51, dynamodb_rru=2.0, s3_get=2.0, sqs_fifo=1.0),
    StageUse(name='ReportFunction', memory_mb=512, per='check', invocations=0.1, ms=33.25, log_bytes=1592.8),
)
#: custom metrics with an ``app`` dimension, per app, at PerAppMetrics=all (the report stage's
#: per-app metrics, StageDuration once per stage)
MEASURED_METRICS_PER_APP: Final = 8.0
#: per-app custom metrics at each PerAppMetrics level (template.yaml; pipeline.PER_APP_METRICS)
METRICS_PER_APP: Final[dict[str, float]] = {"none": 0.0, "status": 2.0, "all": MEASURED_METRICS_PER_APP}


def app_estimate(*, drift_check_seconds: int, poll_seconds: int = 60, resources: int = 0,
                 stages: tuple[StageUse, ...] = MEASURED_CHECK,
                 metrics_per_app: float = MEASURED_METRICS_PER_APP) -> dict[str, object]:
    """One app's own month (JSON-ready): its drift checks at its interval and its own custom
    metrics (priced at the first tier). Shared costs (the poll tick, secrets, fleet-wide
    metrics and alarms) are a fleet's, not an app's, and left out; so is the time a sync of a
    new commit costs (it depends on how often the app's repository changes)."""
    own = monthly(list(stages), Fleet(apps=1, poll_seconds=poll_seconds, drift_check_seconds=drift_check_seconds,
                                      secrets=0, metrics=metrics_per_app))
    checks = units_per_month(StageUse(name="check", memory_mb=128, per="check", invocations=0, ms=0),
                             Fleet(apps=1, poll_seconds=poll_seconds, drift_check_seconds=drift_check_seconds))
    return {
        "currency": "USD", "monthly": round(own.total, 4),
        "breakdown": {"lambda": round(own.lambda_compute + own.lambda_requests, 4), "sqs": round(own.sqs, 4),
                      "dynamodb": round(own.dynamodb, 4), "s3": round(own.s3, 4),
                      "cloudwatch": round(own.cloudwatch, 4)},
        "driftCheckSeconds": drift_check_seconds, "pollSeconds": poll_seconds,
        "driftChecksPerMonth": round(checks), "resources": resources,
        "basis": f"per drift check as measured by make bench-scale ({MEASURED_AT}) at AWS us-east-1 list prices; "
                 "shared costs (poll tick, secrets, alarms) and syncs of new commits not included",
    }
