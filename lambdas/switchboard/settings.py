"""Every environment variable a handler reads, modelled and checked once at cold start.

Logic never reads `os.environ`; handlers build one of these and pass values down. The names come
from `switchboard.contract.env`, which infra and the local stack build the environments with;
`switchboard.contract.handlers` says which handler loads which of these classes. Plain
dataclasses rather than pydantic: the authorizer needs no pydantic at all, and importing it costs
about 0.1 s of that function's cold start.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from switchboard.contract import env as names

_T = TypeVar("_T", bound="EnvSettings")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed: fail the cold start loudly."""


def env(name: str, parse: Callable[[str], Any] = str, **kwargs: Any) -> Any:
    """A field read from environment variable `name`, converted (and checked) by `parse`."""
    return field(metadata={"env": name, "parse": parse}, **kwargs)


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"expected true or false, got {text!r}")
    return value in _TRUE


def bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return parse


def one_of(pattern: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not re.fullmatch(pattern, text):
            raise ValueError(f"{text!r} does not match {pattern}")
        return text

    return parse


def json_object(text: str) -> dict[str, Any]:
    value = json.loads(text) if text.strip() else {}
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


@dataclass(frozen=True)
class EnvSettings:
    """Base of the settings dataclasses: each field names its variable and parser with `env(...)`."""

    @classmethod
    def env_names(cls) -> dict[str, bool]:
        """The variables this class reads -> whether each is required (has no default)."""
        return {
            item.metadata["env"]: item.default is MISSING and item.default_factory is MISSING
            for item in fields(cls)
        }

    @classmethod
    def from_env(cls: type[_T], environ: Mapping[str, str] | None = None) -> _T:
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for item in fields(cls):
            name = item.metadata["env"]
            if name not in source:
                continue  # the dataclass default applies, or the missing value is reported below
            try:
                values[item.name] = item.metadata["parse"](source[name])
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        try:
            settings = cls(**values)
        except TypeError as exc:  # a required variable without a value
            missing = [
                f.metadata["env"]
                for f in fields(cls)
                if f.name not in values and f.default is MISSING and f.default_factory is MISSING
            ]
            problems.append(f"missing {', '.join(missing)} ({exc})")
            settings = None
        if problems or settings is None:
            raise SettingsError(f"{cls.__name__}: bad environment: {'; '.join(problems)}")
        return settings


@dataclass(frozen=True)
class GatewaySettings(EnvSettings):
    options_table: str = env(names.OPTIONS_TABLE)
    state_machine_arn: str = env(names.STATE_MACHINE_ARN)
    appconfig_application: str = env(names.APPCONFIG_APPLICATION)
    appconfig_environment: str = env(names.APPCONFIG_ENVIRONMENT)
    appconfig_profile: str = env(names.APPCONFIG_PROFILE)
    appconfig_agent_url: str = env(names.APPCONFIG_AGENT_URL, default=names.APPCONFIG_AGENT_URL_DEFAULT)
    appconfig_prompt_profiles: str | None = env(names.APPCONFIG_PROMPT_PROFILES, default=None)
    """Tenant prompt profiles (``switchboard.routing.profile_client``); None: none are applied."""
    circuit_table: str | None = env(names.CIRCUIT_TABLE, default=None)
    usage_table: str | None = env(names.USAGE_TABLE, default=None)
    """Metering (``switchboard.metering``); None: nothing is metered (fail-open, as metering is)."""
    default_routes: dict[str, dict[str, Any]] = env(names.DEFAULT_ROUTES, json_object, default_factory=dict)  # noqa: RUF009
    payload_bucket: str | None = env(names.PAYLOAD_BUCKET, default=None)
    workflow_mode: str = env(names.WORKFLOW_MODE, one_of("sync|poll"), default="sync")
    request_budget_ms: int = env(names.REQUEST_BUDGET_MS, bounded(int, 1000, 300000), default=25000)
    # A stream's whole deadline: API Gateway ends a stream after 15 minutes and the function's
    # timeout is 15 minutes; the option's first-token and idle deadlines end a stall long before.
    stream_budget_ms: int = env(names.STREAM_BUDGET_MS, bounded(int, 1000, 880000), default=840000)
    options_cache_ttl_s: float = env(names.OPTIONS_CACHE_TTL_S, bounded(float, 0, 300), default=10.0)
    options_cache_stale_s: float | None = env(
        names.OPTIONS_CACHE_STALE_S, bounded(float, 0, 900), default=None
    )
    """How long past the TTL the options snapshot is served while it refreshes in the background
    (``OptionsStore``); None: twice the TTL; 0: refreshed synchronously (the local stack)."""
    circuit_cache_stale_s: float | None = env(
        names.CIRCUIT_CACHE_STALE_S, bounded(float, 0, 120), default=None
    )
    """How long past its 2 s cache a circuit snapshot is served on the streaming path while one
    background read refreshes it (``CircuitStore``); None: twice the TTL; 0: read on the path."""
    quota_settings_stale_s: float | None = env(
        names.QUOTA_SETTINGS_STALE_S, bounded(float, 0, 120), default=None
    )
    """How long past its 5 s cache a tenant's quota settings and spend are used while one background
    read refreshes them (``TenantQuotas``); None: twice the TTL; 0: read on the path."""
    log_prompts: bool = env(names.LOG_PROMPTS, boolean, default=False)
    # Streamed requests (switchboard.streaming) call providers and read the answer cache themselves.
    answer_cache_table: str | None = env(names.ANSWER_CACHE_TABLE, default=None)
    provider_override: str | None = env(names.PROVIDER_OVERRIDE, default=None)
    adapters_table: str | None = env(names.ADAPTERS_TABLE, default=None)
    """The tenant adapters table (issue 16), read for options with an adapter family; None: the base."""


@dataclass(frozen=True)
class InvokeSettings(EnvSettings):
    options_table: str = env(names.OPTIONS_TABLE)
    circuit_table: str | None = env(names.CIRCUIT_TABLE, default=None)
    usage_table: str | None = env(names.USAGE_TABLE, default=None)
    """Metering (``switchboard.metering``); None: nothing is metered (fail-open, as metering is)."""
    payload_bucket: str | None = env(names.PAYLOAD_BUCKET, default=None)
    provider_override: str | None = env(names.PROVIDER_OVERRIDE, default=None)
    options_cache_ttl_s: float = env(names.OPTIONS_CACHE_TTL_S, bounded(float, 0, 300), default=10.0)
    options_cache_stale_s: float | None = env(
        names.OPTIONS_CACHE_STALE_S, bounded(float, 0, 900), default=None
    )
    """How long past the TTL the options snapshot is served while it refreshes in the background
    (``OptionsStore``); None: twice the TTL; 0: refreshed synchronously (the local stack)."""
    log_prompts: bool = env(names.LOG_PROMPTS, boolean, default=False)
    adapters_table: str | None = env(names.ADAPTERS_TABLE, default=None)
    """The tenant adapters table (issue 16), read for options with an adapter family; None: the base."""


@dataclass(frozen=True)
class AuthorizerSettings(EnvSettings):
    keys_table: str = env(names.KEYS_TABLE)


@dataclass(frozen=True)
class ValidatorSettings(EnvSettings):
    options_table: str = env(names.OPTIONS_TABLE)
