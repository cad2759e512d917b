"""Limits and budgets as values: every knob refused with a message that names it; windows in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.quotas.model import (
    Budget,
    QuotaSettingError,
    Spend,
    TenantLimits,
    budget_status,
    check_tenant,
    estimate_tokens,
    minute_label,
    period_end,
    period_label,
    seconds_left_in_minute,
)


def test_limits_parse_and_round_trip() -> None:
    limits = TenantLimits.parse({"rpm": 60, "tpm": Decimal(100000)})
    assert limits == TenantLimits(rpm=60, tpm=100_000)
    assert limits.to_dict() == {"rpm": 60, "tpm": 100_000}
    assert TenantLimits.parse({}).to_dict() == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rpm": 0}, "rpm must be between 1 and"),
        ({"tpm": -5}, "tpm must be between 1 and"),
        ({"rpm": 1.5}, "rpm must be a whole number"),
        ({"rpm": True}, "rpm must be a whole number"),
        ({"rpm": "10"}, "rpm must be a whole number"),
        ({"tpm": Decimal("2.5")}, "tpm must be a whole number"),
        ({"rpm": 10**13}, "rpm must be between 1 and"),
        ({"rqm": 5}, "unknown limit"),
    ],
)
def test_limits_refuse_bad_values_by_name(data: dict[str, Any], message: str) -> None:
    with pytest.raises(QuotaSettingError, match=message):
        TenantLimits.parse(data)


def test_budget_defaults_and_round_trip() -> None:
    budget = Budget.parse({"period": "month", "usd": "25.50"})
    assert budget == Budget(period="month", usd=Decimal("25.50"), on_exhausted="route", low_at=0.8)
    assert budget.to_dict() == {"period": "month", "usd": "25.50", "on_exhausted": "route", "low_at": 0.8}
    assert Budget.parse(budget.to_dict()) == budget
    both = Budget(period="day", tokens=1000, usd=Decimal(2), on_exhausted="reject", low_at=0.5)
    assert Budget.parse(both.to_dict()) == both


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"period": "week", "tokens": 5}, "period must be one of day, month"),
        ({"period": "day"}, "needs tokens, usd or both"),
        ({"period": "day", "tokens": 0}, "tokens must be between 1"),
        ({"period": "day", "usd": "0"}, "usd must be more than 0"),
        ({"period": "day", "usd": "-3"}, "usd must be more than 0"),
        ({"period": "day", "usd": "ten"}, "usd must be an amount in USD"),
        ({"period": "day", "usd": "NaN"}, "usd must be more than 0"),
        ({"period": "day", "usd": "0.0000001"}, "more than 6 decimals"),
        ({"period": "day", "usd": 1.5}, "usd must be an amount"),
        ({"period": "day", "tokens": 5, "on_exhausted": "drop"}, "on_exhausted must be one of route, reject"),
        ({"period": "day", "tokens": 5, "low_at": 0}, "low_at must be a share"),
        ({"period": "day", "tokens": 5, "low_at": 1.2}, "low_at must be a share"),
        ({"period": "day", "tokens": 5, "low_at": float("nan")}, "low_at must be a share"),
        ({"period": "day", "tokens": 5, "low_at": "0.8"}, "low_at must be a number"),
        ({"period": "day", "tokens": 5, "currency": "eur"}, "unknown budget field"),
    ],
)
def test_budget_refuses_bad_values_by_name(data: dict[str, Any], message: str) -> None:
    with pytest.raises(QuotaSettingError, match=message):
        Budget.parse(data)


def test_tenant_names_follow_the_api_keys_rules() -> None:
    assert check_tenant("acme-1") == "acme-1"
    for bad in ("", "Acme", "a b", "x" * 65, None):
        with pytest.raises(QuotaSettingError, match="invalid tenant"):
            check_tenant(bad)


def test_budget_status_takes_the_most_used_amount() -> None:
    budget = Budget(period="day", tokens=1000, usd=Decimal(10))
    assert budget_status(None, Spend(10**9, Decimal(10**9))) == "ok"
    assert budget_status(budget, Spend()) == "ok"
    assert budget_status(budget, Spend(799, Decimal("7.99"))) == "ok"
    assert budget_status(budget, Spend(800, Decimal(0))) == "low"
    assert budget_status(budget, Spend(0, Decimal(8))) == "low"
    assert budget_status(budget, Spend(1000, Decimal(0))) == "exhausted"
    assert budget_status(budget, Spend(10, Decimal("10.000001"))) == "exhausted"
    assert budget_status(Budget(period="day", tokens=100, low_at=1), Spend(99)) == "ok"


@given(
    tokens=st.integers(1, 10**9),
    spent=st.integers(0, 2 * 10**9),
    low_at=st.floats(0.01, 1),
)
def test_budget_status_is_monotonic_in_spend(tokens: int, spent: int, low_at: float) -> None:
    budget = Budget(period="month", tokens=tokens, low_at=low_at)
    order = ["ok", "low", "exhausted"]
    assert order.index(budget_status(budget, Spend(spent))) <= order.index(
        budget_status(budget, Spend(spent + 1))
    )
    assert (budget_status(budget, Spend(spent)) == "exhausted") == (spent >= tokens)


def test_estimate_is_characters_over_four_plus_the_answer() -> None:
    assert estimate_tokens(0, 0) == 0
    assert estimate_tokens(1, 0) == 1
    assert estimate_tokens(400, 100) == 200
    assert estimate_tokens(401, None) == 101 + 1024
    with pytest.raises(ValueError, match="negative"):
        estimate_tokens(-1, 5)


def test_windows_are_utc_calendar_windows() -> None:
    moment = datetime(2026, 12, 31, 23, 59, 20, 500_000, tzinfo=UTC)
    assert minute_label(moment) == "2026-12-31T23:59"
    assert seconds_left_in_minute(moment) == 40  # 39.5 s rounded up: never retry early
    assert seconds_left_in_minute(moment.replace(second=0, microsecond=0)) == 60
    assert seconds_left_in_minute(moment.replace(second=59, microsecond=999_999)) == 1
    assert period_label("day", moment) == "day#2026-12-31"
    assert period_label("month", moment) == "month#2026-12"
    assert period_end("day", moment) == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_end("month", moment) == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_end("month", datetime(2026, 2, 10, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)
    # another offset, same instant, same window
    tokyo = moment.astimezone(timezone(timedelta(hours=9)))
    assert minute_label(tokyo) == "2026-12-31T23:59"
    assert period_label("day", tokyo) == "day#2026-12-31"
    with pytest.raises(ValueError, match="naive"):
        minute_label(datetime(2026, 1, 1))
