"""Pure circuit-breaker transitions: snapshot in, snapshot (and maybe a transition) out.

No I/O here: `switchboard.circuits.store` reads a snapshot, calls one of these functions and writes
the result back with a conditional write. Every function takes `now` so tests drive time.

States (Powertools' `CircuitState`):

- CLOSED → OPEN when the counted failures inside the sliding `window_s` reach `failure_threshold`,
  or, with `failure_rate` set, when the window holds at least `minimum_calls` counted calls and
  failures / calls ≥ `failure_rate`. A success slower than `slow_call_ms` counts as a failure.
  Only error classes with `ErrorClass.counts_against_circuit` count; client errors
  (bad_request, context_too_long, content_filtered) are neither successes nor failures. An
  unknown error class, or a failure without a class, counts (a failure we do not understand is
  still a failure).
- OPEN stays OPEN until `open_until`; outcomes that arrive meanwhile (calls already in flight)
  change nothing. After `open_until` a probe request moves it to HALF_OPEN and takes a lease.
- HALF_OPEN lets at most `half_open_probes` probe leases exist at once; a lease expires after
  `lease_s` so a crashed prober cannot wedge the circuit. `half_open_probes` probe successes
  close it; one probe failure reopens it with cooldown `min(cooldown_s * 2**consecutive_opens,
  max_cooldown_s)`. Closing resets `consecutive_opens` and the windows. Non-probe outcomes in
  HALF_OPEN are ignored: only probes decide.
- Forcing: forced open = OPEN until `forced_until` (sticky: `STICKY_UNTIL`) and outcomes never
  close it; forced closed = CLOSED and outcomes never open it until `forced_until` (sticky: until
  the next force). An expired force behaves normally: an expired forced open reaches HALF_OPEN
  through a probe request like any cooldown end. Releasing a force expires it now (sticky or not),
  so the circuit takes that same normal path at once.

Window data stays small: at most `max(failure_threshold, minimum_calls)` failure timestamps (enough:
once `failure_threshold` of them are in the window the circuit opens anyway), and calls counted in
~10 coarse buckets per window, only when `failure_rate` is set. A bucket is counted while any part
of it overlaps the window, so the call count errs high and the rate errs low (never a premature
open because of bucketing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from aws_lambda_powertools.utilities.circuit_breaker import CircuitState, CircuitTransition

from switchboard.circuits.timefmt import STICKY_UNTIL, ceil_s, to_ms, trunc_ms
from switchboard.contract.workflow import TIMESTAMP_FORMAT
from switchboard.errors import ErrorClass
from switchboard.options.model import BreakerPolicy

__all__ = [
    "BUCKETS_PER_WINDOW",
    "PROBE_LEASE_S",
    "TRANSITION_CLOSED",
    "TRANSITION_FORCED_CLOSED",
    "TRANSITION_FORCED_OPEN",
    "TRANSITION_HALF_OPENED",
    "TRANSITION_OPENED",
    "TRANSITION_REOPENED",
    "CircuitSnapshot",
    "CircuitState",
    "Outcome",
    "Transition",
    "classify",
    "cooldown_for",
    "force",
    "is_noop",
    "on_outcome",
    "on_probe_request",
    "release",
]

PROBE_LEASE_S = 60
BUCKETS_PER_WINDOW = 10
_MAX_EXPONENT = 32  # 2**32 * any cooldown_s is far beyond any max_cooldown_s

TRANSITION_OPENED = "opened"
TRANSITION_REOPENED = "reopened"
TRANSITION_HALF_OPENED = "half_opened"
TRANSITION_CLOSED = "closed"
TRANSITION_FORCED_OPEN = "forced_open"
TRANSITION_FORCED_CLOSED = "forced_closed"
TRANSITION_RELEASED = "released"

Verdict = Literal["success", "failure", "ignored"]
ForcedState = Literal["open", "closed"]


@dataclass(frozen=True)
class Outcome:
    """What one provider call told us about the option's health."""

    success: bool
    error_class: str | None = None
    latency_ms: int = 0
    probe: bool = False
    owner: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Transition:
    """A state change, as written to the event log and reported to the workflow.

    `kind` is one of the TRANSITION_* names. Forced transitions are always reported, even OPEN → OPEN.
    """

    kind: str
    from_state: CircuitState
    to_state: CircuitState
    reason: str
    at: datetime
    open_until: datetime | None = None
    error_class: str | None = None

    def to_powertools(self, circuit_name: str) -> CircuitTransition:
        """The same change as Powertools' `on_transition` hook type (opened_at in epoch seconds)."""
        opened_at = int(self.at.timestamp()) if self.to_state is CircuitState.OPEN else None
        return CircuitTransition(
            circuit_name=circuit_name,
            from_state=self.from_state,
            to_state=self.to_state,
            opened_at=opened_at,
        )


