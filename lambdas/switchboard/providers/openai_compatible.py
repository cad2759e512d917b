"""Any OpenAI-compatible `POST {base_url}/chat/completions` endpoint, over the stdlib's urllib.

The API key lives in Secrets Manager (`option.secret_arn`); its `SecretString` is either the raw key
or JSON with an `api_key` field. Keys are cached in memory for five minutes and never logged. An
option without `secret_arn` is called without an `Authorization` header (self-hosted servers).

Error mapping (HTTP status / condition -> `ErrorClass`):

| condition                                                         | class            |
|-------------------------------------------------------------------|------------------|
| 429                                                               | throttled (+ Retry-After) |
| 408, 504, socket/read timeout                                     | timeout          |
| other 5xx, connection refused/reset, DNS, TLS, truncated response | unavailable      |
| 401, 403 (our key is wrong or lacks access, not the caller's fault) | unavailable    |
| 404 (our base_url or model name is wrong: the option is misconfigured) | unavailable   |
| 4xx with code `context_length_exceeded` or a context-length message | context_too_long |
| 4xx with code `content_filter` / `content_policy_violation`       | content_filtered |
| other 4xx                                                         | bad_request      |
| 2xx that is not JSON, or has no `choices[0].message`              | malformed        |
| Secrets Manager failure, unreadable secret                        | unavailable      |
"""

from __future__ import annotations

import email.utils
import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatRequest, ChatResult, FinishReason, merged_params

SECRET_TTL_S = 300.0
_MAX_ERROR_TEXT = 300
_MAX_ERROR_BODY_BYTES = 64 * 1024

_CONTEXT_OVERFLOW = re.compile(
    r"context[ _-]?(length|window)|maximum context|too many (input |prompt )?tokens|"
    r"(input|prompt)( is)? too long|input too long|too long for|"
    r"(input|prompt) tokens? (count )?exceeds?|exceeds? the (maximum )?(context|input)|"
    r"inputs`? tokens \+|must have less than \d+ (input )?tokens|(prompt|input) length",
    re.IGNORECASE,
)
_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "content_filtered"})


def mentions_context_overflow(text: str) -> bool:
    """True when a provider error message says the prompt does not fit the model's context window.

    Shared by the Bedrock and SageMaker adapters (this module imports only the standard library).
    """
    return bool(_CONTEXT_OVERFLOW.search(text or ""))


def short(text: str) -> str:
    """Trim a provider's error text so it can travel in a ProviderError without bloating state."""
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


def _read_secret_from_secrets_manager(secret_arn: str) -> str:
    from switchboard import aws  # lazy: the mock path and cold starts of other providers never pay for it

    region = secret_arn.split(":")[3] or None
    client = aws.client("secretsmanager", region_name=region)
    response = client.get_secret_value(SecretId=secret_arn)
    secret = response.get("SecretString")
    if not isinstance(secret, str):
        raise ValueError("secret has no SecretString")
    return secret


