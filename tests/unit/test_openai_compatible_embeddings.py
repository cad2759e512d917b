"""OpenAI-compatible `POST {base_url}/embeddings` against a real local HTTP server."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, OptionTask, ProviderKind
from switchboard.providers.base import EmbeddingRequest
from switchboard.providers.openai_compatible import OpenAICompatibleProvider
from tests.fakes.openai_http import FakeOpenAIServer, running_openai_server

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:embed-key-AbCdEf"


@pytest.fixture(scope="module")
def _running_server() -> Iterator[FakeOpenAIServer]:
    with running_openai_server() as fake:
        yield fake


@pytest.fixture
def server(_running_server: FakeOpenAIServer) -> FakeOpenAIServer:
    return _running_server.reset()


def _option(base_url: str, **overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "embedder",
        "provider": ProviderKind.OPENAI_COMPATIBLE,
        "model": "text-embedding-3-small",
        "base_url": base_url,
        "task": OptionTask.EMBEDDINGS,
    }
    data.update(overrides)
    return LlmOption(**data)


def _answer(
    vectors: list[Any], *, indexes: list[int] | None = None, prompt_tokens: int = 5
) -> dict[str, Any]:
    order = indexes if indexes is not None else list(range(len(vectors)))
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vectors[i]} for i in order],
        "model": "text-embedding-3-small-v2",
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _embed(server: FakeOpenAIServer, request: EmbeddingRequest, **overrides: Any) -> Any:
    return OpenAICompatibleProvider(secret_reader=lambda arn: "sk-embed").embed(
        _option(server.base_url, **overrides), request, timeout_s=5
    )


def test_request_shape_and_answer_in_index_order(server: FakeOpenAIServer) -> None:
    # Given an answer whose items arrive out of order
    server.respond(200, _answer([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], indexes=[2, 0, 1], prompt_tokens=9))

    # When
    result = _embed(
        server, EmbeddingRequest(inputs=("alpha", "beta", "gamma"), user="u-1"), secret_arn=SECRET_ARN
    )

    # Then the request is OpenAI's, floats always, and the vectors follow the inputs
    [seen] = server.seen
    assert seen.path == "/v1/embeddings"
    assert seen.headers["Authorization"] == "Bearer sk-embed"
    assert seen.body == {
        "model": "text-embedding-3-small",
        "input": ["alpha", "beta", "gamma"],
        "encoding_format": "float",
        "user": "u-1",
    }
    assert result.vectors == [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]
    assert result.prompt_tokens == 9
    assert result.model == "text-embedding-3-small-v2"


@pytest.mark.parametrize(
    ("requested", "params", "sent"),
    [(2, {}, 2), (None, {"dimensions": 2}, 2), (2, {"dimensions": 512}, 2), (None, {}, None)],
)
def test_dimensions_from_the_request_or_the_option(
    server: FakeOpenAIServer, requested: int | None, params: dict[str, Any], sent: int | None
) -> None:
    server.respond(200, _answer([[0.6, 0.8]]))
    _embed(server, EmbeddingRequest(inputs=("a",), dimensions=requested), params=params)
    assert server.seen[0].body.get("dimensions") == sent


def test_token_arrays_go_out_as_lists(server: FakeOpenAIServer) -> None:
    server.respond(200, _answer([[1.0], [0.0]]))
    _embed(server, EmbeddingRequest(inputs=((1, 2, 3), "text")))
    assert server.seen[0].body["input"] == [[1, 2, 3], "text"]


def test_base64_answers_are_decoded(server: FakeOpenAIServer) -> None:
    # Given a server that answers base64 although floats were asked for
    packed = base64.b64encode(struct.pack("<3f", 0.5, -0.25, 1.0)).decode()
    server.respond(200, _answer([packed]))
    assert _embed(server, EmbeddingRequest(inputs=("a",))).vectors == [[0.5, -0.25, 1.0]]


@pytest.mark.parametrize(("requested", "params"), [(2, {}), (None, {"dimensions": 2})])
def test_vectors_of_another_size_than_asked_for_are_malformed(
    server: FakeOpenAIServer, requested: int | None, params: dict[str, Any]
) -> None:
    # Given a server that was sent `dimensions` and ignored it
    server.respond(200, _answer([[0.1, 0.2, 0.3]]))
    with pytest.raises(ProviderError) as info:
        _embed(server, EmbeddingRequest(inputs=("a",), dimensions=requested), params=params)
    assert info.value.error_class is ErrorClass.MALFORMED


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        {"object": "list"},
        {"data": "nope"},
        _answer([[0.1]]),  # one vector for two inputs
        _answer([[0.1], [0.2], [0.3]]),
        {"data": [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}]},
        {"data": [{"index": 0, "embedding": [0.1]}, {"index": 2, "embedding": [0.2]}]},
        {"data": [{"index": 0}, {"index": 1, "embedding": [0.2]}]},
        {"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": [0.2, 0.3]}]},
        {"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": ["x"]}]},
        {"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": []}]},
        {"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": [True]}]},
        {"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": "%%%"}]},
        b'{"data": [{"index": 0, "embedding": [NaN]}, {"index": 1, "embedding": [0.2]}]}',
        {"data": [{"index": "0", "embedding": [0.1]}, {"index": 1, "embedding": [0.2]}]},
    ],
)
def test_malformed_answers(server: FakeOpenAIServer, body: Any) -> None:
    server.respond(200, body)
    with pytest.raises(ProviderError) as info:
        _embed(server, EmbeddingRequest(inputs=("a", "b")))
    assert info.value.error_class is ErrorClass.MALFORMED


@pytest.mark.parametrize(
    ("status", "body", "request_", "expected"),
    [
        (
            400,
            {"error": {"message": "This model does not support specifying dimensions.", "param": None}},
            EmbeddingRequest(inputs=("a",), dimensions=64),
            ErrorClass.UNSUPPORTED,
        ),
        (
            400,
            {"error": {"message": "This model does not support specifying dimensions."}},
            EmbeddingRequest(inputs=("a",)),
            ErrorClass.BAD_REQUEST,
        ),
        (
            400,
            {"error": {"message": "Token ids as input are not supported by this server", "param": "input"}},
            EmbeddingRequest(inputs=((1, 2),)),
            ErrorClass.UNSUPPORTED,
        ),
        (
            400,
            {"error": {"message": "This model's maximum context length is 8192 tokens", "param": "input"}},
            EmbeddingRequest(inputs=("a",)),
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        (429, {"error": {"message": "Rate limit"}}, EmbeddingRequest(inputs=("a",)), ErrorClass.THROTTLED),
        (404, {"error": {"message": "no route"}}, EmbeddingRequest(inputs=("a",)), ErrorClass.UNAVAILABLE),
        (503, b"down", EmbeddingRequest(inputs=("a",)), ErrorClass.UNAVAILABLE),
    ],
)
def test_error_mapping(
    server: FakeOpenAIServer, status: int, body: Any, request_: EmbeddingRequest, expected: ErrorClass
) -> None:
    server.respond(status, body)
    with pytest.raises(ProviderError) as info:
        _embed(server, request_)
    assert info.value.error_class is expected


def test_an_option_without_base_url_or_model_is_unavailable() -> None:
    option = LlmOption(id="x", provider=ProviderKind.MOCK)
    with pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().embed(option, EmbeddingRequest(inputs=("a",)), 1)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_any_order_of_items_gives_the_inputs_order(
    server: FakeOpenAIServer, vectors: list[list[float]], random: Any
) -> None:
    server.reset()
    order = list(range(len(vectors)))
    random.shuffle(order)
    server.respond(200, json.loads(json.dumps(_answer(vectors, indexes=order))))
    result = _embed(server, EmbeddingRequest(inputs=tuple(f"t{i}" for i in range(len(vectors)))))
    assert result.vectors == vectors


def test_absurdly_nested_answers_are_malformed(server: FakeOpenAIServer) -> None:
    server.respond(200, b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ProviderError) as info:
        _embed(server, EmbeddingRequest(inputs=("a",)))
    assert info.value.error_class is ErrorClass.MALFORMED
