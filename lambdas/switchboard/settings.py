"""Every environment variable a handler reads, modelled and checked once at cold start.

Logic never reads `os.environ`; handlers build one of these and pass values down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_T = TypeVar("_T", bound="_EnvModel")


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed: fail the cold start loudly."""


class _EnvModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    @classmethod
    def from_env(cls: type[_T], env: Mapping[str, str] | None = None) -> _T:
        source = dict(os.environ if env is None else env)
        try:
            return cls.model_validate(source)
        except ValidationError as exc:
            raise SettingsError(f"{cls.__name__}: bad environment: {exc}") from exc


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class GatewaySettings(_EnvModel):
    options_table: str = Field(alias="OPTIONS_TABLE")
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")
    appconfig_application: str = Field(alias="APPCONFIG_APPLICATION")
    appconfig_environment: str = Field(alias="APPCONFIG_ENVIRONMENT")
    appconfig_profile: str = Field(alias="APPCONFIG_PROFILE")
    appconfig_agent_url: str = Field(default="http://localhost:2772", alias="APPCONFIG_AGENT_URL")
    circuit_table: str | None = Field(default=None, alias="CIRCUIT_TABLE")
    default_routes: dict[str, dict[str, Any]] = Field(default_factory=dict, alias="DEFAULT_ROUTES")
    payload_bucket: str | None = Field(default=None, alias="PAYLOAD_BUCKET")
    workflow_mode: str = Field(default="sync", alias="WORKFLOW_MODE", pattern="^(sync|poll)$")
    request_budget_ms: int = Field(default=25000, alias="REQUEST_BUDGET_MS", ge=1000, le=300000)
    options_cache_ttl_s: float = Field(default=10.0, alias="OPTIONS_CACHE_TTL_S", ge=0, le=300)
    log_prompts: bool = Field(default=False, alias="LOG_PROMPTS")

    @field_validator("default_routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("log_prompts", mode="before")
    @classmethod
    def _parse_bool(cls, value: Any) -> bool:
        return _truthy(value)


class InvokeSettings(_EnvModel):
    options_table: str = Field(alias="OPTIONS_TABLE")
    circuit_table: str | None = Field(default=None, alias="CIRCUIT_TABLE")
    payload_bucket: str | None = Field(default=None, alias="PAYLOAD_BUCKET")
    provider_override: str | None = Field(default=None, alias="PROVIDER_OVERRIDE")
    options_cache_ttl_s: float = Field(default=10.0, alias="OPTIONS_CACHE_TTL_S", ge=0, le=300)
    log_prompts: bool = Field(default=False, alias="LOG_PROMPTS")

    @field_validator("log_prompts", mode="before")
    @classmethod
    def _parse_bool(cls, value: Any) -> bool:
        return _truthy(value)


class AuthorizerSettings(_EnvModel):
    keys_table: str = Field(alias="KEYS_TABLE")
    api_key_cache_ttl_s: int = Field(default=300, alias="API_KEY_CACHE_TTL_S", ge=0)


class ValidatorSettings(_EnvModel):
    options_table: str = Field(alias="OPTIONS_TABLE")
