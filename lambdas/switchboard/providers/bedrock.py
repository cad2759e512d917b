"""Amazon Bedrock through the Converse API (`bedrock-runtime:Converse`).

`modelId` is `option.model` as is: a foundation model id (`amazon.nova-lite-v1:0`) or a cross-region
inference profile id (`us.`/`eu.`/`apac.`/`global.` + model id). OpenAI-style messages are mapped to
Converse's shape: system messages become `system=[{"text"}]`; user/assistant messages become
`messages`, with consecutive same-role messages merged (joined by a blank line, since Converse
requires alternating roles), blank messages dropped, and a placeholder user turn (`"."`) inserted
when the conversation would otherwise start with the assistant.

The SDK never retries (`total_max_attempts=1`): retries, backoff and fallbacks belong to the workflow.

Error mapping (Converse error code / condition -> `ErrorClass`):

- throttled: ThrottlingException, any HTTP 429, and ServiceQuotaExceededException (a token quota
  hit behaves like throttling for routing: the workflow backs off, then moves on).
- timeout: ModelTimeoutException, botocore read/connect timeouts.
- unavailable: ServiceUnavailableException, InternalServerException, ModelNotReadyException,
  ModelErrorException, other 5xx; EndpointConnectionError and other connection failures, missing
  credentials; AccessDeniedException and ResourceNotFoundException (the option is misconfigured:
  model access not granted, wrong id or region. The caller cannot fix that, so the workflow moves
  on and the circuit opens until an operator fixes the option).
- context_too_long: ValidationException whose message says the input does not fit.
- bad_request: any other ValidationException or 4xx, botocore parameter validation.
- malformed: stopReason `malformed_model_output`/`malformed_tool_use`, unexpected response shape.

Successful stop reasons: end_turn/stop_sequence/tool_use -> stop; max_tokens and
model_context_window_exceeded -> length; guardrail_intervened/content_filtered -> content_filter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatMessage, ChatRequest, ChatResult, FinishReason, merged_params
from switchboard.providers.openai_compatible import mentions_context_overflow, short

LEADING_USER_PLACEHOLDER = "."

_THROTTLED_CODES = frozenset(
    {"ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"}
)
_TIMEOUT_CODES = frozenset({"ModelTimeoutException"})
_UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelErrorException",
        "AccessDeniedException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
    }
)
_VALIDATION_CODES = frozenset({"ValidationException"})

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_MALFORMED_STOP_REASONS = frozenset({"malformed_model_output", "malformed_tool_use"})

# Clients are cached per (service, region, timeout bucket): the timeout lives in the client config,
# and the per-call timeout varies, so it is bucketed to 0.5 s (rounded down, so the call never
# outlives the budget it was given by more than the connect phase).
_CLIENTS: dict[tuple[str, str | None, float], Any] = {}
_CLIENTS_LOCK = threading.Lock()
_MAX_CACHED_CLIENTS = 64


def timeout_bucket(timeout_s: float) -> float:
    return max(0.5, int(timeout_s * 2) / 2)


def cached_client(service: str, region: str | None, timeout_s: float) -> Any:
    """A boto3 client for `service` in `region` with no SDK retries and the given read timeout."""
    bucket = timeout_bucket(timeout_s)
    key = (service, region, bucket)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
    if client is not None:
        return client
    from botocore.config import Config

    from switchboard import aws  # lazy: keeps the mock path and unrelated cold starts free of botocore

    config = Config(
        read_timeout=bucket,
        connect_timeout=min(3.0, bucket),
        # `max_attempts` counts retries (1 would mean two calls); `total_max_attempts` counts calls.
        retries={"total_max_attempts": 1, "mode": "standard"},
        tcp_keepalive=True,
    )
    client = aws.client(service, region_name=region, config=config)
    with _CLIENTS_LOCK:
        if len(_CLIENTS) >= _MAX_CACHED_CLIENTS:
            _CLIENTS.clear()
        _CLIENTS[key] = client
    return client


def classify_botocore_transport_error(exc: Exception, what: str) -> ProviderError | None:
    """Timeouts, connection failures, credentials and local parameter errors from botocore."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError):
        return ProviderError(ErrorClass.TIMEOUT, f"{what} timed out: {type(exc).__name__}")
    if isinstance(exc, bx.ParamValidationError):
        return ProviderError(ErrorClass.BAD_REQUEST, f"{what} request rejected by the SDK: {short(str(exc))}")
    if isinstance(exc, bx.BotoCoreError):  # EndpointConnectionError, ConnectionClosedError, NoCredentials...
        return ProviderError(ErrorClass.UNAVAILABLE, f"{what} unreachable: {type(exc).__name__}")
    return None


def client_error_parts(exc: Any) -> tuple[str, str, int]:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return str(error.get("Code") or ""), str(error.get("Message") or ""), int(status)


