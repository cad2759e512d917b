"""Reads the routing flags from the AppConfig agent (the Lambda extension on localhost:2772).

Only the agent evaluates multi-variant flags, so the evaluation context travels in `Context`
headers and the chosen variant comes back as `_variant`. Every answer is checked with
:func:`~switchboard.routing.schema.validate_evaluated` before use. When the agent fails or answers
something invalid, the last good answer for the same context is used; with none, the default
routes from the environment (built by CDK from each route's default variant), with the operator
flags (kill switch, force-degraded) of the newest good answer laid over them, so a broken
extension never stops traffic and never silently lifts an operator's flag.

Context values are data, never syntax. The agent reads ``Context: key=value`` entries, repeated or
comma-separated in one header (AWS AppConfig user guide, "Using AWS AppConfig Agent to retrieve a
feature flag with variants"), and documents no escape. So a value reaches it either unchanged,
when it is *plain* (1 to 128 characters of ``A-Z a-z 0-9 . _ : @ + / ~ -``: every usual id, email
or key), or as ``~`` followed by 40 hex digits of its SHA-256 (UTF-8), whatever its characters,
length or punctuation. The transform is deterministic: the same `user` always evaluates alike
(splits stay stable); a rule that should match a non-plain value compares with its ``~`` form
(:func:`context_value` computes it). The header is therefore always ASCII without separators, so
no request field can break the request to the agent, forge another context key or reach another
header: a request's own input can never make routing fall back.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from switchboard.contract import metrics as metric_names
from switchboard.routing.appconfig_path import configuration_path
from switchboard.routing.decision import RouteDecision, decide_route
from switchboard.routing.schema import validate_evaluated

PLAIN_CONTEXT_VALUE = re.compile(r"[A-Za-z0-9._:@+/~-]{1,128}")
CONTEXT_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
OPAQUE_PREFIX = "~"
_OPAQUE_HEX_DIGITS = 40
_MAX_REMEMBERED_CONTEXTS = 512
_MAX_REMEMBERED_ANSWERS = 64

# Event (and metric) names: declared in switchboard.contract.metrics, which the alarms read.
EVENT_ANSWER_INVALID = metric_names.ROUTING_ANSWER_INVALID
EVENT_LAST_KNOWN_GOOD = metric_names.ROUTING_LAST_KNOWN_GOOD
EVENT_ENVIRONMENT_DEFAULT = metric_names.ROUTING_ENVIRONMENT_DEFAULT


class RoutingUnavailable(RuntimeError):
    """No routing answer at all: the agent failed and nothing was ever learned or configured."""


class AgentAnswerInvalid(ValueError):
    """The agent answered, but not with evaluated flags the gateway can trust."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems[:5]))


@dataclass(frozen=True)
class RoutingSnapshot:
    """Evaluated flags for one context, and where they came from."""

    flags: Mapping[str, Mapping[str, Any]]
    source: str  # "agent" | "last_known_good" | "environment_default"
    configuration_version: str | None = None

    def route_names(self) -> list[str]:
        """Route flags are the ones that carry a `chain`; operator flags do not."""
        return sorted(name for name, value in self.flags.items() if "chain" in value)

    def decision(self, route: str) -> RouteDecision | None:
        value = self.flags.get(route)
        if value is None or "chain" not in value:
            return None
        return decide_route(dict(value))


def context_value(value: str) -> str:
    """The form in which ``value`` reaches the agent: itself when plain, else ``~`` + SHA-256 hex.

    Lone surrogates (JSON allows ``"\\ud800"``) are hashed as they are (``surrogatepass``) rather
    than refused: the function is total over Python strings.
    """
    if PLAIN_CONTEXT_VALUE.fullmatch(value):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return OPAQUE_PREFIX + digest[:_OPAQUE_HEX_DIGITS]


def context_header(context: Mapping[str, str]) -> str:
    """One ``Context`` header value: ``key=value`` pairs, comma-separated, empty values left out."""
    parts = []
    for key, value in context.items():
        if not CONTEXT_KEY.fullmatch(key):  # keys are the gateway's own names, never a client's
            raise ValueError(f"context key {key!r} is not a plain identifier")
        if value:
            parts.append(f"{key}={context_value(str(value))}")
    return ",".join(parts)


