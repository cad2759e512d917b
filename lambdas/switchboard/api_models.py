"""The OpenAI-compatible wire shapes (requests validated with pydantic; responses as plain models).

`model` in a request names a Switchboard route alias (e.g. `chat`), not a vendor model id.

Every field the gateway forwards is parsed here, so a provider never sees a shape it was not
promised: messages by role (tool calls only on assistant messages, images only in user messages,
`tool` messages answering a call made earlier), function tools with JSON Schema parameters,
`tool_choice` naming a tool that exists, `response_format` with a schema the gateway can check
answers against, images as checked data URLs (`switchboard.images`). Fields OpenAI SDKs send that
do not change the answer (`seed`, `metadata`, ...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from switchboard.images import MAX_IMAGES, ImageRefused, parse_image_url
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    FunctionTool,
    ImagePart,
    ResponseFormat,
    ToolCall,
    ToolChoice,
)
from switchboard.providers.base import TextPart as NeutralTextPart

ROUTE_PATTERN = r"^[a-z][a-zA-Z0-9_-]{0,63}$"
FUNCTION_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_TOOLS = 128
MAX_TOOL_CALL_ID = 256
MAX_SCHEMA_NODES = 5000
"""A tool's parameters or a response schema may hold at most this many JSON values (keeps the
validator's and the providers' work bounded; real schemas are far smaller)."""
MAX_EMBEDDING_INPUTS = 2048
MAX_TOKEN_ARRAY = 8192
MAX_DIMENSIONS = 8192


def _json_nodes(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_json_nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_json_nodes(v) for v in value)
    return 1


def _bounded_schema(value: dict[str, Any], what: str) -> dict[str, Any]:
    if _json_nodes(value) > MAX_SCHEMA_NODES:
        raise ValueError(f"{what} is too large (at most {MAX_SCHEMA_NODES} JSON values)")
    return value


class _Strict(BaseModel):
    """Parts of the request the gateway forwards: unknown keys are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class CacheControl(_Strict):
    type: Literal["ephemeral"]
    ttl: str | None = None


class TextPart(_Strict):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = None


class ImageUrl(_Strict):
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class ImageUrlPart(_Strict):
    type: Literal["image_url"]
    image_url: ImageUrl

    @field_validator("image_url")
    @classmethod
    def _acceptable_image(cls, value: ImageUrl) -> ImageUrl:
        try:
            parse_image_url(value.url)
        except ImageRefused as exc:
            raise ValueError(str(exc)) from None
        return value

    def to_neutral(self) -> ImagePart:
        media_type, data = parse_image_url(self.image_url.url)
        return ImagePart(media_type=media_type, data_base64=data, detail=self.image_url.detail)


def _reject_unknown_part_types(value: Any, allowed: tuple[str, ...], role: str) -> Any:
    """A clear message for a part type this role cannot carry (before pydantic's union noise)."""
    if isinstance(value, list):
        for index, part in enumerate(value):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in allowed:
                raise ValueError(
                    f"content part {index} of a {role} message has type {kind!r}: "
                    f"{role} messages take {' or '.join(allowed)} parts"
                )
    return value


class FunctionCall(_Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME_PATTERN)]
    arguments: Annotated[str, Field(max_length=1_000_000)]


class ToolCallIn(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=MAX_TOOL_CALL_ID)]
    type: Literal["function"] = "function"
    function: FunctionCall


