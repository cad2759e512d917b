"""Mock provider, issue 13's contract: tool calls, tool results, structured outputs, images, embeddings."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from switchboard.errors import ErrorClass, ProviderError
from switchboard.json_schema import validate
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    FunctionTool,
    ImagePart,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
)
from switchboard.providers.mock import MockProvider
from tests.fakes import ManualClock

WEATHER = FunctionTool(
    name="get_weather",
    description="Weather in a city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "detailed": {"type": "boolean"},
            "hours": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 23}},
            "where": {
                "type": "object",
                "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90}},
                "required": ["lat"],
            },
            "note": {"type": "string"},
        },
        "required": ["city", "unit", "days", "detailed", "hours", "where"],
        "additionalProperties": False,
    },
)
CLOCK = FunctionTool(name="get_time", parameters={"type": "object", "properties": {}})


def _option(**params: Any) -> LlmOption:
    return LlmOption(id="mock-echo", provider=ProviderKind.MOCK, params=params)


def _provider() -> MockProvider:
    return MockProvider(sleep=ManualClock().sleep)


def _user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def _complete(request: ChatRequest, **params: Any) -> ChatResult:
    return _provider().complete(_option(**params), request, timeout_s=5)


# --- tool calls -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("required"), "get_weather"),
        (ToolChoice("function", "get_time"), "get_time"),
        (ToolChoice("auto"), "get_weather"),
        (None, "get_weather"),
    ],
)
def test_calls_one_tool_with_schema_valid_arguments(choice: ToolChoice | None, expected: str) -> None:
    request = ChatRequest(messages=[_user("weather in Paris?")], tools=(WEATHER, CLOCK), tool_choice=choice)
    result = _complete(request)
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    assert len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call.name == expected
    tool = WEATHER if expected == "get_weather" else CLOCK
    arguments = json.loads(call.arguments)
    assert validate(arguments, dict(tool.parameters)) == []
    if expected == "get_weather":
        assert arguments == {
            "city": "mock",
            "unit": "celsius",
            "days": 1,
            "detailed": True,
            "hours": [0],
            "where": {"lat": 0},
        }
    assert result.completion_tokens == len(call.arguments.split())
    assert result.prompt_tokens == 3


def test_tool_call_ids_are_deterministic_per_conversation() -> None:
    first = ChatRequest(messages=[_user("weather in Paris?")], tools=(WEATHER,))
    again = ChatRequest(messages=[_user("weather in Paris?")], tools=(WEATHER,))
    other = ChatRequest(messages=[_user("weather in Rome?")], tools=(WEATHER,))
    ids = [_complete(r).tool_calls[0].id for r in (first, again, other)]
    assert ids[0] == ids[1] != ids[2]
    assert all(i.startswith("call_") and len(i) == 29 for i in ids)


def test_tool_result_is_answered_with_text_holding_every_result_verbatim() -> None:
    call_a = ToolCall(id="call_a", name="get_weather", arguments='{"city": "Paris"}')
    call_b = ToolCall(id="call_b", name="get_time", arguments="{}")
    request = ChatRequest(
        messages=[
            _user("weather and time in Paris?"),
            ChatMessage("assistant", "", tool_calls=(call_a, call_b)),
            ChatMessage("tool", '{"temp": 18, "sky": "clear"}', tool_call_id="call_a"),
            ChatMessage("tool", (TextPart("12:00 CET"),), tool_call_id="call_b"),
        ],
        tools=(WEATHER, CLOCK),
    )
    result = _complete(request)
    assert result.tool_calls == ()
    assert result.finish_reason == "stop"
    assert '{"temp": 18, "sky": "clear"}' in result.text
    assert "12:00 CET" in result.text
    assert result.text.splitlines() == [
        "[mock-echo] weather and time in Paris?",
        'tool get_weather (call_a): {"temp": 18, "sky": "clear"}',
        "tool get_time (call_b): 12:00 CET",
    ]


def test_required_calls_a_tool_even_after_a_tool_result() -> None:
    call = ToolCall(id="call_a", name="get_time", arguments="{}")
    request = ChatRequest(
        messages=[
            _user("time?"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "noon", tool_call_id="call_a"),
        ],
        tools=(CLOCK,),
        tool_choice=ToolChoice("required"),
    )
    assert _complete(request).tool_calls[0].name == "get_time"


def test_tool_choice_none_answers_text_as_before() -> None:
    request = ChatRequest(messages=[_user("hello")], tools=(WEATHER,), tool_choice=ToolChoice("none"))
    result = _complete(request)
    assert (result.text, result.finish_reason, result.tool_calls) == ("[mock-echo] hello", "stop", ())


def test_auto_after_an_assistant_message_answers_text() -> None:
    request = ChatRequest(messages=[_user("hello"), ChatMessage("assistant", "hi")], tools=(WEATHER,))
    assert _complete(request).tool_calls == ()


def test_tool_call_answer_survives_the_workflow_round_trip() -> None:
    result = _complete(ChatRequest(messages=[_user("x")], tools=(WEATHER,)))
    assert ChatResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --- structured outputs ---------------------------------------------------------------------------


class Step(BaseModel):
    explanation: str
    output: str


class Answer(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: float = Field(ge=0.5, le=1)


def test_json_schema_answer_validates_and_parses_with_the_clients_model() -> None:
    schema = Answer.model_json_schema()
    request = ChatRequest(
        messages=[_user("solve 8x + 7 = -23")],
        response_format=ResponseFormat(type="json_schema", name="answer", schema=schema, strict=True),
        max_tokens=1,  # JSON is never cut: a truncated document would not parse
    )
    result = _complete(request)
    assert result.finish_reason == "stop"
    document = json.loads(result.text)
    assert validate(document, schema) == []
    assert Answer.model_validate(document).confidence == 0.5


def test_json_object_answer_is_an_object_holding_the_text_answer() -> None:
    request = ChatRequest(messages=[_user("hi there")], response_format=ResponseFormat(type="json_object"))
    assert json.loads(_complete(request).text) == {"answer": "[mock-echo] hi there"}


def test_tools_win_over_response_format_when_a_call_is_due() -> None:
    request = ChatRequest(
        messages=[_user("x")], tools=(CLOCK,), response_format=ResponseFormat(type="json_object")
    )
    assert _complete(request).finish_reason == "tool_calls"


# --- images ---------------------------------------------------------------------------------------


def test_text_answer_counts_images_and_names_their_types() -> None:
    request = ChatRequest(
        messages=[
            ChatMessage("user", (TextPart("what is this?"), ImagePart("image/png", "iVBORw0KGgo="))),
            ChatMessage("assistant", "a logo"),
            ChatMessage(
                "user",
                (TextPart("and these?"), ImagePart("image/jpeg", "/9j/"), ImagePart("image/webp", "UklG")),
            ),
        ]
    )
    result = _complete(request)
    assert result.text == "[mock-echo] and these? (received 3 images: image/png, image/jpeg, image/webp)"


def test_one_image_is_singular() -> None:
    request = ChatRequest(messages=[ChatMessage("user", (ImagePart("image/gif", "R0lG"),))])
    assert _complete(request).text == "[mock-echo]  (received 1 image: image/gif)"


# --- embeddings -----------------------------------------------------------------------------------


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_embeddings_are_unit_length_deterministic_and_distinct() -> None:
    provider = _provider()
    request = EmbeddingRequest(inputs=("hello world", "goodbye", "hello world"))
    result = provider.embed(_option(), request, timeout_s=5)
    assert len(result.vectors) == 3
    assert all(len(v) == 256 for v in result.vectors)
    assert all(abs(_norm(v) - 1) < 1e-9 for v in result.vectors)
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert result.prompt_tokens == 5
    assert result.model == "mock"
    assert provider.embed(_option(), request, timeout_s=5) == result
    assert provider.calls["mock-echo"] == 2


def test_embedding_dimensions_from_params_and_request() -> None:
    provider = _provider()
    full = provider.embed(_option(dimensions=64), EmbeddingRequest(inputs=("x",)), 5).vectors[0]
    assert len(full) == 64
    short = provider.embed(_option(dimensions=64), EmbeddingRequest(inputs=("x",), dimensions=16), 5).vectors[
        0
    ]
    assert len(short) == 16 and abs(_norm(short) - 1) < 1e-9
    scale = _norm(full[:16])
    assert short == pytest.approx([x / scale for x in full[:16]])  # a prefix, renormalised
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(dimensions=64), EmbeddingRequest(inputs=("x",), dimensions=65), 5)
    assert info.value.error_class is ErrorClass.BAD_REQUEST
    # `dimensions` is refused on write when it is no positive integer; an older item falls back.
    stale = _option()
    object.__setattr__(stale, "params", {**stale.params, "dimensions": "big"})
    assert len(provider.embed(stale, EmbeddingRequest(inputs=("x",)), 5).vectors[0]) == 256


def test_token_arrays_are_embedded_as_their_text_form() -> None:
    provider = _provider()
    tokens = provider.embed(_option(), EmbeddingRequest(inputs=((15339, 1917),)), 5)
    text = provider.embed(_option(), EmbeddingRequest(inputs=("15339 1917",)), 5)
    assert tokens.vectors == text.vectors
    assert tokens.prompt_tokens == 2


def test_embed_has_the_same_fault_injection() -> None:
    clock = ManualClock()
    with pytest.raises(ProviderError) as info:
        MockProvider(sleep=clock.sleep).embed(_option(latency_ms=2000), EmbeddingRequest(inputs=("x",)), 0.5)
    assert info.value.error_class is ErrorClass.TIMEOUT and clock.slept == [0.5]
    provider = MockProvider(sleep=clock.sleep, rng=random.Random(3))
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(error_rate=1, error_kind="throttled"), EmbeddingRequest(inputs=("x",)), 5)
    assert info.value.error_class is ErrorClass.THROTTLED


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=2, max_size=6, unique=True), st.integers(1, 300))
def test_different_texts_get_different_unit_vectors(texts: list[str], dimensions: int) -> None:
    result = _provider().embed(
        _option(dimensions=300), EmbeddingRequest(inputs=tuple(texts), dimensions=dimensions), 5
    )
    assert all(len(v) == dimensions and abs(_norm(v) - 1) < 1e-9 for v in result.vectors)
    if dimensions > 1:
        assert len({tuple(v) for v in result.vectors}) == len(texts)


# --- the invoke step's judge accepts what the mock answers ------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        ChatRequest(messages=[_user("x")], tools=(WEATHER, CLOCK)),
        ChatRequest(
            messages=[_user("x")], tools=(WEATHER, CLOCK), tool_choice=ToolChoice("function", "get_time")
        ),
        ChatRequest(
            messages=[_user("x")],
            tools=(WEATHER,),
            tool_choice=ToolChoice("required"),
            parallel_tool_calls=False,
        ),
        ChatRequest(messages=[_user("x")], response_format=ResponseFormat(type="json_object")),
        ChatRequest(
            messages=[_user("x")],
            response_format=ResponseFormat(type="json_schema", name="a", schema=Answer.model_json_schema()),
        ),
    ],
)
def test_mock_answers_pass_the_invoke_steps_answer_checks(request_: ChatRequest) -> None:
    from switchboard.answers import check_chat_answer

    option = _option()
    check_chat_answer(option, request_, _provider().complete(option, request_, 5))
