"""Use cases on the usage table: tenant limits (rpm/tpm), budgets, option capacity. No boto3 here.

Item layout in the usage table (``switchboard.contract.tables.USAGE_*``):

========================  ==================================  =====================================
``pk``                    ``sk``                              attributes
========================  ==================================  =====================================
``tenant#<tenant>``       ``limits``                          ``rpm``, ``tpm`` (N, absent = none)
``tenant#<tenant>``       ``budget``                          ``period``, ``tokens``, ``usd``,
                                                              ``on_exhausted``, ``low_at``
``tenant#<tenant>``       ``window#<YYYY-MM-DDTHH:MM>``       ``rpm``, ``tpm`` used in that minute
``tenant#<tenant>``       ``spend#day#<YYYY-MM-DD>``          ``tokens``, ``usd`` spent in the period
                          ``spend#month#<YYYY-MM>``
``option#<option>``       ``capacity#<option>#<minute>``      ``rpm``, ``tpm`` taken of the option
========================  ==================================  =====================================

A tenant's rpm and tpm of one minute are two attributes of one window item rather than two items,
so one conditional ``UpdateItem`` admits or refuses both (no transaction to conflict on a hot
item). Capacity is the option's, not a tenant's: it is partitioned by option. Windows and spend
carry a TTL (``expires_at``) so old ones go away by themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

from switchboard.background_refresh import SingleFlight, StartThread, daemon_thread
from switchboard.contract import errors as catalogue
from switchboard.contract.workflow import format_timestamp, timestamp_now
from switchboard.errors import ApiError
from switchboard.quotas.counters import UsageCounters
from switchboard.quotas.model import (
    PERIODS,
    Budget,
    BudgetStatus,
    Period,
    QuotaSettingError,
    Spend,
    TenantLimits,
    budget_status,
    check_tenant,
    estimate_tokens,
    minute_end,
    minute_label,
    period_end,
    period_label,
    seconds_left_in_minute,
)

__all__ = [
    "BudgetBook",
    "BudgetExhausted",
    "CapacityCounters",
    "CapacityTaken",
    "QuotaCheck",
    "QuotaSettings",
    "QuotaSettingsStore",
    "RateLimitExceeded",
    "RateLimiter",
    "Reservation",
    "TenantQuotas",
    "WindowUsage",
    "option_pk",
    "tenant_pk",
]

logger = logging.getLogger(__name__)

LIMITS_SK: Final = "limits"
BUDGET_SK: Final = "budget"
WINDOW_TTL: Final = timedelta(hours=1)
"""How long a finished minute window stays readable (for ``limits show`` and debugging)."""
SPEND_TTL: Final = timedelta(days=90)
"""How long a finished budget period's spend stays readable after the period ends."""
SETTINGS_TTL_S: Final = 5.0
"""How long one Lambda instance reuses a tenant's settings and spend before reading them again."""

MAX_CACHED_TENANTS: Final = 4096
"""Bounds one instance's settings cache (a tenant's entry is a few hundred bytes)."""

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, aware UTC (here rather than from ``switchboard.circuits``, whose package import pulls in
    the breaker and Powertools: the gateway imports this module on its cold start)."""
    return datetime.now(UTC)


LimitName = Literal["rpm", "tpm"]


def tenant_pk(tenant: str) -> str:
    return f"tenant#{tenant}"


def option_pk(option_id: str) -> str:
    return f"option#{option_id}"


def window_sk(now: datetime) -> str:
    return f"window#{minute_label(now)}"


def spend_sk(period: Period, now: datetime) -> str:
    return f"spend#{period_label(period, now)}"


def capacity_sk(option_id: str, now: datetime) -> str:
    return f"capacity#{option_id}#{minute_label(now)}"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class RateLimitExceeded(ApiError):
    """429 ``rate_limit_exceeded`` with ``Retry-After``: the seconds until the minute window ends."""

    spec = catalogue.RATE_LIMIT_EXCEEDED

    def __init__(
        self, limit: LimitName, allowed: int, retry_after_s: int, *, needed: int | None = None
    ) -> None:
        what = "requests" if limit == "rpm" else "tokens"
        if needed is not None:  # waiting cannot help: say what can
            message = (
                f"Request too large: it may use {needed} tokens (prompt and max_tokens), more than this "
                f"tenant's {allowed} tokens per minute (tpm). Send a shorter prompt or a lower max_tokens."
            )
        else:
            message = (
                f"Rate limit reached: this tenant may use {allowed} {what} per minute ({limit}). "
                f"Retry after {retry_after_s} s."
            )
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})
        self.limit = limit
        self.retry_after_s = retry_after_s


_ADJECTIVE: Final[dict[Period, str]] = {"day": "daily", "month": "monthly"}


class BudgetExhausted(ApiError):
    """429 ``insufficient_quota``: the tenant's budget is used up and set to ``reject``."""

    spec = catalogue.QUOTA_EXCEEDED

    def __init__(self, budget: Budget, resets_at: datetime) -> None:
        super().__init__(
            f"This tenant's {_ADJECTIVE[budget.period]} budget is exhausted; it resets at "
            f"{format_timestamp(resets_at)}."
        )
        self.resets_at = resets_at


