"""`switchboard doctor` checks every region of every multi-region family (issue 16), on moto.

Given a family listing us-east-1 (the stack's region) and eu-west-1, real SageMaker endpoints in
moto's regions and a real options table, the doctor's `model regions` rows pass when each region's
endpoint is in service and its option serves the home option's version, and fail naming what is
missing (endpoint, option, region, version) in that region only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.contract import tables
from switchboard.options.model import LlmOption
from switchboard.options.store import OptionsStore
from switchboard_local.doctor import checks
from switchboard_local.doctor.report import Finding
from tests.fakes.deployment_function import DeploymentFunctionConfiguration, remote_deployment

HOME, OTHER = "us-east-1", "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/sm-exec"
V1 = "arn:aws:sagemaker:us-east-1:123456789012:model-package/support/1"
V2 = "arn:aws:sagemaker:us-east-1:123456789012:model-package/support/2"
FULL = {
    "group": "support",
    "option_id": "support-llm",
    "endpoint_name": "support-ep",
    "regions": [HOME, OTHER],
}
LORA = {
    "group": "lora",
    "option_id": "lora",
    "endpoint_name": "lora-ep",
    "base_component": "lora-base-ic",
    "regions": [OTHER, HOME],
}


class WithComponents:
    """moto's SageMaker client plus inference components (moto has none: FACTS, moto gaps)."""

    def __init__(self, client: Any, components: dict[str, str]) -> None:
        self._client = client
        self.components = components

    def describe_inference_component(self, InferenceComponentName: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if InferenceComponentName not in self.components:
            error = {"Code": "ValidationException", "Message": f"Could not find {InferenceComponentName}"}
            raise ClientError({"Error": error}, "DescribeInferenceComponent")
        return {"InferenceComponentStatus": self.components[InferenceComponentName]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb", region_name=HOME).create_table(
            TableName="options",
            KeySchema=[{"AttributeName": tables.OPTIONS_PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": tables.OPTIONS_PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


def _endpoint(region: str, name: str) -> None:
    sagemaker = boto3.client("sagemaker", region_name=region)
    sagemaker.create_model(
        ModelName=f"{name}-m",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:latest"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.xlarge",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")


def _option(option_id: str, endpoint: str, version: str, region: str | None = None) -> None:
    item: dict[str, Any] = {
        "id": option_id,
        "provider": "sagemaker",
        "endpoint_name": endpoint,
        "model_package_arn": version,
    }
    if region:
        item["region"] = region
    OptionsStore("options", client=boto3.client("dynamodb", region_name=HOME), ttl_s=0).put(
        LlmOption.from_dict(item), expected_version=None, updated_by="test"
    )


def _doctor(
    families: list[dict[str, Any]], components: dict[str, dict[str, str]] | None = None
) -> list[Finding]:
    known = components or {}

    def sagemaker(region: str) -> Any:
        return WithComponents(boto3.client("sagemaker", region_name=region), known.get(region, {}))

    def client(service: str) -> Any:
        if service == "lambda":
            return DeploymentFunctionConfiguration(families)
        if service == "sagemaker":
            return sagemaker(HOME)
        return boto3.client(service, region_name=HOME)

    def region_client(service: str, region: str) -> Any:
        assert service == "sagemaker" and region != HOME  # the home region's client is the target's
        return sagemaker(region)

    deployment = remote_deployment(HOME, client, region_client)
    return list(checks.check_model_regions(deployment))


def _rows(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.check: finding for finding in findings}


def test_single_region_families_get_one_passing_row(aws: None) -> None:
    (row,) = _doctor([{k: v for k, v in FULL.items() if k != "regions"}])
    assert row.passed and row.detail == "no model family lists regions"


def test_before_any_version_every_region_passes_as_not_yet_deployed(aws: None) -> None:
    rows = _rows(_doctor([FULL]))
    assert set(rows) == {"support in us-east-1", "support in eu-west-1"}
    assert all(row.passed and "no version deployed yet" in row.detail for row in rows.values())


def test_every_region_in_service_on_the_same_version_passes(aws: None) -> None:
    _endpoint(HOME, "support-ep")
    _endpoint(OTHER, "support-ep")
    _option("support-llm", "support-ep", V1)
    _option("support-llm-eu-west-1", "support-ep", V1, region=OTHER)
    rows = _rows(_doctor([FULL]))
    assert rows["support in us-east-1"].passed, rows
    assert rows["support in eu-west-1"].passed, rows
    assert rows["support in eu-west-1"].detail == "support-llm-eu-west-1 → support-ep, in service"


def test_a_region_without_its_endpoint_fails_alone(aws: None) -> None:
    _endpoint(HOME, "support-ep")
    _option("support-llm", "support-ep", V1)
    _option("support-llm-eu-west-1", "support-ep", V1, region=OTHER)
    rows = _rows(_doctor([FULL]))
    assert rows["support in us-east-1"].passed
    broken = rows["support in eu-west-1"]
    assert not broken.passed and "endpoint support-ep not found" in broken.detail
    assert "approve the live version of support again" in broken.remedy


def test_a_missing_regional_option_is_named(aws: None) -> None:
    _endpoint(HOME, "support-ep")
    _endpoint(OTHER, "support-ep")
    _option("support-llm", "support-ep", V1)
    broken = _rows(_doctor([FULL]))["support in eu-west-1"]
    assert not broken.passed and broken.detail == "option support-llm-eu-west-1 is not in the options table"


def test_regions_that_did_not_move_together_or_name_the_wrong_region_fail(aws: None) -> None:
    _endpoint(HOME, "support-ep")
    _endpoint(OTHER, "support-ep")
    _option("support-llm", "support-ep", V2)
    _option("support-llm-eu-west-1", "support-ep", V1, region="eu-central-1")
    broken = _rows(_doctor([FULL]))["support in eu-west-1"]
    assert not broken.passed
    assert "names region eu-central-1" in broken.detail
    assert f"serves {V1}, support-llm serves {V2}" in broken.detail


def test_an_adapter_family_needs_its_base_component_in_each_region(aws: None) -> None:
    _endpoint(HOME, "lora-ep")
    _endpoint(OTHER, "lora-ep")
    _option("lora", "lora-ep", V1)
    _option("lora-eu-west-1", "lora-ep", V1, region=OTHER)
    rows = _rows(
        _doctor([LORA], components={HOME: {"lora-base-ic": "InService"}, OTHER: {"lora-base-ic": "Creating"}})
    )
    assert list(rows) == ["lora in eu-west-1", "lora in us-east-1"]  # rollout order: the canary first
    assert rows["lora in us-east-1"].passed
    assert not rows["lora in eu-west-1"].passed
    assert rows["lora in eu-west-1"].detail == "base component lora-base-ic is Creating"


def test_the_check_is_registered_with_the_doctor() -> None:
    assert checks.check_model_regions in [check.run for check in checks.CHECKS]
