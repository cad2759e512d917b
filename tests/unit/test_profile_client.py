"""PromptProfilesReader with a scripted agent: whatever the agent does, the reader never raises
(unless told to), never serves a refused document, and says by an event which fallback it took."""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from switchboard.profiles import PERMISSIVE, ProfileDocumentError, parse_document_bytes
from switchboard.routing.profile_client import (
    EVENT_ANSWER_INVALID,
    EVENT_BUILT_IN_DEFAULT,
    EVENT_LAST_KNOWN_GOOD,
    ProfilesUnavailable,
    PromptProfilesReader,
)
from tests.hostile_json import hostile_values

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "config" / "profiles.json").read_bytes()


class Response(io.BytesIO):
    def __init__(self, body: bytes, version: str) -> None:
        super().__init__(body)
        self.headers = {"Configuration-Version": version}


class ScriptedAgent:
    """Answers each call with the next scripted bytes, or raises the next scripted exception."""

    def __init__(self, *script: bytes | BaseException) -> None:
        self.script = list(script)
        self.calls: list[Any] = []

    def __call__(self, request: Any, timeout: float) -> Response:
        self.calls.append(request)
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return Response(step, str(len(self.calls)))


def reader(
    agent: ScriptedAgent, events: list[tuple[str, dict[str, Any]]], **kwargs: Any
) -> PromptProfilesReader:
    return PromptProfilesReader(
        agent_url="http://localhost:2772/",
        application="Switchboard",
        environment="prod",
        profile="prompt-profiles",
        opener=agent,
        on_event=lambda name, data: events.append((name, data)),
        **kwargs,
    )


def test_it_asks_the_agent_for_the_freeform_profile_without_context() -> None:
    agent, events = ScriptedAgent(GOOD), []
    snapshot = reader(agent, events).current()
    request = agent.calls[0]
    assert request.full_url == (
        "http://localhost:2772/applications/Switchboard/environments/prod/configurations/prompt-profiles"
    )
    assert request.get_header("Context") is None
    assert (snapshot.source, snapshot.configuration_version) == ("agent", "1")
    assert snapshot.profiles == parse_document_bytes(GOOD)
    assert events == []


FAILURES: list[BaseException] = [
    urllib.error.URLError("connection refused"),
    urllib.error.HTTPError("http://x", 500, "boom", None, None),  # type: ignore[arg-type]
    TimeoutError("timed out"),
    ConnectionResetError("reset"),
    http.client.IncompleteRead(b"{"),
    http.client.RemoteDisconnected("gone"),
]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda e: type(e).__name__)
def test_an_agent_failure_serves_the_last_good_document(failure: BaseException) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    profiles = reader(ScriptedAgent(GOOD, failure), events)
    good = profiles.current()

    snapshot = profiles.current()

    assert (snapshot.source, snapshot.profiles, snapshot.configuration_version) == (
        "last_known_good",
        good.profiles,
        "1",
    )
    assert events == [(EVENT_LAST_KNOWN_GOOD, {"reason": type(failure).__name__})]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda e: type(e).__name__)
def test_an_agent_failure_before_any_answer_serves_the_fallback_or_raises_when_there_is_none(
    failure: BaseException,
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    assert reader(ScriptedAgent(failure), events).current().profiles is PERMISSIVE
    assert [name for name, _ in events] == [EVENT_BUILT_IN_DEFAULT]
    with pytest.raises(ProfilesUnavailable):
        reader(ScriptedAgent(failure), [], fallback=None).current()


def test_after_a_failure_a_good_answer_is_served_again() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    profiles = reader(ScriptedAgent(GOOD, urllib.error.URLError("x"), GOOD), events)
    assert [profiles.current().source for _ in range(3)] == ["agent", "last_known_good", "agent"]


@settings(max_examples=150, deadline=None)
@given(answer=hostile_values.map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=64))
def test_any_refused_answer_is_an_event_and_never_reaches_the_caller(answer: bytes) -> None:
    assume(_refused(answer))  # a valid document can be drawn too (e.g. from the example database)
    events: list[tuple[str, dict[str, Any]]] = []
    profiles = reader(ScriptedAgent(GOOD, answer), events)
    good = profiles.current()

    snapshot = profiles.current()

    assert snapshot.profiles == good.profiles
    assert snapshot.source == "last_known_good"
    assert [name for name, _ in events] == [EVENT_ANSWER_INVALID, EVENT_LAST_KNOWN_GOOD]
    assert events[0][1]["configuration_version"] == "2"
    assert events[0][1]["problems"]


def _refused(answer: bytes) -> bool:
    try:
        parse_document_bytes(answer)
    except ProfileDocumentError:
        return True
    return False


def test_a_refused_answer_first_of_all_serves_the_fallback() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    bad = json.dumps({"version": "1", "default": {"routes": "chat"}}).encode()
    snapshot = reader(ScriptedAgent(bad), events).current()
    assert snapshot.source == "built_in_default"
    assert [name for name, _ in events] == [EVENT_ANSWER_INVALID, EVENT_BUILT_IN_DEFAULT]
    assert "default.routes: must be a list" in events[0][1]["problems"][0]
