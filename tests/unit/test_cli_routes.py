"""The routes `keys create --route` may name: the route flags of the document the target serves."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from switchboard.routing.document import route_names
from switchboard_local.cli.routes import deployed_routes
from switchboard_local.cli.target import TargetError

ROOT = Path(__file__).resolve().parents[2]
SEED = json.loads((ROOT / "config" / "flags.json").read_text())
IDS = {"application_id": "app1234", "environment_id": "env1234", "profile_id": "prof123"}


def test_route_names_are_the_flags_that_declare_a_chain() -> None:
    assert route_names(SEED) == ["chat", "echo", "summarize"]
    assert route_names({"flags": "nonsense"}) == []
    assert route_names({"flags": {"x": {"attributes": "nonsense"}, "y": {"attributes": {"chain": {}}}}}) == [
        "y"
    ]


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "appconfig", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _deployment(number: int, version: str, state: str, profile: str = IDS["profile_id"]) -> dict[str, Any]:
    return {
        "DeploymentNumber": number,
        "ConfigurationProfileId": profile,
        "ConfigurationName": "routing",
        "ConfigurationVersion": version,
        "State": state,
    }


def _hosted(document: dict[str, Any], version: int) -> dict[str, Any]:
    content = json.dumps(document).encode()
    return {
        "ApplicationId": IDS["application_id"],
        "ConfigurationProfileId": IDS["profile_id"],
        "VersionNumber": version,
        "Content": StreamingBody(io.BytesIO(content), len(content)),
        "ContentType": "application/json",
    }


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_the_routes_of_the_version_the_environment_serves(client: Any, stub: Stubber) -> None:
    deployed = {**SEED, "flags": {**SEED["flags"], "beta": SEED["flags"]["chat"]}}
    list_params = {"ApplicationId": IDS["application_id"], "EnvironmentId": IDS["environment_id"]}
    stub.add_response(
        "list_deployments",
        {
            "Items": [
                _deployment(9, "9", "ROLLED_BACK"),  # never served
                _deployment(8, "1", "COMPLETE", profile="otherpr"),  # another profile's document
            ],
            "NextToken": "page-2",
        },
        list_params,
    )
    stub.add_response(
        "list_deployments",
        {"Items": [_deployment(7, "5", "COMPLETE"), _deployment(6, "4", "COMPLETE")]},
        {**list_params, "NextToken": "page-2"},
    )
    stub.add_response(
        "get_hosted_configuration_version",
        _hosted(deployed, 5),
        {
            "ApplicationId": IDS["application_id"],
            "ConfigurationProfileId": IDS["profile_id"],
            "VersionNumber": 5,
        },
    )

    routes = deployed_routes(client, IDS)

    assert routes.names == ["beta", "chat", "echo", "summarize"]
    assert routes.source == "AppConfig deployment 7 (flags version 5)"


def test_no_deployment_yet_is_a_clear_error(client: Any, stub: Stubber) -> None:
    stub.add_response("list_deployments", {"Items": []})

    with pytest.raises(TargetError, match="no routing flag document has been deployed"):
        deployed_routes(client, IDS)


def test_a_stack_without_appconfig_outputs_is_a_clear_error(client: Any) -> None:
    with pytest.raises(TargetError, match="redeploy"):
        deployed_routes(client, {"application_id": "app1234"})
