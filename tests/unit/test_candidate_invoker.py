"""The invoke step's use case on in-memory fakes: no AWS, no moto, no Powertools output."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.contract import metrics as metric_names
from switchboard.errors import ErrorClass, ProviderError
from switchboard.events import Measurement, RecordingEventSink
from switchboard.invoking import MIN_CALL_TIMEOUT_S, CandidateInvoker, ProviderThrottled, result_key
from switchboard.options.errors import OptionsUnavailable
from switchboard.options.model import BreakerPolicy, LlmOption, ProviderKind
from switchboard.providers.base import ChatRequest, ChatResult, Provider
from switchboard.state_budget import ANSWER_INLINE_LIMIT_BYTES

NOW_MS = 1_800_000_000_000.0  # 2027-01-15T08:00:00Z
REQUEST = {"messages": [{"role": "user", "content": "hi"}]}


def option(option_id: str = "opt-a", **overrides: Any) -> LlmOption:
    data: dict[str, Any] = {"id": option_id, "provider": "mock", "timeout_ms": 5000}
    data.update(overrides)
    return LlmOption.from_dict(data)


class FakeClock:
    def __init__(self) -> None:
        self.wall = NOW_MS
        self.mono = 100.0

    def wall_ms(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


class FakeOptions:
    def __init__(self, *options: LlmOption, down: bool = False) -> None:
        self.options = {o.id: o for o in options}
        self.down = down

    def get(self, option_id: str) -> LlmOption | None:
        if self.down:
            raise OptionsUnavailable("options table 'x' unreadable: ResourceNotFoundException")
        return self.options.get(option_id)


class FakePayloads:
    """Claim check in memory: `{"$ref": key}` for anything over the inline limit."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        if len(json.dumps(value, separators=(",", ":")).encode()) <= inline_limit:
            return value
        self.objects[key] = value
        return {"$ref": key}

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        return self.objects[value["$ref"]] if "$ref" in value else value


@dataclass
class FakeCircuits:
    calls: list[dict[str, Any]] = field(default_factory=list)
    answer: dict[str, Any] = field(
        default_factory=lambda: {"transition": "none", "now": "2027-01-15T08:00:01Z"}
    )

    def record(self, option_id: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"option_id": option_id, **kwargs})
        return dict(self.answer)


class FakeProvider:
    def __init__(self, clock: FakeClock, *, text: str = "hello", error: ProviderError | None = None) -> None:
        self.clock = clock
        self.text = text
        self.error = error
        self.calls: list[tuple[str, ChatRequest, float]] = []

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        self.calls.append((option.id, request, timeout_s))
        self.clock.mono += 0.25  # the call takes 250 ms
        if self.error is not None:
            raise self.error
        return ChatResult(text=self.text, finish_reason="stop", prompt_tokens=3, completion_tokens=1)


@dataclass
class World:
    clock: FakeClock
    options: FakeOptions
    payloads: FakePayloads
    circuits: FakeCircuits
    provider: FakeProvider
    events: RecordingEventSink
    kinds: list[ProviderKind]
    invoker: CandidateInvoker


def world(
    *options: LlmOption, down: bool = False, error: ProviderError | None = None, text: str = "hello"
) -> World:
    clock = FakeClock()
    provider = FakeProvider(clock, error=error, text=text)
    kinds: list[ProviderKind] = []

    def providers(kind: ProviderKind) -> Provider:
        kinds.append(kind)
        return provider

    fakes = (FakeOptions(*options, down=down), FakePayloads(), FakeCircuits(), RecordingEventSink())
    invoker = CandidateInvoker(
        options=fakes[0],
        payloads=fakes[1],
        circuits=fakes[2],
        providers=providers,
        events=fakes[3],
        clock=clock,
    )
    return World(clock, fakes[0], fakes[1], fakes[2], provider, fakes[3], kinds, invoker)


def event(option_id: str = "opt-a", *, left_ms: float = 20_000, **extra: Any) -> dict[str, Any]:
    return {
        "option_id": option_id,
        "deadline_ms": NOW_MS + left_ms,
        "request": REQUEST,
        "request_id": "req-1",
        **extra,
    }


REPLY_KEYS = {"ok", "result", "error", "latency_ms", "transition", "now", "adapter"}


def test_a_successful_call_answers_inline_records_the_success_and_measures_latency() -> None:
    # Given an option with its own breaker policy
    w = world(option(breaker={"failure_threshold": 7}))
    # When the step runs
    out = w.invoker.invoke(event(probe=True))
    # Then the answer is inline, with every key the ResultSelector reads
    assert set(out) == REPLY_KEYS
    assert out["ok"] is True and out["error"] is None and out["latency_ms"] == 250
    assert out["result"]["text"] == "hello"
    assert (out["transition"], out["now"]) == ("none", "2027-01-15T08:00:01Z")
    # And the provider got the option's timeout (the budget is larger) and the parsed request
    ((option_id, request, timeout_s),) = w.provider.calls
    assert (option_id, request, timeout_s) == ("opt-a", ChatRequest.from_dict(REQUEST), 5.0)
    assert w.kinds == [ProviderKind.MOCK]
    # And the circuit heard of the success, with the option's policy, owned by the request
    (call,) = w.circuits.calls
    assert call["success"] is True and call["probe"] is True and call["latency_ms"] == 250
    assert (call["request_id"], call["owner"]) == ("req-1", "req-1")
    assert call["policy"] == BreakerPolicy(failure_threshold=7)
    assert w.events.measurements == [
        Measurement(metric_names.PROVIDER_CALLS, "opt-a", 1),
        Measurement(metric_names.PROVIDER_LATENCY, "opt-a", 250),
    ]
    assert w.events.events == []


