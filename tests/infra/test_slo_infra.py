"""Per-route SLOs (issue 15): the burn-rate alarms and the dashboard, and the `slos` context checks.

Given the app synthesized once with cdk-nag on (conftest) from `cdk.json`'s `slos` (a default, and
overrides for `chat` and `embed`), when we read the template, then every route of
config/flags.json has, for availability and latency, the four composite alarms of the
multi-window, multi-burn-rate table (long AND short window, the right burn rates, pages and tickets
named apart, notifying the alarm topic), every window alarm fits CloudWatch's evaluation limits, and
the dashboard shows budget left and burn rates per route plus the metering row. Invalid `slos`
context is refused with a message that names the key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from template_queries import of_type, only

from infra.config import (
    BURN_RATE_WINDOWS,
    CTX_SLOS,
    DEFAULTS,
    ConfigError,
    SwitchboardConfig,
    _slos,
    load_cdk_json_context,
    load_json,
    route_names,
)
from infra.constants import FLAGS_FILE
from infra.constructs.slo_alarms import check_alarm_period
from switchboard.contract import metrics as metric_names

# (severity, long window, short window, burn rate) for a 30-day window: the workbook's rows plus
# the 1-day ticket pair, written out so a change to the derivation shows here.
EXPECTED_PAIRS = [
    ("page", "1h", 3600, 300, 14.4),
    ("page", "6h", 21600, 1800, 6.0),
    ("ticket", "1d", 86400, 7200, 3.0),
    ("ticket", "3d", 259200, 21600, 1.0),
]
# From cdk.json: (availability budget, latency budget, latency threshold in ms) per route.
EXPECTED_OBJECTIVES = {
    "chat": (0.001, 0.01, 10000),
    "embed": (0.0005, 0.01, 2000),
    "echo": (0.001, 0.01, 8000),
    "summarize": (0.001, 0.01, 8000),
    "tuned": (0.001, 0.01, 8000),
}


def alarms_by_id(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in of_type(template_json, "AWS::CloudWatch::Alarm").items()}


def composites_by_name(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        v["Properties"]["AlarmName"]: v["Properties"]
        for v in of_type(template_json, "AWS::CloudWatch::CompositeAlarm").values()
    }


def rule_inputs(composite: dict[str, Any]) -> tuple[str, list[str]]:
    """The rule's text with the alarm ARNs left out, and the logical ids of the alarms it reads."""
    parts = composite["AlarmRule"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "<alarm>" for p in parts)
    ids = [p["Fn::GetAtt"][0] for p in parts if isinstance(p, dict)]
    return text, ids


