"""The prompt-profiles reader against the AppConfig agent emulator, over real HTTP.

Given the emulator serving `config/profiles.json` as a freeform profile beside the flags, the
reader gets each tenant's profile and follows a changed file; when the agent stops, answers 404
or serves a document the gateway refuses, the reader serves the last good document with an event;
with nothing ever read, the built-in permissive profiles (or, asked for, ProfilesUnavailable).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.profiles import PERMISSIVE, parse_document_bytes
from switchboard.routing.document import FlagDocumentError
from switchboard.routing.profile_client import (
    EVENT_ANSWER_INVALID,
    EVENT_BUILT_IN_DEFAULT,
    EVENT_LAST_KNOWN_GOOD,
    ProfilesUnavailable,
    PromptProfilesReader,
)
from switchboard_local.agent import AgentEmulator, FreeformConfiguration
from switchboard_local.emulation import APPCONFIG_NAMES, PROMPT_PROFILES_NAME, agent_freeform

ROOT = Path(__file__).resolve().parents[2]
PROFILES_PATH = "/applications/switchboard/environments/local/configurations/prompt-profiles"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    flags, profiles = tmp_path / "flags.json", tmp_path / "profiles.json"
    shutil.copy(ROOT / "config" / "flags.json", flags)
    shutil.copy(ROOT / "config" / "profiles.json", profiles)
    return flags, profiles


@pytest.fixture
def agent(files: tuple[Path, Path]) -> Iterator[AgentEmulator]:
    flags, profiles = files
    # A long poll interval: the tests reload by hand, so nothing changes behind their back.
    with AgentEmulator(
        flags, port=0, poll_interval_s=60, freeform=agent_freeform(profiles), **APPCONFIG_NAMES
    ) as emulator:
        yield emulator


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        self.seen.append((name, data))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


def reader(url: str, events: Events, **kwargs: Any) -> PromptProfilesReader:
    return PromptProfilesReader(
        agent_url=url,
        application=APPCONFIG_NAMES["application"],
        environment=APPCONFIG_NAMES["environment"],
        profile=PROMPT_PROFILES_NAME,
        timeout_s=2.0,
        on_event=events,
        **kwargs,
    )


def write(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document))


def test_the_agent_serves_the_file_verbatim_as_json_with_a_version(
    agent: AgentEmulator, files: tuple[Path, Path]
) -> None:
    with urllib.request.urlopen(agent.url + PROFILES_PATH, timeout=5) as response:
        assert response.read() == files[1].read_bytes()
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Configuration-Version"] == agent.freeform_version(PROMPT_PROFILES_NAME)
    # The flags are still evaluated on their own profile's path.
    with urllib.request.urlopen(
        agent.url + PROFILES_PATH.replace("prompt-profiles", "routing"), timeout=5
    ) as r:
        assert "chat" in json.loads(r.read())


def test_the_reader_gives_each_tenant_its_profile(agent: AgentEmulator, files: tuple[Path, Path]) -> None:
    events = Events()
    profiles = reader(agent.url, events)

    snapshot = profiles.current()

    assert snapshot.source == "agent"
    assert snapshot.configuration_version == agent.freeform_version(PROMPT_PROFILES_NAME)
    assert snapshot.profiles == parse_document_bytes(files[1].read_bytes())
    assert profiles.for_tenant("acme").defaults.temperature == 0.2
    assert profiles.for_tenant("initech") == snapshot.profiles.default
    assert events.seen == []


def test_an_unchanged_answer_is_parsed_once(agent: AgentEmulator) -> None:
    profiles = reader(agent.url, Events())
    assert profiles.current().profiles is profiles.current().profiles


def test_a_changed_file_is_served_with_a_new_version_and_read_at_once(
    agent: AgentEmulator, files: tuple[Path, Path]
) -> None:
    profiles = reader(agent.url, Events())
    before = profiles.current()
    write(files[1], {"version": "1", "default": {}, "tenants": {"acme": {"routes": ["chat"]}}})

    assert agent.reload_freeform()

    after = profiles.current()
    assert after.configuration_version != before.configuration_version
    assert not after.for_tenant("acme").may_use("summarize")


def test_a_refused_file_is_not_served_the_last_good_version_is(
    agent: AgentEmulator, files: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    profiles = reader(agent.url, Events())
    before = profiles.current()
    write(files[1], {"version": "1", "default": {"defaults": {"temperature": 7}}})

    assert not agent.reload_freeform()

    after = profiles.current()
    assert (after.source, after.configuration_version) == ("agent", before.configuration_version)
    assert "temperature: 7 is outside 0..2" in caplog.text


def test_when_the_agent_stops_the_last_good_document_is_served_with_an_event(agent: AgentEmulator) -> None:
    events = Events()
    profiles = reader(agent.url, events)
    good = profiles.current()
    agent.stop()

    snapshot = profiles.current()

    assert snapshot.source == "last_known_good"
    assert (snapshot.profiles, snapshot.configuration_version) == (good.profiles, good.configuration_version)
    assert snapshot.for_tenant("acme").system_prompt_prefix
    assert events.names == [EVENT_LAST_KNOWN_GOOD]
    assert events.seen[0][1]["reason"] == "URLError"


def test_a_profile_the_agent_does_not_serve_falls_back_like_a_failure(agent: AgentEmulator) -> None:
    events = Events()
    missing = PromptProfilesReader(
        agent_url=agent.url,
        application="switchboard",
        environment="local",
        profile="no-such-profile",
        on_event=events,
    )
    assert missing.current().profiles is PERMISSIVE
    assert events.seen == [(EVENT_BUILT_IN_DEFAULT, {"reason": "HTTPError"})]


def test_an_answer_the_gateway_refuses_is_an_event_and_the_last_good_is_served(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    served = tmp_path / "served.json"
    shutil.copy(files[1], served)
    # An agent that serves whatever the file holds (no check): what a broken deployment would serve.
    freeform = {PROMPT_PROFILES_NAME: FreeformConfiguration(served)}
    with AgentEmulator(files[0], port=0, poll_interval_s=60, freeform=freeform, **APPCONFIG_NAMES) as agent:
        events = Events()
        profiles = reader(agent.url, events)
        good = profiles.current()
        write(served, {"version": "1", "default": {}, "tenants": {"Not An Id": {}}})
        assert agent.reload_freeform()

        snapshot = profiles.current()

    assert (snapshot.source, snapshot.profiles) == ("last_known_good", good.profiles)
    assert events.names == [EVENT_ANSWER_INVALID, EVENT_LAST_KNOWN_GOOD]
    invalid = events.seen[0][1]
    assert "not a tenant id" in invalid["problems"][0]
    assert invalid["configuration_version"] == "2"


def test_with_nothing_ever_read_the_permissive_default_or_unavailable_when_asked(
    agent: AgentEmulator,
) -> None:
    url = agent.url
    agent.stop()
    events = Events()

    snapshot = reader(url, events).current()

    assert (snapshot.source, snapshot.profiles) == ("built_in_default", PERMISSIVE)
    assert snapshot.for_tenant("acme").may_use("anything")
    assert events.names == [EVENT_BUILT_IN_DEFAULT]
    with pytest.raises(ProfilesUnavailable):
        reader(url, Events(), fallback=None).current()


def test_the_emulator_refuses_to_start_on_a_refused_profiles_file(files: tuple[Path, Path]) -> None:
    write(files[1], {"version": "1", "default": {"extra": 1}})
    with pytest.raises(FlagDocumentError, match=r"default\.extra: unknown key"):
        AgentEmulator(files[0], port=0, freeform=agent_freeform(files[1]), **APPCONFIG_NAMES).start()


def test_the_gateway_reader_comes_from_the_environment_the_local_stack_builds(agent: AgentEmulator) -> None:
    from switchboard.routing.profile_client import reader_for_gateway
    from switchboard.settings import GatewaySettings
    from switchboard_local.emulation import LocalResources, handler_environment

    resources = LocalResources(
        region="us-east-1",
        options_table="options",
        keys_table="keys",
        payload_bucket="payloads",
        invoke_function="invoke",
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:requests",
    )
    environment = handler_environment(resources, agent_url=agent.url, endpoint_url=None)
    profiles = reader_for_gateway(GatewaySettings.from_env(environment))

    assert profiles is not None
    assert profiles.current().source == "agent"
    del environment["APPCONFIG_PROMPT_PROFILES"]
    assert reader_for_gateway(GatewaySettings.from_env(environment)) is None
