"""`make local` serves the tenant prompt profiles (`config/profiles.json`) through its AppConfig
agent emulator, and the gateway's environment names the profile its reader asks for."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from switchboard.routing.profile_client import reader_for_gateway
from switchboard.settings import GatewaySettings
from switchboard_local.emulation import PROMPT_PROFILES_NAME
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_local_agent_serves_config_profiles_json_to_the_gateways_reader(stack: LocalStack) -> None:
    path = f"/applications/switchboard/environments/local/configurations/{PROMPT_PROFILES_NAME}"
    with urllib.request.urlopen(stack.agent_url + path, timeout=5) as response:
        assert response.read() == (ROOT / "config" / "profiles.json").read_bytes()

    profiles = reader_for_gateway(GatewaySettings.from_env(dict(os.environ)))

    assert profiles is not None
    snapshot = profiles.current()
    assert snapshot.source == "agent"
    assert snapshot.for_tenant("acme").system_prompt_prefix.startswith("You are the assistant of Acme")
    assert snapshot.for_tenant("dev") == snapshot.profiles.default
