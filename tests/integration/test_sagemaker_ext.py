"""The project's moto SageMaker extension: validated requests, blue/green with alarm rollback,
inference components, UpdateModelPackage that keeps what it is not told to change. Plus a botocore
Stubber contract test of every SageMaker request the deployment workflow sends."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
CANARY = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 60,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        },
        "TerminationWaitInSeconds": 0,
        "MaximumExecutionTimeoutInSeconds": 600,
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "model-5xx"}]},
}


@pytest.fixture
def sm(emulated_aws: None) -> Iterator[Any]:
    from switchboard_local.moto_patches import SAGEMAKER

    with SAGEMAKER.applied():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_model(
            ModelName="m",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": "llm:1", "ModelDataUrl": "s3://b/m"},
        )
        for name, variant in (("c1", "AllTraffic"), ("c2", "AllTraffic"), ("other-variant", "Blue")):
            client.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[
                    {
                        "VariantName": variant,
                        "ModelName": "m",
                        "InstanceType": "ml.g4dn.xlarge",
                        "InitialInstanceCount": 1,
                    }
                ],
            )
        client.create_endpoint(EndpointName="e", EndpointConfigName="c1")
        boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
            AlarmName="model-5xx",
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        yield client


ADAPTER_SPEC = {"BaseInferenceComponentName": "base", "Container": {"ArtifactUrl": "s3://b/a.tar.gz"}}


def create_base_component(sm: Any) -> None:
    """The base model's inference component on endpoint `e`, which adapters attach to."""
    sm.create_inference_component(
        InferenceComponentName="base",
        EndpointName="e",
        VariantName="AllTraffic",
        Specification={"ModelName": "m", "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024}},
        RuntimeConfig={"CopyCount": 1},
    )


def inference_specification(model_data_url: str) -> dict[str, Any]:
    return {
        "Containers": [{"Image": "llm:1", "ModelDataUrl": model_data_url}],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    }


def unvalidated() -> Any:
    """A client that skips client-side validation, like the Step Functions interpreter's clients."""
    return boto3.client("sagemaker", region_name=REGION, config=Config(parameter_validation=False))


def test_install_and_uninstall_are_idempotent(emulated_aws: None) -> None:
    from moto.sagemaker.responses import SageMakerResponse

    from switchboard_local.moto_patches import SAGEMAKER

    original = SageMakerResponse.describe_endpoint
    SAGEMAKER.install()
    SAGEMAKER.install()
    assert hasattr(SageMakerResponse, "update_endpoint")
    SAGEMAKER.uninstall()
    SAGEMAKER.uninstall()
    assert not hasattr(SageMakerResponse, "update_endpoint")
    assert SageMakerResponse.describe_endpoint is original


# --------------------------------------------------------------------------------------------------
# validation against the service model


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY"}}},
            "WaitIntervalInSeconds",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "SLOW", "WaitIntervalInSeconds": 1}
                }
            },
            "enum value set",
        ),
    ],
)
def test_update_endpoint_requests_are_checked_against_the_service_model(
    sm: Any, deployment: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as caught:
        unvalidated().update_endpoint(EndpointName="e", EndpointConfigName="c2", DeploymentConfig=deployment)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


def test_adapter_component_with_compute_is_refused(sm: Any) -> None:
    create_base_component(sm)
    with pytest.raises(ClientError, match="no ComputeResourceRequirements"):
        sm.create_inference_component(
            InferenceComponentName="adapter",
            EndpointName="e",
            Specification={**ADAPTER_SPEC, "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024}},
        )


# --------------------------------------------------------------------------------------------------
# blue/green with alarm rollback


def test_update_goes_in_service_on_the_new_config(sm: Any) -> None:
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2", DeploymentConfig=CANARY)

    described = sm.describe_endpoint(EndpointName="e")

    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "c2")


def test_alarm_in_alarm_rolls_the_endpoint_back_to_the_old_config(sm: Any) -> None:
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName="model-5xx", StateValue="ALARM", StateReason="test"
    )

    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2", DeploymentConfig=CANARY)
    described = sm.describe_endpoint(EndpointName="e")

    # an alarm rollback is InService on the OLD config (not RollingBack)
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "c1")


