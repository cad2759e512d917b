"""Typed settings for the stack, read from CDK context in exactly one place.

`cdk.json`'s ``context`` holds the defaults; ``cdk synth -c key=value`` overrides them (values given
with ``-c`` arrive as strings, so every reader here accepts ``"true"``/``"30"`` as well as JSON
types). `python app.py` does not see `cdk.json` by itself: :func:`load_cdk_json_context` reads it
and `app.build_app` passes it to ``App(context=...)`` as defaults that the CLI's context overrides.

This module also reads the two project documents the stack deploys (``config/flags.json`` and
``config/options.json``) and derives the few synth-time facts the infrastructure needs from them
(the last-resort routes, the Bedrock resources the invoke step may call). It does not validate the
documents: the flag validator Lambda and the seed handler do, with the Lambda code's own models.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infra import constants
from switchboard.lifecycle.model import ModelFamily, parse_families
from switchboard.options.model import OPTION_ID_PATTERN

# Context keys (flat, so that `-c key=value` can override each one).
CTX_STACK_NAME = "stack_name"
CTX_REGION = "region"
CTX_DEFAULT_REGION = "default_region"
CTX_DELETION_PROTECTION = "deletion_protection"
CTX_LOG_RETENTION_DAYS = "log_retention_days"
CTX_INCLUDE_EXECUTION_DATA = "include_execution_data"
CTX_LOG_PROMPTS = "log_prompts"
CTX_XRAY_SDK = "xray_sdk"
CTX_THROTTLING = "throttling"
CTX_AUTHORIZER_CACHE_TTL_S = "authorizer_cache_ttl_s"
CTX_API_STAGE_NAME = "api_stage_name"
CTX_WAF_ENABLED = "waf_enabled"
CTX_APPCONFIG_APPLICATION = "appconfig_application"
CTX_APPCONFIG_ENVIRONMENT = "appconfig_environment"
CTX_APPCONFIG_PROFILE = "appconfig_profile"
CTX_FLAGS_ROLLOUT = "flags_rollout"
CTX_GATEWAY_ERRORS_ALARM_THRESHOLD = "gateway_errors_alarm_threshold"
CTX_MODEL_FAMILIES = "model_families"
CTX_SLOS = "slos"
CTX_REPLICATE_IMAGES = "replicate_images"

DEFAULTS: Mapping[str, Any] = {
    CTX_STACK_NAME: "Switchboard",
    CTX_DEFAULT_REGION: "us-east-1",
    CTX_DELETION_PROTECTION: True,
    CTX_LOG_RETENTION_DAYS: 30,
    CTX_INCLUDE_EXECUTION_DATA: False,
    CTX_LOG_PROMPTS: False,
    CTX_THROTTLING: {
        "standard": {"rate_limit": 10, "burst_limit": 20, "quota_per_day": 20000},
        "premium": {"rate_limit": 50, "burst_limit": 100, "quota_per_day": None},
    },
    CTX_AUTHORIZER_CACHE_TTL_S: 60,
    CTX_API_STAGE_NAME: "prod",
    CTX_WAF_ENABLED: True,
    CTX_APPCONFIG_ENVIRONMENT: "prod",
    CTX_APPCONFIG_PROFILE: "routing",
    CTX_FLAGS_ROLLOUT: {"growth_factor": 25, "deployment_minutes": 4, "final_bake_minutes": 2},
    CTX_GATEWAY_ERRORS_ALARM_THRESHOLD: 5,
    CTX_SLOS: {
        "window_days": 30,
        "default": {"availability": 99.9, "latency": {"percentile": 99, "threshold_ms": 8000}},
        "routes": {},
    },
}


class ConfigError(ValueError):
    """A context value is missing or malformed: synthesis stops with this message."""


@dataclass(frozen=True, slots=True)
class TierThrottle:
    """One usage plan's limits: steady requests per second, burst, optional daily quota."""

    rate_limit: float
    burst_limit: int
    quota_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class FlagsRollout:
    """The custom LINEAR AppConfig deployment strategy for the routing flags."""

    growth_factor: float
    deployment_minutes: int
    final_bake_minutes: int