@dataclass(frozen=True)
class QuotaSettings:
    """A tenant's limits and budget (``TenantLimits()`` and ``None`` when never set)."""

    limits: TenantLimits = field(default_factory=TenantLimits)
    budget: Budget | None = None


def _settings_from_items(items: dict[str, dict[str, Any]]) -> QuotaSettings:
    """Stored settings, parsed as strictly as when they were set (a bad item is ignored and logged)."""
    limits = TenantLimits()
    budget = None
    if (raw := items.get(LIMITS_SK)) is not None:
        try:
            limits = TenantLimits.parse({k: raw[k] for k in ("rpm", "tpm") if k in raw})
        except QuotaSettingError as exc:
            logger.error("ignoring unreadable limits item: %s", exc)
    if (raw := items.get(BUDGET_SK)) is not None:
        try:
            fields = ("period", "tokens", "usd", "on_exhausted", "low_at")
            budget = Budget.parse({k: raw[k] for k in fields if k in raw})
        except QuotaSettingError as exc:
            logger.error("ignoring unreadable budget item: %s", exc)
    return QuotaSettings(limits, budget)


def _spend_from_item(item: dict[str, Any] | None) -> Spend:
    if item is None:
        return Spend()
    return Spend(tokens=int(item.get("tokens") or 0), usd=Decimal(str(item.get("usd") or 0)))


class QuotaSettingsStore:
    """Read and write a tenant's ``limits`` and ``budget`` items (the CLI's side)."""

    def __init__(self, counters: UsageCounters) -> None:
        self._counters = counters

    def get(self, tenant: str) -> QuotaSettings:
        tenant = check_tenant(tenant)
        return _settings_from_items(self._counters.read(tenant_pk(tenant), [LIMITS_SK, BUDGET_SK]))

    def set_limits(self, tenant: str, limits: TenantLimits, *, actor: str) -> TenantLimits:
        tenant = check_tenant(tenant)
        record = {**limits.to_dict(), "updated_at": timestamp_now(), "updated_by": actor}
        self._counters.put(tenant_pk(tenant), LIMITS_SK, record)
        return limits

    def set_budget(self, tenant: str, budget: Budget, *, actor: str) -> Budget:
        tenant = check_tenant(tenant)
        record: dict[str, Any] = {**budget.to_dict(), "updated_at": timestamp_now(), "updated_by": actor}
        if budget.usd is not None:
            record["usd"] = budget.usd  # a number in DynamoDB, a string in JSON
        record["low_at"] = Decimal(str(budget.low_at))
        self._counters.put(tenant_pk(tenant), BUDGET_SK, record)
        return budget


@dataclass(frozen=True)
class Reservation:
    """Tokens held in one tenant's minute window until the real usage is known."""

    tenant: str
    window: str
    """The window item's sort key: reconciled in the window the tokens were reserved in."""
    tokens: int
    expires_at: int


@dataclass(frozen=True)
class WindowUsage:
    window: str
    rpm: int
    tpm: int
    retry_after_s: int