def _api_key_from_secret(secret: str) -> str:
    text = secret.strip()
    if text.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError("secret looks like JSON but does not parse") from exc
        key = data.get("api_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise ValueError("secret JSON has no non-empty `api_key`")
        return key.strip()
    if not text:
        raise ValueError("secret is empty")
    return text


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_details(body: bytes) -> tuple[str, str]:
    """(code-ish, message) from an OpenAI-style error body; tolerant of anything else."""
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return "", body.decode("utf-8", errors="replace")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = " ".join(str(error.get(k) or "") for k in ("code", "type")).strip()
        return code, str(error.get("message") or "")
    if isinstance(error, str):
        return "", error
    if isinstance(data, dict):
        return str(data.get("code") or ""), str(data.get("message") or data.get("detail") or "")
    return "", ""


def _classify_http_error(status: int, body: bytes, retry_after: str | None) -> ProviderError:
    code, message = _error_details(body)
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {short(message)}" if message else "")
    if status == 429:
        return ProviderError(ErrorClass.THROTTLED, detail, retry_after_s=_retry_after_seconds(retry_after))
    if status in (408, 504):
        return ProviderError(ErrorClass.TIMEOUT, detail)
    if status >= 500:
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    if status in (401, 403, 404):
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    codes = set(code.lower().split())
    if "context_length_exceeded" in codes or mentions_context_overflow(message):
        return ProviderError(ErrorClass.CONTEXT_TOO_LONG, detail)
    if codes & _CONTENT_FILTER_CODES:
        return ProviderError(ErrorClass.CONTENT_FILTERED, detail)
    return ProviderError(ErrorClass.BAD_REQUEST, detail)


def _is_timeout(reason: object) -> bool:
    return isinstance(reason, TimeoutError) or "timed out" in str(reason).lower()


def _message_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    raise ProviderError(ErrorClass.MALFORMED, "choices[0].message.content is neither text nor parts")


def _finish_reason(value: Any) -> FinishReason:
    if value == "length":
        return "length"
    if value == "content_filter":
        return "content_filter"
    return "stop"


def _token_count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


class OpenAICompatibleProvider:
    """Calls `{option.base_url}/chat/completions` with `model=option.model` and the merged params."""

    def __init__(
        self,
        secret_reader: Callable[[str], str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_reader = secret_reader or _read_secret_from_secrets_manager
        self._clock = clock
        self._keys: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _api_key(self, secret_arn: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._keys.get(secret_arn)
        if cached is not None and now - cached[1] < SECRET_TTL_S:
            return cached[0]
        try:
            key = _api_key_from_secret(self._secret_reader(secret_arn))
        except ProviderError:
            raise
        except Exception as exc:  # botocore ClientError, no credentials, bad secret format...
            raise ProviderError(
                ErrorClass.UNAVAILABLE, f"cannot read the API key secret: {type(exc).__name__}"
            ) from exc
        with self._lock:
            self._keys[secret_arn] = (key, now)
        return key

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        if not option.base_url or not option.model:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"option {option.id} has no base_url/model")
        body: dict[str, Any] = {
            "model": option.model,
            "messages": [m.to_openai() for m in request.messages],
            **merged_params(option, request),
        }
        if request.user:
            body["user"] = request.user
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if option.secret_arn:
            headers["Authorization"] = f"Bearer {self._api_key(option.secret_arn)}"
        url = option.base_url.rstrip("/") + "/chat/completions"
        http_request = urllib.request.Request(  # noqa: S310 - base_url is validated to http(s)
            url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        raw = self._send(http_request, timeout_s)
        return self._parse(raw, option)

    @staticmethod
    def _send(http_request: urllib.request.Request, timeout_s: float) -> bytes:
        try:
            with urllib.request.urlopen(http_request, timeout=timeout_s) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error_body = exc.read(_MAX_ERROR_BODY_BYTES) if exc.fp is not None else b""
            except (OSError, http.client.HTTPException):
                error_body = b""
            raise _classify_http_error(exc.code, error_body, exc.headers.get("Retry-After")) from exc
        except urllib.error.URLError as exc:
            if _is_timeout(exc.reason):
                raise ProviderError(ErrorClass.TIMEOUT, f"timed out after {timeout_s:.1f}s") from exc
            raise ProviderError(
                ErrorClass.UNAVAILABLE, f"connection failed: {short(str(exc.reason))}"
            ) from exc
        except TimeoutError as exc:
            raise ProviderError(ErrorClass.TIMEOUT, f"timed out after {timeout_s:.1f}s") from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"connection failed: {type(exc).__name__}") from exc

    @staticmethod
    def _parse(raw: bytes, option: LlmOption) -> ChatResult:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProviderError(ErrorClass.MALFORMED, "response is not JSON") from exc
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ProviderError(ErrorClass.MALFORMED, "response has no choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise ProviderError(ErrorClass.MALFORMED, "choices[0] has no message")
        usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
        return ChatResult(
            text=_message_text(message.get("content")),
            finish_reason=_finish_reason(choices[0].get("finish_reason")),
            prompt_tokens=_token_count(usage, "prompt_tokens"),
            completion_tokens=_token_count(usage, "completion_tokens"),
            model=str(data.get("model") or option.model or ""),
        )
