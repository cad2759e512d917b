"""Every synthesized function's environment satisfies that function's settings loaders.

Given the template `make test` synthesizes, when each of our functions' `Environment.Variables`
(CloudFormation references replaced by placeholder strings) is fed to the loaders its handler runs
at cold start (`switchboard.contract.handlers.SETTINGS_LOADERS`), then every loader accepts it, no
variable a loader reads is missing, and no variable is set that nothing reads. A variable renamed
on one side only (settings.py or infra) fails here, not at the first deployed request.
"""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.contract import env, handlers
from switchboard.contract.handlers import environment_problems


def placeholder(value: Any) -> str:
    """A CloudFormation value as the string a function would see, with references made up."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return f"ref-{arg}"
        if fn == "Fn::GetAtt":
            return f"att-{'-'.join(arg) if isinstance(arg, list) else arg}"
        if fn == "Fn::Join":
            separator, parts = arg
            return str(separator).join(placeholder(p) for p in parts)
        if fn == "Fn::Sub":
            return str(arg if isinstance(arg, str) else arg[0])
    raise AssertionError(f"no placeholder for {value!r}")


def our_function_environments(template_json: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    """logical id -> (handler, environment) for every function whose code is ours (``handlers.*``)."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for logical_id, resource in template_json["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        properties = resource["Properties"]
        # The gateway's Handler is Lambda Web Adapter's start script: it serves handlers.gateway.
        handler = handlers.python_handler(str(properties.get("Handler", "")))
        if not handler.startswith("handlers."):
            continue  # CDK's custom-resource framework functions
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        found[logical_id] = (handler, {k: placeholder(v) for k, v in variables.items()})
    return found


@pytest.fixture(scope="module")
def environments(template_json: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    return our_function_environments(template_json)


def test_every_handler_with_loaders_is_deployed(environments: dict[str, tuple[str, dict[str, str]]]) -> None:
    deployed = {handler for handler, _ in environments.values()}
    assert deployed == set(handlers.SETTINGS_LOADERS)


def test_every_function_environment_satisfies_its_loaders(
    environments: dict[str, tuple[str, dict[str, str]]],
) -> None:
    problems = [
        f"{logical_id}: {problem}"
        for logical_id, (handler, environment) in sorted(environments.items())
        for problem in environment_problems(handler, environment)
    ]
    assert problems == []


def _gateway_environment(environments: dict[str, tuple[str, dict[str, str]]]) -> dict[str, str]:
    (environment,) = [e for h, e in environments.values() if h == handlers.HANDLER_GATEWAY]
    return dict(environment)


def test_a_renamed_variable_fails_naming_both_sides(
    environments: dict[str, tuple[str, dict[str, str]]],
) -> None:
    # Given the gateway's synthesized environment with OPTIONS_TABLE renamed (infra changed alone)
    environment = _gateway_environment(environments)
    environment["OPTIONS_TABLE_NAME"] = environment.pop(env.OPTIONS_TABLE)

    # When it is checked against the gateway's loaders
    problems = environment_problems(handlers.HANDLER_GATEWAY, environment)

    # Then the loader's refusal names the missing variable and the stray one is named too
    assert any("GatewaySettings refuses" in p and env.OPTIONS_TABLE in p for p in problems), problems
    assert any("OPTIONS_TABLE_NAME is set but no settings loader" in p for p in problems), problems


def test_a_renamed_optional_variable_fails(environments: dict[str, tuple[str, dict[str, str]]]) -> None:
    # PAYLOAD_BUCKET has a default in GatewaySettings: the loader alone would accept its absence.
    environment = _gateway_environment(environments)
    environment["CLAIM_CHECK_BUCKET"] = environment.pop(env.PAYLOAD_BUCKET)

    problems = environment_problems(handlers.HANDLER_GATEWAY, environment)

    assert f"{handlers.HANDLER_GATEWAY}: {env.PAYLOAD_BUCKET} is read by " in problems[0], problems
    assert any("CLAIM_CHECK_BUCKET is set but" in p for p in problems), problems


def test_a_malformed_value_fails(environments: dict[str, tuple[str, dict[str, str]]]) -> None:
    environment = _gateway_environment(environments)
    environment[env.DEFAULT_ROUTES] = "[1, 2]"

    problems = environment_problems(handlers.HANDLER_GATEWAY, environment)

    assert any(env.DEFAULT_ROUTES in p and "JSON object" in p for p in problems), problems