def _text_of(content: str | list[TextPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)


def _neutral_parts(content: str | list[Any]) -> str | tuple[ContentPart, ...]:
    if isinstance(content, str):
        return content
    parts: list[ContentPart] = []
    for part in content:
        if isinstance(part, ImageUrlPart):
            parts.append(part.to_neutral())
        else:
            parts.append(NeutralTextPart(text=part.text, cache=part.cache_control is not None))
    return tuple(parts)


class SystemMessage(_Strict):
    """`developer` is OpenAI's newer name for `system` and is treated as one."""

    role: Literal["system", "developer"]
    content: str | list[TextPart]
    name: Annotated[str | None, Field(max_length=256)] = None

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        return _reject_unknown_part_types(value, ("text",), "system")

    def to_neutral(self) -> ChatMessage:
        return ChatMessage(role="system", content=_neutral_parts(self.content), name=self.name)


class UserMessage(_Strict):
    role: Literal["user"]
    # Tagged by `type` (checked first by `_parts`): a refused image reports why, not that it is no text part.
    content: str | list[Annotated[TextPart | ImageUrlPart, Field(discriminator="type")]]
    name: Annotated[str | None, Field(max_length=256)] = None

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        return _reject_unknown_part_types(value, ("text", "image_url"), "user")

    def to_neutral(self) -> ChatMessage:
        return ChatMessage(role="user", content=_neutral_parts(self.content), name=self.name)

    def image_count(self) -> int:
        return 0 if isinstance(self.content, str) else sum(isinstance(p, ImageUrlPart) for p in self.content)


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: str | list[TextPart] | None = None
    tool_calls: Annotated[list[ToolCallIn] | None, Field(max_length=MAX_TOOLS)] = None
    name: Annotated[str | None, Field(max_length=256)] = None
    refusal: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        return _reject_unknown_part_types(value, ("text",), "assistant")

    @model_validator(mode="after")
    def _says_something(self) -> AssistantMessage:
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs `content` or `tool_calls`")
        return self

    def to_neutral(self) -> ChatMessage:
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in self.tool_calls or ()
        )
        content: str | tuple[ContentPart, ...] = "" if self.content is None else _neutral_parts(self.content)
        return ChatMessage(role="assistant", content=content, tool_calls=calls, name=self.name)


class ToolMessage(_Strict):
    role: Literal["tool"]
    content: str | list[TextPart]
    tool_call_id: Annotated[str, Field(min_length=1, max_length=MAX_TOOL_CALL_ID)]

    @field_validator("content", mode="before")
    @classmethod
    def _parts(cls, value: Any) -> Any:
        return _reject_unknown_part_types(value, ("text",), "tool")

    def to_neutral(self) -> ChatMessage:
        return ChatMessage(role="tool", content=_text_of(self.content), tool_call_id=self.tool_call_id)


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(_Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME_PATTERN)]
    description: Annotated[str | None, Field(max_length=10_000)] = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if value.get("type", "object") != "object":
            raise ValueError("a function's `parameters` must be a JSON Schema of type `object`")
        _bounded_schema(value, "`parameters`")
        from switchboard.json_schema import check_schema

        problems = check_schema(value)
        if problems:
            raise ValueError(f"the parameters schema cannot be used: {problems[0]}")
        return value


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDefinition

    def to_neutral(self) -> FunctionTool:
        function = self.function
        parameters = function.parameters or {"type": "object", "properties": {}}
        return FunctionTool(
            name=function.name,
            description=function.description,
            parameters=parameters,
            strict=function.strict,
        )


class NamedFunction(_Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME_PATTERN)]


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(_Strict):
    name: Annotated[str, Field(pattern=FUNCTION_NAME_PATTERN)]
    description: Annotated[str | None, Field(max_length=10_000)] = None
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _checkable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        _bounded_schema(value, "`schema`")
        from switchboard.json_schema import check_schema

        problems = check_schema(value)
        if problems:
            raise ValueError(f"the schema cannot be used: {problems[0]}")
        return value


class ResponseFormatText(_Strict):
    type: Literal["text"]


