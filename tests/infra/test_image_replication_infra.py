"""A version's image in a family's other regions, CDK side (issue 16).

Given `cdk.json`'s families with other regions (one of them Hong Kong, where the AWS Deep Learning
Containers registry is another account), when the app synthesizes (cdk-nag on), then the deployment
tasks may look up the account's own images (``ecr:DescribeImages``) in each rollout region and
nothing else of ECR, the execution role pulls each region's own DLC registry, and ECR replication
exists only when `cdk.json` opts in with ``replicate_images``: one account-wide configuration in the
home stack, to exactly the other regions, for exactly the configured prefixes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import build_app
from infra.config import ConfigError, SwitchboardConfig, load_cdk_json_context
from tests.infra.template_queries import resources_of_type, statements_by_sid

HOME = "us-east-1"
REGIONS_BY_GROUP = {
    "switchboard-support-llm": [HOME, "eu-west-1", "ap-east-1"],
    "switchboard-support-lora": [HOME],
}
OTHERS = ["eu-west-1", "ap-east-1"]
REPLICATE = {"repository_prefixes": ["switchboard-llm", "switchboard-tgi"]}


def _families() -> list[dict[str, Any]]:
    families: list[dict[str, Any]] = load_cdk_json_context()["model_families"]
    assert {f["group"] for f in families} == set(REGIONS_BY_GROUP), "cdk.json families changed"
    return [{**family, "regions": REGIONS_BY_GROUP[family["group"]]} for family in families]


def _synth(outdir: Path, **context: Any) -> Path:
    base = {"region": HOME, "aws:cdk:bundling-stacks": [], "model_families": _families()}
    build_app(outdir=str(outdir), context={**base, **context}).synth()
    return outdir


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield _synth(tmp_path_factory.mktemp("cdk.out.replicated"), replicate_images=REPLICATE)


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield _synth(tmp_path_factory.mktemp("cdk.out.default"))


def _templates(assembly: Path) -> dict[str, dict[str, Any]]:
    return {
        path.stem.removesuffix(".template"): json.loads(path.read_text())
        for path in assembly.glob("*.template.json")
    }


def _arn(value: Any) -> str:
    """An ARN as CloudFormation renders it (partition aws, account 123456789012)."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    rendered = {"AWS::Partition": "aws", "AWS::AccountId": "123456789012"}
    return str(separator).join(p if isinstance(p, str) else rendered[p["Ref"]] for p in parts)


def test_replication_is_one_registry_configuration_in_the_home_stack_when_opted_in(replicated: Path) -> None:
    templates = _templates(replicated)
    (configuration,) = resources_of_type(templates["Switchboard"], "AWS::ECR::ReplicationConfiguration")
    (rule,) = configuration["Properties"]["ReplicationConfiguration"]["Rules"]
    assert [d["Region"] for d in rule["Destinations"]] == OTHERS
    assert all(d["RegistryId"] == {"Ref": "AWS::AccountId"} for d in rule["Destinations"])
    assert rule["RepositoryFilters"] == [
        {"Filter": prefix, "FilterType": "PREFIX_MATCH"} for prefix in REPLICATE["repository_prefixes"]
    ]
    for name, template in templates.items():
        if name != "Switchboard":
            assert not resources_of_type(template, "AWS::ECR::ReplicationConfiguration"), name


def test_no_replication_without_the_opt_in(default: Path) -> None:
    for name, template in _templates(default).items():
        assert not resources_of_type(template, "AWS::ECR::ReplicationConfiguration"), name


def test_the_tasks_may_look_up_only_the_accounts_own_images_in_each_rollout_region(default: Path) -> None:
    statements = statements_by_sid(_templates(default)["Switchboard"])
    found = {sid: s for sid, s in statements.items() if "ecr:DescribeImages" in json.dumps(s["Action"])}
    assert set(found) == {"FindImagesInEuWest1", "FindImagesInApEast1"}
    for region in OTHERS:
        statement = found[f"FindImagesIn{region.title().replace('-', '')}"]
        assert statement["Action"] == "ecr:DescribeImages"
        assert _arn(statement["Resource"]) == f"arn:aws:ecr:{region}:123456789012:repository/switchboard-*"


def test_the_execution_role_pulls_each_regions_own_dlc_registry(default: Path) -> None:
    statements = statements_by_sid(_templates(default)["Switchboard"])
    hong_kong = json.dumps(statements["PullImagesInApEast1"]["Resource"])
    assert "871362719292:repository/djl-inference" in hong_kong and "763104351884" not in hong_kong
    assert "763104351884:repository/djl-inference" in json.dumps(
        statements["PullImagesInEuWest1"]["Resource"]
    )


# -- validation of the cdk.json setting (no synthesis)


def _config(replicate: Any, families: list[dict[str, Any]] | None = None) -> SwitchboardConfig:
    context = {
        **load_cdk_json_context(),
        "region": HOME,
        "model_families": _families() if families is None else families,
        "replicate_images": replicate,
    }
    return SwitchboardConfig.from_context(context.get, environ={})


@pytest.mark.parametrize("off", [None, False, "false", ""])
def test_replication_is_off_unless_configured(off: Any) -> None:
    assert _config(off).replicate_images is None


def test_a_valid_setting_is_read_as_given_also_as_cli_json() -> None:
    assert _config(REPLICATE).replicate_images.repository_prefixes == ("switchboard-llm", "switchboard-tgi")  # type: ignore[union-attr]
    assert _config(json.dumps(REPLICATE)).replicate_images is not None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"repository_prefix": ["switchboard-"]}, "unknown keys"),
        ({"repository_prefixes": []}, "non-empty list"),
        ({"repository_prefixes": "switchboard-"}, "non-empty list"),
        ({"repository_prefixes": ["llm"]}, "beginning with 'switchboard-'"),
        ({"repository_prefixes": ["switchboard-LLM"]}, "ECR repository"),
        ({"repository_prefixes": ["switchboard-", "switchboard-"]}, "twice"),
        ({"repository_prefixes": [f"switchboard-{n}" for n in range(101)]}, "at most 100"),
        (["switchboard-"], "must be an object"),
    ],
)
def test_a_malformed_setting_fails_synthesis_with_the_reason(setting: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(setting)


def test_replication_without_any_other_region_is_refused() -> None:
    single = [{k: v for k, v in f.items() if k != "regions"} for f in _families()]
    with pytest.raises(ConfigError, match="nothing to replicate to"):
        _config(REPLICATE, single)
