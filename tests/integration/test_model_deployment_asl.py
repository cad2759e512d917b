"""The model-deployment ASL executed in moto's Step Functions interpreter.

Given the deployment state machine from `statemachines/model_deployment.asl.json` (created the way the
local stack creates it), its Lambda tasks bound to the in-process handlers, and moto's SageMaker
extended with UpdateEndpoint and inference components (`switchboard_local.sagemaker_ext`), each test
approves or rejects registry versions and runs the workflow with the event EventBridge would deliver.
All waits come from the input (`settings`), zero or one second, so the whole module runs in seconds.

Every execution's history is kept: the last test fails naming any state of the machine that no
scenario reached (as the request workflow's module does).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fakes.images import push_ecr_image

ROOT = Path(__file__).resolve().parents[2]
ALL_STATES = set(json.loads((ROOT / "statemachines" / "model_deployment.asl.json").read_text())["States"])
VISITED: dict[str, set[str]] = {}
"""Test name → the states its executions entered (from the execution history)."""
REGION = "us-east-1"
FULL_GROUP = "switchboard-test-llm"
ADAPTER_GROUP = "switchboard-test-lora"
BASE_ENDPOINT = "switchboard-test-base"
BASE_COMPONENT = "switchboard-test-base-ic"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
GLOBAL_GROUP = "switchboard-test-global"
OTHER_REGIONS = ("eu-west-1", "ap-southeast-2")
"""The global family's rollout regions after the home one, in order."""
REGIONAL_LORA_GROUP = "switchboard-test-rlora"
REGIONAL_LORA_ENDPOINT = "switchboard-test-rlora-base"
REGIONAL_LORA_BASE = "switchboard-test-rlora-base-ic"
"""An adapter family listing the same regions (its versions are made in each before routing moves)."""

FAST = {
    "traffic_type": "CANARY",
    "canary_percent": 10,
    "linear_step_percent": 20,
    "wait_interval_seconds": 0,
    "termination_wait_seconds": 0,
    "maximum_execution_timeout_seconds": 600,
    "poll_seconds": 0,
    "max_poll_seconds": 1,
    "max_polls": 3,
    "bake_seconds": 0,
}

FAMILIES = [
    {
        "group": FULL_GROUP,
        "option_id": "test-llm",
        "endpoint_name": FULL_GROUP,
        "instance_type": "ml.g4dn.xlarge",
        "retention": 1,
    },
    {
        "group": ADAPTER_GROUP,
        "option_id": "test-lora",
        "endpoint_name": BASE_ENDPOINT,
        "base_component": BASE_COMPONENT,
        "retention": 1,
    },
    {
        "group": GLOBAL_GROUP,
        "option_id": "test-global",
        "endpoint_name": GLOBAL_GROUP,
        "instance_type": "ml.g4dn.xlarge",
        "regions": [REGION, *OTHER_REGIONS],
    },
    {
        "group": REGIONAL_LORA_GROUP,
        "option_id": "test-rlora",
        "endpoint_name": REGIONAL_LORA_ENDPOINT,
        "base_component": REGIONAL_LORA_BASE,
        "regions": [REGION, *OTHER_REGIONS],
    },
]


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


class Lifecycle:
    """The provisioned lifecycle and helpers to drive it."""

    def __init__(self, resources: Any, names: dict[str, Any], *, seen: set[str] | None = None) -> None:
        self.resources = resources
        self.names = names
        self.seen = set() if seen is None else seen
        self.sagemaker = client("sagemaker")
        self.sfn = client("stepfunctions")

    def register(
        self, group: str, *, data: str = "s3://models/model.tar.gz", tenant: str | None = None
    ) -> str:
        from switchboard.lifecycle.model import ADAPTER_OF_KEY, TENANT_KEY

        metadata = {"CustomerMetadataProperties": {ADAPTER_OF_KEY: BASE_COMPONENT, TENANT_KEY: tenant}}
        arn: str = self.sagemaker.create_model_package(
            **(metadata if tenant else {}),
            ModelPackageGroupName=group,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/switchboard-llm:1",
                        "ModelDataUrl": data,
                    }
                ],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="PendingManualApproval",
        )["ModelPackageArn"]
        return arn

    def event(self, arn: str) -> dict[str, Any]:
        from switchboard_local.lifecycle_local import state_change_event

        return state_change_event(self.sagemaker.describe_model_package(ModelPackageName=arn), region=REGION)

    def set_status(self, arn: str, status: str, description: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if description:
            kwargs["ApprovalDescription"] = description
        self.sagemaker.update_model_package(**kwargs)
        return self.event(arn)

    def start(self, event: dict[str, Any], settings: dict[str, Any] | None = None) -> str:
        """Start an execution; without ``settings`` the input is the event alone, as EventBridge sends it."""
        payload = event if settings is None else {**event, "settings": {**FAST, **settings}}
        arn: str = self.sfn.start_execution(
            stateMachineArn=self.names["deployment_state_machine_arn"],
            name=uuid.uuid4().hex,
            input=json.dumps(payload),
        )["executionArn"]
        return arn

    def wait(self, execution: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                self.seen.update(self.states_entered(execution))
                return described
            time.sleep(0.02)

    def run(self, event: dict[str, Any], **settings: Any) -> dict[str, Any]:
        return self.wait(self.start(event, settings))

    def wait_until_entered(self, execution: str, state: str) -> None:
        deadline = time.monotonic() + 30
        while state not in self.states_entered(execution):
            assert time.monotonic() < deadline, f"{state} was never entered"
            time.sleep(0.02)

    def approve(self, arn: str, **settings: Any) -> dict[str, Any]:
        return self.run(self.set_status(arn, "Approved"), **settings)

    def states_entered(self, execution_arn: str) -> list[str]:
        return [name for name, _ in self.entered_with_input(execution_arn)]

    def poll_waits(self, execution_arn: str, wait_state: str) -> list[int]:
        """The seconds each entry of a polling loop's Wait state waited (``$.poll.wait_seconds``)."""
        return [
            int(state_input["poll"]["wait_seconds"])
            for name, state_input in self.entered_with_input(execution_arn)
            if name == wait_state
        ]

    def entered_with_input(self, execution_arn: str) -> list[tuple[str, dict[str, Any]]]:
        events = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [
            (e["stateEnteredEventDetails"]["name"], json.loads(e["stateEnteredEventDetails"]["input"]))
            for e in events
            if "stateEnteredEventDetails" in e
        ]

    def options_store(self) -> Any:
        from switchboard.options.store import OptionsStore

        return OptionsStore(self.resources.options_table, client=client("dynamodb"), ttl_s=0)

    def option(self, option_id: str) -> Any:
        return self.options_store().get(option_id)

    def adapters_store(self) -> Any:
        from switchboard.lifecycle.adapter_store import DynamoTenantAdapterStore

        return DynamoTenantAdapterStore(self.names["adapters_table"], client=client("dynamodb"))

    def tenant(self, tenant: str, group: str = ADAPTER_GROUP) -> Any:
        """The tenant's record in the tenant adapters table (None: never had an adapter)."""
        return self.adapters_store().get(group, tenant)

    def package(self, arn: str) -> dict[str, Any]:
        described: dict[str, Any] = self.sagemaker.describe_model_package(ModelPackageName=arn)
        return described

    def deployments(self, group: str) -> list[dict[str, Any]]:
        from switchboard.options.store import from_dynamodb_item

        items = client("dynamodb").query(
            TableName=self.names["deployments_table"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"group#{group}"}},
        )["Items"]
        return [from_dynamodb_item(i) for i in items]

    def notifications(self) -> list[str]:
        from moto.sns.models import sns_backends

        topic = sns_backends["123456789012"][REGION].topics[self.names["topic_arn"]]
        return [message for _, message, *_ in topic.sent_notifications]

    def endpoint_config(self, endpoint: str) -> str:
        return str(self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])

    def alarm(self, index: int = 0, state: str = "ALARM") -> str:
        name = str(self.names["alarm_names"][index])
        client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
        return name


@pytest.fixture
def lifecycle(emulated_aws: None, request: pytest.FixtureRequest) -> Iterator[Lifecycle]:
    from switchboard_local.emulation import bind_lambda_handlers, provision
    from switchboard_local.lifecycle_local import lifecycle_handlers, provision_model_lifecycle
    from switchboard_local.moto_patches import SAGEMAKER

    with SAGEMAKER.applied():
        resources = provision(client, region=REGION, seed=False)
        names = provision_model_lifecycle(client, resources, families=FAMILIES)
        with bind_lambda_handlers(lifecycle_handlers(resources)):
            yield Lifecycle(resources, names, seen=VISITED.setdefault(request.node.name, set()))


