"""The synthesized tenant prompt profiles: a freeform AppConfig profile with a Lambda validator,
deployed (after the flags) to the flags' alarm-monitored environment with their strategy; the
validator may write its logs and nothing else; the gateway is told the profile, prefetches it and
may read exactly it through the extension.
"""

from __future__ import annotations

import json
from typing import Any

from template_queries import env_of, function_by_handler, of_type, role_of, role_statements

from infra import constants
from switchboard.contract import env as names

PROFILES = json.loads(constants.PROFILES_FILE.read_text())


def one(template_json: dict[str, Any], cfn_type: str, prefix: str) -> tuple[str, dict[str, Any]]:
    found = {k: v for k, v in of_type(template_json, cfn_type).items() if k.startswith(prefix)}
    assert len(found) == 1, f"expected one {cfn_type} under {prefix}, found {sorted(found)}"
    return next(iter(found.items()))


def test_the_profile_is_freeform_hosted_and_checked_by_its_own_lambda_validator(
    template_json: dict[str, Any],
) -> None:
    profile_id, profile = one(template_json, "AWS::AppConfig::ConfigurationProfile", "PromptProfiles")
    validator_id, _ = function_by_handler(template_json, constants.HANDLER_PROFILES_VALIDATOR)
    flags_profile_id, flags_profile = one(
        template_json, "AWS::AppConfig::ConfigurationProfile", "RoutingFlags"
    )
    properties = profile["Properties"]
    assert properties["Name"] == "prompt-profiles"
    assert properties["Type"] == "AWS.Freeform"
    assert properties["LocationUri"] == "hosted"
    assert properties["ApplicationId"] == flags_profile["Properties"]["ApplicationId"]
    assert properties["Validators"] == [{"Type": "LAMBDA", "Content": {"Fn::GetAtt": [validator_id, "Arn"]}}]
    permission = next(
        p["Properties"]
        for p in of_type(template_json, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [validator_id, "Arn"]}
    )
    assert permission["Principal"] == "appconfig.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert profile_id != flags_profile_id


def test_the_hosted_version_is_config_profiles_json(template_json: dict[str, Any]) -> None:
    _, version = one(template_json, "AWS::AppConfig::HostedConfigurationVersion", "PromptProfiles")
    assert json.loads(version["Properties"]["Content"]) == PROFILES
    assert version["Properties"]["ContentType"] == "application/json"


def test_it_deploys_after_the_flags_to_their_monitored_environment_with_their_strategy(
    template_json: dict[str, Any],
) -> None:
    flags_deployment_id, flags_deployment = one(template_json, "AWS::AppConfig::Deployment", "RoutingFlags")
    _, deployment = one(template_json, "AWS::AppConfig::Deployment", "PromptProfiles")
    profile_id, _ = one(template_json, "AWS::AppConfig::ConfigurationProfile", "PromptProfiles")
    version_id, _ = one(template_json, "AWS::AppConfig::HostedConfigurationVersion", "PromptProfiles")
    properties, flags_properties = deployment["Properties"], flags_deployment["Properties"]
    assert properties["ConfigurationProfileId"] == {"Ref": profile_id}
    assert properties["ConfigurationVersion"] == {"Ref": version_id}
    for shared in ("ApplicationId", "EnvironmentId", "DeploymentStrategyId"):
        assert properties[shared] == flags_properties[shared], shared
    # One deployment at a time per environment: this one waits for the flags'.
    assert flags_deployment_id in deployment.get("DependsOn", [])
    # That environment rolls back on the gateway errors alarm (one environment, one monitor).
    (environment,) = of_type(template_json, "AWS::AppConfig::Environment").values()
    assert properties["EnvironmentId"] == {
        "Ref": next(iter(of_type(template_json, "AWS::AppConfig::Environment")))
    }
    assert len(environment["Properties"]["Monitors"]) == 1


def test_the_validator_may_write_its_logs_and_nothing_else(template_json: dict[str, Any]) -> None:
    _, validator = function_by_handler(template_json, constants.HANDLER_PROFILES_VALIDATOR)
    actions = {
        action
        for statement in role_statements(template_json, role_of(validator))
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert actions <= {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }, actions
    assert "logs:PutLogEvents" in actions
    assert set(env_of(validator)) <= set(names.READ_OUTSIDE_SETTINGS)


def test_the_gateway_is_told_the_profile_prefetches_it_and_may_read_exactly_it(
    template_json: dict[str, Any],
) -> None:
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    environment = env_of(gateway)
    assert environment[names.APPCONFIG_PROMPT_PROFILES] == "prompt-profiles"
    prefetched = environment[names.EXTENSION_PREFETCH_LIST].split(",")
    assert "/applications/Switchboard/environments/prod/configurations/prompt-profiles" in prefetched

    from switchboard.routing.profile_client import PromptProfilesReader

    reader = PromptProfilesReader(
        agent_url=environment[names.APPCONFIG_AGENT_URL],
        application=environment[names.APPCONFIG_APPLICATION],
        environment=environment[names.APPCONFIG_ENVIRONMENT],
        profile=environment[names.APPCONFIG_PROMPT_PROFILES],
    )
    assert reader._url == environment[names.APPCONFIG_AGENT_URL] + prefetched[1]

    statements = {s.get("Sid"): s for s in role_statements(template_json, role_of(gateway))}
    grant = statements["PromptProfiles"]
    assert sorted(grant["Action"]) == [
        "appconfig:GetLatestConfiguration",
        "appconfig:StartConfigurationSession",
    ]
    profile_id, _ = one(template_json, "AWS::AppConfig::ConfigurationProfile", "PromptProfiles")
    environment_id = next(iter(of_type(template_json, "AWS::AppConfig::Environment")))
    parts = grant["Resource"]["Fn::Join"][1]
    assert parts[-2:] == ["/configuration/", {"Ref": profile_id}]
    assert any(environment_id in json.dumps(part) for part in parts)
    # The profile's ARN is in no other gateway statement: reading it is this grant alone.
    others = [s for sid, s in statements.items() if sid != "PromptProfiles"]
    assert not [s for s in others if json.dumps({"Ref": profile_id}) in json.dumps(s)]
