"""Any OpenAI-compatible endpoint (`{base_url}/chat/completions`, `{base_url}/embeddings`), over urllib.

The API key lives in Secrets Manager (`option.secret_arn`); its `SecretString` is either the raw key
or JSON with an `api_key` field. Keys are cached in memory for five minutes and never logged. An
option without `secret_arn` is called without an `Authorization` header (self-hosted servers).

Chat requests go out as the client sent them (`ChatRequest.to_dict`): messages with content parts,
assistant `tool_calls` and `tool` messages, `tools`, `tool_choice`, `parallel_tool_calls` and
`response_format`, plus `model = option.model` and the option's `params` defaults under the
client's values (the output limit goes out as `max_completion_tokens` when
`params.max_tokens_key` says so, as OpenAI's reasoning models require). One Switchboard-only
bit is removed: the `cache_control` prompt-cache hint on text parts. OpenAI caches prompts on
its own and has no such field, and servers that validate strictly refuse it (pydantic
`extra="forbid"` models answer "Extra inputs are not permitted"); an option whose server honours
the hint (OpenRouter, LiteLLM in front of Anthropic) keeps it with `params.forward_cache_hints: true`.

Answers: `choices[0].message.content` (null is fine, e.g. when the model only called tools) and
`message.tool_calls` become `ChatResult.text` and `tool_calls`; `finish_reason` `tool_calls` (and
the legacy `function_call`) is kept, and an answer that holds tool calls reports `tool_calls` even
when the server said `stop` (OpenAI does so for a named `tool_choice`). Usage details:
`prompt_tokens_details.cached_tokens` and `completion_tokens_details.reasoning_tokens`.

A tool call is `malformed` when it is not a function call, has no function name, repeats an id,
or carries arguments that are not a JSON object (arguments sent as an object, as some TGI versions
do, are re-encoded as text; missing or empty arguments are `{}`; a missing id gets a fresh
`call_…` one). Whether the answer fits the request (only offered tools, `tool_choice` obeyed, a
forced call present, JSON that matches the schema) is judged once for every provider by the
invoke step (`switchboard.answers`), not here.

Streaming (`stream`): the same body plus `"stream": true` and `stream_options.include_usage`
(left out with `params.stream_usage: false`), `Accept: text/event-stream`, over http.client so
each read can take the socket timeout left until the nearest deadline; the SSE is read by
`streaming.openai_stream_deltas` (error events, cut streams, tool-call pieces: see there). An HTTP
error before the stream maps as below; a server that answers the streamed request with a whole
`application/json` completion is streamed as one delta and the finish.

Embeddings: `POST {base_url}/embeddings` with `input` as a list (texts or token arrays), `model`,
`encoding_format: "float"` always (the gateway base64-encodes for its own clients) and `dimensions`
from the request or `option.params["dimensions"]`; `data[i].embedding` in `index` order (base64
answers are decoded too), `usage.prompt_tokens`. Vectors of another length than the `dimensions`
asked for (by the request or `params.dimensions`) are `malformed`: the server was sent the field
and ignored it.

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
| 4xx saying a feature the request uses is not supported (see `unsupported_feature`) | unsupported |
| other 4xx                                                         | bad_request      |
| 2xx that is not JSON, has no `choices[0].message`, or malformed tool calls / vectors | malformed |
| Secrets Manager failure, unreadable secret                        | unavailable      |
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import http.client
import json
import math
import os
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from switchboard.errors import ErrorClass, ProviderError
from switchboard.http_pool import ConnectionPool, PoolKey, is_stale_failure, no_delay
from switchboard.options.model import LlmOption
from switchboard.providers.base import (
    FEATURE_IMAGES,
    FEATURE_JSON_OBJECT,
    FEATURE_JSON_SCHEMA,
    FEATURE_TOOLS,
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    StreamDeadlines,
    StreamDelta,
    ToolCall,
    merged_params,
)

if TYPE_CHECKING:
    from switchboard.providers.streaming import StreamClock

SECRET_TTL_S = 300.0
_MAX_ERROR_TEXT = 300
_MAX_ERROR_BODY_BYTES = 64 * 1024

FORWARD_CACHE_HINTS_PARAM = "forward_cache_hints"
"""`params.forward_cache_hints: true` keeps the `cache_control` hints on text parts."""
STREAM_USAGE_PARAM = "stream_usage"
"""`params.stream_usage: false` leaves out `stream_options.include_usage` (a server that refuses the
field; the stream then reports no usage)."""
MAX_TOKENS_KEY_PARAM = "max_tokens_key"
"""`params.max_tokens_key: "max_completion_tokens"` sends the limit under that name: OpenAI's
reasoning models refuse `max_tokens` ("Use 'max_completion_tokens' instead")."""
DIMENSIONS_PARAM = "dimensions"
"""`params.dimensions`: the embedding size to ask for when the client does not say."""

# What an embeddings request may need beyond texts (the chat features are `base.FEATURE_*`).
EMBEDDING_DIMENSIONS = "dimensions"
EMBEDDING_TOKEN_INPUT = "token_input"  # noqa: S105 - a feature name, not a secret

_CONTEXT_OVERFLOW = re.compile(
    r"context[ _-]?(length|window)|maximum context|too many (input |prompt )?tokens|"
    r"(input|prompt)( is)? too long|input too long|too long for|"
    r"(input|prompt) tokens? (count )?exceeds?|exceeds? the (maximum )?(context|input)|"
    r"inputs`? tokens \+|must have less than \d+ (input )?tokens|(prompt|input) length",
    re.IGNORECASE,
)
_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation", "content_filtered"})

# An error is about a missing feature only when it says "not supported" (in one of the ways
# servers say it) AND names a feature the request actually uses: a 400 that merely mentions
# tools (a bad tool_call_id, say) stays `bad_request`.
_NOT_SUPPORTED = re.compile(
    r"not (be )?supported|unsupported|(does|do|did)( not|n't) support|not a multi-?modal|"
    r"only supported (by|for|with|on)|not enabled|is disabled|requires? --|unknown variant|"
    r"not implemented|at most 0 ",
    re.IGNORECASE,
)
_FEATURE_WORDS: dict[str, re.Pattern[str]] = {
    FEATURE_TOOLS: re.compile(
        r"\btools?\b|tool[ _-]?choice|tool[ _-]?calls?|tool[ _-]call[ _-]parser|function[ _-]?call|"
        r"\bfunctions\b|grammar",
        re.IGNORECASE,
    ),
    FEATURE_IMAGES: re.compile(r"image|vision|multi-?modal", re.IGNORECASE),
    FEATURE_JSON_SCHEMA: re.compile(
        r"response_format|json[ _-]?schema|structured output|guided|grammar", re.IGNORECASE
    ),
    FEATURE_JSON_OBJECT: re.compile(
        r"response_format|json[ _-]?object|json mode|structured output|guided|grammar", re.IGNORECASE
    ),
    EMBEDDING_DIMENSIONS: re.compile(r"dimension", re.IGNORECASE),
    EMBEDDING_TOKEN_INPUT: re.compile(
        r"token[ _-]?(ids|arrays?|lists?)|input[ _-]ids|prompt_token_ids|list of (integers|ints|tokens)|"
        r"tokens? as input|\binput\b",
        re.IGNORECASE,
    ),
}


def mentions_context_overflow(text: str) -> bool:
    """True when a provider error message says the prompt does not fit the model's context window.

    Shared by the Bedrock and SageMaker adapters (this module imports only the standard library).
    """
    return bool(_CONTEXT_OVERFLOW.search(text or ""))


def unsupported_feature(text: str, needs: Iterable[str]) -> str | None:
    """The feature of `needs` that an error text says the server or model does not support.

    Examples it recognises: vLLM's `"auto" tool choice requires --enable-auto-tool-choice and
    --tool-call-parser to be set`, OpenAI's `image_url is only supported by certain models` and
    `'response_format' of type 'json_schema' is not supported with this model`, `This model does
    not support specifying dimensions`, TGI's `unknown variant` for a response format it lacks.
    """
    if not text or not _NOT_SUPPORTED.search(text):
        return None
    for feature in sorted(needs):
        words = _FEATURE_WORDS.get(feature)
        if words is not None and words.search(text):
            return feature
    return None


def short(text: str) -> str:
    """Trim a provider's error text so it can travel in a ProviderError without bloating state."""
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


# --- the OpenAI wire format (shared with the SageMaker adapter) ---------------------------------


def strip_cache_hints(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped messages without the `cache_control` hints on their content parts."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            message["content"] = [
                {key: value for key, value in part.items() if key != "cache_control"} for part in content
            ]
    return messages


def chat_body(option: LlmOption, request: ChatRequest, *, model: str | None) -> dict[str, Any]:
    """The chat-completions body: the client's request, the option's model and params defaults."""
    wire = request.to_dict()
    body: dict[str, Any] = {}
    if model:
        body["model"] = model
    messages: list[dict[str, Any]] = wire["messages"]
    body["messages"] = (
        messages if option.params.get(FORWARD_CACHE_HINTS_PARAM) is True else strip_cache_hints(messages)
    )
    body.update(merged_params(option, request))
    if "max_tokens" in body and option.params.get(MAX_TOKENS_KEY_PARAM) == "max_completion_tokens":
        body["max_completion_tokens"] = body.pop("max_tokens")
    if request.user:
        body["user"] = request.user
    for key in ("tools", "tool_choice", "parallel_tool_calls", "response_format"):
        if key in wire:
            body[key] = wire[key]
    return body


def _message_text(content: Any, what: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    raise ProviderError(ErrorClass.MALFORMED, f"{what}: choices[0].message.content is neither text nor parts")


def _arguments_text(value: Any, what: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "{}"
    if isinstance(value, dict):  # TGI (some versions) sends the arguments as an object
        return json.dumps(value, ensure_ascii=False)
    if not isinstance(value, str):
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: tool call arguments are neither text nor object")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: tool call arguments are not JSON") from exc
    if not isinstance(parsed, dict):
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: tool call arguments are not a JSON object")
    return value


def parse_tool_calls(message: Mapping[str, Any], what: str) -> tuple[ToolCall, ...]:
    """`message.tool_calls` (or the legacy `function_call`) as `ToolCall`s; anything off is malformed."""
    raw = message.get("tool_calls")
    if raw is None and isinstance(message.get("function_call"), dict):
        raw = [{"type": "function", "function": message["function_call"]}]
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: tool_calls is not a list")
    calls: list[ToolCall] = []
    for item in raw:
        if not isinstance(item, dict) or item.get("type", "function") != "function":
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: a tool call is not a function call")
        function = item.get("function")
        if not isinstance(function, dict):
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: a tool call has no function")
        name = function.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: a tool call has no function name")
        call_id = item.get("id")
        if not isinstance(call_id, str) or not call_id.strip():
            call_id = f"call_{os.urandom(12).hex()}"  # clients need one to answer the call
        calls.append(
            ToolCall(id=call_id, name=name, arguments=_arguments_text(function.get("arguments"), what))
        )
    if len({call.id for call in calls}) != len(calls):
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: two tool calls share an id")
    return tuple(calls)


def _finish_reason(value: Any, has_tool_calls: bool) -> FinishReason:
    if value == "length":
        return "length"
    if value == "content_filter":
        return "content_filter"
    if has_tool_calls:
        return "tool_calls"
    return "stop"


def token_count(value: Any) -> int | None:
    """A usage count: a finite non-negative number (JSON may say 1e400 or NaN), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return int(value)
    return None


def _token_count(usage: Mapping[str, Any], key: str) -> int:
    return token_count(usage.get(key)) or 0


def _token_detail(usage: Mapping[str, Any], section: str, key: str) -> int | None:
    details = usage.get(section)
    return token_count(details.get(key)) if isinstance(details, dict) else None


def _model_name(data: Mapping[str, Any], fallback: str) -> str:
    model = data.get("model")
    return model if isinstance(model, str) and model else fallback


def parse_chat_completion(
    data: Any,
    *,
    fallback_model: str,
    what: str = "response",
    allow_text_choice: bool = False,
) -> ChatResult:
    """An OpenAI chat-completion object as a `ChatResult` (see the module docstring)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError(ErrorClass.MALFORMED, f"{what} has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        if allow_text_choice and isinstance(choice.get("text"), str):  # a completions-style choice
            message = {"content": choice["text"]}
        else:
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: choices[0] has no message")
    tool_calls = parse_tool_calls(message, what)
    if "content" not in message and not tool_calls:
        raise ProviderError(
            ErrorClass.MALFORMED, f"{what}: choices[0].message has neither content nor tool calls"
        )
    usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
    return ChatResult(
        text=_message_text(message.get("content"), what),
        finish_reason=_finish_reason(choice.get("finish_reason"), bool(tool_calls)),
        prompt_tokens=_token_count(usage, "prompt_tokens"),
        completion_tokens=_token_count(usage, "completion_tokens"),
        model=_model_name(data, fallback_model),
        tool_calls=tool_calls,
        cached_tokens=_token_detail(usage, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_token_detail(usage, "completion_tokens_details", "reasoning_tokens"),
    )


def wanted_dimensions(option: LlmOption, request: EmbeddingRequest) -> int | None:
    """The request's `dimensions`, else the option's `params.dimensions`, else None."""
    if request.dimensions is not None:
        return request.dimensions
    value = option.params.get(DIMENSIONS_PARAM)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def embedding_needs(request: EmbeddingRequest, dimensions: int | None) -> frozenset[str]:
    needs: set[str] = set()
    if dimensions is not None:
        needs.add(EMBEDDING_DIMENSIONS)
    if request.texts() is None:
        needs.add(EMBEDDING_TOKEN_INPUT)
    return frozenset(needs)


def embeddings_body(
    request: EmbeddingRequest, *, model: str | None, dimensions: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if model:
        body["model"] = model
    body["input"] = [item if isinstance(item, str) else list(item) for item in request.inputs]
    body["encoding_format"] = "float"
    if dimensions is not None:
        body["dimensions"] = dimensions
    if request.user:
        body["user"] = request.user
    return body


def parse_vector(value: Any, what: str) -> list[float]:
    """A list of finite numbers (or OpenAI's base64 float32 form) as floats; else `malformed`."""
    if isinstance(value, str):  # base64 of little-endian float32, when a server ignores encoding_format
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: an embedding is not base64") from exc
        if not raw or len(raw) % 4:
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: a base64 embedding is not float32s")
        value = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not isinstance(value, list) or not value:
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: an embedding is not a non-empty list")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in value):
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: an embedding holds something other than numbers")
    return [float(x) for x in value]


def checked_vectors(
    vectors: list[list[float]],
    *,
    count: int,
    dimensions: int | None,
    what: str,
    other_size: ErrorClass = ErrorClass.MALFORMED,
) -> list[list[float]]:
    """One vector per input, all of one length, and of the length asked for (else `other_size`:
    `malformed` where the server was sent `dimensions` and ignored it, `unsupported` where the
    protocol has no such field)."""
    if len(vectors) != count:
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: {len(vectors)} embeddings for {count} inputs")
    lengths = {len(vector) for vector in vectors}
    if len(lengths) > 1:
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: embeddings of different lengths")
    if dimensions is not None and lengths and lengths != {dimensions}:
        raise ProviderError(
            other_size, f"{what}: asked for {dimensions} dimensions, the model answered {lengths.pop()}"
        )
    return vectors


def parse_openai_embeddings(
    data: Any,
    *,
    count: int,
    dimensions: int | None,
    fallback_model: str,
    what: str = "response",
    other_size: ErrorClass = ErrorClass.MALFORMED,
) -> EmbeddingResult:
    """An OpenAI `list` of `embedding` objects, in `index` order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ProviderError(ErrorClass.MALFORMED, f"{what} has no data list")
    by_index: dict[int, list[float]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict) or "embedding" not in item:
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: data[{position}] has no embedding")
        index = item.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or index in by_index:
            raise ProviderError(ErrorClass.MALFORMED, f"{what}: data[{position}] has a bad or repeated index")
        by_index[index] = parse_vector(item["embedding"], what)
    if sorted(by_index) != list(range(len(by_index))):
        raise ProviderError(ErrorClass.MALFORMED, f"{what}: embedding indexes are not 0..n-1")
    vectors = [by_index[i] for i in range(len(by_index))]
    usage = data["usage"] if isinstance(data.get("usage"), dict) else {}
    return EmbeddingResult(
        vectors=checked_vectors(
            vectors, count=count, dimensions=dimensions, what=what, other_size=other_size
        ),
        prompt_tokens=_token_count(usage, "prompt_tokens"),
        model=_model_name(data, fallback_model),
    )


# --- HTTP ------------------------------------------------------------------------------------------


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


def _error_details(body: bytes) -> tuple[str, str, str]:
    """(code-ish, message, param) from an OpenAI-style error body; tolerant of anything else."""
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return "", body.decode("utf-8", errors="replace"), ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = " ".join(str(error.get(k) or "") for k in ("code", "type")).strip()
        return code, str(error.get("message") or ""), str(error.get("param") or "")
    if isinstance(error, str):
        return "", error, ""
    if isinstance(data, dict):
        message = data.get("message") or data.get("detail") or ""
        return str(data.get("code") or ""), message if isinstance(message, str) else json.dumps(message), ""
    return "", "", ""


def classify_http_error(
    status: int, body: bytes, retry_after: str | None, needs: Iterable[str] = ()
) -> ProviderError:
    code, message, param = _error_details(body)
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
    feature = unsupported_feature(f"{message} {param} {code}", needs)
    if feature is not None:
        return ProviderError(ErrorClass.UNSUPPORTED, f"{feature} not supported here: {detail}")
    return ProviderError(ErrorClass.BAD_REQUEST, detail)


def _is_timeout(reason: object) -> bool:
    return isinstance(reason, TimeoutError) or "timed out" in str(reason).lower()


class OpenAICompatibleProvider:
    """Calls `{option.base_url}/chat/completions` and `/embeddings` with `model=option.model`."""

    def __init__(
        self,
        secret_reader: Callable[[str], str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        pool: ConnectionPool | None = None,
    ) -> None:
        self._secret_reader = secret_reader or _read_secret_from_secrets_manager
        self._clock = clock
        self._pool = pool if pool is not None else ConnectionPool()
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
        base_url, model = self._target(option)
        body = chat_body(option, request, model=model)
        raw = self._post(option, base_url + "/chat/completions", body, timeout_s, request.needs())
        return parse_chat_completion(_json(raw), fallback_model=model)

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        """`complete`'s request with `"stream": true`, read as it arrives (see `streaming`)."""
        from switchboard.providers import streaming  # lazy: whole answers never load it

        clock = streaming.StreamClock(deadlines)
        base_url, model = self._target(option)
        body = stream_body(option, chat_body(option, request, model=model))
        needs = request.needs()
        headers = self._headers(option, "text/event-stream")
        key, connection, response, sock = _open_stream(
            base_url + "/chat/completions", body, headers, clock, needs, self._pool
        )
        ended = False  # the body was read as far as the stream needed, without an error
        try:
            if (response.getheader("Content-Type") or "").startswith("application/json"):
                # The server ignored `stream` and answered whole: one delta, then the finish.
                raw = b"".join(_read_chunks(response, sock, clock))
                ended = True
                yield from streaming.result_deltas(parse_chat_completion(_json(raw), fallback_model=model))
                return
            yield from streaming.openai_stream_deltas(
                _read_chunks(response, sock, clock), clock, what="stream", needs=needs
            )
            ended = True
        finally:
            # Reused only after a stream that ended well and was read to its end; a failed,
            # timed-out or abandoned stream's connection is closed (see `http_pool`).
            if ended and _read_to_end(response, sock):
                self._pool.give_back(key, connection)
            else:
                response.close()
                connection.close()

    def embed(self, option: LlmOption, request: EmbeddingRequest, timeout_s: float) -> EmbeddingResult:
        base_url, model = self._target(option)
        dimensions = wanted_dimensions(option, request)
        body = embeddings_body(request, model=model, dimensions=dimensions)
        needs = embedding_needs(request, dimensions)
        raw = self._post(option, base_url + "/embeddings", body, timeout_s, needs)
        return parse_openai_embeddings(
            _json(raw), count=len(request.inputs), dimensions=dimensions, fallback_model=model
        )

    @staticmethod
    def _target(option: LlmOption) -> tuple[str, str]:
        if not option.base_url or not option.model:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"option {option.id} has no base_url/model")
        return option.base_url.rstrip("/"), option.model

    def _headers(self, option: LlmOption, accept: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": accept}
        if option.secret_arn:
            headers["Authorization"] = f"Bearer {self._api_key(option.secret_arn)}"
        return headers

    def _post(
        self, option: LlmOption, url: str, body: dict[str, Any], timeout_s: float, needs: Iterable[str]
    ) -> bytes:
        headers = self._headers(option, "application/json")
        http_request = urllib.request.Request(  # noqa: S310 - base_url is validated to http(s)
            url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        return self._send(http_request, timeout_s, needs)

    @staticmethod
    def _send(http_request: urllib.request.Request, timeout_s: float, needs: Iterable[str]) -> bytes:
        try:
            with urllib.request.urlopen(http_request, timeout=timeout_s) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            try:
                error_body = exc.read(_MAX_ERROR_BODY_BYTES) if exc.fp is not None else b""
            except (OSError, http.client.HTTPException):
                error_body = b""
            raise classify_http_error(exc.code, error_body, exc.headers.get("Retry-After"), needs) from exc
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


def stream_body(option: LlmOption, body: dict[str, Any]) -> dict[str, Any]:
    """A chat body asking to stream, with the usage chunk unless `params.stream_usage` is false."""
    body["stream"] = True
    if option.params.get(STREAM_USAGE_PARAM, True) is not False:
        body["stream_options"] = {"include_usage": True}
    return body


_STREAM_READ_BYTES = 64 * 1024
_CONNECT_TIMEOUT_S = 3.0
_DRAIN_S = 0.05
_DRAIN_LIMIT_BYTES = 64 * 1024


def _open_stream(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    clock: StreamClock,
    needs: Iterable[str],
    pool: ConnectionPool,
) -> tuple[PoolKey, http.client.HTTPConnection, http.client.HTTPResponse, socket.socket]:
    """POST `body` and wait for the status line, within the stream's deadlines.

    http.client rather than urllib: the socket is needed to give every read its own timeout. The
    connection is an idle one from `pool` when there is one (see `http_pool`); when that reused
    connection turns out to have been closed by the server before any response byte, the request
    is sent once more on a fresh connection.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderError(ErrorClass.UNAVAILABLE, "base_url is not an http(s) URL")
    https = parts.scheme == "https"
    try:
        port = parts.port or (443 if https else 80)
    except ValueError as exc:  # a port out of range
        raise ProviderError(ErrorClass.UNAVAILABLE, "base_url has an invalid port") from exc
    key: PoolKey = (parts.scheme, parts.hostname, port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    payload = json.dumps(body).encode("utf-8")
    connection = pool.take(key)
    reused = connection is not None
    while True:
        if connection is None:
            connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
            connection = connection_class(
                parts.hostname, port, timeout=min(_CONNECT_TIMEOUT_S, clock.read_timeout())
            )
        try:
            if connection.sock is None:
                connection.connect()
                no_delay(connection)
            sock = connection.sock
            assert sock is not None  # connect() sets it or raises
            sock.settimeout(clock.read_timeout())
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
        except TimeoutError as exc:
            connection.close()
            if clock.time_left() <= 0:
                raise clock.expired() from exc
            raise ProviderError(
                ErrorClass.TIMEOUT, f"connect timed out after {_CONNECT_TIMEOUT_S:.0f}s"
            ) from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            connection.close()
            if reused and is_stale_failure(exc):
                connection, reused = None, False  # the server closed it while idle: once, afresh
                continue
            raise ProviderError(
                ErrorClass.UNAVAILABLE, f"connection failed: {short(str(exc)) or type(exc).__name__}"
            ) from exc
        except ProviderError:
            connection.close()
            raise
        break
    if response.status != 200:
        try:
            error_body = response.read(_MAX_ERROR_BODY_BYTES)
        except (OSError, http.client.HTTPException):
            error_body = b""
        finally:
            response.close()
            connection.close()
        raise classify_http_error(response.status, error_body, response.getheader("Retry-After"), needs)
    return key, connection, response, sock


def _read_to_end(response: http.client.HTTPResponse, sock: socket.socket) -> bool:
    """True when `response` was (or, within a short wait, is now) read to its end: reusable.

    A stream is done for its reader at `[DONE]`; the chunked terminator normally follows in the
    same write. What is left is read for at most `_DRAIN_S` and `_DRAIN_LIMIT_BYTES`: a server that
    keeps the body open after `[DONE]` (or a finish it never followed with `[DONE]`) costs its
    connection, not the stream's end.
    """
    if response.will_close:
        return False
    drained = 0
    try:
        while not response.isclosed():
            if sock.fileno() == -1:
                return False
            sock.settimeout(_DRAIN_S)
            data = response.read1(_STREAM_READ_BYTES)
            drained += len(data)
            if not data or drained > _DRAIN_LIMIT_BYTES:
                break
    except (OSError, http.client.HTTPException, ValueError):
        return False
    return response.isclosed() and sock.fileno() != -1


def _read_chunks(
    response: http.client.HTTPResponse, sock: socket.socket, clock: StreamClock
) -> Iterator[bytes]:
    """The body as it arrives; each read may block only until the nearest deadline."""
    while True:
        if sock.fileno() != -1:
            # Python 3.13's http.client closes the socket once a sized body is read whole (a server
            # that answered a stream request with one JSON document): what is left is buffered.
            sock.settimeout(clock.read_timeout())
        try:
            data = response.read1(_STREAM_READ_BYTES)
        except TimeoutError as exc:
            raise clock.expired() from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:  # reset, IncompleteRead, closed
            raise ProviderError(ErrorClass.UNAVAILABLE, f"stream broken: {type(exc).__name__}") from exc
        if not data:
            return
        yield data


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise ProviderError(ErrorClass.MALFORMED, "response is not JSON") from exc