class RateLimiter:
    """Per-tenant rpm/tpm, fleet-wide: one conditional ``UpdateItem`` on the minute window per request."""

    def __init__(self, counters: UsageCounters, *, clock: Clock = utcnow) -> None:
        self._counters = counters
        self._clock = clock

    def admit(self, tenant: str, limits: TenantLimits, estimated_tokens: int) -> Reservation | None:
        """Count one request and reserve ``estimated_tokens``, or raise :class:`RateLimitExceeded`.

        ``None`` when the tenant has no limit: nothing is counted and no round trip is made.
        """
        if limits.rpm is None and limits.tpm is None:
            return None
        now = self._clock()
        if limits.tpm is not None and estimated_tokens > limits.tpm:
            raise RateLimitExceeded("tpm", limits.tpm, seconds_left_in_minute(now), needed=estimated_tokens)
        window = window_sk(now)
        expires_at = _epoch(minute_end(now) + WINDOW_TTL)
        bounds: dict[str, int] = limits.to_dict()
        refused = self._counters.take(
            tenant_pk(tenant), window, {"rpm": 1, "tpm": estimated_tokens}, bounds, expires_at=expires_at
        )
        if refused is not None:
            limit: LimitName = "tpm" if refused == "tpm" else "rpm"
            raise RateLimitExceeded(limit, bounds[limit], seconds_left_in_minute(now))
        return Reservation(tenant, window, estimated_tokens, expires_at)

    def reconcile(self, reservation: Reservation | None, actual_tokens: int) -> None:
        """Replace the estimate with the real usage: add what was missing, give back the rest.

        The difference goes to the window the tokens were reserved in, even if the call ended in
        the next minute: the counter it was checked against is the one that must be right.
        """
        if reservation is None:
            return
        difference = max(0, actual_tokens) - reservation.tokens
        pk = tenant_pk(reservation.tenant)
        if difference > 0:
            self._counters.add(pk, reservation.window, {"tpm": difference}, expires_at=reservation.expires_at)
        elif difference < 0:
            self._counters.give_back(pk, reservation.window, -difference, attribute="tpm")

    def current(self, tenant: str) -> WindowUsage:
        """What the tenant has used in the current minute (``limits show``)."""
        now = self._clock()
        window = window_sk(now)
        item = self._counters.read(tenant_pk(check_tenant(tenant)), [window]).get(window, {})
        return WindowUsage(
            minute_label(now),
            int(item.get("rpm") or 0),
            int(item.get("tpm") or 0),
            seconds_left_in_minute(now),
        )


class BudgetBook:
    """Spend per tenant and calendar period (atomic ``ADD``), and the budget status it gives."""

    def __init__(self, counters: UsageCounters, *, clock: Clock = utcnow) -> None:
        self._counters = counters
        self._clock = clock

    def spend(self, tenant: str, period: Period) -> Spend:
        sk = spend_sk(period, self._clock())
        return _spend_from_item(self._counters.read(tenant_pk(check_tenant(tenant)), [sk]).get(sk))

    def status(self, tenant: str, budget: Budget | None) -> BudgetStatus:
        if budget is None:
            return "ok"
        return budget_status(budget, self.spend(tenant, budget.period))

    def record(self, tenant: str, period: Period, *, tokens: int, usd: Decimal) -> None:
        """Add an answered request's tokens and cost to the tenant's spend in the current ``period``.

        One ``UpdateItem ADD``, only in the budget's period: a tenant without a budget costs no
        write here (its usage is metered elsewhere), and a budget whose period changes starts its
        new count when it is set.
        """
        if tokens <= 0 and usd <= 0:
            return
        now = self._clock()
        self._counters.add(
            tenant_pk(tenant),
            spend_sk(period, now),
            {"tokens": max(0, tokens), "usd": max(Decimal(0), usd)},
            expires_at=_epoch(period_end(period, now) + SPEND_TTL),
        )


@dataclass(frozen=True)
class CapacityTaken:
    """One request's share of an option's minute (``window`` empty: the option has no capacity)."""

    option_id: str
    window: str
    tokens: int
    expires_at: int


