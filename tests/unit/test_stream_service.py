"""StreamService on fakes: the walk, the circuits, the degrade policy and the bytes of the stream."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.api_models import ChatCompletionRequest
from switchboard.chat import Caller, ChatService
from switchboard.circuits.policy import CircuitSnapshot, CircuitState
from switchboard.circuits.service import CircuitService
from switchboard.contract import metrics as metric_names
from switchboard.errors import (
    ErrorClass,
    Forbidden,
    InvalidRequest,
    ProviderError,
    RouteNotFound,
    ServiceUnavailable,
)
from switchboard.events import RecordingEventSink
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatRequest,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    ToolCallDelta,
)
from switchboard.streaming import DONE, CachedAnswer, StreamAnswer, StreamService, stream_deadlines
from tests.fakes import (
    FixedCircuits,
    InMemoryCircuits,
    InMemoryOptions,
    InMemoryPayloads,
    ManualClock,
    ScriptedRunner,
    StaticRouting,
)

ROUTE = {
    "enabled": True,
    "chain": ["a", "b"],
    "degrade": ["smaller_model", "cache", "static", "reject"],
    "smaller_chain": ["s"],
    "static_answer": "busy now",
    "_variant": "default",
}
CALLER = Caller(tenant="acme", tier="standard")
BREAKER = {
    "failure_threshold": 2,
    "window_s": 60,
    "cooldown_s": 30,
    "max_cooldown_s": 30,
    "half_open_probes": 1,
}
Script = Sequence[StreamDelta | ProviderError]


def _option(oid: str, **params: Any) -> LlmOption:
    return LlmOption.from_dict(
        {
            "id": oid,
            "provider": "mock",
            "model": "m",
            "timeout_ms": 5000,
            "params": params,
            "breaker": BREAKER,
        }
    )


def _words(text: str, finish: str = "stop") -> list[StreamDelta | ProviderError]:
    pieces: list[StreamDelta | ProviderError] = [StreamDelta(text=w + " ") for w in text.split()]
    return [*pieces, StreamDelta(finish_reason=finish, usage=StreamUsage(3, len(pieces)))]  # type: ignore[arg-type]


class ScriptedStreams:
    """A streaming provider answering each option from its script: deltas, or a ProviderError raised
    at that point. Records the calls, the deadlines given and whether each stream was closed."""

    def __init__(self, scripts: dict[str, Script]) -> None:
        self.scripts = scripts
        self.calls: list[str] = []
        self.deadlines: dict[str, StreamDeadlines] = {}
        self.closed: list[str] = []

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        self.calls.append(option.id)
        self.deadlines[option.id] = deadlines
        try:
            for item in self.scripts.get(option.id, _words(f"[{option.id}] hello there")):
                if isinstance(item, ProviderError):
                    raise item
                yield item
        finally:
            self.closed.append(option.id)


class FakeCache:
    def __init__(self, answer: CachedAnswer | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, int]] = []

    def get(self, cache_key: str, *, tenant: str, now_epoch_s: int) -> CachedAnswer | None:
        self.asked.append((cache_key, tenant, now_epoch_s))
        return self.answer


class RecordingLogger:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.records.append((msg, kwargs.get("extra", {})))


class Harness:
    def __init__(
        self,
        scripts: dict[str, Script] | None = None,
        *,
        route: dict[str, Any] | None = None,
        flags: dict[str, Any] | None = None,
        cache: CachedAnswer | None = None,
        options: list[LlmOption] | None = None,
    ) -> None:
        self.clock = ManualClock()
        self.ledger = InMemoryCircuits(self.clock.utcnow)
        self.circuits = CircuitService(self.ledger, None, on_transition=lambda *_: None)
        self.provider = ScriptedStreams(scripts or {})
        self.events = RecordingEventSink()
        self.logger = RecordingLogger()
        self.cache = FakeCache(cache)
        self.payloads = InMemoryPayloads()
        catalogue = InMemoryOptions(options if options is not None else [_option(i) for i in ("a", "b", "s")])
        planner = ChatService(
            routing=StaticRouting({"chat": route or ROUTE, **(flags or {})}),
            options=catalogue,
            runner=ScriptedRunner({}),
            payloads=self.payloads,
            circuits=FixedCircuits(self.clock.utcnow() + timedelta(seconds=7)),
            clock=self.clock,
        )
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
        )

    def open(self, **body: Any) -> StreamAnswer:
        request = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True, **body}
        return self.service.open(ChatCompletionRequest.model_validate(request), CALLER, "req-1")

    def measured(self, name: str) -> list[str | None]:
        return [m.option_id for m in self.events.measured(name)]


def _events(answer: StreamAnswer) -> list[Any]:
    """The SSE events of a stream: parsed JSON, or the string `[DONE]`."""
    raw = b"".join(answer.chunks)
    assert raw.endswith(b"\n\n")
    events = []
    for block in raw.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ")
        data = block[len(b"data: ") :]
        events.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return events


def _text(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )


# -- the happy path and the bytes


def test_stream_is_openai_chunks_then_done_and_headers_name_the_option() -> None:
    h = Harness()
    answer = h.open()
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.headers["x-switchboard-option"] == "a"
    assert (
        answer.headers["x-switchboard-route"] == "chat"
        and answer.headers["x-switchboard-variant"] == "default"
    )
    events = _events(answer)
    assert events[-1] == "[DONE]"
    first, *_, last = events[:-1]
    assert first["object"] == "chat.completion.chunk" and first["id"] == "chatcmpl-req-1"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert last["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert _text(events) == "[a] hello there "
    assert all("usage" not in e for e in events[:-1])
    assert h.measured(metric_names.STREAMED_REQUESTS) == [None]
    # Per option (drill-down) and per service (the dashboard's row).
    assert h.measured(metric_names.STREAM_TIME_TO_FIRST_TOKEN) == ["a", None]
    assert h.provider.closed == ["a"]


def test_include_usage_sends_usage_null_then_a_last_chunk_with_empty_choices() -> None:
    events = _events(Harness().open(stream_options={"include_usage": True}))
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert all(e["usage"] is None for e in events[:-2])


def test_tool_call_deltas_carry_index_id_type_and_name_once_then_argument_pieces() -> None:
    script: Script = [
        StreamDelta(tool_calls=(ToolCallDelta(index=0, id="call_1", name="get_weather"),)),
        StreamDelta(tool_calls=(ToolCallDelta(index=0, arguments='{"city":'),)),
        StreamDelta(tool_calls=(ToolCallDelta(index=0, arguments=' "Paris"}'),)),
        StreamDelta(finish_reason="tool_calls"),
    ]
    events = _events(Harness({"a": script}).open())
    calls = [e["choices"][0]["delta"]["tool_calls"][0] for e in events[1:-2]]
    assert calls[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert calls[1:] == [
        {"index": 0, "function": {"arguments": '{"city":'}},
        {"index": 0, "function": {"arguments": ' "Paris"}'}},
    ]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


# -- failover before the first byte, failure after it


def test_a_failure_before_the_first_content_moves_on_invisibly_and_counts_on_the_circuit() -> None:
    h = Harness({"a": [StreamDelta(usage=None), ProviderError(ErrorClass.UNAVAILABLE, "down")]})
    answer = h.open()
    assert answer.headers["x-switchboard-option"] == "b"
    events = _events(answer)
    assert _text(events) == "[b] hello there " and events[-1] == "[DONE]"
    assert h.measured(metric_names.STREAM_FAILED_OVER) == ["a", None]
    assert h.ledger.snapshots["a"].failures  # the failure was recorded on a's circuit
    record = h.logger.records[-1][1]["stream"]
    assert [(c["option_id"], c["outcome"]) for c in record["candidates"]] == [
        ("a", "failed_before_first_token"),
        ("b", "answered"),
    ]
    assert record["ended"] == "done" and record["bytes_sent"] > 0


def test_a_stream_that_ends_without_content_is_malformed_and_moves_on() -> None:
    h = Harness({"a": []})
    assert h.open().headers["x-switchboard-option"] == "b"
    assert h.measured(metric_names.provider_error("malformed")) == ["a"]


def test_a_failure_after_the_first_content_is_an_error_event_and_no_done() -> None:
    h = Harness({"a": [StreamDelta(text="one "), ProviderError(ErrorClass.TIMEOUT, "idle")]})
    events = _events(h.open())
    assert "[DONE]" not in events
    assert _text(events) == "one "
    assert events[-1]["error"]["code"] == "upstream_failed"
    assert "timeout" in events[-1]["error"]["message"]
    assert h.measured(metric_names.STREAM_FAILED_MID_STREAM) == ["a", None]
    assert h.provider.calls == ["a"]  # nothing after the first byte can hide the cut
    assert h.ledger.snapshots["a"].failures
    assert h.logger.records[-1][1]["stream"]["ended"] == "error_event"


def test_a_streamed_answer_that_breaks_the_schema_ends_with_an_error_event_on_the_circuit() -> None:
    """The whole-answer checks (`switchboard.answers`) run at the stream's end: prose for a schema
    is `malformed`, after bytes were sent, so an error event and no [DONE]."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "count", "schema": schema}}
    h = Harness({"a": [StreamDelta(text="Sure, "), StreamDelta(text="here.", finish_reason="stop")]})
    events = _events(h.open(response_format=fmt))
    assert "[DONE]" not in events and events[-1]["error"]["code"] == "upstream_failed"
    assert "malformed" in events[-1]["error"]["message"]
    assert h.ledger.snapshots["a"].failures

    good = Harness({"a": [StreamDelta(text='{"n": '), StreamDelta(text="3}", finish_reason="stop")]})
    assert _events(good.open(response_format=fmt))[-1] == "[DONE]"


