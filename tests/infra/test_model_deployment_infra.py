"""The model lifecycle's infrastructure, read from the template the session synthesized (cdk-nag on).

Given the app synthesized with `cdk.json`'s `model_families`, when we read the template, then the
EventBridge rule matches the documented state-change event for our groups, the Standard state
machine carries the blue/green update with the alarms and the adapter path, and only the workflow
may pass only the SageMaker execution role.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path("/work/shared/fixtures/sagemaker-model-package-state-change.json")
SAMPLE_EVENT: dict[str, Any] = (
    json.loads(FIXTURE.read_text())
    if FIXTURE.exists()
    else {
        "version": "0",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "region": "us-east-2",
        "resources": [],
        "detail": {"ModelPackageGroupName": "x", "ModelApprovalStatus": "Rejected"},
    }
)


def _families() -> list[dict[str, Any]]:
    families: list[dict[str, Any]] = json.loads((ROOT / "cdk.json").read_text())["context"]["model_families"]
    return families


def _of_type(template_json: dict[str, Any], kind: str, prefix: str = "ModelDeployment") -> dict[str, Any]:
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == kind and k.startswith(prefix)}


def _one(template_json: dict[str, Any], kind: str, prefix: str = "ModelDeployment") -> tuple[str, Any]:
    found = _of_type(template_json, kind, prefix)
    assert len(found) == 1, (kind, list(found))
    return next(iter(found.items()))


def _state_machine(template_json: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    logical_id, resource = _one(template_json, "AWS::StepFunctions::StateMachine")
    props = resource["Properties"]
    return logical_id, json.loads(props["DefinitionString"]), props["DefinitionSubstitutions"]


def _rule_pattern(template_json: dict[str, Any]) -> dict[str, Any]:
    rules = {
        k: v
        for k, v in _of_type(template_json, "AWS::Events::Rule").items()
        if "EventPattern" in v["Properties"]
    }
    assert len(rules) == 1
    pattern: dict[str, Any] = next(iter(rules.values()))["Properties"]["EventPattern"]
    return pattern


# --------------------------------------------------------------------------------------------------
# EventBridge


def test_rule_targets_the_standard_state_machine(template_json: dict[str, Any]) -> None:
    sm_id, _, _ = _state_machine(template_json)
    rules = [
        v for v in _of_type(template_json, "AWS::Events::Rule").values() if "EventPattern" in v["Properties"]
    ]
    assert rules[0]["Properties"]["Targets"][0]["Arn"] == {"Ref": sm_id}
    props = template_json["Resources"][sm_id]["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def test_pattern_matches_approved_and_rejected_versions_of_our_groups_only(
    template_json: dict[str, Any], emulated_aws: None
) -> None:
    """moto's EventBridge matches patterns; its put_events raises for SFN targets, so use SQS."""
    pattern = _rule_pattern(template_json)
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="approvals")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="approvals", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="approvals", Targets=[{"Id": "q", "Arn": queue_arn}])
    group = _families()[0]["group"]

    def send(group_name: str, status: str) -> bool:
        event = copy.deepcopy(SAMPLE_EVENT)
        event["detail"].update(ModelPackageGroupName=group_name, ModelApprovalStatus=status)
        events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                }
            ]
        )
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in received:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(received)

    assert send(group, "Approved")
    assert send(group, "Rejected")  # the rollback path: the workflow decides whether the version was live
    assert not send(group, "PendingManualApproval")
    assert not send(SAMPLE_EVENT["detail"]["ModelPackageGroupName"], "Approved")  # not our group


def test_pattern_names_every_configured_group(template_json: dict[str, Any]) -> None:
    pattern = _rule_pattern(template_json)
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert sorted(pattern["detail"]["ModelPackageGroupName"]) == sorted(f["group"] for f in _families())
    groups = _of_type(template_json, "AWS::SageMaker::ModelPackageGroup")
    assert sorted(g["Properties"]["ModelPackageGroupName"] for g in groups.values()) == sorted(
        f["group"] for f in _families()
    )


# --------------------------------------------------------------------------------------------------
# the definition