def queries(alarm: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    """The alarm's returned expression and its metric queries by id."""
    (expression,) = [
        m["Expression"] for m in alarm["Metrics"] if m.get("ReturnData", True) and "Expression" in m
    ]
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    return expression, stats


def dashboard_body(template_json: dict[str, Any]) -> str:
    _, dashboard = only(template_json, "AWS::CloudWatch::Dashboard")
    return "".join(
        part if isinstance(part, str) else json.dumps(part)
        for part in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    )


def test_the_routes_with_slos_are_the_routes_of_the_flags_document() -> None:
    assert route_names(load_json(FLAGS_FILE)) == sorted(EXPECTED_OBJECTIVES)


@pytest.mark.parametrize("route", sorted(EXPECTED_OBJECTIVES))
@pytest.mark.parametrize("sli", ["availability", "latency"])
def test_each_route_has_the_four_composite_burn_rate_alarms(
    template_json: dict[str, Any], route: str, sli: str
) -> None:
    (topic_id, _) = only(template_json, "AWS::SNS::Topic")
    alarms = alarms_by_id(template_json)
    composites = composites_by_name(template_json)
    availability_budget, latency_budget, threshold_ms = EXPECTED_OBJECTIVES[route]
    budget = availability_budget if sli == "availability" else latency_budget
    for severity, long_name, long_s, short_s, rate in EXPECTED_PAIRS:
        composite = composites[f"Switchboard-slo-{severity}-{route}-{sli}-{long_name}"]
        assert composite["AlarmActions"] == [{"Ref": topic_id}]
        assert severity.upper() in composite["AlarmDescription"]
        text, (long_id, short_id) = rule_inputs(composite)
        assert text == '(ALARM("<alarm>") AND ALARM("<alarm>"))'
        for alarm_id, period in ((long_id, long_s), (short_id, short_s)):
            alarm = alarms[alarm_id]
            assert alarm["Threshold"] == pytest.approx(rate)
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (1, "notBreaching")
            assert "AlarmActions" not in alarm  # only the composite notifies
            expression, stats = queries(alarm)
            assert expression == f"(FILL(bad, 0) / total) / {budget:g}"
            assert {s["Period"] for s in stats.values()} == {period}
            for stat in stats.values():
                assert stat["Metric"]["Namespace"] == metric_names.NAMESPACE
                assert {"Name": metric_names.ROUTE_DIMENSION, "Value": route} in stat["Metric"]["Dimensions"]
            if sli == "availability":
                assert (stats["bad"]["Metric"]["MetricName"], stats["bad"]["Stat"]) == (
                    metric_names.ROUTE_BAD_ANSWERS,
                    "Sum",
                )
                assert (stats["total"]["Metric"]["MetricName"], stats["total"]["Stat"]) == (
                    metric_names.ROUTE_REQUESTS,
                    "Sum",
                )
            else:
                assert (stats["bad"]["Metric"]["MetricName"], stats["bad"]["Stat"]) == (
                    metric_names.ROUTE_LATENCY,
                    f"TC({threshold_ms}:)",
                )
                assert (stats["total"]["Metric"]["MetricName"], stats["total"]["Stat"]) == (
                    metric_names.ROUTE_LATENCY,
                    "SampleCount",
                )


def test_no_composite_alarm_beyond_the_slo_ones(template_json: dict[str, Any]) -> None:
    composites = composites_by_name(template_json)
    assert len(composites) == len(EXPECTED_OBJECTIVES) * 2 * len(EXPECTED_PAIRS)
    pages = [name for name in composites if name.startswith("Switchboard-slo-page-")]
    tickets = [name for name in composites if name.startswith("Switchboard-slo-ticket-")]
    assert len(pages) == len(tickets) == len(composites) // 2


def test_every_alarm_period_fits_cloudwatch_evaluation_limits(template_json: dict[str, Any]) -> None:
    """PutMetricAlarm: period a multiple of 60 s; period x evaluation periods <= 7 days, <= 1 day
    for periods under an hour (a template that breaks this fails at deploy, not at synth)."""
    for alarm_id, alarm in alarms_by_id(template_json).items():
        periods = {m["MetricStat"]["Period"] for m in alarm.get("Metrics", []) if "MetricStat" in m}
        periods |= {alarm["Period"]} if "Period" in alarm else set()
        assert len(periods) == 1, alarm_id
        (period,) = periods
        total = period * alarm["EvaluationPeriods"]
        assert period % 60 == 0 or period in (10, 20, 30), alarm_id
        assert total <= (86400 if period < 3600 else 604800), alarm_id


def test_check_alarm_period_refuses_what_cloudwatch_refuses() -> None:
    from aws_cdk import Duration

    check_alarm_period(Duration.days(3))
    check_alarm_period(Duration.minutes(30), 48)
    with pytest.raises(ValueError, match="multiple of 60"):
        check_alarm_period(Duration.seconds(90))
    with pytest.raises(ValueError, match="86400 s evaluation range"):
        check_alarm_period(Duration.minutes(30), 49)
    with pytest.raises(ValueError, match="604800 s evaluation range"):
        check_alarm_period(Duration.days(3), 3)


def test_dashboard_shows_budget_left_and_burn_rates_per_route(template_json: dict[str, Any]) -> None:
    body = dashboard_body(template_json)
    for route, (_, _, threshold_ms) in EXPECTED_OBJECTIVES.items():
        assert f"Error budget left: {route}" in body, route
        assert f"TC({threshold_ms}:)" in body, route
    assert "Availability burn rate per route" in body
    assert "Latency burn rate per route" in body
    # Budget left over the whole 30-day window: one value per widget.
    assert '"start":"-P30D"' in body
    assert '"setPeriodToTimeRange":true' in body
    assert "100 * (1 - (FILL(ava_bad, 0) / ava_total) / 0.0005)" in body  # embed, 99.95 %
    for severity, _, _, _, rate in EXPECTED_PAIRS:
        assert f'"label":"{severity} {rate:g}x"' in body
    assert "SLO pages" in body
    assert "SLO tickets" in body


def test_metering_failures_page_and_the_dashboard_has_a_metering_and_limits_row(
    template_json: dict[str, Any],
) -> None:
    topic_id, _ = only(template_json, "AWS::SNS::Topic")
    (alarm,) = [a for a in alarms_by_id(template_json).values() if a.get("MetricName") == "MeteringFailed"]
    assert (alarm["Namespace"], alarm["Statistic"], alarm["Period"]) == ("Switchboard", "Sum", 300)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    body = dashboard_body(template_json)
    for name in (metric_names.METERING_FAILED, metric_names.RATE_LIMITED, metric_names.BUDGET_EXHAUSTED):
        assert f'"{name}"' in body, name


# --- The `slos` context -----------------------------------------------------------------------------


def config_with(slos: Any) -> SwitchboardConfig:
    context = {**load_cdk_json_context(), CTX_SLOS: slos}
    return SwitchboardConfig.from_context(context.get, environ={})


def test_cdk_json_slos_parse_with_overrides_inheriting_the_default() -> None:
    slos = config_with(
        {
            "window_days": 28,
            "default": {"availability": 99.9, "latency": {"percentile": 99, "threshold_ms": 8000}},
            "routes": {"chat": {"latency": {"threshold_ms": 12000}}, "embed": {"availability": 99.5}},
        }
    ).slos
    assert slos.window_days == 28
    assert slos.routes["chat"].availability == 99.9
    assert (slos.routes["chat"].latency.percentile, slos.routes["chat"].latency.threshold_ms) == (99, 12000)
    assert slos.routes["embed"].latency.threshold_ms == 8000
    assert slos.routes["embed"].availability_budget == pytest.approx(0.005)
    per_route = slos.for_routes(["chat", "echo", "embed"])
    assert per_route["echo"] == slos.default
    # 28 days: 2 % of the budget in an hour is a 13.44x burn (the workbook's 14.4x is for 30 days).
    assert BURN_RATE_WINDOWS[0].burn_rate(28) == pytest.approx(13.44)


def test_slos_given_with_dash_c_are_json_text() -> None:
    text = json.dumps(DEFAULTS[CTX_SLOS])
    assert config_with(text).slos == _slos(DEFAULTS[CTX_SLOS])


def test_without_slos_context_the_defaults_apply() -> None:
    context = {k: v for k, v in load_cdk_json_context().items() if k != CTX_SLOS}
    settings = SwitchboardConfig.from_context(context.get, environ={})
    assert settings.slos.default.availability == 99.9
    assert settings.slos.routes == {}


DEFAULT = {"availability": 99.9, "latency": {"percentile": 99, "threshold_ms": 8000}}


@pytest.mark.parametrize(
    ("slos", "message"),
    [
        ("not json", r"context 'slos' must be a JSON object"),
        ({"routes": {}}, r"'slos.default' is required"),
        ({"default": DEFAULT, "windows_days": 30}, r"'slos' has unknown keys windows_days"),
        ({"default": DEFAULT, "window_days": 400}, r"'slos.window_days' must be a number in \[7, 90\]"),
        ({"default": {"availability": 99.9}}, r"'slos.default' must set both 'availability' and 'latency'"),
        (
            {"default": {"availability": 99.9, "latency": {"percentile": 99}}},
            r"'slos.default.latency' must set 'percentile' and 'threshold_ms'",
        ),
        ({"default": {**DEFAULT, "availability": 100}}, r"'slos.default.availability' must be below 100"),
        ({"default": {**DEFAULT, "availability": "high"}}, r"'slos.default.availability' must be a number"),
        (
            {"default": {**DEFAULT, "availability": 90}},
            r"'slos.default.availability' = 90 leaves a 10 % error budget: the 14.4x fast-burn page "
            r"would need more than 100 % bad requests and could never fire; use at least 93.06",
        ),
        (
            {"default": {**DEFAULT, "latency": {"percentile": 50, "threshold_ms": 500}}},
            r"'slos.default.latency.percentile' = 50 leaves a 50 % error budget",
        ),
        (
            {"default": {**DEFAULT, "latency": {"percentile": 99, "threshold_ms": 0}}},
            r"'slos.default.latency.threshold_ms' must be a number in \[1, 900000\]",
        ),
        (
            {"default": {**DEFAULT, "latency": {"percentile": 99, "threshold_ms": 2.5}}},
            r"'slos.default.latency.threshold_ms' must be a whole number",
        ),
        (
            {"default": DEFAULT, "routes": {"chat": {"availabilty": 99.9}}},
            r"'slos.routes.chat' has unknown keys availabilty \(allowed: availability, latency\)",
        ),
        (
            {"default": DEFAULT, "routes": {"chat": {"latency": {"p": 99}}}},
            r"'slos.routes.chat.latency' has unknown keys p",
        ),
        ({"default": DEFAULT, "routes": ["chat"]}, r"'slos.routes' must be an object"),
    ],
)
def test_invalid_slos_are_refused_with_a_message_naming_the_key(slos: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_with(slos)


def test_an_slo_for_a_route_the_flags_document_lacks_is_refused() -> None:
    slos = config_with({"default": DEFAULT, "routes": {"chta": {"availability": 99.5}}}).slos
    with pytest.raises(ConfigError, match=r"names routes that config/flags.json does not have: chta"):
        slos.for_routes(route_names(load_json(FLAGS_FILE)))
