"""Environment settings: checked once at cold start, with every problem named."""

from __future__ import annotations

import pytest

from switchboard.settings import AuthorizerSettings, GatewaySettings, InvokeSettings, SettingsError

GATEWAY = {
    "OPTIONS_TABLE": "options",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:r",
    "APPCONFIG_APPLICATION": "Switchboard",
    "APPCONFIG_ENVIRONMENT": "prod",
    "APPCONFIG_PROFILE": "routing",
}


def test_gateway_defaults_and_parsing() -> None:
    settings = GatewaySettings.from_env(
        {
            **GATEWAY,
            "DEFAULT_ROUTES": '{"chat": {"chain": ["a"]}}',
            "LOG_PROMPTS": "true",
            "WORKFLOW_MODE": "poll",
        }
    )
    assert settings.default_routes == {"chat": {"chain": ["a"]}}
    assert settings.log_prompts is True and settings.workflow_mode == "poll"
    assert settings.appconfig_agent_url == "http://localhost:2772" and settings.request_budget_ms == 25000


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({}, "missing OPTIONS_TABLE, STATE_MACHINE_ARN"),
        ({**GATEWAY, "WORKFLOW_MODE": "async"}, "WORKFLOW_MODE"),
        ({**GATEWAY, "REQUEST_BUDGET_MS": "10"}, "REQUEST_BUDGET_MS"),
        ({**GATEWAY, "LOG_PROMPTS": "maybe"}, "LOG_PROMPTS"),
        ({**GATEWAY, "DEFAULT_ROUTES": "[1]"}, "DEFAULT_ROUTES"),
    ],
)
def test_bad_environment_fails_loudly(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        GatewaySettings.from_env(environ)


def test_missing_lists_only_required_variables() -> None:
    with pytest.raises(SettingsError) as caught:
        AuthorizerSettings.from_env({})
    assert "KEYS_TABLE" in str(caught.value)


def test_invoke_optional_values() -> None:
    settings = InvokeSettings.from_env({"OPTIONS_TABLE": "o", "OPTIONS_CACHE_TTL_S": "1.5"})
    assert settings.options_cache_ttl_s == 1.5 and settings.circuit_table is None
