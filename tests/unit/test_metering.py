"""Metering's use case (issue 15): pricing in exact decimals, hourly groups per tenant, fail-open.

Given answered requests' usage and an in-memory store (atomic, as DynamoDB's ``ADD``), metering
records tokens, one request and the list-price cost per tenant, hour and (route, option, key);
reads group a tenant's totals; and no failure of the store, the price lookup or the event hook
ever reaches the caller: it becomes one ``MeteringFailed`` event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.contract import metrics as metric_names
from switchboard.events import RecordingEventSink
from switchboard.metering import (
    NO_KEY,
    GroupBy,
    InMemoryUsageStore,
    Metering,
    Usage,
    UsageGroup,
    UsageTotals,
    cost_usd,
    hour_of,
)
from switchboard.options.model import Price

NOW = datetime(2026, 11, 30, 8, 41, 7, tzinfo=UTC)
SONNET = Price(input=3, output=15, cached_input=0.3)
NOVA_MICRO = Price(input=0.035, output=0.14)
PRICES = {"claude-sonnet-us": SONNET, "nova-micro-us": NOVA_MICRO}


def usage(**overrides: Any) -> Usage:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "route": "chat",
        "option_id": "claude-sonnet-us",
        "key_id": "k1",
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "cached_tokens": 0,
        **overrides,
    }
    return Usage(**fields)


def metering(store: Any = None, events: RecordingEventSink | None = None, **kwargs: Any) -> Metering:
    return Metering(
        store if store is not None else InMemoryUsageStore(),
        price_of=PRICES.get,
        on_event=events,
        clock=lambda: NOW,
        **kwargs,
    )


# --- cost -------------------------------------------------------------------------------------------


def test_cost_prices_uncached_cached_and_completion_tokens_at_their_list_prices() -> None:
    # 900 uncached at $3 + 100 cached at $0.30 + 200 out at $15, per million tokens
    assert cost_usd(SONNET, prompt_tokens=1000, completion_tokens=200, cached_tokens=100) == Decimal(
        "0.00573"
    )


def test_without_a_cached_price_cached_tokens_cost_the_input_price() -> None:
    assert cost_usd(NOVA_MICRO, prompt_tokens=1000, completion_tokens=0, cached_tokens=400) == Decimal(
        "0.000035"
    )


def test_without_a_price_a_request_costs_nothing() -> None:
    assert cost_usd(None, prompt_tokens=10**9, completion_tokens=10**9, cached_tokens=0) == 0


def test_prices_are_taken_as_written_not_as_binary_floats() -> None:
    # 0.06 as a float is 0.059999999999999997779553950749686919152736663818359375
    price = Price(input=0.06, output=0.24)
    one = cost_usd(price, prompt_tokens=1, completion_tokens=0, cached_tokens=0)
    assert one == Decimal("0.00000006")
    assert sum((one for _ in range(1_000_000)), Decimal(0)) == Decimal("0.06")


@given(
    tokens=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=50),
    input_price=st.decimals(0, 1000, places=4),
    output_price=st.decimals(0, 1000, places=4),
)
def test_the_cost_of_many_requests_is_the_cost_of_their_summed_tokens(
    tokens: list[tuple[int, int]], input_price: Decimal, output_price: Decimal
) -> None:
    price = Price(input=float(input_price), output=float(output_price))
    each = sum(
        (cost_usd(price, prompt_tokens=p, completion_tokens=c, cached_tokens=0) for p, c in tokens),
        Decimal(0),
    )
    total = cost_usd(
        price,
        prompt_tokens=sum(p for p, _ in tokens),
        completion_tokens=sum(c for _, c in tokens),
        cached_tokens=0,
    )
    assert each == total


# --- recording --------------------------------------------------------------------------------------


def test_a_request_is_added_to_its_tenants_hour_under_its_route_option_and_key() -> None:
    store = InMemoryUsageStore()
    meter = metering(store)

    assert meter.record(usage(cached_tokens=100))
    assert meter.record(usage(prompt_tokens=10, completion_tokens=5, cached_tokens=0))

    group = UsageGroup(route="chat", option_id="claude-sonnet-us", key_id="k1")
    assert store.items == {
        ("acme", "2026-11-30T08", group): UsageTotals(
            prompt_tokens=1010,
            completion_tokens=205,
            cached_tokens=100,
            requests=2,
            cost_usd=Decimal("0.00573") + Decimal("0.000105"),
        )
    }


def test_hours_groups_and_tenants_are_kept_apart() -> None:
    store = InMemoryUsageStore()
    meter = metering(store)
    meter.record(usage())
    meter.record(usage(at=NOW + timedelta(hours=1)))
    meter.record(usage(route="summarize"))
    meter.record(usage(option_id="nova-micro-us"))
    meter.record(usage(key_id=None))
    meter.record(usage(tenant="globex"))

    assert len(store.items) == 6
    assert ("acme", "2026-11-30T08", UsageGroup("chat", "claude-sonnet-us", NO_KEY)) in store.items
    assert {tenant for tenant, _, _ in store.items} == {"acme", "globex"}


def test_an_hour_expires_the_retention_after_it_ends() -> None:
    store = InMemoryUsageStore()
    metering(store, retention_days=400).record(usage())
    (expires_at,) = store.expiries.values()
    assert datetime.fromtimestamp(expires_at, UTC) == datetime(2026, 11, 30, 9, tzinfo=UTC) + timedelta(
        days=400
    )


def test_hour_of_is_the_utc_hour_and_takes_naive_times_as_utc() -> None:
    assert hour_of(datetime(2026, 1, 2, 23, 59, tzinfo=UTC)) == "2026-01-02T23"
    assert hour_of(datetime(2026, 1, 2, 23, 59)) == "2026-01-02T23"
    est = datetime(2026, 1, 2, 20, 0, tzinfo=UTC).astimezone(ZoneInfo("America/New_York"))
    assert hour_of(est) == "2026-01-02T20"


# --- fail-open ------------------------------------------------------------------------------------


class BrokenStore(InMemoryUsageStore):
    def add(self, **kwargs: Any) -> None:
        error = RuntimeError("boom")
        error.response = {"Error": {"Code": "ProvisionedThroughputExceededException"}}  # type: ignore[attr-defined]
        raise error


def test_a_store_failure_never_raises_and_is_one_metering_failed_event() -> None:
    events = RecordingEventSink()

    assert metering(BrokenStore(), events).record(usage()) is False

    assert events.names() == [metric_names.METERING_FAILED]
    assert events.fields_of(metric_names.METERING_FAILED)[0] == {
        "tenant": "acme",
        "option_id": "claude-sonnet-us",
        "reason": "ProvisionedThroughputExceededException",
    }


def test_a_failing_price_lookup_or_event_hook_never_raises() -> None:
    def no_catalogue(option_id: str) -> Price | None:
        raise ConnectionError("options table unreachable")

    def broken_hook(name: str, fields: dict[str, Any], /) -> None:
        raise RuntimeError("metrics down")

    store = InMemoryUsageStore()
    meter = Metering(store, price_of=no_catalogue, on_event=broken_hook, clock=lambda: NOW)
    assert meter.record(usage()) is False
    assert store.items == {}


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"tenant": ""}, "tenant must be a non-empty string"),
        ({"prompt_tokens": -1}, "prompt_tokens must be an integer ≥ 0"),
        ({"completion_tokens": True}, "completion_tokens must be an integer ≥ 0"),
        ({"cached_tokens": 1.5}, "cached_tokens must be an integer ≥ 0"),
        ({"cached_tokens": 2000}, "cached_tokens cannot exceed prompt_tokens"),
    ],
)
def test_usage_that_cannot_be_metered_is_an_event_not_a_record(
    overrides: dict[str, Any], problem: str
) -> None:
    store, events = InMemoryUsageStore(), RecordingEventSink()
    assert metering(store, events).record(usage(**overrides)) is False
    assert store.items == {}
    (fields,) = events.fields_of(metric_names.METERING_FAILED)
    assert fields["problems"] == [problem]


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValueError, match="retention_days"):
        Metering(InMemoryUsageStore(), retention_days=0)


# --- reading ----------------------------------------------------------------------------------------


@pytest.fixture
def recorded() -> Metering:
    meter = metering()
    meter.record(usage(at=NOW - timedelta(hours=3)))  # before `since`
    meter.record(usage())
    meter.record(usage(route="summarize", option_id="nova-micro-us", key_id="k2"))
    meter.record(usage(at=NOW + timedelta(hours=1)))
    meter.record(usage(tenant="globex", prompt_tokens=7, completion_tokens=0))
    return meter


def test_totals_per_tenant_since_a_time_count_whole_hours_from_the_one_it_falls_in(
    recorded: Metering,
) -> None:
    totals = recorded.totals(tenant="acme", since=NOW.replace(minute=59))
    assert list(totals) == [("acme", "")]
    assert totals["acme", ""].requests == 3
    assert totals["acme", ""].prompt_tokens == 3000

    everyone = recorded.totals(tenant=None, since=NOW)
    assert set(everyone) == {("acme", ""), ("globex", "")}
    assert everyone["globex", ""] == UsageTotals(prompt_tokens=7, requests=1, cost_usd=Decimal("0.000021"))


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (GroupBy.ROUTE, {"chat": 2, "summarize": 1}),
        (GroupBy.OPTION, {"claude-sonnet-us": 2, "nova-micro-us": 1}),
        (GroupBy.KEY, {"k1": 2, "k2": 1}),
        (GroupBy.HOUR, {"2026-11-30T08": 2, "2026-11-30T09": 1}),
    ],
)
def test_totals_group_by_route_option_key_or_hour(
    recorded: Metering, by: GroupBy, expected: dict[str, int]
) -> None:
    totals = recorded.totals(tenant="acme", since=NOW, by=by)
    assert {value: t.requests for (_, value), t in totals.items()} == expected


def test_totals_print_the_cost_as_an_exact_decimal_string() -> None:
    assert UsageTotals(cost_usd=Decimal("0.098400")).to_dict()["cost_usd"] == "0.0984"
    assert UsageTotals(cost_usd=Decimal("1E+2")).to_dict()["cost_usd"] == "100"
    assert UsageTotals().to_dict() == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cached_tokens": 0,
        "requests": 0,
        "cost_usd": "0",
    }
