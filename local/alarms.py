"""CloudWatch alarm evaluation over captured EMF, because moto stores alarms but never evaluates them.

Why: drift alarms are part of the product (``DriftAlarm`` in template.yaml). Locally the report
function prints Embedded Metric Format lines (Powertools Metrics) to stdout exactly as in Lambda;
the runner captures them, turns them into datapoints here, and this module applies the alarm's
own definition (metric, dimensions, statistic, period, evaluation periods, datapoints to alarm,
threshold, comparison, missing-data treatment) period by period, like CloudWatch does.

One deliberate difference: the evaluation window is the N periods ending with the period that
contains ``now`` (CloudWatch waits for a period to close), so locally an alarm can fire up to one
period earlier. Everything else follows
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
"""

from __future__ import annotations

import json
import math
import operator
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass(frozen=True)
class Datapoint:
    """One metric value as CloudWatch would store it from an EMF line."""

    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]  # sorted (name, value) pairs: an exact dimension set
    timestamp: float  # seconds since the epoch
    value: float
    unit: str = "None"

    @property
    def dimension_dict(self) -> dict[str, str]:
        return dict(self.dimensions)


def parse_emf_line(line: str) -> dict[str, Any] | None:
    """The EMF document on ``line``, or None when the line is not EMF (ordinary log output)."""
    line = line.strip()
    if not line.startswith("{") or '"_aws"' not in line:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("_aws"), dict):
        return None
    if "CloudWatchMetrics" not in doc["_aws"]:
        return None
    return doc


def datapoints_from_emf(doc: dict[str, Any]) -> list[Datapoint]:
    """Expand one EMF document: every metric x every dimension set x every value.

    Per the EMF specification each ``Dimensions`` entry is a dimension *set*; a value is recorded
    once per set, and a metric value may be a number or an array of numbers."""
    aws = doc["_aws"]
    ts = float(aws.get("Timestamp", time.time() * 1000)) / 1000.0
    out: list[Datapoint] = []
    for directive in aws.get("CloudWatchMetrics", []):
        namespace = directive.get("Namespace", "aws-embedded-metrics")
        dim_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics", []):
            name = metric["Name"]
            if name not in doc:
                continue
            raw = doc[name]
            values = raw if isinstance(raw, list) else [raw]
            for dim_names in dim_sets:
                dims = tuple(sorted((d, str(doc.get(d, ""))) for d in dim_names))
                for v in values:
                    out.append(Datapoint(namespace, name, dims, ts, float(v), metric.get("Unit", "None")))
    return out


@dataclass
class AlarmSpec:
    """A metric alarm as put_metric_alarm / AWS::CloudWatch::Alarm describe it."""

    name: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    datapoints_to_alarm: int | None = None
    treat_missing_data: str = "missing"
    alarm_actions: list[str] = field(default_factory=list)
    ok_actions: list[str] = field(default_factory=list)
    logical_id: str | None = None

    @classmethod
    def from_properties(cls, props: dict[str, Any], logical_id: str | None = None) -> AlarmSpec:
        """From resolved put_metric_alarm keyword arguments (what local/aws.py keeps per alarm)."""
        if "Metrics" in props:
            raise ValueError(f"{props.get('AlarmName')}: metric-math alarms are not evaluated locally")
        return cls(
            name=str(props["AlarmName"]),
            namespace=str(props["Namespace"]),
            metric=str(props["MetricName"]),
            dimensions={d["Name"]: str(d["Value"]) for d in props.get("Dimensions", [])},
            statistic=str(props.get("Statistic", "Average")),
            period=int(props["Period"]),
            evaluation_periods=int(props["EvaluationPeriods"]),
            threshold=float(props["Threshold"]),
            comparison=str(props["ComparisonOperator"]),
            datapoints_to_alarm=int(props["DatapointsToAlarm"]) if "DatapointsToAlarm" in props else None,
            treat_missing_data=str(props.get("TreatMissingData", "missing")),
            alarm_actions=list(props.get("AlarmActions", [])),
            ok_actions=list(props.get("OKActions", [])),
            logical_id=logical_id,
        )

    def matches(self, dp: Datapoint) -> bool:
        """CloudWatch treats each dimension combination as its own metric: the set must be equal."""
        return dp.namespace == self.namespace and dp.metric == self.metric and dp.dimension_dict == self.dimensions


def statistic(name: str, values: list[float]) -> float:
    if name == "Maximum":
        return max(values)
    if name == "Minimum":
        return min(values)
    if name == "Sum":
        return math.fsum(values)
    if name == "SampleCount":
        return float(len(values))
    if name == "Average":
        return math.fsum(values) / len(values)
    raise ValueError(f"statistic {name!r} is not evaluated locally")


@dataclass
class Transition:
    alarm: str
    old: str
    new: str
    reason: str
    timestamp: float
    actions: list[str]


