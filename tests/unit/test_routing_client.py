"""RoutingFlags: the agent's answer, last-known-good per context, then the environment default."""

from __future__ import annotations

import http.client
import io
import json
import re
import urllib.error
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.routing.agent_client import (
    RoutingFlags,
    RoutingUnavailable,
    context_header,
    context_value,
)
from switchboard_local.agent import parse_context_headers
from tests.fakes import RecordedEvents

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
    forged = context_value("x,tier=premium")
    agent.answers[f"userId={forged}"] = CHAT_DEFAULT
    _flags(agent).evaluate({"userId": "x,tier=premium"})
    assert agent.requests[0].get_header("Context") == f"userId={forged}"
    assert forged.startswith("~") and "," not in forged and "=" not in forged


@pytest.mark.parametrize(
    "value", ["u-42", "alice@example.com", "tenant:acme/key+1", "~" + "0" * 40, "a" * 128, "10", "1.5e3"]
)
def test_plain_values_reach_the_agent_unchanged(value: str) -> None:
    """So operators' rules such as (eq $userId "alice@example.com") keep matching."""
    assert context_value(value) == value
    assert context_header({"userId": value}) == f"userId={value}"


@pytest.mark.parametrize(
    "value",
    ["用户", "a,b", "a=b", "a b", "x\r\nX-Injected: 1", "\ud800", "naïve", "a" * 129, "a\x00b", '"quoted"'],
)
def test_other_values_reach_the_agent_as_a_stable_opaque_token(value: str) -> None:
    token = context_value(value)
    assert re.fullmatch(r"~[0-9a-f]{40}", token)
    assert context_value(value) == token  # deterministic: the same user always splits alike
    assert context_value(token) == token  # the token is itself plain


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["route", "tenant", "tier", "userId"]),
        st.text(alphabet=st.characters(exclude_categories=()), max_size=300),
    )
)
def test_any_context_makes_an_ascii_header_that_parses_back_key_by_key(context: dict[str, str]) -> None:
    header = context_header(context)
    header.encode("latin-1")  # what http.client does with a header value; must never raise
    assert header.isascii() and not any(ch in header for ch in "\r\n\x00 ")
    expected = {key: context_value(value) for key, value in context.items() if value}
    assert parse_context_headers([header] if header else []) == expected


def test_context_keys_are_the_gateways_own_identifiers() -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        context_header({"user,tier": "x"})


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


KILL_HAIKU = {"enabled": True, "providers": [], "options": ["claude-haiku-us"]}


class RecordingFlags:
    """RoutingFlags with its events captured."""

    def __init__(self, agent: FakeAgent, defaults: dict | None = None) -> None:
        self.recorded = RecordedEvents()
        self.events = self.recorded.events
        self.flags = RoutingFlags(
            agent_url="http://localhost:2772",
            application="switchboard",
            environment="prod",
            profile="routing",
            default_routes=defaults,
            opener=agent,
            on_event=self.recorded,
        )

    def names(self) -> list[str]:
        return self.recorded.names()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"chat": {"enabled": True, "chain": "claude-haiku-us"}}, "answer.chat.chain: must be an array"),
        ({**CHAT_DEFAULT, "kill-switch": "bad"}, "answer.kill-switch: must be an object"),
        ({}, "names no flag at all"),
        (
            {**CHAT_DEFAULT, "kill-switch": {"enabled": True, "options": "claude-haiku-us"}},
            "answer.kill-switch.options: must be an array",
        ),
        ({"chat": {"enabled": True, "_variant": "default"}}, "a route needs a non-empty 'chain'"),
        ({"chat": {"enabled": "yes", "chain": ["a"]}}, "'enabled' must be true or false"),
        ({"chat": {"enabled": True, "chain": ["a"], "degrade": ["pray"]}}, "unknown step(s) 'pray'"),
        ({"chat": {"enabled": True, "chain": [1, 2]}}, "answer.chat.chain[0]: must be a string"),
        ([CHAT_DEFAULT], "must be a JSON object, not array"),
    ],
)
def test_an_invalid_answer_is_an_agent_failure_served_from_last_known_good(answer: Any, problem: str) -> None:
    agent = FakeAgent()
    agent.answers["tier=premium"] = {**CHAT_PREMIUM, "kill-switch": KILL_HAIKU}
    recorder = RecordingFlags(agent, {"chat": {"chain": ["fallback"], "degrade": ["reject"]}})
    recorder.flags.evaluate({"tier": "premium"})
    agent.answers["tier=premium"] = answer

    snapshot = recorder.flags.evaluate({"tier": "premium"})

    assert snapshot.source == "last_known_good"
    assert snapshot.decision("chat").chain == ("a", "b")  # type: ignore[union-attr]
    assert snapshot.flags["kill-switch"] == KILL_HAIKU
    assert recorder.names() == ["RoutingAnswerInvalid", "RoutingLastKnownGood"]
    problems = recorder.events[0][1]["problems"]
    assert any(problem in p for p in problems), problems


