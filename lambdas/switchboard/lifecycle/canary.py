"""Judging a tenant's adapter canary (issue 16) without one CloudWatch alarm per adapter.

SageMaker inference components have no blue/green: the gateway sends a share of the tenant's
requests to the new component, and after the bake the workflow's ``JudgeTenantCanary`` task reads
what happened. Two signals, both cheap at hundreds of adapters:

- the canary component's own metrics, read once per canary with **one** ``GetMetricData`` call
  (namespace ``AWS/SageMaker``, dimension ``InferenceComponentName``: ``Invocations``,
  ``Invocation5XXErrors``, ``InvocationModelErrors``, ``ModelLatency`` in microseconds; SageMaker
  developer guide, "Monitor Amazon SageMaker AI with Amazon CloudWatch", inference component
  metrics). Four queries of one datapoint each: far below GetMetricData's 500 queries and 100,800
  datapoints per call; one call per bake is far below its default 50 transactions per second per
  account; metrics requested this way cost per 1,000 metrics, no standing charge per adapter.
  A new component carries only the canary's traffic, so every datapoint of the window is the
  canary's.
- the family's three rollback alarms (``DescribeAlarms`` by name, 3 of the 100 names one call
  takes), which also watch the gateway's own errors for the family.

Thresholds come from the family's :class:`~switchboard.lifecycle.model.AdapterCanaryPolicy`. No
alarm is created per adapter: CloudWatch bills every standard alarm monthly, and hundreds of tenants'
adapters would mean hundreds of alarms (and alarm-count quotas) for canaries that last minutes.
:func:`judge` is pure; :class:`CloudWatchCanarySignals` is the only I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from switchboard.lifecycle.model import AdapterCanaryPolicy, Approval

NAMESPACE = "AWS/SageMaker"
DIMENSION = "InferenceComponentName"
INVOCATIONS = "Invocations"
ERROR_METRICS = ("Invocation5XXErrors", "InvocationModelErrors")
LATENCY = "ModelLatency"
PERIOD_STEP_S = 60
"""GetMetricData periods for standard-resolution metrics are multiples of 60 seconds."""


@dataclass(frozen=True, slots=True)
class ComponentSignals:
    """What one inference component did during a window (None: no datapoint)."""

    invocations: float = 0.0
    errors: float = 0.0
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    reason: str

    def as_state(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "reason": self.reason}


class CanarySignals(Protocol):
    """The two reads of a canary's judgement (``CloudWatchCanarySignals``; a fake in unit tests)."""

    def component(
        self, component: str, *, start: datetime, end: datetime, latency_statistic: str
    ) -> ComponentSignals: ...

    def alarms_in_alarm(self, names: Sequence[str]) -> list[str]:
        """The names among ``names`` whose alarm is in state ALARM."""


def judge(
    policy: AdapterCanaryPolicy,
    signals: ComponentSignals,
    *,
    firing_alarms: Sequence[str] = (),
    approval: str = Approval.APPROVED,
) -> Verdict:
    """Promote or roll back: the first reason to roll back wins; healthy names what was seen."""
    if approval != Approval.APPROVED:
        return Verdict(False, f"the version is {approval} now, not Approved")
    if firing_alarms:
        return Verdict(False, f"rollback alarm in ALARM: {', '.join(sorted(firing_alarms))}")
    if signals.invocations < policy.min_invocations:
        return Verdict(
            False,
            f"{signals.invocations:g} invocations during the bake, fewer than the "
            f"{policy.min_invocations} needed to judge",
        )
    if signals.invocations > 0:
        rate = 100.0 * signals.errors / signals.invocations
        if rate > policy.max_error_rate_percent:
            return Verdict(
                False,
                f"error rate {rate:.1f}% ({signals.errors:g} of {signals.invocations:g} invocations) "
                f"above {policy.max_error_rate_percent:g}%",
            )
    elif signals.errors > 0:
        return Verdict(False, f"{signals.errors:g} errors without a counted invocation")
    if signals.latency_ms is not None and signals.latency_ms > policy.max_model_latency_ms:
        return Verdict(
            False,
            f"ModelLatency {policy.latency_statistic} {signals.latency_ms:.0f} ms above "
            f"{policy.max_model_latency_ms} ms",
        )
    latency = "no latency datapoint" if signals.latency_ms is None else f"{signals.latency_ms:.0f} ms"
    return Verdict(
        True,
        f"healthy: {signals.invocations:g} invocations, {signals.errors:g} errors, "
        f"ModelLatency {policy.latency_statistic} {latency}",
    )