OWN_IMAGE_REPOSITORY_PREFIX = "switchboard-"
"""The account's own inference images live in ECR repositories named ``switchboard-*``: the only ones
the SageMaker execution role may pull (``infra/constructs/model_registry.py``) and the deployment
tasks may look up in the rollout regions (``infra/constructs/regional_models.py``)."""
ECR_REPLICATION_MAX_DESTINATIONS = 25
ECR_REPLICATION_MAX_FILTERS = 100


@dataclass(frozen=True, slots=True)
class ImageReplication:
    """`replicate_images` (opt-in): ECR cross-region replication of the account's own inference images
    from the stack's region to every other region a model family lists.

    ECR has **one replication configuration per registry** (account and region): the stack's
    ``AWS::ECR::ReplicationConfiguration`` replaces whatever replication the home region's registry had
    (another team's rules included), which is why it is never on by default.
    """

    repository_prefixes: tuple[str, ...]
    """ECR ``PREFIX_MATCH`` filters; each starts with :data:`OWN_IMAGE_REPOSITORY_PREFIX`."""


@dataclass(frozen=True, slots=True)
class LatencyObjective:
    """``percentile`` % of a route's valid requests answer within ``threshold_ms`` (e.g. p99 ≤ 8000 ms)."""

    percentile: float
    threshold_ms: int

    @property
    def budget(self) -> float:
        """The share of requests that may be slower than the threshold (0.01 for p99)."""
        return round(1 - self.percentile / 100, 10)


@dataclass(frozen=True, slots=True)
class RouteSlo:
    """One route's objectives over the SLO window."""

    availability: float
    """Percent of valid requests that must not be bad answers (e.g. 99.9)."""
    latency: LatencyObjective

    @property
    def availability_budget(self) -> float:
        """The share of requests that may be bad answers (0.001 for 99.9)."""
        return round(1 - self.availability / 100, 10)


@dataclass(frozen=True, slots=True)
class BurnRateWindow:
    """One row of the multi-window, multi-burn-rate table: alarm when both windows burn this fast.

    The burn rate is derived from the share of the window's error budget the long window may
    consume: ``budget_consumed x slo_window / long_window`` (2 % in 1 h of 30 days = 14.4x).
    """

    severity: str
    """``page`` (wake someone) or ``ticket`` (next working day)."""
    long_minutes: int
    short_minutes: int
    budget_consumed: float

    def burn_rate(self, window_days: int) -> float:
        return round(self.budget_consumed * window_days * 24 * 60 / self.long_minutes, 6)


PAGE = "page"
TICKET = "ticket"
BURN_RATE_WINDOWS: tuple[BurnRateWindow, ...] = (
    # Google SRE workbook, chapter 5 "Alerting on SLOs", section 6 "Multiwindow, Multi-Burn-Rate
    # Alerts", table 5-8 (recommended parameters for a 99.9 % SLO over 30 days): page at 2 % of the
    # budget in 1 h (short window 5 min, 14.4x) and 5 % in 6 h (30 min, 6x); ticket at 10 % in 3 days
    # (6 h, 1x). https://sre.google/workbook/alerting-on-slos/
    BurnRateWindow(PAGE, 60, 5, 0.02),
    BurnRateWindow(PAGE, 6 * 60, 30, 0.05),
    # Not a row of table 5-8 (its rows are the 1 h, 6 h and 3-day pairs): an extra ticket pair the SLO
    # brief of issue 15 asks for, 10 % of the budget in 1 day with a 2 h short window (3x), so a
    # burn too slow to page is ticketed within a day rather than three.
    BurnRateWindow(TICKET, 24 * 60, 2 * 60, 0.10),
    BurnRateWindow(TICKET, 3 * 24 * 60, 6 * 60, 0.10),
)


