"""Properties of the synthesized Switchboard stack that matter (not a snapshot).

Given the app synthesized once with cdk-nag on (conftest), when we read the template, then the
security, resilience and wiring choices the design depends on are all there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from template_queries import (
    as_list,
    env_of,
    function_by_handler,
    of_type,
    only,
    role_of,
    role_statements,
)

from infra import constants, layers
from infra.config import (
    ConfigError,
    SwitchboardConfig,
    bedrock_targets,
    default_routes,
    load_cdk_json_context,
)
from infra.constructs.api import COMMON_RULES_COUNT_ONLY
from infra.constructs.functions import bedrock_resource_arns
from infra.stacks.switchboard_stack import retention

REGION = "us-east-1"
FLAGS = json.loads(constants.FLAGS_FILE.read_text())
OPTIONS = json.loads(constants.OPTIONS_FILE.read_text())

# --- Lambda functions ---------------------------------------------------------------------------


OUR_HANDLERS = (
    constants.HANDLER_GATEWAY,
    constants.HANDLER_AUTHORIZER,
    constants.HANDLER_INVOKE,
    constants.HANDLER_FLAGS_VALIDATOR,
    constants.HANDLER_SEED_OPTIONS,
    constants.HANDLER_CIRCUIT,
)


@pytest.mark.parametrize("handler", OUR_HANDLERS)
def test_every_function_is_arm64_on_the_tested_python_traced_with_powertools_and_retained_logs(
    template_json: dict[str, Any], handler: str
) -> None:
    logical_id, function = function_by_handler(template_json, handler)
    props = function["Properties"]
    assert props["Architectures"] == ["arm64"]
    assert props["Runtime"] == f"python{layers.LAMBDA_PYTHON_VERSION}"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert layers.powertools_layer_arn() in props["Layers"]
    env = env_of(function)
    assert env[constants.ENV_POWERTOOLS_SERVICE_NAME] == "switchboard"
    assert env[constants.ENV_POWERTOOLS_METRICS_NAMESPACE] == "Switchboard"
    # Prompts stay out of the logs; only the functions that could log one read the switch.
    if handler in (constants.HANDLER_GATEWAY, constants.HANDLER_INVOKE):
        assert env[constants.ENV_LOG_PROMPTS] == "false"
    else:
        assert constants.ENV_LOG_PROMPTS not in env
    # DynamoDB and Step Functions calls without botocore (the name the Lambda code reads).
    from switchboard.aws import LIGHT_CLIENT_ENV

    assert constants.ENV_LIGHT_AWS_CLIENT == LIGHT_CLIENT_ENV
    assert env[constants.ENV_LIGHT_AWS_CLIENT] == "1"
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert template_json["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 30
    # No managed policies: each role writes to its own log group only.
    role = template_json["Resources"][role_of(function)]
    assert "ManagedPolicyArns" not in role["Properties"], logical_id


def test_only_the_gateway_has_the_appconfig_extension_layer_from_our_map(
    template_json: dict[str, Any],
) -> None:
    extension = layers.appconfig_extension_arm64_arn(REGION)
    assert extension == "arn:aws:lambda:us-east-1:027255383542:layer:AWS-AppConfig-Extension-Arm64:254"
    for handler in OUR_HANDLERS:
        _, function = function_by_handler(template_json, handler)
        has_extension = extension in function["Properties"]["Layers"]
        assert has_extension == (handler == constants.HANDLER_GATEWAY), handler


def test_function_sizes_and_timeouts(template_json: dict[str, Any]) -> None:
    expected = {
        constants.HANDLER_GATEWAY: (512, constants.LAMBDA_MAX_TIMEOUT_S),  # streams: 15 minutes
        constants.HANDLER_AUTHORIZER: (256, 5),
        constants.HANDLER_INVOKE: (512, 120),
    }
    for handler, (memory, timeout) in expected.items():
        _, function = function_by_handler(template_json, handler)
        assert (function["Properties"]["MemorySize"], function["Properties"]["Timeout"]) == (memory, timeout)


def test_gateway_environment(template_json: dict[str, Any]) -> None:
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    env = env_of(gateway)
    assert env[constants.ENV_APPCONFIG_APPLICATION] == "Switchboard"
    assert env[constants.ENV_APPCONFIG_ENVIRONMENT] == "prod"
    assert env[constants.ENV_APPCONFIG_PROFILE] == "routing"
    assert env[constants.ENV_APPCONFIG_AGENT_URL] == "http://localhost:2772"
    assert env[constants.ENV_EXTENSION_POLL_INTERVAL] == "30"
    # The extension prefetches paths, the same path the gateway's agent client requests (and the
    # tenant prompt profiles', comma-separated).
    assert env[constants.ENV_EXTENSION_PREFETCH_LIST] == (
        "/applications/Switchboard/environments/prod/configurations/routing,"
        "/applications/Switchboard/environments/prod/configurations/prompt-profiles"
    )
    from switchboard.routing.agent_client import RoutingFlags

    client = RoutingFlags(
        agent_url=env[constants.ENV_APPCONFIG_AGENT_URL],
        application=env[constants.ENV_APPCONFIG_APPLICATION],
        environment=env[constants.ENV_APPCONFIG_ENVIRONMENT],
        profile=env[constants.ENV_APPCONFIG_PROFILE],
    )
    flags_path = env[constants.ENV_EXTENSION_PREFETCH_LIST].split(",")[0]
    assert client._url == env[constants.ENV_APPCONFIG_AGENT_URL] + flags_path
    assert set(env[constants.ENV_OPTIONS_TABLE]) == {"Ref"}
    assert set(env[constants.ENV_PAYLOAD_BUCKET]) == {"Ref"}
    machine_id, _ = only(template_json, "AWS::StepFunctions::StateMachine")
    assert env[constants.ENV_STATE_MACHINE_ARN] == {"Ref": machine_id}
    assert gateway["Properties"]["FunctionName"] == "Switchboard-gateway"


def test_default_routes_carry_each_routes_default_variant(template_json: dict[str, Any]) -> None:
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    routes = json.loads(env_of(gateway)[constants.ENV_DEFAULT_ROUTES])
    route_flags = {name for name, flag in FLAGS["flags"].items() if "chain" in flag.get("attributes", {})}
    assert set(routes) == route_flags
    assert routes["chat"]["chain"] == ["claude-haiku-us", "nova-lite-us"]
    assert routes["chat"]["degrade"] == ["smaller_model", "static", "reject"]
    assert routes["summarize"]["chain"] == ["claude-haiku-us", "nova-lite-eu"]
    assert routes["echo"]["chain"] == ["mock-echo"]


def test_authorizer_and_invoke_environment(template_json: dict[str, Any]) -> None:
    _, authorizer = function_by_handler(template_json, constants.HANDLER_AUTHORIZER)
    env = env_of(authorizer)
    assert set(env[constants.ENV_KEYS_TABLE]) == {"Ref"}
    assert "API_KEY_CACHE_TTL_S" not in env
    _, invoke = function_by_handler(template_json, constants.HANDLER_INVOKE)
    env = env_of(invoke)
    assert {constants.ENV_OPTIONS_TABLE, constants.ENV_PAYLOAD_BUCKET} <= set(env)
    assert constants.ENV_STATE_MACHINE_ARN not in env


# --- IAM ----------------------------------------------------------------------------------------


def test_invoke_role_may_call_exactly_the_seed_bedrock_models(template_json: dict[str, Any]) -> None:
    _, invoke = function_by_handler(template_json, constants.HANDLER_INVOKE)
    statements = role_statements(template_json, role_of(invoke))
    bedrock = [s for s in statements if any(a.startswith("bedrock:") for a in as_list(s["Action"]))]
    assert len(bedrock) == 1
    assert as_list(bedrock[0]["Action"]) == ["bedrock:InvokeModel"]
    resources = as_list(bedrock[0]["Resource"])
    assert "*" not in resources

    rendered = set()
    for resource in resources:
        if isinstance(resource, str):
            rendered.add(resource)
        else:
            parts = resource["Fn::Join"][1]
            rendered.add("".join("{account}" if p == {"Ref": "AWS::AccountId"} else p for p in parts))
    expected = set()
    for option in OPTIONS:
        if option["provider"] != "bedrock":
            continue
        model: str = option["model"]
        geography, _, base = model.partition(".")
        if geography in ("us", "eu", "apac", "global"):  # a cross-region profile: any region it routes to
            expected.add(f"arn:aws:bedrock:{option['region']}:{{account}}:inference-profile/{model}")
            expected.add(f"arn:aws:bedrock:*::foundation-model/{base}")
        else:  # a model id (e.g. Titan Text Embeddings V2): that model in the option's region only
            expected.add(f"arn:aws:bedrock:{option['region']}::foundation-model/{model}")
    assert "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0" in expected
    assert rendered == expected


def test_invoke_role_third_party_scopes(template_json: dict[str, Any]) -> None:
    _, invoke = function_by_handler(template_json, constants.HANDLER_INVOKE)
    statements = role_statements(template_json, role_of(invoke))
    by_action = {json.dumps(s["Action"]): s for s in statements}
    sagemaker = by_action['"sagemaker:InvokeEndpoint"']["Resource"]["Fn::Join"][1]
    assert sagemaker[-1] == ":endpoint/switchboard-*"
    secrets = by_action['"secretsmanager:GetSecretValue"']["Resource"]["Fn::Join"][1]
    assert secrets[-1] == ":secret:switchboard/*"


def test_gateway_grants_are_scoped(template_json: dict[str, Any]) -> None:
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    statements = {s.get("Sid"): s for s in role_statements(template_json, role_of(gateway))}
    machine_id = only(template_json, "AWS::StepFunctions::StateMachine")[0]
    assert statements["RunRequestWorkflow"]["Action"] == "states:StartSyncExecution"
    assert statements["RunRequestWorkflow"]["Resource"] == {"Ref": machine_id}
    appconfig = statements["RoutingFlags"]
    assert sorted(appconfig["Action"]) == [
        "appconfig:GetLatestConfiguration",
        "appconfig:StartConfigurationSession",
    ]
    parts = appconfig["Resource"]["Fn::Join"][1]
    profile_id = routing_flags_only(template_json, "AWS::AppConfig::ConfigurationProfile")[0]
    assert parts[-2:] == ["/configuration/", {"Ref": profile_id}]
    assert sorted(statements["ClaimCheckReadWrite"]["Action"]) == ["s3:GetObject", "s3:PutObject"]


def test_authorizer_reads_the_keys_table_and_no_api_gateway_key(template_json: dict[str, Any]) -> None:
    """Issue 10 item 8: `apigateway:GET` on /apikeys/* would let it read every API key's value."""
    _, authorizer = function_by_handler(template_json, constants.HANDLER_AUTHORIZER)
    statements = role_statements(template_json, role_of(authorizer))
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert not [a for a in actions if a.startswith("apigateway:")]
    assert "dynamodb:GetItem" in actions


def test_invoke_step_may_write_large_answers_to_the_payload_bucket(template_json: dict[str, Any]) -> None:
    """Issue 10 item 2: answers over the inline limit are PutObject'ed by the invoke step."""
    _, invoke = function_by_handler(template_json, constants.HANDLER_INVOKE)
    statements = {s.get("Sid"): s for s in role_statements(template_json, role_of(invoke))}
    claim_check = statements["ClaimCheckReadWrite"]
    assert sorted(as_list(claim_check["Action"])) == ["s3:GetObject", "s3:PutObject"]
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    gateway_statements = {s.get("Sid"): s for s in role_statements(template_json, role_of(gateway))}
    # The same objects the gateway writes requests to: the stack's payload bucket, nothing else.
    assert claim_check["Resource"] == gateway_statements["ClaimCheckReadWrite"]["Resource"]


STAR_ALLOWED_ACTION_PREFIXES = (
    "xray:",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)


def test_star_resources_only_for_actions_without_resource_level_permissions(
    template_json: dict[str, Any],
) -> None:
    for logical_id, policy in of_type(template_json, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "*" in as_list(statement["Resource"]):
                for action in as_list(statement["Action"]):
                    assert action.startswith(STAR_ALLOWED_ACTION_PREFIXES), (logical_id, action)


def test_workflow_invokes_the_invoke_and_circuit_functions_only(template_json: dict[str, Any]) -> None:
    _, machine = only(template_json, "AWS::StepFunctions::StateMachine")
    invoke_id, _ = function_by_handler(template_json, constants.HANDLER_INVOKE)
    circuit_id, _ = function_by_handler(template_json, constants.HANDLER_CIRCUIT)
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invokes = [s for s in role_statements(template_json, role_id) if s["Action"] == "lambda:InvokeFunction"]
    assert len(invokes) == 1
    # Unqualified ARNs only (no `<arn>:*`).
    assert sorted(as_list(invokes[0]["Resource"]), key=json.dumps) == sorted(
        [{"Fn::GetAtt": [invoke_id, "Arn"]}, {"Fn::GetAtt": [circuit_id, "Arn"]}], key=json.dumps
    )


# --- Data ---------------------------------------------------------------------------------------


def test_tables_are_on_demand_recoverable_encrypted_and_protected(template: Template) -> None:
    key_schemas: list[tuple[str, ...]] = [
        (constants.OPTIONS_TABLE_PARTITION_KEY,),
        (constants.KEYS_TABLE_PARTITION_KEY,),
        (constants.CIRCUIT_TABLE_PARTITION_KEY, constants.CIRCUIT_TABLE_SORT_KEY),
        (constants.CACHE_TABLE_PARTITION_KEY,),
        (constants.USAGE_TABLE_PARTITION_KEY, constants.USAGE_TABLE_SORT_KEY),
    ]
    for keys in key_schemas:
        template.has_resource(
            "AWS::DynamoDB::Table",
            {
                "Properties": Match.object_like(
                    {
                        "KeySchema": [
                            {"AttributeName": key, "KeyType": key_type}
                            for key, key_type in zip(keys, ("HASH", "RANGE"), strict=False)
                        ],
                        "AttributeDefinitions": [
                            {"AttributeName": key, "AttributeType": "S"} for key in keys
                        ],
                        "BillingMode": "PAY_PER_REQUEST",
                        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                        "SSESpecification": {"SSEEnabled": True},
                        "DeletionProtectionEnabled": True,
                    }
                ),
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
            },
        )
    assert len(of_type(template.to_json(), "AWS::DynamoDB::Table")) == len(key_schemas)


def test_payload_bucket_is_a_private_encrypted_one_day_claim_check(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {
                "Rules": [Match.object_like({"ExpirationInDays": 1, "Status": "Enabled"})]
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_seed_options_resource_carries_the_options_document(template_json: dict[str, Any]) -> None:
    _, seed = only(template_json, "Custom::SwitchboardSeedOptions")
    props = seed["Properties"]
    assert json.loads(props[constants.SEED_PROP_OPTIONS]) == OPTIONS
    options_table_id = next(
        k
        for k, v in of_type(template_json, "AWS::DynamoDB::Table").items()
        if v["Properties"]["KeySchema"][0]["AttributeName"] == constants.OPTIONS_TABLE_PARTITION_KEY
    )
    assert props[constants.SEED_PROP_TABLE_NAME] == {"Ref": options_table_id}
    _, seed_fn = function_by_handler(template_json, constants.HANDLER_SEED_OPTIONS)
    writes = [
        s
        for s in role_statements(template_json, role_of(seed_fn))
        if "dynamodb:PutItem" in as_list(s["Action"])
    ]
    assert [w["Resource"] for w in writes] == [{"Fn::GetAtt": [options_table_id, "Arn"]}]


# --- Step Functions -----------------------------------------------------------------------------


def test_request_workflow_is_express_logged_traced_and_keeps_prompts_out_of_logs(
    template_json: dict[str, Any],
) -> None:
    _, machine = only(template_json, "AWS::StepFunctions::StateMachine")
    props = machine["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert props["TracingConfiguration"] == {"Enabled": True}
    definition = props["DefinitionString"]
    text = definition if isinstance(definition, str) else json.dumps(definition)
    assert "InvokeCandidate" in text
    invoke_id, _ = function_by_handler(template_json, constants.HANDLER_INVOKE)
    assert props["DefinitionSubstitutions"][constants.SUBST_INVOKE_FUNCTION_ARN] == {
        "Fn::GetAtt": [invoke_id, "Arn"]
    }


# --- API Gateway --------------------------------------------------------------------------------


def test_rest_api_is_regional_with_authorizer_api_keys(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {"EndpointConfiguration": {"Types": ["REGIONAL"]}, "ApiKeySourceType": "AUTHORIZER"},
    )


def test_every_method_requires_the_custom_authorizer_and_an_api_key(template_json: dict[str, Any]) -> None:
    authorizer_id, authorizer = only(template_json, "AWS::ApiGateway::Authorizer")
    assert authorizer["Properties"]["Type"] == "REQUEST"
    assert authorizer["Properties"]["IdentitySource"] == "method.request.header.Authorization"
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 60
    methods = [m["Properties"] for m in of_type(template_json, "AWS::ApiGateway::Method").values()]
    routes = set()
    for method in methods:
        if method["HttpMethod"] == "OPTIONS":
            continue
        assert method["ApiKeyRequired"] is True
        assert method["AuthorizationType"] == "CUSTOM"
        assert method["AuthorizerId"] == {"Ref": authorizer_id}
        assert method["Integration"]["Type"] == "AWS_PROXY"
        routes.add(method["HttpMethod"])
    assert routes == {"POST", "GET"}


@pytest.mark.parametrize(
    ("response_type", "status"),
    [
        ("UNAUTHORIZED", "401"),
        ("ACCESS_DENIED", "403"),
        ("MISSING_AUTHENTICATION_TOKEN", "404"),
        ("THROTTLED", "429"),
        ("QUOTA_EXCEEDED", "429"),
        ("REQUEST_TOO_LARGE", "413"),
        ("INTEGRATION_TIMEOUT", "504"),
        ("UNSUPPORTED_MEDIA_TYPE", "415"),
        ("INVALID_API_KEY", "403"),
        ("WAF_FILTERED", "403"),
        ("AUTHORIZER_FAILURE", "500"),
        ("INTEGRATION_FAILURE", "504"),
        # No status on the fallbacks: setting one would re-status every other 4XX/5XX response.
        ("DEFAULT_4XX", None),
        ("DEFAULT_5XX", None),
    ],
)
def test_gateway_responses_are_openai_shaped_json(
    template_json: dict[str, Any], response_type: str, status: str | None
) -> None:
    found = [
        r["Properties"]
        for r in of_type(template_json, "AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == response_type
    ]
    assert len(found) == 1
    response = found[0]
    assert response.get("StatusCode") == status
    assert response["ResponseParameters"] == {"gatewayresponse.header.Content-Type": "'application/json'"}
    # API Gateway substitutes $context.error.messageString as a quoted JSON string.
    template = response["ResponseTemplates"]["application/json"]
    body = json.loads(template.replace("$context.error.messageString", '"Unsupported Media Type"'))
    error = body["error"]
    assert error["message"] and error["type"] and error["code"]
    assert error["request_id"] == "$context.requestId"


def test_usage_plans_per_tier_on_the_stage(template_json: dict[str, Any]) -> None:
    context = load_cdk_json_context()
    plans = {
        p["Properties"]["UsagePlanName"]: p["Properties"]
        for p in of_type(template_json, "AWS::ApiGateway::UsagePlan").values()
    }
    assert set(plans) == {"switchboard-standard", "switchboard-premium"}
    stage_id, _ = only(template_json, "AWS::ApiGateway::Stage")
    for tier in constants.TIERS:
        plan = plans[f"switchboard-{tier}"]
        limits = context["throttling"][tier]
        assert plan["Throttle"] == {"RateLimit": limits["rate_limit"], "BurstLimit": limits["burst_limit"]}
        assert plan["ApiStages"][0]["Stage"] == {"Ref": stage_id}


def test_stage_logs_json_traces_and_never_logs_bodies(template_json: dict[str, Any]) -> None:
    _, stage = only(template_json, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "prod"
    assert props["TracingEnabled"] is True
    access_format = json.loads(props["AccessLogSetting"]["Format"])
    assert access_format["requestId"] == "$context.requestId"
    settings = props["MethodSettings"][0]
    assert settings["DataTraceEnabled"] is False
    assert settings["LoggingLevel"] == "ERROR"


def test_waf_refuses_a_declared_body_over_the_limit_with_413_first(template_json: dict[str, Any]) -> None:
    """Issue 10 item 5: the 413 comes from in front of Lambda, whose 6 MB covers the whole event."""
    import re

    from switchboard.limits import MAX_REQUEST_BODY_BYTES

    _, acl = only(template_json, "AWS::WAFv2::WebACL")
    props = acl["Properties"]
    first = min(props["Rules"], key=lambda r: r["Priority"])
    assert first["Name"] == "RequestBodyOverLimit"
    response = first["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 413
    body = json.loads(props["CustomResponseBodies"][response["CustomResponseBodyKey"]]["Content"])
    assert body["error"]["code"] == "request_too_large"
    statement = first["Statement"]["RegexMatchStatement"]
    assert statement["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    pattern = statement["RegexString"]
    assert len(pattern) <= 512  # WAF's limit for an inline regex
    for length, refused in [(0, False), (MAX_REQUEST_BODY_BYTES, False), (MAX_REQUEST_BODY_BYTES + 1, True)]:
        assert bool(re.fullmatch(pattern, str(length))) is refused, length
        assert bool(re.fullmatch(pattern, "00" + str(length))) is refused, length


def test_waf_counts_body_rules_instead_of_blocking_long_prompts(template_json: dict[str, Any]) -> None:
    acl_id, acl = only(template_json, "AWS::WAFv2::WebACL")
    assert acl["Properties"]["Scope"] == "REGIONAL"
    common = next(
        r
        for r in acl["Properties"]["Rules"]
        if r["Statement"].get("ManagedRuleGroupStatement", {}).get("Name") == "AWSManagedRulesCommonRuleSet"
    )
    overrides = {
        o["Name"]: o["ActionToUse"]
        for o in common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    }
    assert overrides["SizeRestrictions_BODY"] == {"Count": {}}
    assert set(overrides) == set(COMMON_RULES_COUNT_ONLY)
    _, association = only(template_json, "AWS::WAFv2::WebACLAssociation")
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}


# --- AppConfig ----------------------------------------------------------------------------------


def routing_flags_only(template_json: dict[str, Any], cfn_type: str) -> tuple[str, dict[str, Any]]:
    """The routing flags' resource of a type (the tenant prompt profiles have their own beside it)."""
    found = {k: v for k, v in of_type(template_json, cfn_type).items() if k.startswith("RoutingFlags")}
    assert len(found) == 1, f"expected one routing-flags {cfn_type}, found {sorted(found)}"
    return next(iter(found.items()))


def test_routing_flags_profile_is_feature_flags_with_a_lambda_validator(
    template_json: dict[str, Any],
) -> None:
    _, profile = routing_flags_only(template_json, "AWS::AppConfig::ConfigurationProfile")
    validator_id, _ = function_by_handler(template_json, constants.HANDLER_FLAGS_VALIDATOR)
    assert profile["Properties"]["Type"] == "AWS.AppConfig.FeatureFlags"
    assert profile["Properties"]["Name"] == "routing"
    assert profile["Properties"]["Validators"] == [
        {"Type": "LAMBDA", "Content": {"Fn::GetAtt": [validator_id, "Arn"]}}
    ]
    permission = next(
        p["Properties"]
        for p in of_type(template_json, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "appconfig.amazonaws.com"
    )
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_hosted_version_is_config_flags_json_and_is_deployed_after_the_seed(
    template_json: dict[str, Any],
) -> None:
    _, version = routing_flags_only(template_json, "AWS::AppConfig::HostedConfigurationVersion")
    assert json.loads(version["Properties"]["Content"]) == FLAGS
    assert version["Properties"]["ContentType"] == "application/json"
    seed_id, _ = only(template_json, "Custom::SwitchboardSeedOptions")
    _, deployment = routing_flags_only(template_json, "AWS::AppConfig::Deployment")
    assert seed_id in deployment["DependsOn"]
    _, strategy = only(template_json, "AWS::AppConfig::DeploymentStrategy")
    assert strategy["Properties"]["GrowthType"] == "LINEAR"
    assert strategy["Properties"]["FinalBakeTimeInMinutes"] > 0


def test_environment_is_monitored_by_the_gateway_errors_alarm_with_a_scoped_role(
    template_json: dict[str, Any],
) -> None:
    _, environment = only(template_json, "AWS::AppConfig::Environment")
    monitors = environment["Properties"]["Monitors"]
    assert len(monitors) == 1
    alarm_id = monitors[0]["AlarmArn"]["Fn::GetAtt"][0]
    assert monitors[0]["AlarmArn"] == {"Fn::GetAtt": [alarm_id, "Arn"]}
    alarm = template_json["Resources"][alarm_id]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    role_id = monitors[0]["AlarmRoleArn"]["Fn::GetAtt"][0]
    assert role_statements(template_json, role_id) == [
        {
            "Action": "cloudwatch:DescribeAlarms",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [alarm_id, "Arn"]},
        }
    ]
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    assert alarm["Properties"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": gateway["Properties"]["FunctionName"]}
    ]
    assert alarm["Properties"]["MetricName"] == "Errors"


# --- Outputs and tooling ------------------------------------------------------------------------


def test_outputs_include_everything_the_cli_reads(template_json: dict[str, Any]) -> None:
    from switchboard_local.cli.target import OUTPUT_KEYS

    outputs = template_json["Outputs"]
    for key in OUTPUT_KEYS.values():
        assert key in outputs, key
    for key in (
        constants.OUTPUT_STATE_MACHINE_ARN,
        constants.OUTPUT_APPCONFIG_APPLICATION,
        constants.OUTPUT_APPCONFIG_ENVIRONMENT,
        constants.OUTPUT_APPCONFIG_PROFILE,
        constants.OUTPUT_OPENAI_BASE_URL,
    ):
        assert key in outputs, key


def test_cfn_lint_is_clean(template_files: list[Path]) -> None:
    from cfnlint.api import lint_file

    for path in template_files:
        matches = lint_file(path)
        assert not matches, "\n".join(str(m) for m in matches)


# --- Pure helpers (no synthesis) ----------------------------------------------------------------


def test_default_routes_skip_disabled_defaults_and_accept_plain_flags() -> None:
    document = {
        "values": {
            "a": {
                "_variants": [
                    {"name": "x", "rule": '(eq $tier "p")', "attributeValues": {"chain": ["p"]}},
                    {"name": "d", "enabled": True, "attributeValues": {"chain": ["d"]}},
                ]
            },
            "b": {"_variants": [{"name": "d", "enabled": False, "attributeValues": {"chain": ["d"]}}]},
            "c": {"enabled": True, "chain": ["c1"], "degrade": ["reject"]},
        }
    }
    assert default_routes(document) == {"a": {"chain": ["d"]}, "c": {"chain": ["c1"], "degrade": ["reject"]}}
    with pytest.raises(ConfigError):
        default_routes({"values": {"a": {"_variants": [{"name": "x", "rule": "(eq $a 1)"}]}}})


def test_bedrock_targets_split_profiles_from_models() -> None:
    targets = bedrock_targets(
        [
            {
                "id": "p",
                "provider": "bedrock",
                "model": "global.anthropic.claude-x-v1:0",
                "region": "us-west-2",
            },
            {"id": "m", "provider": "bedrock", "model": "amazon.titan-text-v1"},
            {"id": "s", "provider": "sagemaker"},
        ],
        default_region="eu-west-1",
    )
    arns = [r.nag_form for r in bedrock_resource_arns(targets)]
    assert arns == [
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-x-v1:0",
        "arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-text-v1",
        "arn:aws:bedrock:us-west-2:<AWS::AccountId>:inference-profile/global.anthropic.claude-x-v1:0",
    ]


def test_unmapped_region_fails_with_a_clear_message() -> None:
    with pytest.raises(layers.UnsupportedRegionError, match="xx-nowhere-1"):
        layers.appconfig_extension_arm64_arn("xx-nowhere-1")
    for region in ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"):
        assert layers.appconfig_extension_arm64_arn(region).startswith(f"arn:aws:lambda:{region}:")
    # Spot checks against the AWS AppConfig user guide's ARM64 table (version 2.0.17054.0).
    assert layers.appconfig_extension_arm64_arn("eu-west-1") == (
        "arn:aws:lambda:eu-west-1:434848589818:layer:AWS-AppConfig-Extension-Arm64:241"
    )
    assert layers.appconfig_extension_arm64_arn("mx-central-1") == (
        "arn:aws:lambda:mx-central-1:891376990304:layer:AWS-AppConfig-Extension-Arm64:141"
    )


def test_context_values_given_with_dash_c_are_strings() -> None:
    context = {
        **load_cdk_json_context(),
        "deletion_protection": "false",
        "log_retention_days": "7",
        "throttling": '{"standard": {"rate_limit": 1, "burst_limit": 2}, "premium": {"rate_limit": 3, '
        '"burst_limit": 4}}',
    }
    settings = SwitchboardConfig.from_context(context.get, environ={"CDK_DEFAULT_REGION": "eu-west-1"})
    assert settings.deletion_protection is False
    assert settings.log_retention_days == 7
    assert settings.region == "eu-west-1"
    assert settings.throttling["premium"].burst_limit == 4
    assert settings.throttling["standard"].quota_per_day is None
    with pytest.raises(ConfigError):
        SwitchboardConfig.from_context({"deletion_protection": "maybe"}.get, environ={})
    with pytest.raises(ConfigError):
        retention(8)


@pytest.mark.parametrize(
    "handler",
    [
        constants.HANDLER_GATEWAY,
        constants.HANDLER_AUTHORIZER,
        constants.HANDLER_INVOKE,
        constants.HANDLER_CIRCUIT,
    ],
)
def test_request_path_functions_leave_the_xray_sdk_off_by_default(
    template_json: dict[str, Any], handler: str
) -> None:
    """Active tracing stays on; the SDK's 0.2-0.3 s of cold start is opt-in (context `xray_sdk`)."""
    _, function = function_by_handler(template_json, handler)
    assert env_of(function)[constants.ENV_XRAY_SDK] == "false"
    assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}


def test_opting_into_the_xray_sdk_sends_aws_calls_through_botocore(tmp_path: Path) -> None:
    """botocore's calls are what the SDK traces: with it on, the light JSON client steps aside."""
    from app import build_app
    from tests.infra.conftest import TEST_CONTEXT

    build_app(outdir=str(tmp_path), context={**TEST_CONTEXT, "xray_sdk": True}).synth()
    (template_file,) = tmp_path.glob("*.template.json")
    template_json = json.loads(template_file.read_text())
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    env = env_of(gateway)
    assert env[constants.ENV_XRAY_SDK] == "true"
    assert env[constants.ENV_LIGHT_AWS_CLIENT] == "0"


def test_without_the_managed_waf_rules_the_body_size_guard_still_runs(tmp_path: Path) -> None:
    """`waf_enabled: false` drops the managed rule groups, never the 413 in front of Lambda."""
    from app import build_app
    from tests.infra.conftest import TEST_CONTEXT

    build_app(outdir=str(tmp_path), context={**TEST_CONTEXT, "waf_enabled": False}).synth()
    (template_file,) = tmp_path.glob("*.template.json")
    template_json = json.loads(template_file.read_text())
    _, acl = only(template_json, "AWS::WAFv2::WebACL")
    assert [r["Name"] for r in acl["Properties"]["Rules"]] == ["RequestBodyOverLimit"]
    only(template_json, "AWS::WAFv2::WebACLAssociation")
