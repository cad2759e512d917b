"""Tenant prompt profiles: per-tenant settings the gateway applies to every chat request.

The profiles live in one AppConfig *freeform* JSON document (``config/profiles.json``, deployed as
the ``prompt-profiles`` configuration profile, read through the AppConfig extension by
:mod:`switchboard.routing.profile_client`)::

    {
      "version": "1",
      "default": {},
      "tenants": {
        "acme": {
          "system_prompt_prefix": "You are Acme's support assistant.",
          "defaults": {"temperature": 0.2, "max_tokens": 1024},
          "routes": ["chat", "embed"]
        }
      }
    }

A profile has three optional parts: ``system_prompt_prefix`` (prepended to the system prompt),
``defaults`` (request parameters used where the client sent none) and ``routes`` (the routes the
tenant may call; absent: every route; ``[]``: none). ``default`` is the profile of every tenant not
listed. A tenant's profile replaces the default whole (nothing is inherited), so what a tenant
gets is read in one place.

The document is hostile until checked: :func:`document_problems` lists every problem (unknown
keys, a tenant id the keys table could never hold, an over-long or non-text prefix, an unknown
parameter or one outside the range the API accepts from a client), with the JSON path of each.
The same checks run in the profile's Lambda validator (``handlers/profiles_validator.py``, before
AppConfig deploys a version), in the local agent emulator (before it serves a changed file) and
in the gateway's reader (on every new answer of the extension), so a document one of them refuses
never reaches a request.

Stdlib only (plus the provider-neutral request types): the validator imports it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from switchboard.keys import TENANT_PATTERN
from switchboard.providers.base import ChatMessage, ChatRequest, TextPart

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_PREFIX_CHARS",
    "PARAMETER_RANGES",
    "PERMISSIVE",
    "ParameterDefaults",
    "ProfileDocumentError",
    "PromptProfile",
    "TenantProfiles",
    "apply_profile",
    "document_problems",
    "parse_document",
    "parse_document_bytes",
]

DOCUMENT_VERSION: Final = "1"
MAX_PREFIX_CHARS: Final = 4000
"""A prefix rides on every request of the tenant (tokens and latency): a few paragraphs at most."""
MAX_TENANTS: Final = 5000
MAX_ROUTES: Final = 64
MAX_STOP_SEQUENCES: Final = 4
MAX_STOP_CHARS: Final = 256
MAX_DOCUMENT_BYTES: Final = 2 * 1024 * 1024
"""AppConfig's hosted configuration store holds up to 2 MB per version by default."""
MAX_PROBLEMS: Final = 50

ROUTE_NAME: Final = re.compile(r"^[a-z][a-zA-Z0-9_-]{0,63}$")
"""A route alias as the API accepts it (``api_models.ROUTE_PATTERN``; a unit test keeps them equal)."""

PARAMETER_RANGES: Final[Mapping[str, tuple[type, float, float]]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "max_tokens": (int, 1, 200_000),
}
"""Numeric defaults -> (kind, minimum, maximum): the ranges ``ChatCompletionRequest`` accepts from
a client, so a default is never something a client could not have sent (a unit test compares)."""

_DOCUMENT_KEYS: Final = frozenset({"version", "default", "tenants"})
_PROFILE_KEYS: Final = frozenset({"system_prompt_prefix", "defaults", "routes"})
_DEFAULT_KEYS: Final = frozenset({*PARAMETER_RANGES, "stop"})
# C0 controls other than tab, newline and carriage return, and DEL: never meant in a prompt.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PREFIX_SEPARATOR: Final = "\n\n"


class ProfileDocumentError(ValueError):
    """The document is refused; :attr:`problems` lists every reason (each with its JSON path)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_PROBLEMS]
        more = f"; and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__("; ".join(shown) + more)


@dataclass(frozen=True)
class ParameterDefaults:
    """Request parameters used where the client left the field unset (None: no default)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PromptProfile:
    """One tenant's settings. ``routes`` None: every route; an empty set: none."""

    system_prompt_prefix: str = ""
    defaults: ParameterDefaults = field(default_factory=ParameterDefaults)
    routes: frozenset[str] | None = None

    def may_use(self, route: str) -> bool:
        """Whether the tenant may call ``route`` (the route alias a request names as `model`)."""
        return self.routes is None or route in self.routes


@dataclass(frozen=True)
class TenantProfiles:
    """A checked document: the default profile and the tenants' own."""

    default: PromptProfile = field(default_factory=PromptProfile)
    tenants: Mapping[str, PromptProfile] = field(default_factory=dict)

    def for_tenant(self, tenant: str) -> PromptProfile:
        return self.tenants.get(tenant, self.default)


PERMISSIVE: Final = TenantProfiles()
"""No prefix, no defaults, every route: requests pass as the client sent them."""


