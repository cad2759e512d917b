"""Bedrock embeddings through InvokeModel: Titan Text Embeddings V2/v1 and Cohere Embed v3/v4.

Requests go through botocore's Stubber (checked against the real bedrock-runtime model); the JSON
body each model receives is compared as JSON.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, OptionTask, ProviderKind
from switchboard.providers import bedrock_embeddings
from switchboard.providers.base import EmbeddingRequest
from switchboard.providers.bedrock import BedrockConverseProvider
from switchboard.providers.bedrock_embeddings import embedding_family

pytestmark = pytest.mark.usefixtures("aws_credentials")

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-english-v3"
COHERE_V4 = "us.cohere.embed-v4:0"


class JsonBody:
    """Matches a request body (bytes) that parses to `expected` (key order and spacing aside)."""

    def __init__(self, expected: dict[str, Any]) -> None:
        self.expected = expected

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes | str) and json.loads(other) == self.expected

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"JsonBody({self.expected!r})"


@pytest.fixture
def client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def provider(client: Any) -> BedrockConverseProvider:
    return BedrockConverseProvider(client_factory=lambda region: client)


@pytest.fixture(autouse=True)
def one_call_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber answers in queue order: one worker keeps the calls in input order."""
    monkeypatch.setattr(bedrock_embeddings, "MAX_PARALLEL_CALLS", 1)


def _option(model: str = TITAN, **params: Any) -> LlmOption:
    return LlmOption(
        id="embed-opt",
        provider=ProviderKind.BEDROCK,
        model=model,
        region="us-east-1",
        task=OptionTask.EMBEDDINGS,
        params=params,
    )


def _response(payload: dict[str, Any], tokens: int | None = None) -> dict[str, Any]:
    data = json.dumps(payload).encode()
    response: dict[str, Any] = {
        "body": StreamingBody(io.BytesIO(data), len(data)),
        "contentType": "application/json",
    }
    if tokens is not None:
        response["ResponseMetadata"] = {"HTTPHeaders": {"x-amzn-bedrock-input-token-count": str(tokens)}}
    return response


def _expect(model: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "modelId": model,
        "body": JsonBody(body),
        "contentType": "application/json",
        "accept": "application/json",
    }


def _vector(seed: float, size: int) -> list[float]:
    return [seed + i / 1000 for i in range(size)]


# --- Titan ----------------------------------------------------------------------------------------------


def test_titan_v2_one_call_per_text(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    # Given two texts and 256 dimensions asked by the client
    for seed, text, tokens in ((0.1, "first", 3), (0.2, "second text", 4)):
        stubber.add_response(
            "invoke_model",
            _response({"embedding": _vector(seed, 256), "inputTextTokenCount": tokens}),
            _expect(TITAN, {"inputText": text, "dimensions": 256, "normalize": True}),
        )

    # When
    result = provider.embed(_option(), EmbeddingRequest(inputs=("first", "second text"), dimensions=256), 5)

    # Then: vectors in input order, tokens summed
    assert [v[0] for v in result.vectors] == [0.1, 0.2]
    assert all(len(v) == 256 for v in result.vectors)
    assert (result.prompt_tokens, result.model) == (7, TITAN)


def test_titan_dimensions_from_the_option_else_the_model_default(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    stubber.add_response(
        "invoke_model",
        _response({"embedding": _vector(0, 512), "inputTextTokenCount": 1}),
        _expect(TITAN, {"inputText": "a", "dimensions": 512, "normalize": True}),
    )
    stubber.add_response(
        "invoke_model",
        _response({"embedding": _vector(0, 1024), "inputTextTokenCount": 1}),
        _expect(TITAN, {"inputText": "a", "normalize": True}),
    )
    assert len(provider.embed(_option(dimensions=512), EmbeddingRequest(inputs=("a",)), 5).vectors[0]) == 512
    assert len(provider.embed(_option(), EmbeddingRequest(inputs=("a",)), 5).vectors[0]) == 1024


@pytest.mark.parametrize(
    ("model", "dimensions"),
    [(TITAN, 300), (TITAN, 1536), (COHERE, 512), (COHERE_V4, 768), ("amazon.titan-embed-text-v1", 256)],
)
def test_dimensions_the_model_does_not_offer_are_bad_requests(
    provider: BedrockConverseProvider, model: str, dimensions: int
) -> None:
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(model), EmbeddingRequest(inputs=("a",), dimensions=dimensions), 5)
    assert info.value.error_class is ErrorClass.BAD_REQUEST


def test_option_dimensions_the_model_does_not_offer_is_a_misconfiguration(
    provider: BedrockConverseProvider,
) -> None:
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(dimensions=384), EmbeddingRequest(inputs=("a",)), 5)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


