"""Limits, budgets and capacity as the gateway will use them, against moto and the in-memory fake.

Every test runs on both: the DynamoDB adapter against moto (the usage table created from
``contract.tables``), and ``tests/fakes/usage_counters.py``, which must behave the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.contract import errors as catalogue
from switchboard.quotas.counters import UsageCounters
from switchboard.quotas.dynamo import DynamoUsageCounters
from switchboard.quotas.model import Budget, TenantLimits
from switchboard.quotas.service import (
    BudgetExhausted,
    CapacityCounters,
    QuotaSettingsStore,
    RateLimiter,
    RateLimitExceeded,
    TenantQuotas,
)
from switchboard_local.moto_patches import DYNAMODB_ATOMIC_WRITES
from tests.fakes.clock import ManualClock
from tests.fakes.threads import HeldThreads
from tests.fakes.usage_counters import InMemoryUsageCounters
from tests.unit.test_quota_counters_dynamo import create_usage_table

START = datetime(2026, 11, 30, 8, 15, 45, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "memory"])
def counters(request: pytest.FixtureRequest, aws_credentials: None) -> Iterator[UsageCounters]:
    if request.param == "memory":
        yield InMemoryUsageCounters()
        return
    with mock_aws(), DYNAMODB_ATOMIC_WRITES.applied():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_usage_table(client, "usage")
        yield DynamoUsageCounters("usage", client=client)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def quotas(counters: UsageCounters, clock: ManualClock, **kwargs: Any) -> TenantQuotas:
    return TenantQuotas(counters, clock=clock.utcnow, monotonic=clock, **kwargs)


def test_a_tenant_over_its_tpm_gets_429_with_retry_after_and_another_is_unaffected(
    counters: UsageCounters, clock: ManualClock
) -> None:
    settings = QuotaSettingsStore(counters)
    settings.set_limits("acme", TenantLimits(tpm=1000), actor="test")
    gateway = quotas(counters, clock)
    first = gateway.before_call("acme", prompt_chars=2000, max_tokens=400)  # 500 + 400
    assert first.reservation is not None and first.reservation.tokens == 900
    with pytest.raises(RateLimitExceeded) as refused:
        gateway.before_call("acme", prompt_chars=400, max_tokens=100)  # 200 more > 1000
    error = refused.value
    assert (error.status, error.type, error.code) == (429, "rate_limit_error", "rate_limit_exceeded")
    assert error.spec is catalogue.RATE_LIMIT_EXCEEDED
    assert error.headers == {"Retry-After": "15"}  # 08:15:45 -> the window ends at 08:16:00
    assert "1000 tokens per minute (tpm)" in error.message
    # another tenant, same instant: no limit of its own, untouched by acme's
    other = gateway.before_call("globex", prompt_chars=10**6, max_tokens=10**5)
    assert other.reservation is None and other.budget == "ok"
    # the next minute is a new window
    clock.advance(15)
    assert gateway.before_call("acme", prompt_chars=400, max_tokens=100).reservation is not None


def test_reconcile_replaces_the_estimate_with_the_real_usage(
    counters: UsageCounters, clock: ManualClock
) -> None:
    limiter = RateLimiter(counters, clock=clock.utcnow)
    limits = TenantLimits(rpm=100, tpm=1000)
    reservation = limiter.admit("acme", limits, 900)
    assert limiter.current("acme").tpm == 900
    limiter.reconcile(reservation, 120)  # the answer was short: 780 go back
    usage = limiter.current("acme")
    assert (usage.rpm, usage.tpm) == (1, 120)
    again = limiter.admit("acme", limits, 800)  # fits now that the estimate was corrected
    clock.advance(30)  # the call ends in the next minute: reconciled in the window it reserved in
    limiter.reconcile(again, 1000)
    assert limiter.current("acme").tpm == 0
    clock.advance(-30)
    assert limiter.current("acme").tpm == 1120
    with pytest.raises(RateLimitExceeded, match="tpm"):
        limiter.admit("acme", limits, 1)


def test_a_failed_call_gives_its_tokens_back_and_never_below_zero(
    counters: UsageCounters, clock: ManualClock
) -> None:
    limiter = RateLimiter(counters, clock=clock.utcnow)
    limits = TenantLimits(tpm=500)
    reservation = limiter.admit("acme", limits, 300)
    assert reservation is not None
    limiter.reconcile(reservation, 0)
    limiter.reconcile(reservation, 0)  # twice (a retried cleanup): still not negative
    assert limiter.current("acme").tpm == 0


def test_rpm_counts_requests_and_a_refused_request_keeps_no_slot(
    counters: UsageCounters, clock: ManualClock
) -> None:
    limiter = RateLimiter(counters, clock=clock.utcnow)
    limits = TenantLimits(rpm=2, tpm=100)
    limiter.admit("acme", limits, 10)
    with pytest.raises(RateLimitExceeded, match="tpm"):
        limiter.admit("acme", limits, 95)
    limiter.admit("acme", limits, 10)  # the tpm refusal did not use the second request
    with pytest.raises(RateLimitExceeded) as refused:
        limiter.admit("acme", limits, 0)
    assert refused.value.limit == "rpm" and "2 requests per minute" in refused.value.message


def test_threads_never_admit_more_than_the_limit(counters: UsageCounters, clock: ManualClock) -> None:
    limiter = RateLimiter(counters, clock=clock.utcnow)
    limits = TenantLimits(rpm=1000, tpm=5000)
    barrier = threading.Barrier(8)

    def caller(_: int) -> int:
        barrier.wait()
        admitted = 0
        for _ in range(12):
            try:
                limiter.admit("acme", limits, 97)
                admitted += 1
            except RateLimitExceeded:
                pass
        return admitted

    with ThreadPoolExecutor(max_workers=8) as pool:
        admitted = sum(pool.map(caller, range(8)))
    assert admitted == 5000 // 97
    assert limiter.current("acme").tpm == admitted * 97


def test_budget_status_goes_low_then_exhausted_and_route_keeps_answering(
    counters: UsageCounters, clock: ManualClock
) -> None:
    QuotaSettingsStore(counters).set_budget("acme", Budget(period="day", tokens=1000), actor="test")
    gateway = quotas(counters, clock, settings_ttl_s=0)
    check = gateway.before_call("acme", prompt_chars=10, max_tokens=10)
    assert check.budget == "ok"
    gateway.after_call(check, tokens=850, usd=Decimal("0.01"))
    assert gateway.before_call("acme", prompt_chars=10, max_tokens=10).budget == "low"
    gateway.after_call(check, tokens=150, usd=Decimal("0.01"))
    assert gateway.before_call("acme", prompt_chars=10, max_tokens=10).budget == "exhausted"
    spend = gateway.budgets.spend("acme", "day")
    assert (spend.tokens, spend.usd) == (1000, Decimal("0.02"))
    assert gateway.budgets.spend("acme", "month").tokens == 0  # only the budget's period is counted
    clock.advance(16 * 3600)  # the next day: a new period
    assert gateway.before_call("acme", prompt_chars=10, max_tokens=10).budget == "ok"


def test_an_exhausted_reject_budget_answers_insufficient_quota(
    counters: UsageCounters, clock: ManualClock
) -> None:
    budget = Budget(period="month", usd=Decimal("1.50"), on_exhausted="reject")
    QuotaSettingsStore(counters).set_budget("acme", budget, actor="test")
    gateway = quotas(counters, clock, settings_ttl_s=0)
    check = gateway.before_call("acme", prompt_chars=10, max_tokens=10)
    gateway.after_call(check, tokens=10, usd=Decimal("1.50"))
    with pytest.raises(BudgetExhausted) as refused:
        gateway.before_call("acme", prompt_chars=10, max_tokens=10)
    assert (refused.value.status, refused.value.code) == (429, "insufficient_quota")
    assert "monthly budget is exhausted; it resets at 2026-12-01T00:00:00Z" in refused.value.message
    assert gateway.before_call("globex", prompt_chars=10, max_tokens=10).budget == "ok"


def test_settings_are_reused_for_their_ttl_then_read_again(
    counters: UsageCounters, clock: ManualClock
) -> None:
    store = QuotaSettingsStore(counters)
    gateway = quotas(counters, clock, settings_ttl_s=5)
    gateway.before_call("acme", prompt_chars=4, max_tokens=1)  # no limits yet, cached
    store.set_limits("acme", TenantLimits(rpm=1), actor="test")
    gateway.before_call("acme", prompt_chars=4, max_tokens=1)
    gateway.before_call("acme", prompt_chars=4, max_tokens=1)  # within the TTL: still unlimited
    clock.advance(5)
    gateway.before_call("acme", prompt_chars=4, max_tokens=1)
    with pytest.raises(RateLimitExceeded):
        gateway.before_call("acme", prompt_chars=4, max_tokens=1)


def test_settings_store_round_trips(counters: UsageCounters) -> None:
    store = QuotaSettingsStore(counters)
    assert store.get("acme").limits == TenantLimits() and store.get("acme").budget is None
    store.set_limits("acme", TenantLimits(rpm=5, tpm=9000), actor="cli:me")
    budget = Budget(period="day", tokens=10, usd=Decimal("0.75"), on_exhausted="reject", low_at=0.65)
    store.set_budget("acme", budget, actor="cli:me")
    assert store.get("acme").limits == TenantLimits(rpm=5, tpm=9000)
    assert store.get("acme").budget == budget
    store.set_limits("acme", TenantLimits(tpm=1), actor="cli:me")  # a set replaces: rpm is gone
    assert store.get("acme").limits == TenantLimits(tpm=1)


def test_a_request_larger_than_the_tpm_itself_is_told_what_would_help(
    counters: UsageCounters, clock: ManualClock
) -> None:
    limiter = RateLimiter(counters, clock=clock.utcnow)
    with pytest.raises(RateLimitExceeded) as refused:
        limiter.admit("acme", TenantLimits(tpm=1000), 1001)
    assert refused.value.code == "rate_limit_exceeded"
    assert "may use 1001 tokens" in refused.value.message and "lower max_tokens" in refused.value.message
    assert limiter.current("acme").rpm == 0  # nothing counted


def test_no_budget_no_spend_write(counters: UsageCounters, clock: ManualClock) -> None:
    gateway = quotas(counters, clock)
    check = gateway.before_call("acme", prompt_chars=4, max_tokens=1)
    gateway.after_call(check, tokens=50, usd=Decimal(1))
    assert gateway.budgets.spend("acme", "day").tokens == 0
    assert gateway.budgets.spend("acme", "month").tokens == 0


def test_capacity_is_reconciled_with_the_real_usage(counters: UsageCounters, clock: ManualClock) -> None:
    capacity = CapacityCounters(counters, clock=clock.utcnow)
    taken = capacity.take("claude", 900, rpm=10, tpm=1000)
    assert taken is not None
    assert not capacity.try_take("claude", 200, rpm=10, tpm=1000)
    capacity.reconcile(taken, 100)  # 800 back
    assert capacity.try_take("claude", 900, rpm=10, tpm=1000)
    unlimited = capacity.take("claude", 5, rpm=None, tpm=None)
    assert unlimited is not None
    capacity.reconcile(unlimited, 10**6)  # nothing was counted: nothing to correct
    assert not capacity.try_take("claude", 1, rpm=10, tpm=1000)


def test_capacity_saturates_per_option_and_minute(counters: UsageCounters, clock: ManualClock) -> None:
    capacity = CapacityCounters(counters, clock=clock.utcnow)
    assert capacity.try_take("claude", 500, rpm=2, tpm=1000)
    assert not capacity.try_take("claude", 600, rpm=2, tpm=1000)  # tpm
    assert capacity.try_take("claude", 500, rpm=2, tpm=1000)
    assert not capacity.try_take("claude", 0, rpm=2, tpm=1000)  # rpm
    assert capacity.try_take("nova", 500, rpm=2, tpm=1000)  # another option, its own counter
    assert capacity.try_take("claude", 10**9, rpm=None, tpm=None)  # no capacity: never saturated
    clock.advance(15)
    assert capacity.try_take("claude", 1000, rpm=2, tpm=1000)
    with pytest.raises(ValueError, match="capacity rpm must be a positive whole number"):
        capacity.try_take("claude", 1, rpm=0, tpm=None)


def test_the_usage_table_failing_admits_the_request(clock: ManualClock) -> None:
    class Broken(InMemoryUsageCounters):
        def read(self, pk: str, sks: Any) -> dict[str, dict[str, Any]]:
            raise ConnectionError("throttled")

        def add(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("throttled")

    gateway = quotas(Broken(), clock)
    check = gateway.before_call("acme", prompt_chars=4, max_tokens=1)
    assert check.budget == "ok" and check.reservation is None
    gateway.after_call(check, tokens=5, usd=Decimal(1))  # logged, not raised


def test_under_threads_the_window_ends_at_the_sum_of_the_real_usage(
    counters: UsageCounters, clock: ManualClock
) -> None:
    """Reserve, call, reconcile from many threads: the tpm counter is exact, no update lost."""
    QuotaSettingsStore(counters).set_limits("acme", TenantLimits(rpm=10_000, tpm=10**9), actor="test")
    gateway = quotas(counters, clock)
    barrier = threading.Barrier(6)

    def caller(seed: int) -> int:
        barrier.wait()
        used = 0
        for i in range(8):
            check = gateway.before_call("acme", prompt_chars=400 + seed, max_tokens=50 * i)
            real = (seed * 31 + i * 17) % 120  # shorter or longer than the estimate
            gateway.after_call(check, tokens=real, usd=Decimal(0))
            used += real
        return used

    with ThreadPoolExecutor(max_workers=6) as pool:
        total = sum(pool.map(caller, range(6)))
    usage = gateway.limiter.current("acme")
    assert (usage.rpm, usage.tpm) == (48, total)


def test_expired_settings_in_the_stale_window_are_used_while_one_background_read_refreshes_them(
    counters: UsageCounters, clock: ManualClock
) -> None:
    threads = HeldThreads()
    gateway = quotas(counters, clock, settings_ttl_s=5, settings_stale_s=10, start_thread=threads)
    assert gateway.before_call("acme", prompt_chars=40, max_tokens=10).reservation is None  # no limits
    QuotaSettingsStore(counters).set_limits("acme", TenantLimits(tpm=1000), actor="test")

    clock.advance(6)  # past the 5 s cache, inside the window: the old settings, at once
    assert gateway.before_call("acme", prompt_chars=40, max_tokens=10).reservation is None
    assert gateway.before_call("acme", prompt_chars=40, max_tokens=10).reservation is None
    assert len(threads.pending) == 1  # one refresh for the tenant, not one per request

    threads.run_all()
    assert gateway.before_call("acme", prompt_chars=40, max_tokens=10).reservation is not None


def test_past_the_stale_window_the_settings_are_read_on_the_path(
    counters: UsageCounters, clock: ManualClock
) -> None:
    threads = HeldThreads()
    gateway = quotas(counters, clock, settings_ttl_s=5, settings_stale_s=10, start_thread=threads)
    gateway.before_call("acme", prompt_chars=40, max_tokens=10)
    QuotaSettingsStore(counters).set_limits("acme", TenantLimits(tpm=1000), actor="test")
    clock.advance(15.5)
    assert gateway.before_call("acme", prompt_chars=40, max_tokens=10).reservation is not None
    assert threads.pending == []


def test_without_a_stale_window_expired_settings_are_read_on_the_path(
    counters: UsageCounters, clock: ManualClock
) -> None:
    threads = HeldThreads()
    gateway = quotas(counters, clock, settings_ttl_s=5, start_thread=threads)
    gateway.before_call("acme", prompt_chars=40, max_tokens=10)
    QuotaSettingsStore(counters).set_limits("acme", TenantLimits(tpm=1000), actor="test")
    clock.advance(6)
    assert gateway.before_call("acme", prompt_chars=40, max_tokens=10).reservation is not None
    assert threads.pending == []
