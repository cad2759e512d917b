"""Capacity-aware routing in the invoke step: an option at its per-minute capacity is `saturated`,
skipped without a provider call and without a failure on its circuit; the tokens taken before a
call are reconciled with what the provider reported; a usage table that is down admits the call.

The counters are the real use case (`CapacityCounters`) over the in-memory usage table, on a
clock the test moves: minute windows are crossed by moving the clock, not by sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.capacity import CapacityGuard, prompt_chars, request_tokens
from switchboard.circuits.policy import CircuitSnapshot, CircuitState, Outcome, on_outcome, on_probe_request
from switchboard.contract import metrics as metric_names
from switchboard.errors import ErrorClass, ProviderError
from switchboard.events import RecordingEventSink
from switchboard.invoking import CandidateInvoker, ProviderThrottled
from switchboard.options.model import BreakerPolicy, LlmOption, ProviderKind
from switchboard.providers.base import ChatRequest, ChatResult, EmbeddingRequest, Provider
from switchboard.quotas.model import DEFAULT_COMPLETION_RESERVE
from switchboard.quotas.service import CapacityCounters, CapacityTaken, option_pk
from tests.fakes.clock import ManualClock
from tests.fakes.usage_counters import InMemoryUsageCounters

T0 = datetime(2027, 1, 15, 8, 0, 10, tzinfo=UTC)
REQUEST = {"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 50}  # 10 + 50 tokens


def option(option_id: str = "opt-a", **overrides: Any) -> LlmOption:
    return LlmOption.from_dict({"id": option_id, "provider": "mock", "timeout_ms": 5000, **overrides})


class WallClock:
    """The invoker's clock, on the same manual time as the counters' minute windows."""

    def __init__(self, manual: ManualClock) -> None:
        self.manual = manual

    def wall_ms(self) -> float:
        return self.manual() * 1000

    def monotonic(self) -> float:
        return self.manual()


@dataclass
class Circuits:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def record(self, option_id: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"option_id": option_id, **kwargs})
        return {"transition": "none", "now": "2027-01-15T08:00:10Z"}


class Provider_:
    def __init__(self, *, error: ProviderError | None = None, prompt: int = 12, completion: int = 7) -> None:
        self.error, self.prompt, self.completion = error, prompt, completion
        self.calls: list[str] = []

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        self.calls.append(option.id)
        if self.error is not None:
            raise self.error
        return ChatResult("ok", "stop", prompt_tokens=self.prompt, completion_tokens=self.completion)


class Options:
    def __init__(self, *options: LlmOption) -> None:
        self.options = {o.id: o for o in options}

    def get(self, option_id: str) -> LlmOption | None:
        return self.options.get(option_id)


class Inline:
    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        return value

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


class BrokenCounters:
    """The usage table unreachable: every take and reconcile raises, as the DynamoDB adapter would."""

    def take(self, option_id: str, tokens: int, *, rpm: int | None, tpm: int | None) -> CapacityTaken | None:
        raise ConnectionError("usage table unreachable")

    def reconcile(self, taken: CapacityTaken, actual_tokens: int) -> None:
        raise ConnectionError("usage table unreachable")


@dataclass
class World:
    clock: ManualClock
    table: InMemoryUsageCounters
    circuits: Circuits
    provider: Provider_
    events: RecordingEventSink
    invoker: CandidateInvoker

    def invoke(self, option_id: str = "opt-a", *, probe: bool = False, request: Any = None) -> dict[str, Any]:
        event = {
            "option_id": option_id,
            "deadline_ms": self.clock() * 1000 + 20_000,
            "request": request or REQUEST,
            "request_id": "req-1",
            "probe": probe,
        }
        return self.invoker.invoke(event)

    def used(self, option_id: str = "opt-a") -> dict[str, Any]:
        """The option's counters in the current minute (rpm, tpm)."""
        minute = self.clock.utcnow().strftime("%Y-%m-%dT%H:%M")
        item = self.table.items.get((option_pk(option_id), f"capacity#{option_id}#{minute}"), {})
        return {k: item.get(k, 0) for k in ("rpm", "tpm")}


