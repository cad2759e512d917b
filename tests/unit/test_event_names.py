"""The names the code emits through the event sink are the ones the contract declares (and the
alarms read): a renamed event fails here, not silently on the dashboard."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.api_models import ChatCompletionRequest
from switchboard.chat import Caller, ChatService
from switchboard.contract import metrics as metric_names
from switchboard.errors import ServiceUnavailable
from switchboard.events import RecordingEventSink
from switchboard.options.errors import OptionsUnavailable
from switchboard.routing.agent_client import RoutingSnapshot, RoutingUnavailable
from switchboard.workflow import WorkflowResult

BODY = ChatCompletionRequest.model_validate(
    {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
)
CALLER = Caller(tenant="acme", tier="standard")
ROUTE = {"enabled": True, "chain": ["a"], "degrade": ["reject"], "_variant": "default"}
ANSWER = {
    "outcome": "answered",
    "option_id": "a",
    "phase": "primary",
    "result": {"text": "t", "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1},
}


class Routing:
    def __init__(self, *, down: bool = False) -> None:
        self.down = down

    def evaluate(self, context: Any) -> RoutingSnapshot:
        if self.down:
            raise RoutingUnavailable("agent unreachable and no default routes")
        return RoutingSnapshot(flags={"chat": ROUTE}, source="agent")


class CatalogueDown:
    def get_many(self, ids: Any) -> dict[str, Any]:
        raise OptionsUnavailable("options table unreadable: ResourceNotFoundException")


class Runner:
    def run(self, payload: dict[str, Any], *, name: str) -> WorkflowResult:
        return WorkflowResult(status="SUCCEEDED", output=ANSWER)


class InlinePayloads:
    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        return value

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


def service(events: RecordingEventSink, *, routing_down: bool = False) -> ChatService:
    return ChatService(
        routing=Routing(down=routing_down),
        options=CatalogueDown(),
        runner=Runner(),
        payloads=InlinePayloads(),
        on_event=events,
    )


def test_a_catalogue_outage_in_the_gateway_is_the_contract_event_and_the_request_still_answers() -> None:
    events = RecordingEventSink()
    service(events).complete(BODY, CALLER, "r1")
    assert events.names() == [metric_names.OPTIONS_CATALOGUE_UNAVAILABLE]


def test_no_routing_at_all_is_the_contract_event() -> None:
    events = RecordingEventSink()
    with pytest.raises(ServiceUnavailable):
        service(events, routing_down=True).complete(BODY, CALLER, "r1")
    assert events.names() == [metric_names.ROUTING_UNAVAILABLE]


def test_every_fail_open_name_is_declared_once() -> None:
    declared = [
        value for name, value in vars(metric_names).items() if name.isupper() and isinstance(value, str)
    ]
    event_names = [v for v in declared if v not in (metric_names.NAMESPACE, metric_names.SERVICE)]
    assert len(event_names) == len(set(event_names))
    assert set(metric_names.LAST_KNOWN_GOOD_EVENTS) <= set(metric_names.DEGRADED_DEPENDENCY_EVENTS)
