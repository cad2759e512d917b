"""Limits and budgets as values: what an operator may set, checked once, and the arithmetic on time.

No AWS here. The windows are fixed calendar windows in UTC (a minute for rpm/tpm and capacity, a
day or a month for budgets): every Lambda instance derives the same window label from its clock,
so they all count into the same item without agreeing on anything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, cast, get_args

from switchboard.keys import validate_tenant

__all__ = [
    "BUDGET_STATUSES",
    "CHARS_PER_TOKEN",
    "DEFAULT_COMPLETION_RESERVE",
    "DEFAULT_LOW_AT",
    "MAX_LIMIT",
    "ON_EXHAUSTED",
    "PERIODS",
    "Budget",
    "BudgetStatus",
    "OnExhausted",
    "Period",
    "QuotaSettingError",
    "Spend",
    "TenantLimits",
    "budget_status",
    "check_tenant",
    "estimate_tokens",
    "minute_label",
    "parse_usd",
    "period_end",
    "period_label",
    "seconds_left_in_minute",
    "share",
    "whole_number",
]

Period = Literal["day", "month"]
OnExhausted = Literal["route", "reject"]
BudgetStatus = Literal["ok", "low", "exhausted"]
PERIODS: Final[tuple[Period, ...]] = get_args(Period)
ON_EXHAUSTED: Final[tuple[OnExhausted, ...]] = get_args(OnExhausted)
BUDGET_STATUSES: Final[tuple[BudgetStatus, ...]] = get_args(BudgetStatus)

DEFAULT_LOW_AT: Final = 0.8
MAX_LIMIT: Final = 10**12
"""Far above any real quota; bounds what a typo (an extra six zeros) can set."""
MAX_USD: Final = Decimal("1000000000")
CHARS_PER_TOKEN: Final = 4
"""The usual rule of thumb for English text with BPE tokenizers; the reservation is reconciled anyway."""
DEFAULT_COMPLETION_RESERVE: Final = 1024
"""Tokens reserved for the answer when the request sets no ``max_tokens``."""


class QuotaSettingError(ValueError):
    """A limit or budget an operator tried to set is not valid; the message says which knob and why."""


def whole_number(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    """A count between 1 and :data:`MAX_LIMIT` (``None`` passes when allowed); ``name`` is in the error."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise QuotaSettingError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise QuotaSettingError(f"{name} must be a whole number, got {value}")
        value = int(value)
    if not 1 <= value <= MAX_LIMIT:
        raise QuotaSettingError(f"{name} must be between 1 and {MAX_LIMIT}, got {value}")
    return value


def parse_usd(name: str, value: Any) -> Decimal | None:
    """A positive amount of US dollars with at most 6 decimals, from a str, int or Decimal."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise QuotaSettingError(f"{name} must be an amount in USD, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        message = f"{name} must be an amount in USD such as 25 or 12.50, got {value!r}"
        raise QuotaSettingError(message) from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_USD:
        raise QuotaSettingError(f"{name} must be more than 0 and at most {MAX_USD} USD, got {value}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise QuotaSettingError(f"{name} has more than 6 decimals: {value}")
    return amount


def share(name: str, value: Any) -> float:
    """A share above 0 and at most 1 (``low_at``); ``name`` is in the error."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise QuotaSettingError(f"{name} must be a number between 0 and 1, got {value!r}")
    if not (math.isfinite(float(value)) and 0 < float(value) <= 1):
        raise QuotaSettingError(f"{name} must be a share above 0 and at most 1 (e.g. 0.8), got {value}")
    return float(value)


def check_tenant(tenant: Any) -> str:
    """The tenant name as API keys spell it (``switchboard.keys.validate_tenant``)."""
    try:
        return validate_tenant(tenant)
    except ValueError as exc:
        raise QuotaSettingError(str(exc)) from None


@dataclass(frozen=True)
class TenantLimits:
    """Requests and tokens a tenant may use per minute, across the whole fleet; ``None`` = no limit."""

    rpm: int | None = None
    tpm: int | None = None

    def __post_init__(self) -> None:
        whole_number("rpm", self.rpm)
        whole_number("tpm", self.tpm)

    @classmethod
    def parse(cls, data: Any) -> TenantLimits:
        if not isinstance(data, dict):
            raise QuotaSettingError(f"limits must be an object, got {type(data).__name__}")
        unknown = set(data) - {"rpm", "tpm"}
        if unknown:
            raise QuotaSettingError(f"unknown limit(s) {sorted(unknown)}: the limits are rpm and tpm")
        return cls(rpm=whole_number("rpm", data.get("rpm")), tpm=whole_number("tpm", data.get("tpm")))

    def to_dict(self) -> dict[str, int]:
        return {name: value for name, value in (("rpm", self.rpm), ("tpm", self.tpm)) if value is not None}


