"""Circuit state per LLM option in DynamoDB: the one writer of every circuit transition.

Taken from Powertools' `aws_lambda_powertools.utilities.circuit_breaker` (3.37), as the model:

- the states and their names, `CircuitState` (CLOSED / OPEN / HALF_OPEN), and the transition type
  `CircuitTransition` (`Transition.to_powertools()` produces it for hooks);
- the cycle CLOSED → OPEN → (recovery timeout) → HALF_OPEN → CLOSED, or back to OPEN on a failed
  probe;
- the half-open probe election by conditional write, with an owner id and a lease expiry so a
  recycled prober cannot wedge the circuit (`try_acquire_half_open`);
- fail-open: when DynamoDB cannot be read or written the circuit behaves as CLOSED, and the
  failure is logged, never raised into the request path (`get_state`, `_safe_persist`);
- a short per-environment read cache for `get()`; fail-open results are not cached;
- a healthy path without DynamoDB calls: a plain success is not written (unless a failure rate
  needs call counts).

Added, because Powertools' item (consecutive failures counted in memory per execution
environment, `opened_at` as an integer) cannot serve a Step Functions Choice reading the item
directly, nor a window shared across the fleet:

- `open_until` stored as a `YYYY-MM-DDTHH:MM:SSZ` string, so the workflow's `CheckCircuit` is a
  direct GetItem plus a Choice (`TimestampGreaterThanPath`), no Lambda on the skip path;
- a shared sliding failure window, a failure rate with a minimum call count, slow calls counted
  as failures (the rules are in `switchboard.circuits.policy`);
- a cooldown that doubles on each reopen, capped at `max_cooldown_s`;
- up to `half_open_probes` concurrent probe leases and as many successes to close;
- operator forcing (open / closed) with an expiry or sticky;
- optimistic locking on `version` for every write (read, decide, conditional write, re-read and
  retry on a lost race), with the transition event written in the same `TransactWriteItems` as
  the state: the event log and the state can never disagree;
- a transition event log (`EVENT#…` items with a 30-day TTL) for `switchboard circuits show`.

Item layout (the workflow's ASL and the CDK stack depend on it): partition key `pk` = option id,
sort key `sk`. The state item (`sk = "STATE"`) holds `state` (S), `open_until` (S, while OPEN),
`forced` (S `open`|`closed`), `forced_until` (S; absent = sticky), `forced_by`, `forced_reason`,
and Python-only bookkeeping: `opened_at` (S), `failures` (L of N, epoch ms), `calls` (M bucket start
epoch s → N), `consecutive_opens` (N), `cooldown_s` (N), `probe_leases` (M owner → N expiry epoch
ms), `half_open_successes` (N), `last_error` (S), `version` (N), `updated_at` (S). A missing state
item is a CLOSED circuit.
"""

from __future__ import annotations

import builtins
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, cast

from switchboard.background_refresh import SingleFlight, StartThread, daemon_thread
from switchboard.circuits.policy import (
    PROBE_LEASE_S,
    CircuitSnapshot,
    CircuitState,
    ForcedState,
    Outcome,
    Transition,
    force,
    is_noop,
    on_outcome,
    on_probe_request,
    release,
)
from switchboard.circuits.timefmt import from_iso, from_ms, to_iso, to_iso_ms, to_ms, utcnow
from switchboard.contract import metrics as metric_names
from switchboard.contract import tables
from switchboard.options.model import BreakerPolicy

__all__ = [
    "EVENT_CONTENTION",
    "EVENT_PREFIX",
    "EVENT_TTL_DAYS",
    "EVENT_UNAVAILABLE",
    "STATE_SK",
    "CircuitContention",
    "CircuitStore",
    "ProbeDecision",
    "RecordResult",
    "snapshot_from_item",
    "snapshot_to_item",
]

logger = logging.getLogger(__name__)

STATE_SK = "STATE"
EVENT_PREFIX = "EVENT#"
EVENT_TTL_DAYS = 30
MAX_ATTEMPTS = 5

