"""Per-route SLO measurements (the burn-rate alarms' inputs: `RouteRequests`, `RouteBadAnswers`,
`RouteLatency`, dimension `route`): every planned request counts once; a 5xx or a stream cut
mid-way is bad; a 4xx is the request's own and good; a request with no route counts nowhere."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.api_models import ChatCompletionRequest
from switchboard.chat import Caller, ChatService
from switchboard.contract import metrics as names
from switchboard.errors import ErrorClass, ProviderError, RouteNotFound, ServiceUnavailable
from switchboard.events import RecordingEventSink
from switchboard.providers.base import StreamDelta, StreamUsage
from switchboard.streaming import StreamService
from tests.fakes import InMemoryOptions, InMemoryPayloads, ManualClock, ScriptedRunner
from tests.unit.test_chat_accounting import ANSWERED, BODY, FLAGS, NOW, EvaluatingRouting, _option

CALLER = Caller(tenant="acme", tier="standard", key_id="k1")
REJECTED = {"outcome": "rejected", "error": {"error_class": "unavailable", "message": "down"}}


class Slis:
    def __init__(self, output: Any = ANSWERED, stream: list[Any] | None = None) -> None:
        self.clock = ManualClock(NOW)
        self.events = RecordingEventSink()
        self.stream_items = stream or []
        runner = ScriptedRunner(output)

        def run(payload: dict[str, Any], *, name: str) -> Any:
            self.clock.advance(0.25)  # the workflow takes 250 ms
            return ScriptedRunner.run(runner, payload, name=name)

        runner.run = run  # type: ignore[method-assign]
        self.service = ChatService(
            routing=EvaluatingRouting(FLAGS),
            options=InMemoryOptions([_option("a"), _option("cheap")]),
            runner=runner,
            payloads=InMemoryPayloads(),
            clock=self.clock,
            slis=self.events,
        )
        self.streams = StreamService(
            planner=self.service,
            circuits=None,
            providers=lambda kind: self,
            payloads=InMemoryPayloads(),
            events=self.events,
            clock=self.clock,
            monotonic=self.clock,
        )

    def stream(self, option: Any, request: Any, deadlines: Any) -> Any:
        for item in self.stream_items:
            if isinstance(item, Exception):
                raise item
            yield item

    def route_values(self, name: str) -> list[tuple[str | None, float]]:
        return [(m.route, m.value) for m in self.events.measured(name)]


def test_an_answered_request_counts_good_with_its_latency() -> None:
    world = Slis()
    world.service.complete(ChatCompletionRequest.model_validate(BODY), CALLER, "r1")

    assert world.route_values(names.ROUTE_REQUESTS) == [("chat", 1)]
    assert world.route_values(names.ROUTE_BAD_ANSWERS) == [("chat", 0)]
    assert world.route_values(names.ROUTE_LATENCY) == [("chat", pytest.approx(250))]


def test_a_503_counts_bad_without_latency() -> None:
    world = Slis(REJECTED)
    with pytest.raises(ServiceUnavailable):
        world.service.complete(ChatCompletionRequest.model_validate(BODY), CALLER, "r1")

    assert world.route_values(names.ROUTE_BAD_ANSWERS) == [("chat", 1)]
    assert world.route_values(names.ROUTE_LATENCY) == []


def test_a_request_for_no_route_counts_nowhere() -> None:
    world = Slis()
    with pytest.raises(RouteNotFound):
        world.service.complete(ChatCompletionRequest.model_validate({**BODY, "model": "nope"}), CALLER, "r1")

    assert world.events.measured(names.ROUTE_REQUESTS) == []


def test_a_stream_cut_mid_way_is_bad_and_a_whole_one_good_with_its_time_to_first_byte() -> None:
    body = ChatCompletionRequest.model_validate({**BODY, "stream": True})
    whole = Slis(
        stream=[StreamDelta(text="hi"), StreamDelta(text="!", finish_reason="stop", usage=StreamUsage(1, 2))]
    )
    list(whole.streams.open(body, CALLER, "r1").chunks)
    cut = Slis(stream=[StreamDelta(text="hi"), ProviderError(ErrorClass.UNAVAILABLE, "reset")])
    list(cut.streams.open(body, CALLER, "r2").chunks)

    assert whole.route_values(names.ROUTE_BAD_ANSWERS) == [("chat", 0)]
    assert [route for route, _ in whole.route_values(names.ROUTE_LATENCY)] == ["chat"]
    assert cut.route_values(names.ROUTE_REQUESTS) == [("chat", 1)]
    assert cut.route_values(names.ROUTE_BAD_ANSWERS) == [("chat", 1)]
    assert cut.route_values(names.ROUTE_LATENCY) == []
