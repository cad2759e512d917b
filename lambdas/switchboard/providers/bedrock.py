"""Amazon Bedrock: chat through the Converse API, embeddings through InvokeModel.

`modelId` is `option.model` as is: a foundation model id (`amazon.nova-lite-v1:0`) or a cross-region
inference profile id (`us.`/`eu.`/`apac.`/`global.` + model id). Both operations are authorized as
`bedrock:InvokeModel`; streaming (`stream`, ConverseStream) as
`bedrock:InvokeModelWithResponseStream`. Embeddings live in `switchboard.providers.bedrock_embeddings`
(Titan Text Embeddings V2, Cohere Embed v3/v4); `BedrockConverseProvider.embed` hands over to it.

The SDK never retries (`total_max_attempts=1`): retries, backoff and fallbacks belong to the workflow.

Chat request mapping (OpenAI-shaped `ChatRequest` -> Converse):

| OpenAI                             | Converse                                                 |
|------------------------------------|----------------------------------------------------------|
| `system` message (text parts)      | `system: [{text}]`, one block per non-blank part          |
| `user` text / `image_url` data URL | user `{text}` / `{image: {format, source: {bytes}}}`      |
| `assistant` content + `tool_calls` | assistant `{text}`, then `{toolUse: {toolUseId, name,     |
|                                    | input}}` (input = the parsed JSON arguments)              |
| `tool` message                     | user `{toolResult: {toolUseId, content: [{text}]}}`;      |
|                                    | consecutive results share one user turn                   |
| part `cache_control` (`cache`)     | `{cachePoint: {type: default}}` right after that part     |
|                                    | (system parts too)                                        |
| `tools[].function`                 | `toolConfig.tools[].toolSpec {name, description,          |
|                                    | inputSchema.json}`                                        |
| `tool_choice` auto                 | no `toolChoice`: auto is Converse's default, and models   |
|                                    | without tool choice refuse the field                      |
| `tool_choice` required / named     | `toolChoice` `any` / `tool {name}`                        |
| `tool_choice: none`                | no `toolConfig` (see below)                               |
| `response_format`                  | `outputConfig.textFormat` or a forced answer tool (below) |
| max_tokens, temperature, top_p,    | `inferenceConfig` maxTokens, temperature, topP,           |
| stop                               | stopSequences                                             |

Converse wants alternating user/assistant turns that start with the user: consecutive same-role
messages are merged (adjacent texts joined by a blank line, other blocks appended; tool results are
user content, so a user message after tool results joins their turn), blank messages are dropped,
and a placeholder user turn (`"."`) is inserted when the conversation would start with the
assistant. Converse refuses blank text, so blank parts are left out. Tool-call ids that do not fit
Converse's `toolUseId` (`[a-zA-Z0-9_.:-]{1,64}`; OpenAI allows any string) are replaced by a
stable digest, the same in the `toolUse` and its `toolResult`. An empty tool result is sent as
`"(empty)"` (Converse refuses blank text). An image's `detail` has no Converse counterpart and is
not sent.

`tool_choice: none`. Converse has no "none"; without tool history the tools are simply not sent.
But Converse refuses `toolUse`/`toolResult` blocks unless `toolConfig` is present, so when the
conversation holds tool history the tools are still sent (with no `toolChoice`, i.e. auto; when the
client sent no tools at all, one permissive spec per tool name the history used), and `none` is
honoured on the way back: any tool call the model makes anyway is dropped and its text is the
answer; an answer with no text left is `malformed` (the model did not answer as asked). The same
holds when the request carries tool history but offers no tools.

`parallel_tool_calls: false`: Converse has no such switch (only Anthropic's own request fields do),
so the answer keeps the model's first tool call only.

Structured outputs (`response_format`). Converse offers `outputConfig.textFormat` (JSON Schema,
constrained decoding, GA in 2026; botocore's model has it): a `json_schema` request uses it by
default, with the schema as JSON text and `additionalProperties: false` added to every object
schema that does not say (Bedrock requires it on every object; the result is a stricter schema, so
an answer that fits it fits the client's too). Not every model has it, and Bedrock compiles each new
schema once (the first call may be slow), so an option can choose the older, universal way with
`params.structured_output: "tool"`: a tool named after the schema whose `inputSchema` is the
schema, forced with `toolChoice.tool` (the API reference names Claude and Nova as the models that take
it; others refuse it, which is `unsupported`) (or offered beside the client's tools with `toolChoice.any`
when the model may call those first); the tool's input becomes the answer's `content` as JSON text
with finish `stop` (a schema that is not an object travels as the input's `value`, since a tool's
input is an object). `json_object` always takes the tool way with the permissive schema
`{"type": "object"}` (native output needs a closed schema, which would allow only `{}`). The
answer is validated against the schema by the invoke step, not here.

A tool's `parameters` without a root `type` get `"type": "object"` (OpenAI allows leaving it out;
the gateway checked it is an object schema). `strict` on a function tool is passed on as
`toolSpec.strict` only when the option says `params.strict_tools: true` (few models accept the
field; OpenAI's Agents SDK sets it by default).

Prompt caching. Each `cache_control` hint becomes a `cachePoint` after its part (the TTL hint is
not passed: Converse's default applies). A hint never changes the answer, so when Bedrock refuses
it ("You invoked an unsupported model or your request did not allow prompt caching", sent as
AccessDenied or ValidationException) the call is made once more without cache points, within the
same time budget; `params.prompt_caching: false` leaves them out from the start.

Option `params` read here: `max_tokens`, `temperature`, `top_p`, `stop` (defaults a request
overrides); `structured_output` (`native` | `tool`, default native); `prompt_caching` (default
true); `strict_tools` (default false); for embeddings `dimensions` and `input_type` (see
`bedrock_embeddings`). A value of the wrong kind means the option is misconfigured: `unavailable`,
like a model the account cannot reach (the workflow moves on; an operator fixes the option).

Response mapping: text blocks joined -> `text`; `toolUse` blocks -> `ToolCall(id=toolUseId, name,
arguments=json.dumps(input))` and finish `tool_calls`; usage `inputTokens + cacheReadInputTokens +
cacheWriteInputTokens` -> `prompt_tokens` (Converse's `inputTokens` counts only the uncached part;
OpenAI's `prompt_tokens` counts all), `cacheReadInputTokens` -> `cached_tokens`,
`cacheWriteInputTokens` -> `cache_write_tokens`. Stop reasons: end_turn/stop_sequence -> stop;
tool_use -> tool_calls (stop when no call is kept); max_tokens and model_context_window_exceeded ->
length; guardrail_intervened/content_filtered -> content_filter.

Streaming (`stream`): ConverseStream with the very request `complete` sends (`plan_converse`, the
same prompt-caching retry before the first event; native structured output is in ConverseStream's
model too); events mapped by `ConverseStreamReader` under the response rules above. Exception
events in the stream (`throttlingException`, `modelStreamErrorException`, `internalServerException`,
`serviceUnavailableException`, `validationException`) map like the Converse codes of the same name
below; a stream that ends before `messageStop` is `unavailable`. Deadlines: each read of the event
stream gets the socket timeout left until the nearest deadline (`streaming.StreamClock`).

Error mapping (Bedrock error code / condition -> `ErrorClass`):

- throttled: ThrottlingException, any HTTP 429, and ServiceQuotaExceededException (a token quota
  hit behaves like throttling for routing: the workflow backs off, then moves on).
- timeout: ModelTimeoutException, botocore read/connect timeouts.
- unavailable: ServiceUnavailableException, InternalServerException, ModelNotReadyException,
  ModelErrorException, other 5xx; EndpointConnectionError and other connection failures, missing
  credentials; AccessDeniedException and ResourceNotFoundException (the option is misconfigured:
  model access not granted, wrong id or region. The caller cannot fix that, so the workflow moves
  on and the circuit opens until an operator fixes the option).
- unsupported: a ValidationException saying the model cannot do what the request needs: tool use
  ("This model doesn't support tool use."), a tool choice ("This model doesn't support the
  toolConfig.toolChoice.any field"), images ("This model doesn't support the image content block
  that you provided"), structured output, tool results beside text in one turn.
- context_too_long: ValidationException whose message says the input does not fit.
- bad_request: any other ValidationException or 4xx, botocore parameter validation.
- malformed: stopReason `malformed_model_output`/`malformed_tool_use`, unexpected response shape,
  an answer with neither text nor tool calls.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    ContentPart,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    FunctionTool,
    ImagePart,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    ToolCall,
    ToolCallDelta,
    merged_params,
)
from switchboard.providers.openai_compatible import mentions_context_overflow, short

if TYPE_CHECKING:
    from switchboard.providers.streaming import StreamClock

LEADING_USER_PLACEHOLDER = "."
EMPTY_TOOL_RESULT = "(empty)"
CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}
PERMISSIVE_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}
JSON_OBJECT_TOOL_NAME = "json_object"
DEFAULT_SCHEMA_NAME = "response"

StructuredOutputMode = Literal["native", "tool"]

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
        "ModelStreamErrorException",
        "AccessDeniedException",
        "ResourceNotFoundException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
    }
)
_VALIDATION_CODES = frozenset({"ValidationException"})

# What Bedrock says when the model cannot do what the request needs (real messages quoted in the
# module docstring). Kept to features, so that a bad value (a temperature out of range) stays a
# bad_request.
_UNSUPPORTED_FEATURE = re.compile(
    r"(doesn't|does not|don't|do not) support (the )?("
    r"tool|toolConfig|toolChoice|image|outputConfig|textFormat|structured output|json ?schema|"
    r"system message|cachePoint"
    r")"
    r"|(tool use|tool calling|structured outputs?|images?) (is|are) not supported"
    r"|conversation blocks and tool result blocks cannot be provided in the same turn",
    re.IGNORECASE,
)
_CACHING_REFUSED = re.compile(r"did not allow prompt caching|doesn't support prompt caching", re.IGNORECASE)

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_MALFORMED_STOP_REASONS = frozenset({"malformed_model_output", "malformed_tool_use"})

_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_TOOL_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")

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


def mentions_unsupported_feature(message: str) -> bool:
    """True when a Bedrock error message says the model cannot do a feature the request uses."""
    return bool(_UNSUPPORTED_FEATURE.search(message or ""))


def refuses_prompt_caching(exc: Exception) -> bool:
    """Bedrock refused the request's cache points (the model has no prompt caching)."""
    _, message, _ = client_error_parts(exc)
    return bool(_CACHING_REFUSED.search(message))


