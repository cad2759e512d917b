"""The route decision the gateway makes from the agent's evaluated flags, on every request.

The AppConfig extension evaluates the multi-variant flags (only it can, in AWS); what comes back is
``{flag: {"enabled": ..., attrs..., "_variant": ...}}``, checked by
:func:`switchboard.routing.schema.validate_evaluated`. This module turns one route flag of such an
answer into a :class:`RouteDecision` and names the operator flags the gateway reads whatever the
route. Nothing else: it is on the gateway's cold start, so it imports only the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORCE_DEGRADED_FLAG",
    "KILL_SWITCH_FLAG",
    "ROUTE_KINDS",
    "ROUTE_KIND_CHAT",
    "ROUTE_KIND_EMBEDDINGS",
    "RouteDecision",
    "decide_route",
]

# Operator flags: the gateway reads them on every request, whatever the route.
KILL_SWITCH_FLAG = "kill-switch"
FORCE_DEGRADED_FLAG = "force-degraded"

# A route serves one endpoint: `kind` attribute of its flag (absent: chat).
ROUTE_KIND_CHAT = "chat"
ROUTE_KIND_EMBEDDINGS = "embeddings"
ROUTE_KINDS = (ROUTE_KIND_CHAT, ROUTE_KIND_EMBEDDINGS)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """What one route flag says for one request."""

    variant: str | None
    enabled: bool
    chain: tuple[str, ...]
    degrade: tuple[str, ...] = ()
    smaller_chain: tuple[str, ...] = ()
    static_answer: str | None = None
    context_fallback: str | None = None
    cache_ttl_s: int | None = None
    kind: str = ROUTE_KIND_CHAT
    skip_unsupported: bool = False
    """A candidate that cannot do what the request needs (tools, images, a schema) moves the
    request to the next candidate instead of answering 400."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "enabled": self.enabled,
            "chain": list(self.chain),
            "degrade": list(self.degrade),
            "smaller_chain": list(self.smaller_chain),
            "static_answer": self.static_answer,
            "context_fallback": self.context_fallback,
            "cache_ttl_s": self.cache_ttl_s,
            "kind": self.kind,
            "skip_unsupported": self.skip_unsupported,
        }

    def option_ids(self) -> tuple[str, ...]:
        """Every option the decision names (chain, smaller chain, context fallback), each once."""
        fallback = (self.context_fallback,) if self.context_fallback else ()
        return tuple(dict.fromkeys((*self.chain, *self.smaller_chain, *fallback)))


def _whole_seconds(value: Any) -> int | None:
    """A finite JSON number as whole seconds; anything else (bool, NaN, text) is no TTL."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return None


def _str_tuple(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"route attribute {name!r} must be a list of strings")
    return tuple(value)


def decide_route(evaluated_flag: Mapping[str, Any]) -> RouteDecision:
    """A :class:`RouteDecision` from one evaluated route flag (one value of the agent's answer).

    A disabled result (AppConfig then sends no attributes) gives ``enabled=False`` and an empty chain:
    the caller refuses the route. An enabled result without a non-empty ``chain`` raises ValueError.
    """
    variant = evaluated_flag.get("_variant")
    variant = variant if isinstance(variant, str) else None
    kind = evaluated_flag.get("kind", ROUTE_KIND_CHAT)
    if kind not in ROUTE_KINDS:
        raise ValueError(f"route flag (variant {variant!r}) has unknown kind {kind!r}")
    if evaluated_flag.get("enabled") is not True:
        return RouteDecision(variant=variant, enabled=False, chain=(), kind=kind)
    chain = _str_tuple(evaluated_flag.get("chain"), "chain")
    if not chain:
        raise ValueError(f"route flag (variant {variant!r}) is enabled but has no chain")
    static = evaluated_flag.get("static_answer")
    fallback = evaluated_flag.get("context_fallback")
    return RouteDecision(
        variant=variant,
        enabled=True,
        chain=chain,
        degrade=_str_tuple(evaluated_flag.get("degrade"), "degrade"),
        smaller_chain=_str_tuple(evaluated_flag.get("smaller_chain"), "smaller_chain"),
        static_answer=static if isinstance(static, str) else None,
        context_fallback=fallback if isinstance(fallback, str) else None,
        cache_ttl_s=_whole_seconds(evaluated_flag.get("cache_ttl_s")),
        kind=kind,
        skip_unsupported=evaluated_flag.get("skip_unsupported") is True,
    )
