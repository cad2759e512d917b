"""The doctor's checks against emulated AWS (in-process moto) and the real handlers.

What a fake cannot show: the probe input runs the real request workflow without a provider call,
the temporary key goes through the real authorizer and gateway and leaves no row, API Gateway key
or usage-plan key behind, chains are read from a real options table, a stack is resolved from its
CloudFormation resources.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from switchboard_local.cli.target import Target
from switchboard_local.doctor import checks
from switchboard_local.doctor.deployment import (
    Deployment,
    FileFlags,
    HttpAnswer,
    Pins,
    aws_deployment,
    local_deployment,
)
from switchboard_local.doctor.report import Finding
from tests.conftest import GatewayHarness

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def _rows(findings: list[Finding]) -> dict[str, Finding]:
    return {f.component: f for f in findings}


def _harness_http(harness: GatewayHarness) -> Any:
    """HTTP as API Gateway would carry it: the real authorizer, then the real gateway handler."""

    def call(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpAnswer:
        path = url.split("/prod", 1)[1]
        key = headers["Authorization"].removeprefix("Bearer ")
        try:
            status, out_headers, payload = harness.call(
                method, path, json.loads(body) if body else None, key=key
            )
        except Exception as exc:  # the authorizer's "Unauthorized" is API Gateway's 401
            if str(exc) == "Unauthorized":
                return HttpAnswer(401, {}, b'{"error": {"code": "invalid_api_key"}}')
            raise
        return HttpAnswer(status, out_headers, json.dumps(payload).encode())

    return call


def _deployment(harness: GatewayHarness, **overrides: Any) -> Deployment:
    r = harness.resources
    target = Target(
        region=REGION,
        options_table=r.options_table,
        keys_table=r.keys_table,
        usage_plans=dict(r.usage_plans),
        api_url="https://api.example/prod/",
        circuit_table=r.circuit_table,
        cache_table=r.cache_table,
    )
    fields: dict[str, Any] = {
        "local": True,
        "label": "moto",
        "target": target,
        "client": _client,
        "functions": list,
        "state_machine_arn": r.state_machine_arn,
        "flags": FileFlags(harness.flags_file),
        "deployment_state_machine_arn": None,
        "deployment_function": None,
        "pins": Pins("3.37.0", "2.14.3", "requirements.txt"),
        "http": _harness_http(harness),
        **overrides,
    }
    return Deployment(**fields)


def test_the_probe_input_runs_the_real_workflow_to_its_static_answer(gateway: GatewayHarness) -> None:
    from switchboard.workflow import PollingRunner

    result = PollingRunner(_client("stepfunctions"), gateway.resources.state_machine_arn).run(
        checks.workflow_probe_input("doctor nonce"), name="doctor"
    )

    assert result.output == {"outcome": "degraded", "kind": "static", "text": "doctor nonce"}
    assert "InvokeCandidate" not in gateway.last_states()  # no provider, no invoke step


def test_completions_go_through_the_real_authorizer_and_gateway_and_leave_no_key(
    gateway: GatewayHarness,
) -> None:
    rows = _rows(list(checks.check_completions(_deployment(gateway))))

    assert rows["api"].passed, rows["api"]
    assert rows["api"].detail == "5 route(s): chat, echo, embed, summarize, tuned"
    for route in ("chat", "echo", "embed", "summarize", "tuned"):
        assert rows[f"route {route}"].passed, rows[f"route {route}"]
    assert rows["api keys"].passed
    assert "row, API Gateway key and usage-plan key deleted" in rows["api keys"].detail
    keys = boto3.client("dynamodb", region_name=REGION).scan(TableName=gateway.resources.keys_table)["Items"]
    assert [k["tenant"]["S"] for k in keys] == ["dev"]
    apigateway = boto3.client("apigateway", region_name=REGION)
    assert all("switchboard-doctor" not in k["name"] for k in apigateway.get_api_keys()["items"])
    plan = gateway.resources.usage_plans["standard"]
    assert len(apigateway.get_usage_plan_keys(usagePlanId=plan)["items"]) == 1  # the dev key only


def test_a_stopped_agent_shows_in_each_route_answer(gateway: GatewayHarness) -> None:
    first = _rows(list(checks.check_completions(_deployment(gateway))))
    gateway.agent.stop()

    rows = _rows(list(checks.check_completions(_deployment(gateway))))

    assert first["route chat"].passed
    assert not rows["route chat"].passed
    assert "last-known-good routing" in rows["route chat"].detail
    assert rows["api keys"].passed


def test_chains_naming_missing_or_retired_options_fail_per_route(gateway: GatewayHarness) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.delete_item(TableName=gateway.resources.options_table, Key={"id": {"S": "nova-lite-eu"}})
    gateway.set_option("mock-echo", status="retired")

    rows = _rows(list(checks.check_chains(_deployment(gateway))))

    assert rows["chain chat"].passed
    assert not rows["chain summarize"].passed
    assert "nova-lite-eu is not in the options table" in rows["chain summarize"].detail
    assert not rows["chain echo"].passed
    assert "mock-echo is retired" in rows["chain echo"].detail
    assert rows["chain embed"].passed


def test_an_option_whose_task_changed_since_the_deployment_fails_its_routes(gateway: GatewayHarness) -> None:
    """The Lambda validator checks kinds when flags deploy; an option edited later is the doctor's."""
    gateway.set_option("titan-embed-v2-us", task="chat")

    rows = _rows(list(checks.check_chains(_deployment(gateway))))

    assert not rows["chain embed"].passed
    assert "default.chain: titan-embed-v2-us answers chat, the route is embeddings" in (
        rows["chain embed"].detail
    )
    assert rows["chain chat"].passed


