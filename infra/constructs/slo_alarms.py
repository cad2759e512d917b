"""Per-route SLOs: multi-window, multi-burn-rate alarms and error-budget widgets.

Each route has two SLIs, both ratios of the gateway's per-route metrics (namespace ``Switchboard``,
dimensions ``service`` + ``route``; names in :mod:`switchboard.contract.metrics`):

- availability: ``RouteBadAnswers`` / ``RouteRequests`` (Sum over the window);
- latency: the share of requests slower than the objective's threshold,
  ``RouteLatency`` ``TC(threshold:)`` / ``RouteLatency`` ``SampleCount``. CloudWatch's trimmed count
  with an absolute lower bound counts the values above it (the lower bound is excluded, as for
  percentile rank: CloudWatch user guide, "CloudWatch statistics definitions"), so the alarm sees
  the real share of slow requests, not a p99 of per-period p99s. This needs every latency value in
  CloudWatch, which EMF gives (it publishes the values, not a statistic set).

The burn rate is that ratio divided by the error budget (``1 - objective``): 1x spends the budget
exactly over the SLO window. For each row of :data:`infra.config.BURN_RATE_WINDOWS` and each SLI,
two metric-math alarms (the long and the short window, each one period of the window's length,
one evaluation period) are ANDed by a composite alarm: the long window says enough budget is gone,
the short one that it is still burning (so the alarm resets soon after the fix). Only the
composite alarms notify; the window alarms are their inputs.

CloudWatch limits honoured (PutMetricAlarm, ``Period`` and ``EvaluationPeriods``): a period is a
multiple of 60 s; period x evaluation periods ≤ 7 days, and ≤ 1 day for periods under an hour. The
longest window (3 days = 259,200 s x 1) fits. Metric-math alarms may reference at most 10 metrics
(CloudWatch user guide, "Limits that apply to alarms based on metric math expressions"): these use 2.
The default sliding evaluation window advances at each evaluation, so each alarm reads the last
``window`` of data (CloudWatch user guide, "Alarm evaluation window").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import BURN_RATE_WINDOWS, PAGE, BurnRateWindow, RouteSlo
from switchboard.contract import metrics as metric_names

AVAILABILITY = "availability"
LATENCY = "latency"
SLIS = (AVAILABILITY, LATENCY)
BURN_RATE_GRAPH_PERIOD = Duration.hours(1)

_MAX_EVALUATION_RANGE_S = 7 * 24 * 3600
_MAX_SHORT_PERIOD_RANGE_S = 24 * 3600


def check_alarm_period(period: Duration, evaluation_periods: int = 1) -> None:
    """Refuse at synth what PutMetricAlarm would refuse at deploy (see the module docstring)."""
    seconds = int(period.to_seconds())
    if seconds % 60:
        raise ValueError(f"an alarm period must be a multiple of 60 s, got {seconds} s")
    total = seconds * evaluation_periods
    limit = _MAX_SHORT_PERIOD_RANGE_S if seconds < 3600 else _MAX_EVALUATION_RANGE_S
    if total > limit:
        raise ValueError(
            f"period {seconds} s x {evaluation_periods} evaluation periods = {total} s exceeds CloudWatch's "
            f"{limit} s evaluation range"
        )


def route_metric(
    metric_name: str, route: str, *, statistic: str, period: Duration, label: str | None = None
) -> cloudwatch.Metric:
    """A per-route SLI metric of the gateway (dimensions ``service`` and ``route``)."""
    return cloudwatch.Metric(
        namespace=metric_names.NAMESPACE,
        metric_name=metric_name,
        dimensions_map={
            metric_names.SERVICE_DIMENSION: metric_names.SERVICE,
            metric_names.ROUTE_DIMENSION: route,
        },
        statistic=statistic,
        period=period,
        label=label,
    )


def slow_statistic(threshold_ms: int) -> str:
    """``TC(threshold:)``: how many values are above ``threshold_ms`` (the lower bound is excluded)."""
    return f"TC({threshold_ms}:)"


def bad_and_total(
    route: str, slo: RouteSlo, sli: str, period: Duration
) -> tuple[cloudwatch.Metric, cloudwatch.Metric]:
    """The SLI's bad-event count and valid-event count over ``period``."""
    if sli == AVAILABILITY:
        return (
            route_metric(
                metric_names.ROUTE_BAD_ANSWERS, route, statistic=cloudwatch.Stats.SUM, period=period
            ),
            route_metric(metric_names.ROUTE_REQUESTS, route, statistic=cloudwatch.Stats.SUM, period=period),
        )
    return (
        route_metric(
            metric_names.ROUTE_LATENCY,
            route,
            statistic=slow_statistic(slo.latency.threshold_ms),
            period=period,
        ),
        route_metric(
            metric_names.ROUTE_LATENCY, route, statistic=cloudwatch.Stats.SAMPLE_COUNT, period=period
        ),
    )


