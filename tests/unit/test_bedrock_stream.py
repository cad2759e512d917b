"""Bedrock ConverseStream: a real botocore client against a local server that streams real
event-stream messages, so botocore's own parser (and its model of ConverseStream) reads them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    FunctionTool,
    ResponseFormat,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from switchboard.providers.bedrock import BedrockConverseProvider, plan_converse
from tests.fakes.aws_eventstream import FakeEventStreamServer, event, exception, running_event_stream_server

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
RELAXED = StreamDeadlines(first_token_s=5, idle_s=5, total_s=10)

pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture(scope="module")
def _running_server() -> Iterator[FakeEventStreamServer]:
    with running_event_stream_server() as fake:
        yield fake


@pytest.fixture
def server(_running_server: FakeEventStreamServer) -> FakeEventStreamServer:
    return _running_server.reset()


def _provider(server: FakeEventStreamServer) -> BedrockConverseProvider:
    # The client's own read timeout is long: the stream's deadlines must come from the provider.
    config = Config(read_timeout=5, connect_timeout=2, retries={"total_max_attempts": 1, "mode": "standard"})
    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=server.url, config=config)
    return BedrockConverseProvider(client_factory=lambda region: client)


def _option(**params: Any) -> LlmOption:
    return LlmOption(
        id="claude-haiku-us",
        provider=ProviderKind.BEDROCK,
        model=PROFILE,
        region="us-east-1",
        params={"max_tokens": 256, **params},
    )


def _request(**kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", "Hi")], **kwargs)


def _text_events(*texts: str, stop: str = "end_turn") -> list[bytes]:
    return [
        event("messageStart", {"role": "assistant"}),
        *[event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}}) for t in texts],
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 20, "cacheReadInputTokens": 12},
                "metrics": {"latencyMs": 120},
            },
        ),
    ]


def _collect(deltas: Iterator[StreamDelta]) -> tuple[list[StreamDelta], ProviderError | None]:
    seen: list[StreamDelta] = []
    try:
        for delta in deltas:
            seen.append(delta)
    except ProviderError as error:
        return seen, error
    return seen, None


def test_text_stream_request_and_deltas(server: FakeEventStreamServer) -> None:
    server.respond_stream(_text_events("Hel", "lo!"))
    request = ChatRequest(
        messages=[ChatMessage("system", (TextPart("Be brief.", cache=True),)), ChatMessage("user", "Hi")]
    )

    deltas = list(_provider(server).stream(_option(), request, RELAXED))

    [seen] = server.seen
    assert seen.path == f"/model/{PROFILE.replace(':', '%3A')}/converse-stream"
    # The request body is Converse's, built by the same plan as `complete`.
    expected = plan_converse(_option(), request).kwargs
    assert seen.json() == {k: v for k, v in expected.items() if k != "modelId"}
    assert deltas == [
        StreamDelta(text="Hel"),
        StreamDelta(text="lo!"),
        StreamDelta(
            finish_reason="stop", usage=StreamUsage(prompt_tokens=17, completion_tokens=3, cached_tokens=12)
        ),
    ]


def test_tool_use_blocks_stream_as_tool_call_pieces(server: FakeEventStreamServer) -> None:
    server.respond_stream(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 1,
                    "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}},
                },
            ),
            event(
                "contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city": '}}}
            ),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Paris"}'}}}),
            event("contentBlockStop", {"contentBlockIndex": 1}),
            event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 2,
                    "start": {"toolUse": {"toolUseId": "tooluse_2", "name": "get_time"}},
                },
            ),
            event("contentBlockStop", {"contentBlockIndex": 2}),
            event("messageStop", {"stopReason": "tool_use"}),
        ]
    )
    tools = (FunctionTool("get_weather"), FunctionTool("get_time"))

    deltas = list(_provider(server).stream(_option(), _request(tools=tools), RELAXED))

    assert deltas[0] == StreamDelta(text="Checking.")
    assert [p for d in deltas for p in d.tool_calls] == [
        ToolCallDelta(index=0, id="tooluse_1", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city": '),
        ToolCallDelta(index=0, arguments='"Paris"}'),
        ToolCallDelta(index=1, id="tooluse_2", name="get_time"),
        ToolCallDelta(index=1, arguments="{}"),  # no input: `{}`, as whole answers say
    ]
    assert deltas[-1] == StreamDelta(finish_reason="tool_calls")


def test_parallel_tool_calls_false_keeps_the_first_call(server: FakeEventStreamServer) -> None:
    server.respond_stream(
        [
            event(
                "contentBlockStart",
                {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "a", "name": "f"}}},
            ),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event(
                "contentBlockStart",
                {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "b", "name": "f"}}},
            ),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}),
            event("contentBlockStop", {"contentBlockIndex": 1}),
            event("messageStop", {"stopReason": "tool_use"}),
        ]
    )
    request = _request(tools=(FunctionTool("f"),), parallel_tool_calls=False)
    deltas = list(_provider(server).stream(_option(), request, RELAXED))
    assert {p.id for d in deltas for p in d.tool_calls} == {"a", None}
    assert {p.index for d in deltas for p in d.tool_calls} == {0}


def test_forced_tool_structured_output_streams_the_tool_input_as_text(server: FakeEventStreamServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    request = _request(response_format=ResponseFormat("json_schema", name="place", schema=schema))
    option = _option(structured_output="tool")
    server.respond_stream(
        [
            event(
                "contentBlockStart",
                {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "place"}}},
            ),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"city"'}}}),
            event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": ': "Oslo"}'}}}
            ),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "tool_use"}),
        ]
    )

    deltas = list(_provider(server).stream(option, request, RELAXED))

    assert server.seen[0].json()["toolConfig"]["toolChoice"] == {"tool": {"name": "place"}}
    assert deltas == [
        StreamDelta(text='{"city"'),
        StreamDelta(text=': "Oslo"}'),
        StreamDelta(finish_reason="stop"),
    ]
    assert json.loads("".join(d.text for d in deltas)) == {"city": "Oslo"}


def test_forced_tool_with_a_non_object_schema_sends_the_unwrapped_value(
    server: FakeEventStreamServer,
) -> None:
    request = _request(response_format=ResponseFormat("json_schema", name="tags", schema={"type": "array"}))
    server.respond_stream(
        [
            event(
                "contentBlockStart",
                {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "tags"}}},
            ),
            event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"value": ["a",'}}},
            ),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": ' "b"]}'}}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "tool_use"}),
        ]
    )
    deltas = list(_provider(server).stream(_option(structured_output="tool"), request, RELAXED))
    assert deltas == [StreamDelta(text='["a", "b"]'), StreamDelta(finish_reason="stop")]


def test_native_structured_output_goes_to_converse_stream_as_output_config(
    server: FakeEventStreamServer,
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    request = _request(response_format=ResponseFormat("json_schema", name="place", schema=schema))
    server.respond_stream(_text_events('{"city": "Oslo"}'))
    deltas = list(_provider(server).stream(_option(), request, RELAXED))
    assert server.seen[0].json()["outputConfig"]["textFormat"]["type"] == "json_schema"
    assert deltas[0].text == '{"city": "Oslo"}'


@pytest.mark.parametrize(
    ("name", "message", "error_class"),
    [
        ("throttlingException", "Too many tokens, please wait", ErrorClass.THROTTLED),
        ("modelStreamErrorException", "The model stream failed", ErrorClass.UNAVAILABLE),
        ("internalServerException", "Internal error", ErrorClass.UNAVAILABLE),
        ("serviceUnavailableException", "Service unavailable", ErrorClass.UNAVAILABLE),
        ("validationException", "Input is too long for requested model.", ErrorClass.CONTEXT_TOO_LONG),
        ("validationException", "Malformed input request", ErrorClass.BAD_REQUEST),
    ],
)
def test_exception_events_mid_stream_map_like_converse_errors(
    server: FakeEventStreamServer, name: str, message: str, error_class: ErrorClass
) -> None:
    server.respond_stream([*_text_events("Partial ")[:2], exception(name, message)])

    deltas, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))

    assert deltas == [StreamDelta(text="Partial ")]
    assert error is not None and error.error_class is error_class
    assert message[:10] in error.message


def test_error_before_the_stream_is_classified(server: FakeEventStreamServer) -> None:
    server.respond_error(429, "ThrottlingException", "Too many requests")
    deltas, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))
    assert deltas == []
    assert error is not None and error.error_class is ErrorClass.THROTTLED


def test_refused_cache_points_are_dropped_and_the_stream_asked_again(server: FakeEventStreamServer) -> None:
    server.respond_error(
        400,
        "ValidationException",
        "You invoked an unsupported model or your request did not allow prompt caching.",
        times=1,
    )
    server.respond_stream(_text_events("Hi"))
    request = ChatRequest(messages=[ChatMessage("user", (TextPart("Long context", cache=True),))])

    deltas = list(_provider(server).stream(_option(), request, RELAXED))

    first, second = (seen.json() for seen in server.seen)
    assert {"cachePoint": {"type": "default"}} in first["messages"][0]["content"]
    assert second["messages"][0]["content"] == [{"text": "Long context"}]
    assert deltas[0] == StreamDelta(text="Hi")


def test_tool_choice_none_with_tool_history_drops_the_calls_the_model_makes(
    server: FakeEventStreamServer,
) -> None:
    server.respond_stream(
        [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "It is sunny."}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event(
                "contentBlockStart",
                {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "again", "name": "get_weather"}}},
            ),
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}),
            event("contentBlockStop", {"contentBlockIndex": 1}),
            event("messageStop", {"stopReason": "tool_use"}),
        ]
    )
    request = ChatRequest(
        messages=[
            ChatMessage("user", "Weather?"),
            ChatMessage("assistant", tool_calls=(ToolCall("c1", "get_weather", "{}"),)),
            ChatMessage("tool", "sunny", tool_call_id="c1"),
        ],
        tools=(FunctionTool("get_weather"),),
        tool_choice=ToolChoice("none"),
    )

    deltas = list(_provider(server).stream(_option(), request, RELAXED))

    assert deltas == [StreamDelta(text="It is sunny."), StreamDelta(finish_reason="stop")]


def test_finish_without_the_metadata_event_in_time_still_ends_cleanly(server: FakeEventStreamServer) -> None:
    events = _text_events("Done.")
    server.respond_stream([b"".join(events[:-1]), events[-1]], part_delay_s=1.0)
    deltas = list(
        _provider(server).stream(
            _option(), _request(), StreamDeadlines(first_token_s=5, idle_s=0.2, total_s=10)
        )
    )
    assert deltas == [StreamDelta(text="Done."), StreamDelta(finish_reason="stop")]


def test_stream_that_ends_before_message_stop_is_unavailable(server: FakeEventStreamServer) -> None:
    server.respond_stream(_text_events("Partial ")[:2])
    deltas, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))
    assert deltas == [StreamDelta(text="Partial ")]
    assert error is not None and error.error_class is ErrorClass.UNAVAILABLE


def test_cut_connection_is_unavailable(server: FakeEventStreamServer) -> None:
    events = _text_events("Partial ", "more")
    server.respond_stream([*events[:2], events[2][:20]], end="cut")
    deltas, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))
    assert deltas == [StreamDelta(text="Partial ")]
    assert error is not None and error.error_class is ErrorClass.UNAVAILABLE


def test_malformed_stop_reason_is_malformed(server: FakeEventStreamServer) -> None:
    server.respond_stream(_text_events("x", stop="malformed_model_output"))
    _, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))
    assert error is not None and error.error_class is ErrorClass.MALFORMED


def test_first_token_deadline(server: FakeEventStreamServer) -> None:
    events = _text_events("Hi")
    server.respond_stream([events[0], *events[1:]], part_delay_s=1.0)
    started = time.monotonic()
    _, error = _collect(
        _provider(server).stream(
            _option(), _request(), StreamDeadlines(first_token_s=0.3, idle_s=5, total_s=10)
        )
    )
    assert error is not None and error.error_class is ErrorClass.TIMEOUT
    assert "first token" in error.message
    assert time.monotonic() - started < 0.9  # the client's own read timeout is 5 s


@pytest.mark.parametrize("announce_close", [False, True], ids=["keep-alive", "connection-close"])
def test_idle_deadline(server: FakeEventStreamServer, announce_close: bool) -> None:
    server.announce_close = announce_close  # http.client then lets go of the connection's socket
    events = _text_events("Hel", "lo")
    # messageStart and the first delta at once, then a stall
    server.respond_stream([events[0] + events[1], *events[2:]], part_delay_s=1.0)
    started = time.monotonic()
    deltas, error = _collect(
        _provider(server).stream(
            _option(), _request(), StreamDeadlines(first_token_s=5, idle_s=0.25, total_s=10)
        )
    )
    assert deltas == [StreamDelta(text="Hel")]
    assert error is not None and error.error_class is ErrorClass.TIMEOUT
    assert "idle" in error.message
    assert time.monotonic() - started < 0.9


def test_closing_the_iterator_early_closes_the_connection(server: FakeEventStreamServer) -> None:
    many = [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}) for _ in range(500)]
    server.respond_stream([event("messageStart", {"role": "assistant"}), *many], part_delay_s=0.01)
    deltas = _provider(server).stream(_option(), _request(), RELAXED)
    assert next(deltas) == StreamDelta(text="x")

    deltas.close()  # type: ignore[attr-defined]  # a generator

    assert server.client_gone.wait(3.0)
