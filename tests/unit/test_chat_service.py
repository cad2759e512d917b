"""ChatService without AWS: routing decisions, operator flags, outcome shaping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from switchboard.api_models import ChatCompletionRequest
from switchboard.chat import Caller, ChatService, cache_key, iso_seconds
from switchboard.errors import Forbidden, RouteNotFound, ServiceUnavailable
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatMessage, ChatRequest
from switchboard.routing.agent_client import RoutingSnapshot
from switchboard.workflow import WorkflowResult

NOW = 1_790_000_000.0
ROUTE = {
    "enabled": True,
    "chain": ["a", "b"],
    "degrade": ["cache", "reject"],
    "smaller_chain": ["s"],
    "static_answer": "busy",
    "_variant": "default",
}


class Routing:
    def __init__(self, flags: dict[str, Any]) -> None:
        self.flags = flags

    def evaluate(self, context: Any) -> RoutingSnapshot:
        return RoutingSnapshot(flags=self.flags, source="agent")


class Options:
    def __init__(self, options: list[LlmOption]) -> None:
        self.options = {o.id: o for o in options}

    def get_many(self, ids: Any) -> dict[str, LlmOption]:
        return {i: self.options[i] for i in ids if i in self.options}


class Runner:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output
        self.payloads: list[dict[str, Any]] = []

    def run(self, payload: dict[str, Any], *, name: str) -> WorkflowResult:
        self.payloads.append(payload)
        return WorkflowResult(status="SUCCEEDED", output=self.output)


class Payloads:
    """In-memory claim check: over the limit, the value is kept here and a reference returned."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}

    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        if len(json.dumps(value, separators=(",", ":")).encode()) <= inline_limit:
            return value
        self.stored[key] = value
        return {"$ref": f"s3://fake/{key}"}

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        ref = value.get("$ref")
        return self.stored[str(ref).removeprefix("s3://fake/")] if ref else value


class Circuits:
    def soonest_reopening(self, option_ids: Any) -> datetime | None:
        return datetime.fromtimestamp(NOW + 42.2, UTC)


def _option(oid: str, provider: str = "mock", status: str = "active") -> LlmOption:
    return LlmOption.from_dict(
        {
            "id": oid,
            "provider": provider,
            "status": status,
            "model": "m",
            "endpoint_name": "e",
            "base_url": "http://x",
        }
    )


def _service(
    flags: dict[str, Any], output: dict[str, Any], options: list[LlmOption] | None = None
) -> tuple[ChatService, Runner]:
    runner = Runner(output)
    service = ChatService(
        routing=Routing(flags),
        options=Options(options if options is not None else [_option(i) for i in ("a", "b", "s")]),
        runner=runner,
        payloads=Payloads(),
        circuits=Circuits(),
        clock=lambda: NOW,
    )
    return service, runner


