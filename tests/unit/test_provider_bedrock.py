"""Bedrock Converse adapter: request shape (validated by Stubber against the real model) and errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore import exceptions as bx
from botocore.stub import Stubber

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers import bedrock
from switchboard.providers.base import ChatMessage, ChatRequest
from switchboard.providers.bedrock import BedrockConverseProvider, to_converse_messages

PROFILE = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


pytestmark = pytest.mark.usefixtures("aws_credentials")


@pytest.fixture
def client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1")


@pytest.fixture
def provider(client: Any) -> BedrockConverseProvider:
    return BedrockConverseProvider(client_factory=lambda region: client)


def _option(**overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "claude-haiku-us",
        "provider": ProviderKind.BEDROCK,
        "model": PROFILE,
        "region": "us-east-1",
        "params": {"max_tokens": 256, "temperature": 0.2},
    }
    data.update(overrides)
    return LlmOption(**data)


def _ok(text: str = "Hello!", stop: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
        "metrics": {"latencyMs": 321},
    }


def _request(*messages: tuple[str, str], **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role=r, content=c) for r, c in messages], **kwargs)  # type: ignore[arg-type]


def test_request_shape_and_response(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    # Given a conversation with a system prompt, consecutive user turns and per-call overrides
    request = _request(
        ("system", "Be brief."),
        ("user", "Hi"),
        ("user", "How are you?"),
        ("assistant", "Fine."),
        ("user", "Great"),
        temperature=0.9,
        stop=["END"],
        top_p=0.5,
    )
    expected = {
        "modelId": PROFILE,
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi\n\nHow are you?"}]},
            {"role": "assistant", "content": [{"text": "Fine."}]},
            {"role": "user", "content": [{"text": "Great"}]},
        ],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.9, "topP": 0.5, "stopSequences": ["END"]},
    }
    stubber.add_response("converse", _ok(), expected)

    # When
    result = provider.complete(_option(), request, timeout_s=5)

    # Then
    assert result.text == "Hello!"
    assert result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (12, 3)
    assert result.model == PROFILE
    assert result.extra["latency_ms"] == 321


def test_no_inference_config_when_nothing_set(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    expected = {
        "modelId": "amazon.nova-micro-v1:0",
        "messages": [{"role": "user", "content": [{"text": "x"}]}],
    }
    stubber.add_response("converse", _ok(), expected)
    provider.complete(_option(model="amazon.nova-micro-v1:0", params={}), _request(("user", "x")), 5)


def test_leading_assistant_gets_placeholder_user_turn() -> None:
    system, messages = to_converse_messages(
        [ChatMessage("assistant", "Welcome"), ChatMessage("user", "Hi"), ChatMessage("assistant", "  ")]
    )
    assert system == []
    assert messages == [
        {"role": "user", "content": [{"text": bedrock.LEADING_USER_PLACEHOLDER}]},
        {"role": "assistant", "content": [{"text": "Welcome"}]},
        {"role": "user", "content": [{"text": "Hi"}]},
    ]


def test_only_system_messages_is_bad_request(provider: BedrockConverseProvider) -> None:
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(("system", "x")), 5)
    assert info.value.error_class is ErrorClass.BAD_REQUEST


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reason_mapping(
    provider: BedrockConverseProvider, stubber: Stubber, stop_reason: str, finish: str
) -> None:
    stubber.add_response("converse", _ok(stop=stop_reason))
    assert provider.complete(_option(), _request(("user", "x")), 5).finish_reason == finish


def test_multiple_text_blocks_are_joined(provider: BedrockConverseProvider, stubber: Stubber) -> None:
    response = _ok()
    response["output"]["message"]["content"] = [{"text": "a"}, {"text": "b"}]
    stubber.add_response("converse", response)
    assert provider.complete(_option(), _request(("user", "x")), 5).text == "ab"


@pytest.mark.parametrize(
    ("code", "status", "message", "expected"),
    [
        ("ThrottlingException", 429, "Too many requests", ErrorClass.THROTTLED),
        ("ServiceQuotaExceededException", 400, "Too many tokens per day", ErrorClass.THROTTLED),
        ("ServiceUnavailableException", 503, "down", ErrorClass.UNAVAILABLE),
        ("InternalServerException", 500, "oops", ErrorClass.UNAVAILABLE),
        ("ModelNotReadyException", 429, "not ready", ErrorClass.UNAVAILABLE),
        ("ModelErrorException", 424, "model failed", ErrorClass.UNAVAILABLE),
        ("ModelTimeoutException", 408, "slow", ErrorClass.TIMEOUT),
        ("AccessDeniedException", 403, "no access to model", ErrorClass.UNAVAILABLE),
        ("ResourceNotFoundException", 404, "model not found", ErrorClass.UNAVAILABLE),
        ("ValidationException", 400, "temperature must be <= 1", ErrorClass.BAD_REQUEST),
        ("ValidationException", 400, "Input is too long for requested model.", ErrorClass.CONTEXT_TOO_LONG),
        (
            "ValidationException",
            400,
            "prompt is too long: 210000 tokens > 200000 maximum",
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        (
            "ValidationException",
            400,
            "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens",
            ErrorClass.BAD_REQUEST,
        ),
        ("SomethingNew", 400, "?", ErrorClass.BAD_REQUEST),
        ("SomethingNew", 502, "?", ErrorClass.UNAVAILABLE),
    ],
)
def test_error_mapping(
    provider: BedrockConverseProvider,
    stubber: Stubber,
    code: str,
    status: int,
    message: str,
    expected: ErrorClass,
) -> None:
    stubber.add_client_error(
        "converse", service_error_code=code, service_message=message, http_status_code=status
    )
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(("user", "x")), 5)
    assert info.value.error_class is expected
    assert info.value.__cause__ is not None


_USAGE = {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
_METRICS = {"latencyMs": 1}


@pytest.mark.parametrize(
    "response",
    [
        {
            "output": {"message": {"role": "assistant", "content": []}},
            "stopReason": "end_turn",
            "usage": _USAGE,
            "metrics": _METRICS,
        },
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
            "stopReason": "malformed_model_output",
            "usage": _USAGE,
            "metrics": _METRICS,
        },
    ],
)
def test_malformed_responses(
    provider: BedrockConverseProvider, stubber: Stubber, response: dict[str, Any]
) -> None:
    stubber.add_response("converse", response)
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(("user", "x")), 5)
    assert info.value.error_class is ErrorClass.MALFORMED


@pytest.mark.parametrize("response", [{}, {"output": {}}, {"output": {"message": {"content": "x"}}}, None])
def test_unexpected_shapes_are_malformed(response: Any) -> None:
    class _Client:
        def converse(self, **_: Any) -> Any:
            return response

    provider = BedrockConverseProvider(client_factory=lambda region: _Client())
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(("user", "x")), 5)
    assert info.value.error_class is ErrorClass.MALFORMED


def test_guardrail_with_no_text_is_an_empty_filtered_answer(
    provider: BedrockConverseProvider, stubber: Stubber
) -> None:
    response = {
        "output": {"message": {"role": "assistant", "content": []}},
        "stopReason": "guardrail_intervened",
        "usage": _USAGE,
        "metrics": _METRICS,
    }
    stubber.add_response("converse", response)
    result = provider.complete(_option(), _request(("user", "x")), 5)
    assert (result.text, result.finish_reason) == ("", "content_filter")


class _RaisingClient:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def converse(self, **_: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (bx.ReadTimeoutError(endpoint_url="https://x"), ErrorClass.TIMEOUT),
        (bx.ConnectTimeoutError(endpoint_url="https://x"), ErrorClass.TIMEOUT),
        (bx.EndpointConnectionError(endpoint_url="https://x"), ErrorClass.UNAVAILABLE),
        (bx.NoCredentialsError(), ErrorClass.UNAVAILABLE),
        (bx.ParamValidationError(report="bad"), ErrorClass.BAD_REQUEST),
        (RuntimeError("boom"), ErrorClass.UNAVAILABLE),
    ],
)
def test_transport_errors(exc: Exception, expected: ErrorClass) -> None:
    provider = BedrockConverseProvider(client_factory=lambda region: _RaisingClient(exc))
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(), _request(("user", "x")), 5)
    assert info.value.error_class is expected
    assert info.value.__cause__ is exc


def test_region_is_passed_to_factory(stubber: Stubber, client: Any) -> None:
    seen: list[str | None] = []

    def factory(region: str | None) -> Any:
        seen.append(region)
        return client

    stubber.add_response("converse", _ok())
    BedrockConverseProvider(client_factory=factory).complete(
        _option(model="eu.amazon.nova-lite-v1:0", region="eu-west-1"), _request(("user", "x")), 5
    )
    assert seen == ["eu-west-1"]


def test_cached_clients_per_region_and_timeout_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bedrock, "_CLIENTS", {})
    a = bedrock.cached_client("bedrock-runtime", "us-east-1", 10.2)
    b = bedrock.cached_client("bedrock-runtime", "us-east-1", 10.4)
    c = bedrock.cached_client("bedrock-runtime", "eu-west-1", 10.2)
    d = bedrock.cached_client("bedrock-runtime", "us-east-1", 2.0)
    assert a is b
    assert a is not c and a is not d
    assert a.meta.config.read_timeout == 10.0
    assert a.meta.config.connect_timeout == 3.0
    assert a.meta.config.retries["total_max_attempts"] == 1  # one call, no SDK retry
    assert d.meta.config.connect_timeout == 2.0
    assert bedrock.timeout_bucket(0.1) == 0.5