@dataclass(frozen=True)
class CircuitSnapshot:
    """One circuit's full state. `version` 0 means "no item stored yet" (a CLOSED circuit)."""

    state: CircuitState = CircuitState.CLOSED
    open_until: datetime | None = None
    opened_at: datetime | None = None
    forced: ForcedState | None = None
    forced_until: datetime | None = None
    forced_by: str | None = None
    forced_reason: str | None = None
    failures: tuple[datetime, ...] = ()
    # (bucket start, epoch seconds; calls counted in it), sorted by start.
    calls: tuple[tuple[int, int], ...] = ()
    consecutive_opens: int = 0
    cooldown_s: int | None = None
    # (owner, lease expiry), sorted by owner.
    leases: tuple[tuple[str, datetime], ...] = ()
    half_open_successes: int = 0
    last_error: str | None = None
    version: int = 0
    updated_at: datetime | None = field(default=None, compare=False)

    def forced_active(self, now: datetime) -> ForcedState | None:
        """The force in effect at `now` (None when none, or when it has expired)."""
        if self.forced is None:
            return None
        if self.forced_until is not None and self.forced_until <= now:
            return None
        return self.forced

    def active_leases(self, now: datetime) -> tuple[tuple[str, datetime], ...]:
        return tuple((owner, until) for owner, until in self.leases if until > now)

    def failures_in_window(self, policy: BreakerPolicy, now: datetime) -> int:
        start = now - timedelta(seconds=policy.window_s)
        return sum(1 for ts in self.failures if ts > start)

    def calls_in_window(self, policy: BreakerPolicy, now: datetime) -> int:
        return sum(count for _, count in _live_buckets(self.calls, policy, now))


# --- helpers -------------------------------------------------------------------------------------------


def cooldown_for(policy: BreakerPolicy, consecutive_opens: int) -> int:
    """Seconds an open lasts: `cooldown_s * 2**consecutive_opens`, capped at `max_cooldown_s`."""
    exponent = min(max(consecutive_opens, 0), _MAX_EXPONENT)
    return int(min(policy.cooldown_s * 2**exponent, policy.max_cooldown_s))


def classify(outcome: Outcome, policy: BreakerPolicy) -> Verdict:
    """Success, counted failure, or ignored (a client error says nothing about the provider)."""
    if outcome.success:
        if policy.slow_call_ms is not None and outcome.latency_ms > policy.slow_call_ms:
            return "failure"
        return "success"
    if outcome.error_class is None:
        return "failure"
    try:
        error_class = ErrorClass(outcome.error_class)
    except ValueError:
        return "failure"
    return "failure" if error_class.counts_against_circuit else "ignored"