def test_a_stream_that_stops_without_a_finish_reason_is_never_a_clean_end() -> None:
    events = _events(Harness({"a": [StreamDelta(text="half ")]}).open())
    assert "[DONE]" not in events and "finish reason" not in _text(events)
    assert events[-1]["error"]["code"] == "upstream_failed"


def test_a_client_that_goes_away_closes_the_provider_stream() -> None:
    h = Harness()
    answer = h.open()
    next(answer.chunks)
    answer.chunks.close()  # type: ignore[attr-defined]
    assert h.provider.closed == ["a"]
    assert h.logger.records[-1][1]["stream"]["ended"] == "client_closed"


# -- circuits, as the workflow reads them


def test_an_open_circuit_is_skipped_without_a_call() -> None:
    h = Harness()
    until = h.clock.utcnow() + timedelta(seconds=30)
    h.ledger.snapshots["a"] = CircuitSnapshot(state=CircuitState.OPEN, open_until=until)
    answer = h.open()
    assert answer.headers["x-switchboard-option"] == "b"
    _events(answer)
    assert h.provider.calls == ["b"]
    first = h.logger.records[-1][1]["stream"]["candidates"][0]
    assert first == {"option_id": "a", "phase": "primary", "circuit": "OPEN", "outcome": "skipped_open"}