@dataclass(frozen=True, slots=True)
class SloConfig:
    """Per-route SLOs (context ``slos``): a default for every route plus per-route overrides."""

    window_days: int
    default: RouteSlo
    routes: Mapping[str, RouteSlo]

    def for_routes(self, known_routes: list[str] | tuple[str, ...]) -> dict[str, RouteSlo]:
        """Every known route's SLO (its own, else the default); a configured route that the routing
        document does not have is refused (a typo would otherwise leave the real route on the
        default silently)."""
        unknown = sorted(set(self.routes) - set(known_routes))
        if unknown:
            raise ConfigError(
                f"context '{CTX_SLOS}.routes' names routes that config/flags.json does not have: "
                f"{', '.join(unknown)} (known routes: {', '.join(sorted(known_routes))})"
            )
        return {route: self.routes.get(route, self.default) for route in sorted(known_routes)}


@dataclass(frozen=True, slots=True)
class SwitchboardConfig:
    """Everything the stack reads from context, typed and checked once."""

    stack_name: str
    region: str
    deletion_protection: bool
    log_retention_days: int
    include_execution_data: bool
    log_prompts: bool
    xray_sdk: bool
    throttling: Mapping[str, TierThrottle]
    authorizer_cache_ttl_s: int
    api_stage_name: str
    waf_enabled: bool
    appconfig_application: str
    appconfig_environment: str
    appconfig_profile: str
    flags_rollout: FlagsRollout
    gateway_errors_alarm_threshold: int
    slos: SloConfig = field(
        default_factory=lambda: _slos(DEFAULTS[CTX_SLOS])  # the defaults are valid: see tests
    )
    """Per-route availability and latency objectives (the burn-rate alarms and budget widgets)."""
    model_families: tuple[ModelFamily, ...] = ()
    """The model lifecycle's families (none: no lifecycle resources), checked with the model the
    lifecycle Lambdas parse them with."""
    replicate_images: ImageReplication | None = None
    """Opt-in ECR replication to the families' other regions (None: off, the default)."""

    @property
    def gateway_function_name(self) -> str:
        """A literal name, so the AppConfig alarm can name the function without a reference cycle."""
        return f"{self.stack_name}-gateway"

    @classmethod
    def from_context(cls, get: Any, *, environ: Mapping[str, str] | None = None) -> SwitchboardConfig:
        """Build from a context getter (``node.try_get_context``) with :data:`DEFAULTS` underneath.

        Region: ``-c region=…`` first, then ``CDK_DEFAULT_REGION`` (the CLI sets it from the AWS
        profile), then ``default_region`` from `cdk.json`. It must be concrete: the per-region layer
        ARNs are chosen at synth time.
        """
        env = os.environ if environ is None else environ

        def value(key: str) -> Any:
            found = get(key)
            return DEFAULTS.get(key) if found is None else found

        stack_name = _str(value(CTX_STACK_NAME), CTX_STACK_NAME)
        region = (
            _opt_str(get(CTX_REGION))
            or env.get("CDK_DEFAULT_REGION")
            or _str(value(CTX_DEFAULT_REGION), CTX_DEFAULT_REGION)
        )
        throttling_raw = _mapping(value(CTX_THROTTLING), CTX_THROTTLING)
        throttling = {tier: _tier(throttling_raw.get(tier), tier) for tier in constants.TIERS}
        rollout_raw = _mapping(value(CTX_FLAGS_ROLLOUT), CTX_FLAGS_ROLLOUT)
        rollout = FlagsRollout(
            growth_factor=_number(rollout_raw.get("growth_factor"), "flags_rollout.growth_factor", 1, 100),
            deployment_minutes=_int(
                rollout_raw.get("deployment_minutes"), "flags_rollout.deployment_minutes", 0
            ),
            final_bake_minutes=_int(
                rollout_raw.get("final_bake_minutes"), "flags_rollout.final_bake_minutes", 0
            ),
        )
        families = _model_families(get(CTX_MODEL_FAMILIES), region)
        return cls(
            stack_name=stack_name,
            region=region,
            deletion_protection=_bool(value(CTX_DELETION_PROTECTION), CTX_DELETION_PROTECTION),
            log_retention_days=_int(value(CTX_LOG_RETENTION_DAYS), CTX_LOG_RETENTION_DAYS, 1),
            include_execution_data=_bool(value(CTX_INCLUDE_EXECUTION_DATA), CTX_INCLUDE_EXECUTION_DATA),
            log_prompts=_bool(value(CTX_LOG_PROMPTS), CTX_LOG_PROMPTS),
            xray_sdk=_bool(value(CTX_XRAY_SDK), CTX_XRAY_SDK),
            throttling=throttling,
            authorizer_cache_ttl_s=_int(
                value(CTX_AUTHORIZER_CACHE_TTL_S), CTX_AUTHORIZER_CACHE_TTL_S, 0, 3600
            ),
            api_stage_name=_str(value(CTX_API_STAGE_NAME), CTX_API_STAGE_NAME),
            waf_enabled=_bool(value(CTX_WAF_ENABLED), CTX_WAF_ENABLED),
            appconfig_application=_opt_str(get(CTX_APPCONFIG_APPLICATION)) or stack_name,
            appconfig_environment=_str(value(CTX_APPCONFIG_ENVIRONMENT), CTX_APPCONFIG_ENVIRONMENT),
            appconfig_profile=_str(value(CTX_APPCONFIG_PROFILE), CTX_APPCONFIG_PROFILE),
            flags_rollout=rollout,
            gateway_errors_alarm_threshold=_int(
                value(CTX_GATEWAY_ERRORS_ALARM_THRESHOLD), CTX_GATEWAY_ERRORS_ALARM_THRESHOLD, 1
            ),
            slos=_slos(value(CTX_SLOS)),
            model_families=families,
            replicate_images=_replicate_images(get(CTX_REPLICATE_IMAGES), families, region),
        )


