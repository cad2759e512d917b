"""The LLM option: one catalogue entry naming a provider, a model and how to call it.

Validated on every write (CLI) and every read (an invalid stored item is skipped, never fatal).
Plain dataclasses with hand-written checks rather than pydantic: the `invoke` and `circuit` step
Lambdas run in every request's workflow, and importing pydantic costs them ~0.1 s of cold start.

Build from untrusted data with `from_dict` (unknown and missing keys are reported too); the
constructor and `dataclasses.replace` run the same checks. A failure raises `OptionValidationError`
listing every problem as `loc: message`, never echoing the offending value (it may be a secret).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, ClassVar, TypeVar

from switchboard.options.errors import OptionValidationError

__all__ = [
    "OPTION_ID_PATTERN",
    "BreakerPolicy",
    "Capacity",
    "Feature",
    "LlmOption",
    "OptionStatus",
    "OptionTask",
    "OptionValidationError",
    "Price",
    "ProviderKind",
]

OPTION_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
_ID = re.compile(OPTION_ID_PATTERN)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BASE_URL = re.compile(r"^https?://")
_ARN_SECRET = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_MODEL_PACKAGE_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
"""SageMaker's ``ModelPackageGroupName`` pattern (CreateModelPackageGroup), 1..63 characters."""


class ProviderKind(StrEnum):
    BEDROCK = "bedrock"
    SAGEMAKER = "sagemaker"
    OPENAI_COMPATIBLE = "openai_compatible"
    MOCK = "mock"


class OptionTask(StrEnum):
    """What an option answers: chat completions or embeddings (a route calls options of its kind)."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"


class Feature(StrEnum):
    """What a chat request may need beyond text; an option may declare which it has (`capabilities`)."""

    TOOLS = "tools"
    IMAGES = "images"
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"


class OptionStatus(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"
    RETIRED = "retired"


# --- field checks -------------------------------------------------------------------------------------
#
# A check takes the raw value and returns the value to store, or raises `_Invalid` with a message
# that describes the rule (never the value). Each field names its check in `metadata["check"]`.


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Missing:
    """Stands in for a required key that `from_dict` did not get, so it is reported with the rest."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()

Check = Callable[[Any], Any]


def _bounds(value: float, ge: float | None, gt: float | None, le: float | None) -> None:
    # Written as "must hold" so that NaN fails every bound.
    if ge is not None and not value >= ge:
        raise _Invalid(f"must be ≥ {ge}")
    if gt is not None and not value > gt:
        raise _Invalid(f"must be > {gt}")
    if le is not None and not value <= le:
        raise _Invalid(f"must be ≤ {le}")


def _integer(*, ge: int | None = None, le: int | None = None, optional: bool = False) -> Check:
    """int (never bool); an integral float (5.0, as JSON or DynamoDB may give) becomes an int."""

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid("must be an integer")
        _bounds(value, ge, None, le)
        return value

    return check


def _number(
    *, ge: float | None = None, gt: float | None = None, le: float | None = None, optional: bool = False
) -> Check:
    """int or float (never bool), stored as float."""

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid("must be a number")
        try:
            value = float(value)
        except OverflowError:  # an int too large for a float
            raise _Invalid("must be a number") from None
        _bounds(value, ge, gt, le)
        return value

    return check


def _string(
    *,
    pattern: re.Pattern[str] | None = None,
    fullmatch: bool = False,
    min_length: int | None = None,
    max_length: int | None = None,
    optional: bool = False,
) -> Check:
    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise _Invalid("must be a string")
        if min_length is not None and len(value) < min_length:
            raise _Invalid(f"must be at least {min_length} character(s) long")
        if max_length is not None and len(value) > max_length:
            raise _Invalid(f"must be at most {max_length} characters long")
        if pattern is not None:
            # Anchored patterns must cover the whole string: `$` alone would allow a trailing newline.
            found = pattern.fullmatch(value) if fullmatch else pattern.match(value)
            if found is None:
                raise _Invalid(f"must match {pattern.pattern}")
        return value

    return check


_E = TypeVar("_E", bound=Enum)