BODY = ChatCompletionRequest.model_validate(
    {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
)
CALLER = Caller(tenant="acme", tier="standard")
ANSWER = {
    "outcome": "answered",
    "option_id": "a",
    "phase": "primary",
    "result": {"text": "t", "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1},
}


def test_workflow_input_carries_policy_clock_and_cache_key() -> None:
    service, runner = _service({"chat": ROUTE}, ANSWER)
    service.complete(BODY, CALLER, "r1")
    payload = runner.payloads[0]
    assert payload["chain"] == ["a", "b"] and payload["smaller_chain"] == ["s"]
    assert payload["degrade"] == ["cache", "reject"]
    assert payload["now"] == iso_seconds(NOW) and payload["now"].endswith("Z") and len(payload["now"]) == 20
    assert payload["now_epoch_s"] == int(NOW)
    assert payload["cache_key"].startswith("chat#")
    assert payload["force_degraded"] is False


@pytest.mark.parametrize("static_kib", [0, 40])
def test_the_request_travels_inline_only_while_the_whole_input_fits_its_share(static_kib: int) -> None:
    """Issue 10 item 6: the claim-check threshold is sized on the whole workflow input."""
    from switchboard.state_budget import INPUT_BUDGET_BYTES, json_size

    route = {**ROUTE, "static_answer": "s" * (static_kib * 1024)}
    for content_kib in (1, 40, 60, 90, 120):
        service, runner = _service({"chat": route}, ANSWER)
        body = ChatCompletionRequest.model_validate(
            {"model": "chat", "messages": [{"role": "user", "content": "x" * (content_kib * 1024)}]}
        )
        service.complete(body, CALLER, f"r{content_kib}")
        payload = runner.payloads[0]
        inline_size = json_size({**payload, "request": body.to_chat_request().to_dict()})
        if inline_size <= INPUT_BUDGET_BYTES:
            assert "$ref" not in payload["request"], content_kib
        else:
            assert payload["request"] == {"$ref": f"s3://fake/requests/r{content_kib}.json"}
        assert json_size(payload) <= INPUT_BUDGET_BYTES


def test_kill_switch_removes_providers_and_options() -> None:
    flags = {"chat": ROUTE, "kill-switch": {"enabled": True, "providers": ["bedrock"], "options": ["b"]}}
    options = [_option("a", provider="bedrock"), _option("b"), _option("s")]
    service, runner = _service(flags, ANSWER, options)
    service.complete(BODY, CALLER, "r1")
    assert runner.payloads[0]["chain"] == []


def test_force_degraded_flag_marks_the_route() -> None:
    flags = {"chat": ROUTE, "force-degraded": {"enabled": True, "routes": ["chat"]}}
    service, runner = _service(flags, ANSWER)
    service.complete(BODY, CALLER, "r1")
    assert runner.payloads[0]["force_degraded"] is True


def test_retired_options_leave_the_chain() -> None:
    service, runner = _service({"chat": ROUTE}, ANSWER, [_option("a", status="retired"), _option("b")])
    service.complete(BODY, CALLER, "r1")
    assert runner.payloads[0]["chain"] == ["b"]
    assert runner.payloads[0]["smaller_chain"] == []


@pytest.mark.parametrize(
    ("output", "degraded", "option", "text"),
    [
        ({"outcome": "degraded", "kind": "static", "text": "busy"}, "static", "static", "busy"),
        ({**ANSWER, "phase": "smaller_model", "option_id": "s"}, "smaller_model", "s", "t"),
        (
            {"outcome": "degraded", "kind": "cache", "option_id": "a", "result": ANSWER["result"]},
            "cache",
            "a",
            "t",
        ),
    ],
)
def test_degraded_answers_are_200_with_header(output: dict, degraded: str, option: str, text: str) -> None:
    service, _ = _service({"chat": ROUTE}, output)
    answer = service.complete(BODY, CALLER, "r1")
    assert answer.headers["x-switchboard-degraded"] == degraded
    assert answer.headers["x-switchboard-option"] == option
    assert answer.completion.choices[0].message.content == text


def test_rejected_is_503_with_retry_after_from_the_soonest_circuit() -> None:
    service, _ = _service({"chat": ROUTE}, {"outcome": "rejected", "error": {"error_class": "unavailable"}})
    with pytest.raises(ServiceUnavailable) as caught:
        service.complete(BODY, CALLER, "r1")
    assert caught.value.headers["Retry-After"] == "43"


def test_disabled_or_unknown_route_is_404_and_disallowed_is_403() -> None:
    service, _ = _service({"chat": {"enabled": False, "_variant": "off"}}, ANSWER)
    with pytest.raises(RouteNotFound):
        service.complete(BODY, CALLER, "r1")
    with pytest.raises(Forbidden):
        service.complete(BODY, Caller(tenant="t", tier="standard", allowed_routes=("echo",)), "r1")


def test_cache_key_normalizes_whitespace_but_not_content() -> None:
    one = ChatRequest(messages=[ChatMessage("user", "hello   world")])
    two = ChatRequest(messages=[ChatMessage("user", " hello world ")])
    other = ChatRequest(messages=[ChatMessage("user", "hello there")])
    assert cache_key("chat", one) == cache_key("chat", two) != cache_key("chat", other)
    assert cache_key("chat", one) != cache_key("summarize", one)


def test_routing_unknowable_is_a_503_not_a_500() -> None:
    from switchboard.routing.agent_client import RoutingUnavailable

    class Down:
        def evaluate(self, context: Any) -> RoutingSnapshot:
            raise RoutingUnavailable("agent down, no defaults")

    service, _ = _service({}, ANSWER)
    service._routing = Down()  # type: ignore[assignment]
    with pytest.raises(ServiceUnavailable) as caught:
        service.complete(BODY, CALLER, "r1")
    assert caught.value.code == "routing_unavailable" and caught.value.headers["Retry-After"] == "10"