def test_alarms_not_named_in_the_update_are_ignored(sm: Any) -> None:
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName="model-5xx", StateValue="ALARM", StateReason="test"
    )

    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")

    assert sm.describe_endpoint(EndpointName="e")["EndpointConfigName"] == "c2"


def test_updates_settle_after_the_configured_describes_or_never_when_held(sm: Any) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    CONTROL.settle_after_describes = 2
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2", DeploymentConfig=CANARY)
    assert sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Updating"
    assert sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "InService"

    CONTROL.held.add("e")
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c1", DeploymentConfig=CANARY)
    for _ in range(3):
        assert sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Updating"
    # AWS refuses a second update while one is in progress
    with pytest.raises(ClientError, match="in-progress"):
        sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")


def test_a_failing_update_settles_update_rollback_failed_on_the_old_config(sm: Any) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    CONTROL.failing_updates.add("e")
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c2", DeploymentConfig=CANARY)

    described = sm.describe_endpoint(EndpointName="e")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("UpdateRollbackFailed", "c1")


def test_blue_green_needs_the_same_variant_names(sm: Any) -> None:
    with pytest.raises(ClientError, match="variant names"):
        sm.update_endpoint(EndpointName="e", EndpointConfigName="other-variant", DeploymentConfig=CANARY)


# --------------------------------------------------------------------------------------------------
# inference components and the registry


def test_inference_components_create_describe_list_delete(sm: Any) -> None:
    create_base_component(sm)
    sm.create_inference_component(
        InferenceComponentName="adapter-1",
        EndpointName="e",
        Specification=ADAPTER_SPEC,
    )
    with pytest.raises(ClientError, match="already existing"):
        sm.create_inference_component(
            InferenceComponentName="adapter-1",
            EndpointName="e",
            Specification=ADAPTER_SPEC,
        )

    assert (
        sm.describe_inference_component(InferenceComponentName="adapter-1")["InferenceComponentStatus"]
        == "InService"
    )
    listed = sm.list_inference_components(EndpointNameEquals="e", NameContains="adapter")[
        "InferenceComponents"
    ]
    assert [c["InferenceComponentName"] for c in listed] == ["adapter-1"]

    sm.delete_inference_component(InferenceComponentName="base")  # takes its adapters with it
    assert sm.list_inference_components()["InferenceComponents"] == []
    with pytest.raises(ClientError, match="Could not find inference component"):
        sm.describe_inference_component(InferenceComponentName="adapter-1")


def test_adapters_from_broken_artifacts_fail_and_a_held_endpoint_holds_its_new_components(sm: Any) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    create_base_component(sm)
    CONTROL.broken_artifacts.add("s3://b/broken.tar.gz")
    broken = {**ADAPTER_SPEC, "Container": {"ArtifactUrl": "s3://b/broken.tar.gz"}}
    sm.create_inference_component(InferenceComponentName="broken", EndpointName="e", Specification=broken)
    assert sm.describe_inference_component(InferenceComponentName="broken")["InferenceComponentStatus"] == (
        "Failed"
    )

    CONTROL.held.add("e")
    sm.create_inference_component(InferenceComponentName="slow", EndpointName="e", Specification=ADAPTER_SPEC)
    for _ in range(3):
        status = sm.describe_inference_component(InferenceComponentName="slow")["InferenceComponentStatus"]
        assert status == "Creating"
    CONTROL.held.clear()
    status = sm.describe_inference_component(InferenceComponentName="slow")["InferenceComponentStatus"]
    assert status == "InService"