def test_blue_green_update_names_the_three_alarms_of_the_family(template_json: dict[str, Any]) -> None:
    _, definition, substitutions = _state_machine(template_json)
    prefix = substitutions["AlarmNamePrefix"]
    alarm_names = {
        a["Properties"]["AlarmName"] for a in _of_type(template_json, "AWS::CloudWatch::Alarm").values()
    }
    for state_name, routing in (
        ("UpdateEndpoint_BlueGreenCanary", "CANARY"),
        ("UpdateEndpoint_BlueGreenLinear", "LINEAR"),
    ):
        state = definition["States"][state_name]
        assert state["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:updateEndpoint"
        config = state["Parameters"]["DeploymentConfig"]
        assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == routing
        formats = [a["AlarmName.$"] for a in config["AutoRollbackConfiguration"]["Alarms"]]
        assert len(formats) == 3
        # every formatted name exists as an alarm for every family
        for family in _families():
            for fmt in formats:
                template = fmt.split("'")[1].replace("${AlarmNamePrefix}", prefix)
                assert template.replace("{}", family["group"]) in alarm_names, (fmt, family["group"])


def test_alarms_watch_5xx_latency_and_gateway_errors(template_json: dict[str, Any]) -> None:
    metrics = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"])
        for a in _of_type(template_json, "AWS::CloudWatch::Alarm").values()
    }
    assert ("AWS/SageMaker", "Invocation5XXErrors") in metrics
    assert ("AWS/SageMaker", "ModelLatency") in metrics
    assert ("Switchboard/Models", "OptionErrors") in metrics
    _, metric_filter = _one(template_json, "AWS::Logs::MetricFilter")
    assert metric_filter["Properties"]["MetricTransformations"][0]["Dimensions"] == [
        {"Key": "Option", "Value": "$.option_id"}
    ]


