"""OpenAI-compatible adapter against a real local HTTP server; the key from (moto) Secrets Manager."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import ChatMessage, ChatRequest
from switchboard.providers.openai_compatible import OpenAICompatibleProvider, mentions_context_overflow
from tests.fakes.openai_http import CHAT_OK_BODY, FakeOpenAIServer, running_openai_server

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm-key-AbCdEf"
OK_BODY = CHAT_OK_BODY
FakeServer = FakeOpenAIServer


@pytest.fixture(scope="module")
def _running_server() -> Iterator[FakeServer]:
    with running_openai_server() as fake:
        yield fake


@pytest.fixture
def server(_running_server: FakeServer) -> FakeServer:
    return _running_server.reset()


def _option(base_url: str, **overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "third-party",
        "provider": ProviderKind.OPENAI_COMPATIBLE,
        "model": "gpt-test",
        "base_url": base_url,
        "params": {"max_tokens": 64, "temperature": 0.3},
    }
    data.update(overrides)
    return LlmOption(**data)


def _request(**kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")], **kwargs)


def test_request_and_response_without_secret(server: FakeServer) -> None:
    # Given an option with no secret and a per-call override
    provider = OpenAICompatibleProvider(secret_reader=lambda arn: pytest.fail("no secret expected"))

    # When
    result = provider.complete(_option(server.base_url), _request(top_p=0.9, stop=["END"]), timeout_s=5)

    # Then the request is OpenAI-shaped, with no Authorization header
    [seen] = server.seen
    assert seen.path == "/v1/chat/completions"
    assert "Authorization" not in seen.headers
    assert seen.body == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
    }
    assert result.text == "Hello!"
    assert result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (11, 2)
    assert result.model == "gpt-test-2025"


def test_trailing_slash_in_base_url(server: FakeServer) -> None:
    OpenAICompatibleProvider().complete(_option(server.base_url + "/"), _request(), 5)
    assert server.seen[0].path == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("secret", "key"),
    [("sk-raw-key", "sk-raw-key"), (json.dumps({"api_key": "sk-json", "org": "o"}), "sk-json")],
)
def test_key_from_secrets_manager(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, secret: str, key: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="llm-key", SecretString=secret
        )["ARN"]
        OpenAICompatibleProvider().complete(_option(server.base_url, secret_arn=arn), _request(), 5)
    assert server.seen[0].headers["Authorization"] == f"Bearer {key}"


def test_missing_secret_is_unavailable(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(), pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().complete(_option(server.base_url, secret_arn=SECRET_ARN), _request(), 5)
    assert info.value.error_class is ErrorClass.UNAVAILABLE
    assert server.seen == []


@pytest.mark.parametrize("secret", ["", "{not json", json.dumps({"key": "x"}), json.dumps(["x"])])
def test_unusable_secret_is_unavailable(server: FakeServer, secret: str) -> None:
    provider = OpenAICompatibleProvider(secret_reader=lambda arn: secret)
    with pytest.raises(ProviderError) as info:
        provider.complete(_option(server.base_url, secret_arn=SECRET_ARN), _request(), 5)
    assert info.value.error_class is ErrorClass.UNAVAILABLE
    assert secret not in info.value.message or not secret


def test_key_is_cached_for_five_minutes(server: FakeServer) -> None:
    reads: list[str] = []
    now = [1000.0]

    def reader(arn: str) -> str:
        reads.append(arn)
        return f"sk-{len(reads)}"

    provider = OpenAICompatibleProvider(secret_reader=reader, clock=lambda: now[0])
    option = _option(server.base_url, secret_arn=SECRET_ARN)
    provider.complete(option, _request(), 5)
    now[0] += 299
    provider.complete(option, _request(), 5)
    now[0] += 2
    provider.complete(option, _request(), 5)
    assert reads == [SECRET_ARN, SECRET_ARN]
    assert [s.headers["Authorization"] for s in server.seen] == ["Bearer sk-1", "Bearer sk-1", "Bearer sk-2"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            429,
            {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}},
            ErrorClass.THROTTLED,
        ),
        (408, {"error": {"message": "timeout"}}, ErrorClass.TIMEOUT),
        (504, b"<html>gateway timeout</html>", ErrorClass.TIMEOUT),
        (500, {"error": {"message": "internal"}}, ErrorClass.UNAVAILABLE),
        (502, b"bad gateway", ErrorClass.UNAVAILABLE),
        (503, {"error": {"message": "overloaded"}}, ErrorClass.UNAVAILABLE),
        (401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}, ErrorClass.UNAVAILABLE),
        (403, {"error": {"message": "forbidden"}}, ErrorClass.UNAVAILABLE),
        (
            404,
            {"error": {"message": "The model does not exist", "code": "model_not_found"}},
            ErrorClass.UNAVAILABLE,
        ),
        (
            400,
            {
                "error": {
                    "message": "too long",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        (
            400,
            {"error": {"message": "This model's maximum context length is 8192 tokens.", "code": None}},
            ErrorClass.CONTEXT_TOO_LONG,
        ),
        (400, {"error": {"message": "filtered", "code": "content_filter"}}, ErrorClass.CONTENT_FILTERED),
        (
            400,
            {"error": {"message": "policy", "code": "content_policy_violation"}},
            ErrorClass.CONTENT_FILTERED,
        ),
        (
            400,
            {"error": {"message": "temperature must be <= 2", "param": "temperature"}},
            ErrorClass.BAD_REQUEST,
        ),
        (422, {"detail": "validation"}, ErrorClass.BAD_REQUEST),
        (400, b"not json", ErrorClass.BAD_REQUEST),
    ],
)
def test_http_error_mapping(server: FakeServer, status: int, body: Any, expected: ErrorClass) -> None:
    server.respond(status, body)
    with pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().complete(_option(server.base_url), _request(), 5)
    assert info.value.error_class is expected
    assert str(status) in info.value.message
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("0.5", 0.5), ("soon", None), (None, None)])
def test_retry_after(server: FakeServer, header: str | None, expected: float | None) -> None:
    server.respond(
        429, {"error": {"message": "slow down"}}, headers={"Retry-After": header} if header else {}
    )
    with pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().complete(_option(server.base_url), _request(), 5)
    assert info.value.error_class is ErrorClass.THROTTLED
    assert info.value.retry_after_s == expected


def test_retry_after_http_date(server: FakeServer) -> None:
    from email.utils import formatdate

    server.respond(429, {}, headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    with pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().complete(_option(server.base_url), _request(), 5)
    assert info.value.retry_after_s is not None and 25 <= info.value.retry_after_s <= 31


def test_socket_timeout(server: FakeServer) -> None:
    server.respond(200, OK_BODY, delay_s=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().complete(_option(server.base_url), _request(), timeout_s=0.2)
    assert info.value.error_class is ErrorClass.TIMEOUT
    assert time.monotonic() - started < 0.9


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().complete(_option(f"http://127.0.0.1:{port}/v1"), _request(), 2)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        {"object": "chat.completion"},
        {"choices": []},
        {"choices": [{"finish_reason": "stop"}]},
        {"error": {"message": "proxy said no"}},
        [1, 2],
        {"choices": [{"message": {"content": 42}}]},
    ],
)
def test_malformed_success_bodies(server: FakeServer, body: Any) -> None:
    server.respond(200, body)
    with pytest.raises(ProviderError) as info:
        OpenAICompatibleProvider().complete(_option(server.base_url), _request(), 5)
    assert info.value.error_class is ErrorClass.MALFORMED


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reason(server: FakeServer, reason: str | None, expected: str) -> None:
    body = json.loads(json.dumps(OK_BODY))
    body["choices"][0]["finish_reason"] = reason
    server.respond(200, body)
    assert (
        OpenAICompatibleProvider().complete(_option(server.base_url), _request(), 5).finish_reason == expected
    )


def test_content_parts_and_null_content(server: FakeServer) -> None:
    body = json.loads(json.dumps(OK_BODY))
    body["choices"][0]["message"]["content"] = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    server.respond(200, body)
    assert OpenAICompatibleProvider().complete(_option(server.base_url), _request(), 5).text == "ab"
    body["choices"][0]["message"]["content"] = None
    body["choices"][0]["finish_reason"] = "content_filter"
    server.respond(200, body)
    result = OpenAICompatibleProvider().complete(_option(server.base_url), _request(), 5)
    assert (result.text, result.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize(
    ("message", "overflow"),
    [
        ("This model's maximum context length is 4096 tokens", True),
        ("Input is too long for requested model.", True),
        ("prompt is too long: 210000 tokens > 200000 maximum", True),
        ("max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens", False),
        ("temperature: range 0..1", False),
    ],
)
def test_context_overflow_detection(message: str, overflow: bool) -> None:
    assert mentions_context_overflow(message) is overflow
