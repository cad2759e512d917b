"""Pure circuit transitions: table-driven cases and hypothesis properties."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.circuits.policy import (
    PROBE_LEASE_S,
    CircuitSnapshot,
    CircuitState,
    Outcome,
    Transition,
    classify,
    cooldown_for,
    force,
    is_noop,
    on_outcome,
    on_probe_request,
)
from switchboard.circuits.timefmt import ISO_PATTERN, STICKY_UNTIL, from_iso, to_iso
from switchboard.errors import ErrorClass
from switchboard.options.model import BreakerPolicy

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
OK = Outcome(success=True, latency_ms=100)
FAIL = Outcome(success=False, error_class="unavailable", message="503 from upstream")
BAD = Outcome(success=False, error_class="bad_request")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def feed(
    snapshot: CircuitSnapshot, policy: BreakerPolicy, outcomes: list[tuple[float, Outcome]]
) -> tuple[CircuitSnapshot, list[Transition]]:
    transitions: list[Transition] = []
    for when, outcome in outcomes:
        snapshot, transition = on_outcome(snapshot, policy, outcome, at(when))
        if transition is not None:
            transitions.append(transition)
    return snapshot, transitions


def opened(policy: BreakerPolicy, when: float = 0) -> CircuitSnapshot:
    snapshot, transitions = feed(
        CircuitSnapshot(), policy, [(when, FAIL) for _ in range(policy.failure_threshold)]
    )
    assert snapshot.state is CircuitState.OPEN and transitions[-1].kind == "opened"
    return snapshot


# --- table-driven ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "outcomes", "state", "kinds"),
    [
        # threshold reached inside the window
        (
            BreakerPolicy(failure_threshold=3, window_s=60),
            [(0, FAIL), (10, FAIL), (20, FAIL)],
            "OPEN",
            ["opened"],
        ),
        # failures spread beyond the window never reach the threshold
        (BreakerPolicy(failure_threshold=3, window_s=60), [(0, FAIL), (40, FAIL), (80, FAIL)], "CLOSED", []),
        # successes do not reset a sliding window (not consecutive counting)
        (
            BreakerPolicy(failure_threshold=3, window_s=60),
            [(0, FAIL), (1, OK), (2, FAIL), (3, OK), (4, FAIL)],
            "OPEN",
            ["opened"],
        ),
        # client errors are neither success nor failure
        (BreakerPolicy(failure_threshold=2), [(0, BAD), (1, BAD), (2, BAD)], "CLOSED", []),
        (
            BreakerPolicy(failure_threshold=2),
            [(0, Outcome(False, "context_too_long")), (1, Outcome(False, "content_filtered"))],
            "CLOSED",
            [],
        ),
        # every counting class counts
        (
            BreakerPolicy(failure_threshold=4),
            [(0, Outcome(False, c)) for c in ("throttled", "timeout", "unavailable", "malformed")],
            "OPEN",
            ["opened"],
        ),
        # slow successes count as failures
        (
            BreakerPolicy(failure_threshold=2, slow_call_ms=1000),
            [(0, Outcome(True, latency_ms=1500)), (1, Outcome(True, latency_ms=2000))],
            "OPEN",
            ["opened"],
        ),
        (
            BreakerPolicy(failure_threshold=2, slow_call_ms=1000),
            [(0, Outcome(True, latency_ms=1000)), (1, Outcome(True, latency_ms=999))],
            "CLOSED",
            [],
        ),
        # failure rate: 2 of 4 calls = 50% with minimum 4 calls
        (
            BreakerPolicy(failure_threshold=10, failure_rate=0.5, minimum_calls=4),
            [(0, OK), (1, FAIL), (2, OK), (3, FAIL)],
            "OPEN",
            ["opened"],
        ),
        # failure rate below minimum_calls does not open
        (
            BreakerPolicy(failure_threshold=10, failure_rate=0.5, minimum_calls=5),
            [(0, OK), (1, FAIL), (2, OK), (3, FAIL)],
            "CLOSED",
            [],
        ),
        # failure rate under the rate does not open
        (
            BreakerPolicy(failure_threshold=10, failure_rate=0.5, minimum_calls=4),
            [(0, OK), (1, OK), (2, OK), (3, FAIL), (4, FAIL)],
            "CLOSED",
            [],
        ),
    ],
)
def test_closed_transitions(
    policy: BreakerPolicy, outcomes: list[tuple[float, Outcome]], state: str, kinds: list[str]
) -> None:
    snapshot, transitions = feed(CircuitSnapshot(), policy, outcomes)
    assert snapshot.state.value == state
    assert [t.kind for t in transitions] == kinds


def test_open_sets_cooldown_reason_and_clears_window() -> None:
    policy = BreakerPolicy(failure_threshold=2, window_s=60, cooldown_s=30)
    snapshot, transitions = feed(CircuitSnapshot(), policy, [(0, FAIL), (1.5, FAIL)])
    (transition,) = transitions
    assert transition.from_state is CircuitState.CLOSED and transition.to_state is CircuitState.OPEN
    assert transition.reason == "2 failures in 60s: unavailable"
    assert transition.error_class == "unavailable"
    # open_until rounds up to a whole second, never earlier than now + cooldown
    assert snapshot.open_until == at(32)
    assert ISO_PATTERN.match(to_iso(snapshot.open_until))
    assert snapshot.failures == () and snapshot.consecutive_opens == 1 and snapshot.cooldown_s == 30
    assert snapshot.last_error == "unavailable: 503 from upstream"
    assert transition.to_powertools("opt").to_state is CircuitState.OPEN


def test_outcomes_while_open_change_nothing() -> None:
    policy = BreakerPolicy(failure_threshold=1)
    snapshot = opened(policy)
    for outcome in (OK, FAIL, BAD, Outcome(True, probe=True, owner="x")):
        same, transition = on_outcome(snapshot, policy, outcome, at(1))
        assert same is snapshot and transition is None


def test_probe_cycle_closes_after_required_successes() -> None:
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=30, half_open_probes=2)
    snapshot = opened(policy)
    # before the cooldown: refused
    same, granted, transition = on_probe_request(snapshot, policy, "a", at(10))
    assert not granted and transition is None and same is snapshot
    # after: HALF_OPEN with a lease for "a"
    snapshot, granted, transition = on_probe_request(snapshot, policy, "a", at(31))
    assert granted and transition is not None and transition.kind == "half_opened"
    assert snapshot.state is CircuitState.HALF_OPEN and snapshot.open_until is None
    snapshot, granted, _ = on_probe_request(snapshot, policy, "b", at(31))
    assert granted
    _, granted, _ = on_probe_request(snapshot, policy, "c", at(31))
    assert not granted  # two leases out already
    # the owner itself is granted again
    _, granted, _ = on_probe_request(snapshot, policy, "a", at(32))
    assert granted
    snapshot, transition = on_outcome(snapshot, policy, Outcome(True, probe=True, owner="a"), at(33))
    assert transition is None and snapshot.half_open_successes == 1
    assert [o for o, _ in snapshot.leases] == ["b"]
    snapshot, transition = on_outcome(snapshot, policy, Outcome(True, probe=True, owner="b"), at(34))
    assert transition is not None and transition.kind == "closed"
    assert snapshot.state is CircuitState.CLOSED
    assert snapshot.consecutive_opens == 0 and snapshot.leases == () and snapshot.open_until is None


def test_probe_failure_reopens_with_growing_capped_cooldown() -> None:
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=30, max_cooldown_s=100)
    snapshot = opened(policy)
    now = 0.0
    cooldowns = []
    for _ in range(4):
        now = (snapshot.open_until - T0).total_seconds()
        snapshot, granted, _ = on_probe_request(snapshot, policy, "p", at(now))
        assert granted
        snapshot, transition = on_outcome(
            snapshot, policy, Outcome(False, "timeout", probe=True, owner="p"), at(now)
        )
        assert transition is not None and transition.kind == "reopened"
        assert transition.from_state is CircuitState.HALF_OPEN
        cooldowns.append(snapshot.cooldown_s)
    assert cooldowns == [60, 100, 100, 100]


def test_probe_failure_recognised_by_lease_owner() -> None:
    policy = BreakerPolicy(failure_threshold=1)
    snapshot = opened(policy)
    snapshot, _, _ = on_probe_request(snapshot, policy, "req-9", at(31))
    # the workflow's record_failure does not say "probe", but req-9 holds the lease
    snapshot, transition = on_outcome(snapshot, policy, Outcome(False, "timeout", owner="req-9"), at(32))
    assert transition is not None and transition.kind == "reopened"
    # a non-probe outcome in HALF_OPEN is ignored
    snapshot, _, _ = on_probe_request(snapshot, policy, "req-10", at(200))
    same, transition = on_outcome(snapshot, policy, Outcome(False, "timeout", owner="other"), at(201))
    assert same is snapshot and transition is None


def test_client_error_probe_frees_its_lease() -> None:
    policy = BreakerPolicy(failure_threshold=1)
    snapshot = opened(policy)
    snapshot, _, _ = on_probe_request(snapshot, policy, "a", at(31))
    snapshot, transition = on_outcome(
        snapshot, policy, Outcome(False, "bad_request", probe=True, owner="a"), at(32)
    )
    assert transition is None and snapshot.state is CircuitState.HALF_OPEN and snapshot.leases == ()
    _, granted, _ = on_probe_request(snapshot, policy, "b", at(33))
    assert granted


def test_expired_lease_lets_another_prober_in() -> None:
    policy = BreakerPolicy(failure_threshold=1)
    snapshot = opened(policy)
    snapshot, _, _ = on_probe_request(snapshot, policy, "crashed", at(31))
    _, granted, _ = on_probe_request(snapshot, policy, "b", at(31 + PROBE_LEASE_S - 1))
    assert not granted
    snapshot, granted, _ = on_probe_request(snapshot, policy, "b", at(31 + PROBE_LEASE_S + 1))
    assert granted and [o for o, _ in snapshot.leases] == ["b"]


def test_forced_open_ignores_outcomes_then_probes_after_expiry() -> None:
    policy = BreakerPolicy(failure_threshold=1)
    snapshot, transition = force(CircuitSnapshot(), "open", at(600), "cli:ops", "provider incident", T0)
    assert transition.kind == "forced_open" and transition.open_until == at(600)
    assert snapshot.state is CircuitState.OPEN and snapshot.open_until == at(600)
    for outcome in (OK, Outcome(True, probe=True, owner="x")):
        assert on_outcome(snapshot, policy, outcome, at(10))[0] is snapshot
    assert on_probe_request(snapshot, policy, "a", at(599))[1] is False
    snapshot, granted, transition = on_probe_request(snapshot, policy, "a", at(600))
    assert granted and transition is not None and transition.reason.startswith("forced open expired")
    assert snapshot.forced is None and snapshot.state is CircuitState.HALF_OPEN


def test_sticky_forced_open_uses_far_future() -> None:
    snapshot, _transition = force(CircuitSnapshot(), "open", None, "cli:ops", None, T0)
    assert snapshot.open_until == STICKY_UNTIL and to_iso(STICKY_UNTIL) == "9999-12-31T23:59:59Z"
    assert snapshot.forced_until is None
    assert on_probe_request(snapshot, BreakerPolicy(), "a", at(10**6))[1] is False


def test_forced_closed_until_expiry_then_normal() -> None:
    policy = BreakerPolicy(failure_threshold=2)
    snapshot = opened(policy)
    snapshot, transition = force(snapshot, "closed", at(100), "cli:ops", "false alarm", at(1))
    assert transition.kind == "forced_closed" and transition.from_state is CircuitState.OPEN
    assert snapshot.state is CircuitState.CLOSED and snapshot.consecutive_opens == 0
    snapshot, transitions = feed(snapshot, policy, [(t, FAIL) for t in range(10, 20)])
    assert snapshot.state is CircuitState.CLOSED and transitions == []
    snapshot, transitions = feed(snapshot, policy, [(100, FAIL), (101, FAIL)])
    assert snapshot.state is CircuitState.OPEN and snapshot.forced is None
    assert [t.kind for t in transitions] == ["opened"]


def test_force_always_reports_a_transition() -> None:
    snapshot, _ = force(CircuitSnapshot(), "open", None, "cli:a", None, T0)
    _, transition = force(snapshot, "open", at(60), "cli:b", "again", at(1))
    assert transition.from_state is CircuitState.OPEN and transition.to_state is CircuitState.OPEN


def test_noop_and_classify() -> None:
    assert is_noop(OK, BreakerPolicy())
    assert not is_noop(OK, BreakerPolicy(failure_rate=0.5))
    assert not is_noop(Outcome(True, probe=True), BreakerPolicy())
    assert not is_noop(Outcome(True, latency_ms=5000), BreakerPolicy(slow_call_ms=1000))
    assert classify(Outcome(False, "something_new"), BreakerPolicy()) == "failure"
    assert classify(Outcome(False, None), BreakerPolicy()) == "failure"


def test_window_data_stays_small() -> None:
    policy = BreakerPolicy(failure_threshold=1000, failure_rate=0.99, minimum_calls=1000, window_s=60)
    outcomes = [(i * 0.5, FAIL if i % 3 == 0 else OK) for i in range(2000)]
    snapshot, _ = feed(CircuitSnapshot(), policy, outcomes)
    assert len(snapshot.failures) <= 1000
    assert len(snapshot.calls) <= 11


def test_timefmt_round_trip() -> None:
    assert from_iso("2026-11-25T12:00:01Z") == at(1)
    assert to_iso(at(1.7)) == "2026-11-25T12:00:01Z"


# --- properties ---------------------------------------------------------------------------------------------

ERROR_CLASSES = [e.value for e in ErrorClass]
COUNTED = [e.value for e in ErrorClass if e.counts_against_circuit]
CLIENT = [e.value for e in ErrorClass if e.is_client_error]

policies = st.builds(
    BreakerPolicy,
    failure_threshold=st.integers(1, 8),
    failure_rate=st.one_of(st.none(), st.floats(0.1, 1.0)),
    minimum_calls=st.integers(1, 12),
    window_s=st.integers(1, 120),
    cooldown_s=st.integers(1, 300),
    max_cooldown_s=st.integers(1, 3000),
    half_open_probes=st.integers(1, 4),
    slow_call_ms=st.one_of(st.none(), st.integers(1, 5000)),
)
outcomes = st.builds(
    Outcome,
    success=st.booleans(),
    error_class=st.one_of(st.none(), st.sampled_from(ERROR_CLASSES)),
    latency_ms=st.integers(0, 10000),
    probe=st.booleans(),
    owner=st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
)
# a step: advance the clock, then either an outcome, a probe request, or a force
steps = st.tuples(
    st.floats(0, 90, allow_nan=False),
    st.one_of(
        outcomes,
        st.sampled_from(["a", "b", "c", "d"]),
        st.tuples(st.sampled_from(["open", "closed"]), st.one_of(st.none(), st.integers(1, 600))),
    ),
)


def run(
    policy: BreakerPolicy, script: list[tuple[float, object]]
) -> list[tuple[datetime, CircuitSnapshot, object, CircuitSnapshot, Transition | None]]:
    """Apply a script; yields (now, before, action, after, transition)."""
    trace: list[tuple[datetime, CircuitSnapshot, object, CircuitSnapshot, Transition | None]] = []
    snapshot = CircuitSnapshot()
    now = T0
    for delta, action in script:
        now = now + timedelta(seconds=delta)
        before = snapshot
        transition: Transition | None
        if isinstance(action, Outcome):
            snapshot, transition = on_outcome(snapshot, policy, action, now)
        elif isinstance(action, str):
            snapshot, _, transition = on_probe_request(snapshot, policy, action, now)
        else:
            state, seconds = action  # type: ignore[misc]
            until = now + timedelta(seconds=seconds) if seconds is not None else None
            snapshot, transition = force(snapshot, state, until, "cli:prop", None, now)
        trace.append((now, before, action, snapshot, transition))
    return trace


@settings(max_examples=300, deadline=None)
@given(policies, st.lists(steps, max_size=60))
def test_state_always_valid_and_transitions_consistent(policy: BreakerPolicy, script: list) -> None:
    for _, before, _, after, transition in run(policy, script):
        assert after.state in (CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN)
        if after.state is CircuitState.OPEN:
            assert after.open_until is not None
        if transition is not None:
            assert transition.from_state is before.state and transition.to_state is after.state
        elif after.state is not before.state:
            pytest.fail(f"state changed {before.state} → {after.state} without a transition")


@settings(max_examples=300, deadline=None)
@given(
    st.builds(
        BreakerPolicy,
        failure_threshold=st.integers(1, 8),
        window_s=st.integers(1, 120),
        slow_call_ms=st.one_of(st.none(), st.integers(1, 5000)),
    ),
    st.lists(st.tuples(st.floats(0, 30, allow_nan=False), outcomes), max_size=60),
)
def test_closed_never_opens_below_threshold(policy: BreakerPolicy, script: list) -> None:
    """Without a failure rate, opening needs `failure_threshold` counted failures inside the window."""
    counted: list[datetime] = []
    snapshot = CircuitSnapshot()
    now = T0
    for delta, outcome in script:
        now = now + timedelta(seconds=delta)
        if classify(outcome, policy) == "failure":
            counted.append(now)
        before = snapshot
        snapshot, _transition = on_outcome(snapshot, policy, outcome, now)
        if before.state is CircuitState.CLOSED and snapshot.state is CircuitState.OPEN:
            in_window = [t for t in counted if t > now - timedelta(seconds=policy.window_s)]
            assert len(in_window) >= policy.failure_threshold
            counted.clear()


@settings(max_examples=300, deadline=None)
@given(policies, st.integers(1, 600), st.lists(steps, max_size=60))
def test_forced_closed_never_opens_before_expiry(policy: BreakerPolicy, seconds: int, script: list) -> None:
    snapshot, _ = force(CircuitSnapshot(), "closed", at(seconds), "cli:x", None, T0)
    until = snapshot.forced_until
    assert until is not None
    now = T0
    for delta, action in script:
        if not isinstance(action, Outcome | str):
            continue  # no further operator forces in this property
        now = now + timedelta(seconds=delta)
        if isinstance(action, Outcome):
            snapshot, _ = on_outcome(snapshot, policy, action, now)
        else:
            snapshot, _, _ = on_probe_request(snapshot, policy, action, now)
        if now < until:
            assert snapshot.state is CircuitState.CLOSED


@settings(max_examples=300, deadline=None)
@given(policies, st.integers(0, 40))
def test_cooldown_capped_and_monotonic(policy: BreakerPolicy, opens: int) -> None:
    values = [cooldown_for(policy, n) for n in range(opens + 1)]
    assert all(v <= policy.max_cooldown_s for v in values)
    assert all(a <= b for a, b in itertools.pairwise(values))
    # and over a real reopen sequence
    policy = dataclasses.replace(policy, failure_rate=None, slow_call_ms=None)
    snapshot = opened(policy)
    seen = [snapshot.cooldown_s or 0]
    for _ in range(min(opens, 8)):
        assert snapshot.open_until is not None
        now = snapshot.open_until
        snapshot, _, _ = on_probe_request(snapshot, policy, "p", now)
        snapshot, _ = on_outcome(snapshot, policy, Outcome(False, "timeout", probe=True, owner="p"), now)
        seen.append(snapshot.cooldown_s or 0)
    assert all(v <= policy.max_cooldown_s for v in seen)
    assert all(a <= b for a, b in itertools.pairwise(seen))


@settings(max_examples=300, deadline=None)
@given(policies, st.lists(steps, max_size=80))
def test_at_most_half_open_probes_leases(policy: BreakerPolicy, script: list) -> None:
    for now, _, action, after, _ in run(policy, script):
        assert len(after.active_leases(now)) <= policy.half_open_probes
        if after.state is not CircuitState.HALF_OPEN:
            assert after.leases == ()
        del action


@settings(max_examples=300, deadline=None)
@given(policies, st.lists(steps, max_size=60), st.sampled_from(CLIENT), st.booleans(), st.floats(0, 90))
def test_client_errors_never_change_state(
    policy: BreakerPolicy, script: list, error_class: str, probe: bool, delta: float
) -> None:
    trace = run(policy, script)
    snapshot = trace[-1][3] if trace else CircuitSnapshot()
    now = (trace[-1][0] if trace else T0) + timedelta(seconds=delta)
    for owner in ("a", None):
        after, transition = on_outcome(
            snapshot, policy, Outcome(False, error_class, probe=probe, owner=owner), now
        )
        assert transition is None
        assert after.state is snapshot.state and after.open_until == snapshot.open_until
        assert after.failures == snapshot.failures and after.calls == snapshot.calls