class CapacityCounters:
    """The share of a provider quota one option may use per minute, counted across the fleet."""

    def __init__(self, counters: UsageCounters, *, clock: Clock = utcnow) -> None:
        self._counters = counters
        self.clock = clock
        """Where the current minute comes from (public: tests pin a minute instead of racing one)."""

    def try_take(self, option_id: str, tokens: int, *, rpm: int | None, tpm: int | None) -> bool:
        return self.take(option_id, tokens, rpm=rpm, tpm=tpm) is not None

    def take(self, option_id: str, tokens: int, *, rpm: int | None, tpm: int | None) -> CapacityTaken | None:
        """Take one request and ``tokens`` of the option's current minute; False when saturated.

        A False is not a failure of the option: the caller skips it like an open circuit and
        records nothing against its circuit. Without a capacity nothing is counted. :meth:`take`
        is the same, returning what :meth:`reconcile` needs to correct ``tokens`` (an estimate)
        with the real usage.
        """
        limits = {name: value for name, value in (("rpm", rpm), ("tpm", tpm)) if value is not None}
        if not limits:
            return CapacityTaken(option_id, "", 0, 0)
        for name, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"capacity {name} must be a positive whole number, got {value!r}")
        now = self.clock()
        window, expires_at, tokens = (
            capacity_sk(option_id, now),
            _epoch(minute_end(now) + WINDOW_TTL),
            max(0, tokens),
        )
        refused = self._counters.take(
            option_pk(option_id), window, {"rpm": 1, "tpm": tokens}, limits, expires_at=expires_at
        )
        return CapacityTaken(option_id, window, tokens, expires_at) if refused is None else None

    def reconcile(self, taken: CapacityTaken, actual_tokens: int) -> None:
        """Correct the tokens taken from the option's minute with what the call really used."""
        if not taken.window:
            return
        difference = max(0, actual_tokens) - taken.tokens
        pk = option_pk(taken.option_id)
        if difference > 0:
            self._counters.add(pk, taken.window, {"tpm": difference}, expires_at=taken.expires_at)
        elif difference < 0:
            self._counters.give_back(pk, taken.window, -difference, attribute="tpm")


@dataclass(frozen=True)
class QuotaCheck:
    """What :meth:`TenantQuotas.before_call` found: the budget status for the flags' evaluation
    context (``Caller.context["budget"]``) and the tokens reserved, for :meth:`TenantQuotas.after_call`."""

    budget: BudgetStatus
    reservation: Reservation | None
    tenant: str


@dataclass
class _Cached:
    settings: QuotaSettings
    spend: dict[Period, Spend]
    period_labels: dict[Period, str]
    read_at: float


