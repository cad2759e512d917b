"""Bedrock Converse: tools, tool history, images, cache points, structured outputs, capability errors.

Every request shape goes through botocore's Stubber, which checks it against the real
bedrock-runtime service model before comparing it with the expected parameters.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers import bedrock
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    FunctionTool,
    ImagePart,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
)
from switchboard.providers.bedrock import (
    BedrockConverseProvider,
    closed_object_schema,
    converse_tool_use_id,
    to_converse_messages,
)

MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24

pytestmark = pytest.mark.usefixtures("aws_credentials")

WEATHER = FunctionTool(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = FunctionTool(name="get_time", parameters={"type": "object", "properties": {}})
WEATHER_SPEC = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "inputSchema": {"json": dict(WEATHER.parameters)},
    }
}
TIME_SPEC = {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}}


@pytest.fixture
def client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def provider(client: Any) -> BedrockConverseProvider:
    return BedrockConverseProvider(client_factory=lambda region: client)


def _option(**params: Any) -> LlmOption:
    return LlmOption(
        id="claude", provider=ProviderKind.BEDROCK, model=MODEL, region="us-east-1", params=params
    )


def _answer(*content: dict[str, Any], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": list(content)}},
        "stopReason": stop,
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, **usage},
        "metrics": {"latencyMs": 100},
    }


def _tool_use(use_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": use_id, "name": name, "input": arguments}}


def _user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


TOOL_ROUND = [
    ChatMessage("system", "You are terse."),
    _user("Weather in Paris and Rome? And the time?"),
    ChatMessage(
        "assistant",
        "Checking.",
        tool_calls=(
            ToolCall("tooluse_1", "get_weather", '{"city": "Paris"}'),
            ToolCall("tooluse_2", "get_weather", '{"city": "Rome"}'),
        ),
    ),
    ChatMessage("tool", "18C, sunny", tool_call_id="tooluse_1"),
    ChatMessage("tool", "21C, cloudy", tool_call_id="tooluse_2"),
    _user("Thanks, summarize."),
]
TOOL_ROUND_MESSAGES = [
    {"role": "user", "content": [{"text": "Weather in Paris and Rome? And the time?"}]},
    {
        "role": "assistant",
        "content": [
            {"text": "Checking."},
            _tool_use("tooluse_1", "get_weather", {"city": "Paris"}),
            _tool_use("tooluse_2", "get_weather", {"city": "Rome"}),
        ],
    },
    {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18C, sunny"}]}},
            {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "21C, cloudy"}]}},
            {"text": "Thanks, summarize."},
        ],
    },
]


# --- tools -------------------------------------------------------------------------------------------


def test_tool_history_and_tools_map_to_converse_blocks(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    # Given a finished tool round (two results, then a user message) with tools still offered
    request = ChatRequest(messages=TOOL_ROUND, tools=(WEATHER, TIME), tool_choice=ToolChoice("auto"))
    expected = {
        "modelId": MODEL,
        "system": [{"text": "You are terse."}],
        "messages": TOOL_ROUND_MESSAGES,
        "toolConfig": {"tools": [WEATHER_SPEC, TIME_SPEC]},  # auto: Converse's default, left unsaid
    }
    stubber.add_response("converse", _answer({"text": "Paris 18C sunny, Rome 21C cloudy."}), expected)

    # When
    result = provider.complete(_option(), request, 5)

    # Then
    assert result.text == "Paris 18C sunny, Rome 21C cloudy."
    assert (result.finish_reason, result.tool_calls) == ("stop", ())


def test_tool_use_answer_becomes_tool_calls(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    # Given a model that calls two tools and says nothing
    stubber.add_response(
        "converse",
        _answer(
            _tool_use("tooluse_a", "get_weather", {"city": "Zürich"}),
            _tool_use("tooluse_b", "get_time", {}),
            stop="tool_use",
        ),
    )

    # When
    result = provider.complete(_option(), ChatRequest(messages=[_user("hi")], tools=(WEATHER, TIME)), 5)

    # Then: OpenAI's shape, arguments as JSON text, finish tool_calls, no text
    assert result.text == ""
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (
        ToolCall("tooluse_a", "get_weather", '{"city": "Zürich"}'),
        ToolCall("tooluse_b", "get_time", "{}"),
    )
    assert json.loads(result.tool_calls[0].arguments) == {"city": "Zürich"}


@pytest.mark.parametrize(
    ("choice", "converse_choice"),
    [
        (None, None),
        (ToolChoice("auto"), None),
        (ToolChoice("required"), {"any": {}}),
        (ToolChoice("function", "get_time"), {"tool": {"name": "get_time"}}),
    ],
)
def test_tool_choice_mapping(
    provider: BedrockConverseProvider, stubber: Stubber, choice: ToolChoice | None, converse_choice: Any
) -> None:
    tool_config: dict[str, Any] = {"tools": [WEATHER_SPEC, TIME_SPEC]}
    if converse_choice is not None:
        tool_config["toolChoice"] = converse_choice
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "toolConfig": tool_config,
    }
    stubber.add_response("converse", _answer(_tool_use("t1", "get_time", {}), stop="tool_use"), expected)
    result = provider.complete(
        _option(), ChatRequest(messages=[_user("hi")], tools=(WEATHER, TIME), tool_choice=choice), 5
    )
    assert result.finish_reason == "tool_calls"


def test_tool_choice_none_without_history_sends_no_tools(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    expected = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    stubber.add_response("converse", _answer({"text": "Hello."}), expected)
    request = ChatRequest(messages=[_user("hi")], tools=(WEATHER,), tool_choice=ToolChoice("none"))
    assert provider.complete(_option(), request, 5).text == "Hello."


def test_tool_choice_none_with_history_keeps_tools_and_drops_calls(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    # Given tool history (Converse then needs toolConfig) and `none`
    request = ChatRequest(messages=TOOL_ROUND, tools=(WEATHER, TIME), tool_choice=ToolChoice("none"))
    expected = {
        "modelId": MODEL,
        "system": [{"text": "You are terse."}],
        "messages": TOOL_ROUND_MESSAGES,
        "toolConfig": {"tools": [WEATHER_SPEC, TIME_SPEC]},  # no toolChoice: Converse has no "none"
    }
    # When the model calls a tool anyway, with some text
    stubber.add_response(
        "converse",
        _answer({"text": "Both are mild."}, _tool_use("t9", "get_time", {}), stop="tool_use"),
        expected,
    )
    result = provider.complete(_option(), request, 5)

    # Then the call is dropped and the text is the answer
    assert (result.text, result.tool_calls, result.finish_reason) == ("Both are mild.", (), "stop")


def test_tool_choice_none_answer_with_only_a_tool_call_is_malformed(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    stubber.add_response("converse", _answer(_tool_use("t9", "get_time", {}), stop="tool_use"))
    request = ChatRequest(messages=TOOL_ROUND, tools=(WEATHER, TIME), tool_choice=ToolChoice("none"))
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), request, 5)
    assert info.value.error_class is ErrorClass.MALFORMED


def test_tool_history_without_tools_gets_permissive_specs(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    # Given tool history but no tools in this request
    expected = {
        "modelId": MODEL,
        "system": [{"text": "You are terse."}],
        "messages": TOOL_ROUND_MESSAGES,
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]
        },
    }
    stubber.add_response("converse", _answer({"text": "Mild."}), expected)
    assert provider.complete(_option(), ChatRequest(messages=TOOL_ROUND), 5).text == "Mild."


def test_parallel_tool_calls_false_keeps_the_first_call(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    stubber.add_response(
        "converse",
        _answer(
            _tool_use("a", "get_weather", {"city": "X"}), _tool_use("b", "get_time", {}), stop="tool_use"
        ),
    )
    request = ChatRequest(messages=[_user("hi")], tools=(WEATHER, TIME), parallel_tool_calls=False)
    result = provider.complete(_option(), request, 5)
    assert [call.id for call in result.tool_calls] == ["a"]


def test_tool_call_ids_converse_cannot_take_are_replaced_consistently() -> None:
    odd = "call/" + "x" * 100  # OpenAI allows any string; Converse wants [a-zA-Z0-9_.:-]{1,64}
    _, messages = to_converse_messages(
        [
            _user("go"),
            ChatMessage("assistant", tool_calls=(ToolCall(odd, "get_time", "not json"),)),
            ChatMessage("tool", "", tool_call_id=odd),
        ]
    )
    use = messages[1]["content"][0]["toolUse"]
    result = messages[2]["content"][0]["toolResult"]
    assert use["toolUseId"] == result["toolUseId"] == converse_tool_use_id(odd)
    assert use["toolUseId"] != odd and len(use["toolUseId"]) <= 64
    assert use["input"] == {}  # unparsable arguments: an empty object, as Converse needs an object
    assert result["content"] == [{"text": bedrock.EMPTY_TOOL_RESULT}]
    assert converse_tool_use_id("tooluse_AbC-1.2:3") == "tooluse_AbC-1.2:3"


def test_strict_is_sent_only_when_the_option_allows(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    strict_tool = FunctionTool(name="get_time", parameters={"type": "object", "properties": {}}, strict=True)
    plain = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    stubber.add_response(
        "converse",
        _answer({"text": "ok"}),
        {**plain, "toolConfig": {"tools": [TIME_SPEC]}},
    )
    strict_spec = {"toolSpec": {**TIME_SPEC["toolSpec"], "strict": True}}
    stubber.add_response(
        "converse",
        _answer({"text": "ok"}),
        {**plain, "toolConfig": {"tools": [strict_spec]}},
    )
    request = ChatRequest(messages=[_user("hi")], tools=(strict_tool,))
    provider.complete(_option(), request, 5)
    provider.complete(_option(strict_tools=True), request, 5)


# --- images and cache points --------------------------------------------------------------------------


def test_images_are_sent_as_bytes(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    image = ImagePart("image/png", base64.b64encode(PNG).decode())
    webp = ImagePart("image/webp", base64.b64encode(b"RIFF....WEBP").decode())
    request = ChatRequest(messages=[ChatMessage("user", (TextPart("What is this?"), image, webp))])
    expected = {
        "modelId": MODEL,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "What is this?"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                    {"image": {"format": "webp", "source": {"bytes": b"RIFF....WEBP"}}},
                ],
            }
        ],
    }
    stubber.add_response("converse", _answer({"text": "A tiny PNG."}), expected)
    assert provider.complete(_option(), request, 5).text == "A tiny PNG."


def test_cache_hints_become_cache_points_and_usage_details(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    # Given cache hints on a system part and on a user part
    request = ChatRequest(
        messages=[
            ChatMessage("system", (TextPart("Long policy text", cache=True), TextPart("Be brief."))),
            ChatMessage("user", (TextPart("Long document", cache=True), TextPart("Question?"))),
        ]
    )
    expected = {
        "modelId": MODEL,
        "system": [{"text": "Long policy text"}, {"cachePoint": {"type": "default"}}, {"text": "Be brief."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "Long document"},
                    {"cachePoint": {"type": "default"}},
                    {"text": "Question?"},
                ],
            }
        ],
    }
    stubber.add_response(
        "converse",
        _answer({"text": "Answer."}, cacheReadInputTokens=1000, cacheWriteInputTokens=200),
        expected,
    )

    # When
    result = provider.complete(_option(), request, 5)

    # Then: prompt tokens count every input token, as OpenAI's do
    assert (result.cached_tokens, result.cache_write_tokens) == (1000, 200)
    assert result.prompt_tokens == 10 + 1000 + 200
    assert result.to_dict()["cached_tokens"] == 1000


def test_no_cache_details_when_not_reported(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    stubber.add_response("converse", _answer({"text": "x"}))
    result = provider.complete(_option(), ChatRequest(messages=[_user("hi")]), 5)
    assert (result.cached_tokens, result.cache_write_tokens, result.prompt_tokens) == (None, None, 10)


CACHED_REQUEST = ChatRequest(messages=[ChatMessage("user", (TextPart("Doc", cache=True), TextPart("Q?")))])
WITH_CACHE = {
    "modelId": MODEL,
    "messages": [
        {"role": "user", "content": [{"text": "Doc"}, {"cachePoint": {"type": "default"}}, {"text": "Q?"}]}
    ],
}
WITHOUT_CACHE = {
    "modelId": MODEL,
    "messages": [{"role": "user", "content": [{"text": "Doc"}, {"text": "Q?"}]}],
}


@pytest.mark.parametrize(("code", "status"), [("AccessDeniedException", 403), ("ValidationException", 400)])
def test_refused_cache_points_are_dropped_and_the_call_made_again(
    provider: BedrockConverseProvider, stubber: Stubber, code: str, status: int
) -> None:
    # Given a model without prompt caching
    stubber.add_client_error(
        "converse",
        service_error_code=code,
        service_message="You invoked an unsupported model or your request did not allow prompt caching.",
        http_status_code=status,
        expected_params=WITH_CACHE,
    )
    stubber.add_response("converse", _answer({"text": "A."}), WITHOUT_CACHE)

    # When / Then: the hint is dropped, the answer is the same
    assert provider.complete(_option(), CACHED_REQUEST, 5).text == "A."


def test_prompt_caching_off_in_the_option(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    stubber.add_response("converse", _answer({"text": "A."}), WITHOUT_CACHE)
    assert provider.complete(_option(prompt_caching=False), CACHED_REQUEST, 5).text == "A."


def test_caching_refused_without_cache_points_is_not_retried(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    stubber.add_client_error(
        "converse",
        service_error_code="AccessDeniedException",
        service_message="You invoked an unsupported model or your request did not allow prompt caching.",
        http_status_code=403,
    )
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), ChatRequest(messages=[_user("hi")]), 5)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


# --- structured outputs -------------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "pets": {
            "type": "array",
            "items": {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}}},
        },
    },
    "required": ["name"],
}


def test_json_schema_uses_native_output_config(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    request = ChatRequest(
        messages=[_user("Who?")],
        response_format=ResponseFormat(
            "json_schema", name="person", schema=PERSON, strict=True, description="A person"
        ),
    )
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "Who?"}]}],
        "outputConfig": {
            "textFormat": {
                "type": "json_schema",
                "structure": {
                    "jsonSchema": {
                        "schema": json.dumps(closed_object_schema(PERSON)),
                        "name": "person",
                        "description": "A person",
                    }
                },
            }
        },
    }
    stubber.add_response("converse", _answer({"text": '{"name": "Ada"}'}), expected)
    result = provider.complete(_option(), request, 5)
    assert (result.text, result.finish_reason) == ('{"name": "Ada"}', "stop")


def test_json_schema_as_a_forced_tool(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    # Given an option that asks for the tool way
    request = ChatRequest(
        messages=[_user("Who?")], response_format=ResponseFormat("json_schema", name="person", schema=PERSON)
    )
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "Who?"}]}],
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "person",
                        "description": "Give the final answer by calling this tool: its input is the answer.",
                        "inputSchema": {"json": PERSON},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": "person"}},
        },
    }
    stubber.add_response(
        "converse", _answer(_tool_use("t", "person", {"name": "Ada"}), stop="tool_use"), expected
    )

    # When
    result = provider.complete(_option(structured_output="tool"), request, 5)

    # Then: the tool's input is the content, and the answer is a plain stop
    assert json.loads(result.text) == {"name": "Ada"}
    assert (result.finish_reason, result.tool_calls) == ("stop", ())


def test_json_object_is_a_forced_tool_with_a_permissive_schema(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    request = ChatRequest(messages=[_user("JSON please")], response_format=ResponseFormat("json_object"))
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "JSON please"}]}],
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "json_object",
                        "description": "Give the final answer by calling this tool: its input is the answer.",
                        "inputSchema": {"json": {"type": "object"}},
                    }
                }
            ],
            "toolChoice": {"tool": {"name": "json_object"}},
        },
    }
    stubber.add_response(
        "converse", _answer(_tool_use("t", "json_object", {"a": [1, 2]}), stop="tool_use"), expected
    )
    assert json.loads(provider.complete(_option(), request, 5).text) == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("called", "text", "calls"),
    [
        (_tool_use("t1", "get_time", {}), "", ("get_time",)),
        (_tool_use("t2", "person", {"name": "Ada"}), '{"name": "Ada"}', ()),
    ],
)
def test_forced_answer_tool_beside_client_tools(
    provider: BedrockConverseProvider,
    stubber: Stubber,
    called: dict[str, Any],
    text: str,
    calls: tuple[str, ...],
) -> None:
    # Given client tools (auto) and a schema answered by tool: the model must call one of them
    request = ChatRequest(
        messages=[_user("Who?")],
        tools=(TIME,),
        response_format=ResponseFormat("json_schema", name="person", schema=PERSON),
    )
    stubber.add_response("converse", _answer(called, stop="tool_use"))
    kwargs = bedrock.plan_converse(_option(structured_output="tool"), request).kwargs
    assert kwargs["toolConfig"]["toolChoice"] == {"any": {}}
    assert [t["toolSpec"]["name"] for t in kwargs["toolConfig"]["tools"]] == ["get_time", "person"]

    # When the model calls a client tool, that is the answer; when it calls the answer tool, its input is
    result = provider.complete(_option(structured_output="tool"), request, 5)
    assert result.text == text
    assert tuple(call.name for call in result.tool_calls) == calls


def test_answer_tool_name_never_shadows_a_client_tool() -> None:
    request = ChatRequest(
        messages=[_user("x")],
        tools=(TIME,),
        response_format=ResponseFormat("json_schema", name="get_time", schema=PERSON),
    )
    plan = bedrock.plan_converse(_option(structured_output="tool"), request)
    assert plan.answer_tool == "get_time_answer"


def test_closed_object_schema_closes_every_silent_object_and_nothing_else() -> None:
    schema = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},  # a property *named* type is not an object schema
            "meta": {"type": "object", "additionalProperties": {"type": "string"}},  # explicit: kept
            "choice": {"anyOf": [{"type": "object", "properties": {}}, {"type": "null"}]},
            "ref": {"$ref": "#/$defs/item"},
            "default_data": {"type": "string", "default": {"type": "object"}},
        },
        "$defs": {"item": {"type": ["object", "null"], "properties": {"n": {"type": "integer"}}}},
    }
    closed = closed_object_schema(schema)
    assert closed["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]["type"]
    assert closed["properties"]["meta"]["additionalProperties"] == {"type": "string"}
    assert closed["properties"]["choice"]["anyOf"][0]["additionalProperties"] is False
    assert closed["$defs"]["item"]["additionalProperties"] is False
    assert closed["properties"]["default_data"]["default"] == {"type": "object"}
    assert "additionalProperties" not in schema  # the request's schema is not touched


@pytest.mark.parametrize(
    ("key", "value"), [("structured_output", "magic"), ("prompt_caching", "yes"), ("strict_tools", 1)]
)
def test_misconfigured_option_params_are_unavailable(key: str, value: Any) -> None:
    """Refused on write (options.model); an item stored before that rule still fails safely."""
    request = ChatRequest(messages=[_user("x")], response_format=ResponseFormat("json_object"))
    option = _option()
    object.__setattr__(option, "params", {**option.params, key: value})
    with pytest.raises(ProviderError) as info:
        bedrock.plan_converse(option, request)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


# --- capability errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("This model doesn't support tool use.", ErrorClass.UNSUPPORTED),
        ("This model doesn't support tool use in streaming mode.", ErrorClass.UNSUPPORTED),
        (
            "This model doesn't support the toolConfig.toolChoice.any field. "
            "Remove toolConfig.toolChoice.any and try again.",
            ErrorClass.UNSUPPORTED,
        ),
        (
            "This model doesn't support the image content block that you provided. "
            "Update the content block and try again.",
            ErrorClass.UNSUPPORTED,
        ),
        (
            "messages.2.content: Conversation blocks and tool result blocks "
            "cannot be provided in the same turn.",
            ErrorClass.UNSUPPORTED,
        ),
        ("This model doesn't support the outputConfig.textFormat field.", ErrorClass.UNSUPPORTED),
        ("Structured output is not supported for this model.", ErrorClass.UNSUPPORTED),
        ("temperature: range: 0..1", ErrorClass.BAD_REQUEST),
        ("The model doesn't support the top_k field.", ErrorClass.BAD_REQUEST),
        ("Input is too long for requested model.", ErrorClass.CONTEXT_TOO_LONG),
    ],
)
def test_capability_refusals_are_unsupported(
    provider: BedrockConverseProvider, stubber: Stubber, message: str, expected: ErrorClass
) -> None:
    stubber.add_client_error(
        "converse", service_error_code="ValidationException", service_message=message, http_status_code=400
    )
    request = ChatRequest(messages=[_user("x")], tools=(TIME,))
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), request, 5)
    assert info.value.error_class is expected
    assert not info.value.error_class.counts_against_circuit


# --- message shape invariants ---------------------------------------------------------------------------

_texts = st.sampled_from(["", "  ", "hi", "more text"])
_messages = st.lists(
    st.one_of(
        st.builds(lambda t: ChatMessage("system", t), _texts),
        st.builds(lambda t: ChatMessage("user", t), _texts),
        st.builds(
            lambda t, c: ChatMessage("user", (TextPart(t, cache=c), TextPart("q"))), _texts, st.booleans()
        ),
        st.builds(lambda t: ChatMessage("assistant", t), _texts),
        st.builds(
            lambda t, n: ChatMessage("assistant", t, tool_calls=(ToolCall(f"id{n}", "get_time", "{}"),)),
            _texts,
            st.integers(0, 3),
        ),
        st.builds(lambda t, n: ChatMessage("tool", t, tool_call_id=f"id{n}"), _texts, st.integers(0, 3)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_messages)
def test_converse_messages_alternate_start_with_user_and_hold_no_blank_text(
    messages: list[ChatMessage],
) -> None:
    system, converse = to_converse_messages(messages)
    assert all(block.get("text", "x").strip() for block in system)
    if not converse:
        return
    assert converse[0]["role"] == "user"
    for before, after in itertools.pairwise(converse):
        assert before["role"] != after["role"]
    for message in converse:
        assert message["content"], "no empty message"
        assert "cachePoint" not in message["content"][0]
        assert all(block["text"].strip() for block in message["content"] if "text" in block)
        if message["role"] == "assistant":
            assert not any("toolResult" in block for block in message["content"])
        else:
            assert not any("toolUse" in block for block in message["content"])


def test_answer_tool_name_never_shadows_a_tool_of_the_history() -> None:
    request = ChatRequest(
        messages=TOOL_ROUND, response_format=ResponseFormat("json_schema", name="get_weather")
    )
    plan = bedrock.plan_converse(_option(structured_output="tool"), request)
    names = [tool["toolSpec"]["name"] for tool in plan.kwargs["toolConfig"]["tools"]]
    assert names == ["get_weather", "get_weather_answer"]
    assert plan.kwargs["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather_answer"}}
    assert plan.drop_tool_calls


def test_a_schema_that_is_not_an_object_travels_as_the_answer_tools_value(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    # Given an array schema answered by tool (a tool's input must be an object)
    tags = {"type": "array", "items": {"type": "string"}}
    request = ChatRequest(
        messages=[_user("Tags?")], response_format=ResponseFormat("json_schema", name="tags", schema=tags)
    )
    plan = bedrock.plan_converse(_option(structured_output="tool"), request)
    assert plan.kwargs["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == {
        "type": "object",
        "properties": {"value": tags},
        "required": ["value"],
    }
    stubber.add_response("converse", _answer(_tool_use("t", "tags", {"value": ["a", "b"]}), stop="tool_use"))

    # When / Then: the content is the value itself
    result = provider.complete(_option(structured_output="tool"), request, 5)
    assert json.loads(result.text) == ["a", "b"]


def test_parameters_without_a_root_type_are_said_to_be_objects() -> None:
    tool = FunctionTool(name="lookup", parameters={"properties": {"q": {"type": "string"}}})
    plan = bedrock.plan_converse(_option(), ChatRequest(messages=[_user("x")], tools=(tool,)))
    assert plan.kwargs["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"] == {
        "type": "object",
        "properties": {"q": {"type": "string"}},
    }


_requests = st.builds(
    lambda messages, tools, choice, fmt, parallel: ChatRequest(
        messages=[*messages, _user("now")],
        tools=tools,
        tool_choice=choice if tools or (choice is not None and choice.mode in ("auto", "none")) else None,
        response_format=fmt,
        parallel_tool_calls=parallel,
    ),
    _messages,
    st.sampled_from([(), (WEATHER,), (WEATHER, TIME)]),
    st.sampled_from(
        [
            None,
            ToolChoice("auto"),
            ToolChoice("none"),
            ToolChoice("required"),
            ToolChoice("function", "get_weather"),
        ]
    ),
    st.sampled_from(
        [
            None,
            ResponseFormat("text"),
            ResponseFormat("json_object"),
            ResponseFormat("json_schema", name="person", schema=PERSON),
            ResponseFormat("json_schema", name="tags", schema={"type": "array", "items": {"type": "string"}}),
        ]
    ),
    st.sampled_from([None, True, False]),
)


@functools.cache
def _converse_input_shape() -> Any:
    return (
        boto3.client("bedrock-runtime", region_name="us-east-1")
        .meta.service_model.operation_model("Converse")
        .input_shape
    )


def _tool_results_answer_earlier_calls(messages: list[ChatMessage]) -> bool:
    called: set[str] = set()
    for message in messages:
        called.update(call.id for call in message.tool_calls)
        if message.role == "tool" and message.tool_call_id not in called:
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(_requests, st.sampled_from(["native", "tool"]))
def test_every_plan_is_a_valid_converse_request(request: ChatRequest, structured: str) -> None:
    # Any mix of history, tools, tool choice and response format gives parameters that botocore's
    # model of Converse accepts, with a tool choice that names an offered tool.
    from botocore.validate import validate_parameters

    assume(_tool_results_answer_earlier_calls(request.messages))  # as the gateway guarantees
    plan = bedrock.plan_converse(_option(structured_output=structured), request)
    validate_parameters(plan.kwargs, _converse_input_shape())
    config = plan.kwargs.get("toolConfig")
    history = any(m.role == "tool" or m.tool_calls for m in request.messages)
    assert config is not None or not history  # Converse needs toolConfig to read tool history
    if config is not None:
        names = [tool["toolSpec"]["name"] for tool in config["tools"]]
        assert len(names) == len(set(names))
        named = config.get("toolChoice", {}).get("tool", {}).get("name")
        assert named is None or named in names