def test_an_open_circuit_past_its_cooldown_gets_one_probe_which_closes_it() -> None:
    h = Harness()
    until = h.clock.utcnow() - timedelta(seconds=1)
    h.ledger.snapshots["a"] = CircuitSnapshot(state=CircuitState.OPEN, open_until=until)
    events = _events(h.open())
    assert events[-1] == "[DONE]" and h.provider.calls == ["a"]
    assert h.ledger.snapshots["a"].state is CircuitState.CLOSED
    assert h.logger.records[-1][1]["stream"]["candidates"][0]["probe"] is True


def test_a_half_open_circuit_whose_probe_is_taken_is_skipped() -> None:
    h = Harness()
    lease = ("someone-else", h.clock.utcnow() + timedelta(seconds=20))
    h.ledger.snapshots["a"] = CircuitSnapshot(state=CircuitState.HALF_OPEN, leases=(lease,))
    assert h.open().headers["x-switchboard-option"] == "b"
    assert h.provider.calls == ["b"]


def test_repeated_failures_before_the_first_token_open_the_circuit() -> None:
    h = Harness({"a": [ProviderError(ErrorClass.UNAVAILABLE, "down")]})
    for _ in range(3):
        _events(h.open())
    assert h.ledger.snapshots["a"].state is CircuitState.OPEN
    assert h.provider.calls == ["a", "b", "a", "b", "b"]


