"""`switchboard doctor` checks each multi-region family's live image in every region (issue 16), on moto.

Given a full-model family listing us-east-1 (the stack's region) and eu-west-1, its live version in
the registry and the options table, and images pushed to moto's ECR per region, the doctor's
`model images` rows pass in each region holding the image as the deployment maps it, fail naming the
region and image where it is missing, and map AWS Deep Learning Containers images without looking
them up.
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
from tests.fakes.images import push_ecr_image

HOME, OTHER = "us-east-1", "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sm-exec"
OWN_IMAGE = f"{ACCOUNT}.dkr.ecr.{HOME}.amazonaws.com/switchboard-llm:v1"
DLC_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.36.0-lmi18.0.0-cu128"
FULL = {
    "group": "support",
    "option_id": "support-llm",
    "endpoint_name": "support-ep",
    "regions": [HOME, OTHER],
}


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


def _live_version(image: str) -> None:
    """A registered version with ``image``, and the family's home option serving it."""
    sagemaker = boto3.client("sagemaker", region_name=HOME)
    sagemaker.create_model_package_group(ModelPackageGroupName="support")
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="support",
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": "s3://models/support/v1.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    option = LlmOption.from_dict(
        {
            "id": "support-llm",
            "provider": "sagemaker",
            "endpoint_name": "support-ep",
            "model_package_arn": arn,
        }
    )
    OptionsStore("options", client=boto3.client("dynamodb", region_name=HOME), ttl_s=0).put(
        option, expected_version=None, updated_by="test"
    )


def _push(region: str, repository: str = "switchboard-llm", tag: str = "v1") -> None:
    push_ecr_image(boto3.client("ecr", region_name=region), repository, tag)


def _doctor(families: list[dict[str, Any]]) -> dict[str, Finding]:
    asked: list[tuple[str, str]] = []

    def client(service: str) -> Any:
        return (
            DeploymentFunctionConfiguration(families, SAGEMAKER_EXECUTION_ROLE_ARN=ROLE)
            if service == "lambda"
            else boto3.client(service, region_name=HOME)
        )

    def region_client(service: str, region: str) -> Any:
        asked.append((service, region))
        return boto3.client(service, region_name=region)

    deployment = remote_deployment(HOME, client, region_client)
    rows = {finding.check: finding for finding in checks.check_model_images(deployment)}
    assert set(asked) <= {("ecr", OTHER)}
    return rows


def test_an_image_in_every_region_passes_with_each_regions_uri(aws: None) -> None:
    _live_version(OWN_IMAGE)
    _push(HOME)
    _push(OTHER)

    rows = _doctor([FULL])

    assert set(rows) == {f"support image in {HOME}", f"support image in {OTHER}"}
    assert all(row.passed for row in rows.values()), rows
    assert rows[f"support image in {OTHER}"].detail == OWN_IMAGE.replace(HOME, OTHER)


def test_a_region_missing_the_image_fails_naming_it(aws: None) -> None:
    _live_version(OWN_IMAGE)
    _push(HOME)
    _push(OTHER, tag="v0")

    rows = _doctor([FULL])

    assert rows[f"support image in {HOME}"].passed
    broken = rows[f"support image in {OTHER}"]
    assert not broken.passed
    assert broken.detail.startswith(f"{OWN_IMAGE.replace(HOME, OTHER)} does not exist")
    assert "replicate switchboard-llm to eu-west-1" in broken.remedy


def test_a_dlc_image_is_mapped_to_each_regions_registry_without_a_lookup(aws: None) -> None:
    _live_version(DLC_IMAGE)

    rows = _doctor([FULL])

    assert all(row.passed for row in rows.values()), rows
    assert rows[f"support image in {OTHER}"].detail.startswith(DLC_IMAGE.replace(HOME, OTHER))


def test_an_image_outside_ecr_fails_with_the_reason(aws: None) -> None:
    _live_version("docker.io/library/llm:1")
    rows = _doctor([FULL])
    assert not any(row.passed for row in rows.values())
    assert "is not an Amazon ECR image URI" in rows[f"support image in {OTHER}"].detail


@pytest.mark.parametrize(
    "families",
    [
        [{k: v for k, v in FULL.items() if k != "regions"}],
        [{**FULL, "base_component": "base-ic"}],
    ],
    ids=["single-region", "adapter-family"],
)
def test_families_without_a_regional_rollout_get_one_passing_row(
    aws: None, families: list[dict[str, Any]]
) -> None:
    (row,) = _doctor(families).values()
    assert row.passed and row.detail == "no full-model family lists regions"


def test_before_any_version_the_family_passes_as_not_yet_deployed(aws: None) -> None:
    (row,) = _doctor([FULL]).values()
    assert row.passed and row.detail == "no version deployed yet"


def test_the_check_is_registered_with_the_doctor() -> None:
    assert checks.check_model_images in [check.run for check in checks.CHECKS]