def test_definition_has_the_adapter_path_and_the_failure_path(template_json: dict[str, Any]) -> None:
    _, definition, substitutions = _state_machine(template_json)
    states = definition["States"]
    assert states["CreateAdapterComponent"]["Resource"].endswith(":sagemaker:createInferenceComponent")
    assert states["DeleteOldAdapter"]["Resource"].endswith(":sagemaker:deleteInferenceComponent")
    assert states["MarkPackageRejected"]["Parameters"]["ModelApprovalStatus"] == "Rejected"
    assert states["NotifyFailure"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["DeploymentFailed"]["Type"] == "Fail"
    for placeholder in ("${DeploymentFunctionArn}", "${DeploymentsTable}", "${NotificationTopicArn}"):
        assert placeholder.strip("${}") in substitutions
    # deployed defaults: minutes, not the seconds the tests use
    assert int(substitutions["WaitIntervalSeconds"]) >= 60
    assert substitutions["TrafficRoutingType"] == "CANARY"


# --------------------------------------------------------------------------------------------------
# IAM


def _statements(template_json: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in template_json["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Policy":
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents.extend(p["PolicyDocument"] for p in props.get("Policies", []))
        for document in documents:
            found.extend((logical_id, s) for s in document["Statement"])
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return action if isinstance(action, list) else [action]


def test_pass_role_only_for_the_sagemaker_execution_role(template_json: dict[str, Any]) -> None:
    execution_role, _ = next(
        (k, v) for k, v in _of_type(template_json, "AWS::IAM::Role").items() if "SageMakerExecutionRole" in k
    )
    passing = [(k, s) for k, s in _statements(template_json) if any("PassRole" in a for a in _actions(s))]
    assert passing, "the workflow must be able to pass the execution role"
    for logical_id, statement in passing:
        assert logical_id.startswith("ModelDeploymentWorkflowRole"), logical_id
        assert statement["Resource"] == {"Fn::GetAtt": [execution_role, "Arn"]}
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert not any(a in ("iam:*", "*") for _, s in _statements(template_json) for a in _actions(s))


def test_retirement_may_not_delete_a_base_component(template_json: dict[str, Any]) -> None:
    """A base component holds an adapter family's compute: retirement deletes only the adapter
    components the workflow made (the family prefix), in every region."""
    bases = [f["base_component"] for f in _families() if f.get("base_component")]
    assert bases, "cdk.json has an adapter family"
    deleting = [
        (k, s)
        for k, s in _statements(template_json)
        if "sagemaker:DeleteInferenceComponent" in _actions(s) and k.startswith("ModelDeploymentRetirement")
    ]
    assert deleting, "retirement deletes retired adapter components"
    for _, statement in deleting:
        text = json.dumps(statement["Resource"])
        assert all(f"inference-component/{base}" not in text for base in bases), statement


def test_registry_role_is_scoped_to_our_groups(template_json: dict[str, Any]) -> None:
    statements = [s for k, s in _statements(template_json) if k.startswith("ModelDeploymentRegistryRole")]
    register = next(s for s in statements if "sagemaker:CreateModelPackage" in _actions(s))
    text = json.dumps(register["Resource"])
    for family in _families():
        assert f"model-package-group/{family['group']}" in text
        assert f"model-package/{family['group']}/*" in text
    assert '"*"' not in text


def test_only_the_deployment_tasks_write_the_tenant_adapters_table(template_json: dict[str, Any]) -> None:
    """The request path (gateway for streams, invoke step) reads one row by key: GetItem only."""
    (table,) = [k for k in _of_type(template_json, "AWS::DynamoDB::Table") if "AdaptersTable" in k]
    granted: dict[str, set[str]] = {}
    for logical_id, statement in _statements(template_json):
        if table in json.dumps(statement.get("Resource")):
            assert statement["Effect"] == "Allow"
            granted.setdefault(logical_id, set()).update(_actions(statement))
    roles = ("DeploymentFunction", "RetirementFunction", "FunctionsGateway", "FunctionsInvoke")
    by_role = {next(r for r in roles if r in k): v for k, v in granted.items()}
    assert len(granted) == 4, sorted(granted)
    assert by_role == {
        "DeploymentFunction": {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"},
        "RetirementFunction": {"dynamodb:GetItem", "dynamodb:Query"},
        "FunctionsGateway": {"dynamodb:GetItem"},
        "FunctionsInvoke": {"dynamodb:GetItem"},
    }


def test_deployments_and_tenant_adapters_tables_and_topic_are_encrypted(
    template_json: dict[str, Any],
) -> None:
    tables = _of_type(template_json, "AWS::DynamoDB::Table", "ModelDeployment")
    assert sorted("Adapters" in k for k in tables) == [False, True]
    for table in tables.values():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
    _, topic = _one(template_json, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]


def test_retirement_runs_on_a_schedule(template_json: dict[str, Any]) -> None:
    scheduled = [
        v
        for v in _of_type(template_json, "AWS::Events::Rule").values()
        if "ScheduleExpression" in v["Properties"]
    ]
    assert len(scheduled) == 1
    target = scheduled[0]["Properties"]["Targets"][0]["Arn"]
    assert "RetirementFunction" in json.dumps(target)


@pytest.mark.parametrize(
    "key",
    [
        "ModelDeploymentStateMachineArn",
        "ModelDeploymentsTableName",
        "ModelAdaptersTableName",
        "ModelRetirementFunctionName",
    ],
)
def test_outputs_the_cli_reads(template_json: dict[str, Any], key: str) -> None:
    assert key in template_json["Outputs"]


# --------------------------------------------------------------------------------------------------
# Least privilege (issue 10 item 8): only the project's own names


def _flat(value: Any) -> str:
    """A resource as text, CloudFormation joins flattened (``{"Ref": …}`` parts dropped)."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_flat(part) for part in value["Fn::Join"][1])
    if isinstance(value, list):
        return " ".join(_flat(v) for v in value)
    return value if isinstance(value, str) else ""


def test_lifecycle_roles_create_and_delete_only_the_familys_own_sagemaker_names(
    template_json: dict[str, Any],
) -> None:
    from switchboard.lifecycle.logic import family_name_prefix

    prefixes = [family_name_prefix(f["group"]) for f in _families()]
    bases = [f["base_component"] for f in _families() if f.get("base_component")]
    mutating = ("sagemaker:Create", "sagemaker:Delete", "sagemaker:UpdateEndpoint")
    checked = 0
    for logical_id, statement in _statements(template_json):
        if not any(a.startswith(mutating) for a in _actions(statement)):
            continue
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for resource in resources:
            text = _flat(resource)
            kind, _, name = text.rpartition(":")[2].partition("/")
            checked += 1
            if kind in ("model", "endpoint-config", "inference-component"):
                assert name != "*", (logical_id, text)
                assert any(name == f"{p}*" for p in prefixes) or name in bases, (logical_id, text)
    assert checked


def test_registry_role_trusts_named_principals_not_the_whole_account(template_json: dict[str, Any]) -> None:
    _, role = next(
        (k, v)
        for k, v in _of_type(template_json, "AWS::IAM::Role").items()
        if k.startswith("ModelDeploymentRegistryRole")
    )
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    patterns = statement["Condition"]["ArnLike"]["aws:PrincipalArn"]
    assert [_flat(p).rsplit(":", 1)[-1] for p in patterns] == [
        "role/Switchboard-ml-*",
        "role/*/Switchboard-ml-*",
    ]


def test_sagemaker_execution_role_pulls_only_llm_serving_and_project_images(
    template_json: dict[str, Any],
) -> None:
    statements = [
        s for k, s in _statements(template_json) if k.startswith("ModelDeploymentSageMakerExecutionRole")
    ]
    pull = next(s for s in statements if "ecr:BatchGetImage" in _actions(s))
    repositories = sorted(_flat(r).rsplit(":", 1)[-1] for r in pull["Resource"])
    assert repositories == [
        "repository/djl-inference",
        "repository/huggingface-pytorch-tgi-inference",
        "repository/switchboard-*",
    ]


# --------------------------------------------------------------------------------------------------
# Template stability (issue 12 item 6): the split into registry, alarms, workflow and retirement
# constructs kept the logical ids, so a deployed stack replaces none of these.

STATEFUL_LOGICAL_IDS = {
    "ModelDeploymentGroupswitchboardsupportllm8D5B10C2": "AWS::SageMaker::ModelPackageGroup",
    "ModelDeploymentGroupswitchboardsupportlora1691E522": "AWS::SageMaker::ModelPackageGroup",
    "ModelDeploymentArtifactsB5076775": "AWS::S3::Bucket",
    "ModelDeploymentDeploymentsTableFAB30A58": "AWS::DynamoDB::Table",
    "ModelDeploymentStateMachineDFB2E56B": "AWS::StepFunctions::StateMachine",
    "ModelDeploymentFailureTopicDF144A8C": "AWS::SNS::Topic",
    "ModelDeploymentRegistryRoleEB49B7AE": "AWS::IAM::Role",
    "ModelDeploymentSageMakerExecutionRole4025B0D0": "AWS::IAM::Role",
    "ModelDeploymentWorkflowLogs6BF52EB0": "AWS::Logs::LogGroup",
    "ModelDeploymentDeploymentFunctionLogsB8E16323": "AWS::Logs::LogGroup",
    "ModelDeploymentRetirementFunctionLogsB9214AA6": "AWS::Logs::LogGroup",
    "ModelDeploymentOptionErrorsFilterD87A8430": "AWS::Logs::MetricFilter",
    "ModelDeploymentErrors5xxswitchboardsupportllm99506252": "AWS::CloudWatch::Alarm",
    "ModelDeploymentLatencyswitchboardsupportllm0F83FC78": "AWS::CloudWatch::Alarm",
    "ModelDeploymentGatewayErrorsswitchboardsupportllm975C1FE1": "AWS::CloudWatch::Alarm",
    "ModelDeploymentErrors5xxswitchboardsupportloraCDA49B39": "AWS::CloudWatch::Alarm",
    "ModelDeploymentLatencyswitchboardsupportloraD00B8B82": "AWS::CloudWatch::Alarm",
    "ModelDeploymentGatewayErrorsswitchboardsupportlora13864162": "AWS::CloudWatch::Alarm",
}
"""Resources whose replacement loses data or breaks someone: versions live in the groups; the
bucket, table and logs hold artifacts and history; subscribers are on the topic; ML engineers
assume the registry role by ARN and running models use the execution role; deleting the Standard
state machine stops running deployments; the alarms are named (a create-then-delete under the same
name deletes the new one) and the metric filter would count twice during the update."""


def test_stateful_lifecycle_resources_keep_their_logical_ids(template_json: dict[str, Any]) -> None:
    found = {k: v["Type"] for k, v in template_json["Resources"].items() if k in STATEFUL_LOGICAL_IDS}
    assert found == STATEFUL_LOGICAL_IDS


def test_lifecycle_resources_sit_under_one_construct_per_concern(cloud_assembly_dir: Path) -> None:
    tree = json.loads((cloud_assembly_dir / "tree.json").read_text())["tree"]
    lifecycle = tree["children"]["Switchboard"]["children"]["ModelDeployment"]
    assert set(lifecycle["children"]) == {
        "Registry",
        "TenantAdapters",
        "RollbackAlarms",
        "Workflow",
        "Retirement",
    }


# --------------------------------------------------------------------------------------------------
# The families: parsed once (infra/config.py) with the Lambdas' strict model


def test_the_canary_judge_reads_metrics_and_only_the_familys_alarms(template_json: dict[str, Any]) -> None:
    # JudgeTenantCanary: GetMetricData takes no resource-level permission ('*', acknowledged for
    # cdk-nag with the reason); DescribeAlarms only on the rollback alarms; no alarm per adapter
    cloudwatch = {
        tuple(_actions(s)): s
        for k, s in _statements(template_json)
        if k.startswith("ModelDeploymentDeploymentFunctionRole") and "cloudwatch:" in json.dumps(s["Action"])
    }
    assert set(cloudwatch) == {("cloudwatch:GetMetricData",), ("cloudwatch:DescribeAlarms",)}
    assert cloudwatch[("cloudwatch:GetMetricData",)]["Resource"] == "*"
    alarms = cloudwatch[("cloudwatch:DescribeAlarms",)]["Resource"]
    assert alarms and "*" not in json.dumps(alarms)
    # the three rollback alarms per family, however many tenants' adapters a family has
    assert len(_of_type(template_json, "AWS::CloudWatch::Alarm")) == 3 * len(_families())


def test_lifecycle_functions_read_the_families_cdk_json_gives(template_json: dict[str, Any]) -> None:
    from switchboard.lifecycle.settings import LifecycleSettings

    functions = {
        v["Properties"]["Handler"]: v["Properties"]["Environment"]["Variables"]
        for k, v in _of_type(template_json, "AWS::Lambda::Function").items()
    }
    assert set(functions) == {"handlers.model_deployment.handler", "handlers.model_retirement.handler"}
    expected = {f["group"]: f for f in _families()}
    for environment in functions.values():
        # references (the options table's name) resolve at deploy time: any name parses
        settings = LifecycleSettings.from_env(
            {k: v if isinstance(v, str) else "deployed-name" for k, v in environment.items()}
        )
        assert {g: f.model_dump(exclude_unset=True) for g, f in settings.families.items()} == expected


def _config(families: Any) -> Any:
    from infra.config import SwitchboardConfig, load_cdk_json_context

    context = {**load_cdk_json_context(), "model_families": families}
    return SwitchboardConfig.from_context(context.get, environ={})


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"group": "g", "option_id": "o", "endpoint_nmae": "e"}, "endpoint_nmae"),  # a typo
        ({"group": "g", "option_id": "o", "endpoint_name": "e", "instance_count": 0}, "instance_count"),
        ({"group": "bad_name", "option_id": "o", "endpoint_name": "e"}, "group"),
        ({"group": "g", "option_id": "o", "endpoint_name": "e", "base_component": "x y"}, "base_component"),
        ({"group": "g", "option_id": "o", "endpoint_name": "e", "canary": {"share_percent": 60}}, "canary"),
    ],
)
def test_a_bad_family_fails_synthesis_naming_the_field(entry: dict[str, Any], named: str) -> None:
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match=f"model_families.*{named}"):
        _config([entry])


def test_families_are_checked_as_a_whole_and_read_from_dash_c_strings() -> None:
    from infra.config import ConfigError

    family = {"group": "g", "option_id": "o", "endpoint_name": "e"}
    with pytest.raises(ConfigError, match="appears twice"):
        _config([family, family])
    with pytest.raises(ConfigError, match="model_families"):
        _config("{not json")
    (parsed,) = _config(json.dumps([family])).model_families
    assert (parsed.group, parsed.variant_name, parsed.kind.value) == ("g", "AllTraffic", "full")
    assert _config(None).model_families == ()
