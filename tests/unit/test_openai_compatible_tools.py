"""OpenAI-compatible chat with the whole request: tools, tool results, images, response formats,
cache hints, tool-call answers, usage details and "feature not supported" errors, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    FunctionTool,
    ImagePart,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolChoice,
)
from switchboard.providers.openai_compatible import (
    OpenAICompatibleProvider,
    chat_body,
    parse_chat_completion,
    unsupported_feature,
)
from tests.fakes.openai_http import CHAT_OK_BODY, FakeOpenAIServer, running_openai_server

PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = FunctionTool(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = FunctionTool(name="get_time")


@pytest.fixture(scope="module")
def _running_server() -> Iterator[FakeOpenAIServer]:
    with running_openai_server() as fake:
        yield fake


@pytest.fixture
def server(_running_server: FakeOpenAIServer) -> FakeOpenAIServer:
    return _running_server.reset()


def _option(base_url: str = "http://127.0.0.1:9/v1", **params: Any) -> LlmOption:
    return LlmOption(
        id="third-party",
        provider=ProviderKind.OPENAI_COMPATIBLE,
        model="gpt-test",
        base_url=base_url,
        params={"max_tokens": 64, "temperature": 0.3, **params},
    )


def _agent_request(**kwargs: Any) -> ChatRequest:
    """A second agent turn: the user asked (with a cached system prompt and a picture), the model
    called a tool, the tool answered."""
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    messages = [
        ChatMessage("system", (TextPart("You are a weather bot.", cache=True),)),
        ChatMessage(
            "user",
            (TextPart("Weather where this was taken?"), ImagePart("image/png", PNG_BASE64, detail="low")),
        ),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "18C and sunny", tool_call_id="call_1"),
    ]
    return ChatRequest(messages=messages, tools=(WEATHER, CLOCK), **kwargs)


def _answer(
    message: dict[str, Any], finish_reason: str | None = "tool_calls", **extra: Any
) -> dict[str, Any]:
    body = json.loads(json.dumps(CHAT_OK_BODY))
    body["choices"][0]["message"] = {"role": "assistant", **message}
    body["choices"][0]["finish_reason"] = finish_reason
    body.update(extra)
    return body


def _weather_call(call_id: str = "call_9", arguments: Any = '{"city": "Paris"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def _complete(server: FakeOpenAIServer, request: ChatRequest, **params: Any) -> Any:
    return OpenAICompatibleProvider().complete(_option(server.base_url, **params), request, timeout_s=5)


def test_the_whole_request_goes_out_as_the_client_sent_it(server: FakeOpenAIServer) -> None:
    # Given an agent turn with tools, a named tool choice, no parallel calls and a JSON schema
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
    request = _agent_request(
        tool_choice=ToolChoice("function", "get_weather"),
        parallel_tool_calls=False,
        response_format=ResponseFormat("json_schema", name="report", schema=schema, strict=True),
        temperature=0.9,
        user="end-user-7",
    )

    server.respond(200, _answer({"content": None, "tool_calls": [_weather_call()]}))

    # When
    _complete(server, request)

    # Then the body is the OpenAI request, with the option's model and defaults under the client's values,
    # and without the Switchboard-only cache hint
    [seen] = server.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.body == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You are a weather bot."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather where this was taken?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "content": "18C and sunny", "tool_call_id": "call_1"},
        ],
        "max_tokens": 64,
        "temperature": 0.9,
        "user": "end-user-7",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER.parameters,
                    "description": "Weather for a city",
                },
            },
            {
                "type": "function",
                "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
            },
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "report", "schema": schema, "strict": True},
        },
    }


def test_a_text_only_request_has_no_tool_fields(server: FakeOpenAIServer) -> None:
    _complete(server, ChatRequest(messages=[ChatMessage("user", "Hi")]))
    assert set(server.seen[0].body) == {"model", "messages", "max_tokens", "temperature"}


@pytest.mark.parametrize(
    ("key", "request_limit", "expected"),
    [
        ("max_completion_tokens", None, {"max_completion_tokens": 64}),
        ("max_completion_tokens", 500, {"max_completion_tokens": 500}),
        ("max_tokens", 500, {"max_tokens": 500}),
        (None, 500, {"max_tokens": 500}),
    ],
)
def test_the_output_limit_goes_out_under_the_options_key(
    key: str | None, request_limit: int | None, expected: dict[str, int]
) -> None:
    params = {"max_tokens_key": key} if key else {}
    body = chat_body(
        _option(**params), ChatRequest([ChatMessage("user", "Hi")], max_tokens=request_limit), model="o4"
    )
    assert {k: v for k, v in body.items() if k.startswith("max_")} == expected


def test_cache_hints_are_kept_when_the_option_says_its_server_honours_them(server: FakeOpenAIServer) -> None:
    server.respond(200, _answer({"content": "ok"}, "stop"))
    _complete(server, _agent_request(), forward_cache_hints=True)
    system = server.seen[0].body["messages"][0]
    assert system["content"] == [
        {"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}
    ]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.lists(st.tuples(st.text(max_size=5), st.booleans()), min_size=1, max_size=3),
        min_size=1,
        max_size=4,
    )
)
def test_no_cache_hint_leaves_unless_forwarded(parts_per_message: list[list[tuple[str, bool]]]) -> None:
    request = ChatRequest(
        messages=[
            ChatMessage("user", tuple(TextPart(text, cache=cache) for text, cache in parts))
            for parts in parts_per_message
        ]
    )
    stripped = json.dumps(chat_body(_option(), request, model="m"))
    kept = chat_body(_option(forward_cache_hints=True), request, model="m")
    assert "cache_control" not in stripped
    assert [[("cache_control" in p) for p in m["content"]] for m in kept["messages"]] == [
        [cache for _, cache in parts] for parts in parts_per_message
    ]
    # and the texts are untouched
    assert [[p["text"] for p in m["content"]] for m in json.loads(stripped)["messages"]] == [
        [text for text, _ in parts] for parts in parts_per_message
    ]


def test_tool_call_answer_with_null_content(server: FakeOpenAIServer) -> None:
    # Given the model only called tools (two of them), and reports cache and reasoning tokens
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 96, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    clock = {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    server.respond(
        200, _answer({"content": None, "tool_calls": [_weather_call("call_a"), clock]}, usage=usage)
    )

    # When
    result = _complete(server, _agent_request())

    # Then
    assert result.text == ""
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls == (
        ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_b", "get_time", "{}"),
    )
    assert (result.prompt_tokens, result.completion_tokens) == (120, 30)
    assert (result.cached_tokens, result.reasoning_tokens, result.cache_write_tokens) == (96, 12, None)


def test_usage_details_are_none_when_not_reported(server: FakeOpenAIServer) -> None:
    result = _complete(server, ChatRequest(messages=[ChatMessage("user", "Hi")]))
    assert (result.cached_tokens, result.reasoning_tokens) == (None, None)


def test_absurd_usage_numbers_are_not_counted(server: FakeOpenAIServer) -> None:
    # JSON allows 1e400 (infinity once parsed) and Python's parser accepts NaN
    body = json.dumps(_answer({"content": "ok"}, "stop")).replace(
        '"usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}',
        '"usage": {"prompt_tokens": 1e400, "completion_tokens": -3,'
        ' "prompt_tokens_details": {"cached_tokens": NaN},'
        ' "completion_tokens_details": {"reasoning_tokens": true}}',
    )
    assert "1e400" in body
    server.respond(200, body.encode())
    result = _complete(server, ChatRequest(messages=[ChatMessage("user", "Hi")]))
    assert (
        result.prompt_tokens,
        result.completion_tokens,
        result.cached_tokens,
        result.reasoning_tokens,
    ) == (
        0,
        0,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("finish_reason", "expected"),
    [("tool_calls", "tool_calls"), ("stop", "tool_calls"), (None, "tool_calls"), ("length", "length")],
)
def test_an_answer_with_tool_calls_finishes_with_tool_calls(
    server: FakeOpenAIServer, finish_reason: str | None, expected: str
) -> None:
    # OpenAI itself says "stop" when tool_choice names the function
    server.respond(200, _answer({"content": None, "tool_calls": [_weather_call()]}, finish_reason))
    assert _complete(server, _agent_request()).finish_reason == expected


def test_legacy_function_call_becomes_a_tool_call(server: FakeOpenAIServer) -> None:
    function_call = {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    server.respond(200, _answer({"content": None, "function_call": function_call}, "function_call"))
    result = _complete(server, _agent_request())
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", '{"city": "Oslo"}')]
    assert result.tool_calls[0].id.startswith("call_")
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"city": "Paris"}, '{"city": "Paris"}'),  # TGI sends an object
        ("", "{}"),
        (None, "{}"),
        ('{"city": "Paris", "days": 2}', '{"city": "Paris", "days": 2}'),
    ],
)
def test_tolerated_argument_shapes(server: FakeOpenAIServer, arguments: Any, expected: str) -> None:
    server.respond(200, _answer({"content": None, "tool_calls": [_weather_call(arguments=arguments)]}))
    [call] = _complete(server, _agent_request()).tool_calls
    assert json.loads(call.arguments) == json.loads(expected)


def test_missing_ids_get_distinct_fresh_ones(server: FakeOpenAIServer) -> None:
    calls = [_weather_call(""), {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}]
    server.respond(200, _answer({"content": None, "tool_calls": calls}))
    first = _complete(server, _agent_request()).tool_calls
    second = _complete(server, _agent_request()).tool_calls
    ids = [call.id for call in first + second]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 4


@pytest.mark.parametrize(
    "tool_calls",
    [
        "get_weather",
        [42],
        [{"id": "c", "type": "function"}],
        [{"id": "c", "type": "function", "function": {"arguments": "{}"}}],
        [{"id": "c", "type": "function", "function": {"name": "", "arguments": "{}"}}],
        [{"id": "c", "type": "custom", "custom": {"name": "get_weather", "input": "x"}}],
        [_weather_call(arguments='{"city": ')],
        [_weather_call(arguments='["Paris"]')],
        [_weather_call(arguments=7)],
        [_weather_call("same"), {**_weather_call("same")}],
    ],
)
def test_malformed_tool_calls(server: FakeOpenAIServer, tool_calls: Any) -> None:
    server.respond(200, _answer({"content": None, "tool_calls": tool_calls}))
    with pytest.raises(ProviderError) as info:
        _complete(server, _agent_request())
    assert info.value.error_class is ErrorClass.MALFORMED


def test_a_message_with_neither_content_nor_tool_calls_is_malformed(server: FakeOpenAIServer) -> None:
    server.respond(200, _answer({}, "stop"))
    with pytest.raises(ProviderError) as info:
        _complete(server, _agent_request())
    assert info.value.error_class is ErrorClass.MALFORMED


def test_whether_the_answer_fits_the_request_is_left_to_the_invoke_step(server: FakeOpenAIServer) -> None:
    # A text answer to a forced tool call is returned as it came: `switchboard.answers` judges it
    # for every provider alike
    server.respond(200, _answer({"content": "It is sunny."}, "stop"))
    result = _complete(server, _agent_request(tool_choice=ToolChoice("required")))
    assert (result.text, result.tool_calls) == ("It is sunny.", ())


@pytest.mark.parametrize("choice", [None, ToolChoice("auto"), ToolChoice("none")])
def test_a_text_answer_is_fine_when_the_tool_call_was_optional(
    server: FakeOpenAIServer, choice: ToolChoice | None
) -> None:
    server.respond(200, _answer({"content": "It is sunny."}, "stop"))
    result = _complete(server, _agent_request(tool_choice=choice))
    assert (result.text, result.finish_reason, result.tool_calls) == ("It is sunny.", "stop", ())


VLLM_NO_AUTO_TOOLS = {
    "object": "error",
    "message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
    "type": "BadRequestError",
    "param": None,
    "code": 400,
}


def _text_request() -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", "Hi")])


def _image_request() -> ChatRequest:
    return ChatRequest(
        messages=[ChatMessage("user", (TextPart("What is this?"), ImagePart("image/png", PNG_BASE64)))]
    )


def _json_request(kind: ResponseFormatType = "json_schema") -> ChatRequest:
    schema = {"type": "object"} if kind == "json_schema" else None
    return ChatRequest(
        messages=[ChatMessage("user", "Hi")], response_format=ResponseFormat(kind, schema=schema)
    )


@pytest.mark.parametrize(
    ("status", "body", "request_", "expected"),
    [
        # vLLM started without a tool parser
        (400, VLLM_NO_AUTO_TOOLS, _agent_request(tool_choice=ToolChoice("auto")), ErrorClass.UNSUPPORTED),
        (400, {"error": VLLM_NO_AUTO_TOOLS}, _agent_request(), ErrorClass.UNSUPPORTED),
        # OpenAI: a model without vision, a model without structured outputs, one without tools
        (
            400,
            {
                "error": {
                    "message": "Invalid content type. image_url is only supported by certain models.",
                    "type": "invalid_request_error",
                    "param": "messages.[0].content.[1].type",
                    "code": None,
                }
            },
            _image_request(),
            ErrorClass.UNSUPPORTED,
        ),
        (
            400,
            {
                "error": {
                    "message": "Invalid parameter: 'response_format' of type 'json_schema' is not "
                    "supported with this model.",
                    "type": "invalid_request_error",
                    "param": "response_format",
                    "code": None,
                }
            },
            _json_request(),
            ErrorClass.UNSUPPORTED,
        ),
        (
            400,
            {
                "error": {
                    "message": "Unsupported parameter: 'tools' is not supported with this model.",
                    "type": "invalid_request_error",
                    "param": "tools",
                    "code": "unsupported_parameter",
                }
            },
            _agent_request(),
            ErrorClass.UNSUPPORTED,
        ),
        # TGI (422, its own error shape) without OpenAI's response_format variants
        (
            422,
            {
                "error": "Failed to deserialize the JSON body into the target type: response_format: unknown "
                "variant `json_object`, expected `json` or `regex`",
                "error_type": "validation",
            },
            _json_request("json_object"),
            ErrorClass.UNSUPPORTED,
        ),
        # vLLM with a text-only model given an image
        (
            400,
            {"object": "error", "message": "At most 0 image(s) may be provided in one request.", "code": 400},
            _image_request(),
            ErrorClass.UNSUPPORTED,
        ),
        # The same texts for requests that do not use the feature: the caller's request is wrong
        (400, VLLM_NO_AUTO_TOOLS, _text_request(), ErrorClass.BAD_REQUEST),
        (
            400,
            {"error": {"message": "Invalid content type. image_url is only supported by certain models."}},
            _text_request(),
            ErrorClass.BAD_REQUEST,
        ),
        # Mentions tools, but is not about support
        (
            400,
            {
                "error": {
                    "message": "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    "param": "messages.[3].role",
                }
            },
            _agent_request(),
            ErrorClass.BAD_REQUEST,
        ),
        # Context overflow wins over everything else
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 8192 tokens.",
                    "code": "context_length_exceeded",
                }
            },
            _agent_request(),
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        # A 5xx is the server's problem, whatever it says
        (500, {"error": {"message": "tools are not supported"}}, _agent_request(), ErrorClass.UNAVAILABLE),
    ],
)
def test_feature_errors(
    server: FakeOpenAIServer, status: int, body: Any, request_: ChatRequest, expected: ErrorClass
) -> None:
    server.respond(status, body)
    with pytest.raises(ProviderError) as info:
        _complete(server, request_)
    assert info.value.error_class is expected
    assert str(status) in info.value.message


@pytest.mark.parametrize(
    ("text", "needs", "feature"),
    [
        ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser', {"tools"}, "tools"),
        ("This model does not support images", {"images", "tools"}, "images"),
        ("meta-llama/Llama-3.1-8B is not a multimodal model", {"images"}, "images"),
        ("json_schema response format is unsupported", {"json_schema"}, "json_schema"),
        ("Tool calling is not enabled for this deployment", {"tools"}, "tools"),
        ("This model does not support specifying dimensions.", {"dimensions"}, "dimensions"),
        ("This model does not support images", {"tools"}, None),
        ("temperature is not supported with this model", {"tools", "images"}, None),
        ("tool_call_id call_9 not found in messages", {"tools"}, None),
        ("", {"tools"}, None),
    ],
)
def test_unsupported_feature(text: str, needs: set[str], feature: str | None) -> None:
    assert unsupported_feature(text, needs) == feature


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=80)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["get_weather", "get_time"]),
            st.dictionaries(st.text(max_size=6), _JSON_VALUES, max_size=4),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_tool_calls_round_trip(calls: list[tuple[str, dict[str, Any], bool]]) -> None:
    # Given any calls to offered functions, arguments as text or (as TGI sends them) as an object
    wire = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args) if as_text else args},
        }
        for i, (name, args, as_text) in enumerate(calls)
    ]
    answer = _answer({"content": None, "tool_calls": wire})

    # When
    result = parse_chat_completion(answer, fallback_model="m")

    # Then every call comes back with its name, id and arguments (always JSON text)
    assert [(c.id, c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        (f"call_{i}", name, args) for i, (name, args, _) in enumerate(calls)
    ]
    assert result.finish_reason == "tool_calls"