def test_an_invalid_answer_without_history_serves_the_defaults_never_raises() -> None:
    agent = FakeAgent()
    agent.answers["tier=x"] = {"chat": {"enabled": True, "chain": "claude-haiku-us"}}
    recorder = RecordingFlags(agent, {"chat": {"chain": ["fallback"], "degrade": ["reject"]}})

    snapshot = recorder.flags.evaluate({"tier": "x"})

    assert snapshot.source == "environment_default"
    assert snapshot.decision("chat").chain == ("fallback",)  # type: ignore[union-attr]
    assert recorder.names() == ["RoutingAnswerInvalid", "RoutingEnvironmentDefault"]


def test_the_defaults_keep_the_newest_operator_flags() -> None:
    """A kill switch flipped before the extension broke still holds for a caller never seen."""
    agent = FakeAgent()
    agent.answers["tier=premium"] = {
        **CHAT_PREMIUM,
        "kill-switch": KILL_HAIKU,
        "force-degraded": {"enabled": True, "routes": ["chat"]},
        "summarize": {"enabled": False, "_variant": "off"},
    }
    recorder = RecordingFlags(
        agent,
        {"chat": {"chain": ["fallback"], "degrade": ["reject"]}, "summarize": {"chain": ["s"]}},
    )
    recorder.flags.evaluate({"tier": "premium"})
    agent.down = True

    snapshot = recorder.flags.evaluate({"tier": "standard", "userId": "new"})

    assert snapshot.source == "environment_default"
    assert snapshot.flags["kill-switch"] == KILL_HAIKU
    assert snapshot.flags["force-degraded"] == {"enabled": True, "routes": ["chat"]}
    # routes answer per context: another caller's answer never replaces the defaults
    assert snapshot.decision("chat").chain == ("fallback",)  # type: ignore[union-attr]
    assert snapshot.decision("summarize").chain == ("s",)  # type: ignore[union-attr]


def test_a_known_route_answered_enabled_without_chain_is_invalid() -> None:
    agent = FakeAgent()
    agent.answers[""] = {"chat": {"enabled": True, "_variant": "default"}}
    recorder = RecordingFlags(agent, {"chat": {"chain": ["fallback"]}})
    assert recorder.flags.evaluate({}).source == "environment_default"
    assert recorder.names()[0] == "RoutingAnswerInvalid"


@pytest.mark.parametrize(
    "failure",
    [
        http.client.RemoteDisconnected("torn"),
        http.client.BadStatusLine("garbage"),
        urllib.error.HTTPError("http://x", 400, "bad context", {}, None),  # type: ignore[arg-type]
        TimeoutError("slow"),
    ],
)
def test_every_transport_failure_falls_back(failure: Exception) -> None:
    def opener(request: Any, timeout: float) -> Any:
        raise failure

    flags = RoutingFlags(
        agent_url="http://localhost:2772",
        application="a",
        environment="e",
        profile="p",
        default_routes={"chat": {"chain": ["fallback"]}},
        opener=opener,
    )
    assert flags.evaluate({"userId": "u"}).source == "environment_default"


def test_invalid_default_routes_fail_at_cold_start() -> None:
    with pytest.raises(ValueError, match="default routes are invalid"):
        RoutingFlags(
            agent_url="http://localhost:2772",
            application="a",
            environment="e",
            profile="p",
            default_routes={"chat": {"chain": "fallback"}},
        )


def test_the_default_routes_cdk_computes_from_the_seed_pass_the_answer_validator() -> None:
    """The gateway checks its DEFAULT_ROUTES at cold start: the deployed ones must pass."""
    from pathlib import Path

    from infra.config import default_routes

    seed = json.loads((Path(__file__).resolve().parents[2] / "config" / "flags.json").read_text())
    agent = FakeAgent()
    agent.down = True
    routes = _flags(agent, default_routes(seed)).evaluate({}).route_names()
    assert routes == ["chat", "echo", "embed", "summarize", "tuned"]