def load_cdk_json_context(path: Path = constants.CDK_JSON) -> dict[str, Any]:
    """The ``context`` object of `cdk.json` (feature flags included), or ``{}`` without the file."""
    if not path.exists():
        return {}
    document = json.loads(path.read_text())
    context = document.get("context", {})
    if not isinstance(context, dict):
        raise ConfigError(f"{path}: 'context' must be an object")
    return context


# --------------------------------------------------------------------------------------------------
# The deployed documents


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def default_routes(flags_document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Route → attribute values of its default variant: the gateway's last-resort routing.

    The default variant of a multi-variant flag is the one without a rule (AppConfig requires it
    to be last). A flag without ``_variants`` contributes its own attribute values. Disabled
    defaults are left out: with the extension silent, the gateway must not invent a route that the
    document turns off.
    """
    values = flags_document.get("values", {})
    if not isinstance(values, Mapping):
        raise ConfigError("flags document: 'values' must be an object")
    routes: dict[str, dict[str, Any]] = {}
    for name, flag_value in values.items():
        if not isinstance(flag_value, Mapping):
            raise ConfigError(f"flags document: values.{name} must be an object")
        variants = flag_value.get("_variants")
        if variants is None:
            candidate: Mapping[str, Any] = flag_value
            attributes = {k: v for k, v in flag_value.items() if k != "enabled"}
        else:
            defaults = [v for v in variants if isinstance(v, Mapping) and "rule" not in v]
            if not defaults:
                raise ConfigError(
                    f"flags document: values.{name} has no default variant (one without a rule)"
                )
            candidate = defaults[-1]
            attributes = dict(candidate.get("attributeValues", {}))
        if candidate.get("enabled", True) is not True or "chain" not in attributes:
            continue
        routes[name] = attributes
    return routes


def route_names(flags_document: Mapping[str, Any]) -> list[str]:
    """Every flag that is a route: a chain in any variant (or in the plain flag), enabled or not.

    Wider than :func:`default_routes`: a route whose default variant is off still serves the
    callers its rules match, so it has an SLO too.
    """
    values = flags_document.get("values", {})
    if not isinstance(values, Mapping):
        raise ConfigError("flags document: 'values' must be an object")
    names = []
    for name, flag_value in values.items():
        if not isinstance(flag_value, Mapping):
            raise ConfigError(f"flags document: values.{name} must be an object")
        variants = flag_value.get("_variants")
        if variants is None:
            has_chain = "chain" in flag_value
        else:
            has_chain = any(
                isinstance(v, Mapping) and "chain" in v.get("attributeValues", {}) for v in variants
            )
        if has_chain:
            names.append(str(name))
    return sorted(names)


@dataclass(frozen=True, slots=True)
class BedrockTarget:
    """One Bedrock model an option names, split into what IAM needs."""

    option_id: str
    region: str
    model_id: str
    inference_profile_id: str | None
    """The option's id when it is a cross-region inference profile (``us.…``), else None."""
    foundation_model_id: str
    """The model id without the inference-profile geography prefix."""


BEDROCK_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")


def bedrock_targets(options: list[Mapping[str, Any]], *, default_region: str) -> list[BedrockTarget]:
    """The Bedrock options of a seed document, for least-privilege ``bedrock:InvokeModel``."""
    targets: list[BedrockTarget] = []
    for option in options:
        if option.get("provider") != "bedrock":
            continue
        model = option.get("model")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"options document: bedrock option {option.get('id')!r} has no model")
        prefix = next((p for p in BEDROCK_PROFILE_PREFIXES if model.startswith(p)), None)
        targets.append(
            BedrockTarget(
                option_id=str(option.get("id")),
                region=str(option.get("region") or default_region),
                model_id=model,
                inference_profile_id=model if prefix else None,
                foundation_model_id=model[len(prefix) :] if prefix else model,
            )
        )
    return targets


