"""StreamService on fakes: a clean stream is cached as the workflow caches a whole answer, and each
candidate and the degrade step are subsegments of a tracing port (issue 14's review gaps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from switchboard.answer_cache import answer_from_item, answer_item
from switchboard.api_models import ChatCompletionRequest
from switchboard.chat import ChatService
from switchboard.circuits.service import CircuitService
from switchboard.contract import metrics as metric_names
from switchboard.errors import ErrorClass, ProviderError, ServiceUnavailable
from switchboard.events import RecordingEventSink
from switchboard.providers.base import StreamDelta, StreamUsage
from switchboard.state_budget import ANSWER_INLINE_LIMIT_BYTES
from switchboard.streaming import DONE, CachedAnswer, StreamAnswer, StreamService
from tests.fakes import (
    FixedCircuits,
    InMemoryCircuits,
    InMemoryOptions,
    InMemoryPayloads,
    ManualClock,
    ScriptedRunner,
    StaticRouting,
)
from tests.unit.test_stream_service import (
    CALLER,
    DEAD,
    ROUTE,
    RecordingLogger,
    Script,
    ScriptedStreams,
    _events,
    _option,
    _text,
    _words,
)

CACHING_ROUTE = {**ROUTE, "cache_ttl_s": 300}


class ItemCache:
    """``CachedAnswers`` over a dict of DynamoDB items in the shape ``RememberAnswer`` puts (the
    adapter's own item builder and reader), so what is written is what the workflow would read."""

    def __init__(self, *, failing: bool = False) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.puts: list[dict[str, Any]] = []
        self.failing = failing

    def get(self, cache_key: str, *, tenant: str, now_epoch_s: int) -> CachedAnswer | None:
        return answer_from_item(self.items.get(cache_key), tenant=tenant, now_epoch_s=now_epoch_s)

    def put(
        self,
        cache_key: str,
        *,
        tenant: str,
        answer: dict[str, Any],
        option_id: str,
        route: str,
        expires_at: int,
    ) -> None:
        if self.failing:
            raise ConnectionError("cache table unreachable")
        item = answer_item(
            cache_key, tenant=tenant, answer=answer, option_id=option_id, route=route, expires_at=expires_at
        )
        self.puts.append(item)
        self.items[cache_key] = item


@dataclass
class Span:
    name: str
    annotations: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    closed: bool = False

    def annotate(self, key: str, value: str | int | float | bool) -> None:
        self.annotations[key] = value


class RecordingTracer:
    """A ``Tracing`` port that keeps every subsegment in the order they were opened."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.open: list[str] = []

    @contextmanager
    def subsegment(self, name: str) -> Iterator[Span]:
        span = Span(name)
        self.spans.append(span)
        self.open.append(name)
        try:
            yield span
        except BaseException as exc:
            span.error = exc
            raise
        finally:
            assert self.open.pop() == name, "subsegments close in the order they opened"
            span.closed = True

    def named(self, name: str) -> Span:
        (span,) = [s for s in self.spans if s.name == name]
        return span


class BrokenTracer:
    def subsegment(self, name: str) -> Any:
        raise RuntimeError("no daemon")


class Harness:
    def __init__(
        self,
        scripts: dict[str, Script] | None = None,
        *,
        route: dict[str, Any] | None = None,
        cache: ItemCache | None = None,
        tracing: Any = None,
    ) -> None:
        self.clock = ManualClock()
        self.circuits = CircuitService(
            InMemoryCircuits(self.clock.utcnow), None, on_transition=lambda *_: None
        )
        self.provider = ScriptedStreams(scripts or {})
        self.events = RecordingEventSink()
        self.cache = cache if cache is not None else ItemCache()
        self.payloads = InMemoryPayloads()
        self.planner = ChatService(
            routing=StaticRouting({"chat": route or CACHING_ROUTE}),
            options=InMemoryOptions([_option(i) for i in ("a", "b", "s")]),
            runner=ScriptedRunner({}),
            payloads=self.payloads,
            circuits=FixedCircuits(self.clock.utcnow() + timedelta(seconds=7)),
            clock=self.clock,
        )
        self.service = StreamService(
            planner=self.planner,
            circuits=self.circuits,
            providers=lambda kind: self.provider,
            payloads=self.payloads,
            events=self.events,
            cache=self.cache,
            clock=self.clock,
            monotonic=self.clock,
            logger=RecordingLogger(),
            tracing=tracing,
        )

    def body(self, content: str = "hi", **extra: Any) -> ChatCompletionRequest:
        request = {
            "model": "chat",
            "messages": [{"role": "user", "content": content}],
            "stream": True,
            **extra,
        }
        return ChatCompletionRequest.model_validate(request)

    def open(self, content: str = "hi", request_id: str = "req-1", **extra: Any) -> StreamAnswer:
        return self.service.open(self.body(content, **extra), CALLER, request_id)


# -- the answer cache


def test_a_clean_stream_is_cached_after_done_as_the_workflow_caches_a_whole_answer() -> None:
    h = Harness()
    answer = h.open()
    chunks = []
    for chunk in answer.chunks:
        chunks.append(chunk)
        if chunk == DONE:
            assert h.cache.puts == [], "the client gets [DONE] before the cache write"
    assert chunks[-1] == DONE

    (item,) = h.cache.puts
    whole = h.planner.prepare(h.body(stream=False), CALLER, "req-2").workflow_input
    assert item["cache_key"] == {"S": whole["cache_key"]}  # a whole request finds it
    assert item["tenant"] == {"S": "acme"}
    assert item["option_id"] == {"S": "a"} and item["route"] == {"S": "chat"}
    assert item["expires_at"] == {"N": str(int(h.clock()) + 300)}
    cached = json.loads(item["answer"]["S"])
    assert cached["text"] == "[a] hello there " and cached["finish_reason"] == "stop"
    assert (cached["prompt_tokens"], cached["completion_tokens"]) == (3, 3)  # the stream's usage


def test_the_cached_stream_is_served_by_the_cache_step_when_the_chain_is_down() -> None:
    cache = ItemCache()
    b"".join(Harness(cache=cache).open().chunks)
    assert cache.puts

    down = Harness({"a": DEAD, "b": DEAD, "s": DEAD}, cache=cache)
    answer = down.open()
    assert answer.headers["x-switchboard-degraded"] == "cache"
    assert answer.headers["x-switchboard-option"] == "a"
    assert _text(_events(answer)) == "[a] hello there "


@pytest.mark.parametrize(
    ("route", "scripts"),
    [
        pytest.param(ROUTE, {}, id="route-without-cache-ttl"),
        pytest.param(
            CACHING_ROUTE,
            {"a": [StreamDelta(text="cut "), ProviderError(ErrorClass.UNAVAILABLE, "reset")]},
            id="cut-mid-stream",
        ),
        pytest.param(CACHING_ROUTE, {"a": [StreamDelta(text="no finish ")]}, id="no-finish-reason"),
    ],
)
def test_only_a_clean_stream_on_a_caching_route_is_cached(route: dict[str, Any], scripts: Any) -> None:
    h = Harness(scripts, route=route)
    b"".join(h.open().chunks)
    assert h.cache.puts == []


def test_degraded_short_streams_are_not_cached_again() -> None:
    cache = ItemCache()
    h = Harness({"a": DEAD, "b": DEAD, "s": DEAD}, cache=cache)
    events = _events(h.open())
    assert _text(events) == "busy now"  # the static answer: not a model's, never cached
    assert cache.puts == []


def test_a_large_streamed_answer_is_cached_as_its_claim_check() -> None:
    words = " ".join(f"word{i}" for i in range(ANSWER_INLINE_LIMIT_BYTES // 6))
    h = Harness({"a": _words(words)})
    b"".join(h.open().chunks)
    (item,) = h.cache.puts
    reference = json.loads(item["answer"]["S"])
    assert reference == {"$ref": "s3://fake-payloads/results/req-1-a.json"}  # the invoke step's key
    assert h.payloads.unwrap(reference)["text"].split() == words.split()


def test_a_failed_cache_write_is_a_metric_never_a_broken_stream() -> None:
    h = Harness(cache=ItemCache(failing=True))
    events = _events(h.open())
    assert events[-1] == "[DONE]"
    (fields,) = h.events.fields_of(metric_names.STREAM_ANSWER_NOT_CACHED)
    assert fields["route"] == "chat" and fields["option_id"] == "a"
    assert "ConnectionError" in fields["error"]


# -- X-Ray subsegments


def test_each_candidate_tried_is_a_subsegment_with_its_outcome_and_circuit() -> None:
    tracer = RecordingTracer()
    h = Harness({"a": DEAD}, tracing=tracer)
    b"".join(h.open().chunks)
    assert [s.name for s in tracer.spans] == ["candidate a", "candidate b"]
    failed, answered = tracer.spans
    common = {"request_id": "req-1", "route": "chat", "phase": "primary", "circuit": "CLOSED", "probe": False}
    assert failed.annotations == {
        **common,
        "option": "a",
        "outcome": "failed_before_first_token",
        "error_class": "unavailable",
    }
    assert answered.annotations == {**common, "option": "b", "outcome": "answered"}
    assert all(s.closed and s.error is None for s in tracer.spans)


def test_the_degrade_step_is_a_subsegment_holding_the_smaller_chain() -> None:
    tracer = RecordingTracer()
    h = Harness({"a": DEAD, "b": DEAD}, tracing=tracer)
    answer = h.open()
    assert [s.name for s in tracer.spans] == ["candidate a", "candidate b", "degrade", "candidate s"]
    degrade = tracer.named("degrade")
    assert degrade.annotations["outcome"] == "smaller_model" and degrade.annotations["option"] == "s"
    assert degrade.annotations["steps"] == "smaller_model,cache,static,reject"
    assert tracer.named("candidate s").annotations["phase"] == "smaller_model"
    b"".join(answer.chunks)


def test_a_rejection_closes_the_degrade_subsegment_with_the_error() -> None:
    tracer = RecordingTracer()
    route = {**CACHING_ROUTE, "degrade": ["reject"]}
    h = Harness({"a": DEAD, "b": DEAD}, route=route, tracing=tracer)
    with pytest.raises(ServiceUnavailable):
        h.open()
    degrade = tracer.named("degrade")
    assert degrade.annotations["outcome"] == "refused:503"
    assert isinstance(degrade.error, ServiceUnavailable) and degrade.closed


def test_a_circuit_skip_is_traced_too() -> None:
    tracer = RecordingTracer()
    h = Harness(tracing=tracer)
    for _ in range(2):  # the breaker's threshold
        h.circuits.record(
            "a",
            success=False,
            request_id="r",
            error_class="unavailable",
            latency_ms=5,
            policy=_option("a").breaker,
        )
    b"".join(h.open().chunks)
    skipped = tracer.named("candidate a")
    assert skipped.annotations["circuit"] == "OPEN" and skipped.annotations["outcome"] == "skipped_open"


def test_a_broken_tracer_never_breaks_the_stream() -> None:
    h = Harness(tracing=BrokenTracer())
    assert _events(h.open())[-1] == "[DONE]"


def test_usage_in_the_cache_follows_the_stream_usage_event() -> None:
    script = [
        StreamDelta(text="x "),
        StreamDelta(finish_reason="length", usage=StreamUsage(7, 1, cached_tokens=2)),
    ]
    h = Harness({"a": script})
    b"".join(h.open().chunks)
    cached = json.loads(h.cache.puts[0]["answer"]["S"])
    assert cached["finish_reason"] == "length"
    assert (cached["prompt_tokens"], cached["completion_tokens"], cached["cached_tokens"]) == (7, 1, 2)


def test_the_port_exists_only_over_a_tracer_with_an_xray_provider() -> None:
    """Powertools' Tracer exposes the X-Ray recorder as ``provider``; the no-SDK stand-in has none.
    (A real Tracer is not built here: its configuration is class-wide and would leak to other tests.)"""
    from types import SimpleNamespace

    from aws_xray_sdk.core.recorder import AWSXRayRecorder

    from switchboard.observability import _NoSdkTracer
    from switchboard.tracing import XraySubsegments, xray_subsegments

    assert xray_subsegments(_NoSdkTracer()) is None  # SWITCHBOARD_XRAY_SDK off: no subsegments
    assert xray_subsegments(SimpleNamespace(provider=object())) is None
    assert isinstance(xray_subsegments(SimpleNamespace(provider=AWSXRayRecorder())), XraySubsegments)