def _deploy_base_endpoint(lc: Lifecycle) -> None:
    """What an adapter family needs first: an endpoint with a base inference component."""
    sm = lc.sagemaker
    sm.create_model(
        ModelName="base-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "llm:1", "ModelDataUrl": "s3://models/base.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="base-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "base-model",
                "InstanceType": "ml.g4dn.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=BASE_ENDPOINT, EndpointConfigName="base-config")
    sm.create_inference_component(
        InferenceComponentName=BASE_COMPONENT,
        EndpointName=BASE_ENDPOINT,
        VariantName="AllTraffic",
        Specification={
            "ModelName": "base-model",
            "ComputeResourceRequirements": {
                "MinMemoryRequiredInMb": 1024,
                "NumberOfAcceleratorDevicesRequired": 1,
            },
        },
        RuntimeConfig={"CopyCount": 1},
    )
    sm.describe_inference_component(InferenceComponentName=BASE_COMPONENT)  # settles it


# --------------------------------------------------------------------------------------------------
# full models


def test_first_approval_creates_the_endpoint_and_points_the_option_at_it(lifecycle: Lifecycle) -> None:
    # Given a first version of a family with no endpoint yet
    v1 = lifecycle.register(FULL_GROUP)

    # When it is approved
    result = lifecycle.approve(v1)

    # Then the workflow created the endpoint and the option serves version 1
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert "CreateEndpoint_FirstDeployment" in states
    assert "UpdateEndpoint_BlueGreenCanary" not in states
    option = lifecycle.option("test-llm")
    assert option.model_package_arn == v1
    assert option.endpoint_name == FULL_GROUP
    assert option.updated_by.startswith("model-deployment:")


def test_success_updates_blue_green_switches_the_option_and_records_the_deployment(
    lifecycle: Lifecycle,
) -> None:
    # Given version 1 live
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    before = lifecycle.option("test-llm")

    # When version 2 is approved
    v2 = lifecycle.register(FULL_GROUP, data="s3://models/v2.tar.gz")
    result = lifecycle.approve(v2)

    # Then a blue/green canary update with the three rollback alarms ran ...
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    for state in (
        "DescribeModelPackage",
        "PlanDeployment",
        "CreateModelFromPackage",
        "CreateEndpointConfig",
        "UpdateEndpoint_BlueGreenCanary",
        "WaitForEndpoint",
        "EndpointSettled?",
        "SmokeTest",
        "SwitchGatewayOption",
        "RecordDeployment",
        "Deployed",
    ):
        assert state in states
    from switchboard_local.sagemaker_ext import CONTROL

    request = CONTROL.update_requests[-1]
    policy = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    assert policy["TrafficRoutingConfiguration"]["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    alarms = [a["AlarmName"] for a in request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert alarms == [n for n in lifecycle.names["alarm_names"] if FULL_GROUP in n]
    # ... the endpoint serves the new config, the option moved with a conditional write ...
    assert lifecycle.endpoint_config(FULL_GROUP) == request["EndpointConfigName"]
    assert "-v2-" in request["EndpointConfigName"]
    option = lifecycle.option("test-llm")
    assert option.model_package_arn == v2
    assert option.version == before.version + 1
    assert option.updated_by == f"model-deployment:{result['name']}"
    # ... the package stays Approved and the deployment is recorded
    assert lifecycle.package(v2)["ModelApprovalStatus"] == "Approved"
    records = {r["version"]: r for r in lifecycle.deployments(FULL_GROUP)}
    assert records[2]["outcome"] == "deployed"
    assert records[2]["package_arn"] == v2


def test_linear_traffic_shifting_is_a_configuration_choice(lifecycle: Lifecycle) -> None:
    v1 = lifecycle.register(FULL_GROUP)
    lifecycle.approve(v1)
    v2 = lifecycle.register(FULL_GROUP)

    result = lifecycle.approve(v2, traffic_type="LINEAR")

    from switchboard_local.sagemaker_ext import CONTROL

    assert result["status"] == "SUCCEEDED", result
    assert "UpdateEndpoint_BlueGreenLinear" in lifecycle.states_entered(result["executionArn"])
    routing = CONTROL.update_requests[-1]["DeploymentConfig"]["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]
    assert routing["Type"] == "LINEAR"
    assert routing["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}


def test_alarm_rollback_rejects_the_package_and_leaves_routing_untouched(lifecycle: Lifecycle) -> None:
    # Given version 1 live and a rollback alarm firing
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    old_config = lifecycle.endpoint_config(FULL_GROUP)
    before = lifecycle.option("test-llm")
    lifecycle.alarm(0)

    # When version 2 is approved
    v2 = lifecycle.register(FULL_GROUP)
    result = lifecycle.approve(v2)

    # Then SageMaker rolled the endpoint back, the execution failed with a clear error ...
    assert result["status"] == "FAILED"
    assert result["error"] == "DeploymentRolledBackByAlarm"
    assert "back on config" in result["cause"] and old_config in result["cause"]
    states = lifecycle.states_entered(result["executionArn"])
    assert "RolledBackByAlarm" in states
    assert states[-1] == "DeploymentFailed"
    assert lifecycle.endpoint_config(FULL_GROUP) == old_config
    # ... the package is Rejected with the reason, routing is untouched, someone is told
    package = lifecycle.package(v2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "auto-rollback" in package["ApprovalDescription"]
    option = lifecycle.option("test-llm")
    assert option.model_package_arn == v1
    assert option.version == before.version
    assert any("DeploymentRolledBackByAlarm" in m for m in lifecycle.notifications())
    records = {r["version"]: r for r in lifecycle.deployments(FULL_GROUP)}
    assert records[2]["outcome"] == "DeploymentRolledBackByAlarm"

    # And the Rejected event that rejection emits is ignored (version 2 never went live)
    follow_up = lifecycle.run(lifecycle.event(v2))
    assert follow_up["status"] == "SUCCEEDED"
    assert "IgnoreRejectionOfNonLiveVersion" in lifecycle.states_entered(follow_up["executionArn"])
    assert lifecycle.option("test-llm").version == before.version


def test_endpoint_that_never_settles_times_out_into_the_failure_path(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 live and an update that will never finish
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    before = lifecycle.option("test-llm")
    CONTROL.held.add(FULL_GROUP)

    # When version 2 is approved with at most 2 polls, 1 s apart at first, never more than 1 s
    v2 = lifecycle.register(FULL_GROUP)
    started = time.monotonic()
    result = lifecycle.approve(v2, poll_seconds=1, max_poll_seconds=1, max_polls=2)

    # Then the workflow gave up after the polls (the doubled wait capped at 1 s) and failed
    assert result["status"] == "FAILED"
    assert result["error"] == "EndpointDidNotSettle"
    assert "after 2 polls" in result["cause"]
    assert time.monotonic() - started < 10
    assert lifecycle.poll_waits(result["executionArn"], "WaitForEndpoint") == [1, 1]
    assert lifecycle.states_entered(result["executionArn"]).count("UseMaxEndpointPollWait") == 1
    assert lifecycle.package(v2)["ModelApprovalStatus"] == "Rejected"
    assert lifecycle.option("test-llm").model_package_arn == before.model_package_arn


def test_rejecting_the_live_version_redeploys_the_previous_approved_one(lifecycle: Lifecycle) -> None:
    # Given versions 1 and 2 deployed in turn (2 live)
    v1 = lifecycle.register(FULL_GROUP)
    v2 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    assert lifecycle.approve(v2)["status"] == "SUCCEEDED"

    # When the live version is rejected (what `switchboard models rollback` does)
    result = lifecycle.run(lifecycle.set_status(v2, "Rejected", "rollback: bad answers"))

    # Then version 1 is deployed again through the same path and serves traffic
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert "IsTheRejectedVersionLive?" in states and "UpdateEndpoint_BlueGreenCanary" in states
    option = lifecycle.option("test-llm")
    assert option.model_package_arn == v1
    assert "-v1-" in lifecycle.endpoint_config(FULL_GROUP)
    records = lifecycle.deployments(FULL_GROUP)
    assert any(r["version"] == 1 and r["trigger"] == "rollback_of_rejected_live_version" for r in records)


def test_rejecting_the_only_version_leaves_routing_and_fails_loudly(lifecycle: Lifecycle) -> None:
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"

    result = lifecycle.run(lifecycle.set_status(v1, "Rejected", "rollback"))

    assert result["status"] == "FAILED"
    assert result["error"] == "NoApprovedVersionToRollBackTo"
    assert lifecycle.option("test-llm").model_package_arn == v1


def test_a_repeated_event_runs_once(lifecycle: Lifecycle) -> None:
    v1 = lifecycle.register(FULL_GROUP)
    event = lifecycle.set_status(v1, "Approved")
    assert lifecycle.run(event)["status"] == "SUCCEEDED"

    again = lifecycle.run(event)

    assert again["status"] == "SUCCEEDED"
    assert lifecycle.states_entered(again["executionArn"])[-1] == "IgnoreDuplicateEvent"


def test_an_event_as_eventbridge_sends_it_deploys_with_the_definitions_settings(lifecycle: Lifecycle) -> None:
    from switchboard_local.lifecycle_local import LOCAL_SETTINGS
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 live
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"

    # When version 2's approval arrives with no settings in the input (what EventBridge delivers)
    v2 = lifecycle.register(FULL_GROUP)
    result = lifecycle.wait(lifecycle.start(lifecycle.set_status(v2, "Approved")))

    # Then the settings baked into the definition (DefinitionSubstitutions) drove the blue/green
    # update, as numbers SageMaker accepts, and version 2 serves traffic
    assert result["status"] == "SUCCEEDED", result
    assert "LoadDefaultSettings" in lifecycle.states_entered(result["executionArn"])
    policy = CONTROL.update_requests[-1]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["CanarySize"]["Value"] == LOCAL_SETTINGS["canary_percent"]
    assert (
        policy["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"]
        == (LOCAL_SETTINGS["wait_interval_seconds"])
    )
    assert policy["MaximumExecutionTimeoutInSeconds"] == LOCAL_SETTINGS["maximum_execution_timeout_seconds"]
    assert lifecycle.option("test-llm").model_package_arn == v2


def test_reapproving_the_live_version_changes_nothing(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 live
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    before = lifecycle.option("test-llm")
    config = lifecycle.endpoint_config(FULL_GROUP)
    updates = len(CONTROL.update_requests)

    # When someone approves it again (a new state-change event: its LastModifiedTime moved)
    result = lifecycle.run(lifecycle.set_status(v1, "Approved", "re-approved after review"))

    # Then the workflow ends quietly: no model, config or update, the option untouched
    assert result["status"] == "SUCCEEDED", result
    assert lifecycle.states_entered(result["executionArn"])[-1] == "IgnoreAlreadyLiveVersion"
    assert len(CONTROL.update_requests) == updates
    assert lifecycle.endpoint_config(FULL_GROUP) == config
    assert lifecycle.option("test-llm").version == before.version
    assert [r["version"] for r in lifecycle.deployments(FULL_GROUP)] == [1]


def test_an_approval_overtaken_by_a_rejection_is_ignored(lifecycle: Lifecycle) -> None:
    # Given version 1 live, and version 2 approved then rejected before its workflow ran
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    v2 = lifecycle.register(FULL_GROUP)
    stale_approval = lifecycle.set_status(v2, "Approved")
    lifecycle.set_status(v2, "Rejected", "pulled: wrong training data")

    # When the (late) Approved event is processed
    result = lifecycle.run(stale_approval)

    # Then the package as it is now decides: nothing deploys, the rejection's reason stays
    assert result["status"] == "SUCCEEDED", result
    assert lifecycle.states_entered(result["executionArn"])[-1] == "IgnoreStaleEvent"
    assert lifecycle.option("test-llm").model_package_arn == v1
    assert "-v1-" in lifecycle.endpoint_config(FULL_GROUP)
    assert lifecycle.package(v2)["ApprovalDescription"] == "pulled: wrong training data"


def test_an_update_whose_rollback_failed_rejects_the_version_and_tells_the_on_call(
    lifecycle: Lifecycle,
) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 live, and an endpoint whose next update fails and cannot roll back
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    CONTROL.failing_updates.add(FULL_GROUP)

    # When version 2 is approved
    v2 = lifecycle.register(FULL_GROUP)
    result = lifecycle.approve(v2)

    # Then the execution names the endpoint's state, the version is rejected with it, routing stays
    # on version 1 and the on-call is told (the endpoint needs a human)
    assert result["status"] == "FAILED", result
    assert result["error"] == "EndpointUpdateFailed"
    assert f"endpoint {FULL_GROUP} is UpdateRollbackFailed after deploying version 2" in result["cause"]
    assert "EndpointUpdateFailed" in lifecycle.states_entered(result["executionArn"])
    package = lifecycle.package(v2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "UpdateRollbackFailed" in package["ApprovalDescription"]
    assert lifecycle.option("test-llm").model_package_arn == v1
    assert any("EndpointUpdateFailed" in m and FULL_GROUP in m for m in lifecycle.notifications())


def test_a_refused_deployment_step_rejects_the_version_and_leaves_the_endpoint_alone(
    lifecycle: Lifecycle,
) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 live, and an operator's own update of the endpoint still in progress
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    live_config = lifecycle.endpoint_config(FULL_GROUP)
    CONTROL.held.add(FULL_GROUP)
    lifecycle.sagemaker.update_endpoint(EndpointName=FULL_GROUP, EndpointConfigName=live_config)

    # When version 2 is approved (SageMaker refuses a second update while one runs)
    v2 = lifecycle.register(FULL_GROUP)
    result = lifecycle.approve(v2)

    # Then the failed step is named, version 2 is rejected with it, and neither the operator's
    # update nor routing was touched
    assert result["status"] == "FAILED", result
    assert result["error"] == "DeploymentStepFailed"
    states = lifecycle.states_entered(result["executionArn"])
    assert states.index("UpdateEndpoint_BlueGreenCanary") < states.index("NoteStepFailed")
    assert "WaitForEndpoint" not in states
    assert lifecycle.package(v2)["ModelApprovalStatus"] == "Rejected"
    assert "a deployment step failed" in lifecycle.package(v2)["ApprovalDescription"]
    described = lifecycle.sagemaker.describe_endpoint(EndpointName=FULL_GROUP)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("Updating", live_config)
    assert lifecycle.option("test-llm").model_package_arn == v1


def test_an_option_moved_during_the_deployment_is_not_overwritten(lifecycle: Lifecycle) -> None:
    from dataclasses import replace

    from switchboard_local.emulation import bind_lambda_handlers
    from switchboard_local.lifecycle_local import lifecycle_handlers

    # Given version 1 live, and an operator who points the option at version 3 while version 2 is
    # being smoke-tested (the option's conditional write then sees a different package)
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    v2 = lifecycle.register(FULL_GROUP)
    v3 = lifecycle.register(FULL_GROUP)
    deployment_function = lifecycle.names["deployment_function"]
    tasks = lifecycle_handlers(lifecycle.resources)[deployment_function]

    def operator_moves_the_option_during_the_smoke_test(event: dict[str, Any], context: Any) -> Any:
        answer = tasks(event, context)
        if event["action"] == "smoke":
            store = lifecycle.options_store()
            current = store.get("test-llm")
            moved = replace(current, model_package_arn=v3)
            store.put(moved, expected_version=current.version, updated_by="operator")
        return answer

    # When version 2 is approved
    with bind_lambda_handlers({deployment_function: operator_moves_the_option_during_the_smoke_test}):
        result = lifecycle.approve(v2)

    # Then the deployment stops without overwriting the operator's change and says why; version 2
    # is not rejected (nothing is wrong with it), and the on-call is told
    assert result["status"] == "FAILED", result
    assert result["error"] == "OptionMovedByAnotherDeployment"
    assert "left to the newer change" in result["cause"]
    assert "NoteOptionMoved" in lifecycle.states_entered(result["executionArn"])
    option = lifecycle.option("test-llm")
    assert (option.model_package_arn, option.updated_by) == (v3, "operator")
    assert lifecycle.package(v2)["ModelApprovalStatus"] == "Approved"
    assert any("OptionMovedByAnotherDeployment" in m for m in lifecycle.notifications())


def test_an_option_owned_by_another_provider_is_never_taken_over(lifecycle: Lifecycle) -> None:
    from switchboard.options.model import LlmOption, ProviderKind

    # Given the family's option id already used by a Bedrock option (a configuration mistake)
    store = lifecycle.options_store()
    bedrock = store.put(
        LlmOption(id="test-llm", provider=ProviderKind.BEDROCK, model="amazon.nova-lite-v1:0"),
        expected_version=None,
        updated_by="operator",
    )

    # When the family's first version is approved
    v1 = lifecycle.register(FULL_GROUP)
    result = lifecycle.approve(v1)

    # Then the switch is refused, the version is rejected with the reason, the Bedrock option is as
    # it was, and the on-call is told
    assert result["status"] == "FAILED", result
    assert result["error"] == "GatewayOptionSwitchFailed"
    path = ["NoteSwitchFailed", "HowToUndoUntestedVersion?", "MarkPackageRejected"]
    assert [s for s in lifecycle.states_entered(result["executionArn"]) if s in path] == path
    option = lifecycle.option("test-llm")
    assert (option.provider, option.version, option.model_package_arn) == (
        ProviderKind.BEDROCK,
        bedrock.version,
        None,
    )
    assert lifecycle.package(v1)["ModelApprovalStatus"] == "Rejected"
    assert "could not point the gateway option at version 1" in lifecycle.package(v1)["ApprovalDescription"]
    records = {r["version"]: r for r in lifecycle.deployments(FULL_GROUP)}
    assert records[1]["outcome"] == "GatewayOptionSwitchFailed"


# --------------------------------------------------------------------------------------------------
# LoRA adapters


def test_adapter_versions_get_their_own_component_and_the_old_one_goes_after_the_bake(
    lifecycle: Lifecycle,
) -> None:
    # Given an endpoint with a base component, and adapter version 1 live
    _deploy_base_endpoint(lifecycle)
    a1 = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/v1.tar.gz")
    first = lifecycle.approve(a1)
    assert first["status"] == "SUCCEEDED", first
    old_component = lifecycle.option("test-lora").inference_component
    assert old_component and "-v1-" in old_component

    # When adapter version 2 is approved
    a2 = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/v2.tar.gz")
    result = lifecycle.approve(a2)

    # Then a new component was created on the base, smoke-tested, the option moved to it,
    # and the old component was deleted after the bake
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    for state in (
        "CreateAdapterComponent",
        "SmokeTestAdapter",
        "SwitchGatewayOption",
        "BakeOldAdapter",
        "CheckAlarmsAfterBake",
        "DeleteOldAdapter",
        "Deployed",
    ):
        assert state in states
    assert "UpdateEndpoint_BlueGreenCanary" not in states
    # a single-region family's bake reads the home alarms only, as before
    assert states[states.index("AlarmFiredDuringBake?") + 1] == "DeleteOldAdapter"
    assert "CheckRegionalAlarmsAfterBake" not in states
    option = lifecycle.option("test-lora")
    assert option.model_package_arn == a2
    assert option.endpoint_name == BASE_ENDPOINT
    assert option.inference_component != old_component and "-v2-" in option.inference_component
    component = lifecycle.sagemaker.describe_inference_component(
        InferenceComponentName=option.inference_component
    )
    assert component["Specification"]["BaseInferenceComponentName"] == BASE_COMPONENT
    assert component["Specification"]["Container"]["ArtifactUrl"] == "s3://adapters/v2.tar.gz"
    remaining = [
        c["InferenceComponentName"]
        for c in lifecycle.sagemaker.list_inference_components()["InferenceComponents"]
    ]
    assert old_component not in remaining
    assert BASE_COMPONENT in remaining


def test_adapter_alarm_during_bake_moves_the_option_back(lifecycle: Lifecycle) -> None:
    _deploy_base_endpoint(lifecycle)
    a1 = lifecycle.register(ADAPTER_GROUP)
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    old_component = lifecycle.option("test-lora").inference_component
    lifecycle.alarm(5)  # the adapter family's gateway-errors alarm
    a2 = lifecycle.register(ADAPTER_GROUP)

    result = lifecycle.approve(a2)

    assert result["status"] == "FAILED"
    assert result["error"] == "AlarmDuringAdapterBake"
    option = lifecycle.option("test-lora")
    assert option.model_package_arn == a1
    assert option.inference_component == old_component
    assert lifecycle.package(a2)["ModelApprovalStatus"] == "Rejected"
    remaining = [
        c["InferenceComponentName"]
        for c in lifecycle.sagemaker.list_inference_components()["InferenceComponents"]
    ]
    assert old_component in remaining and not any("-v2-" in c for c in remaining)


def test_adapter_family_without_its_base_component_fails_before_creating_anything(
    lifecycle: Lifecycle,
) -> None:
    a1 = lifecycle.register(ADAPTER_GROUP)

    result = lifecycle.approve(a1)

    assert result["status"] == "FAILED"
    assert result["error"] == "DeploymentPlanFailed"
    assert "BaseComponentMissing" in result["cause"]
    assert lifecycle.option("test-lora") is None


def test_an_adapter_whose_artifact_cannot_load_is_removed_and_rejected(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given the base endpoint, and an adapter version whose artifact SageMaker cannot load
    _deploy_base_endpoint(lifecycle)
    CONTROL.broken_artifacts.add("s3://adapters/broken.tar.gz")
    a1 = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/broken.tar.gz")

    # When it is approved
    result = lifecycle.approve(a1)

    # Then its failed component is deleted, the version rejected with the reason, no option created
    assert result["status"] == "FAILED", result
    assert result["error"] == "AdapterCreationFailed"
    states = lifecycle.states_entered(result["executionArn"])
    assert states.index("AdapterCreationFailed") < states.index("DeleteUntestedAdapter")
    assert _components(lifecycle) == [BASE_COMPONENT]
    assert lifecycle.package(a1)["ModelApprovalStatus"] == "Rejected"
    assert "failed (version 1)" in lifecycle.package(a1)["ApprovalDescription"]
    assert lifecycle.option("test-lora") is None


def test_an_adapter_that_never_becomes_ready_times_out_and_is_removed(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given adapter version 1 live, and a base endpoint on which new components stay Creating
    _deploy_base_endpoint(lifecycle)
    a1 = lifecycle.register(ADAPTER_GROUP)
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    live_component = lifecycle.option("test-lora").inference_component
    CONTROL.held.add(BASE_ENDPOINT)

    # When version 2 is approved with at most 2 polls, 1 s apart at first, never more than 1 s
    a2 = lifecycle.register(ADAPTER_GROUP)
    result = lifecycle.approve(a2, poll_seconds=1, max_poll_seconds=1, max_polls=2)

    # Then the loop gave up (the doubled wait capped at 1 s), the new component went, version 2 was
    # rejected and the option still serves version 1's component
    assert result["status"] == "FAILED", result
    assert result["error"] == "AdapterDidNotSettle"
    assert "still Creating after 2 polls (version 2)" in result["cause"]
    assert lifecycle.poll_waits(result["executionArn"], "WaitForAdapter") == [1, 1]
    assert lifecycle.states_entered(result["executionArn"]).count("UseMaxAdapterPollWait") == 1
    assert sorted(_components(lifecycle)) == sorted([BASE_COMPONENT, live_component])
    assert lifecycle.package(a2)["ModelApprovalStatus"] == "Rejected"
    assert lifecycle.option("test-lora").inference_component == live_component


def test_an_adapter_deleted_while_it_is_polled_rejects_the_version(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given adapter version 2 being created, and polled (its endpoint holds it in Creating) ...
    _deploy_base_endpoint(lifecycle)
    a1 = lifecycle.register(ADAPTER_GROUP)
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    live_component = lifecycle.option("test-lora").inference_component
    CONTROL.held.add(BASE_ENDPOINT)
    a2 = lifecycle.register(ADAPTER_GROUP)
    execution = lifecycle.start(
        lifecycle.set_status(a2, "Approved"), {"poll_seconds": 1, "max_poll_seconds": 1, "max_polls": 20}
    )
    lifecycle.wait_until_entered(execution, "DescribeAdapter")

    # When someone deletes the new component by hand
    (new_component,) = [c for c in _components(lifecycle) if "-v2-" in c]
    lifecycle.sagemaker.delete_inference_component(InferenceComponentName=new_component)
    result = lifecycle.wait(execution)

    # Then the failed poll is named, version 2 is rejected, version 1 still serves
    assert result["status"] == "FAILED", result
    assert result["error"] == "DeploymentStepFailed"
    assert "an adapter deployment step failed" in result["cause"]
    assert "NoteAdapterStepFailed" in lifecycle.states_entered(execution)
    assert lifecycle.package(a2)["ModelApprovalStatus"] == "Rejected"
    option = lifecycle.option("test-lora")
    assert (option.model_package_arn, option.inference_component) == (a1, live_component)


def _components(lifecycle: Lifecycle) -> list[str]:
    listed = lifecycle.sagemaker.list_inference_components()["InferenceComponents"]
    return [c["InferenceComponentName"] for c in listed]


# --------------------------------------------------------------------------------------------------
# tenant adapters (issue 16): one tenant's adapter moves, no other tenant's


def _two_tenants_live(lifecycle: Lifecycle) -> tuple[str, str]:
    """The base endpoint, and adapter version 1 for acme and 2 for globex, each approved and live."""
    _deploy_base_endpoint(lifecycle)
    acme = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/acme-1.tar.gz", tenant="acme")
    globex = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/globex-1.tar.gz", tenant="globex")
    for arn in (acme, globex):
        result = lifecycle.approve(arn)
        assert result["status"] == "SUCCEEDED", result
    return acme, globex


def test_approving_a_tenants_adapter_serves_that_tenant_only(lifecycle: Lifecycle) -> None:
    # Given acme's and globex's first adapters live on the shared base component
    acme1, globex1 = _two_tenants_live(lifecycle)
    globex_before = lifecycle.tenant("globex")
    acme_before = lifecycle.tenant("acme")
    assert (acme_before.live.package_arn, acme_before.state.value) == (acme1, "live")
    assert globex_before.live.package_arn == globex1 and globex_before.previous is None

    # When acme's second adapter is approved
    acme3 = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/acme-3.tar.gz", tenant="acme")
    result = lifecycle.approve(acme3)

    # Then acme got its own new component through the tenant path, canaried, was promoted, and its
    # old component went ...
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    for state in ("CreateAdapterComponent", "SmokeTestAdapter", "IsTenantAdapter?", "StartTenantCanary"):
        assert state in states
    assert "SwitchGatewayOption" not in states and "SwitchTenantAdapter" not in states
    assert "BakeOldAdapter" not in states  # the canary's bake was the bake
    # (a single-region family: no other region holds the old component)
    assert states[-3:] == ["DeleteOldAdapter", "OldAdapterInOtherRegions?", "Deployed"]
    acme = lifecycle.tenant("acme")
    assert (acme.live.package_arn, acme.live.version, acme.state.value) == (acme3, 3, "live")
    assert acme.previous == acme_before.live
    component = lifecycle.sagemaker.describe_inference_component(InferenceComponentName=acme.live.component)
    assert component["Specification"]["BaseInferenceComponentName"] == BASE_COMPONENT
    assert component["Specification"]["Container"]["ArtifactUrl"] == "s3://adapters/acme-3.tar.gz"
    remaining = _components(lifecycle)
    assert acme_before.live.component not in remaining
    # ... globex and the family's option were never touched
    assert lifecycle.tenant("globex") == globex_before
    assert globex_before.live.component in remaining and BASE_COMPONENT in remaining
    assert lifecycle.option("test-lora") is None
    # ... and the change is in acme's history and the deployments record
    (latest, started, *_) = lifecycle.adapters_store().history(ADAPTER_GROUP, "acme")
    assert (latest["event"], latest["live_version"]) == ("canary_promoted", 3)
    assert (started["event"], started["canary_version"], started["state"]) == ("canary_started", 3, "canary")
    records = {r["version"]: r for r in lifecycle.deployments(ADAPTER_GROUP)}
    assert records[3]["outcome"] == "deployed"


def test_rejecting_a_tenants_live_adapter_redeploys_its_previous_approved_one(lifecycle: Lifecycle) -> None:
    # Given acme's versions 1 then 3 approved (3 live) and globex's version 2 live
    acme1, _ = _two_tenants_live(lifecycle)
    acme3 = lifecycle.register(ADAPTER_GROUP, tenant="acme")
    assert lifecycle.approve(acme3)["status"] == "SUCCEEDED"
    rejected_component = lifecycle.tenant("acme").live.component
    globex_before = lifecycle.tenant("globex")

    # When acme's live adapter is rejected (globex's version 2 is newer, and Approved)
    result = lifecycle.run(lifecycle.set_status(acme3, "Rejected", "rollback: acme complains"))

    # Then acme's version 1 is deployed again (a new component), acme is marked rolled back, and the
    # rejected component goes after the bake; globex is untouched
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert "SwitchTenantAdapter" in states and "DeleteOldAdapter" in states
    acme = lifecycle.tenant("acme")
    assert (acme.live.package_arn, acme.state.value, acme.previous) == (acme1, "rolled_back", None)
    assert rejected_component not in _components(lifecycle)
    assert lifecycle.tenant("globex") == globex_before
    assert globex_before.live.component in _components(lifecycle)


def test_rejecting_a_tenants_only_adapter_returns_it_to_the_base_model(lifecycle: Lifecycle) -> None:
    # Given acme's and globex's first adapters live
    acme1, _ = _two_tenants_live(lifecycle)
    acme_component = lifecycle.tenant("acme").live.component
    globex_before = lifecycle.tenant("globex")

    # When acme's only adapter is rejected
    result = lifecycle.run(lifecycle.set_status(acme1, "Rejected", "acme asked for the base model"))

    # Then acme's record says the base model serves it, its component is gone, globex is untouched
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert states[-4:] == [
        "RollTenantBackToBase",
        "DeleteRejectedTenantAdapter",
        "RejectedAdapterInOtherRegions?",
        "TenantServedByBaseModel",
    ]
    acme = lifecycle.tenant("acme")
    assert (acme.live, acme.state.value) == (None, "rolled_back")
    remaining = _components(lifecycle)
    assert acme_component not in remaining
    assert BASE_COMPONENT in remaining and globex_before.live.component in remaining
    assert lifecycle.tenant("globex") == globex_before
    (latest, *_) = lifecycle.adapters_store().history(ADAPTER_GROUP, "acme")
    assert latest["event"] == "rolled_back_to_base" and "acme" in latest["reason"]

    # And acme's next approved adapter deploys from the base model again
    acme4 = lifecycle.register(ADAPTER_GROUP, tenant="acme")
    assert lifecycle.approve(acme4)["status"] == "SUCCEEDED"
    assert lifecycle.tenant("acme").live.package_arn == acme4


def test_an_alarm_during_a_tenants_rollback_bake_restores_what_served_before(lifecycle: Lifecycle) -> None:
    # Given acme's versions 1 then 3 live (3 serving), and the family's gateway-errors alarm firing
    acme1, _ = _two_tenants_live(lifecycle)
    acme3 = lifecycle.register(ADAPTER_GROUP, tenant="acme")
    assert lifecycle.approve(acme3)["status"] == "SUCCEEDED"
    acme_before = lifecycle.tenant("acme")
    globex_before = lifecycle.tenant("globex")
    lifecycle.alarm(5)

    # When acme's live version 3 is rejected (a rollback switches at once, then bakes)
    result = lifecycle.run(lifecycle.set_status(acme3, "Rejected", "rollback"))

    # Then the redeploy of version 1 is undone: acme's record is back as it was (marked rolled back),
    # the redeployed component is gone; globex is untouched
    assert result["status"] == "FAILED", result
    assert result["error"] == "AlarmDuringAdapterBake"
    states = lifecycle.states_entered(result["executionArn"])
    assert "SwitchTenantAdapter" in states and "StartTenantCanary" not in states
    assert "RevertTenantToOldAdapter" in states and "RevertToOldAdapter" not in states
    acme = lifecycle.tenant("acme")
    assert (acme.live, acme.state.value) == (acme_before.live, "rolled_back")
    assert not any("-v1-" in c and c != acme_before.previous.component for c in _components(lifecycle))
    assert lifecycle.tenant("globex") == globex_before
    # (as for a family-wide adapter, the version the rollback redeployed is rejected, and the
    # rejected one serves again: the on-call is told and decides)
    assert lifecycle.package(acme1)["ModelApprovalStatus"] == "Rejected"


# adapter canaries (issue 16): the new version serves a share of its tenant, then promotes or rolls back


def _fail_during(lifecycle: Lifecycle, action: str) -> Any:
    """The deployment tasks, except that ``action`` raises (a broken dependency of that task)."""
    from switchboard_local.emulation import bind_lambda_handlers
    from switchboard_local.lifecycle_local import lifecycle_handlers

    name = lifecycle.names["deployment_function"]
    real = lifecycle_handlers(lifecycle.resources)[name]

    def failing(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if event.get("action") == action:
            raise ConnectionError(f"{action}: dependency unavailable (test)")
        return real(event, context)

    return bind_lambda_handlers({name: failing})


def _canary_under_way(lifecycle: Lifecycle) -> tuple[str, Any, Any, str]:
    """acme and globex live; acme's version 3 approved with a 2 s bake, and its canary started."""
    _two_tenants_live(lifecycle)
    acme_before = lifecycle.tenant("acme")
    globex_before = lifecycle.tenant("globex")
    acme3 = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/acme-3.tar.gz", tenant="acme")
    execution = lifecycle.start(lifecycle.set_status(acme3, "Approved"), {"bake_seconds": 2})
    lifecycle.wait_until_entered(execution, "BakeTenantCanary")
    return acme3, acme_before, globex_before, execution


def test_a_tenants_canary_serves_its_share_then_promotes_after_the_bake(lifecycle: Lifecycle) -> None:
    from switchboard_local.lifecycle_local import put_component_metrics

    # Given acme's version 3 canarying
    acme3, acme_before, globex_before, execution = _canary_under_way(lifecycle)

    # Then during the bake acme's row says canary: version 3 on the family's share, version 1 the rest
    during = lifecycle.tenant("acme")
    assert during.state.value == "canary"
    assert (during.live, during.canary.package_arn, during.canary_share_percent) == (
        acme_before.live,
        acme3,
        10,
    )
    assert lifecycle.tenant("globex") == globex_before

    # When the canary answers well during the bake
    put_component_metrics(
        client("cloudwatch"), during.canary.component, invocations=40, errors=1, latency_ms=800
    )
    result = lifecycle.wait(execution)

    # Then it is promoted: version 3 live, version 1 previous, the old component gone; globex untouched
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(execution)
    assert states[-8:] == [
        "JudgeTenantCanary",
        "CanaryHealthy?",
        "PromoteTenantCanary",
        "RecordDeployment",
        "HasOldAdapterToBake?",
        "DeleteOldAdapter",
        "OldAdapterInOtherRegions?",
        "Deployed",
    ]
    acme = lifecycle.tenant("acme")
    assert (acme.state.value, acme.live, acme.previous, acme.canary) == (
        "live",
        during.canary,
        acme_before.live,
        None,
    )
    assert acme_before.live.component not in _components(lifecycle)
    assert lifecycle.tenant("globex") == globex_before
    (promoted, *_) = lifecycle.adapters_store().history(ADAPTER_GROUP, "acme")
    assert promoted["event"] == "canary_promoted" and "40 invocations, 1 errors" in promoted["reason"]


def test_bad_canary_metrics_during_the_bake_roll_the_tenant_back(lifecycle: Lifecycle) -> None:
    from switchboard_local.lifecycle_local import put_component_metrics

    # Given acme's version 3 canarying
    acme3, acme_before, globex_before, execution = _canary_under_way(lifecycle)
    canary = lifecycle.tenant("acme").canary

    # When the canary component fails half its requests during the bake (its "alarm" fires)
    put_component_metrics(client("cloudwatch"), canary.component, invocations=20, errors=10)
    result = lifecycle.wait(execution)

    # Then acme is back on version 1 (rolled back), the canary's component is gone, the version is
    # rejected with the reason, the history says which and why; globex is untouched
    assert result["status"] == "FAILED", result
    assert result["error"] == "CanaryRolledBack"
    states = lifecycle.states_entered(execution)
    assert states[states.index("CanaryHealthy?") : states.index("DeleteUntestedAdapter") + 1] == [
        "CanaryHealthy?",
        "RollBackTenantCanary",
        "CanaryRolledBack",
        "UndoAdapterInOtherRegions?",
        "DeleteUntestedAdapter",
    ]
    acme = lifecycle.tenant("acme")
    assert (acme.state.value, acme.live, acme.canary) == ("rolled_back", acme_before.live, None)
    assert canary.component not in _components(lifecycle)
    assert acme_before.live.component in _components(lifecycle)
    package = lifecycle.package(acme3)
    assert (
        package["ModelApprovalStatus"] == "Rejected" and "error rate 50.0%" in package["ApprovalDescription"]
    )
    (rolled_back, *_) = lifecycle.adapters_store().history(ADAPTER_GROUP, "acme")
    assert (rolled_back["event"], rolled_back["canary_version"]) == ("canary_rolled_back", 3)
    assert "error rate 50.0%" in rolled_back["reason"]
    assert lifecycle.tenant("globex") == globex_before
    assert any("CanaryRolledBack" in m for m in lifecycle.notifications())


def test_a_family_alarm_in_alarm_during_the_canary_rolls_the_tenant_back(lifecycle: Lifecycle) -> None:
    # Given acme's version 3 canarying
    _acme3, acme_before, globex_before, execution = _canary_under_way(lifecycle)

    # When the family's gateway-errors alarm goes to ALARM during the bake
    alarm = lifecycle.alarm(5)
    result = lifecycle.wait(execution)

    # Then the canary rolls back and says which alarm; globex is untouched
    assert result["status"] == "FAILED" and result["error"] == "CanaryRolledBack", result
    assert alarm in result["cause"]
    acme = lifecycle.tenant("acme")
    assert (acme.state.value, acme.live, acme.canary) == ("rolled_back", acme_before.live, None)
    assert lifecycle.tenant("globex") == globex_before


def test_a_canary_that_cannot_be_judged_rolls_back(lifecycle: Lifecycle) -> None:
    _two_tenants_live(lifecycle)
    acme_before = lifecycle.tenant("acme")
    acme3 = lifecycle.register(ADAPTER_GROUP, tenant="acme")

    with _fail_during(lifecycle, "judge_canary"):
        result = lifecycle.approve(acme3)

    assert result["status"] == "FAILED" and result["error"] == "CanaryRolledBack", result
    assert "could not be judged" in result["cause"]
    assert "NoteCanaryNotJudged" in lifecycle.states_entered(result["executionArn"])
    assert lifecycle.tenant("acme").live == acme_before.live


def test_a_canary_whose_end_cannot_be_written_stays_and_tells_the_on_call(lifecycle: Lifecycle) -> None:
    _two_tenants_live(lifecycle)
    acme3 = lifecycle.register(ADAPTER_GROUP, tenant="acme")

    with _fail_during(lifecycle, "promote_canary"):
        result = lifecycle.approve(acme3)

    assert result["status"] == "FAILED" and result["error"] == "CanaryNotFinished", result
    assert "NoteCanaryUnfinished" in lifecycle.states_entered(result["executionArn"])
    acme = lifecycle.tenant("acme")
    assert acme.state.value == "canary" and acme.canary.package_arn == acme3
    assert acme.canary.component in _components(lifecycle)  # requests may still reach it
    assert any("CanaryNotFinished" in m for m in lifecycle.notifications())


def _racing(lifecycle: Lifecycle, action: str, tenant: str) -> Any:
    """The deployment tasks, except that just before ``action`` runs someone else moves ``tenant``'s
    record (what a concurrent deployment or an operator would do)."""
    from switchboard.lifecycle.adapter_store import AdapterChange, AdapterState, HistoryEvent, TenantAdapter
    from switchboard_local.emulation import bind_lambda_handlers
    from switchboard_local.lifecycle_local import lifecycle_handlers

    name = lifecycle.names["deployment_function"]
    real = lifecycle_handlers(lifecycle.resources)[name]

    def racing(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if event.get("action") == action:
            store = lifecycle.adapters_store()
            current = store.get(ADAPTER_GROUP, tenant)
            moved = TenantAdapter(ADAPTER_GROUP, tenant, AdapterState.LIVE, live=None, updated_by="operator")
            change = AdapterChange(ADAPTER_GROUP, tenant, HistoryEvent.ROLLED_BACK_TO_BASE, "t", "x", moved)
            store.write(moved, expected_live_arn=current.live.package_arn if current else None, change=change)
        return real(event, context)

    return bind_lambda_handlers({name: racing})


def test_a_tenants_adapter_moved_before_its_canary_starts_is_left_to_the_newer_change(
    lifecycle: Lifecycle,
) -> None:
    _two_tenants_live(lifecycle)
    acme3 = lifecycle.register(ADAPTER_GROUP, tenant="acme")

    with _racing(lifecycle, "start_canary", "acme"):
        result = lifecycle.approve(acme3)

    assert result["status"] == "FAILED", result
    assert result["error"] == "TenantAdapterMovedByAnotherDeployment"
    assert "tenant acme" in result["cause"]
    states = lifecycle.states_entered(result["executionArn"])
    assert "NoteCanaryRefused" in states and "DeleteUntestedAdapter" in states
    assert not any("-v3-" in c for c in _components(lifecycle))
    assert lifecycle.tenant("acme").live is None  # the newer change stays


def test_a_tenants_adapter_moved_during_its_canary_is_left_to_the_newer_change(lifecycle: Lifecycle) -> None:
    _two_tenants_live(lifecycle)
    acme3 = lifecycle.register(ADAPTER_GROUP, tenant="acme")

    with _racing(lifecycle, "promote_canary", "acme"):
        result = lifecycle.approve(acme3)

    assert result["status"] == "FAILED", result
    assert result["error"] == "TenantAdapterMovedByAnotherDeployment"
    assert "NoteTenantAdapterMoved" in lifecycle.states_entered(result["executionArn"])
    acme = lifecycle.tenant("acme")
    assert (acme.live, acme.canary) == (None, None)  # the newer change stays


def test_a_tenant_whose_rollback_to_base_is_refused_keeps_its_adapter_and_tells_the_on_call(
    lifecycle: Lifecycle,
) -> None:
    acme1, _ = _two_tenants_live(lifecycle)
    component = lifecycle.tenant("acme").live.component

    with _racing(lifecycle, "tenant_to_base", "acme"):
        result = lifecycle.run(lifecycle.set_status(acme1, "Rejected", "bad"))

    assert result["status"] == "FAILED", result
    assert result["error"] == "TenantRollbackToBaseFailed"
    assert "NoteTenantRollbackFailed" in lifecycle.states_entered(result["executionArn"])
    assert component in _components(lifecycle)
    assert any("TenantRollbackToBaseFailed" in m for m in lifecycle.notifications())


def test_a_tenant_version_in_a_full_model_family_fails_its_plan(lifecycle: Lifecycle) -> None:
    v1 = lifecycle.register(FULL_GROUP, tenant="acme")

    result = lifecycle.approve(v1)

    assert result["status"] == "FAILED", result
    assert result["error"] == "DeploymentPlanFailed"
    assert "NotATenantAdapterFamily" in result["cause"]
    assert lifecycle.option("test-llm") is None


def test_retirement_never_takes_a_tenants_serving_adapter(lifecycle: Lifecycle) -> None:
    # Given acme's adapter version 1 live, then family-wide versions 3..5 deployed in turn
    _deploy_base_endpoint(lifecycle)
    acme1 = lifecycle.register(ADAPTER_GROUP, tenant="acme")
    assert lifecycle.approve(acme1)["status"] == "SUCCEEDED"
    family_wide = [lifecycle.register(ADAPTER_GROUP) for _ in range(3)]
    for arn in family_wide:
        assert lifecycle.approve(arn)["status"] == "SUCCEEDED"

    # When retirement runs with a retention of 1 (acme's version 1 is older than everything kept)
    report = lifecycle_handlers_retire(lifecycle, {"groups": [ADAPTER_GROUP]})

    # Then the old family-wide version is retired, acme's adapter and its component are not
    retired = [r["version"] for r in report["families"][ADAPTER_GROUP]["retired"]]
    assert retired == [2]
    assert lifecycle.tenant("acme").live.component in _components(lifecycle)
    assert "ModelLifeCycle" not in lifecycle.package(acme1)


# --------------------------------------------------------------------------------------------------
# retirement


def test_retirement_archives_old_versions_and_never_touches_the_live_one(lifecycle: Lifecycle) -> None:
    # Given versions 1..3 deployed in turn (3 live) and a retention of 1 older version
    arns = [lifecycle.register(FULL_GROUP) for _ in range(3)]
    for arn in arns:
        assert lifecycle.approve(arn)["status"] == "SUCCEEDED"
    live_config = lifecycle.endpoint_config(FULL_GROUP)

    # When the scheduled retirement runs (through the Lambda API, bound in-process)
    response = client("lambda").invoke(
        FunctionName=lifecycle.names["retirement_function"], Payload=json.dumps({"groups": [FULL_GROUP]})
    )
    report = json.loads(response["Payload"].read())

    # Then version 1 is retired: its config and model deleted, package archived, pinned option retired
    retired = report["families"][FULL_GROUP]["retired"]
    assert [r["version"] for r in retired] == [1]
    configs = [
        c["EndpointConfigName"] for c in lifecycle.sagemaker.list_endpoint_configs()["EndpointConfigs"]
    ]
    assert not any("-v1-" in c for c in configs)
    assert any("-v2-" in c for c in configs) and live_config in configs
    assert lifecycle.package(arns[0])["ModelLifeCycle"]["Stage"] == "Archived"
    assert "ModelLifeCycle" not in lifecycle.package(arns[2])
    pinned = lifecycle.option("test-llm-v1")
    assert pinned.status.value == "retired" and pinned.replaced_by == "test-llm"
    # and the version serving traffic is untouched
    assert lifecycle.option("test-llm").model_package_arn == arns[2]
    assert lifecycle.endpoint_config(FULL_GROUP) == live_config
    assert lifecycle.option("test-llm-v3").status.value == "active"

    # A second run has nothing left to do
    again = lifecycle_handlers_retire(lifecycle, {"groups": [FULL_GROUP]})
    assert again["families"][FULL_GROUP]["retired"] == []


def lifecycle_handlers_retire(lifecycle: Lifecycle, event: dict[str, Any]) -> dict[str, Any]:
    from switchboard_local.lifecycle_local import lifecycle_handlers

    handler = lifecycle_handlers(lifecycle.resources)[lifecycle.names["retirement_function"]]
    return handler(event, None)


# --------------------------------------------------------------------------------------------------
# smoke-test failures: deployed, but cannot answer


def test_full_model_that_fails_its_smoke_test_goes_back_and_is_rejected(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 live, and a version 2 whose container will answer every invocation with 500
    v1 = lifecycle.register(FULL_GROUP)
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    old_config = lifecycle.endpoint_config(FULL_GROUP)
    before = lifecycle.option("test-llm")
    v2 = lifecycle.register(FULL_GROUP, data="s3://models/v2-broken.tar.gz")
    CONTROL.failing_invocations.add(FULL_GROUP)

    # When version 2 is approved
    result = lifecycle.approve(v2)

    # Then the blue/green update went through (no alarm), the smoke test caught the broken model,
    # and the endpoint went back to version 1's config before anyone routed to version 2
    assert result["status"] == "FAILED", result
    assert result["error"] == "SmokeTestFailed"
    assert "version 2 failed its smoke invocation" in result["cause"]
    states = lifecycle.states_entered(result["executionArn"])
    assert states.index("UpdateEndpoint_BlueGreenCanary") < states.index("SmokeTest")
    assert "NoteSmokeTestFailed" in states and "RestorePreviousEndpointConfig" in states
    assert "SwitchGatewayOption" not in states
    assert states[-1] == "DeploymentFailed"
    assert CONTROL.update_requests[-1]["EndpointConfigName"] == old_config
    lifecycle.sagemaker.describe_endpoint(EndpointName=FULL_GROUP)  # lets the restore settle
    assert lifecycle.endpoint_config(FULL_GROUP) == old_config
    # ... routing never moved, the version is Rejected with the reason, someone is told
    option = lifecycle.option("test-llm")
    assert (option.model_package_arn, option.version) == (v1, before.version)
    package = lifecycle.package(v2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "smoke" in package["ApprovalDescription"]
    assert any("SmokeTestFailed" in m for m in lifecycle.notifications())
    records = {r["version"]: r for r in lifecycle.deployments(FULL_GROUP)}
    assert records[2]["outcome"] == "SmokeTestFailed"


def test_adapter_that_fails_its_smoke_test_is_deleted_and_rejected(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given adapter version 1 live on the base endpoint
    _deploy_base_endpoint(lifecycle)
    a1 = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/v1.tar.gz")
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    old_component = lifecycle.option("test-lora").inference_component
    # ... and from now on every invocation through the base endpoint fails
    CONTROL.failing_invocations.add(BASE_ENDPOINT)

    # When adapter version 2 is approved
    a2 = lifecycle.register(ADAPTER_GROUP, data="s3://adapters/v2.tar.gz")
    result = lifecycle.approve(a2)

    # Then its new component was created, failed the smoke test and was deleted again
    assert result["status"] == "FAILED", result
    assert result["error"] == "SmokeTestFailed"
    states = lifecycle.states_entered(result["executionArn"])
    for state in (
        "CreateAdapterComponent",
        "SmokeTestAdapter",
        "NoteSmokeTestFailed",
        "DeleteUntestedAdapter",
    ):
        assert state in states
    assert "SwitchGatewayOption" not in states
    remaining = [
        c["InferenceComponentName"]
        for c in lifecycle.sagemaker.list_inference_components()["InferenceComponents"]
    ]
    assert old_component in remaining and not any("-v2-" in c for c in remaining)
    option = lifecycle.option("test-lora")
    assert (option.model_package_arn, option.inference_component) == (a1, old_component)
    assert lifecycle.package(a2)["ModelApprovalStatus"] == "Rejected"


# --------------------------------------------------------------------------------------------------
# multi-region rollout of a full-model family (adapter families: further down)


def _in_region(region: str, service: str) -> Any:
    return boto3.client(service, region_name=region)


def _regional_config(region: str) -> str:
    sm = _in_region(region, "sagemaker")
    sm.describe_endpoint(EndpointName=GLOBAL_GROUP)  # lets a pending update settle in the emulation
    return str(sm.describe_endpoint(EndpointName=GLOBAL_GROUP)["EndpointConfigName"])


def _push_image(*regions: str) -> None:
    """The registered versions' image (the account's ``switchboard-llm:1``) in ``regions``' ECR, as
    replication (cdk.json ``replicate_images``) puts it there: the rollout's plan checks each region."""
    for region in regions:
        push_ecr_image(_in_region(region, "ecr"), "switchboard-llm", "1")


def _regions_rolled_out(lifecycle: Lifecycle, execution: str) -> list[str]:
    return [
        state_input["rollout"]["region"]["region"]
        for name, state_input in lifecycle.entered_with_input(execution)
        if name == "DeployInRegion"
    ]


def test_a_version_rolls_out_to_the_other_regions_one_after_the_other(lifecycle: Lifecycle) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 of a family with two other regions, deployed everywhere (endpoints created)
    _push_image(*OTHER_REGIONS)
    v1 = lifecycle.register(GLOBAL_GROUP, data="s3://switchboard-models/global/v1.tar.gz")
    first = lifecycle.approve(v1)
    assert first["status"] == "SUCCEEDED", first
    assert _regions_rolled_out(lifecycle, first["executionArn"]) == list(OTHER_REGIONS)
    for region in OTHER_REGIONS:
        option = lifecycle.option(f"test-global-{region}")
        assert (option.model_package_arn, option.region, option.endpoint_name) == (v1, region, GLOBAL_GROUP)

    # When version 2 is approved
    v2 = lifecycle.register(GLOBAL_GROUP, data="s3://switchboard-models/global/v2.tar.gz")
    result = lifecycle.approve(v2)

    # Then the home region went first (its canary, alarms, smoke test and option), then each other
    # region in the order cdk.json lists them, each with its own guarded update, smoke test and option
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert states.index("SwitchGatewayOption") < states.index("StartRegionalRollout")
    assert _regions_rolled_out(lifecycle, result["executionArn"]) == list(OTHER_REGIONS)
    for state in ("WaitForRegion", "CheckRegionEndpoint", "RegionSettled?", "SmokeTestRegion"):
        assert states.count(state) >= 2, state
    assert states[-1] == "Deployed"
    home_config = lifecycle.endpoint_config(GLOBAL_GROUP)
    assert "-v2-" in home_config
    guarded = [r for r in CONTROL.update_requests if r["EndpointConfigName"] == home_config]
    assert len(guarded) == 3  # the home region's and one per other region, same names everywhere
    for request in guarded[1:]:
        alarms = [a["AlarmName"] for a in request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
        assert alarms == [
            f"{lifecycle.names['alarm_prefix']}{GLOBAL_GROUP}-invocation-5xx",
            f"{lifecycle.names['alarm_prefix']}{GLOBAL_GROUP}-model-latency",
        ]
        assert request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
            "Type"
        ] == ("CANARY")
    replicas = lifecycle.names["regional_artifact_buckets"]
    for region in OTHER_REGIONS:
        assert _regional_config(region) == home_config
        model = _in_region(region, "sagemaker").describe_model(ModelName=home_config)
        assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{replicas[region]}/global/v2.tar.gz"
        # SageMaker runs only an image of the model's own region: that region's copy
        assert (
            model["PrimaryContainer"]["Image"]
            == f"123456789012.dkr.ecr.{region}.amazonaws.com/switchboard-llm:1"
        )
        option = lifecycle.option(f"test-global-{region}")
        assert (option.model_package_arn, option.region) == (v2, region)
        assert option.updated_by == f"model-deployment:{result['name']}"
    assert lifecycle.option("test-global").model_package_arn == v2
    assert lifecycle.package(v2)["ModelApprovalStatus"] == "Approved"


def test_a_failing_region_rolls_back_the_regions_moved_and_home_and_rejects_the_version(
    lifecycle: Lifecycle,
) -> None:
    # Given version 1 live in every region, and the last region's rollback alarm firing
    _push_image(*OTHER_REGIONS)
    v1 = lifecycle.register(GLOBAL_GROUP, data="s3://switchboard-models/global/v1.tar.gz")
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    configs = {region: _regional_config(region) for region in (REGION, *OTHER_REGIONS)}
    options = {region: lifecycle.option(f"test-global-{region}") for region in OTHER_REGIONS}
    home_before = lifecycle.option("test-global")
    failing = OTHER_REGIONS[-1]
    alarm = f"{lifecycle.names['alarm_prefix']}{GLOBAL_GROUP}-invocation-5xx"
    cloudwatch = _in_region(failing, "cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": GLOBAL_GROUP}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")

    # When version 2 is approved
    v2 = lifecycle.register(GLOBAL_GROUP, data="s3://switchboard-models/global/v2.tar.gz")
    result = lifecycle.approve(v2)

    # Then home and the first other region moved, the last one was rolled back by its alarm ...
    assert result["status"] == "FAILED", result
    assert result["error"] == "RegionalRolloutFailed"
    assert f"rollout to region {failing} failed" in result["cause"] and "auto-rollback" in result["cause"]
    states = lifecycle.states_entered(result["executionArn"])
    assert _regions_rolled_out(lifecycle, result["executionArn"]) == list(OTHER_REGIONS)
    assert states.count("SwitchRegionOption") == 1
    for state in ("NoteRegionFailed", "RollBackRolledOutRegions", "MarkPackageRejected", "NotifyFailure"):
        assert state in states
    assert states[-1] == "DeploymentFailed"
    # ... and every region, home included, serves version 1 again: endpoint config and option
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_config(region) == configs[region], region
    for region in OTHER_REGIONS:
        option = lifecycle.option(f"test-global-{region}")
        assert option.model_package_arn == v1, region
    assert (
        lifecycle.option(f"test-global-{OTHER_REGIONS[0]}").version == options[OTHER_REGIONS[0]].version + 2
    )
    assert lifecycle.option(f"test-global-{failing}").version == options[failing].version
    home = lifecycle.option("test-global")
    assert (home.model_package_arn, home.version) == (v1, home_before.version + 2)
    # ... the version is rejected with the reason naming the region, and someone is told
    package = lifecycle.package(v2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert failing in package["ApprovalDescription"]
    assert any("RegionalRolloutFailed" in m and failing in m for m in lifecycle.notifications())
    records = {r["version"]: r for r in lifecycle.deployments(GLOBAL_GROUP)}
    assert records[2]["outcome"] == "RegionalRolloutFailed"

    # And the Rejected event of version 2 is ignored: it is not live anywhere
    follow_up = lifecycle.run(lifecycle.event(v2))
    assert "IgnoreRejectionOfNonLiveVersion" in lifecycle.states_entered(follow_up["executionArn"])


def test_an_image_missing_in_a_region_rejects_the_version_before_any_region_moves(
    lifecycle: Lifecycle,
) -> None:
    # Given version 1 live in every region ...
    _push_image(*OTHER_REGIONS)
    v1 = lifecycle.register(GLOBAL_GROUP, data="s3://switchboard-models/global/v1.tar.gz")
    assert lifecycle.approve(v1)["status"] == "SUCCEEDED"
    configs = {region: _regional_config(region) for region in (REGION, *OTHER_REGIONS)}
    options = {region: lifecycle.option(f"test-global-{region}").version for region in OTHER_REGIONS}
    home_before = lifecycle.option("test-global")
    # ... and a version 2 whose image (a new tag) was pushed in the home region only
    v2: str = lifecycle.sagemaker.create_model_package(
        ModelPackageGroupName=GLOBAL_GROUP,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/switchboard-llm:2",
                    "ModelDataUrl": "s3://switchboard-models/global/v2.tar.gz",
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]

    # When version 2 is approved
    result = lifecycle.approve(v2)

    # Then the version is rejected from the plan, naming each region and its missing image ...
    assert result["status"] == "FAILED", result
    assert result["error"] == "RegionalImageMissing"
    for region in OTHER_REGIONS:
        assert (
            f"{region}: image 123456789012.dkr.ecr.{region}.amazonaws.com/switchboard-llm:2 does not exist"
            in (result["cause"])
        )
    states = lifecycle.states_entered(result["executionArn"])
    assert states[states.index("ImageInEveryRolloutRegion?") + 1] == "RegionalImageMissing"
    for state in ("CreateModelFromPackage", "UpdateEndpoint_BlueGreenCanary", "SwitchGatewayOption"):
        assert state not in states
    package = lifecycle.package(v2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "switchboard-llm:2 does not exist" in package["ApprovalDescription"]
    assert any("RegionalImageMissing" in m for m in lifecycle.notifications())
    # ... and no region moved: endpoints, options and the home option as they were
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_config(region) == configs[region], region
    for region in OTHER_REGIONS:
        assert lifecycle.option(f"test-global-{region}").version == options[region]
    assert lifecycle.option("test-global") == home_before


# --------------------------------------------------------------------------------------------------
# adapter versions in every region of their family (issue 16): made, polled and smoke-tested in each
# region under the same name before routing moves; a failure anywhere deletes them all


def _regional_lora_bases(lifecycle: Lifecycle) -> None:
    """The base endpoint and component in every region the adapter family lists."""
    from switchboard_local.lifecycle_local import deploy_base_component

    for region in (REGION, *OTHER_REGIONS):
        deploy_base_component(
            _in_region(region, "sagemaker"),
            endpoint=REGIONAL_LORA_ENDPOINT,
            component=REGIONAL_LORA_BASE,
            role_arn=ROLE,
        )


def _regional_components(region: str) -> list[str]:
    listed = _in_region(region, "sagemaker").list_inference_components(
        EndpointNameEquals=REGIONAL_LORA_ENDPOINT
    )
    return sorted(c["InferenceComponentName"] for c in listed["InferenceComponents"])


def _adapter_regions(lifecycle: Lifecycle, execution: str) -> list[str]:
    return [
        state_input["rollout"]["region"]["region"]
        for name, state_input in lifecycle.entered_with_input(execution)
        if name == "CreateAdapterInRegion"
    ]


def _rlora(version: int) -> str:
    return f"s3://switchboard-models/rlora/v{version}.tar.gz"


def test_an_adapter_version_is_made_in_every_region_before_the_options_move_together(
    lifecycle: Lifecycle,
) -> None:
    # Given the adapter family's base in every region it lists, and its version 1 live everywhere
    _regional_lora_bases(lifecycle)
    a1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1))
    first = lifecycle.approve(a1)
    assert first["status"] == "SUCCEEDED", first
    v1_component = lifecycle.option("test-rlora").inference_component
    for region in OTHER_REGIONS:
        assert v1_component in _regional_components(region)

    # When version 2 is approved
    a2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2))
    result = lifecycle.approve(a2)

    # Then its component was made and smoke-tested at home, then in each other region in order,
    # all before any option moved; then the home option and every region's option moved together
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert _adapter_regions(lifecycle, result["executionArn"]) == list(OTHER_REGIONS)
    assert states.count("SmokeTestAdapterInRegion") == len(OTHER_REGIONS)
    assert states.index("SmokeTestAdapter") < states.index("CreateAdapterInRegion")
    last_smoke = len(states) - 1 - states[::-1].index("SmokeTestAdapterInRegion")
    assert (
        last_smoke < states.index("SwitchGatewayOption") < states.index("SwitchAdapterOptionsInOtherRegions")
    )
    assert "StartRegionalRollout" not in states  # the full-model path is not taken
    home = lifecycle.option("test-rlora")
    v2_component = home.inference_component
    assert home.model_package_arn == a2 and "-v2-" in v2_component
    replicas = lifecycle.names["regional_artifact_buckets"]
    for region in OTHER_REGIONS:
        option = lifecycle.option(f"test-rlora-{region}")
        assert (option.model_package_arn, option.inference_component, option.region) == (
            a2,
            v2_component,
            region,
        )
        assert option.endpoint_name == REGIONAL_LORA_ENDPOINT
        described = _in_region(region, "sagemaker").describe_inference_component(
            InferenceComponentName=v2_component
        )
        assert described["Specification"]["BaseInferenceComponentName"] == REGIONAL_LORA_BASE
        assert (
            described["Specification"]["Container"]["ArtifactUrl"]
            == f"s3://{replicas[region]}/rlora/v2.tar.gz"
        )
    # ... and after the bake version 1's component went in every region, the base stayed
    assert states[-3:] == ["OldAdapterInOtherRegions?", "DeleteOldAdapterInOtherRegions", "Deployed"]
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == sorted([REGIONAL_LORA_BASE, v2_component]), region


def test_an_adapter_failing_in_a_region_is_deleted_everywhere_and_rejected_naming_the_region(
    lifecycle: Lifecycle,
) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    # Given version 1 live everywhere, and version 2's artifact unloadable in the last region only
    # (its replica there is broken)
    _regional_lora_bases(lifecycle)
    a1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1))
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    before = {option_id: lifecycle.option(option_id) for option_id in _rlora_options()}
    components_before = {region: _regional_components(region) for region in (REGION, *OTHER_REGIONS)}
    failing = OTHER_REGIONS[-1]
    CONTROL.broken_artifacts.add(
        f"s3://{lifecycle.names['regional_artifact_buckets'][failing]}/rlora/v2.tar.gz"
    )

    # When version 2 is approved
    a2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2))
    result = lifecycle.approve(a2)

    # Then it was made at home and in the first region, failed in the last, and went everywhere;
    # no option moved, the version is rejected naming the region
    assert result["status"] == "FAILED", result
    assert result["error"] == "RegionalRolloutFailed"
    assert f"adapter rollout to region {failing} failed" in result["cause"] and "is Failed" in result["cause"]
    states = lifecycle.states_entered(result["executionArn"])
    assert _adapter_regions(lifecycle, result["executionArn"]) == list(OTHER_REGIONS)
    assert "SwitchGatewayOption" not in states
    order = [
        "NoteAdapterRegionFailed",
        "RollBackAdapterInOtherRegions",
        "DeleteUntestedAdapter",
        "MarkPackageRejected",
    ]
    assert [s for s in states if s in order] == order
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == components_before[region], region
    assert {option_id: lifecycle.option(option_id) for option_id in _rlora_options()} == before
    package = lifecycle.package(a2)
    assert package["ModelApprovalStatus"] == "Rejected" and failing in package["ApprovalDescription"]


def _rlora_options() -> list[str]:
    return ["test-rlora", *(f"test-rlora-{region}" for region in OTHER_REGIONS)]


def test_regional_options_that_cannot_move_put_the_home_option_back_and_the_version_goes(
    lifecycle: Lifecycle,
) -> None:
    # Given version 1 live everywhere, and the regional options' switch failing
    _regional_lora_bases(lifecycle)
    a1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1))
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    before = {option_id: lifecycle.option(option_id) for option_id in _rlora_options()}
    components_before = {region: _regional_components(region) for region in (REGION, *OTHER_REGIONS)}

    # When version 2 is approved
    a2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2))
    with _fail_during(lifecycle, "switch_region_adapter_options"):
        result = lifecycle.approve(a2)

    # Then the home option moved and came back, version 2's components went everywhere, rejected
    assert result["status"] == "FAILED", result
    assert result["error"] == "RegionalRolloutFailed"
    assert "could not move to version 2" in result["cause"]
    states = lifecycle.states_entered(result["executionArn"])
    for state in ("SwitchGatewayOption", "NoteAdapterOptionsFailed", "RollBackAdapterInOtherRegions"):
        assert state in states
    home = lifecycle.option("test-rlora")
    assert (home.model_package_arn, home.inference_component) == (
        a1,
        before["test-rlora"].inference_component,
    )
    for option_id in _rlora_options()[1:]:
        assert lifecycle.option(option_id) == before[option_id]
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == components_before[region], region
    assert lifecycle.package(a2)["ModelApprovalStatus"] == "Rejected"


def test_an_alarm_during_the_bake_puts_every_regions_option_back_and_the_version_goes_everywhere(
    lifecycle: Lifecycle,
) -> None:
    # Given version 1 live everywhere, and the adapter family's gateway-errors alarm firing
    _regional_lora_bases(lifecycle)
    a1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1))
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    v1_component = lifecycle.option("test-rlora").inference_component
    components_before = {region: _regional_components(region) for region in (REGION, *OTHER_REGIONS)}
    alarm = lifecycle.alarm(11)
    assert alarm.endswith(f"{REGIONAL_LORA_GROUP}-gateway-errors"), alarm

    # When version 2 is approved (made everywhere, every option moved, then the bake sees the alarm)
    a2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2))
    result = lifecycle.approve(a2)

    # Then every option, home and regional, serves version 1's component again, and version 2's
    # component is gone in every region
    assert result["status"] == "FAILED", result
    assert result["error"] == "AlarmDuringAdapterBake"
    states = lifecycle.states_entered(result["executionArn"])
    assert states.index("SwitchAdapterOptionsInOtherRegions") < states.index("RevertToOldAdapter")
    assert states.index("RevertToOldAdapter") < states.index("RollBackAdapterInOtherRegions")
    for option_id in _rlora_options():
        option = lifecycle.option(option_id)
        assert (option.model_package_arn, option.inference_component) == (a1, v1_component), option_id
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == components_before[region], region
    assert lifecycle.package(a2)["ModelApprovalStatus"] == "Rejected"


def _regional_alarm(lifecycle: Lifecycle, region: str, group: str, suffix: str, state: str = "OK") -> str:
    """One of a family's rollback alarms in another region, as its regional stack holds it (same name
    as at home; the local stack provisions the home region's only)."""
    name = f"{lifecycle.names['alarm_prefix']}{group}-{suffix}"
    cloudwatch = _in_region(region, "cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors" if suffix == "invocation-5xx" else "ModelLatency",
        Dimensions=[{"Name": "EndpointName", "Value": REGIONAL_LORA_ENDPOINT}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    if state != "OK":
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    return name


def _regional_alarms_everywhere(lifecycle: Lifecycle, group: str = REGIONAL_LORA_GROUP) -> None:
    for region in OTHER_REGIONS:
        for suffix in ("invocation-5xx", "model-latency"):
            _regional_alarm(lifecycle, region, group, suffix)


def test_an_alarm_only_another_region_sees_during_the_bake_rolls_back_every_region_naming_it(
    lifecycle: Lifecycle,
) -> None:
    # Given version 1 live everywhere, the family's alarms in every region, all OK at home
    _regional_lora_bases(lifecycle)
    _regional_alarms_everywhere(lifecycle)
    a1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1))
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    v1_component = lifecycle.option("test-rlora").inference_component
    components_before = {region: _regional_components(region) for region in (REGION, *OTHER_REGIONS)}

    # When version 2 is approved and, once every option moved, eu-west-1's 5xx alarm goes to ALARM
    # (the home region's alarms stay OK)
    a2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2))
    execution = lifecycle.start(lifecycle.set_status(a2, "Approved"), {"bake_seconds": 1})
    lifecycle.wait_until_entered(execution, "BakeOldAdapter")
    failing = OTHER_REGIONS[0]
    alarm = _regional_alarm(lifecycle, failing, REGIONAL_LORA_GROUP, "invocation-5xx", "ALARM")
    result = lifecycle.wait(execution)

    # Then the bake read the home alarms (quiet), then each other region's, and rolled back
    assert result["status"] == "FAILED", result
    assert result["error"] == "AlarmDuringAdapterBake"
    assert f"rollback alarm {alarm} in ALARM in {failing}" in result["cause"]
    states = lifecycle.states_entered(execution)
    order = [
        "SwitchAdapterOptionsInOtherRegions",
        "CheckAlarmsAfterBake",
        "AlarmFiredDuringBake?",
        "CheckRegionalAlarmsAfterBake",
        "RegionalAlarmFiredDuringBake?",
        "RegionalAlarmDuringBake",
        "UndoAdapterInOtherRegions?",
        "RollBackAdapterInOtherRegions",
        "DeleteUntestedAdapter",
        "MarkPackageRejected",
    ]
    assert [s for s in states if s in order] == order
    assert "RevertToOldAdapter" not in states and "DeleteOldAdapter" not in states
    # ... every option, home and regional, serves version 1's component again; version 2's
    # component is gone in every region, version 1's stays
    for option_id in _rlora_options():
        option = lifecycle.option(option_id)
        assert (option.model_package_arn, option.inference_component) == (a1, v1_component), option_id
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == components_before[region], region
    # ... and the version is rejected naming the region and the alarm; someone is told
    package = lifecycle.package(a2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert failing in package["ApprovalDescription"] and alarm in package["ApprovalDescription"]
    assert any("AlarmDuringAdapterBake" in m and failing in m for m in lifecycle.notifications())


def test_a_quiet_bake_in_every_region_deletes_the_old_adapter_everywhere(lifecycle: Lifecycle) -> None:
    # Given version 1 live everywhere, the family's alarms OK in every region, and another family's
    # alarm in ALARM in eu-west-1 (not this family's: it does not count)
    _regional_lora_bases(lifecycle)
    _regional_alarms_everywhere(lifecycle)
    _regional_alarm(lifecycle, OTHER_REGIONS[0], GLOBAL_GROUP, "invocation-5xx", "ALARM")
    a1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1))
    assert lifecycle.approve(a1)["status"] == "SUCCEEDED"
    v1_component = lifecycle.option("test-rlora").inference_component

    # When version 2 is approved
    a2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2))
    result = lifecycle.approve(a2)

    # Then every region's alarms were read after the bake, none fired, and version 1's component
    # went everywhere
    assert result["status"] == "SUCCEEDED", result
    entered = lifecycle.entered_with_input(result["executionArn"])
    states = [name for name, _ in entered]
    after = states[states.index("CheckAlarmsAfterBake") :]
    assert after == [
        "CheckAlarmsAfterBake",
        "AlarmFiredDuringBake?",
        "CheckRegionalAlarmsAfterBake",
        "RegionalAlarmFiredDuringBake?",
        "DeleteOldAdapter",
        "OldAdapterInOtherRegions?",
        "DeleteOldAdapterInOtherRegions",
        "Deployed",
    ]
    judged = next(state_input for name, state_input in entered if name == "RegionalAlarmFiredDuringBake?")
    assert judged["regional_bake"] == {
        "firing": False,
        "alarms": [],
        "reason": f"no rollback alarm in ALARM in {', '.join(OTHER_REGIONS)}",
    }
    v2_component = lifecycle.option("test-rlora").inference_component
    for option_id in _rlora_options():
        assert lifecycle.option(option_id).model_package_arn == a2, option_id
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == sorted([REGIONAL_LORA_BASE, v2_component]), region
    assert v1_component != v2_component


