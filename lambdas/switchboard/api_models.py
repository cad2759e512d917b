"""The OpenAI-compatible wire shapes (request validated with pydantic; responses as plain models).

`model` in a request names a Switchboard route alias (e.g. `chat`), not a vendor model id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from switchboard.providers.base import ChatMessage, ChatRequest

ROUTE_PATTERN = r"^[a-z][a-zA-Z0-9_-]{0,63}$"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class Message(BaseModel):
    """A chat message; `developer` is OpenAI's newer name for `system` and is treated as one."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _only_text_parts(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, part in enumerate(value):
                if isinstance(part, dict) and part.get("type") not in ("text", None):
                    raise ValueError(
                        f"content part {index} has type {part.get('type')!r}: only text parts are supported"
                    )
        return value

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(BaseModel):
    """OpenAI `POST /v1/chat/completions` body; unknown fields are ignored as OpenAI SDKs send many."""

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
    n: Annotated[int | None, Field(ge=1, le=1)] = Field(default=None, description="Only 1 is supported")

    @model_validator(mode="after")
    def _needs_a_user_turn(self) -> ChatCompletionRequest:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages must contain at least one `user` message")
        return self

    def to_chat_request(self) -> ChatRequest:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return ChatRequest(
            messages=[
                ChatMessage(role="system" if m.role == "developer" else m.role, content=m.text())
                for m in self.messages
            ],
            max_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stop or None,
            user=self.user,
        )


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length", "content_filter"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "switchboard"


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