def _enum(kind: type[_E]) -> Check:
    allowed = ", ".join(str(member.value) for member in kind)

    def check(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
        raise _Invalid(f"must be one of {allowed}")

    return check


def _secret_arn(value: Any) -> Any:
    value = _string(optional=True)(value)
    if value is not None and not _ARN_SECRET.match(value):
        raise _Invalid("must be a Secrets Manager secret ARN (keys never live in the table)")
    return value


def _params(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _Invalid("must be an object")
    if not all(isinstance(name, str) for name in value):
        raise _Invalid("keys must be strings")
    credentials = [
        f"{name}: credentials belong in Secrets Manager (secret_arn)"
        for name in value
        if "key" in name.lower() and name not in ("max_tokens_key",)
    ]
    if credentials:
        raise OptionValidationError(credentials)  # reported as `params.<name>: ...`
    return dict(value)


def _features(value: Any) -> Any:
    """None (not declared: the provider is asked and says), or a list of `Feature` values."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise _Invalid("must be a list of features")
    allowed = {member.value for member in Feature}
    if not all(isinstance(item, str) and item in allowed for item in value):
        raise _Invalid(f"must list only {', '.join(sorted(allowed))}")
    return tuple(sorted(set(value)))


def _usd_per_million(*, optional: bool = False) -> Check:
    """A list price in USD per million tokens: a finite number ≥ 0 (stored as float).

    Bounded at 1 000 000 (a dollar a token) so that an infinity, or a price typed per token in the
    wrong unit's direction, is refused rather than metered."""
    return _number(ge=0, le=1_000_000, optional=optional)


def _nested(kind: type[_Validated], *, optional: bool = False) -> Check:
    """A nested model given as itself or as an object (its problems come back as `<field>.<name>`)."""

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, kind):
            return value
        if not isinstance(value, Mapping):
            raise _Invalid("must be an object")
        return kind.from_dict(value)

    return check


def _breaker(value: Any) -> Any:
    if isinstance(value, BreakerPolicy):
        return value
    if not isinstance(value, Mapping):
        raise _Invalid("must be an object")
    return BreakerPolicy.from_dict(value)  # its problems are reported as `breaker.<field>: ...`


_CHOICE_PARAMS: Mapping[str, tuple[str, ...]] = {
    "structured_output": ("native", "tool"),  # Bedrock: Converse's outputConfig or a forced tool
    "max_tokens_key": ("max_tokens", "max_completion_tokens"),  # OpenAI-style: the limit's name
    "api": ("tei", "openai"),  # SageMaker embeddings: the container's request shape
}
_FLAG_PARAMS = ("prompt_caching", "strict_tools", "forward_cache_hints", "stream_usage")


def _provider_param_problems(params: Mapping[str, Any]) -> list[str]:
    """The provider params with a fixed meaning, checked on write instead of failing at call time."""
    problems = [
        f"params.{name} must be one of {', '.join(allowed)}"
        for name, allowed in _CHOICE_PARAMS.items()
        if name in params and params[name] not in allowed
    ]
    problems += [
        f"params.{name} must be true or false"
        for name in _FLAG_PARAMS
        if name in params and not isinstance(params[name], bool)
    ]
    dimensions = params.get("dimensions")
    if "dimensions" in params and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        problems.append("params.dimensions must be a positive integer")
    return problems


def _spec(check: Check, **kwargs: Any) -> Any:
    return field(metadata={"check": check}, **kwargs)


# --- shared machinery ----------------------------------------------------------------------------------

_T = TypeVar("_T", bound="_Validated")


def _jsonable(value: Any) -> Any:
    """Enums to their values, tuples to lists, nested models to dicts (as pydantic's mode="json")."""
    if isinstance(value, _Validated):
        return value.to_dict()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class _Validated:
    """Runs every field's check on construction (and so on `dataclasses.replace`)."""

    _required: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        problems: list[str] = []
        for spec in fields(self):
            raw = getattr(self, spec.name)
            if raw is _MISSING:
                problems.append(f"{spec.name}: field required")
                continue
            try:
                value = spec.metadata["check"](raw)
            except _Invalid as exc:
                problems.append(f"{spec.name}: {exc.message}")
                continue
            except OptionValidationError as exc:  # a nested model
                problems.extend(f"{spec.name}.{line}" for line in exc.problems)
                continue
            if value is not raw:
                object.__setattr__(self, spec.name, value)
        if not problems:
            problems = [f"<item>: {message}" for message in self._whole_object_problems()]
        if problems:
            raise OptionValidationError(problems, model=type(self).__name__)

    def _whole_object_problems(self) -> list[str]:
        """Rules across fields; they run only once every field is valid on its own."""
        return []

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Validate untrusted input (a JSON object, a DynamoDB item): unknown keys are refused."""
        if not isinstance(data, Mapping):
            problem = f"<item>: expected an object, got {type(data).__name__}"
            raise OptionValidationError([problem], model=cls.__name__)
        known = {spec.name for spec in fields(cls)}
        unknown = [f"{key}: unknown field" for key in data if key not in known]
        values = {key: value for key, value in data.items() if key in known}
        for name in cls._required:
            values.setdefault(name, _MISSING)
        try:
            built = cls(**values)
        except OptionValidationError as exc:
            raise OptionValidationError(unknown + exc.problems, model=cls.__name__) from None
        if unknown:
            raise OptionValidationError(unknown, model=cls.__name__)
        return built

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-safe (enums as their values, nested models as dicts)."""
        return {spec.name: _jsonable(getattr(self, spec.name)) for spec in fields(self)}

    def to_item(self) -> dict[str, Any]:
        """JSON-safe dict without unset optionals (what is stored and printed)."""
        item: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is None:
                continue
            item[spec.name] = value.to_item() if isinstance(value, _Validated) else _jsonable(value)
        return item


# --- the models ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy(_Validated):
    """Circuit-breaker knobs for this option (used by the resilience workflow)."""

    failure_threshold: int = _spec(_integer(ge=1, le=1000), default=5)
    failure_rate: float | None = _spec(_number(gt=0, le=1, optional=True), default=None)
    minimum_calls: int = _spec(_integer(ge=1), default=10)
    window_s: int = _spec(_integer(ge=1, le=3600), default=60)
    cooldown_s: int = _spec(_integer(ge=1, le=3600), default=30)
    max_cooldown_s: int = _spec(_integer(ge=1, le=86400), default=600)
    half_open_probes: int = _spec(_integer(ge=1, le=10), default=1)
    slow_call_ms: int | None = _spec(_integer(ge=1, optional=True), default=None)


@dataclass(frozen=True, kw_only=True)
class Price(_Validated):
    """List prices in USD per million tokens, what metering charges a request (issue 15).

    `input` prices the prompt tokens not read from a prompt cache, `cached_input` those that were
    (`cached_tokens`); without `cached_input` they cost `input`. Tokens written to a prompt cache
    are priced as `input` (Bedrock bills writes at a premium this model does not carry yet).
    Floats here, as every number of an option; metering turns each into the `Decimal` of its
    shortest repr, the digits the operator wrote, so costs add up without binary drift."""

    _required: ClassVar[tuple[str, ...]] = ("input", "output")

    input: float = _spec(_usd_per_million())
    output: float = _spec(_usd_per_million())
    cached_input: float | None = _spec(_usd_per_million(optional=True), default=None)


@dataclass(frozen=True, kw_only=True)
class Capacity(_Validated):
    """The share of the provider's quota this deployment may use with this option, per minute.

    Either may be left out (that dimension is not limited). Capacity-aware routing (issue 15)
    skips an option whose current minute is used up, without counting a failure on its circuit."""

    rpm: int | None = _spec(_integer(ge=1, optional=True), default=None)
    tpm: int | None = _spec(_integer(ge=1, optional=True), default=None)


@dataclass(frozen=True, kw_only=True)
class LlmOption(_Validated):
    """One catalogue item in the options table."""

    _required: ClassVar[tuple[str, ...]] = ("id", "provider")

    id: str = _spec(_string(pattern=_ID, fullmatch=True))
    provider: ProviderKind = _spec(_enum(ProviderKind))  # noqa: RUF009
    model: str | None = _spec(_string(min_length=1, max_length=256, optional=True), default=None)
    region: str | None = _spec(_string(pattern=_REGION, fullmatch=True, optional=True), default=None)
    endpoint_name: str | None = _spec(_string(min_length=1, max_length=63, optional=True), default=None)
    inference_component: str | None = _spec(_string(min_length=1, max_length=63, optional=True), default=None)
    adapter_family: str | None = _spec(
        _string(pattern=_MODEL_PACKAGE_GROUP, fullmatch=True, optional=True), default=None
    )
    """A tenant adapter family (issue 16): the model package group whose LoRA adapters, one per tenant,
    the model-deployment workflow deploys on this option's base ``inference_component``.

    At request time the caller's tenant's adapter is read from the tenant adapters table
    (:mod:`switchboard.adapter_routing`) and called instead of the base component: the canary
    version for the users in its share, else the live version, else the base component itself.
    One option serves every tenant of the family, so hundreds of adapters need no option (nor flag
    variant, nor alarm) each. SageMaker options only, and only with an ``inference_component``
    (adapters are inference components on top of a base component)."""
    base_url: str | None = _spec(_string(pattern=_BASE_URL, optional=True), default=None)
    secret_arn: str | None = _spec(_secret_arn, default=None)
    params: dict[str, Any] = _spec(_params, default_factory=dict)  # noqa: RUF009
    timeout_ms: int = _spec(_integer(ge=100, le=300000), default=20000)
    breaker: BreakerPolicy = _spec(_breaker, default_factory=BreakerPolicy)  # noqa: RUF009
    price: Price | None = _spec(_nested(Price, optional=True), default=None)  # noqa: RUF009
    """List prices (USD per million tokens); None: metered at no cost (tokens are still counted)."""
    capacity: Capacity | None = _spec(_nested(Capacity, optional=True), default=None)  # noqa: RUF009
    """Requests and tokens per minute this option may take; None: unlimited."""
    status: OptionStatus = _spec(_enum(OptionStatus), default=OptionStatus.ACTIVE)  # noqa: RUF009
    task: OptionTask = _spec(_enum(OptionTask), default=OptionTask.CHAT)  # noqa: RUF009
    capabilities: tuple[str, ...] | None = _spec(_features, default=None)
    """The chat features the option's model has (`Feature`); None: not declared, the provider says.

    A request needing a feature outside a declared list is `unsupported` without a call."""
    description: str | None = _spec(_string(max_length=1024, optional=True), default=None)
    model_package_arn: str | None = _spec(_string(optional=True), default=None)
    replaced_by: str | None = _spec(_string(optional=True), default=None)
    version: int = _spec(_integer(ge=0), default=0)
    updated_at: str | None = _spec(_string(optional=True), default=None)
    updated_by: str | None = _spec(_string(optional=True), default=None)

    def _whole_object_problems(self) -> list[str]:
        problems: list[str] = []
        kind = self.provider
        if kind is ProviderKind.BEDROCK and not self.model:
            problems.append("bedrock options need `model` (a model id or inference-profile id)")
        if kind is ProviderKind.SAGEMAKER and not self.endpoint_name:
            problems.append("sagemaker options need `endpoint_name`")
        if kind is ProviderKind.OPENAI_COMPATIBLE and not (self.base_url and self.model):
            problems.append("openai_compatible options need `base_url` and `model`")
        if self.adapter_family is not None and kind is not ProviderKind.SAGEMAKER:
            problems.append(
                "`adapter_family` is for sagemaker options only (tenant adapters are inference components)"
            )
        elif self.adapter_family is not None and not self.inference_component:
            problems.append(
                "`adapter_family` needs `inference_component`: the base component the family's adapters "
                "are deployed on, which answers tenants without an adapter"
            )
        problems.extend(_provider_param_problems(self.params))
        if kind is ProviderKind.MOCK:
            rate = self.params.get("error_rate", 0)
            if not isinstance(rate, int | float) or not 0 <= rate <= 1:
                problems.append("mock params.error_rate must be a number in 0..1")
        return problems
