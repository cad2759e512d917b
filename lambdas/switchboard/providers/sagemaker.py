"""SageMaker real-time endpoints (`sagemaker-runtime:InvokeEndpoint`), optionally one inference component.

Request (what TGI, LMI/DJL and vLLM containers with the messages API accept), sent with
`ContentType` and `Accept` `application/json`::

    {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...],
     "model": option.model,            # only when the option names one
     "max_tokens": int, "temperature": float, "top_p": float, "stop": [str]}   # only when set

`InferenceComponentName` is `option.inference_component` when set (e.g. a LoRA adapter component).

Accepted responses, anything else is `malformed`:

- OpenAI chat shape: `{"choices": [{"message": {"content": "..."}, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": n, "completion_tokens": n}}`;
- TGI generate shape: `[{"generated_text": "..."}]` or `{"generated_text": "...", "details":
  {"finish_reason": "length"|"eos_token"|"stop_sequence", "generated_tokens": n}}` (prompt tokens 0).

Error mapping (InvokeEndpoint error code / condition -> `ErrorClass`):

- throttled: ThrottlingException, HTTP 429, ModelError whose OriginalStatusCode is 429.
- timeout: ModelError with OriginalStatusCode 408/504 or a "timed out" message; botocore
  read/connect timeouts.
- unavailable: ModelError with a 5xx or missing OriginalStatusCode; ModelError 401/403/404 (the
  container rejects our route or setup: the option is misconfigured); ServiceUnavailable,
  InternalFailure, InternalDependencyException, ModelNotReadyException, AccessDeniedException,
  other 5xx, connection failures, missing credentials; a ValidationError naming a missing
  endpoint or inference component ("not found", "could not find": misconfigured, not the caller).
- context_too_long: ModelError 4xx or ValidationError whose message says the input does not fit.
- bad_request: other ModelError 4xx (400/413/422...), other ValidationError/ValidationException,
  other 4xx, botocore parameter validation.
- malformed: a body that is not JSON or in neither accepted shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatRequest, ChatResult, FinishReason, merged_params
from switchboard.providers.bedrock import (
    cached_client,
    classify_botocore_transport_error,
    classify_status,
    client_error_parts,
)
from switchboard.providers.openai_compatible import mentions_context_overflow, short

_THROTTLED_CODES = frozenset({"ThrottlingException", "TooManyRequestsException"})
_UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "InternalFailure",
        "InternalDependencyException",
        "ModelNotReadyException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
    }
)
_VALIDATION_CODES = frozenset({"ValidationError", "ValidationException"})
_MISSING_TARGET = re.compile(r"not found|could not find|does not exist", re.IGNORECASE)
_TGI_FINISH: dict[str, FinishReason] = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def _classify_model_error(exc: Any, message: str) -> ProviderError:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    original = response.get("OriginalStatusCode", error.get("OriginalStatusCode"))
    original_message = str(response.get("OriginalMessage", error.get("OriginalMessage")) or "")
    try:
        status = int(original) if original is not None else 0
    except (TypeError, ValueError):
        status = 0
    text = f"{message} {original_message}"
    detail = f"SageMaker ModelError (container {status or 'n/a'}): {short(original_message or message)}"
    if status == 429:
        return ProviderError(ErrorClass.THROTTLED, detail)
    if status in (408, 504) or "timed out" in text.lower():
        return ProviderError(ErrorClass.TIMEOUT, detail)
    if status in (401, 403, 404) or status >= 500 or status < 400:
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    if mentions_context_overflow(text):
        return ProviderError(ErrorClass.CONTEXT_TOO_LONG, detail)
    return ProviderError(ErrorClass.BAD_REQUEST, detail)


def _classify_client_error(exc: Exception) -> ProviderError:
    code, message, status = client_error_parts(exc)
    if code == "ModelError":
        return _classify_model_error(exc, message)
    detail = f"SageMaker {code or status}: {short(message)}"
    if code in _THROTTLED_CODES:
        return ProviderError(ErrorClass.THROTTLED, detail)
    if code in _UNAVAILABLE_CODES:
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    if (code in _VALIDATION_CODES or 400 <= status < 500) and _MISSING_TARGET.search(message):
        return ProviderError(ErrorClass.UNAVAILABLE, detail)  # endpoint/component missing: misconfigured
    if code in _VALIDATION_CODES:
        error_class = (
            ErrorClass.CONTEXT_TOO_LONG if mentions_context_overflow(message) else ErrorClass.BAD_REQUEST
        )
        return ProviderError(error_class, detail)
    return classify_status(status, message, detail)


def build_body(option: LlmOption, request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [m.to_openai() for m in request.messages]}
    if option.model:
        body["model"] = option.model
    body.update(merged_params(option, request))
    return body


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _parse_openai(data: dict[str, Any], option: LlmOption) -> ChatResult:
    choices = data["choices"]
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError(ErrorClass.MALFORMED, "SageMaker response has empty choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None and isinstance(choices[0].get("text"), str):  # completions-style choice
        content = choices[0]["text"]
    if not isinstance(content, str):
        raise ProviderError(ErrorClass.MALFORMED, "SageMaker response has no choices[0].message.content")
    reason = choices[0].get("finish_reason")
    finish: FinishReason = reason if reason in ("length", "content_filter") else "stop"
    usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
    return ChatResult(
        text=content,
        finish_reason=finish,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        model=str(data.get("model") or option.model or option.endpoint_name or ""),
    )


def _parse_tgi(data: dict[str, Any], option: LlmOption) -> ChatResult:
    text = data["generated_text"]
    if not isinstance(text, str):
        raise ProviderError(ErrorClass.MALFORMED, "SageMaker generated_text is not text")
    details = data["details"] if isinstance(data.get("details"), dict) else {}
    return ChatResult(
        text=text,
        finish_reason=_TGI_FINISH.get(str(details.get("finish_reason")), "stop"),
        prompt_tokens=0,
        completion_tokens=_count(details.get("generated_tokens")),
        model=option.model or option.endpoint_name or "",
    )


def parse_body(raw: bytes, option: LlmOption) -> ChatResult:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProviderError(ErrorClass.MALFORMED, "SageMaker response is not JSON") from exc
    if isinstance(data, list) and len(data) >= 1 and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict) and "choices" in data:
        return _parse_openai(data, option)
    if isinstance(data, dict) and "generated_text" in data:
        return _parse_tgi(data, option)
    raise ProviderError(ErrorClass.MALFORMED, "SageMaker response is neither OpenAI chat nor TGI shape")


class SageMakerEndpointProvider:
    """InvokeEndpoint with an OpenAI messages body; `client_factory(region)` replaces cached clients."""

    def __init__(self, client_factory: Callable[[str | None], Any] | None = None) -> None:
        self._client_factory = client_factory

    def _client(self, region: str | None, timeout_s: float) -> Any:
        if self._client_factory is not None:
            return self._client_factory(region)
        return cached_client("sagemaker-runtime", region, timeout_s)

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        if not option.endpoint_name:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"option {option.id} has no endpoint_name")
        kwargs: dict[str, Any] = {
            "EndpointName": option.endpoint_name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(build_body(option, request)).encode("utf-8"),
        }
        if option.inference_component:
            kwargs["InferenceComponentName"] = option.inference_component

        from botocore.exceptions import ClientError

        try:
            client = self._client(option.region, timeout_s)
            response = client.invoke_endpoint(**kwargs)
            body = response["Body"]
            raw = body.read() if hasattr(body, "read") else body
        except ClientError as exc:
            raise _classify_client_error(exc) from exc
        except (KeyError, TypeError) as exc:
            raise ProviderError(ErrorClass.MALFORMED, "SageMaker response has no Body") from exc
        except Exception as exc:
            mapped = classify_botocore_transport_error(exc, "SageMaker")
            if mapped is None:
                raise ProviderError(
                    ErrorClass.UNAVAILABLE, f"SageMaker call failed: {type(exc).__name__}"
                ) from exc
            raise mapped from exc
        if not isinstance(raw, bytes | bytearray):
            raise ProviderError(ErrorClass.MALFORMED, "SageMaker response body is not bytes")
        return parse_body(bytes(raw), option)
