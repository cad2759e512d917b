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
    assert route_names(SEED) == ["chat", "echo", "embed", "summarize", "tuned"]
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

    assert routes.names == ["beta", "chat", "echo", "embed", "summarize", "tuned"]
    assert routes.source == "AppConfig deployment 7 (flags version 5)"


def test_no_deployment_yet_is_a_clear_error(client: Any, stub: Stubber) -> None:
    stub.add_response("list_deployments", {"Items": []})

    with pytest.raises(TargetError, match="no routing flag document has been deployed"):
        deployed_routes(client, IDS)


def test_a_stack_without_appconfig_outputs_is_a_clear_error(client: Any) -> None:
    with pytest.raises(TargetError, match="redeploy"):
        deployed_routes(client, {"application_id": "app1234"})


def _routes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    from switchboard_local.cli.main import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def test_routes_list_shows_each_routes_kind(capsys: pytest.CaptureFixture[str]) -> None:
    flags = str(ROOT / "config" / "flags.json")
    code, listing, _ = _routes(["routes", "list", "--file", flags], capsys)
    assert code == 0
    assert listing["source"] == flags
    kinds = {r["route"]: (r["kind"], r["endpoint"]) for r in listing["routes"]}
    assert kinds == {
        "chat": ("chat", "/v1/chat/completions"),
        "echo": ("chat", "/v1/chat/completions"),
        "embed": ("embeddings", "/v1/embeddings"),
        "summarize": ("chat", "/v1/chat/completions"),
        "tuned": ("chat", "/v1/chat/completions"),
    }
    chat = next(r for r in listing["routes"] if r["route"] == "chat")
    assert chat["variants"] == ["premium", "default"] and chat["default_enabled"] is True


def test_routes_show_lists_the_variants_in_evaluation_order(capsys: pytest.CaptureFixture[str]) -> None:
    flags = str(ROOT / "config" / "flags.json")
    code, shown, _ = _routes(["routes", "show", "embed", "--file", flags], capsys)
    assert code == 0
    assert shown["kind"] == "embeddings" and shown["endpoint"] == "/v1/embeddings"
    assert shown["variants"] == [
        {
            "name": "default",
            "enabled": True,
            "kind": "embeddings",
            "chain": ["titan-embed-v2-us"],
            "degrade": ["cache", "reject"],
            "cache_ttl_s": 86400,
        }
    ]
    code, shown, _ = _routes(["routes", "show", "chat", "--file", flags], capsys)
    assert [(v["name"], v.get("rule")) for v in shown["variants"]] == [
        ("premium", '(eq $tier "premium")'),
        ("default", None),
    ]
    code, _, err = _routes(["routes", "show", "kill-switch", "--file", flags], capsys)
    assert code == 1 and "unknown route 'kill-switch'" in err and "chat, echo, embed, summarize" in err


def test_routes_of_a_plain_flag_and_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {
        "version": "1",
        "flags": {"old": {"attributes": {"chain": {}, "kind": {}}}},
        "values": {"old": {"enabled": False, "chain": ["mock-embed"], "kind": "embeddings"}},
    }
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(document))
    code, shown, _ = _routes(["routes", "show", "old", "--file", str(path)], capsys)
    assert code == 0 and shown["kind"] == "embeddings" and shown["default_enabled"] is False
    plain = {"name": None, "enabled": False, "chain": ["mock-embed"], "kind": "embeddings"}
    assert shown["variants"] == [plain]
    code, _, err = _routes(["routes", "list", "--file", str(tmp_path / "none.json")], capsys)
    assert code == 2 and "cannot read the routes" in err
