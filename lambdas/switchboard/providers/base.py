"""The provider contract shared by Bedrock, SageMaker, OpenAI-compatible endpoints and the mock.

The provider-neutral request is the OpenAI chat request after the gateway parsed it: every field
already checked (`switchboard.api_models`), so providers map, they do not validate. Its dict form
(`ChatRequest.to_dict`, what the workflow carries to the invoke step) *is* the OpenAI wire shape
(messages with content parts and `tool_calls`, `tools`, `tool_choice`, `response_format`), so
OpenAI-compatible endpoints and SageMaker containers that speak the messages API receive the
request as the client sent it, and Bedrock maps it to Converse.

Embeddings have their own small pair (`EmbeddingRequest`, `EmbeddingResult`), carried by the same
workflow: `to_dict` marks them with ``"operation": "embeddings"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from switchboard.options.model import Feature, LlmOption

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]
ToolChoiceMode = Literal["auto", "none", "required", "function"]
ResponseFormatType = Literal["text", "json_object", "json_schema"]

OPERATION_KEY = "operation"
OPERATION_CHAT = "chat"
OPERATION_EMBEDDINGS = "embeddings"

# Features a request may need and an option may declare it has (`LlmOption.capabilities`).
FEATURE_TOOLS = Feature.TOOLS.value
FEATURE_IMAGES = Feature.IMAGES.value
FEATURE_JSON_SCHEMA = Feature.JSON_SCHEMA.value
FEATURE_JSON_OBJECT = Feature.JSON_OBJECT.value


@dataclass(frozen=True)
class TextPart:
    """A text content part; `cache` is the client's prompt-cache hint after this part.

    The hint is Anthropic's `cache_control: {"type": "ephemeral"}` on a part, which OpenAI SDKs
    pass through untouched; Bedrock maps it to a Converse `cachePoint` block after the part.
    """

    text: str
    cache: bool = False

    def to_openai(self) -> dict[str, Any]:
        part: dict[str, Any] = {"type": "text", "text": self.text}
        if self.cache:
            part["cache_control"] = {"type": "ephemeral"}
        return part


@dataclass(frozen=True)
class ImagePart:
    """An image as its bytes (base64, already decoded once and checked) and media type."""

    media_type: str
    data_base64: str
    detail: str | None = None

    @property
    def format(self) -> str:
        """`png`, `jpeg`, `gif` or `webp`: Converse's image `format`."""
        return self.media_type.split("/", 1)[1]

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.data_base64}"

    def to_openai(self) -> dict[str, Any]:
        image: dict[str, Any] = {"url": self.data_url()}
        if self.detail:
            image["detail"] = self.detail
        return {"type": "image_url", "image_url": image}


ContentPart = TextPart | ImagePart


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; `arguments` is JSON text, as OpenAI carries it."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @classmethod
    def from_openai(cls, data: Mapping[str, Any]) -> ToolCall:
        function = data["function"]
        return cls(id=str(data["id"]), name=str(function["name"]), arguments=str(function["arguments"]))

    def parsed_arguments(self) -> Any:
        """The arguments as JSON; `{}` when the model sent none or sent something unparsable."""
        try:
            return json.loads(self.arguments) if self.arguments.strip() else {}
        except ValueError:
            return {}