# --------------------------------------------------------------------------------------------------
# Coercion of context values (which may be strings when given with -c)


def _str(raw: Any, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"context '{key}' must be a non-empty string, got {raw!r}")
    return raw.strip()


def _opt_str(raw: Any) -> str | None:
    return raw.strip() if isinstance(raw, str) and raw.strip() else None


def _bool(raw: Any, key: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ConfigError(f"context '{key}' must be true or false, got {raw!r}")


def _number(raw: Any, key: str, low: float | None = None, high: float | None = None) -> float:
    try:
        number = float(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"context '{key}' must be a number, got {raw!r}") from exc
    if isinstance(raw, bool) or (low is not None and number < low) or (high is not None and number > high):
        raise ConfigError(f"context '{key}' must be a number in [{low}, {high}], got {raw!r}")
    return number


def _int(raw: Any, key: str, low: int | None = None, high: int | None = None) -> int:
    number = _number(raw, key, low, high)
    if number != int(number):
        raise ConfigError(f"context '{key}' must be a whole number, got {raw!r}")
    return int(number)


def _mapping(raw: Any, key: str) -> Mapping[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"context '{key}' must be a JSON object, got {raw!r}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context '{key}' must be an object, got {raw!r}")
    return raw


def _model_families(raw: Any, region: str) -> tuple[ModelFamily, ...]:
    """`model_families`: a list of family objects (a JSON string with ``-c``), strictly checked.

    The strict model is the Lambdas' own (``switchboard.lifecycle.model.ModelFamily``): an unknown
    key (a typo), a name SageMaker would refuse, a repeated group, an unknown or repeated region
    fails synthesis, not the first approval. A family's ``regions`` must include the stack's own
    ``region``: the registry, the deployment workflow and the options table live there.
    """
    try:
        families = tuple(parse_families(raw).values())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"context '{CTX_MODEL_FAMILIES}': {problems}") from exc
    except ValueError as exc:  # not a list, a group twice, or -c text that is not JSON
        raise ConfigError(f"context '{CTX_MODEL_FAMILIES}': {exc}") from exc
    for family in families:
        if family.regions and region not in family.regions:
            raise ConfigError(
                f"context '{CTX_MODEL_FAMILIES}': family {family.group} lists regions "
                f"{', '.join(family.regions)} but not the stack's region {region}: the model registry, "
                "the deployment workflow and the options table live in the stack's region, so list it "
                "(first, to canary there)"
            )
        for other in family.regions:
            regional = family.regional_option_id(other, region)
            if not re.fullmatch(OPTION_ID_PATTERN, regional):
                raise ConfigError(
                    f"context '{CTX_MODEL_FAMILIES}': family {family.group}: the option id for "
                    f"{other} ({regional!r}) is not a valid option id; shorten option_id"
                )
    return families