def classify_client_error(exc: Exception) -> ProviderError:
    """A botocore ClientError from bedrock-runtime (Converse or InvokeModel) as a `ProviderError`."""
    return classify_bedrock_error(*client_error_parts(exc))


def classify_stream_exception(exc: Exception) -> ProviderError:
    """An exception event of a ConverseStream (`throttlingException`, `modelStreamErrorException`...).

    botocore names it by the event's member name (lower camel case) and gives no HTTP status: the
    same code in Converse's spelling decides, as for a failed Converse call.
    """
    code, message, status = client_error_parts(exc)
    return classify_bedrock_error(code[:1].upper() + code[1:], message, status)


def classify_bedrock_error(code: str, message: str, status: int) -> ProviderError:
    detail = f"Bedrock {code or status}: {short(message)}"
    # Known codes win over the HTTP status (ModelNotReadyException arrives as a 429).
    if code in _THROTTLED_CODES:
        return ProviderError(ErrorClass.THROTTLED, detail)
    if code in _TIMEOUT_CODES:
        return ProviderError(ErrorClass.TIMEOUT, detail)
    if code in _UNAVAILABLE_CODES:
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    if code in _VALIDATION_CODES:
        if mentions_unsupported_feature(message):
            return ProviderError(ErrorClass.UNSUPPORTED, detail)
        error_class = (
            ErrorClass.CONTEXT_TOO_LONG if mentions_context_overflow(message) else ErrorClass.BAD_REQUEST
        )
        return ProviderError(error_class, detail)
    return classify_status(status, message, detail)


