"""The plan's image check against ECR (moto): ``DescribeImages`` in each region, by tag or digest.

Given repositories and images pushed in some regions of the emulated account, the catalog answers
present only in the region that holds that tag or digest, missing for an absent repository or tag,
and reports any other ECR error as :class:`ImageCheckFailed` (checked with botocore's Stubber, which
validates the request against ECR's service model).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from switchboard.lifecycle.image_catalog import EcrImageCatalog
from switchboard.lifecycle.images import EcrImage, ImageCheckFailed, check_rollout_images, parse_ecr_image
from tests.fakes.images import push_ecr_image

ACCOUNT = "123456789012"  # moto's default account


def push(region: str, repository: str, tag: str) -> str:
    """Create the repository when needed, put the image; its digest."""
    return push_ecr_image(boto3.client("ecr", region_name=region), repository, tag)


@pytest.fixture
def catalog(emulated_aws: None) -> Iterator[EcrImageCatalog]:
    made: list[str] = []

    def make(region: str) -> Any:
        made.append(region)
        return boto3.client("ecr", region_name=region)

    yield EcrImageCatalog(make)
    assert len(made) == len(set(made)), "one client per region"


def image(
    region: str, repository: str = "switchboard-llm", tag: str | None = "v2", digest: str | None = None
) -> EcrImage:
    return EcrImage(ACCOUNT, region, repository, tag, digest)


def test_an_image_exists_only_in_the_regions_it_was_pushed_to(catalog: EcrImageCatalog) -> None:
    push("eu-west-1", "switchboard-llm", "v2")
    push("ap-southeast-2", "switchboard-llm", "v1")

    assert catalog.exists(image("eu-west-1")) is True
    assert catalog.exists(image("ap-southeast-2")) is False  # repository there, tag not
    assert catalog.exists(image("us-west-2")) is False  # no repository there
    assert catalog.exists(image("eu-west-1", tag="v3")) is False


def test_a_digest_pinned_image_is_looked_up_by_digest(catalog: EcrImageCatalog) -> None:
    digest = push("eu-west-1", "switchboard-llm", "v2")

    assert catalog.exists(image("eu-west-1", tag=None, digest=digest)) is True
    assert catalog.exists(image("eu-west-1", tag=None, digest="sha256:" + "0" * 64)) is False


def test_the_plans_check_names_the_region_missing_the_image(catalog: EcrImageCatalog) -> None:
    push("eu-west-1", "switchboard-llm", "v2")
    home = parse_ecr_image(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/switchboard-llm:v2")

    checked = check_rollout_images(
        home.uri, ["eu-west-1", "ap-southeast-2"], own_account=ACCOUNT, catalog=catalog
    )

    assert [checked.per_region[r]["image_check"] for r in ("eu-west-1", "ap-southeast-2")] == [
        "present",
        "missing",
    ]
    assert (
        f"ap-southeast-2: image {ACCOUNT}.dkr.ecr.ap-southeast-2.amazonaws.com/switchboard-llm:v2"
        in checked.refusal
    )


def test_an_access_denied_is_not_an_absence(aws_credentials: None) -> None:
    ecr = boto3.client("ecr", region_name="eu-west-1")
    stub = Stubber(ecr)
    stub.add_client_error(
        "describe_images",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: ecr:DescribeImages",
        http_status_code=400,
        expected_params={
            "registryId": ACCOUNT,
            "repositoryName": "other-repo",
            "imageIds": [{"imageTag": "latest"}],
        },
    )
    with stub, pytest.raises(ImageCheckFailed, match="eu-west-1: AccessDeniedException"):
        EcrImageCatalog(lambda region: ecr).exists(image("eu-west-1", repository="other-repo", tag=None))