def _replicate_images(raw: Any, families: tuple[ModelFamily, ...], region: str) -> ImageReplication | None:
    """`replicate_images`: absent, null or false is off; else ``{"repository_prefixes": [...]}``.

    Refused: unknown keys, no prefix, a prefix that is not the start of an ECR repository name or
    does not start with ``switchboard-`` (other repositories' images could not be pulled by the
    execution role anyway), too many filters, and replication with no family listing another region
    (it would only replace the registry's replication configuration for nothing).
    """
    if raw is None or raw is False or (isinstance(raw, str) and raw.strip().lower() in ("", "false", "null")):
        return None
    key = CTX_REPLICATE_IMAGES
    data = _mapping(raw, key)
    _known_keys(data, {"repository_prefixes"}, key)
    prefixes = data.get("repository_prefixes")
    if not isinstance(prefixes, list) or not prefixes:
        raise ConfigError(f"context '{key}.repository_prefixes' must be a non-empty list of strings")
    if len(prefixes) > ECR_REPLICATION_MAX_FILTERS:
        raise ConfigError(
            f"context '{key}.repository_prefixes': ECR takes at most {ECR_REPLICATION_MAX_FILTERS}"
        )
    for prefix in prefixes:
        if (
            not isinstance(prefix, str)
            or not re.fullmatch(r"[a-z0-9][a-z0-9._/-]{1,255}", prefix)
            or not prefix.startswith(OWN_IMAGE_REPOSITORY_PREFIX)
        ):
            raise ConfigError(
                f"context '{key}.repository_prefixes': {prefix!r} must be the start of an ECR repository "
                f"name (lower case, digits, . _ / -) beginning with {OWN_IMAGE_REPOSITORY_PREFIX!r}: the "
                "SageMaker execution role pulls only the account's switchboard-* repositories"
            )
    if len(set(prefixes)) != len(prefixes):
        raise ConfigError(f"context '{key}.repository_prefixes' lists a prefix twice")
    others = sorted({other for family in families for other in family.extra_regions(region)})
    if not others:
        raise ConfigError(
            f"context '{key}' is set but no model family lists a region besides {region}: there is "
            "nothing to replicate to (and the registry's replication configuration would be replaced)"
        )
    if len(others) > ECR_REPLICATION_MAX_DESTINATIONS:
        raise ConfigError(
            f"context '{key}': ECR replicates to at most {ECR_REPLICATION_MAX_DESTINATIONS} destinations "
            f"per rule; the families list {len(others)} other regions"
        )
    return ImageReplication(repository_prefixes=tuple(prefixes))


def _tier(raw: Any, tier: str) -> TierThrottle:
    key = f"{CTX_THROTTLING}.{tier}"
    data = _mapping(raw, key)
    quota = data.get("quota_per_day")
    return TierThrottle(
        rate_limit=_number(data.get("rate_limit"), f"{key}.rate_limit", 0),
        burst_limit=_int(data.get("burst_limit"), f"{key}.burst_limit", 0),
        quota_per_day=None if quota is None else _int(quota, f"{key}.quota_per_day", 1),
    )


# --------------------------------------------------------------------------------------------------
# SLOs (context `slos`)

SLO_WINDOW_DAYS_RANGE = (7, 90)
"""CloudWatch keeps 5-minute data for 63 days and 1-hour data for 455 days: the budget-left widget
over up to 90 days still reads hourly sums."""
MAX_LATENCY_THRESHOLD_MS = 15 * 60 * 1000  # a stream lasts at most 15 minutes (API Gateway)
_SLO_KEYS = {"window_days", "default", "routes"}
_ROUTE_SLO_KEYS = {"availability", "latency"}
_LATENCY_KEYS = {"percentile", "threshold_ms"}