def test_a_tenants_adapter_is_made_in_every_region_and_its_row_moves_once(lifecycle: Lifecycle) -> None:
    # Given the base everywhere
    _regional_lora_bases(lifecycle)

    # When acme's adapter is approved
    acme1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1), tenant="acme")
    result = lifecycle.approve(acme1)

    # Then its component was made in every region before the canary started, and acme's one row
    # (which every region's option resolves) names it; no option was touched
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert _adapter_regions(lifecycle, result["executionArn"]) == list(OTHER_REGIONS)
    assert states.index("MoreAdapterRegions?") < states.index("StartTenantCanary")
    acme = lifecycle.tenant("acme", REGIONAL_LORA_GROUP)
    assert acme.live.package_arn == acme1
    for region in (REGION, *OTHER_REGIONS):
        assert acme.live.component in _regional_components(region), region
    assert all(lifecycle.option(option_id) is None for option_id in _rlora_options())


def test_a_tenants_canary_rolled_back_leaves_no_component_in_any_region(lifecycle: Lifecycle) -> None:
    from switchboard_local.lifecycle_local import put_component_metrics

    # Given acme's version 1 live in every region, and its version 2 canarying (made everywhere)
    _regional_lora_bases(lifecycle)
    acme1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1), tenant="acme")
    assert lifecycle.approve(acme1)["status"] == "SUCCEEDED"
    before = {region: _regional_components(region) for region in (REGION, *OTHER_REGIONS)}
    acme2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2), tenant="acme")
    execution = lifecycle.start(lifecycle.set_status(acme2, "Approved"), {"bake_seconds": 2})
    lifecycle.wait_until_entered(execution, "BakeTenantCanary")
    canary = lifecycle.tenant("acme", REGIONAL_LORA_GROUP).canary
    for region in OTHER_REGIONS:
        assert canary.component in _regional_components(region)

    # When the canary's copy in the last region fails half its requests during the bake (its
    # metrics are that region's; the home copy is fine)
    failing = OTHER_REGIONS[-1]
    put_component_metrics(client("cloudwatch"), canary.component, invocations=300, errors=0)
    put_component_metrics(_in_region(failing, "cloudwatch"), canary.component, invocations=20, errors=10)
    result = lifecycle.wait(execution)

    # Then the canary was judged in every region and rolled back naming the region; acme is back on
    # version 1 and the canary's component is gone in every region
    assert result["status"] == "FAILED", result
    assert result["error"] == "CanaryRolledBack"
    assert f"region {failing}: error rate 50.0%" in result["cause"]
    states = lifecycle.states_entered(execution)
    assert states.index("CanaryRolledBack") < states.index("RollBackAdapterInOtherRegions")
    assert states.index("RollBackAdapterInOtherRegions") < states.index("DeleteUntestedAdapter")
    assert lifecycle.tenant("acme", REGIONAL_LORA_GROUP).live.package_arn == acme1
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == before[region], region


