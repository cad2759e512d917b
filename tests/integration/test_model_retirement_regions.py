"""Retirement in every region and per tenant (issue 16), on moto with the real workflow.

Given a family that rolls out to us-east-1 then eu-west-1, versions 1-3 deployed through the
model-deployment workflow (each region gets its own model and endpoint config), retirement with a
retention of 1 removes version 1 in both regions, never what either endpoint serves; while
eu-west-1 cannot be reached the version stays unarchived, and the next run finishes it. Tenant
adapter versions are retained per tenant, read from the adapters table and the registry.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.fakes.images import push_ecr_image

HOME, IRELAND = "us-east-1", "eu-west-1"
GROUP = "switchboard-retire-global"
LORA_GROUP = "switchboard-retire-lora"
LORA_BASE = "switchboard-retire-base-ic"
FAMILIES = [
    {
        "group": GROUP,
        "option_id": "retire-global",
        "endpoint_name": GROUP,
        "instance_type": "ml.g4dn.xlarge",
        "retention": 1,
        "regions": [HOME, IRELAND],
    },
    {
        "group": LORA_GROUP,
        "option_id": "retire-lora",
        "endpoint_name": "switchboard-retire-base",
        "base_component": LORA_BASE,
        "retention": 1,
    },
]
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


def sm(region: str = HOME) -> Any:
    return boto3.client("sagemaker", region_name=region)


class Stack:
    def __init__(self, resources: Any, names: dict[str, Any]) -> None:
        self.resources = resources
        self.names = names

    def register(self, group: str, *, tenant: str | None = None) -> str:
        from switchboard.lifecycle.model import ADAPTER_OF_KEY, TENANT_KEY

        metadata = {ADAPTER_OF_KEY: LORA_BASE, TENANT_KEY: tenant} if tenant else None
        arn: str = sm().create_model_package(
            **({"CustomerMetadataProperties": metadata} if metadata else {}),
            ModelPackageGroupName=group,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": f"123456789012.dkr.ecr.{HOME}.amazonaws.com/{IMAGE_REPOSITORY}:1",
                        "ModelDataUrl": f"s3://switchboard-models/{group}/{uuid.uuid4().hex[:6]}.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="PendingManualApproval",
        )["ModelPackageArn"]
        return arn

    def approve(self, arn: str) -> dict[str, Any]:
        """Approve and run the workflow with the event EventBridge would deliver."""
        from switchboard_local.lifecycle_local import state_change_event

        sm().update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        event = state_change_event(sm().describe_model_package(ModelPackageName=arn), region=HOME)
        sfn = boto3.client("stepfunctions", region_name=HOME)
        execution = sfn.start_execution(
            stateMachineArn=self.names["deployment_state_machine_arn"],
            name=uuid.uuid4().hex,
            input=json.dumps({**event, "settings": FAST}),
        )["executionArn"]
        deadline = time.monotonic() + 30
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                return described
            time.sleep(0.02)

    def retire(self, event: dict[str, Any]) -> dict[str, Any]:
        """The retirement function, through the Lambda API (bound in-process to the handler)."""
        response = boto3.client("lambda", region_name=HOME).invoke(
            FunctionName=self.names["retirement_function"], Payload=json.dumps(event)
        )
        report: dict[str, Any] = json.loads(response["Payload"].read())
        return report

    def option(self, option_id: str) -> Any:
        from switchboard.options.store import OptionsStore

        return OptionsStore(
            self.resources.options_table, client=boto3.client("dynamodb", region_name=HOME), ttl_s=0
        ).get(option_id)


@pytest.fixture
def stack(emulated_aws: None) -> Iterator[Stack]:
    from switchboard_local.emulation import bind_lambda_handlers, provision
    from switchboard_local.lifecycle_local import lifecycle_handlers, provision_model_lifecycle
    from switchboard_local.moto_patches import SAGEMAKER

    def client(service: str) -> Any:
        return boto3.client(service, region_name=HOME)

    with SAGEMAKER.applied():
        resources = provision(client, region=HOME, seed=False)
        names = provision_model_lifecycle(client, resources, families=FAMILIES)
        _push_image(IRELAND)  # the rollout's plan checks the image is in every region
        with bind_lambda_handlers(lifecycle_handlers(resources)):
            yield Stack(resources, names)


IMAGE_REPOSITORY = "switchboard-llm"
"""The account's own image repository (the deployment role may look up ``switchboard-*`` only)."""


def _push_image(region: str) -> None:
    """The versions' image in ``region``'s ECR, as replication (cdk.json ``replicate_images``) puts it."""
    push_ecr_image(boto3.client("ecr", region_name=region), IMAGE_REPOSITORY, "1")


def _names(region: str) -> tuple[list[str], list[str]]:
    configs = [c["EndpointConfigName"] for c in sm(region).list_endpoint_configs()["EndpointConfigs"]]
    models = [m["ModelName"] for m in sm(region).list_models()["Models"]]
    return sorted(c for c in configs if c.startswith(GROUP)), sorted(m for m in models if m.startswith(GROUP))


def _of_version(names: list[str], version: int) -> list[str]:
    return [n for n in names if f"-v{version}-" in n]


def _unreachable(region: str) -> Any:
    """``registries`` whose ``region`` fails as a network outage does (botocore's own error)."""
    from botocore.exceptions import EndpointConnectionError

    from switchboard.lifecycle.registry import SageMakerRegistry

    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://api.sagemaker.{region}.amazonaws.com/")

    def registry_in(name: str) -> SageMakerRegistry:
        client = sm(name)
        if name == region:
            client.meta.events.register("before-call.sagemaker.*", refuse)
        return SageMakerRegistry(client)

    return registry_in