def test_update_model_package_changes_only_what_it_names(sm: Any) -> None:
    sm.create_model_package_group(ModelPackageGroupName="g")
    arn = sm.create_model_package(
        ModelPackageGroupName="g",
        InferenceSpecification=inference_specification("s3://b/m"),
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"switchboard:adapter-of": "base"},
    )["ModelPackageArn"]

    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sm.update_model_package(
        ModelPackageArn=arn, ModelLifeCycle={"Stage": "Archived", "StageStatus": "Archived"}
    )

    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {"switchboard:adapter-of": "base"}
    assert described["ModelLifeCycle"] == {"Stage": "Archived", "StageStatus": "Archived"}


# --------------------------------------------------------------------------------------------------
# contract: the workflow's SageMaker requests, as the interpreter rendered them, against botocore


def test_every_sagemaker_request_of_a_deployment_matches_the_service_model(emulated_aws: None) -> None:
    """Run a full-model deployment (create, then blue/green update) and replay every SageMaker
    request the interpreter sent through a Stubber, which validates it against the service model
    (the interpreter's own clients skip validation)."""
    from switchboard_local.emulation import bind_lambda_handlers, provision
    from switchboard_local.lifecycle_local import (
        LOCAL_SETTINGS,
        lifecycle_handlers,
        provision_model_lifecycle,
        state_change_event,
    )
    from switchboard_local.moto_patches import SAGEMAKER

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    SAGEMAKER.install()
    resources = provision(client, region=REGION, seed=False)
    names = provision_model_lifecycle(client, resources)
    sm, sfn = client("sagemaker"), client("stepfunctions")
    sent: list[tuple[str, dict[str, Any]]] = []
    try:
        with bind_lambda_handlers(lifecycle_handlers(resources)):
            for _ in range(2):
                arn = sm.create_model_package(
                    ModelPackageGroupName=names["sample_group"],
                    InferenceSpecification=inference_specification("s3://b/m.tar.gz"),
                )["ModelPackageArn"]
                sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
                event = state_change_event(sm.describe_model_package(ModelPackageName=arn))
                execution = sfn.start_execution(
                    stateMachineArn=names["deployment_state_machine_arn"],
                    name=uuid.uuid4().hex,
                    input=json.dumps({**event, "settings": LOCAL_SETTINGS}),
                )["executionArn"]
                while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
                    time.sleep(0.02)  # a busy loop starves the interpreter's thread
                for item in sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]:
                    details = item.get("taskScheduledEventDetails")
                    if details and details["resourceType"] == "aws-sdk:sagemaker":
                        sent.append((details["resource"], json.loads(details["parameters"])))
    finally:
        SAGEMAKER.uninstall()

    actions = [action for action, _ in sent]
    assert "updateEndpoint" in actions and "createEndpoint" in actions and "createModel" in actions
    stubbed = boto3.client("sagemaker", region_name=REGION)
    for action, params in sent:
        method = "".join("_" + c.lower() if c.isupper() else c for c in action)
        with Stubber(stubbed) as stubber:
            # the client validates the request against the service model before the stub answers
            stubber.add_client_error(method, service_error_code="Stubbed", expected_params=params)
            with pytest.raises(ClientError, match="Stubbed"):
                getattr(stubbed, method)(**params)


def test_invocations_named_as_failing_answer_a_model_error(sm: Any) -> None:
    from switchboard_local.sagemaker_ext import CONTROL

    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    body = json.dumps({"messages": [{"role": "user", "content": "ping"}]})
    assert runtime.invoke_endpoint(EndpointName="e", Body=body)["Body"].read()

    CONTROL.failing_invocations.add("e")
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="e", Body=body)
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500

    # A failing inference component fails only the requests that name it.
    CONTROL.failing_invocations = {"adapter-1"}
    assert runtime.invoke_endpoint(EndpointName="e", Body=body)["Body"].read()
    with pytest.raises(ClientError, match="ModelError"):
        runtime.invoke_endpoint(EndpointName="e", InferenceComponentName="adapter-1", Body=body)


