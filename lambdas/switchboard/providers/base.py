"""The provider contract shared by Bedrock, SageMaker, OpenAI-compatible endpoints and the mock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from switchboard.options.model import LlmOption

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "content_filter"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """Provider-neutral request; per-call values win over the option's `params` defaults."""

    messages: list[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "user": self.user,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatRequest:
        return cls(
            messages=[ChatMessage(role=m["role"], content=m["content"]) for m in data["messages"]],
            max_tokens=data.get("max_tokens"),
            temperature=data.get("temperature"),
            top_p=data.get("top_p"),
            stop=data.get("stop"),
            user=data.get("user"),
        )


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatResult:
        return cls(
            text=data["text"],
            finish_reason=data["finish_reason"],
            prompt_tokens=int(data["prompt_tokens"]),
            completion_tokens=int(data["completion_tokens"]),
            model=data.get("model", ""),
        )


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
