"""A version's image in a family's other regions (issue 16): the URI rewriting and the plan's check.

SageMaker runs only an ECR image of the model's own region, so each other region gets the same
account (this account's, or the region's AWS Deep Learning Containers registry), repository and tag
or digest in that region; anything else is refused with the reason.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.lifecycle.images import (
    DLC_REGISTRY_ACCOUNTS,
    EcrImage,
    ImageNotPortable,
    ImageSource,
    account_of,
    check_rollout_images,
    ecr_domain,
    parse_ecr_image,
    regional_image,
)
from switchboard.lifecycle.model import known_sagemaker_regions
from tests.fakes.images import InMemoryImages

OWN = "123456789012"
COMMERCIAL = sorted(r for r in DLC_REGISTRY_ACCOUNTS if not r.startswith("cn-"))

accounts = st.from_regex(r"\A\d{12}\Z")
regions = st.sampled_from(COMMERCIAL)
_segment = st.from_regex(r"\A[a-z0-9]{1,8}([._-][a-z0-9]{1,6}){0,2}\Z")
repositories = st.lists(_segment, min_size=1, max_size=3).map("/".join)
tags = st.none() | st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}\Z")
digests = st.none() | st.from_regex(r"\A[a-f0-9]{64}\Z").map(lambda hex_: f"sha256:{hex_}")


@st.composite
def ecr_images(draw: st.DrawFn, account: st.SearchStrategy[str] = accounts) -> EcrImage:
    region = draw(regions)
    return EcrImage(
        account=draw(account),
        region=region,
        repository=draw(repositories),
        tag=draw(tags),
        digest=draw(digests),
        domain=ecr_domain(region),
    )


@given(ecr_images())
def test_an_ecr_uri_parses_back_to_its_parts(image: EcrImage) -> None:
    assert parse_ecr_image(image.uri) == image


@given(ecr_images(st.just(OWN)), regions)
def test_an_own_account_image_keeps_account_repository_tag_and_digest_in_the_other_region(
    image: EcrImage, region: str
) -> None:
    mapped = regional_image(image.uri, region, own_account=OWN)

    assert mapped.source is ImageSource.OWN_ACCOUNT
    assert mapped.uri == image.uri.replace(f".dkr.ecr.{image.region}.", f".dkr.ecr.{region}.", 1)
    assert (mapped.image.account, mapped.image.repository) == (OWN, image.repository)
    assert (mapped.image.tag, mapped.image.digest) == (image.tag, image.digest)
    # and back again: the home region's own URI
    assert regional_image(mapped.uri, image.region, own_account=OWN).uri == image.uri


@given(ecr_images(st.just(OWN)))
def test_the_images_own_region_maps_to_itself(image: EcrImage) -> None:
    assert regional_image(image.uri, image.region, own_account=OWN).uri == image.uri


@given(regions, regions, repositories, tags)
def test_a_dlc_image_maps_to_the_dlc_registry_account_of_the_target_region(
    home: str, region: str, repository: str, tag: str | None
) -> None:
    image = EcrImage(DLC_REGISTRY_ACCOUNTS[home], home, repository, tag)

    mapped = regional_image(image.uri, region, own_account=OWN)

    assert mapped.source is ImageSource.AWS_DEEP_LEARNING_CONTAINERS
    assert mapped.image == EcrImage(DLC_REGISTRY_ACCOUNTS[region], region, repository, tag)


def test_the_documented_dlc_exceptions_use_their_own_registry_accounts() -> None:
    tgi = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4-tgi3.0"
    assert regional_image(tgi, "eu-west-1", own_account=OWN).uri == tgi.replace("us-east-1", "eu-west-1")
    assert regional_image(tgi, "ap-east-1", own_account=OWN).uri == (
        "871362719292.dkr.ecr.ap-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4-tgi3.0"
    )
    assert regional_image(tgi, "me-south-1", own_account=OWN).image.account == "217643126080"


def test_dlc_regions_are_regions_botocore_knows_for_sagemaker() -> None:
    assert set(DLC_REGISTRY_ACCOUNTS) <= known_sagemaker_regions()


@given(ecr_images(accounts.filter(lambda a: a != OWN and a not in DLC_REGISTRY_ACCOUNTS.values())), regions)
def test_another_accounts_image_is_refused_naming_that_account(image: EcrImage, region: str) -> None:
    with pytest.raises(ImageNotPortable, match=image.account):
        regional_image(image.uri, region, own_account=OWN)


@given(
    st.sampled_from(
        [
            "llm:1",
            "docker.io/library/nginx:latest",
            "public.ecr.aws/deep-learning-containers/vllm:0.13-gpu-py312",
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/switchboard-llm:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn/switchboard-llm:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/Upper:1",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/switchboard-llm:1 ",
            "",
        ]
    )
    | st.text(max_size=80),
    regions,
)
def test_anything_but_a_private_ecr_uri_is_refused_with_the_reason(uri: str, region: str) -> None:
    try:
        parse_ecr_image(uri)
    except ImageNotPortable as exc:
        assert "ECR" in str(exc)
        with pytest.raises(ImageNotPortable):
            regional_image(uri, region, own_account=OWN)
    else:  # a random text that happens to be an ECR URI maps like any other
        assert regional_image(uri, region, own_account=parse_ecr_image(uri).account).image.region == region


def test_a_dlc_image_cannot_go_where_dlc_publishes_none_nor_across_partitions() -> None:
    dlc = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.36.0-lmi18.0.0-cu128"
    assert "us-gov-west-1" in known_sagemaker_regions()
    with pytest.raises(ImageNotPortable, match="publishes none in us-gov-west-1"):
        regional_image(dlc, "us-gov-west-1", own_account=OWN)
    with pytest.raises(ImageNotPortable, match="partition"):
        regional_image(dlc, "cn-north-1", own_account=OWN)


def test_the_account_comes_from_an_arn() -> None:
    assert account_of("arn:aws:iam::123456789012:role/sm") == "123456789012"
    assert account_of("arn:aws-cn:iam::210987654321:role/sm") == "210987654321"
    assert account_of("") == account_of("not-an-arn") == ""


# -- the plan's check over the regions


IMAGE = f"{OWN}.dkr.ecr.us-east-1.amazonaws.com/switchboard-llm:v2"


def test_every_region_holding_the_image_passes_and_says_where_it_is() -> None:
    catalog = InMemoryImages(IMAGE.replace("us-east-1", "eu-west-1"), IMAGE.replace("us-east-1", "ap-east-1"))

    checked = check_rollout_images(IMAGE, ["eu-west-1", "ap-east-1"], own_account=OWN, catalog=catalog)

    assert checked.refusal == ""
    assert checked.per_region["eu-west-1"] == {
        "image": IMAGE.replace("us-east-1", "eu-west-1"),
        "image_check": "present",
    }
    assert catalog.asked == [IMAGE.replace("us-east-1", r) for r in ("eu-west-1", "ap-east-1")]


def test_a_missing_image_is_refused_naming_the_region_and_the_image() -> None:
    catalog = InMemoryImages(IMAGE.replace("us-east-1", "eu-west-1"))

    checked = check_rollout_images(IMAGE, ["eu-west-1", "ap-southeast-2"], own_account=OWN, catalog=catalog)

    missing = IMAGE.replace("us-east-1", "ap-southeast-2")
    assert checked.per_region["ap-southeast-2"] == {"image": missing, "image_check": "missing"}
    assert f"ap-southeast-2: image {missing} does not exist" in checked.refusal
    assert "eu-west-1:" not in checked.refusal
    assert len(checked.refusal) <= 900


def test_an_image_ecr_will_not_describe_is_refused_with_ecrs_answer() -> None:
    catalog = InMemoryImages(unreadable=("eu-west-1",))
    checked = check_rollout_images(IMAGE, ["eu-west-1"], own_account=OWN, catalog=catalog)
    assert "cannot be checked" in checked.refusal and "AccessDenied" in checked.refusal
    assert checked.per_region["eu-west-1"]["image_check"] == "unknown"


def test_dlc_images_are_mapped_but_not_looked_up() -> None:
    dlc = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.36.0-lmi18.0.0-cu128"
    catalog = InMemoryImages()

    checked = check_rollout_images(dlc, ["eu-west-1", "il-central-1"], own_account=OWN, catalog=catalog)

    assert checked.refusal == "" and catalog.asked == []
    assert checked.per_region["il-central-1"]["image"].startswith("780543022126.dkr.ecr.il-central-1.")


def test_a_non_ecr_image_is_refused_for_every_region() -> None:
    checked = check_rollout_images("llm:1", ["eu-west-1", "ap-southeast-2"], own_account=OWN, catalog=None)
    assert checked.per_region["eu-west-1"] == {"image": "", "image_check": "refused"}
    assert "eu-west-1: image 'llm:1' is not an Amazon ECR image URI" in checked.refusal