def test_a_missing_table_fails_its_own_row(gateway: GatewayHarness) -> None:
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=gateway.resources.circuit_table)

    rows = _rows(list(checks.check_tables(_deployment(gateway))))

    assert not rows["circuit table"].passed
    assert "ResourceNotFoundException" in rows["circuit table"].detail
    assert rows["options table"].passed and rows["keys table"].passed and rows["answer cache table"].passed


def test_registry_and_deployment_workflow_rows(gateway: GatewayHarness) -> None:
    from switchboard_local.lifecycle_local import provision_model_lifecycle
    from switchboard_local.moto_patches import SAGEMAKER

    SAGEMAKER.install()
    try:
        lifecycle = provision_model_lifecycle(_client, gateway.resources)
        d = _deployment(
            gateway,
            deployment_state_machine_arn=lifecycle["deployment_state_machine_arn"],
            deployment_function=lifecycle["deployment_function"],
        )
        rows = list(checks.check_model_registry(d)) + list(checks.check_deployment_workflow(d))
        assert all(r.passed for r in rows), rows
        assert rows[0].check == f"group {lifecycle['sample_group']} readable"

        families = [*lifecycle["families"], {**lifecycle["families"][0], "group": "switchboard-ghost"}]
        boto3.client("lambda", region_name=REGION).update_function_configuration(
            FunctionName=lifecycle["deployment_function"],
            Environment={"Variables": {"MODEL_FAMILIES": json.dumps(families)}},
        )
        ghost = list(checks.check_model_registry(d))[-1]
        assert not ghost.passed
        assert ghost.check == "group switchboard-ghost readable"
    finally:
        SAGEMAKER.uninstall()


def test_without_model_families_the_lifecycle_rows_say_so(gateway: GatewayHarness) -> None:
    d = _deployment(gateway)

    rows = list(checks.check_model_registry(d)) + list(checks.check_deployment_workflow(d))

    assert all(r.passed and "model_families is empty" in r.detail for r in rows)


def test_local_deployment_finds_the_functions_and_workflows_by_the_stacks_names(
    gateway: GatewayHarness,
) -> None:
    r = gateway.resources
    target = Target(region=REGION, options_table=r.options_table, keys_table=r.keys_table)

    d = local_deployment(target, _client)

    roles = {f.role: f.name for f in d.our_functions()}
    assert roles == {
        "authorizer": r.authorizer_function,
        "circuit": r.circuit_function,
        "gateway": r.gateway_function,
        "invoke": r.invoke_function,
    }
    assert d.state_machine_arn == r.state_machine_arn
    assert d.deployment_state_machine_arn is None  # no lifecycle provisioned here


def test_aws_deployment_reads_outputs_and_keeps_only_the_stacks_own_functions(emulated_aws: None) -> None:
    from botocore.stub import Stubber

    lam = _client("lambda")
    role = _client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    for name, handler in (
        ("sb-gateway-1", "handlers.gateway.handler"),
        ("sb-provider-1", "framework.onEvent"),
    ):
        lam.create_function(
            FunctionName=name, Runtime="python3.13", Role=role, Handler=handler, Code={"ZipFile": b"x"}
        )
    cfn = boto3.client("cloudformation", region_name=REGION)
    outputs = {
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:sb",
        "AppConfigApplication": "switchboard",
        "AppConfigEnvironment": "prod",
        "AppConfigProfile": "routing",
        "AppConfigApplicationId": "app1",
        "AppConfigEnvironmentId": "env1",
        "AppConfigProfileId": "prof1",
    }
    stub = Stubber(cfn)
    stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "Switchboard",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": "Switchboard"},
    )
    stub.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": logical,
                    "PhysicalResourceId": physical,
                    "ResourceType": kind,
                    "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
                    "ResourceStatus": "CREATE_COMPLETE",
                }
                for logical, physical, kind in (
                    ("FunctionsGatewayFunction", "sb-gateway-1", "AWS::Lambda::Function"),
                    ("ProviderFramework", "sb-provider-1", "AWS::Lambda::Function"),
                    ("DataOptions", "sb-options", "AWS::DynamoDB::Table"),
                )
            ]
        },
        {"StackName": "Switchboard"},
    )
    stub.activate()
    clients = {"cloudformation": cfn}
    target = Target(region=REGION, options_table="sb-options", keys_table="sb-keys")

    d = aws_deployment(target, lambda s: clients.get(s) or _client(s), stack="Switchboard")

    assert [(f.role, f.name, f.runtime) for f in d.our_functions()] == [
        ("gateway", "sb-gateway-1", "python3.13")
    ]
    assert d.state_machine_arn == outputs["StateMachineArn"]
    assert d.deployment_function is None  # no model families: no lifecycle outputs
    stub.assert_no_pending_responses()


def test_aws_deployment_refuses_a_stack_without_the_outputs(emulated_aws: None) -> None:
    from botocore.stub import Stubber

    from switchboard_local.cli.target import TargetError

    cfn = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(cfn)
    stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "Other",
                    "CreationTime": "2026-01-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                }
            ]
        },
        {"StackName": "Other"},
    )
    stub.activate()
    target = Target(region=REGION, options_table="t", keys_table="k")

    with pytest.raises(TargetError, match="has no output 'AppConfigApplication'"):
        aws_deployment(target, lambda s: cfn, stack="Other")
