"""Capacity-aware routing on the streaming path: StreamService takes an option's capacity before its
provider call, skips a saturated option without touching its circuit (log `outcome: saturated`),
and reconciles the tokens with the stream's final usage.

The real `CapacityCounters` over the in-memory usage table, on the harness's manual clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from switchboard.circuits.policy import CircuitSnapshot, CircuitState
from switchboard.contract import metrics as metric_names
from switchboard.errors import ServiceUnavailable
from switchboard.options.model import LlmOption
from switchboard.quotas.service import CapacityCounters, CapacityTaken, capacity_sk, option_pk
from switchboard.streaming import StreamAnswer, StreamService
from tests.fakes.usage_counters import InMemoryUsageCounters
from tests.unit.test_stream_service import BREAKER, ROUTE, Harness, _events, _text


def _option(oid: str, capacity: dict[str, int] | None = None) -> LlmOption:
    data: dict[str, Any] = {
        "id": oid,
        "provider": "mock",
        "model": "m",
        "timeout_ms": 5000,
        "breaker": BREAKER,
    }
    if capacity is not None:
        data["capacity"] = capacity
    return LlmOption.from_dict(data)


class DownCounters:
    def take(self, option_id: str, tokens: int, *, rpm: int | None, tpm: int | None) -> CapacityTaken | None:
        raise TimeoutError("usage table")

    def reconcile(self, taken: CapacityTaken, actual_tokens: int) -> None:
        raise TimeoutError("usage table")


class CapacityHarness(Harness):
    """The stream harness, its StreamService given the capacity port."""

    def __init__(self, capacities: dict[str, dict[str, int]], *, port: Any = None, **kwargs: Any) -> None:
        options = [_option(oid, capacities.get(oid)) for oid in ("a", "b", "s")]
        super().__init__(options=options, **kwargs)
        self.table = InMemoryUsageCounters()
        planner = self.service._planner  # the harness's ChatService, reused as it is
        self.service = StreamService(
            planner=planner,
            circuits=self.circuits,
            providers=lambda kind: self.provider,
            payloads=self.payloads,
            events=self.events,
            cache=self.cache,
            clock=self.clock,
            monotonic=self.clock,
            logger=self.logger,
            capacity=port or CapacityCounters(self.table, clock=self.clock.utcnow),
        )

    def used(self, oid: str) -> dict[str, int]:
        item = self.table.items.get((option_pk(oid), capacity_sk(oid, self.clock.utcnow())), {})
        return {k: int(item.get(k, 0)) for k in ("rpm", "tpm")}

    def candidates(self) -> list[dict[str, Any]]:
        return list(self.logger.records[-1][1]["stream"]["candidates"])


def _drain(answer: StreamAnswer) -> list[Any]:
    return _events(answer)


def test_a_saturated_option_is_skipped_without_a_call_or_a_circuit_record() -> None:
    h = CapacityHarness({"a": {"rpm": 1}})
    first = h.open()
    _drain(first)
    second = h.open()
    events = _drain(second)

    assert first.headers["x-switchboard-option"] == "a"
    assert second.headers["x-switchboard-option"] == "b" and "[b]" in _text(events)
    assert h.provider.calls == ["a", "b"]  # a was not called the second time
    assert h.candidates()[0] == {
        "option_id": "a",
        "phase": "primary",
        "circuit": "CLOSED",
        "outcome": "saturated",
        "error_class": "saturated",
    }
    assert "a" not in h.ledger.snapshots and h.ledger.transitions == []  # nothing on a's circuit
    assert h.measured(metric_names.CANDIDATE_SATURATED) == ["a", None]  # per option, per service
    assert h.measured(metric_names.STREAM_FAILED_OVER) == []  # a skip, not a failover


def test_the_tokens_taken_are_reconciled_with_the_streams_final_usage() -> None:
    h = CapacityHarness({"a": {"tpm": 100_000}})
    answer = h.open(max_tokens=500)
    estimate = h.used("a")["tpm"]
    assert estimate == 1 + 500  # "hi" (1 token) + max_tokens, taken before the call
    _drain(answer)
    # The default script reports usage (3 prompt, 3 completion): the estimate is replaced by it.
    assert h.used("a") == {"rpm": 1, "tpm": 6}


def test_a_failure_before_the_first_token_gives_the_tokens_back() -> None:
    from switchboard.errors import ErrorClass, ProviderError

    h = CapacityHarness({"a": {"tpm": 100_000}}, scripts={"a": [ProviderError(ErrorClass.UNAVAILABLE, "x")]})
    _drain(h.open())
    assert h.used("a") == {"rpm": 1, "tpm": 0}
    assert h.ledger.snapshots["a"].failures  # a real failure still counts on the circuit


def test_a_whole_chain_saturated_runs_the_degrade_policy() -> None:
    route = {**ROUTE, "degrade": ["smaller_model", "static", "reject"]}
    h = CapacityHarness({oid: {"rpm": 1} for oid in ("a", "b", "s")}, route=route)
    served = []
    for _ in range(4):
        answer = h.open()
        _drain(answer)
        served.append((answer.headers["x-switchboard-option"], answer.headers.get("x-switchboard-degraded")))
    assert served == [("a", None), ("b", None), ("s", "smaller_model"), ("static", "static")]
    assert [c["outcome"] for c in h.candidates()] == ["saturated"] * 3
    assert h.ledger.transitions == [] and h.ledger.writes == 0


def test_a_whole_chain_saturated_with_reject_is_a_503_naming_saturation() -> None:
    route = {**ROUTE, "degrade": ["reject"]}
    h = CapacityHarness({"a": {"rpm": 1}, "b": {"rpm": 1}}, route=route)
    _drain(h.open())
    _drain(h.open())
    with pytest.raises(ServiceUnavailable) as refused:
        h.open()
    assert "saturated" in refused.value.message
    # capacity comes back with the next minute: that, not a circuit's reopening, is the Retry-After
    now = h.clock.utcnow()
    assert refused.value.headers["Retry-After"] == str(
        60 - now.second if now.microsecond == 0 else 59 - now.second
    )


def test_a_saturated_probe_hands_its_lease_back() -> None:
    h = CapacityHarness({"a": {"rpm": 1}})
    other = CapacityCounters(h.table, clock=h.clock.utcnow)
    assert other.take("a", 1, rpm=1, tpm=None) is not None  # another instance used a's minute
    h.ledger.snapshots["a"] = CircuitSnapshot(
        state=CircuitState.OPEN, open_until=h.clock.utcnow() - timedelta(seconds=1)
    )

    answer = h.open()
    _drain(answer)

    assert answer.headers["x-switchboard-option"] == "b"
    first = h.candidates()[0]
    assert (first["outcome"], first["probe"], first["circuit"]) == ("saturated", True, "OPEN")
    circuit = h.ledger.snapshots["a"]
    assert circuit.state is CircuitState.HALF_OPEN and circuit.leases == ()  # free for the next prober
    assert [t.kind for _, t in h.ledger.transitions] == ["half_opened"]  # from the probe request only


def test_a_usage_table_that_is_down_lets_the_stream_through() -> None:
    h = CapacityHarness({"a": {"rpm": 1}}, port=DownCounters())
    for _ in range(2):
        answer = h.open()
        _drain(answer)
        assert answer.headers["x-switchboard-option"] == "a"
    assert len(h.events.fields_of(metric_names.CAPACITY_STORE_UNAVAILABLE)) == 2
