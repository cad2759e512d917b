"""ChatService without AWS: routing decisions, operator flags, outcome shaping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.api_models import ChatCompletionRequest
from switchboard.chat import Caller, ChatService, Routing, cache_key, iso_seconds
from switchboard.errors import Forbidden, InvalidRequest, RouteNotFound, ServiceUnavailable
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatMessage, ChatRequest
from switchboard.routing.agent_client import RoutingSnapshot
from tests.fakes import (
    FixedCircuits,
    InMemoryOptions,
    InMemoryPayloads,
    RecordedEvents,
    ScriptedRunner,
    StaticRouting,
    UnavailableRouting,
)

NOW = 1_790_000_000.0
ROUTE = {
    "enabled": True,
    "chain": ["a", "b"],
    "degrade": ["cache", "reject"],
    "smaller_chain": ["s"],
    "static_answer": "busy",
    "_variant": "default",
}


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
    flags: dict[str, Any],
    output: dict[str, Any],
    options: list[LlmOption] | None = None,
    *,
    routing: Routing | None = None,
    on_event: RecordedEvents | None = None,
) -> tuple[ChatService, ScriptedRunner]:
    runner = ScriptedRunner(output)
    service = ChatService(
        routing=routing or StaticRouting(flags),
        options=InMemoryOptions(options if options is not None else [_option(i) for i in ("a", "b", "s")]),
        runner=runner,
        payloads=InMemoryPayloads(),
        circuits=FixedCircuits(datetime.fromtimestamp(NOW + 42.2, UTC)),
        clock=lambda: NOW,
        on_event=on_event,
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
    assert payload["tenant"] == "acme"
    assert payload["cache_key"].startswith("acme#chat#")
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
            assert payload["request"] == {"$ref": f"{InMemoryPayloads.PREFIX}requests/r{content_kib}.json"}
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

    def key(request: ChatRequest, route: str = "chat") -> str:
        return cache_key(tenant="acme", route=route, request=request)

    assert key(one) == key(two) != key(other)
    assert key(one) != key(one, route="summarize")


def test_cache_key_cannot_be_built_without_a_tenant() -> None:
    request = ChatRequest(messages=[ChatMessage("user", "hello")])
    with pytest.raises(TypeError):
        cache_key("chat", request)  # type: ignore[misc]
    with pytest.raises(ValueError, match="tenant"):
        cache_key(tenant="", route="chat", request=request)


@given(
    tenants=st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=2, unique=True),
    texts=st.lists(st.text(max_size=200), min_size=1, max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_two_tenants_sending_the_same_conversation_never_share_a_cache_key(
    tenants: list[str], texts: list[str]
) -> None:
    request = ChatRequest(messages=[ChatMessage("user", text) for text in texts])
    first, second = (cache_key(tenant=tenant, route="chat", request=request) for tenant in tenants)
    assert first != second
    assert first.startswith(f"{tenants[0]}#chat#") and second.startswith(f"{tenants[1]}#chat#")


def test_the_service_keys_the_cache_by_the_callers_tenant() -> None:
    service, runner = _service({"chat": ROUTE}, ANSWER)
    service.complete(BODY, Caller(tenant="acme", tier="premium"), "r1")
    service.complete(BODY, Caller(tenant="globex", tier="premium"), "r2")
    acme, globex = runner.payloads
    assert (acme["tenant"], globex["tenant"]) == ("acme", "globex")
    assert acme["cache_key"] != globex["cache_key"]


def test_routing_unknowable_is_a_503_not_a_500() -> None:
    service, _ = _service({}, ANSWER, routing=UnavailableRouting("agent down, no defaults"))
    with pytest.raises(ServiceUnavailable) as caught:
        service.complete(BODY, CALLER, "r1")
    assert caught.value.code == "routing_unavailable" and caught.value.headers["Retry-After"] == "10"


NOTHING_TRIED = {
    "outcome": "rejected",
    "error": {"error_class": "unavailable", "message": "no candidate was tried"},
    "chain": [],
}


def _rejected(service: ChatService) -> str:
    with pytest.raises(ServiceUnavailable) as caught:
        service.complete(BODY, CALLER, "r1")
    assert caught.value.status == 503 and "last error" not in caught.value.message
    return caught.value.message


def test_a_chain_of_unknown_options_is_logged_and_the_503_names_them() -> None:
    events = RecordedEvents()
    service, runner = _service({"chat": ROUTE}, NOTHING_TRIED, [_option("s")], on_event=events)

    message = _rejected(service)

    assert runner.payloads[0]["chain"] == []
    assert ("RouteNamesUnknownOptions", {"route": "chat", "option_ids": ["a", "b"]}) in events.events
    assert message.startswith(
        "No model behind route `chat` could be tried: `a` not in the options catalogue; "
        "`b` not in the options catalogue."
    )


def test_the_503_says_which_option_the_kill_switch_and_retirement_took() -> None:
    flags = {"chat": ROUTE, "kill-switch": {"enabled": True, "providers": ["bedrock"], "options": ["a"]}}
    service, _ = _service(
        flags, NOTHING_TRIED, [_option("a"), _option("b", provider="bedrock"), _option("s")]
    )
    assert "`a` switched off by the kill switch; `b` provider bedrock switched off by the kill switch" in (
        _rejected(service)
    )
    service, _ = _service({"chat": ROUTE}, NOTHING_TRIED, [_option("a", status="retired"), _option("s")])
    assert "`a` retired; `b` not in the options catalogue" in _rejected(service)


def test_the_503_says_when_the_operator_forced_degraded_mode_or_every_circuit_is_open() -> None:
    flags = {"chat": ROUTE, "force-degraded": {"enabled": True, "routes": ["chat"]}}
    service, _ = _service(flags, NOTHING_TRIED)
    assert "could be tried: an operator forced the route into degraded mode" in _rejected(service)
    service, _ = _service({"chat": ROUTE}, NOTHING_TRIED)
    assert "could be tried: every option's circuit is open" in _rejected(service)


def test_the_no_attempt_message_is_the_workflows_own() -> None:
    """The 503 recognises 'nothing was tried' by the message the ASL's first attempt carries."""
    from pathlib import Path

    from switchboard.chat import NO_CANDIDATE_TRIED

    asl = json.loads(
        (Path(__file__).resolve().parents[2] / "statemachines/request_workflow.asl.json").read_text()
    )
    assert asl["States"]["NoteNoAttemptYet"]["Parameters"]["error"]["message"] == NO_CANDIDATE_TRIED


