"""Reads the routing flags from the AppConfig agent (the Lambda extension on localhost:2772).

Only the agent evaluates multi-variant flags, so the evaluation context travels in `Context`
headers and the chosen variant comes back as `_variant`. When the agent fails, the last good
answer for the same context is used; with none, the default routes from the environment
(built by CDK from each route's default variant), so a broken extension never stops traffic.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from switchboard.routing.flags import RouteDecision, decide_route

_UNSAFE = re.compile(r"[,=\r\n]")
_MAX_REMEMBERED_CONTEXTS = 512


class RoutingUnavailable(RuntimeError):
    """No routing answer at all: the agent failed and nothing was ever learned or configured."""


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


def _context_header(context: Mapping[str, str]) -> str:
    return ",".join(f"{key}={_UNSAFE.sub('_', str(value))}" for key, value in context.items() if value)


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
        path = "/applications/{}/environments/{}/configurations/{}".format(
            *(urllib.parse.quote(part, safe="") for part in (application, environment, profile))
        )
        self._url = agent_url.rstrip("/") + path
        self._timeout_s = timeout_s
        self._opener = opener
        self._on_event = on_event or (lambda _name, _data: None)
        self._last_good: OrderedDict[str, RoutingSnapshot] = OrderedDict()
        defaults = {
            name: {"enabled": True, **dict(value), "_variant": "environment_default"}
            for name, value in (default_routes or {}).items()
        }
        self._defaults = RoutingSnapshot(flags=defaults, source="environment_default") if defaults else None

    def evaluate(self, context: Mapping[str, str]) -> RoutingSnapshot:
        """Every flag evaluated for this caller; never raises while anything usable is known."""
        key = _context_header(context)
        request = urllib.request.Request(self._url, headers={"Context": key} if key else {})  # noqa: S310
        try:
            with self._opener(request, timeout=self._timeout_s) as response:
                body = json.loads(response.read())
                version = response.headers.get("Configuration-Version")
            if not isinstance(body, dict):
                raise ValueError("agent answered with a non-object document")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return self._fallback(key, exc)
        snapshot = RoutingSnapshot(flags=body, source="agent", configuration_version=version)
        self._remember(key, snapshot)
        return snapshot

    def _remember(self, key: str, snapshot: RoutingSnapshot) -> None:
        self._last_good[key] = snapshot
        self._last_good.move_to_end(key)
        while len(self._last_good) > _MAX_REMEMBERED_CONTEXTS:
            self._last_good.popitem(last=False)

    def _fallback(self, key: str, exc: Exception) -> RoutingSnapshot:
        cached = self._last_good.get(key)
        if cached is not None:
            self._on_event("RoutingLastKnownGood", {"reason": type(exc).__name__})
            return RoutingSnapshot(cached.flags, "last_known_good", cached.configuration_version)
        if self._defaults is not None:
            self._on_event("RoutingEnvironmentDefault", {"reason": type(exc).__name__})
            return self._defaults
        raise RoutingUnavailable(f"AppConfig agent unreachable and no default routes: {exc}") from exc