def call_bedrock(call: Callable[[], Any]) -> Any:
    """Run one bedrock-runtime call, translating every failure into a classified `ProviderError`."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        raise classify_client_error(exc) from exc
    except ProviderError:
        raise
    except Exception as exc:
        mapped = classify_botocore_transport_error(exc, "Bedrock")
        if mapped is None:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"Bedrock call failed: {type(exc).__name__}") from exc
        raise mapped from exc


# --- request mapping ------------------------------------------------------------------------------


def converse_tool_use_id(call_id: str) -> str:
    """The id as Converse accepts it: as is when it fits, else a stable digest of it."""
    if _TOOL_USE_ID.fullmatch(call_id):
        return call_id
    return "sb_" + hashlib.sha256(call_id.encode("utf-8")).hexdigest()[:40]


def _image_block(part: ImagePart) -> dict[str, Any]:
    try:
        data = base64.b64decode(part.data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:  # the gateway checked it; a corrupt state is ours
        raise ProviderError(ErrorClass.BAD_REQUEST, "an image part is not valid base64") from exc
    return {"image": {"format": part.format, "source": {"bytes": data}}}


def _part_blocks(parts: Iterable[ContentPart], cache_points: bool) -> list[dict[str, Any]]:
    """Text and image blocks in order; a cache hint puts a cachePoint right after its part."""
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            blocks.append(_image_block(part))
            continue
        if part.text.strip():
            blocks.append({"text": part.text})
        if part.cache and cache_points and blocks and "cachePoint" not in blocks[-1]:
            blocks.append(dict(CACHE_POINT))
    return blocks


def _tool_use_block(call: ToolCall) -> dict[str, Any]:
    arguments = call.parsed_arguments()
    return {
        "toolUse": {
            "toolUseId": converse_tool_use_id(call.id),
            "name": call.name,
            # Converse (and every model behind it) takes a JSON object as a tool's input.
            "input": arguments if isinstance(arguments, dict) else {},
        }
    }


def _tool_result_block(message: ChatMessage) -> dict[str, Any]:
    text = message.text if message.text.strip() else EMPTY_TOOL_RESULT
    return {
        "toolResult": {
            "toolUseId": converse_tool_use_id(message.tool_call_id or ""),
            "content": [{"text": text}],
        }
    }


def _message_blocks(message: ChatMessage, cache_points: bool) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        return "user", [_tool_result_block(message)]
    blocks = _part_blocks(message.parts, cache_points)
    if message.role == "assistant":
        blocks.extend(_tool_use_block(call) for call in message.tool_calls)
        return "assistant", blocks
    return "user", blocks


def _merge_into(turn: list[dict[str, Any]], blocks: list[dict[str, Any]]) -> None:
    """Append a message's blocks to the turn before it (same role): adjacent texts join."""
    if turn and blocks and "text" in turn[-1] and "text" in blocks[0]:
        turn[-1] = {"text": f"{turn[-1]['text']}\n\n{blocks[0]['text']}"}
        blocks = blocks[1:]
    turn.extend(blocks)


