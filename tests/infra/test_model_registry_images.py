"""The home region's SageMaker execution role pulls that region's own Deep Learning Containers registry.

AWS publishes the DLC images under account 763104351884 in most regions and under other accounts in
some opt-in ones (Hong Kong: 871362719292); a home stack there must be granted that account's
repositories, not the usual one (the regional stacks already are: test_image_replication_infra.py).
"""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack
from aws_cdk.assertions import Template

from infra.constructs.model_registry import ModelRegistry
from switchboard.lifecycle.model import ModelFamily

FAMILY = ModelFamily(group="switchboard-llm", option_id="switchboard-llm", endpoint_name="switchboard-llm-ep")


def _pull_resources(region: str) -> str:
    stack = Stack(App(), "Home", env=Environment(region=region))
    ModelRegistry(stack, "Registry", families=[FAMILY], removal=RemovalPolicy.DESTROY)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (pull,) = [s for s in statements if s.get("Sid") == "PullImages"]
    return json.dumps(pull["Resource"])


@pytest.mark.parametrize(
    ("region", "account", "not_account"),
    [("us-east-1", "763104351884", "871362719292"), ("ap-east-1", "871362719292", "763104351884")],
)
def test_the_execution_role_pulls_the_home_regions_own_dlc_registry(
    region: str, account: str, not_account: str
) -> None:
    resources = _pull_resources(region)
    assert f"{account}:repository/djl-inference" in resources
    assert not_account not in resources
    assert "repository/switchboard-*" in resources