def world(*options: LlmOption, provider: Provider_ | None = None, counters: Any = "memory") -> World:
    clock, table = ManualClock(T0), InMemoryUsageCounters()
    port = CapacityCounters(table, clock=clock.utcnow) if counters == "memory" else counters
    circuits, events, provider = Circuits(), RecordingEventSink(), provider or Provider_()

    def providers(kind: ProviderKind) -> Provider:
        return provider

    invoker = CandidateInvoker(
        options=Options(*options),
        payloads=Inline(),
        circuits=circuits,
        providers=providers,
        events=events,
        clock=WallClock(clock),
        capacity=port,
    )
    return World(clock, table, circuits, provider, events, invoker)


def test_an_option_at_its_rpm_is_saturated_without_a_call_or_a_circuit_record() -> None:
    # Given an option that may take 2 requests a minute
    w = world(option(capacity={"rpm": 2}))
    # When three requests arrive in the same minute
    outcomes = [w.invoke() for _ in range(3)]
    # Then two were called and answered, the third is saturated without a provider call
    assert [o["ok"] for o in outcomes] == [True, True, False]
    assert w.provider.calls == ["opt-a", "opt-a"]
    third = outcomes[2]
    assert third["error"]["error_class"] == ErrorClass.SATURATED.value == "saturated"
    assert "rpm" in third["error"]["message"]
    assert third["transition"] == "none" and third["result"] is None
    # And the circuit heard only of the two successes (none of the saturation)
    assert [c["success"] for c in w.circuits.calls] == [True, True]
    # And the saturation is measured per option and per service, not as a provider error
    assert w.events.measured(metric_names.CANDIDATE_SATURATED)
    assert [m.option_id for m in w.events.measured(metric_names.CANDIDATE_SATURATED) if m.option_id] == [
        "opt-a"
    ]
    assert not [n for n in w.events.names() if n.startswith(metric_names.PROVIDER_ERROR_PREFIX)]


def test_the_next_minute_has_room_again() -> None:
    w = world(option(capacity={"rpm": 1}))
    assert w.invoke()["ok"] is True
    assert w.invoke()["error"]["error_class"] == "saturated"
    w.clock.advance(60)  # the next fixed minute window
    assert w.invoke()["ok"] is True
    assert w.provider.calls == ["opt-a", "opt-a"]


def test_tokens_taken_from_the_estimate_are_reconciled_with_the_reported_usage() -> None:
    # Given a token capacity and a provider that reports 12 + 7 tokens
    w = world(option(capacity={"tpm": 1000}), provider=Provider_(prompt=12, completion=7))
    # When one request (estimated at 10 prompt + 50 max_tokens) is answered
    assert w.invoke()["ok"] is True
    # Then the minute holds the real usage, not the estimate
    assert w.used() == {"rpm": 1, "tpm": 19}


def test_a_request_larger_than_the_tpm_is_saturated_on_tpm() -> None:
    w = world(option(capacity={"rpm": 100, "tpm": 59}))  # the request is estimated at 60
    out = w.invoke()
    assert out["error"]["error_class"] == "saturated" and "tpm" in out["error"]["message"]
    assert w.provider.calls == [] and w.used() == {"rpm": 0, "tpm": 0}


def test_a_failed_call_gives_its_tokens_back_and_keeps_its_request() -> None:
    error = ProviderError(ErrorClass.UNAVAILABLE, "503")
    w = world(option(capacity={"rpm": 5, "tpm": 1000}), provider=Provider_(error=error))
    out = w.invoke()
    assert out["error"]["error_class"] == "unavailable"
    assert w.used() == {"rpm": 1, "tpm": 0}  # the request reached the provider; it used no tokens
    assert [c["error_class"] for c in w.circuits.calls] == ["unavailable"]  # a real failure counts


def test_throttling_gives_the_tokens_back_before_the_workflow_retries() -> None:
    error = ProviderError(ErrorClass.THROTTLED, "slow down")
    w = world(option(capacity={"tpm": 1000}), provider=Provider_(error=error))
    with pytest.raises(ProviderThrottled):
        w.invoke()
    assert w.used() == {"rpm": 1, "tpm": 0}