def to_converse_messages(
    messages: Sequence[ChatMessage], *, cache_points: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant messages starting with user)."""
    system: list[dict[str, Any]] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        if message.role == "system":
            system.extend(_part_blocks(message.parts, cache_points))
            continue
        role, blocks = _message_blocks(message, cache_points)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            _merge_into(turns[-1][1], blocks)
        else:
            turns.append((role, blocks))
    if turns and turns[0][0] != "user":
        turns.insert(0, ("user", [{"text": LEADING_USER_PLACEHOLDER}]))
    return system, [{"role": role, "content": blocks} for role, blocks in turns]


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


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalItems", "not", "if", "then", "else", "contains", "additionalProperties")


def closed_object_schema(schema: Any) -> Any:
    """A copy of `schema` with `additionalProperties: false` on every object schema that is silent.

    Bedrock's native structured output requires it on every object; an explicit value is left for
    Bedrock to judge. Only schema keywords are walked (never `enum`, `const` or `default` data).
    """
    if not isinstance(schema, Mapping):
        return schema
    closed = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), Mapping):
            closed[key] = {name: closed_object_schema(sub) for name, sub in schema[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            closed[key] = [closed_object_schema(sub) for sub in schema[key]]
    for key in _SCHEMA_VALUES:
        value = schema.get(key)
        if isinstance(value, list):  # draft-4 style tuple `items`
            closed[key] = [closed_object_schema(sub) for sub in value]
        elif isinstance(value, Mapping):
            closed[key] = closed_object_schema(value)
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object and "additionalProperties" not in schema:
        closed["additionalProperties"] = False
    return closed


def _tool_name(raw: str | None, fallback: str) -> str:
    name = _TOOL_NAME_UNSAFE.sub("_", raw or "")[:64]
    return name or fallback


@dataclass(frozen=True)
class ConversePlan:
    """What one chat request becomes in Converse, and how the answer is read back."""

    kwargs: dict[str, Any]
    answer_tool: str | None = None
    """The forced tool whose input is the structured answer (None: no such tool)."""
    answer_wrapped: bool = False
    """The answer schema is not an object (a tool's input must be): it is the input's `value`."""
    drop_tool_calls: bool = False
    """`tool_choice: none` (or no tools offered) with tool history: calls the model makes anyway
    are dropped."""
    first_call_only: bool = False
    """`parallel_tool_calls: false`."""


def _option_choice(option: LlmOption, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = option.params.get(key, default)
    if value not in allowed:
        raise ProviderError(
            ErrorClass.UNAVAILABLE,
            f"option {option.id} is misconfigured: params.{key} must be one of {', '.join(allowed)}",
        )
    return str(value)


def _option_flag(option: LlmOption, key: str, default: bool) -> bool:
    value = option.params.get(key, default)
    if not isinstance(value, bool):
        raise ProviderError(
            ErrorClass.UNAVAILABLE, f"option {option.id} is misconfigured: params.{key} must be true or false"
        )
    return value


def _is_object_schema(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (kind is None and "properties" in schema)


def _object_root(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI lets `parameters` leave out `"type": "object"`; Converse's models want it said."""
    return dict(schema) if "type" in schema else {"type": "object", **schema}


def _tool_spec(tool: FunctionTool, strict_tools: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": _object_root(tool.parameters)}}
    if tool.description:
        spec["description"] = tool.description
    if strict_tools and tool.strict is not None:
        spec["strict"] = tool.strict
    return {"toolSpec": spec}


def _history_tool_names(messages: Sequence[ChatMessage]) -> list[str]:
    names: list[str] = []
    for message in messages:
        for call in message.tool_calls:
            if call.name not in names:
                names.append(call.name)
    return names


def plan_converse(
    option: LlmOption, request: ChatRequest, *, cache_points: bool | None = None
) -> ConversePlan:
    """The Converse keyword arguments for `request` (see the module docstring for every rule)."""
    if not option.model:
        raise ProviderError(ErrorClass.UNAVAILABLE, f"option {option.id} has no model id")
    if cache_points is None:
        cache_points = _option_flag(option, "prompt_caching", True)
    strict_tools = _option_flag(option, "strict_tools", False)
    system, messages = to_converse_messages(request.messages, cache_points=cache_points)
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

    history = any(m.role == "tool" or m.tool_calls for m in request.messages)
    offered = request.tools_enabled
    mode = request.tool_choice.mode if request.tool_choice is not None else "auto"
    tools: list[dict[str, Any]] = []
    if offered or (history and request.tools):
        tools = [_tool_spec(tool, strict_tools) for tool in request.tools]
    elif history:  # Converse needs a toolConfig to read tool history: the names the history used
        tools = [
            {"toolSpec": {"name": name, "inputSchema": {"json": dict(PERMISSIVE_OBJECT_SCHEMA)}}}
            for name in _history_tool_names(request.messages)
        ]
    tool_choice: dict[str, Any] | None = None
    if offered and mode == "required":
        tool_choice = {"any": {}}
    elif offered and mode == "function" and request.tool_choice is not None:
        tool_choice = {"tool": {"name": request.tool_choice.name}}
    # `auto` is Converse's default and is left unsaid: models without tool choice refuse the field.

    answer_tool: str | None = None
    answer_wrapped = False
    response_format = request.response_format
    if response_format is not None and response_format.type != "text":
        structured = _option_choice(option, "structured_output", ("native", "tool"), "native")
        if response_format.type == "json_schema" and structured == "native":
            json_schema: dict[str, Any] = {
                "schema": json.dumps(
                    closed_object_schema(response_format.schema or PERMISSIVE_OBJECT_SCHEMA)
                ),
                "name": _tool_name(response_format.name, DEFAULT_SCHEMA_NAME),
            }
            if response_format.description:
                json_schema["description"] = response_format.description
            kwargs["outputConfig"] = {
                "textFormat": {"type": "json_schema", "structure": {"jsonSchema": json_schema}}
            }
        elif not (offered and mode in ("required", "function")):
            # The model must answer through the answer tool, or (tools offered, `auto`) call one of
            # the client's tools first: `any` over both.
            if response_format.type == "json_schema":
                schema = dict(response_format.schema or PERMISSIVE_OBJECT_SCHEMA)
                fallback = DEFAULT_SCHEMA_NAME
            else:
                schema, fallback = dict(PERMISSIVE_OBJECT_SCHEMA), JSON_OBJECT_TOOL_NAME
            answer_wrapped = not _is_object_schema(schema)
            if answer_wrapped:  # a tool's input is an object: the answer travels as its `value`
                schema = {"type": "object", "properties": {"value": schema}, "required": ["value"]}
            answer_tool = _tool_name(response_format.name, fallback)
            if answer_tool in {tool["toolSpec"]["name"] for tool in tools}:
                answer_tool = _tool_name(f"{answer_tool}_answer", fallback)
            tools.append(
                {
                    "toolSpec": {
                        "name": answer_tool,
                        "description": response_format.description
                        or "Give the final answer by calling this tool: its input is the answer.",
                        "inputSchema": {"json": schema},
                    }
                }
            )
            tool_choice = {"any": {}} if offered else {"tool": {"name": answer_tool}}

    if tools:
        tool_config: dict[str, Any] = {"tools": tools}
        if tool_choice is not None:
            tool_config["toolChoice"] = tool_choice
        kwargs["toolConfig"] = tool_config
    return ConversePlan(
        kwargs=kwargs,
        answer_tool=answer_tool,
        answer_wrapped=answer_wrapped,
        drop_tool_calls=not offered,
        first_call_only=request.parallel_tool_calls is False,
    )


# --- response mapping -----------------------------------------------------------------------------


def _tokens(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _optional_tokens(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value >= 0 else None


def _tool_calls(content: list[Any]) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for block in content:
        use = block.get("toolUse") if isinstance(block, dict) else None
        if not isinstance(use, dict):
            continue
        use_id, name = use.get("toolUseId"), use.get("name")
        if not isinstance(use_id, str) or not isinstance(name, str):
            raise ProviderError(ErrorClass.MALFORMED, "Converse toolUse block without toolUseId or name")
        arguments = use.get("input")
        calls.append(
            ToolCall(
                id=use_id,
                name=name,
                arguments=json.dumps(arguments if arguments is not None else {}, ensure_ascii=False),
            )
        )
    return calls


def _answer_text(answer: ToolCall, wrapped: bool) -> str:
    if not wrapped:
        return answer.arguments
    data = answer.parsed_arguments()
    # Without its `value` the input is passed on whole: the invoke step's validation says malformed.
    inner = data["value"] if isinstance(data, dict) and "value" in data else data
    return json.dumps(inner, ensure_ascii=False)


def parse_converse_response(response: Any, option: LlmOption, plan: ConversePlan | None = None) -> ChatResult:
    plan = plan or ConversePlan(kwargs={})
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
    text = "".join(
        block["text"] for block in content if isinstance(block, dict) and isinstance(block.get("text"), str)
    )
    calls = _tool_calls(content)
    answer = next((call for call in calls if call.name == plan.answer_tool), None)
    calls = [call for call in calls if call.name != plan.answer_tool]
    if plan.drop_tool_calls:
        calls = []
    if plan.first_call_only:
        calls = calls[:1]
    if answer is not None and not calls:
        # The structured answer, given as the forced tool's input: that input is the content.
        text, finish = _answer_text(answer, plan.answer_wrapped), "stop" if finish == "tool_calls" else finish
    if calls:
        finish = "tool_calls" if finish in ("stop", "tool_calls") else finish
    elif finish == "tool_calls":
        finish = "stop"
    if not text and not calls and finish != "content_filter":
        what = (
            "text (the tool calls it made were not allowed)" if plan.drop_tool_calls else "text or tool call"
        )
        raise ProviderError(ErrorClass.MALFORMED, f"Converse response has no {what}")
    extra: dict[str, Any] = {"stop_reason": stop_reason}
    metrics = response.get("metrics")
    latency = metrics.get("latencyMs") if isinstance(metrics, dict) else None
    if isinstance(latency, int):
        extra["latency_ms"] = latency
    cached = _optional_tokens(usage.get("cacheReadInputTokens"))
    written = _optional_tokens(usage.get("cacheWriteInputTokens"))
    return ChatResult(
        text=text,
        finish_reason=finish,
        prompt_tokens=_tokens(usage.get("inputTokens")) + (cached or 0) + (written or 0),
        completion_tokens=_tokens(usage.get("outputTokens")),
        model=option.model or "",
        tool_calls=tuple(calls),
        cached_tokens=cached,
        cache_write_tokens=written,
        extra=extra,
    )


# --- streaming (ConverseStream) --------------------------------------------------------------------


def _event_stream_socket(event_stream: Any) -> socket.socket | None:
    """The socket under a botocore `EventStream`, to give each read its own timeout.

    botocore offers no public way to change the read timeout of a response already open (the
    client's `read_timeout` is fixed when the client is made), so the socket is reached through the
    urllib3 response: its connection's, or (when the server said `Connection: close`, and
    http.client let go of the connection's socket) the one under the response's socket file. When
    it cannot be found, the client's read timeout bounds each read and the deadlines are checked
    after every event.
    """
    raw = getattr(event_stream, "_raw_stream", None)
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if not isinstance(sock, socket.socket):
        socket_file = getattr(getattr(raw, "_fp", None), "fp", None)  # http.client's makefile("rb")
        sock = getattr(getattr(socket_file, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def iterate_event_stream(
    event_stream: Any, clock: StreamClock, classify: Callable[[Exception], ProviderError], what: str
) -> Generator[dict[str, Any], None, None]:
    """The events of a botocore `EventStream`, each read bounded by the stream's deadlines.

    An exception event (botocore's `EventStreamError`, a `ClientError`) is classified by
    `classify`; a read timeout is the deadline's TIMEOUT; a broken connection is `unavailable`.
    The stream is closed (and its connection with it) however the iteration ends.
    """
    from botocore.exceptions import ClientError

    sock = _event_stream_socket(event_stream)
    events = iter(event_stream)
    try:
        while True:
            timeout = clock.read_timeout()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(timeout)
            try:
                event = next(events)
            except StopIteration:
                return
            except ClientError as exc:
                raise classify(exc) from exc
            except Exception as exc:
                if _caused_by_timeout(exc):
                    raise clock.expired() from exc
                mapped = classify_botocore_transport_error(exc, what) or ProviderError(
                    ErrorClass.UNAVAILABLE, f"{what} stream broken: {type(exc).__name__}"
                )
                raise mapped from exc
            if isinstance(event, dict):
                yield event
    finally:
        event_stream.close()


def _caused_by_timeout(exc: BaseException) -> bool:
    """A socket timeout, or urllib3's `ReadTimeoutError` raised from one (urllib3 is not imported
    here: only botocore is certain to be there)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, TimeoutError) or type(seen).__name__ == "ReadTimeoutError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Block:
    """What one Converse content block is for the client."""

    kind: Literal["call", "answer", "drop"]
    index: int = 0
    name: str = ""
    pieces: list[str] = field(default_factory=list)


class ConverseStreamReader:
    """ConverseStream events -> `StreamDelta`s, under the same rules as `parse_converse_response`.

    Text deltas pass as they come. A `toolUse` block start is a tool call's first piece (id and
    name), its `input` deltas the pieces of the arguments (a call whose model sent no input gets
    `{}`, as whole answers do). The forced answer tool of the tool way to structured output streams
    its input as content text (a non-object answer, carried as the input's `value`, is unwrapped
    and sent when its block ends). Calls the request does not allow (`tool_choice: none` with tool
    history: dropped; `parallel_tool_calls: false`: only the first) are left out, as is the answer
    tool once a real call has been sent (whole answers do the same). One difference with whole
    answers: text already sent cannot be taken back, so an answer-tool text followed by a real
    call sends both. `messageStop` gives the finish, `metadata` the usage; both leave in one last
    delta when the stream ends. A stream that ends before `messageStop` is `unavailable`.
    """

    def __init__(self, plan: ConversePlan) -> None:
        self._plan = plan
        self._blocks: dict[Any, _Block] = {}  # by contentBlockIndex
        self._calls = 0
        self._content = False
        self._stop: str | None = None
        self._usage: StreamUsage | None = None

    @property
    def finished(self) -> bool:
        return self._stop is not None

    def feed(self, event: Mapping[str, Any]) -> list[StreamDelta]:
        if "contentBlockStart" in event:
            return self._start(event["contentBlockStart"])
        if "contentBlockDelta" in event:
            return self._delta(event["contentBlockDelta"])
        if "contentBlockStop" in event:
            return self._stop_block(event["contentBlockStop"])
        if "messageStop" in event:
            stop = event["messageStop"].get("stopReason") if isinstance(event["messageStop"], dict) else None
            if stop in _MALFORMED_STOP_REASONS:
                raise ProviderError(ErrorClass.MALFORMED, f"Bedrock stopReason {stop}")
            self._stop = str(stop)
        elif "metadata" in event and isinstance(event["metadata"], dict):
            usage = event["metadata"].get("usage") or {}
            if isinstance(usage, dict):
                cached = _optional_tokens(usage.get("cacheReadInputTokens"))
                written = _optional_tokens(usage.get("cacheWriteInputTokens"))
                self._usage = StreamUsage(
                    prompt_tokens=_tokens(usage.get("inputTokens")) + (cached or 0) + (written or 0),
                    completion_tokens=_tokens(usage.get("outputTokens")),
                    cached_tokens=cached,
                )
        return []

    def end(self) -> list[StreamDelta]:
        if self._stop is None:
            raise ProviderError(ErrorClass.UNAVAILABLE, "ConverseStream ended before messageStop")
        finish = _STOP_REASONS.get(self._stop, "stop")
        if self._calls:
            finish = "tool_calls" if finish in ("stop", "tool_calls") else finish
        elif finish == "tool_calls":
            finish = "stop"
        if not self._content and finish != "content_filter":
            what = (
                "text (the tool calls it made were not allowed)"
                if self._plan.drop_tool_calls
                else "text or tool call"
            )
            raise ProviderError(ErrorClass.MALFORMED, f"ConverseStream sent no {what}")
        return [StreamDelta(finish_reason=finish, usage=self._usage)]

    def _emit(self, delta: StreamDelta) -> list[StreamDelta]:
        if not delta.has_content:
            return []
        self._content = True
        return [delta]

    def _start(self, start_event: Any) -> list[StreamDelta]:
        start = start_event.get("start") if isinstance(start_event, dict) else None
        use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(use, dict):
            return []
        use_id, name = use.get("toolUseId"), use.get("name")
        if not isinstance(use_id, str) or not isinstance(name, str):
            raise ProviderError(
                ErrorClass.MALFORMED, "ConverseStream toolUse start without toolUseId or name"
            )
        position = start_event.get("contentBlockIndex")
        if name == self._plan.answer_tool:
            self._blocks[position] = _Block("drop" if self._calls else "answer", name=name)
            return []
        if self._plan.drop_tool_calls or (self._plan.first_call_only and self._calls):
            self._blocks[position] = _Block("drop")
            return []
        self._blocks[position] = _Block("call", index=self._calls, name=name)
        self._calls += 1
        return self._emit(
            StreamDelta(tool_calls=(ToolCallDelta(index=self._calls - 1, id=use_id, name=name),))
        )

    def _delta(self, delta_event: Any) -> list[StreamDelta]:
        delta = delta_event.get("delta") if isinstance(delta_event, dict) else None
        if not isinstance(delta, dict):
            raise ProviderError(ErrorClass.MALFORMED, "ConverseStream contentBlockDelta without delta")
        text = delta.get("text")
        if isinstance(text, str):
            return self._emit(StreamDelta(text=text))
        use = delta.get("toolUse")
        if not isinstance(use, dict):
            return []  # reasoning, citations: not part of the answer
        piece = use.get("input")
        block = self._blocks.get(delta_event.get("contentBlockIndex"))
        if block is None or not isinstance(piece, str):
            raise ProviderError(ErrorClass.MALFORMED, "ConverseStream toolUse input outside a toolUse block")
        if not piece or block.kind == "drop":
            return []
        block.pieces.append(piece)
        if block.kind == "call":
            return self._emit(StreamDelta(tool_calls=(ToolCallDelta(index=block.index, arguments=piece),)))
        if not self._plan.answer_wrapped:
            return self._emit(StreamDelta(text=piece))
        return []

    def _stop_block(self, stop_event: Any) -> list[StreamDelta]:
        position = stop_event.get("contentBlockIndex") if isinstance(stop_event, dict) else None
        block = self._blocks.pop(position, None)
        if block is None or block.kind == "drop":
            return []
        arguments = "".join(block.pieces) or "{}"
        if block.kind == "call":
            if block.pieces:
                return []
            return self._emit(
                StreamDelta(tool_calls=(ToolCallDelta(index=block.index, arguments=arguments),))
            )
        if self._plan.answer_wrapped:
            answer = ToolCall(id="", name=block.name, arguments=arguments)
            return self._emit(StreamDelta(text=_answer_text(answer, wrapped=True)))
        return [] if block.pieces else self._emit(StreamDelta(text=arguments))


def _has_cache_points(kwargs: Mapping[str, Any]) -> bool:
    blocks = list(kwargs.get("system") or ())
    for message in kwargs.get("messages") or ():
        blocks.extend(message.get("content") or ())
    return any("cachePoint" in block for block in blocks)


class BedrockConverseProvider:
    """Bedrock chat (Converse) and embeddings (InvokeModel).

    `client_factory(region)` replaces the cached boto3 clients (tests, Stubber).
    """

    def __init__(self, client_factory: Callable[[str | None], Any] | None = None) -> None:
        self._client_factory = client_factory

    def _client(self, region: str | None, timeout_s: float) -> Any:
        if self._client_factory is not None:
            return self._client_factory(region)
        return cached_client("bedrock-runtime", region, timeout_s)

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        started = time.monotonic()
        plan, response = self._call_converse(
            option, request, "converse", timeout_s, lambda: timeout_s - (time.monotonic() - started)
        )
        return parse_converse_response(response, option, plan)

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        """ConverseStream with `complete`'s request; events mapped by `ConverseStreamReader`."""
        from switchboard.providers.streaming import StreamClock

        clock = StreamClock(deadlines)
        plan, response = self._call_converse(
            option, request, "converse_stream", clock.read_timeout(), clock.time_left
        )
        event_stream = response.get("stream") if isinstance(response, dict) else None
        if event_stream is None:
            raise ProviderError(ErrorClass.MALFORMED, "ConverseStream response has no stream")
        reader = ConverseStreamReader(plan)
        events = iterate_event_stream(event_stream, clock, classify_stream_exception, "Bedrock")
        try:
            while True:
                try:
                    event = next(events)
                except StopIteration:
                    break
                except ProviderError as error:
                    if error.error_class is ErrorClass.TIMEOUT and reader.finished:
                        break  # the answer is whole; only the usage did not come in time
                    raise
                deltas = reader.feed(event)
                clock.saw_event(any(delta.has_content for delta in deltas))
                yield from deltas
            yield from reader.end()
        finally:
            events.close()
            event_stream.close()

    def _call_converse(
        self,
        option: LlmOption,
        request: ChatRequest,
        operation: Literal["converse", "converse_stream"],
        timeout_s: float,
        time_left: Callable[[], float],
    ) -> tuple[ConversePlan, Any]:
        """One Converse(Stream) call; asked again without cache points when Bedrock refuses them."""
        plan = plan_converse(option, request)
        try:
            return plan, call_bedrock(
                lambda: getattr(self._client(option.region, timeout_s), operation)(**plan.kwargs)
            )
        except ProviderError as error:
            cause = error.__cause__
            left = time_left()
            if not (
                isinstance(cause, Exception)
                and refuses_prompt_caching(cause)
                and _has_cache_points(plan.kwargs)
                and left > 0.5
            ):
                raise
        # A cache hint never changes the answer: ask again without cache points.
        plan = plan_converse(option, request, cache_points=False)
        return plan, call_bedrock(
            lambda: getattr(self._client(option.region, left), operation)(**plan.kwargs)
        )

    def embed(self, option: LlmOption, request: EmbeddingRequest, timeout_s: float) -> EmbeddingResult:
        from switchboard.providers.bedrock_embeddings import embed_with_invoke_model

        return embed_with_invoke_model(
            lambda timeout: self._client(option.region, timeout), option, request, timeout_s
        )