def test_an_endpoint_with_components_answers_per_component_and_refuses_one_it_does_not_have(sm: Any) -> None:
    create_base_component(sm)
    sm.create_inference_component(
        InferenceComponentName="acme-1", EndpointName="e", Specification=ADAPTER_SPEC
    )
    runtime = boto3.client("sagemaker-runtime", region_name=REGION)
    body = json.dumps({"messages": [{"role": "user", "content": "ping"}]})

    for component in ("base", "acme-1"):
        answer = json.loads(
            runtime.invoke_endpoint(EndpointName="e", InferenceComponentName=component, Body=body)[
                "Body"
            ].read()
        )
        assert answer["choices"][0]["message"] == {"role": "assistant", "content": f"[{component}] ping"}
    with pytest.raises(ClientError, match="Could not find inference component") as caught:
        runtime.invoke_endpoint(EndpointName="e", InferenceComponentName="gone", Body=body)
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_the_real_provider_falls_back_from_a_missing_adapter_to_the_tenants_base(sm: Any) -> None:
    """The invoke step with the SageMaker provider: acme's live adapter is gone (its component was
    deleted), so the previous one answers; with neither, the base component does."""
    from switchboard.adapter_routing import AdapterRouter
    from switchboard.events import RecordingEventSink
    from switchboard.invoking import CandidateInvoker
    from switchboard.lifecycle.adapter_store import AdapterRef, AdapterState, TenantAdapter
    from switchboard.options.model import LlmOption
    from switchboard.providers.sagemaker import SageMakerEndpointProvider
    from tests.fakes import InMemoryOptions
    from tests.fakes.adapters import InMemoryTenantAdapters
    from tests.unit.test_candidate_invoker import FakeCircuits, FakePayloads

    create_base_component(sm)
    sm.create_inference_component(
        InferenceComponentName="acme-1", EndpointName="e", Specification=ADAPTER_SPEC
    )
    option = LlmOption.from_dict(
        {
            "id": "tuned",
            "provider": "sagemaker",
            "endpoint_name": "e",
            "inference_component": "base",
            "adapter_family": "lora",
            "region": REGION,
        }
    )

    def ref(version: int) -> AdapterRef:
        arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/lora/{version}"
        return AdapterRef(arn, version, f"acme-{version}")

    rows = InMemoryTenantAdapters()
    rows.records[("lora", "acme")] = TenantAdapter(
        "lora", "acme", AdapterState.LIVE, live=ref(2), previous=ref(1)
    )
    events = RecordingEventSink()
    step = CandidateInvoker(
        options=InMemoryOptions([option]),
        payloads=FakePayloads(),
        circuits=FakeCircuits(),
        providers=lambda kind: SageMakerEndpointProvider(),
        events=events,
        adapters=AdapterRouter(rows, on_event=events),
    )
    request = {"messages": [{"role": "user", "content": "ping"}]}
    call = {
        "option_id": "tuned",
        "tenant": "acme",
        "deadline_ms": time.time() * 1000 + 20_000,
        "request": request,
    }

    out = step.invoke(call)
    assert (out["ok"], out["adapter"], out["result"]["text"]) == (True, "lora:v1", "[acme-1] ping")
    (fallback,) = [f for name, f in events.events if name == "AdapterFallback"]
    assert (fallback["component"], fallback["error_class"]) == ("acme-2", "unavailable")

    sm.delete_inference_component(InferenceComponentName="acme-1")
    step = CandidateInvoker(
        options=InMemoryOptions([option]),
        payloads=FakePayloads(),
        circuits=FakeCircuits(),
        providers=lambda kind: SageMakerEndpointProvider(),
        events=events,
        adapters=AdapterRouter(rows, on_event=events),
    )
    out = step.invoke(call)
    assert (out["ok"], out["adapter"], out["result"]["text"]) == (True, "base", "[base] ping")
