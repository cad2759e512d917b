"""Metering (issue 15): what each answered request used and cost, per tenant, exactly.

One answered request (whole or streamed, degraded included) is one :class:`Usage`: the tokens the
provider reported, on behalf of a tenant, through a route, an option and an API key. :class:`Metering`
prices it from the option's list price (:class:`switchboard.options.model.Price`) and adds it to
the hour it happened in, per tenant and (route, option, key), through a :class:`UsageStore`: one
atomic increment per request (``UpdateItem ADD`` in :mod:`switchboard.usage_store`), so totals are
exact however many Lambda instances meter at once. Reads give a tenant's totals since a time,
grouped by route, option, key or hour (``switchboard usage``).

Metering fails open: recording never raises into the request path. A failure becomes the
:data:`~switchboard.contract.metrics.METERING_FAILED` event on the project's event sink
(:mod:`switchboard.events`) and the answer goes out unmetered.

Money is :class:`~decimal.Decimal` throughout: a price (a float, as every option number) becomes the
Decimal of its shortest repr, the digits the operator wrote (``0.06`` is ``Decimal("0.06")``, not
the binary float's 0.0599999…), and a million requests of ``0.00000006`` add up to exactly ``0.06``.
No boto3 here: the store is a Protocol, :class:`InMemoryUsageStore` its fake.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Protocol

from switchboard.contract import metrics as metric_names
from switchboard.events import EventSink
from switchboard.options.model import Price

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "NO_KEY",
    "GroupBy",
    "InMemoryUsageStore",
    "Metering",
    "Usage",
    "UsageGroup",
    "UsageStore",
    "UsageTotals",
    "cost_usd",
    "hour_of",
]

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS: Final = 400
"""How long an hour of usage is kept (DynamoDB TTL): a year and a month, for year-on-year bills."""
NO_KEY: Final = "-"
"""The key id of a request whose caller had none (a key created before key ids existed)."""
MILLION: Final = Decimal(1_000_000)
HOUR_FORMAT: Final = "%Y-%m-%dT%H"
"""An hour as stored: UTC, ISO 8601 to the hour, so that hours sort as strings (``2026-11-30T08``)."""


class GroupBy(StrEnum):
    """What ``switchboard usage --by`` groups a tenant's totals by."""

    ROUTE = "route"
    OPTION = "option"
    KEY = "key"
    HOUR = "hour"


def hour_of(at: datetime) -> str:
    """The UTC hour ``at`` falls in, as stored (naive datetimes are taken as UTC)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(HOUR_FORMAT)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def cost_usd(
    price: Price | None, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int
) -> Decimal:
    """What a request cost at list price, in USD, exactly (Decimal; 0 without a price).

    ``prompt_tokens`` counts every prompt token (as OpenAI's usage does), ``cached_tokens`` the part
    read from a prompt cache: those are priced ``cached_input`` (``input`` when the option has no
    cached price), the rest ``input``; completion tokens are priced ``output``.
    """
    if price is None:
        return Decimal(0)
    uncached = prompt_tokens - cached_tokens
    cached_price = price.cached_input if price.cached_input is not None else price.input
    total = (
        uncached * _decimal(price.input)
        + cached_tokens * _decimal(cached_price)
        + completion_tokens * _decimal(price.output)
    )
    return total / MILLION


@dataclass(frozen=True)
class Usage:
    """One answered request's usage, as the provider reported it (OpenAI's ``usage`` fields)."""

    tenant: str
    route: str
    option_id: str
    key_id: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    """Prompt tokens read from a prompt cache (part of ``prompt_tokens``)."""
    at: datetime | None = None
    """When the answer was given (None: now, by the metering clock)."""
    provider_called: bool = True
    """False for a degraded answer no provider produced for this request (the static text, an
    answer from the cache): its tokens are metered as the client saw them, at no cost."""

    def problems(self) -> list[str]:
        """Why this usage cannot be metered (an empty list when it can)."""
        found: list[str] = []
        for name in ("tenant", "route", "option_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                found.append(f"{name} must be a non-empty string")
        for name in ("prompt_tokens", "completion_tokens", "cached_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                found.append(f"{name} must be an integer ≥ 0")
        if not found and self.cached_tokens > self.prompt_tokens:
            found.append("cached_tokens cannot exceed prompt_tokens")
        return found


@dataclass(frozen=True)
class UsageGroup:
    """What one stored hour of usage is counted under, besides its tenant and hour."""

    route: str
    option_id: str
    key_id: str


@dataclass(frozen=True)
class UsageTotals:
    """Summed usage: what ``switchboard usage --json`` prints per group."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            requests=self.requests + other.requests,
            cost_usd=self.cost_usd + other.cost_usd,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the cost as a plain decimal string (``"0.0984"``), exact for any reader."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "requests": self.requests,
            "cost_usd": format(self.cost_usd.normalize(), "f"),
        }


@dataclass(frozen=True)
class UsageRecord:
    """One stored hour of one tenant's usage under one group (what a store reads back)."""

    tenant: str
    hour: str
    group: UsageGroup
    totals: UsageTotals