# --- applying a profile ----------------------------------------------------------------------------


def apply_profile(profile: PromptProfile, request: ChatRequest) -> ChatRequest:
    """``request`` with the profile applied; the client's own values always win.

    - The prefix goes first in the system prompt: into the first message when that is a system
      message (text: prefix, a blank line, the client's text; parts: a text part in front, the
      client's parts and their cache hints unchanged), else as a new system message in front.
    - Each default fills a field only where the request left it unset (None); a value the client
      sent, even one equal to a default or falsy, is kept.

    Pure: the request is not changed (it is frozen); without anything to apply it is returned as is.
    """
    changes: dict[str, Any] = {}
    defaults = profile.defaults
    for name in ("temperature", "top_p", "max_tokens"):
        value = getattr(defaults, name)
        if value is not None and getattr(request, name) is None:
            changes[name] = value
    if defaults.stop is not None and request.stop is None:
        changes["stop"] = list(defaults.stop)
    if profile.system_prompt_prefix:
        changes["messages"] = _prefixed(profile.system_prompt_prefix, request.messages)
    return replace(request, **changes) if changes else request


def _prefixed(prefix: str, messages: list[ChatMessage]) -> list[ChatMessage]:
    first = messages[0] if messages else None
    if first is None or first.role != "system":
        return [ChatMessage(role="system", content=prefix), *messages]
    content: str | tuple[Any, ...]
    if isinstance(first.content, str):
        content = f"{prefix}{PREFIX_SEPARATOR}{first.content}" if first.content else prefix
    else:
        content = (TextPart(prefix + PREFIX_SEPARATOR), *first.content) if first.content else prefix
    return [replace(first, content=content), *messages[1:]]


# --- checking and parsing a document ---------------------------------------------------------------


