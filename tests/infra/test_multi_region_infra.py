"""Multi-region rollout, CDK side (issue 16): the synthesized templates hold the per-region deployments.

Given `cdk.json`'s families with `regions` added (the LoRA family canaries in eu-west-1, then the
stack's us-east-1, then ap-southeast-2), when the app synthesizes (cdk-nag on: an unacknowledged
finding raises), then each other region has its own small stack with the artifacts replica and the
endpoint rollback alarms of exactly the families listing it, the home stack replicates artifacts
there and may deploy there, and no token crosses a region.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import build_app
from infra.config import SwitchboardConfig, load_cdk_json_context
from infra.constructs.regional_models import REGIONAL_ALARM_SPECS, extra_regions
from infra.stacks import SwitchboardRegionalStack
from switchboard.contract.model_deployment import alarm_names
from tests.infra.template_queries import resources_of_type, statements_by_sid

HOME = "us-east-1"
REGIONS_BY_GROUP = {
    "switchboard-support-llm": ["us-east-1", "eu-west-1"],
    "switchboard-support-lora": ["eu-west-1", "us-east-1", "ap-southeast-2"],
}


def _families() -> list[dict[str, Any]]:
    families: list[dict[str, Any]] = load_cdk_json_context()["model_families"]
    assert {f["group"] for f in families} == set(REGIONS_BY_GROUP), "cdk.json families changed"
    return [{**family, "regions": REGIONS_BY_GROUP[family["group"]]} for family in families]


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    outdir = tmp_path_factory.mktemp("cdk.out.regions")
    context = {"region": HOME, "aws:cdk:bundling-stacks": [], "model_families": _families()}
    build_app(outdir=str(outdir), context=context).synth()
    yield outdir


def _template(assembly: Path, stack: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((assembly / f"{stack}.template.json").read_text())
    return data


def test_one_stack_per_other_region_deployed_before_the_home_stack(assembly: Path) -> None:
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks = {k: v for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"}
    assert set(stacks) == {"Switchboard", "Switchboard-eu-west-1", "Switchboard-ap-southeast-2"}
    for region in ("eu-west-1", "ap-southeast-2"):
        assert stacks[f"Switchboard-{region}"]["environment"] == f"aws://unknown-account/{region}"
        assert f"Switchboard-{region}" in stacks["Switchboard"]["dependencies"]
    assert stacks["Switchboard"]["environment"] == f"aws://unknown-account/{HOME}"


@pytest.mark.parametrize(
    ("region", "groups"),
    [
        ("eu-west-1", ["switchboard-support-llm", "switchboard-support-lora"]),
        ("ap-southeast-2", ["switchboard-support-lora"]),
    ],
)
def test_each_region_holds_its_replica_and_its_families_endpoint_alarms(
    assembly: Path, region: str, groups: list[str]
) -> None:
    template = _template(assembly, f"Switchboard-{region}")
    (bucket,) = resources_of_type(template, "AWS::S3::Bucket")
    name = bucket["Properties"]["BucketName"]["Fn::Join"][1]
    assert name == [f"switchboard-models-{region}-", {"Ref": "AWS::AccountId"}]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}  # replication needs it
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm")
    }
    suffixes = tuple(spec.name_suffix for spec in REGIONAL_ALARM_SPECS)
    expected = {
        name
        for group in groups
        for name in alarm_names("Switchboard-model-", group)
        if name.endswith(suffixes)
    }
    assert set(alarms) == expected  # the same names as at home: the workflow formats them once
    endpoints = {f["group"]: f["endpoint_name"] for f in _families()}
    for alarm_name, alarm in alarms.items():
        group = next(g for g in groups if alarm_name.startswith(f"Switchboard-model-{g}-"))
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert {"Name": "EndpointName", "Value": endpoints[group]} in alarm["Dimensions"]


def test_no_token_crosses_a_region(assembly: Path) -> None:
    for stack in ("Switchboard", "Switchboard-eu-west-1", "Switchboard-ap-southeast-2"):
        text = (assembly / f"{stack}.template.json").read_text()
        assert "Fn::ImportValue" not in text
        assert "ExportsReader" not in text and "ExportsWriter" not in text  # crossRegionReferences


def test_the_home_artifacts_bucket_replicates_to_every_other_region(assembly: Path) -> None:
    home = _template(assembly, "Switchboard")
    (source,) = [
        b for b in resources_of_type(home, "AWS::S3::Bucket") if "ReplicationConfiguration" in b["Properties"]
    ]
    rules = source["Properties"]["ReplicationConfiguration"]["Rules"]
    assert [r["Id"] for r in rules] == ["to-eu-west-1", "to-ap-southeast-2"]
    for rule in rules:
        region = rule["Id"].removeprefix("to-")
        parts = rule["Destination"]["Bucket"]["Fn::Join"][1]
        assert f":s3:::switchboard-models-{region}-" in parts
        assert rule["Status"] == "Enabled"


def test_the_home_stack_may_deploy_in_each_region_with_the_one_execution_role(assembly: Path) -> None:
    statements = statements_by_sid(_template(assembly, "Switchboard"))
    deploy = json.dumps(statements["DeployInApSoutheast2"]["Resource"])
    assert ":sagemaker:ap-southeast-2:" in deploy
    assert "switchboard-lora-base" in deploy and "switchboard-support-llm" not in deploy  # only its families
    assert "sagemaker:UpdateEndpoint" in statements["DeployInEuWest1"]["Action"]
    assert "sagemaker:CreateInferenceComponent" in statements["DeployInEuWest1"]["Action"]
    alarms = json.dumps(statements["ReadRollbackAlarmsInEuWest1"]["Resource"])
    assert ":cloudwatch:eu-west-1:" in alarms and "support-llm-invocation-5xx" in alarms
    passes = statements["PassExecutionRoleToSageMakerInOtherRegions"]
    assert passes["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    for tag, region in (("EuWest1", "eu-west-1"), ("ApSoutheast2", "ap-southeast-2")):
        assert f":ecr:{region}:763104351884:repository/djl-inference" in json.dumps(
            statements[f"PullImagesIn{tag}"]["Resource"]
        )
        assert f":logs:{region}:" in json.dumps(statements[f"EndpointLogsIn{tag}"]["Resource"])
        assert f"switchboard-models-{region}-" in json.dumps(statements[f"ReadArtifactsIn{tag}"]["Resource"])


def test_the_adapter_path_may_make_describe_and_delete_only_the_familys_components_in_each_region(
    assembly: Path,
) -> None:
    """An adapter version's component is made, polled and deleted in each other region by the tasks
    Lambda (``create_region_adapter``, ``region_adapter``, ``roll_back_adapter_rollout``,
    ``delete_region_adapters``): on the family's own names (``<family prefix>*``) and its base."""
    from switchboard.lifecycle.logic import family_name_prefix

    statements = statements_by_sid(_template(assembly, "Switchboard"))
    prefix = family_name_prefix("switchboard-support-lora").lower()
    for tag, region in (("EuWest1", "eu-west-1"), ("ApSoutheast2", "ap-southeast-2")):
        deploy = statements[f"DeployIn{tag}"]
        for action in ("CreateInferenceComponent", "DescribeInferenceComponent", "DeleteInferenceComponent"):
            assert f"sagemaker:{action}" in deploy["Action"], (region, action)
        resources = json.dumps(deploy["Resource"])
        assert f":sagemaker:{region}:" in resources and ":sagemaker:*:" not in resources
        assert f"inference-component/{prefix}*" in resources
        assert "inference-component/switchboard-lora-base-ic" in resources
        assert '"inference-component/*"' not in resources and 'inference-component/*"' not in resources