def _slos(raw: Any) -> SloConfig:
    """`slos`: ``{"window_days", "default": {...}, "routes": {route: {...}}}``, strictly checked.

    A route's entry may leave out ``availability`` or ``latency`` (or one latency field): the
    default's value applies. Unknown keys are refused (a misspelt key would silently keep the
    default).
    """
    data = _mapping(raw, CTX_SLOS)
    _known_keys(data, _SLO_KEYS, CTX_SLOS)
    low, high = SLO_WINDOW_DAYS_RANGE
    window_days = _int(data.get("window_days", 30), f"{CTX_SLOS}.window_days", low, high)
    if "default" not in data:
        raise ConfigError(f"context '{CTX_SLOS}.default' is required (the SLO of every route not listed)")
    default = _route_slo(data["default"], None, f"{CTX_SLOS}.default", window_days)
    routes_raw = _mapping(data.get("routes", {}), f"{CTX_SLOS}.routes")
    routes = {
        str(route): _route_slo(entry, default, f"{CTX_SLOS}.routes.{route}", window_days)
        for route, entry in routes_raw.items()
    }
    return SloConfig(window_days=window_days, default=default, routes=routes)


def _route_slo(raw: Any, base: RouteSlo | None, key: str, window_days: int) -> RouteSlo:
    data = _mapping(raw, key)
    _known_keys(data, _ROUTE_SLO_KEYS, key)
    if base is None and not set(data) >= _ROUTE_SLO_KEYS:
        raise ConfigError(f"context '{key}' must set both 'availability' and 'latency'")
    availability = (
        _objective_percent(data["availability"], f"{key}.availability", window_days)
        if "availability" in data
        else base.availability  # type: ignore[union-attr]  # base is set: checked above
    )
    latency_raw = _mapping(data.get("latency", {}), f"{key}.latency")
    _known_keys(latency_raw, _LATENCY_KEYS, f"{key}.latency")
    if base is None and not set(latency_raw) >= _LATENCY_KEYS:
        raise ConfigError(f"context '{key}.latency' must set 'percentile' and 'threshold_ms'")
    percentile = (
        _objective_percent(latency_raw["percentile"], f"{key}.latency.percentile", window_days)
        if "percentile" in latency_raw
        else base.latency.percentile  # type: ignore[union-attr]
    )
    threshold_ms = (
        _int(latency_raw["threshold_ms"], f"{key}.latency.threshold_ms", 1, MAX_LATENCY_THRESHOLD_MS)
        if "threshold_ms" in latency_raw
        else base.latency.threshold_ms  # type: ignore[union-attr]
    )
    return RouteSlo(availability=availability, latency=LatencyObjective(percentile, threshold_ms))


def _objective_percent(raw: Any, key: str, window_days: int) -> float:
    """An objective in percent, below 100 and high enough that every burn-rate alarm can fire.

    A burn rate ``b`` alarms at an error ratio of ``b x budget``; above 100 % it can never be reached,
    so an objective whose budget makes the fastest page impossible is refused, not deployed mute.
    """
    objective = _number(raw, key, 0, 100)
    budget = 1 - objective / 100
    if budget <= 0:
        raise ConfigError(f"context '{key}' must be below 100 (100 % leaves no error budget), got {raw!r}")
    fastest = max(window.burn_rate(window_days) for window in BURN_RATE_WINDOWS)
    lowest = 100 * (1 - 1 / fastest)
    if fastest * budget > 1:
        raise ConfigError(
            f"context '{key}' = {objective:g} leaves a {100 * budget:g} % error budget: the {fastest:g}x "
            f"fast-burn page would need more than 100 % bad requests and could never fire; "
            f"use at least {lowest:.2f}"
        )
    return objective


def _known_keys(data: Mapping[str, Any], allowed: set[str], key: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(
            f"context '{key}' has unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