@dataclass(frozen=True)
class ChatMessage:
    """A message: `content` is plain text or parts (text and images, in order).

    Assistant messages may carry `tool_calls` (and then often no content); `tool` messages answer
    one call, named by `tool_call_id`.
    """

    role: Role
    content: str | tuple[ContentPart, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def parts(self) -> tuple[ContentPart, ...]:
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return self.content

    @property
    def text(self) -> str:
        """The text of the message, parts joined (images left out)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(part for part in self.parts if isinstance(part, ImagePart))

    def to_openai(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role}
        if isinstance(self.content, str):
            message["content"] = self.content if (self.content or not self.tool_calls) else None
        else:
            message["content"] = [part.to_openai() for part in self.content]
        if self.tool_calls:
            message["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            message["name"] = self.name
        return message

    @classmethod
    def from_openai(cls, data: Mapping[str, Any]) -> ChatMessage:
        """From :meth:`to_openai`'s form (the gateway wrote it; not a validator of client input)."""
        raw = data.get("content")
        content: str | tuple[ContentPart, ...]
        if raw is None:
            content = ""
        elif isinstance(raw, str):
            content = raw
        else:
            content = tuple(_part_from_openai(part) for part in raw)
        return cls(
            role=data["role"],
            content=content,
            tool_calls=tuple(ToolCall.from_openai(call) for call in data.get("tool_calls") or ()),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )


def _part_from_openai(part: Mapping[str, Any]) -> ContentPart:
    if part.get("type") == "image_url":
        url = str(part["image_url"]["url"])
        header, _, data = url.partition(",")
        media_type = header.removeprefix("data:").split(";", 1)[0]
        return ImagePart(media_type=media_type, data_base64=data, detail=part["image_url"].get("detail"))
    return TextPart(text=str(part.get("text", "")), cache=bool(part.get("cache_control")))


@dataclass(frozen=True)
class FunctionTool:
    """A function the model may call: its name, what it is for, and its JSON Schema parameters."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None

    def to_openai(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": dict(self.parameters)}
        if self.description is not None:
            function["description"] = self.description
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}

    @classmethod
    def from_openai(cls, data: Mapping[str, Any]) -> FunctionTool:
        function = data["function"]
        return cls(
            name=str(function["name"]),
            description=function.get("description"),
            parameters=function.get("parameters") or {"type": "object", "properties": {}},
            strict=function.get("strict"),
        )


@dataclass(frozen=True)
class ToolChoice:
    """`auto`, `none`, `required`, or `function` with the function's `name`."""

    mode: ToolChoiceMode
    name: str | None = None

    def to_openai(self) -> str | dict[str, Any]:
        if self.mode == "function":
            return {"type": "function", "function": {"name": self.name}}
        return self.mode

    @classmethod
    def from_openai(cls, data: str | Mapping[str, Any]) -> ToolChoice:
        if isinstance(data, str):
            return cls(mode=data)  # type: ignore[arg-type]  # the gateway wrote one of the modes
        return cls(mode="function", name=str(data["function"]["name"]))


@dataclass(frozen=True)
class ResponseFormat:
    """`text`, `json_object`, or `json_schema` with its schema (`strict` as the client asked)."""

    type: ResponseFormatType
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None

    def to_openai(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        spec: dict[str, Any] = {"name": self.name or "response"}
        if self.schema is not None:
            spec["schema"] = dict(self.schema)
        if self.strict is not None:
            spec["strict"] = self.strict
        if self.description is not None:
            spec["description"] = self.description
        return {"type": "json_schema", "json_schema": spec}

    @classmethod
    def from_openai(cls, data: Mapping[str, Any]) -> ResponseFormat:
        kind = data["type"]
        if kind != "json_schema":
            return cls(type=kind)
        spec = data.get("json_schema") or {}
        return cls(
            type="json_schema",
            name=spec.get("name"),
            schema=spec.get("schema"),
            strict=spec.get("strict"),
            description=spec.get("description"),
        )


@dataclass(frozen=True)
class ChatRequest:
    """Provider-neutral request; per-call values win over the option's `params` defaults."""

    messages: list[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    user: str | None = None
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None

    def needs(self) -> frozenset[str]:
        """The features an option must have to answer this request faithfully (see `FEATURES`)."""
        needed: set[str] = set()
        tool_history = any(m.role == "tool" or m.tool_calls for m in self.messages)
        if self.tools or tool_history:
            needed.add(FEATURE_TOOLS)
        if any(m.images for m in self.messages):
            needed.add(FEATURE_IMAGES)
        if self.response_format is not None and self.response_format.type != "text":
            needed.add(self.response_format.type)
        return frozenset(needed)

    @property
    def tools_enabled(self) -> bool:
        """Tools are offered and the client did not switch them off with `tool_choice: none`."""
        return bool(self.tools) and (self.tool_choice is None or self.tool_choice.mode != "none")

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI wire shape (what the workflow carries and OpenAI-style providers receive)."""
        data: dict[str, Any] = {
            "messages": [m.to_openai() for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "user": self.user,
        }
        if self.tools:
            data["tools"] = [tool.to_openai() for tool in self.tools]
        if self.tool_choice is not None:
            data["tool_choice"] = self.tool_choice.to_openai()
        if self.parallel_tool_calls is not None:
            data["parallel_tool_calls"] = self.parallel_tool_calls
        if self.response_format is not None:
            data["response_format"] = self.response_format.to_openai()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatRequest:
        tool_choice = data.get("tool_choice")
        response_format = data.get("response_format")
        return cls(
            messages=[ChatMessage.from_openai(m) for m in data["messages"]],
            max_tokens=data.get("max_tokens"),
            temperature=data.get("temperature"),
            top_p=data.get("top_p"),
            stop=data.get("stop"),
            user=data.get("user"),
            tools=tuple(FunctionTool.from_openai(tool) for tool in data.get("tools") or ()),
            tool_choice=ToolChoice.from_openai(tool_choice) if tool_choice is not None else None,
            parallel_tool_calls=data.get("parallel_tool_calls"),
            response_format=ResponseFormat.from_openai(response_format) if response_format else None,
        )


@dataclass(frozen=True)
class ChatResult:
    """A provider's answer. `text` is "" when the model only called tools (the API says `null`).

    Token details are None when the provider did not report them: `cached_tokens` (prompt tokens
    read from a prompt cache), `cache_write_tokens` (written to it), `reasoning_tokens`.
    """

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    model: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "model": self.model,
        }
        if self.tool_calls:
            data["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        for key in ("cached_tokens", "cache_write_tokens", "reasoning_tokens"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatResult:
        def optional_int(key: str) -> int | None:
            value = data.get(key)
            return int(value) if value is not None else None

        return cls(
            text=data["text"],
            finish_reason=data["finish_reason"],
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            model=data.get("model", ""),
            tool_calls=tuple(ToolCall.from_openai(call) for call in data.get("tool_calls") or ()),
            cached_tokens=optional_int("cached_tokens"),
            cache_write_tokens=optional_int("cache_write_tokens"),
            reasoning_tokens=optional_int("reasoning_tokens"),
        )


EncodingFormat = Literal["float", "base64"]


@dataclass(frozen=True)
class EmbeddingRequest:
    """Texts (or token arrays, for the providers that take them) to embed.

    `dimensions` is the client's wish (None: the option's `params.dimensions` or the model's
    default). The encoding (`float`/`base64`) is the gateway's business, not the provider's.
    """

    inputs: tuple[str | tuple[int, ...], ...]
    dimensions: int | None = None
    user: str | None = None

    def texts(self) -> list[str] | None:
        """The inputs as strings, or None when any of them is a token array."""
        if all(isinstance(item, str) for item in self.inputs):
            return [str(item) for item in self.inputs]
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            OPERATION_KEY: OPERATION_EMBEDDINGS,
            "input": [item if isinstance(item, str) else list(item) for item in self.inputs],
            "dimensions": self.dimensions,
            "user": self.user,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingRequest:
        return cls(
            inputs=tuple(
                item if isinstance(item, str) else tuple(int(t) for t in item) for item in data["input"]
            ),
            dimensions=data.get("dimensions"),
            user=data.get("user"),
        )


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            OPERATION_KEY: OPERATION_EMBEDDINGS,
            "vectors": self.vectors,
            "prompt_tokens": self.prompt_tokens,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingResult:
        return cls(
            vectors=[[float(x) for x in vector] for vector in data["vectors"]],
            prompt_tokens=int(data["prompt_tokens"]),
            model=data.get("model", ""),
        )


def is_embeddings(data: Mapping[str, Any]) -> bool:
    """Whether a workflow request (or result) dict is an embeddings one."""
    return data.get(OPERATION_KEY) == OPERATION_EMBEDDINGS


def merged_params(option: LlmOption, request: ChatRequest) -> dict[str, Any]:
    """Request values override the option's defaults; unset values are dropped."""
    merged: dict[str, Any] = {
        k: option.params[k] for k in ("max_tokens", "temperature", "top_p", "stop") if k in option.params
    }
    for key in ("max_tokens", "temperature", "top_p", "stop"):
        value = getattr(request, key)
        if value is not None:
            merged[key] = value
    return merged


class Provider(Protocol):
    """Answers one chat request or raises `switchboard.errors.ProviderError` with a class."""

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult: ...


class EmbeddingProvider(Protocol):
    """Embeds texts or raises `switchboard.errors.ProviderError` with a class.

    A provider that cannot embed (or cannot take token arrays) raises `unsupported`.
    """

    def embed(self, option: LlmOption, request: EmbeddingRequest, timeout_s: float) -> EmbeddingResult: ...


# --- streaming (issue 14) -------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of one tool call, as OpenAI streams them: `index` says which call; `id` and `name`
    arrive with the call's first piece, `arguments` in pieces to concatenate."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class StreamUsage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True)
class StreamDelta:
    """One event of a provider's stream: text and/or tool-call pieces, or the end.

    The last event of a stream carries `finish_reason` (and `usage` when the provider reports it,
    possibly in an event of its own after the finish). A provider's stream is an iterator of these;
    a failure is a `ProviderError` raised while iterating: before the first delta the gateway moves
    to the next candidate invisibly, after it the client gets an error event and no `[DONE]`.
    """

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: StreamUsage | None = None

    @property
    def has_content(self) -> bool:
        """Whether the client would see bytes for this delta (the first one ends invisible failover)."""
        return bool(self.text or self.tool_calls)


@dataclass(frozen=True)
class StreamDeadlines:
    """How long a streamed call may take: to its first content delta, between deltas, in total.

    Each is a number of seconds measured by the provider from the moment it starts the call; a
    breach is a `ProviderError(TIMEOUT)` raised from the iterator. `first_token_s` and `idle_s`
    come from the option (`params.first_token_timeout_ms`, `params.idle_timeout_ms`), `total_s`
    from the request's budget.
    """

    first_token_s: float
    idle_s: float
    total_s: float


class StreamingProvider(Protocol):
    """Streams one chat request: an iterator of `StreamDelta`, `ProviderError` raised while iterating.

    The call itself may be lazy (nothing sent until the first `next`). Closing the iterator early
    (the client went away) must release the connection.
    """

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]: ...
