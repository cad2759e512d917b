"""SageMaker InvokeEndpoint adapter: request shape (Stubber on a real client), parsing and errors."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore import exceptions as bx
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import ChatMessage, ChatRequest
from switchboard.providers.sagemaker import SageMakerEndpointProvider, build_body, parse_body

pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture
def client() -> Any:
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


@pytest.fixture
def provider(client: Any) -> SageMakerEndpointProvider:
    return SageMakerEndpointProvider(client_factory=lambda region: client)


def _option(**overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "llama-sm",
        "provider": ProviderKind.SAGEMAKER,
        "endpoint_name": "llama-endpoint",
        "region": "us-east-1",
        "params": {"max_tokens": 128, "temperature": 0.1},
    }
    data.update(overrides)
    return LlmOption(**data)


def _request(text: str = "Hi", **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("system", "Be brief."), ChatMessage("user", text)], **kwargs)


def _body(payload: Any) -> dict[str, Any]:
    raw = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


OPENAI_REPLY = {
    "id": "x",
    "object": "chat.completion",
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "length"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}


def test_request_shape_openai_response(provider: SageMakerEndpointProvider, stubber: Stubber) -> None:
    # Given an inference-component option and a per-call override
    option = _option(inference_component="llama-lora-v3", model="lora-v3")
    expected_body = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "model": "lora-v3",
        "max_tokens": 128,
        "temperature": 0.7,
        "stop": ["\n\n"],
    }
    stubber.add_response(
        "invoke_endpoint",
        _body(OPENAI_REPLY),
        {
            "EndpointName": "llama-endpoint",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": ANY,
            "InferenceComponentName": "llama-lora-v3",
        },
    )
    sent: list[dict[str, Any]] = []
    stubber.client.meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint",
        lambda params, **_: sent.append(json.loads(params["Body"])),
    )

    # When
    result = provider.complete(option, _request(temperature=0.7, stop=["\n\n"]), timeout_s=10)

    # Then
    assert sent == [expected_body]
    assert result.text == "Hello"
    assert result.finish_reason == "length"
    assert (result.prompt_tokens, result.completion_tokens) == (9, 1)
    assert result.model == "meta-llama/Llama-3.1-8B-Instruct"


def test_no_inference_component_when_unset(provider: SageMakerEndpointProvider, stubber: Stubber) -> None:
    stubber.add_response(
        "invoke_endpoint",
        _body(OPENAI_REPLY),
        {
            "EndpointName": "llama-endpoint",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": ANY,
        },
    )
    provider.complete(_option(), _request(), 10)


def test_body_without_model_or_unset_params() -> None:
    body = build_body(_option(params={}), ChatRequest(messages=[ChatMessage("user", "x")]))
    assert body == {"messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(
    ("payload", "text", "finish", "completion_tokens"),
    [
        ([{"generated_text": "tgi list"}], "tgi list", "stop", 0),
        (
            {"generated_text": "tgi dict", "details": {"finish_reason": "length", "generated_tokens": 7}},
            "tgi dict",
            "length",
            7,
        ),
        (
            {"choices": [{"message": {"content": "ok"}, "finish_reason": "eos"}]},
            "ok",
            "stop",
            0,
        ),
    ],
)
def test_accepted_response_shapes(payload: Any, text: str, finish: str, completion_tokens: int) -> None:
    result = parse_body(json.dumps(payload).encode(), _option())
    assert (result.text, result.finish_reason, result.completion_tokens) == (text, finish, completion_tokens)


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        json.dumps({"outputs": "x"}),
        json.dumps({"choices": []}),
        json.dumps({"choices": [{"message": {}}]}),
        json.dumps([]),
        json.dumps({"generated_text": 3}),
    ],
)
def test_malformed_bodies(provider: SageMakerEndpointProvider, stubber: Stubber, payload: str) -> None:
    stubber.add_response("invoke_endpoint", _body(payload))
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(), 10)
    assert info.value.error_class is ErrorClass.MALFORMED


def _model_error(status: int, message: str) -> dict[str, Any]:
    return {"OriginalStatusCode": status, "OriginalMessage": message}


@pytest.mark.parametrize(
    ("code", "http_status", "message", "modeled", "expected"),
    [
        (
            "ModelError",
            424,
            "Received client error (429)",
            _model_error(429, "slow down"),
            ErrorClass.THROTTLED,
        ),
        (
            "ModelError",
            424,
            "Received server error (500)",
            _model_error(500, "CUDA OOM"),
            ErrorClass.UNAVAILABLE,
        ),
        (
            "ModelError",
            424,
            "Received server error (503)",
            _model_error(503, "loading"),
            ErrorClass.UNAVAILABLE,
        ),
        ("ModelError", 424, "error", _model_error(400, "bad temperature"), ErrorClass.BAD_REQUEST),
        ("ModelError", 424, "error", _model_error(422, "Input validation error"), ErrorClass.BAD_REQUEST),
        ("ModelError", 424, "error", _model_error(413, "payload too large"), ErrorClass.BAD_REQUEST),
        (
            "ModelError",
            424,
            "error",
            _model_error(400, "This model's maximum context length is 8192 tokens"),
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        (
            "ModelError",
            424,
            "error",
            _model_error(
                422, "`inputs` tokens + `max_new_tokens` must be <= 4096. Given: 5000 `inputs` tokens"
            ),
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        ("ModelError", 424, "error", _model_error(404, "route not found"), ErrorClass.UNAVAILABLE),
        ("ModelError", 424, "error", _model_error(504, "gateway timeout"), ErrorClass.TIMEOUT),
        (
            "ModelError",
            424,
            "Your invocation timed out while waiting for a response from container primary.",
            {},
            ErrorClass.TIMEOUT,
        ),
        ("ThrottlingException", 400, "Rate exceeded", {}, ErrorClass.THROTTLED),
        ("ServiceUnavailable", 503, "down", {}, ErrorClass.UNAVAILABLE),
        ("InternalFailure", 500, "oops", {}, ErrorClass.UNAVAILABLE),
        ("InternalDependencyException", 530, "dep", {}, ErrorClass.UNAVAILABLE),
        ("ModelNotReadyException", 429, "not ready", {}, ErrorClass.UNAVAILABLE),
        ("AccessDeniedException", 403, "denied", {}, ErrorClass.UNAVAILABLE),
        (
            "ValidationError",
            400,
            "Endpoint llama-endpoint of account 1 not found.",
            {},
            ErrorClass.UNAVAILABLE,
        ),
        ("ValidationError", 400, "Inference Component Name header is required", {}, ErrorClass.BAD_REQUEST),
        ("ValidationException", 400, "Input is too long", {}, ErrorClass.CONTEXT_TOO_LONG),
        ("SomethingNew", 429, "?", {}, ErrorClass.THROTTLED),
    ],
)
def test_error_mapping(
    provider: SageMakerEndpointProvider,
    stubber: Stubber,
    code: str,
    http_status: int,
    message: str,
    modeled: dict[str, Any],
    expected: ErrorClass,
) -> None:
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=message,
        http_status_code=http_status,
        modeled_fields=modeled or None,
    )
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(), 10)
    assert info.value.error_class is expected
    assert info.value.__cause__ is not None


class _RaisingClient:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def invoke_endpoint(self, **_: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (bx.ReadTimeoutError(endpoint_url="https://x"), ErrorClass.TIMEOUT),
        (bx.ConnectTimeoutError(endpoint_url="https://x"), ErrorClass.TIMEOUT),
        (bx.EndpointConnectionError(endpoint_url="https://x"), ErrorClass.UNAVAILABLE),
        (RuntimeError("boom"), ErrorClass.UNAVAILABLE),
    ],
)
def test_transport_errors(exc: Exception, expected: ErrorClass) -> None:
    provider = SageMakerEndpointProvider(client_factory=lambda region: _RaisingClient(exc))
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(), 10)
    assert info.value.error_class is expected


def test_read_timeout_while_streaming_the_body() -> None:
    class _Body:
        def read(self) -> bytes:
            raise bx.ReadTimeoutError(endpoint_url="https://x")

    class _Client:
        def invoke_endpoint(self, **_: Any) -> Any:
            return {"Body": _Body()}

    provider = SageMakerEndpointProvider(client_factory=lambda region: _Client())
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(), 10)
    assert info.value.error_class is ErrorClass.TIMEOUT