def budget_of(slo: RouteSlo, sli: str) -> float:
    return slo.availability_budget if sli == AVAILABILITY else slo.latency.budget


def burn_rate(
    route: str, slo: RouteSlo, sli: str, period: Duration, *, id_prefix: str = "", label: str | None = None
) -> cloudwatch.MathExpression:
    """(bad / total) / budget over ``period``; no traffic gives no datapoint (not a zero burn)."""
    bad, total = bad_and_total(route, slo, sli, period)
    return cloudwatch.MathExpression(
        expression=f"(FILL({id_prefix}bad, 0) / {id_prefix}total) / {budget_of(slo, sli):g}",
        using_metrics={f"{id_prefix}bad": bad, f"{id_prefix}total": total},
        period=period,
        label=label or f"{route} {sli} burn rate",
    )


def budget_left_percent(
    route: str, slo: RouteSlo, sli: str, period: Duration, *, id_prefix: str
) -> cloudwatch.MathExpression:
    """100 x (1 - spent share of the budget) over ``period``: negative when the SLO is missed."""
    bad, total = bad_and_total(route, slo, sli, period)
    return cloudwatch.MathExpression(
        expression=f"100 * (1 - (FILL({id_prefix}bad, 0) / {id_prefix}total) / {budget_of(slo, sli):g})",
        using_metrics={f"{id_prefix}bad": bad, f"{id_prefix}total": total},
        period=period,
        label=f"{sli} budget left (%)",
    )


def describe_objective(slo: RouteSlo, sli: str) -> str:
    if sli == AVAILABILITY:
        return f"{slo.availability:g}% of requests answered without a 5xx"
    return f"p{slo.latency.percentile:g} ≤ {slo.latency.threshold_ms} ms"


