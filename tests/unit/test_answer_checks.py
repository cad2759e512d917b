"""The invoke step judges answers and capabilities: `malformed` counts against the circuit and
moves on, `unsupported` is decided before any call and counts against nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchboard.answers import check_chat_answer, check_embeddings_answer, unsupported_reason
from switchboard.errors import ErrorClass, ProviderError
from switchboard.events import RecordingEventSink
from switchboard.invoking import CandidateInvoker
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    FunctionTool,
    ImagePart,
    Provider,
    ResponseFormat,
    ToolCall,
    ToolChoice,
)

NOW_MS = 1_800_000_000_000.0
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
WEATHER = FunctionTool(
    name="weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}}
)


def opt(**fields: Any) -> LlmOption:
    return LlmOption.from_dict({"id": "opt-a", "provider": "mock", **fields})


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", "hi")], **fields)


def answer(text: str = "", *calls: ToolCall, finish: Any = "stop") -> ChatResult:
    return ChatResult(text=text, finish_reason=finish, prompt_tokens=1, completion_tokens=1, tool_calls=calls)


def malformed(request: ChatRequest, result: ChatResult) -> str:
    with pytest.raises(ProviderError) as info:
        check_chat_answer(opt(), request, result)
    assert info.value.error_class is ErrorClass.MALFORMED
    return info.value.message


def test_a_tool_call_to_an_offered_tool_with_object_arguments_is_accepted() -> None:
    check_chat_answer(
        opt(), chat(tools=(WEATHER,)), answer("", ToolCall("c1", "weather", '{"city": "Oslo"}'))
    )


@pytest.mark.parametrize(
    ("request_fields", "calls", "why"),
    [
        ({}, (ToolCall("c1", "weather", "{}"),), "no tool was offered"),
        (
            {"tools": (WEATHER,), "tool_choice": ToolChoice("none")},
            (ToolCall("c1", "weather", "{}"),),
            "no tool",
        ),
        ({"tools": (WEATHER,)}, (ToolCall("c1", "rm_rf", "{}"),), "not among the tools"),
        ({"tools": (WEATHER,)}, (ToolCall("c1", "weather", "{city"),), "not JSON"),
        ({"tools": (WEATHER,)}, (ToolCall("c1", "weather", "[1]"),), "not a JSON object"),
        (
            {"tools": (WEATHER,), "parallel_tool_calls": False},
            (ToolCall("c1", "weather", "{}"), ToolCall("c2", "weather", "{}")),
            "parallel_tool_calls",
        ),
    ],
)
def test_tool_calls_that_break_the_request_are_malformed(
    request_fields: dict[str, Any], calls: tuple[ToolCall, ...], why: str
) -> None:
    assert why in malformed(chat(**request_fields), answer("", *calls))


def test_a_forced_tool_call_must_happen_and_name_the_forced_tool() -> None:
    other = FunctionTool(name="other")
    named = chat(tools=(WEATHER, other), tool_choice=ToolChoice("function", "weather"))
    assert "another tool" in malformed(named, answer("", ToolCall("c1", "other", "{}")))
    assert "required one" in malformed(
        chat(tools=(WEATHER,), tool_choice=ToolChoice("required")), answer("hi")
    )
    # A cut-off answer says so itself (finish_reason length): not the model breaking the contract.
    check_chat_answer(
        opt(), chat(tools=(WEATHER,), tool_choice=ToolChoice("required")), answer("h", finish="length")
    )


def test_structured_output_must_be_json_of_the_right_shape() -> None:
    json_object = chat(response_format=ResponseFormat("json_object"))
    check_chat_answer(opt(), json_object, answer('{"a": 1}'))
    assert "not JSON" in malformed(json_object, answer("Sure! Here it is: {"))
    assert "not an object" in malformed(json_object, answer("[1, 2]"))
    schema = chat(response_format=ResponseFormat("json_schema", name="trip", schema=SCHEMA, strict=True))
    check_chat_answer(opt(), schema, answer(json.dumps({"city": "Oslo", "days": 3})))
    assert "does not match the response schema" in malformed(schema, answer(json.dumps({"city": "Oslo"})))
    # A truncated answer is reported as truncated, not judged as JSON.
    check_chat_answer(opt(), schema, answer('{"city": "Os', finish="length"))


def test_options_that_declare_what_they_lack_are_unsupported_without_a_call() -> None:
    image = ChatRequest(messages=[ChatMessage("user", (ImagePart("image/png", "iVBORw0KGgo="),))])
    assert unsupported_reason(opt(capabilities=["tools"]), image) is not None
    assert unsupported_reason(opt(capabilities=["images"]), image) is None
    assert unsupported_reason(opt(), image) is None  # not declared: the provider is asked
    tools = chat(tools=(WEATHER,))
    assert "tools" in str(unsupported_reason(opt(capabilities=[]), tools))
    assert unsupported_reason(opt(task="embeddings"), tools) is not None
    assert unsupported_reason(opt(), EmbeddingRequest(inputs=("a",))) is not None
    assert unsupported_reason(opt(task="embeddings"), EmbeddingRequest(inputs=("a",))) is None


def test_embeddings_answers_are_checked_against_the_request() -> None:
    request = EmbeddingRequest(inputs=("a", "b"), dimensions=2)
    check_embeddings_answer(
        opt(), request, EmbeddingResult(vectors=[[1.0, 0.0], [0.0, 1.0]], prompt_tokens=2)
    )
    for vectors in ([[1.0, 0.0]], [[1.0], [1.0]], [[1.0, 0.0], [1.0]], [[1.0, float("nan")], [0.0, 1.0]]):
        with pytest.raises(ProviderError) as info:
            check_embeddings_answer(opt(), request, EmbeddingResult(vectors=vectors, prompt_tokens=2))
        assert info.value.error_class is ErrorClass.MALFORMED


class _Clock:
    def wall_ms(self) -> float:
        return NOW_MS

    def monotonic(self) -> float:
        return 1.0


class _Payloads:
    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        return value

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


class _Options:
    def __init__(self, *options: LlmOption) -> None:
        self.options = {o.id: o for o in options}

    def get(self, option_id: str) -> LlmOption | None:
        return self.options.get(option_id)


class _Circuits:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def record(self, option_id: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"option_id": option_id, **kwargs})
        return {"transition": "none", "now": "2027-01-15T08:00:01Z"}


class _Provider:
    """Answers prose whatever was asked; embeds with unit vectors of length 3."""

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        self.calls += 1
        return answer("Sure! Here is your JSON.")

    def embed(self, option: LlmOption, request: EmbeddingRequest, timeout_s: float) -> EmbeddingResult:
        self.calls += 1
        return EmbeddingResult(
            vectors=[[1.0, 0.0, 0.0] for _ in request.inputs], prompt_tokens=len(request.inputs)
        )


def _invoker(option: LlmOption) -> tuple[CandidateInvoker, _Provider, _Circuits]:
    provider, circuits = _Provider(), _Circuits()

    def providers(kind: ProviderKind) -> Provider:
        return provider

    invoker = CandidateInvoker(
        options=_Options(option),
        payloads=_Payloads(),
        circuits=circuits,
        providers=providers,
        events=RecordingEventSink(),
        clock=_Clock(),
    )
    return invoker, provider, circuits


def _event(request: dict[str, Any]) -> dict[str, Any]:
    return {"option_id": "opt-a", "deadline_ms": NOW_MS + 20_000, "request": request, "request_id": "r1"}


def test_prose_for_a_schema_is_a_provider_failure_on_the_circuit() -> None:
    invoker, provider, circuits = _invoker(opt())
    request = chat(response_format=ResponseFormat("json_schema", name="trip", schema=SCHEMA)).to_dict()
    outcome = invoker.invoke(_event(request))
    assert outcome["ok"] is False and outcome["error"]["error_class"] == "malformed"
    assert provider.calls == 1
    assert circuits.calls[0]["success"] is False and circuits.calls[0]["error_class"] == "malformed"


def test_a_request_the_option_cannot_do_is_unsupported_and_never_reaches_it_or_its_circuit() -> None:
    invoker, provider, circuits = _invoker(opt(capabilities=["json_object"]))
    outcome = invoker.invoke(_event(chat(tools=(WEATHER,)).to_dict()))
    assert outcome["ok"] is False and outcome["error"]["error_class"] == "unsupported"
    assert provider.calls == 0 and circuits.calls == []


def test_an_embeddings_request_is_embedded_and_its_answer_travels_as_data() -> None:
    invoker, _, _ = _invoker(opt(task="embeddings"))
    outcome = invoker.invoke(_event(EmbeddingRequest(inputs=("a", "b")).to_dict()))
    assert outcome["ok"] is True
    assert EmbeddingResult.from_dict(outcome["result"]).vectors == [[1.0, 0.0, 0.0]] * 2
