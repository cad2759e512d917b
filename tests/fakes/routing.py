"""Routing (``switchboard.chat.Routing``) without the AppConfig agent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchboard.routing.agent_client import RoutingSnapshot, RoutingUnavailable


class StaticRouting:
    """Serves one flag document, whatever the context; remembers each context it was asked with."""

    def __init__(self, flags: Mapping[str, Any], *, source: str = "agent") -> None:
        self.flags = dict(flags)
        self.source = source
        self.contexts: list[dict[str, str]] = []

    def evaluate(self, context: Mapping[str, str]) -> RoutingSnapshot:
        self.contexts.append(dict(context))
        return RoutingSnapshot(flags=self.flags, source=self.source)


class UnavailableRouting:
    """Neither the agent nor any default can say where to route."""

    def __init__(self, message: str = "agent down, no defaults") -> None:
        self.message = message

    def evaluate(self, context: Mapping[str, str]) -> RoutingSnapshot:
        raise RoutingUnavailable(self.message)