class AlarmEvaluator:
    """Holds datapoints and the state of each alarm; ``evaluate`` moves alarms between states.

    ``on_transition`` is called for every state change (the runner mirrors it into moto with
    set_alarm_state and publishes to the alarm's SNS actions)."""

    def __init__(
        self,
        alarms: Iterable[AlarmSpec],
        on_transition: Callable[[AlarmSpec, Transition], None] | None = None,
    ) -> None:
        self.alarms: dict[str, AlarmSpec] = {a.name: a for a in alarms}
        self.states: dict[str, str] = {name: INSUFFICIENT_DATA for name in self.alarms}
        self.history: list[Transition] = []
        self.datapoints: list[Datapoint] = []
        self._on_transition = on_transition
        self._lock = threading.Lock()

    def _spec(self, name: str) -> AlarmSpec:
        if name in self.alarms:
            return self.alarms[name]
        for spec in self.alarms.values():
            if spec.logical_id == name:
                return spec
        raise KeyError(f"no alarm {name!r}; have {sorted(self.alarms)}")

    def add(self, datapoints: Iterable[Datapoint]) -> None:
        with self._lock:
            self.datapoints.extend(datapoints)

    def add_emf(self, doc: dict[str, Any]) -> list[Datapoint]:
        dps = datapoints_from_emf(doc)
        self.add(dps)
        return dps

    def alarm_state(self, name: str) -> str:
        """State of an alarm by physical name or template logical id."""
        return self.states[self._spec(name).name]

    def period_values(self, name: str, now: float | None = None) -> list[tuple[float, float | None]]:
        """(period start, statistic or None when missing) for the evaluation window ending at ``now``."""
        spec = self._spec(name)
        now = time.time() if now is None else now
        last = math.floor(now / spec.period)
        first = last - spec.evaluation_periods + 1
        buckets: dict[int, list[float]] = {}
        with self._lock:
            for dp in self.datapoints:
                if spec.matches(dp):
                    b = math.floor(dp.timestamp / spec.period)
                    if first <= b <= last:
                        buckets.setdefault(b, []).append(dp.value)
        return [
            (b * spec.period, statistic(spec.statistic, buckets[b]) if b in buckets else None)
            for b in range(first, last + 1)
        ]

    def evaluate(self, now: float | None = None) -> dict[str, str]:
        """Evaluate every alarm at ``now`` (default: wall clock); returns name -> state."""
        now = time.time() if now is None else now
        for name, spec in self.alarms.items():
            new, reason = self._decide(spec, now)
            old = self.states[name]
            if new != old:
                self.states[name] = new
                actions = spec.alarm_actions if new == ALARM else spec.ok_actions if new == OK else []
                transition = Transition(name, old, new, reason, now, actions)
                self.history.append(transition)
                if self._on_transition is not None:
                    self._on_transition(spec, transition)
        return dict(self.states)

    def _decide(self, spec: AlarmSpec, now: float) -> tuple[str, str]:
        window = self.period_values(spec.name, now)
        compare = _COMPARISONS[spec.comparison]
        needed = spec.datapoints_to_alarm or spec.evaluation_periods
        breaching = 0
        present = 0
        for _, value in window:
            if value is None:
                if spec.treat_missing_data == "breaching":
                    breaching += 1
                continue
            present += 1
            if compare(value, spec.threshold):
                breaching += 1
        shown = [None if v is None else round(v, 6) for _, v in window]
        reason = (
            f"{breaching} of the last {len(window)} datapoints {shown} were {spec.comparison} "
            f"{spec.threshold} ({spec.statistic}, period {spec.period}s, {needed} needed)"
        )
        if breaching >= needed:
            return ALARM, reason
        if present == 0:
            if spec.treat_missing_data == "missing":
                return INSUFFICIENT_DATA, "no datapoints in the evaluation window"
            if spec.treat_missing_data == "ignore":
                return self.states[spec.name], "no datapoints; state kept (ignore)"
        return OK, reason


def alarm_message(spec: AlarmSpec, transition: Transition, region: str, account_id: str) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS actions (the fields consumers read)."""
    return {
        "AlarmName": spec.name,
        "AlarmDescription": None,
        "AWSAccountId": account_id,
        "NewStateValue": transition.new,
        "NewStateReason": transition.reason,
        "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(transition.timestamp)),
        "Region": region,
        "AlarmArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{spec.name}",
        "OldStateValue": transition.old,
        "Trigger": {
            "MetricName": spec.metric,
            "Namespace": spec.namespace,
            "Statistic": spec.statistic.upper(),
            "Dimensions": [{"name": k, "value": v} for k, v in spec.dimensions.items()],
            "Period": spec.period,
            "EvaluationPeriods": spec.evaluation_periods,
            "ComparisonOperator": spec.comparison,
            "Threshold": spec.threshold,
            "TreatMissingData": spec.treat_missing_data,
        },
    }