# Names passed to `on_event` (declared in switchboard.contract.metrics, which the alarms read).
EVENT_UNAVAILABLE = metric_names.CIRCUIT_STORE_UNAVAILABLE
EVENT_CONTENTION = metric_names.CIRCUIT_STORE_CONTENTION

EventHook = Callable[[str, dict[str, Any]], None]

# The table's key and TTL attributes (declared in switchboard.contract.tables, which infra reads).
_PK = tables.CIRCUIT_PARTITION_KEY
_SK = tables.CIRCUIT_SORT_KEY
_TTL = tables.TTL_ATTRIBUTE


class CircuitContention(RuntimeError):
    """Every conditional write attempt lost a race (only raised by `force`)."""


@dataclass(frozen=True)
class ProbeDecision:
    granted: bool
    state: CircuitState
    open_until: datetime | None
    transition: Transition | None = None


@dataclass(frozen=True)
class RecordResult:
    transition: Transition | None
    snapshot: CircuitSnapshot


# --- item conversion --------------------------------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def _get_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if isinstance(value, Mapping) and "S" in value else None


def _get_n(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    if isinstance(value, Mapping) and "N" in value:
        return int(float(value["N"]))
    return default


def _get_time(item: Mapping[str, Any], name: str) -> datetime | None:
    text = _get_s(item, name)
    return from_iso(text) if text else None


def snapshot_to_item(option_id: str, snapshot: CircuitSnapshot, *, updated_at: datetime) -> dict[str, Any]:
    """Snapshot → low-level state item (with the snapshot's `version`)."""
    item: dict[str, Any] = {
        _PK: _s(option_id),
        _SK: _s(STATE_SK),
        "state": _s(snapshot.state.value),
        "failures": {"L": [_n(to_ms(ts)) for ts in snapshot.failures]},
        "calls": {"M": {str(start): _n(count) for start, count in snapshot.calls}},
        "consecutive_opens": _n(snapshot.consecutive_opens),
        "probe_leases": {"M": {owner: _n(to_ms(until)) for owner, until in snapshot.leases}},
        "half_open_successes": _n(snapshot.half_open_successes),
        "version": _n(snapshot.version),
        "updated_at": _s(to_iso(updated_at)),
    }
    optional_times = {
        "open_until": snapshot.open_until,
        "opened_at": snapshot.opened_at,
        "forced_until": snapshot.forced_until,
    }
    for name, when in optional_times.items():
        if when is not None:
            item[name] = _s(to_iso(when))
    optional_text = {
        "forced": snapshot.forced,
        "forced_by": snapshot.forced_by,
        "forced_reason": snapshot.forced_reason,
        "last_error": snapshot.last_error,
    }
    for name, text in optional_text.items():
        if text:
            item[name] = _s(text)
    if snapshot.cooldown_s is not None:
        item["cooldown_s"] = _n(snapshot.cooldown_s)
    return item


def snapshot_from_item(item: Mapping[str, Any] | None) -> CircuitSnapshot:
    """Low-level state item → snapshot; None (no item) → CLOSED."""
    if not item:
        return CircuitSnapshot()
    failures = tuple(
        sorted(from_ms(int(float(v["N"]))) for v in item.get("failures", {}).get("L", []) if "N" in v)
    )
    calls = tuple(sorted((int(k), int(float(v["N"]))) for k, v in item.get("calls", {}).get("M", {}).items()))
    leases = tuple(
        sorted(
            (str(owner), from_ms(int(float(v["N"]))))
            for owner, v in item.get("probe_leases", {}).get("M", {}).items()
        )
    )
    forced = _get_s(item, "forced")
    cooldown = item.get("cooldown_s")
    return CircuitSnapshot(
        state=CircuitState(_get_s(item, "state") or CircuitState.CLOSED.value),
        open_until=_get_time(item, "open_until"),
        opened_at=_get_time(item, "opened_at"),
        forced=cast(ForcedState, forced) if forced in ("open", "closed") else None,
        forced_until=_get_time(item, "forced_until"),
        forced_by=_get_s(item, "forced_by"),
        forced_reason=_get_s(item, "forced_reason"),
        failures=failures,
        calls=calls,
        consecutive_opens=_get_n(item, "consecutive_opens"),
        cooldown_s=_get_n(item, "cooldown_s") if cooldown else None,
        leases=leases,
        half_open_successes=_get_n(item, "half_open_successes"),
        last_error=_get_s(item, "last_error"),
        version=_get_n(item, "version"),
        updated_at=_get_time(item, "updated_at"),
    )


def _event_item(option_id: str, transition: Transition, *, actor: str, version: int) -> dict[str, Any]:
    """The event's sort key: `EVENT#<at, ms>#<state version, 10 digits><4 random hex>`.

    The state item's version (strictly increasing per circuit) orders two transitions written in the
    same millisecond; the random tail only guards against a clash with a hand-written event.
    """
    at = transition.at
    item: dict[str, Any] = {
        _PK: _s(option_id),
        _SK: _s(f"{EVENT_PREFIX}{to_iso_ms(at)}#{version:010d}{secrets.token_hex(2)}"),
        "transition": _s(transition.kind),
        "from_state": _s(transition.from_state.value),
        "to_state": _s(transition.to_state.value),
        "reason": _s(transition.reason or "-"),
        "actor": _s(actor or "unknown"),
        "at": _s(to_iso(at)),
        _TTL: _n(int(at.timestamp()) + EVENT_TTL_DAYS * 86400),
    }
    if transition.open_until is not None:
        item["open_until"] = _s(to_iso(transition.open_until))
    if transition.error_class:
        item["error_class"] = _s(transition.error_class)
    return item


def _plain(value: Mapping[str, Any]) -> Any:
    """One low-level attribute value → plain Python (only the types this table uses)."""
    if "S" in value:
        return value["S"]
    if "N" in value:
        number = float(value["N"])
        return int(number) if number.is_integer() else number
    if "BOOL" in value:
        return bool(value["BOOL"])
    if "NULL" in value:
        return None
    if "L" in value:
        return [_plain(v) for v in value["L"]]
    if "M" in value:
        return {k: _plain(v) for k, v in value["M"].items()}
    return None


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _lost_race(exc: BaseException) -> bool:
    """A conditional write (plain or in a transaction) found another writer's version."""
    code = _error_code(exc)
    if code in ("ConditionalCheckFailedException", "TransactionConflictException"):
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    codes = {str(r.get("Code")) for r in reasons if isinstance(r, Mapping)}
    if codes:
        return bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))
    return "ConditionalCheckFailed" in message or "TransactionConflict" in message


