"""RoutingFlags: the agent's answer, last-known-good per context, then the environment default."""

from __future__ import annotations

import io
import json
import urllib.error
from typing import Any

import pytest

from switchboard.routing.agent_client import RoutingFlags, RoutingUnavailable

CHAT_PREMIUM = {"chat": {"enabled": True, "chain": ["a", "b"], "degrade": ["reject"], "_variant": "premium"}}
CHAT_DEFAULT = {"chat": {"enabled": True, "chain": ["c"], "degrade": ["reject"], "_variant": "default"}}


class FakeResponse(io.BytesIO):
    def __init__(self, body: Any, version: str = "7") -> None:
        super().__init__(json.dumps(body).encode())
        self.headers = {"Configuration-Version": version}


class FakeAgent:
    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.down = False
        self.requests: list[Any] = []

    def __call__(self, request: Any, timeout: float) -> FakeResponse:
        self.requests.append(request)
        if self.down:
            raise urllib.error.URLError("connection refused")
        return FakeResponse(self.answers[request.get_header("Context") or ""])


def _flags(agent: FakeAgent, defaults: dict | None = None) -> RoutingFlags:
    return RoutingFlags(
        agent_url="http://localhost:2772",
        application="switchboard",
        environment="prod",
        profile="routing",
        default_routes=defaults,
        opener=agent,
    )


def test_context_travels_in_one_header_and_variant_is_read() -> None:
    agent = FakeAgent()
    agent.answers["route=chat,tenant=acme,tier=premium,userId=u1"] = CHAT_PREMIUM
    snapshot = _flags(agent).evaluate({"route": "chat", "tenant": "acme", "tier": "premium", "userId": "u1"})

    decision = snapshot.decision("chat")
    assert decision is not None and decision.variant == "premium" and decision.chain == ("a", "b")
    assert snapshot.configuration_version == "7"
    assert agent.requests[0].full_url == (
        "http://localhost:2772/applications/switchboard/environments/prod/configurations/routing"
    )


def test_commas_in_values_cannot_forge_context_keys() -> None:
    agent = FakeAgent()
    agent.answers["userId=x_tier_premium"] = CHAT_DEFAULT
    _flags(agent).evaluate({"userId": "x,tier=premium"})
    assert agent.requests[0].get_header("Context") == "userId=x_tier_premium"


def test_agent_failure_serves_last_good_answer_for_the_same_context() -> None:
    agent = FakeAgent()
    agent.answers["tier=premium"] = CHAT_PREMIUM
    flags = _flags(agent, {"chat": {"chain": ["fallback"]}})
    flags.evaluate({"tier": "premium"})
    agent.down = True

    snapshot = flags.evaluate({"tier": "premium"})

    assert snapshot.source == "last_known_good"
    assert snapshot.decision("chat").chain == ("a", "b")  # type: ignore[union-attr]


def test_never_answered_uses_the_environment_default_routes() -> None:
    agent = FakeAgent()
    agent.down = True

    snapshot = _flags(agent, {"chat": {"chain": ["fallback"], "degrade": ["reject"]}}).evaluate({"tier": "x"})

    assert snapshot.source == "environment_default"
    assert snapshot.decision("chat").chain == ("fallback",)  # type: ignore[union-attr]


def test_nothing_known_at_all_raises_routing_unavailable() -> None:
    agent = FakeAgent()
    agent.down = True
    with pytest.raises(RoutingUnavailable):
        _flags(agent).evaluate({})


def test_non_route_flags_are_not_routes() -> None:
    agent = FakeAgent()
    agent.answers[""] = {**CHAT_DEFAULT, "killswitch": {"enabled": False}}
    snapshot = _flags(agent).evaluate({})
    assert snapshot.route_names() == ["chat"]
    assert snapshot.decision("killswitch") is None
