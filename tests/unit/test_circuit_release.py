"""Releasing an operator's force: the circuit takes the path an expired force takes, at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchboard.circuits.policy import (
    TRANSITION_RELEASED,
    CircuitSnapshot,
    CircuitState,
    Outcome,
    force,
    on_outcome,
    on_probe_request,
    release,
)
from switchboard.circuits.timefmt import STICKY_UNTIL
from switchboard.options.model import BreakerPolicy

T0 = datetime(2026, 11, 25, 12, 0, 0, 250_000, tzinfo=UTC)
POLICY = BreakerPolicy(failure_threshold=2, cooldown_s=30)
FAIL = Outcome(success=False, error_class="unavailable")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_released_sticky_open_lets_the_next_request_probe() -> None:
    forced, _ = force(CircuitSnapshot(), "open", None, "cli:ops", "incident", at(0))
    assert forced.open_until == STICKY_UNTIL
    # Before the release no probe gets through, however long it has been.
    assert on_probe_request(forced, POLICY, "req-1", at(3600))[1] is False

    released, transition = release(forced, "cli:ops", "provider healthy", at(3600))
    assert transition is not None
    assert transition.kind == TRANSITION_RELEASED
    assert transition.from_state is transition.to_state is CircuitState.OPEN
    assert transition.reason == "forced open released: provider healthy"
    # Whole seconds, as the table stores them (the ASL compares `open_until` as written).
    assert released.open_until == released.forced_until == at(3600).replace(microsecond=0)
    assert released.forced_active(at(3600)) is None

    probed, granted, half_opened = on_probe_request(released, POLICY, "req-2", at(3601))
    assert granted and probed.state is CircuitState.HALF_OPEN
    assert half_opened is not None and half_opened.reason.startswith("forced open expired")


def test_released_forced_close_counts_failures_again() -> None:
    forced, _ = force(CircuitSnapshot(), "closed", at(600), "cli:ops", None, at(0))
    # While forced closed, failures never open it.
    held = forced
    for i in range(5):
        held, transition = on_outcome(held, POLICY, FAIL, at(1 + i))
        assert transition is None and held.state is CircuitState.CLOSED

    released, transition = release(held, "cli:ops", None, at(10))
    assert transition is not None and transition.to_state is CircuitState.CLOSED
    assert transition.reason == "forced closed released: operator"
    assert transition.open_until is None

    snapshot = released
    kinds = []
    for i in range(POLICY.failure_threshold):
        snapshot, transition = on_outcome(snapshot, POLICY, FAIL, at(11 + i))
        kinds.append(transition.kind if transition else None)
    assert kinds[-1] == "opened" and snapshot.state is CircuitState.OPEN


@pytest.mark.parametrize(
    "snapshot",
    [
        CircuitSnapshot(),
        # A force that has already expired is not in effect: nothing to release.
        force(CircuitSnapshot(), "open", at(60), "cli:ops", None, at(0))[0],
    ],
    ids=["never-forced", "force-expired"],
)
def test_nothing_to_release(snapshot: CircuitSnapshot) -> None:
    unchanged, transition = release(snapshot, "cli:ops", None, at(120))
    assert transition is None and unchanged is snapshot