def test_a_family_alarm_in_alarm_in_another_region_rolls_a_tenants_canary_back_naming_it(
    lifecycle: Lifecycle,
) -> None:
    # Given acme's version 1 live in every region, the family's alarms in every region, and acme's
    # version 2 canarying
    _regional_lora_bases(lifecycle)
    _regional_alarms_everywhere(lifecycle)
    acme1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1), tenant="acme")
    assert lifecycle.approve(acme1)["status"] == "SUCCEEDED"
    before = {region: _regional_components(region) for region in (REGION, *OTHER_REGIONS)}
    acme2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2), tenant="acme")
    execution = lifecycle.start(lifecycle.set_status(acme2, "Approved"), {"bake_seconds": 1})
    lifecycle.wait_until_entered(execution, "BakeTenantCanary")

    # When the family's latency alarm goes to ALARM in the last region only
    failing = OTHER_REGIONS[-1]
    alarm = _regional_alarm(lifecycle, failing, REGIONAL_LORA_GROUP, "model-latency", "ALARM")
    result = lifecycle.wait(execution)

    # Then the canary is rolled back naming the alarm and its region, and is gone everywhere
    assert result["status"] == "FAILED", result
    assert result["error"] == "CanaryRolledBack"
    assert f"rollback alarm in ALARM: {alarm} in {failing}" in result["cause"]
    assert lifecycle.tenant("acme", REGIONAL_LORA_GROUP).live.package_arn == acme1
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == before[region], region