class TenantQuotas:
    """The gateway's one entry point: :meth:`before_call` and :meth:`after_call` around a request.

    Settings and spend are read with one ``BatchGetItem`` and reused for :data:`SETTINGS_TTL_S`
    per Lambda instance, so the steady request path makes one DynamoDB round trip before the call
    (the window's conditional ``UpdateItem``, only for a tenant with limits). The budget status can
    thus lag the true spend by a few seconds; the spend counters themselves are exact.

    DynamoDB unavailable: the request is admitted and the failure logged (fail open, as circuits
    are), so a throttled usage table never takes the gateway down.
    """

    def __init__(
        self,
        counters: UsageCounters,
        *,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        settings_ttl_s: float = SETTINGS_TTL_S,
        settings_stale_s: float = 0.0,
        start_thread: StartThread | None = None,
    ) -> None:
        """
        Args:
            settings_ttl_s: how long a tenant's settings and spend are reused without a read.
            settings_stale_s: how long past that they are still used while one background read per
                tenant refreshes them (stale-while-revalidate, :mod:`switchboard.background_refresh`);
                0 (the default): read on the path once expired. A new day or month is always read
                on the path (its spend starts at zero).
        """
        self._counters = counters
        self._clock = clock
        self._monotonic = monotonic
        self._ttl = settings_ttl_s
        self._stale = max(0.0, settings_stale_s)
        self._background = SingleFlight(start_thread or daemon_thread("quota-settings-refresh"))
        self.limiter = RateLimiter(counters, clock=clock)
        self.budgets = BudgetBook(counters, clock=clock)
        self._cache: dict[str, _Cached] = {}

    def _load(self, tenant: str) -> _Cached:
        now = self._clock()
        labels: dict[Period, str] = {period: spend_sk(period, now) for period in PERIODS}
        cached = self._cache.get(tenant)
        if cached is not None and cached.period_labels == labels:
            age = self._monotonic() - cached.read_at
            if age < self._ttl:
                return cached
            if age < self._ttl + self._stale:
                seen = cached
                self._background.start(tenant, lambda: self._refresh(tenant, labels, seen))
                return cached
        return self._read(tenant, labels)

    def _read(self, tenant: str, labels: dict[Period, str]) -> _Cached:
        cached = self._cached(self._read_items(tenant, labels), labels)
        if len(self._cache) >= MAX_CACHED_TENANTS:
            self._cache.clear()  # a bound, not an eviction policy: rereading costs one BatchGetItem
        self._cache[tenant] = cached
        return cached

    def _refresh(self, tenant: str, labels: dict[Period, str], seen: _Cached) -> None:
        """The background read; an unreadable table keeps ``seen`` until the stale window ends."""
        try:
            items = self._read_items(tenant, labels)
        except Exception:
            logger.exception("usage table unreadable: keeping this tenant's settings a while longer")
            return
        if self._cache.get(tenant) is seen:  # nothing newer landed meanwhile
            self._cache[tenant] = self._cached(items, labels)

    def _read_items(self, tenant: str, labels: dict[Period, str]) -> dict[str, Any]:
        """One ``BatchGetItem``: the tenant's limits, budget and the spend of each current period."""
        return self._counters.read(tenant_pk(tenant), [LIMITS_SK, BUDGET_SK, *labels.values()])

    def _cached(self, items: dict[str, Any], labels: dict[Period, str]) -> _Cached:
        return _Cached(
            settings=_settings_from_items(items),
            spend={period: _spend_from_item(items.get(sk)) for period, sk in labels.items()},
            period_labels=labels,
            read_at=self._monotonic(),
        )

    def before_call(self, tenant: str, *, prompt_chars: int, max_tokens: int | None) -> QuotaCheck:
        """The budget status, and the request counted against the tenant's limits.

        Raises :class:`BudgetExhausted` (429 ``insufficient_quota``) for an exhausted ``reject``
        budget, :class:`RateLimitExceeded` (429 ``rate_limit_exceeded`` + ``Retry-After``) over rpm
        or tpm. Tokens are reserved from :func:`~switchboard.quotas.model.estimate_tokens`.
        """
        try:
            cached = self._load(tenant)
        except Exception:
            logger.exception("usage table unreadable: admitting the request without quotas")
            return QuotaCheck("ok", None, tenant)
        budget = cached.settings.budget
        status = budget_status(budget, cached.spend[budget.period]) if budget is not None else "ok"
        if budget is not None and status == "exhausted" and budget.on_exhausted == "reject":
            raise BudgetExhausted(budget, period_end(budget.period, self._clock()))
        try:
            reservation = self.limiter.admit(
                tenant, cached.settings.limits, estimate_tokens(prompt_chars, max_tokens)
            )
        except RateLimitExceeded:
            raise
        except Exception:
            logger.exception("usage table unwritable: admitting the request without rate limits")
            reservation = None
        return QuotaCheck(status, reservation, tenant)

    def after_call(self, check: QuotaCheck, *, tokens: int, usd: Decimal) -> None:
        """The real usage of the answered request: reconcile the reservation, add the spend.

        Call it with 0 tokens when the call failed, to give the reservation back. The writes run
        one after the other here; :meth:`settlement` hands them out for a caller that runs them
        concurrently with its own (``switchboard.accounting``).
        """
        for write in self.settlement(check, tokens=tokens, usd=usd):
            write()

    def settlement(self, check: QuotaCheck, *, tokens: int, usd: Decimal) -> list[Callable[[], None]]:
        """The writes :meth:`after_call` makes, each fail-open, independent of the others.

        At most two ``UpdateItem``: the reservation reconciled (only when the tenant has limits and
        the estimate differs from ``tokens``) and the spend added (only when it has a budget and
        something was spent). This instance's cached spend follows a spend write that succeeded.
        """
        writes: list[Callable[[], None]] = []
        reservation = check.reservation
        if reservation is not None and max(0, tokens) != reservation.tokens:

            def reconcile() -> None:
                try:
                    self.limiter.reconcile(reservation, tokens)
                except Exception:
                    logger.exception("usage table unwritable: this request's tokens are not reconciled")

            writes.append(reconcile)
        cached = self._cache.get(check.tenant)
        budget = cached.settings.budget if cached is not None else None
        if budget is not None and (tokens > 0 or usd > 0):
            period = budget.period

            def spend() -> None:
                try:
                    self.budgets.record(check.tenant, period, tokens=tokens, usd=usd)
                except Exception:
                    logger.exception("usage table unwritable: this request's spend is not counted")
                    return
                if cached is not None:  # this instance sees its own spend at once
                    so_far = cached.spend[period]
                    cached.spend[period] = Spend(
                        so_far.tokens + max(0, tokens), so_far.usd + max(Decimal(0), usd)
                    )

            writes.append(spend)
        return writes