class UsageStore(Protocol):
    """Where metered hours live (DynamoDB: :class:`switchboard.usage_store.DynamoUsageStore`)."""

    def add(self, *, tenant: str, hour: str, group: UsageGroup, totals: UsageTotals, expires_at: int) -> None:
        """Add ``totals`` to the tenant's hour under ``group``, atomically (concurrent adds all count)."""

    def hours_since(self, *, tenant: str | None, since_hour: str) -> Iterable[UsageRecord]:
        """Every stored hour from ``since_hour`` on, of ``tenant`` (None: of every tenant)."""


class InMemoryUsageStore:
    """The fake :class:`UsageStore`: a dict under a lock (the lock makes ``add`` atomic, as ADD is)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: dict[tuple[str, str, UsageGroup], UsageTotals] = {}
        self.expiries: dict[tuple[str, str, UsageGroup], int] = {}

    def add(self, *, tenant: str, hour: str, group: UsageGroup, totals: UsageTotals, expires_at: int) -> None:
        key = (tenant, hour, group)
        with self._lock:
            self.items[key] = self.items.get(key, UsageTotals()) + totals
            self.expiries[key] = expires_at

    def hours_since(self, *, tenant: str | None, since_hour: str) -> Iterable[UsageRecord]:
        with self._lock:
            items = sorted(self.items.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        return [
            UsageRecord(tenant=t, hour=hour, group=group, totals=totals)
            for (t, hour, group), totals in items
            if (tenant is None or t == tenant) and hour >= since_hour
        ]


def _group_value(record: UsageRecord, by: GroupBy) -> str:
    if by is GroupBy.ROUTE:
        return record.group.route
    if by is GroupBy.OPTION:
        return record.group.option_id
    if by is GroupBy.KEY:
        return record.group.key_id
    return record.hour


class Metering:
    """Records answered requests' usage and reads it back; recording fails open.

    ``price_of(option_id)`` gives the option's list price (None: priced 0, tokens still counted);
    the caller passes its options catalogue's lookup, so metering reads no table of its own.
    """

    def __init__(
        self,
        store: UsageStore,
        *,
        price_of: Callable[[str], Price | None] = lambda _option_id: None,
        on_event: EventSink | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self._store = store
        self._price_of = price_of
        self._on_event = on_event
        self._clock = clock
        self.retention = timedelta(days=retention_days)

    def _emit(self, name: str, fields: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(name, fields)
        except Exception:  # an observability hook must never break the request path
            logger.exception("metering event hook failed", extra={"event_name": name})

    def cost_of(self, usage: Usage) -> Decimal:
        """What ``usage`` costs at its option's list price: 0 when no provider was called (a static
        or cached answer) or the option has no price. Raises when the price cannot be read."""
        if not usage.provider_called:
            return Decimal(0)
        return cost_usd(
            self._price_of(usage.option_id),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
        )

    def record(self, usage: Usage) -> bool:
        """Meter one answered request; True when it was recorded, False (and an event) when not.

        Never raises: a request that was answered stays answered whatever happens here.
        """
        try:
            problems = usage.problems()
            if problems:
                self._emit(
                    metric_names.METERING_FAILED,
                    {"tenant": str(usage.tenant), "reason": "invalid usage", "problems": problems},
                )
                return False
            at = usage.at or self._clock()
            hour = hour_of(at)
            hour_start = datetime.strptime(hour, HOUR_FORMAT).replace(tzinfo=UTC)
            totals = UsageTotals(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                requests=1,
                cost_usd=self.cost_of(usage),
            )
            self._store.add(
                tenant=usage.tenant,
                hour=hour,
                group=UsageGroup(route=usage.route, option_id=usage.option_id, key_id=usage.key_id or NO_KEY),
                totals=totals,
                expires_at=int((hour_start + timedelta(hours=1) + self.retention).timestamp()),
            )
            return True
        except Exception as exc:  # fail open: the answer goes out unmetered, the event says so
            reason = _error_code(exc) or type(exc).__name__
            logger.warning(
                "metering failed for tenant %s (%s): the answer goes out unmetered",
                usage.tenant,
                reason,
                extra={"tenant": usage.tenant, "option_id": usage.option_id, "reason": reason},
            )
            self._emit(
                metric_names.METERING_FAILED,
                {"tenant": str(usage.tenant), "option_id": str(usage.option_id), "reason": reason},
            )
            return False

    def totals(
        self, *, tenant: str | None, since: datetime, by: GroupBy | None = None
    ) -> dict[tuple[str, str], UsageTotals]:
        """Totals from the hour ``since`` falls in, per (tenant, group value); the group value is
        ``""`` when ``by`` is None (one total per tenant). Unlike :meth:`record`, this raises:
        a report that silently showed nothing would be wrong, not degraded."""
        found: dict[tuple[str, str], UsageTotals] = {}
        for record in self._store.hours_since(tenant=tenant, since_hour=hour_of(since)):
            key = (record.tenant, _group_value(record, by) if by is not None else "")
            found[key] = found.get(key, UsageTotals()) + record.totals
        return dict(sorted(found.items()))


def _error_code(exc: BaseException) -> str:
    response: Mapping[str, Any] = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")
