"""Adapter canaries (issue 16) on the in-memory fakes: the pure judgement of a canary's signals, the
family's canary policy as configuration, and the four canary tasks of LifecycleService writing only
the canary's tenant. The CloudWatch reader runs against moto at the end. The workflow around these
tasks runs in ``tests/integration/test_model_deployment_asl.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from pydantic import ValidationError

from switchboard.lifecycle.adapter_store import AdapterState, TenantAdapterMovedByAnotherDeployment
from switchboard.lifecycle.canary import CloudWatchCanarySignals, ComponentSignals, judge, metric_window
from switchboard.lifecycle.model import AdapterCanaryPolicy, ModelFamily
from switchboard.lifecycle.service import CanaryNotJudged, LifecycleService
from tests.fakes import InMemoryOptions, InMemoryRegistry, InMemoryTenantAdapters
from tests.unit.test_tenant_adapters_service import LORA, lora_registry, ref, seeded, serving, task, version

POLICY = AdapterCanaryPolicy(max_error_rate_percent=5, max_model_latency_ms=2000, min_invocations=10)


# --- judge ------------------------------------------------------------------------------------------


def test_a_canary_within_its_thresholds_is_healthy_and_says_what_was_seen() -> None:
    verdict = judge(POLICY, ComponentSignals(invocations=100, errors=5, latency_ms=1500))
    assert verdict.healthy
    assert "100 invocations, 5 errors" in verdict.reason and "1500 ms" in verdict.reason


@pytest.mark.parametrize(
    ("signals", "firing", "approval", "why"),
    [
        (ComponentSignals(100, 6, 100), (), "Approved", "error rate 6.0%"),
        (ComponentSignals(100, 0, 2500), (), "Approved", "ModelLatency Average 2500 ms above 2000 ms"),
        (ComponentSignals(9, 0, 100), (), "Approved", "fewer than the 10 needed"),
        (ComponentSignals(100, 0, 100), ("fam-gateway-errors",), "Approved", "fam-gateway-errors"),
        (ComponentSignals(100, 0, 100), (), "Rejected", "Rejected now"),
    ],
)
def test_a_canary_rolls_back_for_the_first_reason_it_meets(
    signals: ComponentSignals, firing: Sequence[str], approval: str, why: str
) -> None:
    verdict = judge(POLICY, signals, firing_alarms=firing, approval=approval)
    assert not verdict.healthy and why in verdict.reason


def test_errors_without_invocations_are_never_healthy() -> None:
    assert not judge(AdapterCanaryPolicy(), ComponentSignals(0, 3, None)).healthy


@given(
    invocations=st.integers(min_value=1, max_value=10_000),
    errors=st.integers(min_value=0, max_value=10_000),
    limit=st.floats(min_value=0, max_value=100),
)
def test_the_error_rate_rule_is_exactly_the_threshold(invocations: int, errors: int, limit: float) -> None:
    errors = min(errors, invocations)
    policy = AdapterCanaryPolicy(max_error_rate_percent=limit)
    healthy = judge(policy, ComponentSignals(invocations, errors, None)).healthy
    assert healthy == (100.0 * errors / invocations <= limit)


def test_the_metric_window_covers_whole_minutes_from_the_canarys_start() -> None:
    start, end = metric_window("2026-11-30T10:00:42Z", datetime(2026, 11, 30, 10, 3, 5, tzinfo=UTC))
    assert (start, end) == (
        datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 10, 4, tzinfo=UTC),
    )
    start, end = metric_window("2026-11-30T10:00:42Z", datetime(2026, 11, 30, 10, 0, 43, tzinfo=UTC))
    assert end - start == timedelta(minutes=1)


# --- configuration ----------------------------------------------------------------------------------


def test_a_family_without_canary_settings_gets_the_defaults_and_bad_ones_are_refused() -> None:
    assert LORA.canary == AdapterCanaryPolicy()
    assert LORA.canary.share_percent == 10
    base = {"group": "g", "option_id": "o", "endpoint_name": "e", "base_component": "b"}
    family = ModelFamily.model_validate({**base, "canary": {"share_percent": 25, "latency_statistic": "p90"}})
    assert (family.canary.share_percent, family.canary.latency_statistic) == (25, "p90")
    for bad in ({"share_percent": 0}, {"share_percent": 51}, {"latency_statistic": "median"}, {"shares": 5}):
        with pytest.raises(ValidationError):
            ModelFamily.model_validate({**base, "canary": bad})


# --- the service's canary tasks ---------------------------------------------------------------------


@dataclass
class FakeSignals:
    seen: ComponentSignals = field(default_factory=ComponentSignals)
    firing: list[str] = field(default_factory=list)
    asked: list[tuple[str, datetime, datetime, str]] = field(default_factory=list)

    def component(
        self, component: str, *, start: datetime, end: datetime, latency_statistic: str
    ) -> ComponentSignals:
        self.asked.append((component, start, end, latency_statistic))
        return self.seen

    def alarms_in_alarm(self, names: Sequence[str]) -> list[str]:
        return [n for n in names if n in self.firing]


def canary_service(
    registry: InMemoryRegistry, adapters: InMemoryTenantAdapters, signals: FakeSignals | None
) -> LifecycleService:
    family = LORA.model_copy(update={"canary": AdapterCanaryPolicy(share_percent=20)})
    return LifecycleService(
        families={family.group: family},
        options=InMemoryOptions(),
        registry=registry,
        adapters=adapters,
        signals=signals,
    )


def test_a_canary_starts_beside_the_live_adapter_and_touches_no_other_tenant() -> None:
    registry = lora_registry()
    acme1, globex2, acme3 = (
        registry.add_version(version(n, t)) for n, t in ((1, "acme"), (2, "globex"), (3, "acme"))
    )
    adapters = seeded(serving("acme", acme1), serving("globex", globex2))
    globex_before = adapters.get(LORA.group, "globex")

    started = canary_service(registry, adapters, FakeSignals()).start_canary(task(acme3, "acme", acme1))

    acme = adapters.get(LORA.group, "acme")
    assert acme is not None
    assert (acme.state, acme.live, acme.canary, acme.canary_share_percent) == (
        AdapterState.CANARY,
        ref(acme1),
        ref(acme3),
        20,
    )
    assert (started["share_percent"], started["component"]) == (20, ref(acme3).component)
    assert adapters.get(LORA.group, "globex") == globex_before
    assert [c.event.value for c in adapters.changes] == ["canary_started"]

    # a second canary of the same tenant is refused while this one runs
    acme4 = registry.add_version(version(4, "acme"))
    with pytest.raises(TenantAdapterMovedByAnotherDeployment):
        canary_service(registry, adapters, FakeSignals()).start_canary(task(acme4, "acme", acme1))


def test_a_first_adapter_canaries_against_the_base_model_and_promotes_with_no_previous() -> None:
    registry = lora_registry()
    acme1 = registry.add_version(version(1, "acme"))
    adapters = seeded()
    svc = canary_service(registry, adapters, FakeSignals())

    svc.start_canary(task(acme1, "acme", None))
    assert adapters.get(LORA.group, "acme").live is None  # type: ignore[union-attr]
    svc.promote_canary(task(acme1, "acme", None, reason="healthy"))

    acme = adapters.get(LORA.group, "acme")
    assert acme is not None
    assert (acme.state, acme.live, acme.previous, acme.canary) == (AdapterState.LIVE, ref(acme1), None, None)


def _canarying() -> tuple[InMemoryRegistry, InMemoryTenantAdapters, Any, Any]:
    registry = lora_registry()
    acme1, acme3 = registry.add_version(version(1, "acme")), registry.add_version(version(3, "acme"))
    adapters = seeded(
        replace(serving("acme", acme1), state=AdapterState.CANARY, canary=ref(acme3), canary_share_percent=20)
    )
    return registry, adapters, acme1, acme3


def judge_event(v: Any, started_at: str = "2026-11-30T10:00:00Z") -> dict[str, Any]:
    return {
        "group": LORA.group,
        "tenant": "acme",
        "package_arn": v.arn,
        "component": ref(v).component,
        "started_at": started_at,
        "alarm_names": ["lora-invocation-5xx", "lora-gateway-errors"],
    }


def test_the_judgement_reads_the_canary_components_own_metrics_and_the_familys_alarms() -> None:
    registry, adapters, _, acme3 = _canarying()
    signals = FakeSignals(seen=ComponentSignals(50, 0, 300.0))
    svc = canary_service(registry, adapters, signals)

    assert svc.judge_canary(judge_event(acme3))["healthy"] is True
    ((component, start, _, statistic),) = signals.asked
    assert (component, start, statistic) == (
        ref(acme3).component,
        datetime(2026, 11, 30, 10, tzinfo=UTC),
        "Average",
    )

    signals.firing = ["lora-gateway-errors"]
    verdict = svc.judge_canary(judge_event(acme3))
    assert (verdict["healthy"], verdict["invocations"]) == (False, 50)
    assert "lora-gateway-errors" in verdict["reason"]


def test_a_version_rejected_during_its_canary_is_judged_unhealthy() -> None:
    registry, adapters, _, acme3 = _canarying()
    registry.add_version(replace(acme3, approval="Rejected"))
    verdict = canary_service(registry, adapters, FakeSignals()).judge_canary(judge_event(acme3))
    assert not verdict["healthy"] and "Rejected" in verdict["reason"]


def test_without_a_signal_reader_the_canary_is_not_judged() -> None:
    registry, adapters, _, acme3 = _canarying()
    with pytest.raises(CanaryNotJudged):
        canary_service(registry, adapters, None).judge_canary(judge_event(acme3))


def test_promotion_makes_the_canary_live_and_the_old_live_one_previous() -> None:
    registry, adapters, acme1, acme3 = _canarying()
    canary_service(registry, adapters, FakeSignals()).promote_canary(task(acme3, "acme", acme1, reason="ok"))
    acme = adapters.get(LORA.group, "acme")
    assert acme is not None
    assert (acme.state, acme.live, acme.previous, acme.canary, acme.canary_share_percent) == (
        AdapterState.LIVE,
        ref(acme3),
        ref(acme1),
        None,
        0,
    )
    (change,) = adapters.changes
    assert (change.event.value, change.reason, change.extra["canary_version"]) == ("canary_promoted", "ok", 3)


def test_a_rollback_keeps_the_live_adapter_and_records_which_canary_and_why() -> None:
    registry, adapters, acme1, acme3 = _canarying()
    before = adapters.get(LORA.group, "acme")
    assert before is not None
    canary_service(registry, adapters, FakeSignals()).roll_back_canary(
        task(acme3, "acme", acme1, reason="error rate 50.0%")
    )
    acme = adapters.get(LORA.group, "acme")
    assert acme is not None
    assert (acme.state, acme.live, acme.previous, acme.canary) == (
        AdapterState.ROLLED_BACK,
        before.live,
        before.previous,
        None,
    )
    (change,) = adapters.changes
    assert change.event.value == "canary_rolled_back" and change.reason == "error rate 50.0%"
    assert (change.extra["canary_version"], change.extra["canary_component"]) == (3, ref(acme3).component)


def test_ending_a_canary_that_is_no_longer_this_deployments_is_refused() -> None:
    registry, adapters, acme1, acme3 = _canarying()
    acme4 = registry.add_version(version(4, "acme"))
    svc = canary_service(registry, adapters, FakeSignals())
    with pytest.raises(TenantAdapterMovedByAnotherDeployment):
        svc.promote_canary(task(acme4, "acme", acme1, reason="ok"))
    with pytest.raises(TenantAdapterMovedByAnotherDeployment):
        svc.roll_back_canary(task(acme3, "globex", None, reason="no such canary"))
    assert adapters.changes == []


def test_retirement_keeps_a_running_canarys_version() -> None:
    registry, adapters, _, acme3 = _canarying()
    kept_arns, kept_components = canary_service(registry, adapters, None)._tenant_adapters_in_use(LORA)
    assert acme3.arn in kept_arns and ref(acme3).component in kept_components


# --- the CloudWatch reader (moto) -------------------------------------------------------------------


def test_the_cloudwatch_reader_sums_the_components_metrics_and_finds_firing_alarms(
    aws_credentials: None,
) -> None:
    from switchboard_local.lifecycle_local import put_component_metrics

    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        put_component_metrics(cloudwatch, "acme-v3", invocations=30, errors=3, latency_ms=250)
        put_component_metrics(cloudwatch, "acme-v3", invocations=10, errors=1, latency_ms=750)
        put_component_metrics(cloudwatch, "globex-v2", invocations=99, errors=99, latency_ms=9000)
        for name in ("fam-invocation-5xx", "fam-gateway-errors"):
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/SageMaker",
                MetricName="Invocation5XXErrors",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        cloudwatch.set_alarm_state(AlarmName="fam-gateway-errors", StateValue="ALARM", StateReason="test")
        reader = CloudWatchCanarySignals(cloudwatch)
        start, end = metric_window(
            (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"), datetime.now(UTC)
        )

        seen = reader.component("acme-v3", start=start, end=end, latency_statistic="Average")

        assert (seen.invocations, seen.errors, seen.latency_ms) == (40, 4, 500)
        assert reader.alarms_in_alarm(["fam-invocation-5xx", "fam-gateway-errors", "fam-none"]) == [
            "fam-gateway-errors"
        ]
        assert reader.alarms_in_alarm([]) == []