class ResponseFormatJsonObject(_Strict):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormatIn = Annotated[
    ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema, Field(discriminator="type")
]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI `POST /v1/chat/completions` body; unknown top-level fields are ignored (SDKs send many)."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=64, description="Route alias, e.g. `chat`")]
    messages: Annotated[list[Message], Field(min_length=1, max_length=2048)]
    max_tokens: Annotated[int | None, Field(ge=1, le=200000)] = None
    max_completion_tokens: Annotated[int | None, Field(ge=1, le=200000)] = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(ge=0, le=1)] = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    user: Annotated[str | None, Field(max_length=256)] = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: Annotated[int | None, Field(ge=1, le=1)] = Field(default=None, description="Only 1 is supported")
    tools: Annotated[list[Tool] | None, Field(max_length=MAX_TOOLS)] = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None

    @model_validator(mode="after")
    def _coherent(self) -> ChatCompletionRequest:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages must contain at least one `user` message")
        images = sum(m.image_count() for m in self.messages if isinstance(m, UserMessage))
        if images > MAX_IMAGES:
            raise ValueError(f"a request may carry at most {MAX_IMAGES} images")
        names = [tool.function.name for tool in self.tools or ()]
        if len(set(names)) != len(names):
            raise ValueError("`tools` names a function more than once")
        if self.tool_choice not in (None, "auto", "none") and not names:
            raise ValueError("`tool_choice` asks for a tool call but `tools` is empty")
        if isinstance(self.tool_choice, NamedToolChoice) and self.tool_choice.function.name not in names:
            raise ValueError(
                f"`tool_choice` names `{self.tool_choice.function.name}`, which is not in `tools`"
            )
        _tool_results_answer_calls(self.messages)
        return self

    def to_chat_request(self) -> ChatRequest:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        choice: ToolChoice | None
        if self.tool_choice is None:
            choice = None
        elif isinstance(self.tool_choice, NamedToolChoice):
            choice = ToolChoice(mode="function", name=self.tool_choice.function.name)
        else:
            choice = ToolChoice(mode=self.tool_choice)
        return ChatRequest(
            messages=[m.to_neutral() for m in self.messages],
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stop or None,
            user=self.user,
            tools=tuple(tool.to_neutral() for tool in self.tools or ()),
            tool_choice=choice,
            parallel_tool_calls=self.parallel_tool_calls,
            response_format=_neutral_format(self.response_format),
        )


def _neutral_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    if isinstance(value, ResponseFormatJsonSchema):
        spec = value.json_schema
        return ResponseFormat(
            type="json_schema",
            name=spec.name,
            schema=spec.schema_,
            strict=spec.strict,
            description=spec.description,
        )
    return ResponseFormat(type=value.type)


def _tool_results_answer_calls(messages: list[Any]) -> None:
    """Every `tool` message answers a call of an earlier assistant message (as OpenAI requires)."""
    called: set[str] = set()
    for index, message in enumerate(messages):
        if isinstance(message, AssistantMessage):
            called.update(call.id for call in message.tool_calls or ())
        elif isinstance(message, ToolMessage) and message.tool_call_id not in called:
            raise ValueError(
                f"messages[{index}] (role `tool`) answers tool call {message.tool_call_id!r}, "
                "which no earlier assistant message made"
            )


# --- chat responses ---------------------------------------------------------------------------------


class ResponseFunctionCall(BaseModel):
    name: str
    arguments: str


class ResponseToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: ResponseFunctionCall


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ResponseToolCall] | None = None


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls"]
    logprobs: None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form: `tool_calls` and token details only when present, `content` always."""
        body = self.model_dump(mode="json")
        for choice in body["choices"]:
            if choice["message"].get("tool_calls") is None:
                choice["message"].pop("tool_calls", None)
        for key in ("prompt_tokens_details", "completion_tokens_details"):
            if body["usage"].get(key) is None:
                body["usage"].pop(key, None)
        return body


# --- embeddings -------------------------------------------------------------------------------------


class EmbeddingsRequest(BaseModel):
    """OpenAI `POST /v1/embeddings` body: `input` is a string, strings, tokens or token arrays."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=64, description="Route alias, e.g. `embed`")]
    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[
            list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)
        ]
        | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=MAX_TOKEN_ARRAY)]
        | Annotated[
            list[
                Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1, max_length=MAX_TOKEN_ARRAY)]
            ],
            Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS),
        ]
    )
    dimensions: Annotated[int | None, Field(ge=1, le=MAX_DIMENSIONS)] = None
    encoding_format: Literal["float", "base64"] = "float"
    user: Annotated[str | None, Field(max_length=256)] = None

    def to_embedding_request(self) -> EmbeddingRequest:
        value: Any = self.input
        inputs: tuple[str | tuple[int, ...], ...]
        if isinstance(value, str):
            inputs = (value,)
        elif isinstance(value[0], int):
            inputs = (tuple(value),)  # one token array
        else:
            inputs = tuple(item if isinstance(item, str) else tuple(item) for item in value)
        return EmbeddingRequest(inputs=inputs, dimensions=self.dimensions, user=self.user)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingsUsage

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- models and errors ------------------------------------------------------------------------------


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "switchboard"
    kind: Literal["chat", "embeddings"] = Field(
        default="chat", description="Switchboard: which endpoint the route serves (extra field)"
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
