"""SageMaker InvokeEndpointWithResponseStream: a real botocore client against a local server that
streams real event-stream `PayloadPart`s carrying a container's OpenAI stream, cut anywhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import ChatMessage, ChatRequest, StreamDeadlines, StreamDelta, StreamUsage
from switchboard.providers.sagemaker import SageMakerEndpointProvider, build_body
from tests.fakes.aws_eventstream import (
    FakeEventStreamServer,
    exception,
    payload_part,
    running_event_stream_server,
)
from tests.fakes.openai_http import chunk, sse, usage_chunk

RELAXED = StreamDeadlines(first_token_s=5, idle_s=5, total_s=10)
CONTAINER_SSE = b"".join(
    sse(chunk(role=True), chunk("Hel"), chunk("lo!"), chunk(finish="stop"), usage_chunk(9, 2), "[DONE]")
)

pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture(scope="module")
def _running_server() -> Iterator[FakeEventStreamServer]:
    with running_event_stream_server() as fake:
        yield fake


@pytest.fixture
def server(_running_server: FakeEventStreamServer) -> FakeEventStreamServer:
    return _running_server.reset()


def _provider(server: FakeEventStreamServer) -> SageMakerEndpointProvider:
    config = Config(read_timeout=5, connect_timeout=2, retries={"total_max_attempts": 1, "mode": "standard"})
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", endpoint_url=server.url, config=config
    )
    return SageMakerEndpointProvider(client_factory=lambda region: client)


def _option(**overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "llama-sm",
        "provider": ProviderKind.SAGEMAKER,
        "endpoint_name": "llama-endpoint",
        "region": "us-east-1",
        "params": {"max_tokens": 128},
    }
    data.update(overrides)
    return LlmOption(**data)


def _request() -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", "Hi")])


def _parts(raw: bytes, size: int) -> list[bytes]:
    return [payload_part(raw[i : i + size]) for i in range(0, len(raw), size)]


def _collect(deltas: Iterator[StreamDelta]) -> tuple[list[StreamDelta], ProviderError | None]:
    seen: list[StreamDelta] = []
    try:
        for delta in deltas:
            seen.append(delta)
    except ProviderError as error:
        return seen, error
    return seen, None


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_payload_parts_cut_anywhere_stream_the_container_sse(
    server: FakeEventStreamServer, size: int
) -> None:
    server.respond_stream(_parts(CONTAINER_SSE, size))
    option = _option(inference_component="llama-lora-a")

    deltas = list(_provider(server).stream(option, _request(), RELAXED))

    [seen] = server.seen
    assert seen.path == "/endpoints/llama-endpoint/invocations-response-stream"
    assert seen.headers["X-Amzn-SageMaker-Inference-Component"] == "llama-lora-a"
    assert seen.json() == {
        **build_body(option, _request()),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert "".join(d.text for d in deltas) == "Hello!"
    assert deltas[-1] == StreamDelta(
        finish_reason="stop", usage=StreamUsage(prompt_tokens=9, completion_tokens=2)
    )


def test_json_lines_containers_stream_too(server: FakeEventStreamServer) -> None:
    lines = b"".join(
        line.removeprefix(b"data: ").rstrip(b"\n") + b"\n"
        for line in sse(chunk("Hi"), chunk(finish="length"))
    )
    server.respond_stream(_parts(lines, 5))
    deltas = list(_provider(server).stream(_option(), _request(), RELAXED))
    assert deltas == [StreamDelta(text="Hi"), StreamDelta(finish_reason="length")]


@pytest.mark.parametrize("name", ["ModelStreamError", "InternalStreamFailure"])
def test_stream_exceptions_mid_stream_are_unavailable(server: FakeEventStreamServer, name: str) -> None:
    first = b"".join(sse(chunk("Partial ")))
    extra = {"ErrorCode": "ModelError"} if name == "ModelStreamError" else {}
    server.respond_stream([payload_part(first), exception(name, "the container crashed", **extra)])

    deltas, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))

    assert deltas == [StreamDelta(text="Partial ")]
    assert error is not None and error.error_class is ErrorClass.UNAVAILABLE
    assert name in error.message


def test_error_event_from_the_container_is_classified(server: FakeEventStreamServer) -> None:
    data = b"".join(sse(chunk("Partial "), {"object": "error", "message": "too many requests", "code": 429}))
    server.respond_stream(_parts(data, 11))
    _, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))
    assert error is not None and error.error_class is ErrorClass.THROTTLED


def test_error_before_the_stream_maps_like_invoke_endpoint(server: FakeEventStreamServer) -> None:
    server.respond_error(400, "ValidationError", "Endpoint llama-endpoint of account 123 not found.")
    _, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))
    assert error is not None and error.error_class is ErrorClass.UNAVAILABLE


def test_stream_without_done_or_finish_is_unavailable(server: FakeEventStreamServer) -> None:
    server.respond_stream(_parts(b"".join(sse(chunk("Partial "))), 3))
    deltas, error = _collect(_provider(server).stream(_option(), _request(), RELAXED))
    assert deltas == [StreamDelta(text="Partial ")]
    assert error is not None and error.error_class is ErrorClass.UNAVAILABLE


def test_idle_deadline(server: FakeEventStreamServer) -> None:
    server.respond_stream(
        [payload_part(b"".join(sse(chunk("Hel")))), payload_part(b"".join(sse(chunk("lo"), "[DONE]")))],
        part_delay_s=1.0,
    )
    started = time.monotonic()
    deltas, error = _collect(
        _provider(server).stream(
            _option(), _request(), StreamDeadlines(first_token_s=5, idle_s=0.25, total_s=10)
        )
    )
    assert deltas == [StreamDelta(text="Hel")]
    assert error is not None and error.error_class is ErrorClass.TIMEOUT
    assert time.monotonic() - started < 0.9


def test_closing_the_iterator_early_closes_the_connection(server: FakeEventStreamServer) -> None:
    server.respond_stream([payload_part(b"".join(sse(chunk("x")))) for _ in range(500)], part_delay_s=0.01)
    deltas = _provider(server).stream(_option(), _request(), RELAXED)
    assert next(deltas) == StreamDelta(text="x")
    deltas.close()  # type: ignore[attr-defined]  # a generator
    assert server.client_gone.wait(3.0)