CACHE_TTL_S = 2.0
"""How long :meth:`CircuitStore.get` serves a snapshot without reading (``CIRCUIT_CACHE_TTL_S``)."""


class CircuitStore:
    """Read-decide-write of circuit snapshots with optimistic locking and fail-open reads."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_event: EventHook | None = None,
        cache_ttl_s: float = CACHE_TTL_S,
        cache_stale_s: float = 0.0,
        lease_s: int = PROBE_LEASE_S,
        max_attempts: int = MAX_ATTEMPTS,
        start_thread: StartThread | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        Args:
            cache_ttl_s: how long :meth:`get` serves a snapshot it read (or wrote) without reading.
            cache_stale_s: how long past that it still serves it while one background read per
                circuit refreshes it (stale-while-revalidate, :mod:`switchboard.background_refresh`);
                0 (the default: the workflow's circuit tasks): read on the path once expired. The
                streaming path sets it, so a request landing on an expiry does not pay the read.
                Transitions always read consistently, whatever the cache holds.
        """
        self.table_name = table_name
        self._client = client
        self._clock = clock
        self._on_event = on_event
        self.cache_ttl_s = cache_ttl_s
        self.cache_stale_s = max(0.0, cache_stale_s)
        self._background = SingleFlight(start_thread or daemon_thread("circuit-refresh"))
        self._monotonic = monotonic
        self.lease_s = lease_s
        self.max_attempts = max(1, max_attempts)
        self._cache: dict[str, tuple[float, CircuitSnapshot]] = {}

    # -- plumbing

    @property
    def client(self) -> Any:
        if self._client is None:
            from switchboard import aws

            self._client = aws.client("dynamodb")
        return self._client

    def now(self) -> datetime:
        return self._clock()

    def _emit(self, name: str, fields: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(name, fields)
        except Exception:  # an observability hook must never break the request path
            logger.exception("circuit store event hook failed", extra={"event_name": name})

    def _unavailable(self, option_id: str, operation: str, exc: BaseException) -> None:
        reason = _error_code(exc) or type(exc).__name__
        logger.warning(
            "circuit table %s unavailable during %s for %s (%s): failing open (CLOSED)",
            self.table_name,
            operation,
            option_id,
            reason,
            extra={"option_id": option_id, "operation": operation, "reason": reason},
        )
        self._emit(EVENT_UNAVAILABLE, {"option_id": option_id, "operation": operation, "reason": reason})

    def _remember(self, option_id: str, snapshot: CircuitSnapshot) -> None:
        self._cache[option_id] = (self._monotonic() + self.cache_ttl_s, snapshot)

    def invalidate(self, option_id: str | None = None) -> None:
        if option_id is None:
            self._cache.clear()
        else:
            self._cache.pop(option_id, None)

    def _key(self, option_id: str) -> dict[str, Any]:
        return {_PK: _s(option_id), _SK: _s(STATE_SK)}

    def _fetch(self, option_id: str, *, consistent: bool) -> CircuitSnapshot:
        response = self.client.get_item(
            TableName=self.table_name, Key=self._key(option_id), ConsistentRead=consistent
        )
        return snapshot_from_item(response.get("Item"))

    def _read(self, option_id: str, *, consistent: bool = True) -> CircuitSnapshot:
        snapshot = self._fetch(option_id, consistent=consistent)
        self._remember(option_id, snapshot)
        return snapshot

    def _write(
        self,
        option_id: str,
        old: CircuitSnapshot,
        new: CircuitSnapshot,
        transition: Transition | None,
        *,
        actor: str,
    ) -> CircuitSnapshot:
        """Conditional put of `new` over `old` (raises ClientError on a lost race)."""
        now = self.now()
        stored = replace(new, version=old.version + 1, updated_at=now)
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": snapshot_to_item(option_id, stored, updated_at=now),
        }
        if old.version == 0:
            put["ConditionExpression"] = "attribute_not_exists(#pk) OR attribute_not_exists(#v)"
            put["ExpressionAttributeNames"] = {"#pk": _PK, "#v": "version"}
        else:
            put["ConditionExpression"] = "#v = :expected"
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":expected": _n(old.version)}
        if transition is None:
            self.client.put_item(**put)
        else:
            event = {
                "TableName": self.table_name,
                "Item": _event_item(option_id, transition, actor=actor, version=stored.version),
            }
            self.client.transact_write_items(TransactItems=[{"Put": put}, {"Put": event}])
        self._remember(option_id, stored)
        return stored

    def _backoff(self, attempt: int) -> None:
        time.sleep(random.uniform(0, 0.005 * 2**attempt))

    # -- reads

    def get(self, option_id: str) -> CircuitSnapshot:
        """The circuit (CLOSED when no item), cached for `cache_ttl_s` (then `cache_stale_s` while it
        refreshes in the background); CLOSED when unreadable."""
        cached = self._cache.get(option_id)
        if cached is not None:
            expires_at, snapshot = cached
            now = self._monotonic()
            if expires_at > now:
                return snapshot
            if expires_at + self.cache_stale_s > now:
                self._background.start(option_id, lambda: self._refresh(option_id, cached))
                return snapshot
        return self._read_quietly(option_id)

    def _refresh(self, option_id: str, seen: tuple[float, CircuitSnapshot]) -> None:
        """The background read: cached only if nothing newer (a transition this instance wrote, an
        invalidation) replaced ``seen`` meanwhile; an unreadable table keeps ``seen`` until the
        stale window ends (then :meth:`get` reads on the path and fails open as before)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            snapshot = self._fetch(option_id, consistent=False)
        except (BotoCoreError, ClientError) as exc:
            self._unavailable(option_id, "get", exc)
            return
        if self._cache.get(option_id) is seen:
            self._remember(option_id, snapshot)

    def _read_quietly(self, option_id: str) -> CircuitSnapshot:
        """An eventually consistent read that fails open (CLOSED, not cached: the next get retries)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._read(option_id, consistent=False)
        except (BotoCoreError, ClientError) as exc:
            self._unavailable(option_id, "get", exc)
            return CircuitSnapshot()

    def list(self) -> list[tuple[str, CircuitSnapshot]]:
        """Every stored circuit (state items only), by option id. Errors propagate."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "#sk = :state",
            "ExpressionAttributeNames": {"#sk": _SK},
            "ExpressionAttributeValues": {":state": _s(STATE_SK)},
        }
        found: list[tuple[str, CircuitSnapshot]] = []
        while True:
            page = self.client.scan(**kwargs)
            for item in page.get("Items", []):
                found.append((str(item[_PK]["S"]), snapshot_from_item(item)))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return sorted(found, key=lambda pair: pair[0])

    def events(self, option_id: str, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """Transition events, newest first. Errors propagate."""
        response = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": _PK, "#sk": _SK},
            ExpressionAttributeValues={":pk": _s(option_id), ":prefix": _s(EVENT_PREFIX)},
            ScanIndexForward=False,
            Limit=max(1, int(limit)),
        )
        return [{k: _plain(v) for k, v in item.items()} for item in response.get("Items", [])]

    def soonest_reopening(self, option_ids: Iterable[str]) -> datetime | None:
        """The earliest future `open_until` among OPEN circuits (for Retry-After); None if none/unknown."""
        from botocore.exceptions import BotoCoreError, ClientError

        ids = list(dict.fromkeys(option_ids))
        now = self.now()
        soonest: datetime | None = None
        try:
            for start in range(0, len(ids), 100):
                request: dict[str, Any] = {
                    self.table_name: {
                        "Keys": [self._key(i) for i in ids[start : start + 100]],
                        "ProjectionExpression": "#pk, #st, open_until",
                        "ExpressionAttributeNames": {"#pk": _PK, "#st": "state"},
                    }
                }
                for attempt in range(self.max_attempts):
                    response = self.client.batch_get_item(RequestItems=request)
                    for item in response.get("Responses", {}).get(self.table_name, []):
                        until = _get_time(item, "open_until")
                        if _get_s(item, "state") == CircuitState.OPEN.value and until and until > now:
                            soonest = until if soonest is None else min(soonest, until)
                    request = response.get("UnprocessedKeys") or {}
                    if not request:
                        break
                    self._backoff(attempt)
        except (BotoCoreError, ClientError) as exc:
            self._unavailable(",".join(ids), "soonest_reopening", exc)
            return None
        return soonest

    # -- read-modify-write

    def record_result(
        self, option_id: str, policy: BreakerPolicy, outcome: Outcome, *, actor: str
    ) -> RecordResult:
        """Apply an outcome; the resulting snapshot comes back too (fail-open: CLOSED)."""
        if is_noop(outcome, policy):
            return RecordResult(None, self.get(option_id))
        from botocore.exceptions import BotoCoreError, ClientError

        snapshot = CircuitSnapshot()
        try:
            for attempt in range(self.max_attempts):
                snapshot = self._read(option_id)
                new, transition = on_outcome(snapshot, policy, outcome, self.now())
                if new == snapshot:
                    return RecordResult(None, snapshot)
                try:
                    stored = self._write(option_id, snapshot, new, transition, actor=actor)
                except ClientError as exc:
                    if not _lost_race(exc):
                        raise
                    self._backoff(attempt)
                    continue
                return RecordResult(transition, stored)
        except (BotoCoreError, ClientError) as exc:
            self._unavailable(option_id, "record", exc)
            return RecordResult(None, CircuitSnapshot())
        logger.warning("circuit %s: outcome not recorded after %d lost races", option_id, self.max_attempts)
        self._emit(EVENT_CONTENTION, {"option_id": option_id, "operation": "record"})
        return RecordResult(None, snapshot)

    def record(
        self, option_id: str, policy: BreakerPolicy, outcome: Outcome, *, actor: str
    ) -> Transition | None:
        return self.record_result(option_id, policy, outcome, actor=actor).transition

    def acquire_probe(
        self, option_id: str, policy: BreakerPolicy, *, owner: str, actor: str
    ) -> ProbeDecision:
        """May `owner` call the option now? Takes a probe lease when the circuit is testing recovery.

        Fail-open: granted when the table cannot be used. After `max_attempts` lost races the
        probe is refused (others are taking the leases).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        snapshot = CircuitSnapshot()
        try:
            for attempt in range(self.max_attempts):
                snapshot = self._read(option_id)
                new, granted, transition = on_probe_request(
                    snapshot, policy, owner, self.now(), lease_s=self.lease_s
                )
                if new == snapshot:
                    return ProbeDecision(granted, snapshot.state, snapshot.open_until)
                try:
                    stored = self._write(option_id, snapshot, new, transition, actor=actor)
                except ClientError as exc:
                    if not _lost_race(exc):
                        raise
                    self._backoff(attempt)
                    continue
                return ProbeDecision(granted, stored.state, stored.open_until, transition)
        except (BotoCoreError, ClientError) as exc:
            self._unavailable(option_id, "acquire_probe", exc)
            return ProbeDecision(True, CircuitState.CLOSED, None)
        self._emit(EVENT_CONTENTION, {"option_id": option_id, "operation": "acquire_probe"})
        return ProbeDecision(False, snapshot.state, snapshot.open_until)

    def force(
        self,
        option_id: str,
        state: Literal["open", "closed"],
        *,
        until: datetime | None,
        actor: str,
        reason: str | None = None,
    ) -> Transition:
        """Operator override (`until` None = sticky). Errors propagate: the operator must see them."""
        transition = self._operate(
            option_id, actor, lambda snapshot, now: force(snapshot, state, until, actor, reason, now)
        )
        if transition is None:  # force() always returns one
            raise RuntimeError(f"circuit {option_id}: forcing produced no transition")
        return transition

    def release(self, option_id: str, *, actor: str, reason: str | None = None) -> Transition | None:
        """End an operator override now (None: nothing was forced). Errors propagate."""
        return self._operate(option_id, actor, lambda snapshot, now: release(snapshot, actor, reason, now))

    def _operate(
        self,
        option_id: str,
        actor: str,
        change: Callable[[CircuitSnapshot, datetime], tuple[CircuitSnapshot, Transition | None]],
    ) -> Transition | None:
        """Read, change, conditionally write; retried on a lost race."""
        from botocore.exceptions import ClientError

        for attempt in range(self.max_attempts):
            snapshot = self._read(option_id)
            new, transition = change(snapshot, self.now())
            if transition is None:
                return None
            try:
                self._write(option_id, snapshot, new, transition, actor=actor)
            except ClientError as exc:
                if not _lost_race(exc):
                    raise
                self._backoff(attempt)
                continue
            return transition
        raise CircuitContention(f"circuit {option_id}: lost {self.max_attempts} write races; try again")
