"""SageMaker embedding endpoints (Stubber on a real sagemaker-runtime client): TEI's `inputs` body
and list-of-vectors answer, the OpenAI shape, and the answers that are refused."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, OptionTask, ProviderKind
from switchboard.providers.base import EmbeddingRequest
from switchboard.providers.sagemaker import SageMakerEndpointProvider

pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture
def client() -> Any:
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


@pytest.fixture
def provider(client: Any) -> SageMakerEndpointProvider:
    return SageMakerEndpointProvider(client_factory=lambda region: client)


@pytest.fixture
def sent(stubber: Stubber) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    stubber.client.meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: bodies.append(json.loads(params["Body"])),
    )
    return bodies


def _option(**overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "bge-sm",
        "provider": ProviderKind.SAGEMAKER,
        "endpoint_name": "bge-endpoint",
        "region": "us-east-1",
        "task": OptionTask.EMBEDDINGS,
    }
    data.update(overrides)
    return LlmOption(**data)


def _body(payload: Any) -> dict[str, Any]:
    raw = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


def test_tei_request_and_answer(
    provider: SageMakerEndpointProvider, stubber: Stubber, sent: list[Any]
) -> None:
    stubber.add_response(
        "invoke_endpoint",
        _body([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]),
        {
            "EndpointName": "bge-endpoint",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": ANY,
            "InferenceComponentName": "bge-small",
        },
    )

    result = provider.embed(
        _option(inference_component="bge-small"), EmbeddingRequest(inputs=("one", "two")), timeout_s=5
    )

    assert sent == [{"inputs": ["one", "two"]}]
    assert result.vectors == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    assert (result.prompt_tokens, result.model) == (0, "bge-endpoint")


def test_tei_refuses_token_arrays_without_a_call() -> None:
    class _NoCalls:
        def invoke_endpoint(self, **_: Any) -> Any:
            pytest.fail("no call expected")

    provider = SageMakerEndpointProvider(client_factory=lambda region: _NoCalls())
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(), EmbeddingRequest(inputs=((101, 2023, 102),)), 5)
    assert info.value.error_class is ErrorClass.UNSUPPORTED


@pytest.mark.parametrize(("dimensions", "ok"), [(3, True), (2, False)])
def test_tei_has_only_the_models_own_size(
    provider: SageMakerEndpointProvider, stubber: Stubber, sent: list[Any], dimensions: int, ok: bool
) -> None:
    stubber.add_response("invoke_endpoint", _body([[0.1, 0.2, 0.3]]))
    request = EmbeddingRequest(inputs=("one",), dimensions=dimensions)
    if ok:
        assert provider.embed(_option(), request, 5).vectors == [[0.1, 0.2, 0.3]]
    else:
        with pytest.raises(ProviderError) as info:
            provider.embed(_option(), request, 5)
        assert info.value.error_class is ErrorClass.UNSUPPORTED
    assert sent == [{"inputs": ["one"]}]  # TEI's body has no `dimensions`


def test_openai_api_request_and_answer(
    provider: SageMakerEndpointProvider, stubber: Stubber, sent: list[Any]
) -> None:
    answer = {
        "object": "list",
        "data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}],
        "model": "intfloat/e5-mistral-7b-instruct",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    stubber.add_response("invoke_endpoint", _body(answer))
    option = _option(model="e5", params={"api": "openai", "dimensions": 2})

    result = provider.embed(option, EmbeddingRequest(inputs=("a", (5, 6))), 5)

    assert sent == [{"model": "e5", "input": ["a", [5, 6]], "encoding_format": "float", "dimensions": 2}]
    assert result.vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert (result.prompt_tokens, result.model) == (6, "intfloat/e5-mistral-7b-instruct")


def test_an_openai_shaped_answer_from_a_tei_option_is_read(
    provider: SageMakerEndpointProvider, stubber: Stubber
) -> None:
    stubber.add_response("invoke_endpoint", _body({"data": [{"index": 0, "embedding": [0.5]}]}))
    assert provider.embed(_option(), EmbeddingRequest(inputs=("a",)), 5).vectors == [[0.5]]


def test_an_unknown_api_is_a_misconfigured_option() -> None:
    """Refused on write (options.model); an item stored before that rule still fails safely."""
    provider = SageMakerEndpointProvider(client_factory=lambda region: pytest.fail("no client expected"))
    option = _option()
    object.__setattr__(option, "params", {**option.params, "api": "grpc"})
    with pytest.raises(ProviderError) as info:
        provider.embed(option, EmbeddingRequest(inputs=("a",)), 5)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        json.dumps({"embeddings": [[0.1]]}),
        json.dumps([[0.1]]),  # one vector for two inputs
        json.dumps([[0.1], [0.2, 0.3]]),
        json.dumps([[0.1], []]),
        json.dumps([[0.1], ["x"]]),
        json.dumps([[0.1], None]),
        "[[0.1], [Infinity]]",
        json.dumps({"data": [{"index": 0, "embedding": [0.1]}]}),
    ],
)
def test_malformed_answers(provider: SageMakerEndpointProvider, stubber: Stubber, payload: str) -> None:
    stubber.add_response("invoke_endpoint", _body(payload))
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(), EmbeddingRequest(inputs=("a", "b")), 5)
    assert info.value.error_class is ErrorClass.MALFORMED


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (429, "Model is overloaded", ErrorClass.THROTTLED),
        (413, "batch size 64 > maximum allowed batch size 32", ErrorClass.BAD_REQUEST),
        (
            413,
            "Input validation error: `inputs` must have less than 512 tokens. Given: 700",
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        (500, "CUDA error", ErrorClass.UNAVAILABLE),
    ],
)
def test_container_errors(
    provider: SageMakerEndpointProvider, stubber: Stubber, status: int, message: str, expected: ErrorClass
) -> None:
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received client error ({status}) from primary",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": status, "OriginalMessage": json.dumps({"error": message})},
    )
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(), EmbeddingRequest(inputs=("a",)), 5)
    assert info.value.error_class is expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [({}, ErrorClass.UNSUPPORTED), ({"api": "openai"}, ErrorClass.MALFORMED)],
)
def test_an_openai_shaped_answer_of_another_size(
    provider: SageMakerEndpointProvider, stubber: Stubber, params: dict[str, Any], expected: ErrorClass
) -> None:
    # TEI was never sent `dimensions` (it cannot do them); an OpenAI-style container was, and ignored it
    stubber.add_response("invoke_endpoint", _body({"data": [{"index": 0, "embedding": [0.5, 0.5, 0.5]}]}))
    with pytest.raises(ProviderError) as info:
        provider.embed(_option(params=params), EmbeddingRequest(inputs=("a",), dimensions=2), 5)
    assert info.value.error_class is expected