def summed(each: Iterable[ComponentSignals]) -> ComponentSignals:
    """One component's signals over several regions (the same canary in each, issue 16): the
    invocations and errors added, the worst latency (a statistic cannot be merged exactly)."""
    invocations = errors = 0.0
    latencies: list[float] = []
    for signals in each:
        invocations += signals.invocations
        errors += signals.errors
        if signals.latency_ms is not None:
            latencies.append(signals.latency_ms)
    return ComponentSignals(invocations, errors, max(latencies) if latencies else None)


def metric_window(started_at: str, now: datetime) -> tuple[datetime, datetime]:
    """From the minute the canary started to the end of the current minute: aligned to whole
    minutes, as GetMetricData's periods are, and never empty."""
    start = _parse(started_at).replace(second=0, microsecond=0)
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(seconds=PERIOD_STEP_S)
    if end <= start:
        end = start + timedelta(seconds=PERIOD_STEP_S)
    return start, end


def _parse(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CloudWatchCanarySignals:
    """:class:`CanarySignals` on a CloudWatch client (``cloudwatch:GetMetricData``, which IAM cannot
    scope to resources, and ``cloudwatch:DescribeAlarms`` on the family's alarms)."""

    def __init__(self, cloudwatch: Any) -> None:
        self.cloudwatch = cloudwatch

    def component(
        self, component: str, *, start: datetime, end: datetime, latency_statistic: str
    ) -> ComponentSignals:
        # one period covering the whole window: one datapoint per query
        seconds = int((end - start).total_seconds())
        period = max(PERIOD_STEP_S, -(-seconds // PERIOD_STEP_S) * PERIOD_STEP_S)
        queries = [
            self._query("invocations", INVOCATIONS, component, period, "Sum"),
            *(
                self._query(f"errors{i}", name, component, period, "Sum")
                for i, name in enumerate(ERROR_METRICS)
            ),
            self._query("latency", LATENCY, component, period, latency_statistic),
        ]
        values: dict[str, list[float]] = {}
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        while True:
            page = self.cloudwatch.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                values.setdefault(str(result["Id"]), []).extend(float(v) for v in result.get("Values", []))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        latency = values.get("latency") or []
        return ComponentSignals(
            invocations=sum(values.get("invocations", [])),
            errors=max(sum(values.get(f"errors{i}", [])) for i in range(len(ERROR_METRICS))),
            latency_ms=max(latency) / 1000.0 if latency else None,
        )

    @staticmethod
    def _query(query_id: str, metric: str, component: str, period: int, stat: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": DIMENSION, "Value": component}],
                },
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    def alarms_in_alarm(self, names: Sequence[str]) -> list[str]:
        wanted = [n for n in names if n][:100]  # DescribeAlarms takes up to 100 names per call
        if not wanted:
            return []
        firing: list[str] = []
        kwargs: dict[str, Any] = {"AlarmNames": wanted, "AlarmTypes": ["MetricAlarm"]}
        while True:
            page = self.cloudwatch.describe_alarms(**kwargs)
            firing.extend(
                str(a["AlarmName"]) for a in page.get("MetricAlarms", []) if a.get("StateValue") == "ALARM"
            )
            token = page.get("NextToken")
            if not token:
                return firing
            kwargs["NextToken"] = token