def test_an_option_without_capacity_costs_no_counter() -> None:
    w = world(option())
    assert w.invoke()["ok"] is True
    assert w.table.items == {}


def test_a_usage_table_that_is_down_admits_the_call_and_says_so() -> None:
    w = world(option(capacity={"rpm": 1}), counters=BrokenCounters())
    outcomes = [w.invoke(), w.invoke()]
    assert [o["ok"] for o in outcomes] == [True, True]  # fail-open: nothing counted, both called
    (event,) = w.events.fields_of(metric_names.CAPACITY_STORE_UNAVAILABLE)[:1]
    assert event["option_id"] == "opt-a" and event["reason"] == "ConnectionError"


def test_a_saturated_probe_hands_its_lease_back_as_an_ignored_outcome() -> None:
    # Given a request that holds the half-open probe lease of a saturated option
    w = world(option(capacity={"rpm": 1}))
    w.invoke()
    # When it reaches the invoke step with probe=true
    out = w.invoke(probe=True)
    # Then no call, no transition, and the circuit is told "saturated" under the request's lease
    assert out["error"]["error_class"] == "saturated" and out["transition"] == "none"
    assert out["now"] == "2027-01-15T08:00:10Z"
    last = w.circuits.calls[-1]
    assert (last["success"], last["error_class"], last["probe"], last["owner"]) == (
        False,
        "saturated",
        True,
        "req-1",
    )


def test_the_breaker_frees_the_lease_of_a_saturated_probe_without_a_transition() -> None:
    """The claim `_release_probe` rests on, on the real policy: `saturated` is ignored but frees the lease."""
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=5, half_open_probes=1)
    opened = CircuitSnapshot(state=CircuitState.OPEN, open_until=T0)
    probing, granted, _ = on_probe_request(opened, policy, "req-1", T0)
    assert granted and probing.state is CircuitState.HALF_OPEN
    # Another request cannot probe while req-1 holds the only lease
    assert on_probe_request(probing, policy, "req-2", T0)[1] is False

    saturated = Outcome(success=False, error_class="saturated", probe=True, owner="req-1")
    released, transition = on_outcome(probing, policy, saturated, T0)

    assert transition is None and released.state is CircuitState.HALF_OPEN and released.leases == ()
    assert on_probe_request(released, policy, "req-2", T0)[1] is True
    assert not ErrorClass.SATURATED.counts_against_circuit and not ErrorClass.SATURATED.is_client_error


def test_embeddings_reserve_no_completion_and_count_token_arrays_as_tokens() -> None:
    texts = EmbeddingRequest.from_dict({"operation": "embeddings", "input": ["abcd" * 3, [1, 2, 3]]})
    assert prompt_chars(texts) == 12 + 3 * 4
    assert request_tokens(texts) == 6
    chat = ChatRequest.from_dict({"messages": [{"role": "user", "content": "abcd"}]})
    assert request_tokens(chat) == 1 + DEFAULT_COMPLETION_RESERVE


@given(
    chars=st.integers(min_value=0, max_value=10_000),
    max_tokens=st.one_of(st.none(), st.integers(min_value=0, max_value=100_000)),
)
def test_the_estimate_covers_the_prompt_and_the_answer(chars: int, max_tokens: int | None) -> None:
    request = ChatRequest.from_dict(
        {"messages": [{"role": "user", "content": "y" * chars}], "max_tokens": max_tokens}
    )
    completion = DEFAULT_COMPLETION_RESERVE if max_tokens is None else max_tokens
    assert request_tokens(request) >= chars / 4 + completion


def test_the_guard_never_raises_on_reconcile_failures() -> None:
    events = RecordingEventSink()
    guard = CapacityGuard(BrokenCounters(), events)
    from switchboard.capacity import Admission

    guard.settle(Admission(taken=CapacityTaken("opt-a", "capacity#opt-a#x", 5, 0)), 3)
    assert events.names() == [metric_names.CAPACITY_STORE_UNAVAILABLE]