# -- the degrade policy


DEAD: Script = [ProviderError(ErrorClass.UNAVAILABLE, "down")]


def test_chain_exhausted_streams_the_smaller_model_with_the_header() -> None:
    h = Harness({"a": DEAD, "b": DEAD})
    answer = h.open()
    assert answer.headers["x-switchboard-degraded"] == "smaller_model"
    assert answer.headers["x-switchboard-option"] == "s"
    assert _text(_events(answer)) == "[s] hello there "


def test_then_the_cached_answer_of_this_tenant_as_a_short_stream() -> None:
    cached = CachedAnswer(
        "a", {"text": "cached words", "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 2}
    )
    h = Harness({"a": DEAD, "b": DEAD, "s": DEAD}, cache=cached)
    answer = h.open(stream_options={"include_usage": True})
    assert (
        answer.headers["x-switchboard-degraded"] == "cache" and answer.headers["x-switchboard-option"] == "a"
    )
    events = _events(answer)
    assert _text(events) == "cached words" and events[-1] == "[DONE]"
    assert events[-2]["usage"]["completion_tokens"] == 2
    key, tenant, _ = h.cache.asked[0]
    assert tenant == "acme" and key.startswith("acme")


def test_then_the_static_answer() -> None:
    h = Harness({"a": DEAD, "b": DEAD, "s": DEAD})
    answer = h.open()
    assert answer.headers["x-switchboard-degraded"] == "static"
    events = _events(answer)
    assert _text(events) == "busy now" and events[-1] == "[DONE]"
    assert h.logger.records[-1][1]["stream"]["degraded"] == "static"


def test_reject_is_a_503_with_retry_after_before_any_byte() -> None:
    h = Harness({"a": DEAD, "b": DEAD}, route={**ROUTE, "degrade": ["reject"]})
    with pytest.raises(ServiceUnavailable) as raised:
        h.open()
    assert raised.value.headers["Retry-After"] == "7"
    assert raised.value.headers["x-switchboard-route"] == "chat"
    assert "last error: unavailable" in raised.value.message
    assert h.logger.records[-1][1]["stream"]["ended"] == "refused:503"


def test_force_degraded_skips_the_chain() -> None:
    h = Harness(
        flags={"force-degraded": {"enabled": True, "routes": ["chat"]}},
        route={**ROUTE, "degrade": ["static"]},
    )
    answer = h.open()
    assert answer.headers["x-switchboard-degraded"] == "static"
    assert h.provider.calls == []


def test_a_model_rejecting_the_request_is_a_400_before_any_byte() -> None:
    h = Harness({"a": [ProviderError(ErrorClass.BAD_REQUEST, "nope")]})
    with pytest.raises(InvalidRequest) as raised:
        h.open()
    assert raised.value.code == "provider_rejected_request"
    assert raised.value.headers["x-switchboard-option"] == "a"
    assert h.provider.calls == ["a"]


def test_the_context_fallback_answers_a_context_too_long() -> None:
    route = {**ROUTE, "context_fallback": "s"}
    h = Harness({"a": [ProviderError(ErrorClass.CONTEXT_TOO_LONG, "long")]}, route=route)
    answer = h.open()
    assert answer.headers["x-switchboard-option"] == "s"
    assert answer.headers["x-switchboard-fallback"] == "context"


def test_request_errors_are_raised_before_any_work() -> None:
    h = Harness()
    with pytest.raises(RouteNotFound):
        h.open(model="nope")
    restricted = Caller(tenant="acme", tier="standard", allowed_routes=("other",))
    body = ChatCompletionRequest.model_validate(
        {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    with pytest.raises(Forbidden):
        h.service.open(body, restricted, "req-2")
    assert h.provider.calls == []
    assert [r[1]["stream"]["ended"] for r in h.logger.records] == ["refused:404", "refused:403"]


def test_the_whole_request_path_still_refuses_stream_true() -> None:
    h = Harness()
    body = ChatCompletionRequest.model_validate(
        {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    with pytest.raises(InvalidRequest) as raised:
        h.service._planner.prepare(body, CALLER, "req-3")
    assert raised.value.code == "stream_not_supported"


# -- deadlines


def test_deadlines_come_from_the_option_params_and_the_budget() -> None:
    fast = _option("a", first_token_timeout_ms=800, idle_timeout_ms=1500)
    assert stream_deadlines(fast, 20.0) == StreamDeadlines(first_token_s=0.8, idle_s=1.5, total_s=20.0)
    plain = _option("b")
    assert stream_deadlines(plain, 2.0) == StreamDeadlines(first_token_s=2.0, idle_s=5.0, total_s=2.0)
    h = Harness(options=[fast, _option("b"), _option("s")])
    _events(h.open())
    assert h.provider.deadlines["a"].first_token_s == 0.8
    assert h.provider.deadlines["a"].total_s == pytest.approx(
        840.0
    )  # the stream budget, not the 25 s whole-request one


# -- the property: a stream never ends both ways, and never neither


failure = st.builds(
    ProviderError,
    st.sampled_from([ErrorClass.UNAVAILABLE, ErrorClass.TIMEOUT, ErrorClass.MALFORMED]),
    st.just("x"),
)


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abc xyz", min_size=1, max_size=6), min_size=0, max_size=6),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=7)),
    error=failure,
)
def test_every_stream_ends_with_done_or_an_error_event_and_hides_only_early_failures(
    words: list[str], cut: int | None, error: ProviderError
) -> None:
    script: list[StreamDelta | ProviderError] = [StreamDelta(text=w) for w in words]
    script.append(StreamDelta(finish_reason="stop"))
    if cut is not None and cut <= len(words):
        script.insert(cut, error)
    h = Harness({"a": script})
    events = _events(h.open())
    ended_done = events[-1] == "[DONE]"
    ended_error = isinstance(events[-1], dict) and "error" in events[-1]
    assert ended_done != ended_error
    assert sum(1 for e in events if e == "[DONE]" or (isinstance(e, dict) and "error" in e)) == 1
    if cut is not None and cut <= len(words) and cut == 0:
        assert h.provider.calls == ["a", "b"] and ended_done  # failed before the first byte: invisible
        assert _text(events) == "[b] hello there "
    elif cut is not None and cut <= len(words):
        assert ended_error and _text(events) == "".join(words[:cut])  # what was sent stays, then the error
        assert h.provider.calls == ["a"]
    else:
        assert ended_done and _text(events) == "".join(words)


def test_the_provider_is_reached_through_the_option_kind() -> None:
    seen: list[ProviderKind] = []
    h = Harness()
    provider = h.provider
    h.service._providers = lambda kind: seen.append(kind) or provider  # type: ignore[func-returns-value]
    _events(h.open())
    assert seen == [ProviderKind.MOCK]
    assert DONE.startswith(b"data: [DONE]")