def parse_document_bytes(raw: bytes) -> TenantProfiles:
    """Bytes as AppConfig stores them -> the checked profiles, or :class:`ProfileDocumentError`.

    Beyond :func:`document_problems`: the size bound, UTF-8, JSON, and no key given twice in one
    object (``json.loads`` would keep the last silently: a tenant listed twice is a mistake).
    """
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ProfileDocumentError([f"document is {len(raw)} bytes; at most {MAX_DOCUMENT_BYTES}"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileDocumentError([f"document is not UTF-8: {exc}"]) from exc
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(f"key {key!r} appears twice in one object")
            seen[key] = value
        return seen

    try:
        document = json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError) as exc:
        raise ProfileDocumentError([f"document is not JSON: {type(exc).__name__}: {exc}"[:300]]) from exc
    if duplicates:
        raise ProfileDocumentError(duplicates)
    return parse_document(document)


def parse_document(document: Any) -> TenantProfiles:
    """A decoded JSON value -> the checked profiles, or :class:`ProfileDocumentError`."""
    problems = document_problems(document)
    if problems:
        raise ProfileDocumentError(problems)
    tenants = document.get("tenants", {})
    return TenantProfiles(
        default=_profile(document["default"]),
        tenants={tenant: _profile(body) for tenant, body in tenants.items()},
    )


def _profile(body: Mapping[str, Any]) -> PromptProfile:
    defaults = body.get("defaults", {})
    stop = defaults.get("stop")
    routes = body.get("routes")
    return PromptProfile(
        system_prompt_prefix=body.get("system_prompt_prefix", ""),
        defaults=ParameterDefaults(
            temperature=_number(defaults.get("temperature"), float),
            top_p=_number(defaults.get("top_p"), float),
            max_tokens=_number(defaults.get("max_tokens"), int),
            stop=tuple(stop) if stop is not None else None,
        ),
        routes=frozenset(routes) if routes is not None else None,
    )


def _number(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def document_problems(document: Any) -> list[str]:
    """Every reason to refuse ``document`` (a decoded JSON value); empty when it is good."""
    problems: list[str] = []
    if not isinstance(document, dict):
        return [f"the document must be a JSON object, not {_kind(document)}"]
    for key in sorted(set(document) - _DOCUMENT_KEYS, key=str):
        problems.append(f"{_safe(key)}: unknown key (allowed: {', '.join(sorted(_DOCUMENT_KEYS))})")
    if document.get("version") != DOCUMENT_VERSION:
        problems.append(f'version: must be "{DOCUMENT_VERSION}", got {_shown(document.get("version"))}')
    if "default" not in document:
        problems.append("default: missing (the profile of tenants not listed; {} for none)")
    else:
        problems += _profile_problems(document["default"], "default")
    tenants = document.get("tenants", {})
    if not isinstance(tenants, dict):
        problems.append(f"tenants: must be an object of tenant id -> profile, not {_kind(tenants)}")
    else:
        if len(tenants) > MAX_TENANTS:
            problems.append(f"tenants: {len(tenants)} profiles; at most {MAX_TENANTS}")
        for tenant, body in tenants.items():
            if not isinstance(tenant, str) or not TENANT_PATTERN.match(tenant):
                problems.append(
                    f"tenants.{_safe(tenant)}: not a tenant id (1-64 of a-z 0-9 _ -, starting with a "
                    "letter or digit, as API keys are issued)"
                )
                continue
            problems += _profile_problems(body, f"tenants.{tenant}")
    return problems


def _profile_problems(body: Any, path: str) -> list[str]:
    if not isinstance(body, dict):
        return [f"{path}: a profile must be an object, not {_kind(body)}"]
    problems = [
        f"{path}.{_safe(key)}: unknown key (allowed: {', '.join(sorted(_PROFILE_KEYS))})"
        for key in sorted(set(body) - _PROFILE_KEYS, key=str)
    ]
    if "system_prompt_prefix" in body:
        problems += _prefix_problems(body["system_prompt_prefix"], f"{path}.system_prompt_prefix")
    if "defaults" in body:
        problems += _defaults_problems(body["defaults"], f"{path}.defaults")
    if "routes" in body:
        problems += _routes_problems(body["routes"], f"{path}.routes")
    return problems


def _prefix_problems(prefix: Any, path: str) -> list[str]:
    if not isinstance(prefix, str):
        return [f"{path}: must be a string, not {_kind(prefix)}"]
    problems = []
    if len(prefix) > MAX_PREFIX_CHARS:
        problems.append(f"{path}: {len(prefix)} characters; at most {MAX_PREFIX_CHARS}")
    if not _is_unicode(prefix):
        problems.append(f"{path}: holds a lone surrogate (\\ud800-\\udfff), which is not text")
    control = _CONTROL.search(prefix)
    if control is not None:
        problems.append(
            f"{path}: holds control character U+{ord(control.group()):04X} at {control.start()} "
            "(only tab, newline and carriage return are allowed)"
        )
    return problems


def _defaults_problems(defaults: Any, path: str) -> list[str]:
    if not isinstance(defaults, dict):
        return [f"{path}: must be an object of parameter -> value, not {_kind(defaults)}"]
    problems = [
        f"{path}.{_safe(key)}: not a parameter a profile may default "
        f"(allowed: {', '.join(sorted(_DEFAULT_KEYS))})"
        for key in sorted(set(defaults) - _DEFAULT_KEYS, key=str)
    ]
    for name, (kind, low, high) in PARAMETER_RANGES.items():
        if name not in defaults:
            continue
        value = defaults[name]
        where = f"{path}.{name}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}: must be a number, not {_kind(value)}")
        elif kind is int and not isinstance(value, int):
            problems.append(f"{where}: must be a whole number, got {_shown(value)}")
        elif (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
            # (isfinite would overflow on an integer of hundreds of digits; comparisons do not)
            problems.append(f"{where}: {_shown(value)} is outside {low:g}..{high:g}")
    if "stop" in defaults:
        problems += _stop_problems(defaults["stop"], f"{path}.stop")
    return problems


def _stop_problems(stop: Any, path: str) -> list[str]:
    if not isinstance(stop, list) or not 1 <= len(stop) <= MAX_STOP_SEQUENCES:
        return [f"{path}: must be a list of 1 to {MAX_STOP_SEQUENCES} strings"]
    problems = []
    for index, item in enumerate(stop):
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_STOP_CHARS or not _is_unicode(item):
            problems.append(f"{path}[{index}]: must be a string of 1 to {MAX_STOP_CHARS} characters")
    return problems


def _routes_problems(routes: Any, path: str) -> list[str]:
    if not isinstance(routes, list):
        return [f"{path}: must be a list of route names (leave it out for every route), not {_kind(routes)}"]
    if len(routes) > MAX_ROUTES:
        return [f"{path}: {len(routes)} routes; at most {MAX_ROUTES}"]
    problems = []
    seen: set[str] = set()
    for index, route in enumerate(routes):
        if not isinstance(route, str) or not ROUTE_NAME.match(route):
            problems.append(f"{path}[{index}]: {_shown(route)} is not a route name ({ROUTE_NAME.pattern})")
        elif route in seen:
            problems.append(f"{path}[{index}]: {route!r} is listed twice")
        else:
            seen.add(route)
    return problems


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _safe(key: Any) -> str:
    """A key as it can be shown in a message: bounded, printable, quoted when odd."""
    text = str(key)
    if ROUTE_NAME.match(text) or TENANT_PATTERN.match(text):
        return text
    return ascii(text[:64]) + ("…" if len(text) > 64 else "")


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True) if _jsonable(value) else ascii(value)
    except ValueError:  # an integer beyond Python's digit limit for str()
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
