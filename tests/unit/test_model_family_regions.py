"""Multi-region families (issue 16): `regions` in `cdk.json` is checked by the Lambdas' model and by
the CDK configuration, with errors that name the problem; families without it stay single-region."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from infra.config import ConfigError, SwitchboardConfig, load_cdk_json_context
from switchboard.lifecycle.model import ModelFamily, known_sagemaker_regions, parse_families

BASE: dict[str, Any] = {"group": "support", "option_id": "support-llm", "endpoint_name": "support-ep"}


def _config(families: Any, region: str = "us-east-1") -> SwitchboardConfig:
    context = {**load_cdk_json_context(), "model_families": families, "region": region}
    return SwitchboardConfig.from_context(context.get, environ={})


def test_a_family_lists_its_rollout_regions_in_order() -> None:
    family = ModelFamily.model_validate({**BASE, "regions": ["eu-west-1", "us-east-1", "ap-southeast-2"]})
    assert family.deployment_regions("us-east-1") == ("eu-west-1", "us-east-1", "ap-southeast-2")
    assert family.extra_regions("us-east-1") == ("eu-west-1", "ap-southeast-2")


def test_a_family_without_regions_deploys_to_the_stack_region_only() -> None:
    family = ModelFamily.model_validate(BASE)
    assert family.regions == ()
    assert family.deployment_regions("eu-central-1") == ("eu-central-1",)
    assert family.extra_regions("eu-central-1") == ()
    assert family.regional_option_id("eu-central-1", "eu-central-1") == "support-llm"
    assert "regions" not in family.model_dump(exclude_unset=True)


def test_the_home_region_keeps_the_option_id_and_the_others_are_suffixed() -> None:
    family = ModelFamily.model_validate({**BASE, "regions": ["us-east-1", "eu-west-1"]})
    assert family.regional_option_id("us-east-1", "us-east-1") == "support-llm"
    assert family.regional_option_id("eu-west-1", "us-east-1") == "support-llm-eu-west-1"
    with pytest.raises(ValueError, match="does not deploy to us-west-2"):
        family.regional_option_id("us-west-2", "us-east-1")


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (["us-east-1", "us-east-1"], "listed twice: us-east-1"),
        (["us-east-1", "eu-west-9"], "'eu-west-9' is not a region with SageMaker"),
        (["us-east-1", "Europe"], "'Europe' is not a region name"),
        (["us-east-1", "eu_west_1"], "'eu_west_1' is not a region name"),
        ("us-east-1", "tuple"),  # a string is not a list of regions
    ],
)
def test_bad_regions_are_refused_naming_the_problem(regions: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelFamily.model_validate({**BASE, "regions": regions})


@given(st.lists(st.sampled_from(sorted(known_sagemaker_regions())), min_size=1, max_size=6, unique=True))
def test_any_distinct_known_regions_parse_and_keep_their_order(regions: list[str]) -> None:
    family = ModelFamily.model_validate({**BASE, "regions": regions})
    assert family.deployment_regions(regions[0]) == tuple(regions)
    options = {family.regional_option_id(region, regions[0]) for region in regions}
    assert len(options) == len(regions)  # one option per region, none shared


def test_known_regions_come_from_botocore_in_every_partition() -> None:
    known = known_sagemaker_regions()
    assert {"us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"} <= known


def test_the_stack_region_must_be_listed_and_the_error_says_why() -> None:
    stack_region_missing = r"support lists regions eu-west-1.*not the stack's region us-east-1"
    with pytest.raises(ConfigError, match=stack_region_missing):
        _config([{**BASE, "regions": ["eu-west-1"]}])
    (family,) = _config([{**BASE, "regions": ["eu-west-1", "us-east-1"]}]).model_families
    assert family.regions == ("eu-west-1", "us-east-1")


def test_config_names_the_field_of_a_bad_region() -> None:
    with pytest.raises(ConfigError, match=r"model_families.*regions.*listed twice"):
        _config([{**BASE, "regions": ["us-east-1", "us-east-1"]}])


def test_a_regional_option_id_that_would_be_too_long_fails_synthesis() -> None:
    long_id = "o" * 120
    with pytest.raises(ConfigError, match=r"option id for eu-west-1.*shorten option_id"):
        _config([{**BASE, "option_id": long_id, "regions": ["us-east-1", "eu-west-1"]}])


def test_the_lambdas_parse_regions_from_the_same_json() -> None:
    text = '[{"group": "g", "option_id": "o", "endpoint_name": "e", "regions": ["us-west-2"]}]'
    families = parse_families(text)
    assert families["g"].regions == ("us-west-2",)