def test_titan_v1_takes_text_only(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    model = "amazon.titan-embed-text-v1"
    stubber.add_response(
        "invoke_model",
        _response({"embedding": _vector(0, 1536), "inputTextTokenCount": 2}),
        _expect(model, {"inputText": "hello"}),
    )
    assert provider.embed(_option(model), EmbeddingRequest(inputs=("hello",)), 5).prompt_tokens == 2


# --- Cohere ---------------------------------------------------------------------------------------------


def test_cohere_v3_batches_of_96(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    # Given 100 texts: one call of 96, one of 4
    texts = tuple(f"text {i}" for i in range(100))
    for batch, tokens in ((texts[:96], 500), (texts[96:], 20)):
        stubber.add_response(
            "invoke_model",
            _response(
                {
                    "id": "x",
                    "response_type": "embeddings_by_type",
                    "texts": list(batch),
                    "embeddings": {"float": [_vector(float(texts.index(t)), 1024) for t in batch]},
                },
                tokens=tokens,
            ),
            _expect(
                COHERE, {"texts": list(batch), "input_type": "search_document", "embedding_types": ["float"]}
            ),
        )

    # When
    result = provider.embed(_option(COHERE), EmbeddingRequest(inputs=texts), 10)

    # Then: 100 vectors in input order, tokens from the response header, summed
    assert [v[0] for v in result.vectors] == [float(i) for i in range(100)]
    assert result.prompt_tokens == 520


def test_cohere_v4_output_dimension_and_input_type(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    stubber.add_response(
        "invoke_model",
        _response(
            {"embeddings": {"float": [_vector(0, 256)]}, "response_type": "embeddings_by_type"}, tokens=2
        ),
        _expect(
            COHERE_V4,
            {
                "texts": ["where?"],
                "input_type": "search_query",
                "embedding_types": ["float"],
                "output_dimension": 256,
            },
        ),
    )
    option = _option(COHERE_V4, input_type="search_query")
    result = provider.embed(option, EmbeddingRequest(inputs=("where?",), dimensions=256), 5)
    assert (len(result.vectors[0]), result.prompt_tokens) == (256, 2)


def test_cohere_plain_float_answer_is_read_too(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    stubber.add_response(
        "invoke_model", _response({"embeddings": [_vector(0, 1024)], "response_type": "embeddings_floats"})
    )
    result = provider.embed(_option("cohere.embed-multilingual-v3"), EmbeddingRequest(inputs=("hola",)), 5)
    assert len(result.vectors) == 1 and result.prompt_tokens == 0


def test_cohere_input_type_misconfigured(provider: BedrockConverseProvider) -> None:
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(COHERE, input_type="poetry"), EmbeddingRequest(inputs=("a",)), 5)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


# --- what cannot be embedded, errors, bad answers ---------------------------------------------------------


@pytest.mark.parametrize("model", [TITAN, COHERE, COHERE_V4])
def test_token_arrays_are_unsupported(provider: BedrockConverseProvider, model: str) -> None:
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(model), EmbeddingRequest(inputs=((1, 2, 3),)), 5)
    assert info.value.error_class is ErrorClass.UNSUPPORTED


def test_unknown_model_is_unsupported(provider: BedrockConverseProvider) -> None:
    with pytest.raises(ProviderError) as info:
        provider.embed(_option("amazon.nova-lite-v1:0"), EmbeddingRequest(inputs=("a",)), 5)
    assert info.value.error_class is ErrorClass.UNSUPPORTED


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("amazon.titan-embed-text-v2:0", "titan-v2"),
        ("us.amazon.titan-embed-text-v2:0", "titan-v2"),
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0", "titan-v2"),
        ("amazon.titan-embed-text-v1", "titan-v1"),
        ("cohere.embed-english-v3", "cohere-v3"),
        ("eu.cohere.embed-multilingual-v3", "cohere-v3"),
        ("cohere.embed-v4:0", "cohere-v4"),
        ("global.cohere.embed-v4:0", "cohere-v4"),
        ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.cohere.embed-v4:0", "cohere-v4"),
        ("amazon.titan-embed-image-v1", None),
        ("notamazon.titan-embed-text-v2:0", None),
        ("anthropic.claude-3-haiku", None),
    ],
)
def test_embedding_family_by_model_id(model: str, family: str | None) -> None:
    assert embedding_family(model) == family