def window_text(minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@dataclass(frozen=True, slots=True)
class BurnRateAlarm:
    """One composite alarm (long AND short window) and what it watches."""

    route: str
    sli: str
    window: BurnRateWindow
    burn_rate: float
    composite: cloudwatch.CompositeAlarm
    long_alarm: cloudwatch.Alarm
    short_alarm: cloudwatch.Alarm


class SloAlarms(Construct):
    """The burn-rate alarms of every route's availability and latency SLOs, and their widgets.

    Composite alarm names are ``<prefix><severity>-<route>-<sli>-<long window>``, e.g.
    ``Switchboard-slo-page-chat-availability-1h``: the severity leads, so a subscription filter
    policy on the alarm topic (message body ``AlarmName`` prefix) can send pages to the pager and
    tickets to the ticket queue.

    Attributes:
        burn_rate_alarms: every composite alarm with its route, SLI and window.
        page_alarms, ticket_alarms: the composites by severity.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Mapping[str, RouteSlo],
        window_days: int,
        alarm_topic: sns.ITopic,
        alarm_name_prefix: str,
    ) -> None:
        """
        Args:
            routes: route → its SLO (every route the routing document has).
            window_days: the SLO window (the burn rates and the budget-left widgets use it).
            alarm_topic: where the composite alarms notify (pages and tickets alike).
            alarm_name_prefix: prefix of the composite alarm names (e.g. ``Switchboard-slo-``).
        """
        super().__init__(scope, construct_id)
        self.routes = dict(routes)
        self.window_days = window_days
        action = cw_actions.SnsAction(alarm_topic)
        self.burn_rate_alarms: list[BurnRateAlarm] = []
        for route_index, (route, slo) in enumerate(sorted(self.routes.items())):
            route_id = f"R{route_index}{_construct_safe(route)}"
            for sli in SLIS:
                for window in BURN_RATE_WINDOWS:
                    found = self._pair(route_id, route, slo, sli, window, alarm_name_prefix)
                    found.composite.add_alarm_action(action)
                    self.burn_rate_alarms.append(found)
        self.page_alarms = [a.composite for a in self.burn_rate_alarms if a.window.severity == PAGE]
        self.ticket_alarms = [a.composite for a in self.burn_rate_alarms if a.window.severity != PAGE]

    def _pair(
        self, route_id: str, route: str, slo: RouteSlo, sli: str, window: BurnRateWindow, prefix: str
    ) -> BurnRateAlarm:
        rate = window.burn_rate(self.window_days)
        long_text, short_text = window_text(window.long_minutes), window_text(window.short_minutes)
        objective = describe_objective(slo, sli)

        def window_alarm(minutes: int) -> cloudwatch.Alarm:
            period = Duration.minutes(minutes)
            check_alarm_period(period)
            text = window_text(minutes)
            return cloudwatch.Alarm(
                self,
                f"{route_id}{sli.capitalize()}{window.severity.capitalize()}{long_text}Over{text}",
                alarm_description=f"Route {route}: {sli} error budget ({objective}) burning at ≥ {rate:g}x "
                f"over the last {text}. An input of the {window.severity} composite alarm "
                f"{prefix}{window.severity}-{route}-{sli}-{long_text}; it notifies no one by itself.",
                metric=burn_rate(route, slo, sli, period),
                threshold=rate,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                # No traffic spends no budget.
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        long_alarm = window_alarm(window.long_minutes)
        short_alarm = window_alarm(window.short_minutes)
        spent = f"{100 * window.budget_consumed:g}% of the {self.window_days}-day budget"
        composite = cloudwatch.CompositeAlarm(
            self,
            f"{route_id}{sli.capitalize()}{window.severity.capitalize()}{long_text}",
            composite_alarm_name=f"{prefix}{window.severity}-{route}-{sli}-{long_text}",
            alarm_description=f"{window.severity.upper()}: route {route} is burning its {sli} error budget "
            f"({objective} over {self.window_days} days) at ≥ {rate:g}x over both {long_text} and "
            f"{short_text}: {spent} gone in {long_text}. See the dashboard's SLO rows (budget left, "
            "burn rates) and the provider and degraded-answer rows for the cause.",
            alarm_rule=cloudwatch.AlarmRule.all_of(long_alarm, short_alarm),
        )
        return BurnRateAlarm(route, sli, window, rate, composite, long_alarm, short_alarm)

    def widgets(self) -> list[list[cloudwatch.IWidget]]:
        """Dashboard rows: a legend, the SLO alarm states, budget left per route, burn rates per SLI."""
        header: list[cloudwatch.IWidget] = [
            cloudwatch.TextWidget(
                markdown=f"## SLOs ({self.window_days}-day window)\n"
                "Budget left: 100 % untouched, 0 % spent, negative missed. Burn rate 1x spends the budget "
                "exactly over the window; alarms fire at "
                + ", ".join(
                    f"{w.burn_rate(self.window_days):g}x ({window_text(w.long_minutes)} and "
                    f"{window_text(w.short_minutes)}, {w.severity})"
                    for w in BURN_RATE_WINDOWS
                )
                + ".",
                width=24,
                height=2,
            ),
        ]
        states: list[cloudwatch.IWidget] = [
            cloudwatch.AlarmStatusWidget(
                title="SLO pages", alarms=list(self.page_alarms), width=12, height=3
            ),
            cloudwatch.AlarmStatusWidget(
                title="SLO tickets", alarms=list(self.ticket_alarms), width=12, height=3
            ),
        ]
        whole_window = Duration.days(self.window_days)
        budgets: list[cloudwatch.IWidget] = [
            cloudwatch.SingleValueWidget(
                title=f"Error budget left: {route}",
                metrics=[
                    budget_left_percent(route, slo, sli, whole_window, id_prefix=f"{sli[:3]}_")
                    for sli in SLIS
                ],
                start=f"-P{self.window_days}D",
                set_period_to_time_range=True,
                width=6,
                height=4,
            )
            for route, slo in sorted(self.routes.items())
        ]
        page_rate = BURN_RATE_WINDOWS[0].burn_rate(self.window_days)
        annotations = [
            cloudwatch.HorizontalAnnotation(
                value=w.burn_rate(self.window_days),
                label=f"{w.severity} {w.burn_rate(self.window_days):g}x",
                color=cloudwatch.Color.RED if w.severity == PAGE else cloudwatch.Color.ORANGE,
            )
            for w in BURN_RATE_WINDOWS
        ]
        burn_rates: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title=f"{sli.capitalize()} burn rate per route (1-hour windows)",
                left=[
                    burn_rate(route, slo, sli, BURN_RATE_GRAPH_PERIOD, id_prefix=f"r{i}_", label=route)
                    for i, (route, slo) in enumerate(sorted(self.routes.items()))
                ],
                left_annotations=annotations,
                left_y_axis=cloudwatch.YAxisProps(min=0, max=max(2 * page_rate, 1)),
                width=12,
                height=6,
            )
            for sli in SLIS
        ]
        return [header, states, budgets, burn_rates]


def _construct_safe(route: str) -> str:
    """A route name as a construct id fragment (route names may hold '-', '.', '_')."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", route) if part)
