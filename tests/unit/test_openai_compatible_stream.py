"""OpenAI-compatible streaming against a real local HTTP server that streams chunked SSE."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    ToolCallDelta,
)
from switchboard.providers.openai_compatible import OpenAICompatibleProvider
from tests.fakes.openai_http import FakeOpenAIServer, chunk, running_openai_server, sse, usage_chunk

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm-key-AbCdEf"
RELAXED = StreamDeadlines(first_token_s=5, idle_s=5, total_s=10)

TEXT_STREAM = sse(
    chunk(role=True, content=""),
    chunk("Hel"),
    chunk("lo!"),
    chunk(finish="stop"),
    usage_chunk(11, 2, cached=4),
    "[DONE]",
)


@pytest.fixture(scope="module")
def _running_server() -> Iterator[FakeOpenAIServer]:
    with running_openai_server() as fake:
        yield fake


@pytest.fixture
def server(_running_server: FakeOpenAIServer) -> FakeOpenAIServer:
    return _running_server.reset()


def _option(base_url: str, **params: Any) -> LlmOption:
    return LlmOption(
        id="third-party",
        provider=ProviderKind.OPENAI_COMPATIBLE,
        model="gpt-test",
        base_url=base_url,
        secret_arn=SECRET_ARN,
        params={"max_tokens": 64, **params},
    )


def _request(**kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", "Hi")], **kwargs)


def _provider() -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(secret_reader=lambda arn: '{"api_key": "sk-test"}')


def _stream(
    server: FakeOpenAIServer, deadlines: StreamDeadlines = RELAXED, **params: Any
) -> Iterator[StreamDelta]:
    return _provider().stream(_option(server.base_url, **params), _request(), deadlines)


def _collect(deltas: Iterator[StreamDelta]) -> tuple[list[StreamDelta], ProviderError | None]:
    seen: list[StreamDelta] = []
    try:
        for delta in deltas:
            seen.append(delta)
    except ProviderError as error:
        return seen, error
    return seen, None


def test_text_stream_request_and_deltas(server: FakeOpenAIServer) -> None:
    server.respond_stream(TEXT_STREAM)

    deltas = list(_stream(server))

    [seen] = server.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Accept"] == "text/event-stream"
    assert seen.headers["Authorization"] == "Bearer sk-test"
    assert seen.body == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert deltas == [
        StreamDelta(text="Hel"),
        StreamDelta(text="lo!"),
        StreamDelta(
            finish_reason="stop", usage=StreamUsage(prompt_tokens=11, completion_tokens=2, cached_tokens=4)
        ),
    ]


def test_stream_usage_param_false_leaves_out_stream_options(server: FakeOpenAIServer) -> None:
    server.respond_stream(TEXT_STREAM)
    list(_stream(server, stream_usage=False))
    assert "stream_options" not in server.seen[0].body
    assert server.seen[0].body["stream"] is True


def test_events_split_anywhere_and_crlf_give_the_same_deltas(server: FakeOpenAIServer) -> None:
    whole = b"".join(TEXT_STREAM).replace(b"\n", b"\r\n")
    server.respond_stream([whole[i : i + 1] for i in range(len(whole))])
    deltas = list(_stream(server))
    assert "".join(d.text for d in deltas) == "Hello!"
    assert deltas[-1].finish_reason == "stop"


def test_tool_call_pieces_by_index(server: FakeOpenAIServer) -> None:
    server.respond_stream(
        sse(
            chunk(role=True),
            chunk(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            ),
            chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}]),
            chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
            chunk(
                tool_calls=[
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"},
                    }
                ]
            ),
            chunk(finish="tool_calls"),
            "[DONE]",
        )
    )

    deltas = list(_stream(server))

    pieces = [piece for d in deltas for piece in d.tool_calls]
    assert pieces == [
        ToolCallDelta(index=0, id="call_a", name="get_weather", arguments=""),
        ToolCallDelta(index=0, arguments='{"city": '),
        ToolCallDelta(index=0, arguments='"Paris"}'),
        ToolCallDelta(index=1, id="call_b", name="get_time", arguments="{}"),
    ]
    assert deltas[-1] == StreamDelta(finish_reason="tool_calls")


def test_calls_all_numbered_zero_with_distinct_ids_are_distinct_calls(server: FakeOpenAIServer) -> None:
    server.respond_stream(
        sse(
            chunk(tool_calls=[{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]),
            chunk(tool_calls=[{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]),
            chunk(finish="stop"),  # some servers say stop after tool calls: the calls win
            "[DONE]",
        )
    )
    deltas = list(_stream(server))
    assert [(p.index, p.id, p.name) for d in deltas for p in d.tool_calls] == [(0, "a", "f"), (1, "b", "g")]
    assert deltas[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("event", "error_class"),
    [
        ({"error": {"message": "The server is overloaded", "type": "server_error"}}, ErrorClass.UNAVAILABLE),
        ({"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}, ErrorClass.THROTTLED),
        ({"error": {"message": "slow", "code": 429}}, ErrorClass.THROTTLED),
        (
            {"object": "error", "message": "engine died", "type": "InternalServerError", "code": 500},
            ErrorClass.UNAVAILABLE,
        ),
        (
            {"error": {"message": "maximum context length is 8192 tokens", "type": "invalid_request_error"}},
            ErrorClass.CONTEXT_TOO_LONG,
        ),
    ],
)
def test_error_event_mid_stream_is_a_classified_error(
    server: FakeOpenAIServer, event: dict[str, Any], error_class: ErrorClass
) -> None:
    server.respond_stream(sse(chunk("Partial "), event, "[DONE]"))

    deltas, error = _collect(_stream(server))

    assert deltas == [StreamDelta(text="Partial ")]
    assert error is not None and error.error_class is error_class


def test_cut_connection_is_unavailable_never_a_clean_end(server: FakeOpenAIServer) -> None:
    server.respond_stream([*sse(chunk("Partial ")), b'data: {"id": "chatcmpl-s", "cho'], end="cut")
    deltas, error = _collect(_stream(server))
    assert deltas == [StreamDelta(text="Partial ")]
    assert error is not None and error.error_class is ErrorClass.UNAVAILABLE


def test_body_that_ends_without_done_or_finish_is_unavailable(server: FakeOpenAIServer) -> None:
    server.respond_stream(sse(chunk("Partial "), chunk("answer")))
    deltas, error = _collect(_stream(server))
    assert "".join(d.text for d in deltas) == "Partial answer"
    assert error is not None and error.error_class is ErrorClass.UNAVAILABLE
    assert "without [DONE]" in error.message


def test_body_that_ends_after_a_finish_without_done_is_complete(server: FakeOpenAIServer) -> None:
    server.respond_stream(sse(chunk("Done."), chunk(finish="length")))
    assert list(_stream(server))[-1] == StreamDelta(finish_reason="length")


def test_finish_then_a_stall_without_done_ends_cleanly_with_the_finish(server: FakeOpenAIServer) -> None:
    parts = sse(chunk("Done."), chunk(finish="stop"), "[DONE]")
    server.respond_stream([parts[0] + parts[1], parts[2]], part_delay_s=1.0)
    deltas = list(_stream(server, StreamDeadlines(first_token_s=5, idle_s=0.2, total_s=10)))
    assert deltas == [StreamDelta(text="Done."), StreamDelta(finish_reason="stop")]


def test_http_error_before_the_stream_is_classified(server: FakeOpenAIServer) -> None:
    server.respond(
        429, {"error": {"message": "slow down", "type": "rate_limit"}}, headers={"Retry-After": "3"}
    )
    _, error = _collect(_stream(server))
    assert error is not None and error.error_class is ErrorClass.THROTTLED
    assert error.retry_after_s == 3


def test_stream_with_no_content_is_malformed(server: FakeOpenAIServer) -> None:
    server.respond_stream(sse(chunk(role=True, content=""), chunk(finish="stop"), "[DONE]"))
    _, error = _collect(_stream(server))
    assert error is not None and error.error_class is ErrorClass.MALFORMED


def test_event_that_is_not_json_is_malformed(server: FakeOpenAIServer) -> None:
    server.respond_stream([b"data: {not json\n\n"])
    _, error = _collect(_stream(server))
    assert error is not None and error.error_class is ErrorClass.MALFORMED


def test_whole_json_answer_to_a_stream_request_streams_as_one_delta(server: FakeOpenAIServer) -> None:
    server.respond()  # the canned whole chat.completion, application/json
    deltas = list(_stream(server))
    assert deltas == [
        StreamDelta(text="Hello!"),
        StreamDelta(finish_reason="stop", usage=StreamUsage(prompt_tokens=11, completion_tokens=2)),
    ]


# --- deadlines ------------------------------------------------------------------------------------


def test_first_token_deadline(server: FakeOpenAIServer) -> None:
    server.respond_stream(TEXT_STREAM, first_delay_s=1.0)
    started = time.monotonic()
    _, error = _collect(_stream(server, StreamDeadlines(first_token_s=0.2, idle_s=5, total_s=10)))
    assert error is not None and error.error_class is ErrorClass.TIMEOUT
    assert "first token" in error.message
    assert time.monotonic() - started < 0.8


def test_keep_alive_comments_do_not_stop_the_first_token_clock(server: FakeOpenAIServer) -> None:
    server.respond_stream([b": keep-alive\n\n"] * 20 + TEXT_STREAM, part_delay_s=0.05)
    _, error = _collect(_stream(server, StreamDeadlines(first_token_s=0.3, idle_s=5, total_s=10)))
    assert error is not None and error.error_class is ErrorClass.TIMEOUT
    assert "first token" in error.message


def test_idle_deadline_after_the_first_token(server: FakeOpenAIServer) -> None:
    server.respond_stream(sse(chunk("Hel"), chunk("lo"), "[DONE]"), part_delay_s=1.0)
    started = time.monotonic()
    deltas, error = _collect(_stream(server, StreamDeadlines(first_token_s=5, idle_s=0.2, total_s=10)))
    assert deltas == [StreamDelta(text="Hel")]
    assert error is not None and error.error_class is ErrorClass.TIMEOUT
    assert "idle" in error.message
    assert time.monotonic() - started < 0.8


def test_total_deadline_while_chunks_keep_coming(server: FakeOpenAIServer) -> None:
    server.respond_stream(sse(*[chunk("x") for _ in range(30)], "[DONE]"), part_delay_s=0.05)
    deltas, error = _collect(_stream(server, StreamDeadlines(first_token_s=5, idle_s=5, total_s=0.4)))
    assert 0 < len(deltas) < 30
    assert error is not None and error.error_class is ErrorClass.TIMEOUT
    assert "total" in error.message


def test_closing_the_iterator_early_closes_the_connection(server: FakeOpenAIServer) -> None:
    server.respond_stream(sse(*[chunk("x") for _ in range(500)], "[DONE]"), part_delay_s=0.01)
    deltas = _stream(server)
    assert next(deltas) == StreamDelta(text="x")

    deltas.close()  # type: ignore[attr-defined]  # a generator

    assert server.client_gone.wait(3.0)