def test_without_regions_the_app_has_the_one_stack_and_no_cross_region_access(
    template_files: list[Path], template_json: dict[str, Any]
) -> None:
    assert [f.name for f in template_files] == ["Switchboard.template.json"]
    sids = statements_by_sid(template_json)
    assert not [
        sid for sid in sids if sid.startswith(("DeployIn", "PullImagesIn", "PassExecutionRoleToSageMakerIn"))
    ]
    assert "ReplicationConfiguration" not in json.dumps(template_json)


def test_a_regional_stack_is_refused_for_the_home_region() -> None:
    from aws_cdk import App

    context = {**load_cdk_json_context(), "region": HOME, "model_families": _families()}
    settings = SwitchboardConfig.from_context(context.get, environ={})
    assert extra_regions(settings.model_families, HOME) == ["eu-west-1", "ap-southeast-2"]
    with pytest.raises(ValueError, match="home stack's region"):
        SwitchboardRegionalStack(App(), settings=settings, region=HOME)


def test_the_lifecycle_functions_get_each_familys_regions(assembly: Path) -> None:
    from switchboard.lifecycle.settings import LifecycleSettings

    functions = [
        f["Properties"]["Environment"]["Variables"]
        for f in resources_of_type(_template(assembly, "Switchboard"), "AWS::Lambda::Function")
        if "MODEL_FAMILIES" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert functions, "no lifecycle function carries MODEL_FAMILIES"
    for environment in functions:
        settings = LifecycleSettings.from_env({k: _deployed(v) for k, v in environment.items()})
        assert {g: list(f.regions) for g, f in settings.families.items()} == REGIONS_BY_GROUP


def _deployed(value: Any) -> str:
    """An environment value as CloudFormation would render it (account 123456789012)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_deployed(p) if not isinstance(p, dict) else "123456789012" for p in parts)
    return "deployed-name"


def test_the_deployment_tasks_read_each_regions_replica_with_the_one_execution_role(
    assembly: Path,
) -> None:
    """The rollout (issue 16) makes each region's model from that region's replica, named as the regional
    stacks name their buckets, passing the execution role the home stack grants in every region."""
    from switchboard.lifecycle.settings import LifecycleSettings

    home = _template(assembly, "Switchboard")
    (tasks,) = [
        f["Properties"]["Environment"]["Variables"]
        for f in resources_of_type(home, "AWS::Lambda::Function")
        if "REGIONAL_ARTIFACT_BUCKETS" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    settings = LifecycleSettings.from_env({k: _deployed(v) for k, v in tasks.items()})
    assert settings.regional_artifact_buckets == {
        region: f"switchboard-models-{region}-123456789012" for region in ("eu-west-1", "ap-southeast-2")
    }
    for region in ("eu-west-1", "ap-southeast-2"):
        (bucket,) = resources_of_type(_template(assembly, f"Switchboard-{region}"), "AWS::S3::Bucket")
        assert bucket["Properties"]["BucketName"]["Fn::Join"][1][0] == f"switchboard-models-{region}-"
    role = tasks["SAGEMAKER_EXECUTION_ROLE_ARN"]["Fn::GetAtt"][0]
    assert home["Resources"][role]["Type"] == "AWS::IAM::Role" and "SageMakerExecutionRole" in role


def test_retirement_may_clean_up_each_region_only_within_its_families_names(assembly: Path) -> None:
    """Retirement (issue 16) deletes a version's configs, models and adapter components in every region
    its family lists: the retirement role reads the endpoints and deletes the family-prefixed names
    there, adapter components only for adapter families and never a base component."""
    home = _template(assembly, "Switchboard")
    retirement_policies = [
        p
        for p in resources_of_type(home, "AWS::IAM::Policy")
        if any("RetirementFunction" in json.dumps(role) for role in p["Properties"]["Roles"])
    ]
    statements = {
        s["Sid"]: s
        for p in retirement_policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "Sid" in s
    }
    for tag, region in (("EuWest1", "eu-west-1"), ("ApSoutheast2", "ap-southeast-2")):
        read = statements[f"ReadEndpointsToRetireIn{tag}"]
        assert read["Action"] == "sagemaker:DescribeEndpoint"
        deletes = statements[f"DeleteRetiredVersionsIn{tag}"]
        assert sorted(deletes["Action"]) == ["sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"]
        adapters = statements[f"DeleteRetiredAdaptersIn{tag}"]
        assert adapters["Action"] == "sagemaker:DeleteInferenceComponent"
        text = json.dumps([read["Resource"], deletes["Resource"], adapters["Resource"]])
        assert f":sagemaker:{region}:" in text and "Region" not in text  # literal region, no AWS::Region
        assert "switchboard-lora-base-ic" not in json.dumps(adapters["Resource"])  # never the base
        assert "inference-component/switchboard-support-lora-v*" in json.dumps(adapters["Resource"])
        assert "UpdateModelPackage" not in json.dumps([read, deletes, adapters])  # the registry is home
    ireland = json.dumps(statements["DeleteRetiredVersionsInEuWest1"]["Resource"])
    sydney = json.dumps(statements["DeleteRetiredVersionsInApSoutheast2"]["Resource"])
    assert "switchboard-support-llm-v*" in ireland and "switchboard-support-llm" not in sydney
    assert "endpoint/switchboard-support-llm" in json.dumps(statements["ReadEndpointsToRetireInEuWest1"])
