"""Context is data: whatever a client puts in `user` or `model`, routing answers as for a safe value.

The real agent client talks HTTP to the real agent emulator (port 0), which evaluates a flag
document where every protective flag is on: the kill switch names `claude-haiku-us`, `chat` is
forced into degraded mode, and `echo` is disabled except for premium tenants.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from switchboard.chat import Caller
from switchboard.routing.agent_client import RoutingFlags, RoutingSnapshot, context_value
from switchboard_local.agent import AgentEmulator

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"application": "switchboard", "environment": "local", "profile": "routing"}
KILL = {"enabled": True, "providers": [], "options": ["claude-haiku-us"]}

# Every character, lone surrogates and NUL included; punctuation the Context header gives meaning.
_any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)
_hostile_text = st.text(alphabet=st.sampled_from(list(",=;:\r\n\t \x00\"'\\~用户é\u2028\ud800")), max_size=40)
users = st.one_of(_any_text, _hostile_text, st.text(alphabet="ab,=", min_size=1000, max_size=5000))


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentEmulator]:
    path = tmp_path_factory.mktemp("flags") / "flags.json"
    shutil.copy(ROOT / "config" / "flags.json", path)
    document = json.loads(path.read_text())
    document["values"]["kill-switch"] = KILL
    document["values"]["force-degraded"] = {"enabled": True, "routes": ["chat"]}
    echo = document["values"]["echo"]["_variants"]
    echo.insert(0, {**echo[0], "name": "premium", "rule": '(eq $tier "premium")'})
    echo[-1]["enabled"] = False
    path.write_text(json.dumps(document))
    with AgentEmulator(path, port=0, poll_interval_s=60, **NAMES) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def routing(agent: AgentEmulator) -> tuple[RoutingFlags, list[str]]:
    events: list[str] = []
    flags = RoutingFlags(
        agent_url=agent.url,
        default_routes={"chat": {"chain": ["claude-haiku-us"], "degrade": ["reject"]}},
        on_event=lambda name, _data: events.append(name),
        timeout_s=10.0,  # what is tested is the evaluation, not a busy machine's 1 s deadline
        **NAMES,
    )
    return flags, events


def _evaluate(
    routing: tuple[RoutingFlags, list[str]], caller: Caller, route: str, user: str | None
) -> RoutingSnapshot:
    flags, events = routing
    snapshot = flags.evaluate(caller.context(route, user))
    assert snapshot.source == "agent" and events == [], events
    return snapshot


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    user=users, tier=st.sampled_from(["premium", "standard"]), route=st.sampled_from(["chat", "summarize"])
)
@example(user="用户", tier="standard", route="chat")
@example(user="x,tier=premium", tier="standard", route="chat")
@example(user="u\r\nContext: tier=premium", tier="standard", route="chat")
@example(user="\ud800", tier="premium", route="summarize")
def test_any_user_routes_as_its_safe_equivalent_and_protective_flags_hold(
    routing: tuple[RoutingFlags, list[str]], user: str, tier: str, route: str
) -> None:
    caller = Caller(tenant="acme", tier=tier)
    hostile = _evaluate(routing, caller, route, user)
    safe = _evaluate(routing, caller, route, context_value(user) if user else None)

    assert hostile.flags == safe.flags
    # the protective flags, whatever the user
    assert hostile.flags["kill-switch"] == KILL
    assert hostile.flags["force-degraded"] == {"enabled": True, "routes": ["chat"]}
    assert hostile.flags["echo"]["enabled"] is (tier == "premium")  # a disabled route stays disabled
    chat = hostile.decision("chat")
    assert chat is not None and chat.variant == ("premium" if tier == "premium" else "default")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=_any_text.filter(bool) | _hostile_text.filter(bool))
def test_any_model_field_is_a_route_name_or_nothing(
    routing: tuple[RoutingFlags, list[str]], model: str
) -> None:
    snapshot = _evaluate(routing, Caller(tenant="acme", tier="standard"), model, "u-1")
    assert snapshot.flags["kill-switch"] == KILL
    assert (snapshot.decision(model) is not None) is (model in ("chat", "summarize", "echo"))


def test_a_split_on_a_non_plain_user_is_stable(routing: tuple[RoutingFlags, list[str]]) -> None:
    """The same non-Latin user lands in the same summarize bucket on every request."""
    caller = Caller(tenant="acme", tier="standard")
    variants = {
        user: {_evaluate(routing, caller, "summarize", user).decision("summarize").variant for _ in range(3)}  # type: ignore[union-attr]
        for user in (f"用户-{i}" for i in range(200))
    }
    assert all(len(seen) == 1 for seen in variants.values())
    canary = sum("nova-canary" in seen for seen in variants.values())
    assert 5 <= canary <= 40  # about 10 % of 200: the opaque form still spreads users
