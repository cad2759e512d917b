"""CircuitService on the in-memory fakes: the dicts the workflow's Choice states read, the policy it
picks, the transitions it reports. The DynamoDB store under it is tested against moto in
``tests/integration/test_circuit_store.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from switchboard.circuits.policy import Transition
from switchboard.circuits.service import CircuitService
from switchboard.options.model import BreakerPolicy, LlmOption
from tests.fakes import InMemoryCircuits, InMemoryOptions, ManualClock

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def _option(oid: str, **breaker: Any) -> LlmOption:
    return LlmOption.from_dict({"id": oid, "provider": "mock", "breaker": breaker})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def circuits(clock: ManualClock) -> InMemoryCircuits:
    return InMemoryCircuits(clock.utcnow)


def _service(
    circuits: InMemoryCircuits,
    options: InMemoryOptions | None,
    seen: list[tuple[str, Transition]] | None = None,
) -> CircuitService:
    hook = (lambda oid, t: seen.append((oid, t))) if seen is not None else (lambda *_: None)
    return CircuitService(circuits, options, on_transition=hook)


def test_results_carry_every_key_the_choice_states_read_and_follow_the_option_policy(
    circuits: InMemoryCircuits, clock: ManualClock
) -> None:
    service = _service(circuits, InMemoryOptions([_option("known", failure_threshold=1)]))

    result = service.record_failure("known", request_id="r1", error_class="timeout", message="slow")

    assert result == {
        "transition": "opened",
        "state": "OPEN",
        "open_until": "2026-11-25T12:00:30Z",
        "now": "2026-11-25T12:00:00Z",
    }
    # an unknown option breaks with the default policy (threshold 5): one failure does not open
    result = service.record_failure("unknown", request_id="r2", error_class="timeout")
    assert result["transition"] == "none" and result["state"] == "CLOSED" and result["open_until"] is None
    refused = service.acquire_probe("known", request_id="r3")
    assert refused == {
        "granted": False,
        "state": "OPEN",
        "open_until": "2026-11-25T12:00:30Z",
        "now": "2026-11-25T12:00:00Z",
    }
    clock.advance(30)
    probe = service.acquire_probe("known", request_id="r4")
    assert probe["granted"] is True and probe["state"] == "HALF_OPEN"
    closed = service.record("known", success=True, probe=True, request_id="r4", latency_ms=10)
    assert closed["transition"] == "closed" and closed["state"] == "CLOSED"
    assert [t.kind for _, t in circuits.transitions] == ["opened", "half_opened", "closed"]


def test_a_failure_under_the_requests_own_probe_lease_reopens_without_saying_probe(
    circuits: InMemoryCircuits, clock: ManualClock
) -> None:
    service = _service(circuits, InMemoryOptions([_option("o", failure_threshold=1)]))
    service.record_failure("o", request_id="r1")
    clock.advance(30)
    assert service.acquire_probe("o", request_id="prober")["granted"] is True

    reopened = service.record_failure("o", request_id="prober")  # no probe=True: the owner says it

    assert reopened["transition"] == "reopened" and reopened["state"] == "OPEN"


def test_without_a_catalogue_the_default_policy_breaks(circuits: InMemoryCircuits) -> None:
    for service in (_service(circuits, None), _service(circuits, InMemoryOptions(unavailable=True))):
        assert service.policy_for("any") == BreakerPolicy()
    service = _service(circuits, InMemoryOptions(unavailable=True))
    results = [service.record_failure("o", request_id=f"r{i}")["transition"] for i in range(5)]
    assert results == ["none"] * 4 + ["opened"]


def test_an_explicit_policy_wins_over_the_catalogue(circuits: InMemoryCircuits) -> None:
    service = _service(circuits, InMemoryOptions([_option("o", failure_threshold=5)]))
    assert service.record_failure("o", request_id="r1")["transition"] == "none"
    opened = service.record("o", success=False, request_id="r2", policy=BreakerPolicy(failure_threshold=1))
    assert opened["transition"] == "opened"


def test_every_transition_reaches_the_hook_and_a_failing_hook_breaks_nothing(
    circuits: InMemoryCircuits, clock: ManualClock
) -> None:
    seen: list[tuple[str, Transition]] = []
    service = _service(circuits, InMemoryOptions([_option("o", failure_threshold=1)]), seen)
    service.record_failure("o", request_id="r1")
    clock.advance(30)
    service.acquire_probe("o", request_id="r2")
    assert [(oid, t.kind) for oid, t in seen] == [("o", "opened"), ("o", "half_opened")]

    def broken(_option_id: str, _transition: Transition) -> None:
        raise RuntimeError("metrics backend down")

    failing = CircuitService(
        circuits, InMemoryOptions([_option("o", failure_threshold=1)]), on_transition=broken
    )
    assert failing.record("o", success=True, probe=True, request_id="r2")["transition"] == "closed"


def test_a_plain_success_writes_nothing(circuits: InMemoryCircuits) -> None:
    service = _service(circuits, InMemoryOptions([_option("o")]))
    result = service.record("o", success=True, request_id="r1", latency_ms=5)
    assert result["transition"] == "none" and result["state"] == "CLOSED" and circuits.writes == 0
