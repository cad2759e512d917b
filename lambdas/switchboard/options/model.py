"""The LLM option: one catalogue entry naming a provider, a model and how to call it.

Validated on every write (CLI) and every read (an invalid stored item is skipped, never fatal).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OPTION_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
_ARN_SECRET = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")


class ProviderKind(StrEnum):
    BEDROCK = "bedrock"
    SAGEMAKER = "sagemaker"
    OPENAI_COMPATIBLE = "openai_compatible"
    MOCK = "mock"


class OptionStatus(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"
    RETIRED = "retired"


class BreakerPolicy(BaseModel):
    """Circuit-breaker knobs for this option (used by the resilience workflow)."""

    model_config = ConfigDict(extra="forbid")

    failure_threshold: int = Field(default=5, ge=1, le=1000)
    failure_rate: float | None = Field(default=None, gt=0, le=1)
    minimum_calls: int = Field(default=10, ge=1)
    window_s: int = Field(default=60, ge=1, le=3600)
    cooldown_s: int = Field(default=30, ge=1, le=3600)
    max_cooldown_s: int = Field(default=600, ge=1, le=86400)
    half_open_probes: int = Field(default=1, ge=1, le=10)
    slow_call_ms: int | None = Field(default=None, ge=1)


class LlmOption(BaseModel):
    """One catalogue item in the options table."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    id: str = Field(pattern=OPTION_ID_PATTERN)
    provider: ProviderKind
    model: str | None = Field(default=None, min_length=1, max_length=256)
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    endpoint_name: str | None = Field(default=None, min_length=1, max_length=63)
    inference_component: str | None = Field(default=None, min_length=1, max_length=63)
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    secret_arn: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int = Field(default=20000, ge=100, le=300000)
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    status: OptionStatus = OptionStatus.ACTIVE
    description: str | None = Field(default=None, max_length=1024)
    model_package_arn: str | None = None
    replaced_by: str | None = None
    version: int = Field(default=0, ge=0)
    updated_at: str | None = None
    updated_by: str | None = None

    @field_validator("secret_arn")
    @classmethod
    def _secret_is_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ARN_SECRET.match(value):
            raise ValueError("secret_arn must be a Secrets Manager secret ARN (keys never live in the table)")
        return value

    @field_validator("params")
    @classmethod
    def _params_have_no_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if "key" in name.lower() and name not in ("max_tokens_key",):
                raise ValueError(f"params.{name}: credentials belong in Secrets Manager (secret_arn)")
        return value

    @model_validator(mode="after")
    def _provider_fields(self) -> LlmOption:
        kind = self.provider
        if kind is ProviderKind.BEDROCK and not self.model:
            raise ValueError("bedrock options need `model` (a model id or inference-profile id)")
        if kind is ProviderKind.SAGEMAKER and not self.endpoint_name:
            raise ValueError("sagemaker options need `endpoint_name`")
        if kind is ProviderKind.OPENAI_COMPATIBLE and not (self.base_url and self.model):
            raise ValueError("openai_compatible options need `base_url` and `model`")
        if kind is ProviderKind.MOCK:
            rate = self.params.get("error_rate", 0)
            if not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ValueError("mock params.error_rate must be a number in 0..1")
        return self

    def to_item(self) -> dict[str, Any]:
        """JSON-safe dict without unset optionals (what is stored and printed)."""
        return self.model_dump(mode="json", exclude_none=True)