def test_a_version_is_retired_in_both_regions_and_an_unreachable_region_leaves_it_for_the_next_run(
    stack: Stack,
) -> None:
    from handlers import model_retirement
    from switchboard_local.lifecycle_local import build_service

    # Given versions 1, 2 and 3 rolled out to us-east-1 then eu-west-1 (3 serves in both)
    arns = [stack.register(GROUP) for _ in range(3)]
    for arn in arns:
        assert stack.approve(arn)["status"] == "SUCCEEDED"
    for region in (HOME, IRELAND):
        configs, models = _names(region)
        assert [len(_of_version(configs, n)) for n in (1, 2, 3)] == [1, 1, 1], region
        assert [len(_of_version(models, n)) for n in (1, 2, 3)] == [1, 1, 1], region
    served = {r: sm(r).describe_endpoint(EndpointName=GROUP)["EndpointConfigName"] for r in (HOME, IRELAND)}
    assert "-v3-" in served[HOME] and served[IRELAND] == served[HOME]
    assert stack.option(f"retire-global-{IRELAND}-v1").status.value == "active"

    # When retirement runs while eu-west-1 cannot be reached
    cut_off = build_service(stack.names, lambda service: boto3.client(service, region_name=HOME))
    cut_off.registries = _unreachable(IRELAND)
    first = model_retirement.make_handler(cut_off)({"groups": [GROUP]})

    # Then version 1 went at home, eu-west-1 is reported, and version 1 stays unarchived
    family = first["families"][GROUP]
    assert family["regions"][IRELAND]["reachable"] is False
    assert "EndpointConnectionError" in family["regions"][IRELAND]["error"]
    (one,) = family["retired"]
    assert (one["version"], one["archived"]) == (1, False)
    assert _of_version(_names(HOME)[0], 1) == [] and _of_version(_names(IRELAND)[0], 1) != []
    assert "ModelLifeCycle" not in sm().describe_model_package(ModelPackageName=arns[0])
    assert stack.option("retire-global-v1").status.value == "retired"
    assert stack.option(f"retire-global-{IRELAND}-v1").status.value == "active"

    # When the scheduled retirement runs again with every region reachable
    second = stack.retire({"groups": [GROUP]})

    # Then version 1 is gone in eu-west-1 too, archived, its regional pinned option retired
    (again,) = second["families"][GROUP]["retired"]
    assert (again["version"], again["archived"]) == (1, True)
    (ireland,) = again["regions"]
    assert ireland["region"] == IRELAND and ireland["error"] == ""
    assert len(ireland["endpoint_configs"]) == 1 and len(ireland["models"]) == 1
    for region in (HOME, IRELAND):
        configs, models = _names(region)
        assert _of_version(configs, 1) == _of_version(models, 1) == [], region
        assert len(_of_version(configs, 2)) == len(_of_version(configs, 3)) == 1, region  # retained, serving
        assert sm(region).describe_endpoint(EndpointName=GROUP)["EndpointConfigName"] == served[region]
    assert sm().describe_model_package(ModelPackageName=arns[0])["ModelLifeCycle"]["Stage"] == "Archived"
    pinned = stack.option(f"retire-global-{IRELAND}-v1")
    assert (pinned.status.value, pinned.replaced_by) == ("retired", f"retire-global-{IRELAND}")
    assert stack.option(f"retire-global-{IRELAND}").model_package_arn == arns[2]
    assert stack.retire({"groups": [GROUP]})["families"][GROUP]["retired"] == []


def test_tenant_adapter_versions_are_retained_per_tenant(stack: Stack) -> None:
    from switchboard.lifecycle.adapter_store import (
        AdapterChange,
        AdapterRef,
        AdapterState,
        DynamoTenantAdapterStore,
        HistoryEvent,
        TenantAdapter,
        history_timestamp,
    )

    # Given acme's adapter versions 1, 2, 3 (3 live) and globex's 4, 5 (5 live), all approved, and a
    # family-wide version 6 that serves nobody
    owners = ["acme", "acme", "acme", "globex", "globex", None]
    arns = [stack.register(LORA_GROUP, tenant=owner) for owner in owners]
    for arn in arns:
        sm().update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    store = DynamoTenantAdapterStore(
        stack.names["adapters_table"], client=boto3.client("dynamodb", region_name=HOME)
    )
    for tenant, live in (("acme", 3), ("globex", 5)):
        record = TenantAdapter(
            LORA_GROUP,
            tenant,
            AdapterState.LIVE,
            live=AdapterRef(arns[live - 1], live, f"{LORA_GROUP}-v{live}-abcd1234"),
            endpoint_name="switchboard-retire-base",
        )
        change = AdapterChange(LORA_GROUP, tenant, HistoryEvent.DEPLOYED, history_timestamp(), "test", record)
        store.write(record, expected_live_arn=None, change=change)

    # When retirement runs with a retention of 1
    report = stack.retire({"groups": [LORA_GROUP]})

    # Then each tenant keeps its live version and one older one; only acme's version 1 goes
    family = report["families"][LORA_GROUP]
    assert [(r["version"], r["tenant"], r["archived"]) for r in family["retired"]] == [(1, "acme", True)]
    assert family["tenants"] == {
        "acme": {"live": arns[2], "kept": [2], "retired": [1]},
        "globex": {"live": arns[4], "kept": [4], "retired": []},
    }
    stages = [
        sm().describe_model_package(ModelPackageName=a).get("ModelLifeCycle", {}).get("Stage") for a in arns
    ]
    assert stages == ["Archived", None, None, None, None, None]