class RoutingFlags:
    def __init__(
        self,
        *,
        agent_url: str,
        application: str,
        environment: str,
        profile: str,
        default_routes: Mapping[str, Mapping[str, Any]] | None = None,
        timeout_s: float = 1.0,
        opener: Callable[..., Any] = urllib.request.urlopen,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        path = configuration_path(application, environment, profile)
        self._url = agent_url.rstrip("/") + path
        self._timeout_s = timeout_s
        self._opener = opener
        self._on_event = on_event or (lambda _name, _data: None)
        self._last_good: OrderedDict[str, RoutingSnapshot] = OrderedDict()
        defaults = {
            name: {"enabled": True, **dict(value), "_variant": "environment_default"}
            for name, value in (default_routes or {}).items()
        }
        problems = validate_evaluated(defaults, routes=defaults) if defaults else []
        if problems:
            raise ValueError(f"default routes are invalid: {'; '.join(problems)}")
        self._defaults = RoutingSnapshot(flags=defaults, source="environment_default") if defaults else None
        self._routes = frozenset(defaults)
        # Non-route flags of the newest good answer: laid over the defaults (see _fallback).
        self._operator_flags: dict[str, Mapping[str, Any]] = {}
        self._answers: OrderedDict[bytes, tuple[Any, list[str]]] = OrderedDict()
        self._lock = threading.Lock()  # the caches are shared by the local front door's threads

    def evaluate(self, context: Mapping[str, str]) -> RoutingSnapshot:
        """Every flag evaluated for this caller; never raises while anything usable is known."""
        key = context_header(context)
        request = urllib.request.Request(self._url, headers={"Context": key} if key else {})  # noqa: S310
        try:
            with self._opener(request, timeout=self._timeout_s) as response:
                raw = response.read()
                version = response.headers.get("Configuration-Version")
            body, problems = self._checked(raw)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException, RecursionError) as exc:
            # URLError covers the agent's own 4xx/5xx (HTTPError); HTTPException a torn response.
            return self._fallback(key, exc)
        if problems:
            self._on_event(
                EVENT_ANSWER_INVALID, {"problems": problems[:10], "configuration_version": version}
            )
            return self._fallback(key, AgentAnswerInvalid(problems))
        snapshot = RoutingSnapshot(flags=body, source="agent", configuration_version=version)
        self._remember(key, snapshot)
        return snapshot

    def _checked(self, raw: bytes) -> tuple[Any, list[str]]:
        """Parse and validate an answer; the same bytes (most answers: one per variant) only once.

        Snapshots built from a cached answer share its objects: nothing downstream mutates flags.
        """
        with self._lock:
            known = self._answers.get(raw)
            if known is not None:
                self._answers.move_to_end(raw)
                return known
        body = json.loads(raw)
        known = (body, validate_evaluated(body, routes=self._routes))
        with self._lock:
            self._answers[raw] = known
            while len(self._answers) > _MAX_REMEMBERED_ANSWERS:
                self._answers.popitem(last=False)
        return known

    def _remember(self, key: str, snapshot: RoutingSnapshot) -> None:
        with self._lock:
            self._last_good[key] = snapshot
            self._last_good.move_to_end(key)
            while len(self._last_good) > _MAX_REMEMBERED_CONTEXTS:
                self._last_good.popitem(last=False)
        self._operator_flags = {
            name: value
            for name, value in snapshot.flags.items()
            if "chain" not in value and name not in self._routes
        }

    def _fallback(self, key: str, exc: Exception) -> RoutingSnapshot:
        reason = type(exc).__name__
        cached = self._last_good.get(key)
        if cached is not None:
            self._on_event(EVENT_LAST_KNOWN_GOOD, {"reason": reason})
            return RoutingSnapshot(cached.flags, "last_known_good", cached.configuration_version)
        if self._defaults is not None:
            self._on_event(EVENT_ENVIRONMENT_DEFAULT, {"reason": reason})
            # The defaults are deploy-time routes; the operator flags learned since then still
            # hold (a kill switch flipped during an incident must outlive an extension failure).
            # Non-route flags only: a route's answer depends on the caller's context.
            return RoutingSnapshot({**self._operator_flags, **self._defaults.flags}, "environment_default")
        raise RoutingUnavailable(f"AppConfig agent unreachable and no default routes: {exc}") from exc