@dataclass(frozen=True)
class Budget:
    """What a tenant may spend per calendar ``period`` (UTC), in tokens and/or USD.

    ``low_at`` is the share of either amount past which the status is ``low``; ``on_exhausted``
    says what an exhausted budget does: ``route`` only tells the flags (``$budget``), ``reject``
    refuses the request with 429 ``insufficient_quota``.
    """

    period: Period
    tokens: int | None = None
    usd: Decimal | None = None
    on_exhausted: OnExhausted = "route"
    low_at: float = DEFAULT_LOW_AT

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise QuotaSettingError(f"period must be one of {', '.join(PERIODS)}, got {self.period!r}")
        if self.tokens is None and self.usd is None:
            raise QuotaSettingError("a budget needs tokens, usd or both")
        whole_number("tokens", self.tokens)
        if self.usd is not None:
            object.__setattr__(self, "usd", parse_usd("usd", self.usd))
        if self.on_exhausted not in ON_EXHAUSTED:
            raise QuotaSettingError(
                f"on_exhausted must be one of {', '.join(ON_EXHAUSTED)}, got {self.on_exhausted!r}"
            )
        share("low_at", self.low_at)
        object.__setattr__(self, "low_at", float(self.low_at))

    @classmethod
    def parse(cls, data: Any) -> Budget:
        if not isinstance(data, dict):
            raise QuotaSettingError(f"a budget must be an object, got {type(data).__name__}")
        unknown = set(data) - {"period", "tokens", "usd", "on_exhausted", "low_at"}
        if unknown:
            raise QuotaSettingError(
                f"unknown budget field(s) {sorted(unknown)}: "
                "a budget has period, tokens, usd, on_exhausted and low_at"
            )
        low_at = data.get("low_at", DEFAULT_LOW_AT)
        if isinstance(low_at, Decimal):
            low_at = float(low_at)
        return cls(
            period=cast(Period, data.get("period")),
            tokens=whole_number("tokens", data.get("tokens")),
            usd=parse_usd("usd", data.get("usd")),
            on_exhausted=cast(OnExhausted, data.get("on_exhausted", "route")),
            low_at=low_at,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"period": self.period}
        if self.tokens is not None:
            data["tokens"] = self.tokens
        if self.usd is not None:
            data["usd"] = str(self.usd)
        data["on_exhausted"] = self.on_exhausted
        data["low_at"] = self.low_at
        return data


@dataclass(frozen=True)
class Spend:
    """What a tenant has spent in one budget period so far."""

    tokens: int = 0
    usd: Decimal = Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "usd": str(self.usd)}


def budget_status(budget: Budget | None, spend: Spend) -> BudgetStatus:
    """``exhausted`` once either amount is used up, ``low`` past ``low_at`` of either, else ``ok``."""
    if budget is None:
        return "ok"
    shares: list[float] = []
    if budget.tokens is not None:
        shares.append(spend.tokens / budget.tokens)
    if budget.usd is not None:
        shares.append(float(spend.usd / budget.usd))
    used = max(shares)
    if used >= 1:
        return "exhausted"
    if used >= budget.low_at:
        return "low"
    return "ok"


def estimate_tokens(prompt_chars: int, max_tokens: int | None) -> int:
    """Tokens to reserve before a call: ``ceil(prompt_chars / 4)`` plus ``max_tokens`` (or 1024).

    Deliberately simple and pessimistic on the answer side: the reservation is reconciled with the
    provider's reported usage after the call, so an overestimate only holds tokens for one call.
    """
    if prompt_chars < 0:
        raise ValueError("prompt_chars cannot be negative")
    completion = DEFAULT_COMPLETION_RESERVE if max_tokens is None else max(0, max_tokens)
    return -(-prompt_chars // CHARS_PER_TOKEN) + completion


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return now.astimezone(UTC)


def minute_label(now: datetime) -> str:
    """``YYYY-MM-DDTHH:MM``: the fixed one-minute window ``now`` falls in."""
    return _utc(now).strftime("%Y-%m-%dT%H:%M")


def minute_end(now: datetime) -> datetime:
    return _utc(now).replace(second=0, microsecond=0) + timedelta(minutes=1)


def seconds_left_in_minute(now: datetime) -> int:
    """Whole seconds (at least 1) until the window ``now`` falls in ends: the ``Retry-After``."""
    return max(1, math.ceil((minute_end(now) - _utc(now)).total_seconds()))


def period_label(period: Period, now: datetime) -> str:
    """``day#YYYY-MM-DD`` or ``month#YYYY-MM``: the budget period ``now`` falls in."""
    now = _utc(now)
    return f"day#{now:%Y-%m-%d}" if period == "day" else f"month#{now:%Y-%m}"


def period_end(period: Period, now: datetime) -> datetime:
    now = _utc(now)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return start + timedelta(days=1)
    start = start.replace(day=1)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)