def test_a_regional_alarm_during_a_tenants_rollback_bake_restores_its_row_and_cleans_every_region(
    lifecycle: Lifecycle,
) -> None:
    # Given acme's versions 1 then 2 live in every region (2 serving), the family's alarms everywhere
    _regional_lora_bases(lifecycle)
    _regional_alarms_everywhere(lifecycle)
    acme1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1), tenant="acme")
    assert lifecycle.approve(acme1)["status"] == "SUCCEEDED"
    acme2 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(2), tenant="acme")
    assert lifecycle.approve(acme2)["status"] == "SUCCEEDED"
    acme_before = lifecycle.tenant("acme", REGIONAL_LORA_GROUP)
    assert acme_before.live.package_arn == acme2
    before = {region: _regional_components(region) for region in (REGION, *OTHER_REGIONS)}
    # ... and eu-west-1's 5xx alarm in ALARM (home quiet)
    _regional_alarm(lifecycle, OTHER_REGIONS[0], REGIONAL_LORA_GROUP, "invocation-5xx", "ALARM")

    # When acme's live version 2 is rejected (version 1 is redeployed at once, then bakes)
    result = lifecycle.run(lifecycle.set_status(acme2, "Rejected", "rollback"))

    # Then the regional alarm undoes the redeploy: acme's row is back (marked rolled back) and the
    # redeployed component is gone in every region
    assert result["status"] == "FAILED", result
    assert result["error"] == "AlarmDuringAdapterBake"
    states = lifecycle.states_entered(result["executionArn"])
    order = [
        "SwitchTenantAdapter",
        "CheckAlarmsAfterBake",
        "CheckRegionalAlarmsAfterBake",
        "RegionalAlarmFiredDuringBake?",
        "RevertTenantToOldAdapter",
        "RollBackAdapterInOtherRegions",
        "DeleteUntestedAdapter",
    ]
    assert [s for s in states if s in order] == order
    acme = lifecycle.tenant("acme", REGIONAL_LORA_GROUP)
    assert (acme.live, acme.state.value) == (acme_before.live, "rolled_back")
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == before[region], region