class _Untouchable:
    """Any call on it fails the test: `plan` must take everything it needs as arguments."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"plan touched a dependency ({name})")


def _pure_service() -> ChatService:
    untouchable: Any = _Untouchable()

    def no_clock() -> float:
        raise AssertionError("plan read the clock")

    def no_events(name: str, data: dict[str, Any]) -> None:
        raise AssertionError(f"plan emitted {name}")

    return ChatService(
        routing=untouchable,
        options=untouchable,
        runner=untouchable,
        payloads=untouchable,
        circuits=untouchable,
        clock=no_clock,
        on_event=no_events,
    )


def test_plan_is_pure_the_snapshot_and_catalogue_in_the_workflow_input_out() -> None:
    # Given a service whose every dependency fails when touched, and one with working fakes
    snapshot = RoutingSnapshot(flags={"chat": ROUTE}, source="last_known_good")
    catalogue = {o.id: o for o in (_option("a", status="retired"), _option("b"), _option("s"))}
    service, runner = _service({"chat": ROUTE}, ANSWER, list(catalogue.values()))

    # When the pure service plans twice with the same inputs
    plans = [
        _pure_service().plan(BODY, CALLER, "r1", snapshot=snapshot, catalogue=catalogue, now=NOW)
        for _ in range(2)
    ]

    # Then it touched nothing, the plans are equal, and the input is what `complete` sends
    assert plans[0] == plans[1]
    plan = plans[0]
    assert (plan.route, plan.variant, plan.routing_source, plan.chain) == (
        "chat",
        "default",
        "last_known_good",
        ["b"],
    )
    assert plan.request_by_reference is False and plan.unknown_option_ids == ()
    service.complete(BODY, CALLER, "r1")
    assert runner.payloads[0] == plan.workflow_input


def test_plan_without_a_catalogue_keeps_the_chain_but_applies_the_kill_switch() -> None:
    # Given a catalogue that could not be read (None) and a kill switch naming option b
    flags = {"chat": ROUTE, "kill-switch": {"enabled": True, "options": ["b"]}}
    snapshot = RoutingSnapshot(flags=flags, source="agent")
    # When planned
    plan = _pure_service().plan(BODY, CALLER, "r1", snapshot=snapshot, catalogue=None, now=NOW)
    # Then only the kill switch removes anything: the invoke step checks each option itself
    assert plan.chain == ["a"] and plan.workflow_input["smaller_chain"] == ["s"]
    assert plan.unknown_option_ids == ()


def test_plan_reports_unknown_options_as_data_for_the_caller_to_emit() -> None:
    snapshot = RoutingSnapshot(flags={"chat": ROUTE}, source="agent")
    plan = _pure_service().plan(BODY, CALLER, "r1", snapshot=snapshot, catalogue={"s": _option("s")}, now=NOW)
    assert plan.unknown_option_ids == ("a", "b") and plan.chain == []
    assert plan.not_tried is not None and "`a` not in the options catalogue" in plan.not_tried


def test_plan_marks_an_oversized_request_and_run_sends_it_by_reference() -> None:
    body = ChatCompletionRequest.model_validate(
        {"model": "chat", "messages": [{"role": "user", "content": "x" * (200 * 1024)}]}
    )
    snapshot = RoutingSnapshot(flags={"chat": ROUTE}, source="agent")
    catalogue = {o: _option(o) for o in ("a", "b", "s")}
    plan = _pure_service().plan(body, CALLER, "big", snapshot=snapshot, catalogue=catalogue, now=NOW)
    # The plan keeps the request inline; only `run` (the I/O step) stores it
    assert plan.request_by_reference is True
    assert plan.workflow_input["request"]["messages"][0]["content"].startswith("xxx")
    service, runner = _service({"chat": ROUTE}, ANSWER)
    assert service.run(plan) == ANSWER
    assert runner.payloads[0]["request"] == {"$ref": "s3://fake-payloads/requests/big.json"}


@pytest.mark.parametrize(
    ("body", "caller", "error"),
    [
        ({"model": "chat", "stream": True}, CALLER, "stream_not_supported"),
        ({"model": "chat"}, Caller(tenant="t", tier="standard", allowed_routes=("echo",)), "Forbidden"),
    ],
)
def test_prepare_refuses_the_request_itself_before_asking_the_agent(
    body: dict[str, Any], caller: Caller, error: str
) -> None:
    request = ChatCompletionRequest.model_validate({**body, "messages": [{"role": "user", "content": "x"}]})
    with pytest.raises((Forbidden, InvalidRequest)) as caught:
        _pure_service().prepare(request, caller, "r1")  # the routing fake fails if it is asked
    assert error in (type(caught.value).__name__, getattr(caught.value, "code", None))