def to_converse_messages(
    messages: list[ChatMessage],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant messages starting with user)."""
    system = [{"text": m.text} for m in messages if m.role == "system" and m.text.strip()]
    turns: list[tuple[str, list[str]]] = []
    for message in messages:
        if message.role == "system" or not message.text.strip():
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1].append(message.text)
        else:
            turns.append((message.role, [message.text]))
    if turns and turns[0][0] != "user":
        turns.insert(0, ("user", [LEADING_USER_PLACEHOLDER]))
    converse = [{"role": role, "content": [{"text": "\n\n".join(texts)}]} for role, texts in turns]
    return system, converse


def _inference_config(params: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if "max_tokens" in params:
        config["maxTokens"] = int(params["max_tokens"])
    if "temperature" in params:
        config["temperature"] = float(params["temperature"])
    if "top_p" in params:
        config["topP"] = float(params["top_p"])
    stop = params.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
    return config


def _classify_client_error(exc: Exception) -> ProviderError:
    code, message, status = client_error_parts(exc)
    detail = f"Bedrock {code or status}: {short(message)}"
    # Known codes win over the HTTP status (ModelNotReadyException arrives as a 429).
    if code in _THROTTLED_CODES:
        return ProviderError(ErrorClass.THROTTLED, detail)
    if code in _TIMEOUT_CODES:
        return ProviderError(ErrorClass.TIMEOUT, detail)
    if code in _UNAVAILABLE_CODES:
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    if code in _VALIDATION_CODES:
        error_class = (
            ErrorClass.CONTEXT_TOO_LONG if mentions_context_overflow(message) else ErrorClass.BAD_REQUEST
        )
        return ProviderError(error_class, detail)
    return classify_status(status, message, detail)


def classify_status(status: int, message: str, detail: str) -> ProviderError:
    """Fallback for error codes we do not know: decide on the HTTP status."""
    if status == 429:
        return ProviderError(ErrorClass.THROTTLED, detail)
    if status in (408, 504):
        return ProviderError(ErrorClass.TIMEOUT, detail)
    if 400 <= status < 500:
        if mentions_context_overflow(message):
            return ProviderError(ErrorClass.CONTEXT_TOO_LONG, detail)
        return ProviderError(ErrorClass.BAD_REQUEST, detail)
    return ProviderError(ErrorClass.UNAVAILABLE, detail)


def _tokens(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _parse_response(response: Any, option: LlmOption) -> ChatResult:
    try:
        content = response["output"]["message"]["content"]
        stop_reason = response.get("stopReason")
        usage = response.get("usage") or {}
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProviderError(ErrorClass.MALFORMED, "Converse response has no output.message.content") from exc
    if not isinstance(content, list) or not isinstance(usage, dict):
        raise ProviderError(ErrorClass.MALFORMED, "Converse response content is not a list")
    if stop_reason in _MALFORMED_STOP_REASONS:
        raise ProviderError(ErrorClass.MALFORMED, f"Bedrock stopReason {stop_reason}")
    finish = _STOP_REASONS.get(str(stop_reason), "stop")
    texts = [
        block["text"] for block in content if isinstance(block, dict) and isinstance(block.get("text"), str)
    ]
    if not texts and finish != "content_filter":
        raise ProviderError(ErrorClass.MALFORMED, "Converse response has no text content")
    extra: dict[str, Any] = {"stop_reason": stop_reason}
    metrics = response.get("metrics")
    latency = metrics.get("latencyMs") if isinstance(metrics, dict) else None
    if isinstance(latency, int):
        extra["latency_ms"] = latency
    return ChatResult(
        text="".join(texts),
        finish_reason=finish,
        prompt_tokens=_tokens(usage.get("inputTokens")),
        completion_tokens=_tokens(usage.get("outputTokens")),
        model=option.model or "",
        extra=extra,
    )


class BedrockConverseProvider:
    """Bedrock Converse; `client_factory(region)` replaces the cached boto3 clients (tests, Stubber)."""

    def __init__(self, client_factory: Callable[[str | None], Any] | None = None) -> None:
        self._client_factory = client_factory

    def _client(self, region: str | None, timeout_s: float) -> Any:
        if self._client_factory is not None:
            return self._client_factory(region)
        return cached_client("bedrock-runtime", region, timeout_s)

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        if not option.model:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"option {option.id} has no model id")
        system, messages = to_converse_messages(request.messages)
        if not messages:
            raise ProviderError(ErrorClass.BAD_REQUEST, "no non-empty user or assistant message to send")
        kwargs: dict[str, Any] = {"modelId": option.model, "messages": messages}
        if system:
            kwargs["system"] = system
        try:
            inference = _inference_config(merged_params(option, request))
        except (TypeError, ValueError) as exc:
            raise ProviderError(ErrorClass.BAD_REQUEST, "invalid max_tokens/temperature/top_p/stop") from exc
        if inference:
            kwargs["inferenceConfig"] = inference

        from botocore.exceptions import ClientError

        try:
            client = self._client(option.region, timeout_s)
            response = client.converse(**kwargs)
        except ClientError as exc:
            raise _classify_client_error(exc) from exc
        except Exception as exc:
            mapped = classify_botocore_transport_error(exc, "Bedrock")
            if mapped is None:
                raise ProviderError(
                    ErrorClass.UNAVAILABLE, f"Bedrock call failed: {type(exc).__name__}"
                ) from exc
            raise mapped from exc
        return _parse_response(response, option)