def test_a_tenant_returned_to_the_base_loses_its_rejected_component_in_every_region(
    lifecycle: Lifecycle,
) -> None:
    # Given acme's only adapter live in every region
    _regional_lora_bases(lifecycle)
    acme1 = lifecycle.register(REGIONAL_LORA_GROUP, data=_rlora(1), tenant="acme")
    assert lifecycle.approve(acme1)["status"] == "SUCCEEDED"
    component = lifecycle.tenant("acme", REGIONAL_LORA_GROUP).live.component

    # When it is rejected (no other approved adapter: acme goes back to the base model)
    result = lifecycle.run(lifecycle.set_status(acme1, "Rejected", "acme asked for the base model"))

    # Then its component is gone in every region, the base stays everywhere
    assert result["status"] == "SUCCEEDED", result
    states = lifecycle.states_entered(result["executionArn"])
    assert states[-3:] == [
        "RejectedAdapterInOtherRegions?",
        "DeleteRejectedAdapterInOtherRegions",
        "TenantServedByBaseModel",
    ]
    assert lifecycle.tenant("acme", REGIONAL_LORA_GROUP).live is None
    for region in (REGION, *OTHER_REGIONS):
        assert _regional_components(region) == [REGIONAL_LORA_BASE], region
    assert component


# --------------------------------------------------------------------------------------------------
# coverage of the machine (keep last: it reads what the scenarios above recorded)


def test_every_state_is_reached_by_some_scenario() -> None:
    scenarios = {name for name in globals() if name.startswith("test_")}
    scenarios.discard("test_every_state_is_reached_by_some_scenario")
    ran = {name.split("[")[0] for name in VISITED}
    if ran != scenarios:
        pytest.skip("coverage of the ASL is only meaningful when every scenario in this module ran")
    reached = set().union(*VISITED.values())
    assert ALL_STATES - reached == set(), f"states no scenario reaches: {sorted(ALL_STATES - reached)}"