def test_a_large_answer_travels_by_reference_under_the_result_key() -> None:
    w = world(option(), text="x" * (ANSWER_INLINE_LIMIT_BYTES + 1))
    out = w.invoker.invoke(event())
    assert out["result"] == {"$ref": result_key("req-1", "opt-a")} == {"$ref": "results/req-1-opt-a.json"}
    assert w.payloads.objects["results/req-1-opt-a.json"]["text"].startswith("xxx")


def test_a_request_passed_by_reference_is_read_through_the_claim_check() -> None:
    w = world(option())
    w.payloads.objects["requests/req-1.json"] = {"messages": [{"role": "user", "content": "long"}]}
    w.invoker.invoke({**event(), "request": {"$ref": "requests/req-1.json"}})
    assert w.provider.calls[0][1].messages[0].content == "long"


def test_a_provider_failure_is_data_recorded_on_the_circuit_and_counted_by_class() -> None:
    w = world(option(), error=ProviderError(ErrorClass.UNAVAILABLE, "503 from upstream"))
    w.circuits.answer = {"transition": "opened", "now": "2027-01-15T08:00:02Z"}
    out = w.invoker.invoke(event())
    assert out == {
        "ok": False,
        "result": None,
        "error": {"error_class": "unavailable", "message": "503 from upstream"},
        "latency_ms": 250,
        "transition": "opened",
        "now": "2027-01-15T08:00:02Z",
        "adapter": None,
    }
    (call,) = w.circuits.calls
    assert (call["success"], call["error_class"], call["message"]) == (
        False,
        "unavailable",
        "503 from upstream",
    )
    assert w.events.measured("ProviderError_unavailable") == [
        Measurement("ProviderError_unavailable", None, 1),
        Measurement("ProviderError_unavailable", "opt-a", 1),
    ]


def test_throttling_raises_the_error_the_state_machine_retries_and_records_nothing() -> None:
    w = world(option(), error=ProviderError(ErrorClass.THROTTLED, "slow down"))
    with pytest.raises(ProviderThrottled, match="opt-a: slow down"):
        w.invoker.invoke(event())
    assert ProviderThrottled.__name__ == "ProviderThrottled"  # the ASL's Retry/Catch match this name
    assert w.circuits.calls == []
    assert [m.name for m in w.events.measurements][-1] == "ProviderError_throttled"


@pytest.mark.parametrize(
    ("options", "down", "expected_event"),
    [
        ((), False, None),
        ((option(status="retired"),), False, None),
        ((), True, metric_names.OPTIONS_CATALOGUE_UNAVAILABLE),
    ],
    ids=["unknown", "retired", "catalogue-down"],
)
def test_an_option_that_cannot_be_used_is_unavailable_without_a_call(
    options: tuple[LlmOption, ...], down: bool, expected_event: str | None
) -> None:
    w = world(*options, down=down)
    out = w.invoker.invoke(event())
    assert set(out) == REPLY_KEYS
    assert out["ok"] is False and out["error"]["error_class"] == "unavailable"
    assert (out["transition"], out["now"]) == ("none", "2027-01-15T08:00:00Z")
    assert w.provider.calls == [] and w.circuits.calls == []
    # The catalogue being down is a fail-open event: a named metric the alarms read.
    assert w.events.names() == ([expected_event] if expected_event else [])
    if expected_event:
        assert w.events.fields_of(expected_event)[0]["reason"] == "OptionsUnavailable"


def test_a_spent_budget_is_a_timeout_without_a_provider_call() -> None:
    w = world(option())
    out = w.invoker.invoke(event(left_ms=MIN_CALL_TIMEOUT_S * 1000 - 1))
    assert out["error"]["error_class"] == "timeout" and out["ok"] is False
    assert w.provider.calls == [] and w.circuits.calls == []


def test_without_a_circuit_table_nothing_is_recorded_and_now_comes_from_the_clock() -> None:
    w = world(option())
    invoker = CandidateInvoker(
        options=w.options,
        payloads=w.payloads,
        circuits=None,
        providers=lambda _kind: w.provider,
        events=w.events,
        clock=w.clock,
    )
    out = invoker.invoke(event())
    assert out["ok"] is True and (out["transition"], out["now"]) == ("none", "2027-01-15T08:00:00Z")


@given(
    timeout_ms=st.integers(min_value=100, max_value=300_000),
    left_ms=st.floats(min_value=MIN_CALL_TIMEOUT_S * 1000, max_value=900_000, allow_nan=False),
)
def test_the_provider_gets_the_smaller_of_its_timeout_and_the_time_left(
    timeout_ms: int, left_ms: float
) -> None:
    w = world(option(timeout_ms=timeout_ms))
    w.invoker.invoke(event(left_ms=left_ms))
    ((_, _, timeout_s),) = w.provider.calls
    assert timeout_s == pytest.approx(min(timeout_ms / 1000, left_ms / 1000))
    assert timeout_s <= timeout_ms / 1000