def is_noop(outcome: Outcome, policy: BreakerPolicy) -> bool:
    """True when `on_outcome` cannot change any snapshot: the store skips its read and write.

    A plain (non-probe) success changes nothing unless calls are being counted for a failure rate:
    CLOSED keeps its failure window (failures are not consecutive), OPEN and HALF_OPEN ignore it.
    This keeps the healthy path free of DynamoDB calls, as Powertools' breaker does, so a call made
    under a probe lease must report its success with `probe=True` (a failure is never a no-op, and
    `on_outcome` also recognises a probe by its `owner` holding a lease).
    """
    return classify(outcome, policy) == "success" and not outcome.probe and policy.failure_rate is None


def _bucket_width(policy: BreakerPolicy) -> int:
    return max(1, math.ceil(policy.window_s / BUCKETS_PER_WINDOW))


def _live_buckets(
    calls: tuple[tuple[int, int], ...], policy: BreakerPolicy, now: datetime
) -> tuple[tuple[int, int], ...]:
    width = _bucket_width(policy)
    window_start_s = now.timestamp() - policy.window_s
    return tuple((start, count) for start, count in calls if start + width > window_start_s)


def _count_call(
    calls: tuple[tuple[int, int], ...], policy: BreakerPolicy, now: datetime
) -> tuple[tuple[int, int], ...]:
    width = _bucket_width(policy)
    key = (to_ms(now) // 1000) // width * width
    buckets = dict(_live_buckets(calls, policy, now))
    buckets[key] = buckets.get(key, 0) + 1
    return tuple(sorted(buckets.items()))


def _describe_error(outcome: Outcome, policy: BreakerPolicy) -> str:
    if outcome.success:
        return f"slow call: {outcome.latency_ms}ms > {policy.slow_call_ms}ms"
    label = outcome.error_class or "failure"
    if outcome.message:
        return f"{label}: {outcome.message[:200]}"
    return label


def _error_label(outcome: Outcome) -> str:
    return "slow" if outcome.success else (outcome.error_class or "failure")


def _open(
    snapshot: CircuitSnapshot,
    policy: BreakerPolicy,
    now: datetime,
    *,
    kind: str,
    reason: str,
    outcome: Outcome,
) -> tuple[CircuitSnapshot, Transition]:
    cooldown = cooldown_for(policy, snapshot.consecutive_opens)
    open_until = ceil_s(now + timedelta(seconds=cooldown))
    new = replace(
        snapshot,
        state=CircuitState.OPEN,
        open_until=open_until,
        opened_at=now.replace(microsecond=0),
        forced=None,
        forced_until=None,
        forced_by=None,
        forced_reason=None,
        failures=(),
        calls=(),
        consecutive_opens=snapshot.consecutive_opens + 1,
        cooldown_s=cooldown,
        leases=(),
        half_open_successes=0,
        last_error=_describe_error(outcome, policy),
    )
    transition = Transition(
        kind=kind,
        from_state=snapshot.state,
        to_state=CircuitState.OPEN,
        reason=reason,
        at=now,
        open_until=open_until,
        error_class=_error_label(outcome),
    )
    return new, transition


def _close(snapshot: CircuitSnapshot, now: datetime, *, reason: str) -> tuple[CircuitSnapshot, Transition]:
    new = replace(
        snapshot,
        state=CircuitState.CLOSED,
        open_until=None,
        opened_at=None,
        failures=(),
        calls=(),
        consecutive_opens=0,
        cooldown_s=None,
        leases=(),
        half_open_successes=0,
    )
    return new, Transition(
        kind=TRANSITION_CLOSED, from_state=snapshot.state, to_state=CircuitState.CLOSED, reason=reason, at=now
    )


def _clear_force(snapshot: CircuitSnapshot) -> CircuitSnapshot:
    return replace(snapshot, forced=None, forced_until=None, forced_by=None, forced_reason=None)


# --- the three entry points -----------------------------------------------------------------------------


def on_outcome(
    snapshot: CircuitSnapshot, policy: BreakerPolicy, outcome: Outcome, now: datetime
) -> tuple[CircuitSnapshot, Transition | None]:
    """Apply one call's outcome. Returns the snapshot unchanged (same object) when nothing changes."""
    verdict = classify(outcome, policy)
    state = snapshot.state

    if state is CircuitState.OPEN:
        # Calls in flight when it opened, or anything while forced open: never closes it.
        return snapshot, None

    if state is CircuitState.HALF_OPEN:
        lease_owners = {owner for owner, _ in snapshot.leases}
        is_probe = outcome.probe or (outcome.owner is not None and outcome.owner in lease_owners)
        if not is_probe:
            return snapshot, None
        remaining = tuple(
            (owner, until) for owner, until in snapshot.active_leases(now) if owner != outcome.owner
        )
        if verdict == "ignored":
            # The probe said nothing about health: free its lease for another prober.
            if remaining == snapshot.leases:
                return snapshot, None
            return replace(snapshot, leases=remaining), None
        if verdict == "failure":
            label = _error_label(outcome)
            cooldown = cooldown_for(policy, snapshot.consecutive_opens)
            return _open(
                snapshot,
                policy,
                now,
                kind=TRANSITION_REOPENED,
                reason=f"probe failed ({label}); cooldown {cooldown}s",
                outcome=outcome,
            )
        successes = snapshot.half_open_successes + 1
        if successes >= policy.half_open_probes:
            return _close(
                snapshot, now, reason=f"{successes} successful probe{'s' if successes != 1 else ''}"
            )
        return replace(snapshot, leases=remaining, half_open_successes=successes), None

    # CLOSED
    if verdict == "ignored" or snapshot.forced_active(now) == "closed":
        return snapshot, None
    if verdict == "success" and policy.failure_rate is None:
        return snapshot, None
    base = _clear_force(snapshot) if snapshot.forced is not None else snapshot
    window_start = now - timedelta(seconds=policy.window_s)
    failures = tuple(ts for ts in base.failures if ts > window_start)
    calls = _count_call(base.calls, policy, now) if policy.failure_rate is not None else ()
    if verdict == "success":
        return replace(base, failures=failures, calls=calls), None

    cap = max(policy.failure_threshold, policy.minimum_calls)
    failures = (*failures, trunc_ms(now))[-cap:]
    updated = replace(base, failures=failures, calls=calls, last_error=_describe_error(outcome, policy))
    count = len(failures)
    label = _error_label(outcome)
    if count >= policy.failure_threshold:
        reason = f"{count} failure{'s' if count != 1 else ''} in {policy.window_s}s: {label}"
        return _open(updated, policy, now, kind=TRANSITION_OPENED, reason=reason, outcome=outcome)
    if policy.failure_rate is not None:
        total = max(sum(c for _, c in calls), count)
        if total >= policy.minimum_calls and count / total >= policy.failure_rate:
            reason = (
                f"failure rate {count}/{total} = {count / total:.0%} >= {policy.failure_rate:.0%}"
                f" in {policy.window_s}s: {label}"
            )
            return _open(updated, policy, now, kind=TRANSITION_OPENED, reason=reason, outcome=outcome)
    return updated, None


def on_probe_request(
    snapshot: CircuitSnapshot,
    policy: BreakerPolicy,
    owner: str,
    now: datetime,
    *,
    lease_s: int = PROBE_LEASE_S,
) -> tuple[CircuitSnapshot, bool, Transition | None]:
    """May `owner` call the option now? Grants a probe lease when the circuit is testing recovery.

    CLOSED: granted, nothing changes. OPEN before `open_until`: refused. OPEN after `open_until`:
    → HALF_OPEN with `owner` holding the first lease. HALF_OPEN: granted while fewer than
    `half_open_probes` unexpired leases exist (an owner already holding one is granted again).
    """
    if snapshot.state is CircuitState.CLOSED:
        return snapshot, True, None

    lease_until = trunc_ms(now + timedelta(seconds=lease_s))

    if snapshot.state is CircuitState.OPEN:
        if snapshot.open_until is not None and snapshot.open_until > now:
            return snapshot, False, None
        was_forced = snapshot.forced is not None
        new = replace(
            _clear_force(snapshot),
            state=CircuitState.HALF_OPEN,
            open_until=None,
            leases=((owner, lease_until),),
            half_open_successes=0,
        )
        reason = "forced open expired" if was_forced else "cooldown elapsed"
        transition = Transition(
            kind=TRANSITION_HALF_OPENED,
            from_state=CircuitState.OPEN,
            to_state=CircuitState.HALF_OPEN,
            reason=f"{reason}; probe lease to {owner}",
            at=now,
        )
        return new, True, transition

    # HALF_OPEN
    active = snapshot.active_leases(now)
    if any(holder == owner for holder, _ in active):
        return snapshot, True, None
    if len(active) >= policy.half_open_probes:
        if active == snapshot.leases:
            return snapshot, False, None
        return replace(snapshot, leases=active), False, None
    leases = tuple(sorted((*active, (owner, lease_until))))
    return replace(snapshot, leases=leases), True, None


def force(
    snapshot: CircuitSnapshot,
    state: ForcedState,
    until: datetime | None,
    actor: str,
    reason: str | None,
    now: datetime,
) -> tuple[CircuitSnapshot, Transition]:
    """Operator override: `until` None makes it sticky (until the next force)."""
    forced_until = ceil_s(until) if until is not None else None
    why = reason or "operator"
    horizon = f"until {forced_until.strftime(TIMESTAMP_FORMAT)}" if forced_until is not None else "sticky"
    common = replace(
        snapshot,
        forced=state,
        forced_until=forced_until,
        forced_by=actor,
        forced_reason=reason,
        failures=(),
        calls=(),
        leases=(),
        half_open_successes=0,
    )
    if state == "open":
        open_until = forced_until if forced_until is not None else STICKY_UNTIL
        new = replace(
            common,
            state=CircuitState.OPEN,
            open_until=open_until,
            opened_at=now.replace(microsecond=0),
            cooldown_s=None,
        )
        return new, Transition(
            kind=TRANSITION_FORCED_OPEN,
            from_state=snapshot.state,
            to_state=CircuitState.OPEN,
            reason=f"forced open {horizon}: {why}",
            at=now,
            open_until=open_until,
        )
    if state != "closed":
        raise ValueError(f"force state must be 'open' or 'closed', got {state!r}")
    new = replace(
        common,
        state=CircuitState.CLOSED,
        open_until=None,
        opened_at=None,
        consecutive_opens=0,
        cooldown_s=None,
    )
    return new, Transition(
        kind=TRANSITION_FORCED_CLOSED,
        from_state=snapshot.state,
        to_state=CircuitState.CLOSED,
        reason=f"forced closed {horizon}: {why}",
        at=now,
    )


def release(
    snapshot: CircuitSnapshot, actor: str, reason: str | None, now: datetime
) -> tuple[CircuitSnapshot, Transition | None]:
    """End an operator override now; (snapshot, None) when no force is in effect.

    The force expires rather than vanishing, so what follows is the path an expired force already
    takes: a released open circuit lets the next request probe (HALF_OPEN), a released closed one
    counts outcomes again from an empty window.
    """
    active = snapshot.forced_active(now)
    if active is None:
        return snapshot, None
    released_at = now.replace(microsecond=0)  # stored in whole seconds
    new = replace(snapshot, forced_until=released_at, forced_by=actor, forced_reason=reason)
    open_until = None
    if active == "open":
        open_until = released_at
        new = replace(new, open_until=open_until)
    return new, Transition(
        kind=TRANSITION_RELEASED,
        from_state=snapshot.state,
        to_state=snapshot.state,
        reason=f"forced {active} released: {reason or 'operator'}",
        at=now,
        open_until=open_until,
    )