@pytest.mark.parametrize(
    ("code", "status", "message", "expected"),
    [
        ("ThrottlingException", 429, "slow down", ErrorClass.THROTTLED),
        (
            "ValidationException",
            400,
            "400 Bad Request: Too many input tokens. Max input tokens: 8192",
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        ("ValidationException", 400, "Malformed input request", ErrorClass.BAD_REQUEST),
        ("AccessDeniedException", 403, "no access", ErrorClass.UNAVAILABLE),
        ("ModelTimeoutException", 408, "slow", ErrorClass.TIMEOUT),
    ],
)
def test_errors_are_classified_as_for_chat(
    provider: BedrockConverseProvider,
    stubber: Stubber,
    code: str,
    status: int,
    message: str,
    expected: ErrorClass,
) -> None:
    stubber.add_client_error(
        "invoke_model", service_error_code=code, service_message=message, http_status_code=status
    )
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(), EmbeddingRequest(inputs=("a",)), 5)
    assert info.value.error_class is expected


@pytest.mark.parametrize(
    "payload",
    [
        {"embedding": []},
        {"embedding": ["a", "b"]},
        {"embedding": [True, 1.0]},
        {"vectors": [[1.0]]},
        {"embeddings": {"float": [[0.1], [0.2]]}},  # two vectors for one text
    ],
)
def test_malformed_answers(
    provider: BedrockConverseProvider, stubber: Stubber, payload: dict[str, Any]
) -> None:
    model = COHERE if "embeddings" in payload else TITAN
    stubber.add_response("invoke_model", _response(payload))
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(model), EmbeddingRequest(inputs=("a",)), 5)
    assert info.value.error_class is ErrorClass.MALFORMED


def test_vectors_of_the_wrong_size_are_malformed(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    stubber.add_response("invoke_model", _response({"embedding": _vector(0, 1024), "inputTextTokenCount": 1}))
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(), EmbeddingRequest(inputs=("a",), dimensions=256), 5)
    assert info.value.error_class is ErrorClass.MALFORMED


# --- several calls at once --------------------------------------------------------------------------------


class _ConcurrentTitan:
    """A thread-safe stand-in for the client: embeds by text length, records how many ran at once."""

    def __init__(self, fail_on: str | None = None, delay: threading.Event | None = None) -> None:
        self.fail_on = fail_on
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def invoke_model(self, **kwargs: Any) -> Any:
        text = json.loads(kwargs["body"])["inputText"]
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if self.delay is not None:
                self.delay.wait(2)
            if text == self.fail_on:
                from botocore.exceptions import ClientError

                raise ClientError(
                    {
                        "Error": {"Code": "ThrottlingException", "Message": "slow down"},
                        "ResponseMetadata": {"HTTPStatusCode": 429},
                    },
                    "InvokeModel",
                )
            return _response({"embedding": [float(len(text)), 1.0], "inputTextTokenCount": len(text)})
        finally:
            with self.lock:
                self.running -= 1


def test_many_titan_calls_run_in_parallel_and_keep_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bedrock_embeddings, "MAX_PARALLEL_CALLS", 4)
    fake = _ConcurrentTitan()
    texts = tuple("x" * n for n in range(1, 41))
    result = BedrockConverseProvider(client_factory=lambda region: fake).embed(
        _option(), EmbeddingRequest(inputs=texts), 10
    )
    assert [v[0] for v in result.vectors] == [float(n) for n in range(1, 41)]
    assert result.prompt_tokens == sum(range(1, 41))
    assert 1 <= fake.peak <= 4


def test_one_failed_call_fails_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bedrock_embeddings, "MAX_PARALLEL_CALLS", 4)
    fake = _ConcurrentTitan(fail_on="xxx")
    with pytest.raises(ProviderError) as info:
        BedrockConverseProvider(client_factory=lambda region: fake).embed(
            _option(), EmbeddingRequest(inputs=("x", "xx", "xxx", "xxxx")), 10
        )
    assert info.value.error_class is ErrorClass.THROTTLED


def test_calls_beyond_the_time_budget_are_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bedrock_embeddings, "MAX_PARALLEL_CALLS", 2)
    never = threading.Event()
    fake = _ConcurrentTitan(delay=never)
    try:
        with pytest.raises(ProviderError) as info:
            BedrockConverseProvider(client_factory=lambda region: fake).embed(
                _option(), EmbeddingRequest(inputs=("a", "b", "c")), 0.2
            )
        assert info.value.error_class is ErrorClass.TIMEOUT
    finally:
        never.set()
