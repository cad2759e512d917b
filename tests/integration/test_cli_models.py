"""`switchboard models` against the local stack's emulated AWS (in-process moto instead of the server).

With `--local`, approving starts the deployment workflow with the event EventBridge would deliver
(moto emits none) and waits: the option switch, the alarm rollback and `models rollback` all show.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

REGION = "us-east-1"


@pytest.fixture
def local(emulated_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from switchboard_local.cli import target as target_mod
    from switchboard_local.emulation import bind_lambda_handlers, provision
    from switchboard_local.lifecycle_local import lifecycle_handlers, provision_model_lifecycle
    from switchboard_local.moto_patches import SAGEMAKER

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    SAGEMAKER.install()
    resources = provision(client, region=REGION, seed=False)
    names = provision_model_lifecycle(client, resources)
    state = tmp_path / "local.json"
    target_mod.write_local_state(
        target_mod.Target(
            region=REGION, options_table=resources.options_table, keys_table=resources.keys_table
        ),
        state,
    )
    monkeypatch.setattr(target_mod, "LOCAL_STATE_FILE", state)
    monkeypatch.setattr("getpass.getuser", lambda: "tester")
    try:
        with bind_lambda_handlers(lifecycle_handlers(resources)):
            yield names
    finally:
        SAGEMAKER.uninstall()


def models(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    from switchboard_local.cli.main import main

    code = main(["models", *argv, "--local"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_register_approve_list_rollback_and_alarm(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    group = local["sample_group"]
    register = ("register", "--group", group, "--image", "llm:1", "--model-data")

    # register and approve two versions: each approval deploys and moves the option
    code, v1 = models(capsys, *register, "s3://models/v1.tar.gz")
    assert code == 0 and v1["version"] == 1
    code, approved = models(capsys, "approve", "--group", group)
    assert code == 0, approved
    assert approved["workflow"]["status"] == "SUCCEEDED"
    assert approved["serving"] == v1["model_package_arn"]
    models(capsys, *register, "s3://models/v2.tar.gz")
    code, approved = models(capsys, "approve", "--group", group)
    assert code == 0 and "UpdateEndpoint_BlueGreenCanary" in approved["workflow"]["states"]

    code, rows = models(capsys, "list", "--group", group)
    assert code == 0
    assert [(r["version"], r["approval"], r["deployment"], r["serving"]) for r in rows] == [
        (2, "Approved", "deployed", True),
        (1, "Approved", "deployed", False),
    ]

    # rollback rejects the live version; the same workflow redeploys version 1
    code, rolled = models(capsys, "rollback", "--group", group, "--reason", "bad answers")
    assert code == 0, rolled
    assert rolled["serving"] == v1["model_package_arn"]
    code, rows = models(capsys, "list", "--group", group)
    assert [(r["version"], r["approval"], r["serving"]) for r in rows] == [
        (2, "Rejected", False),
        (1, "Approved", True),
    ]

    # with a rollback alarm in ALARM, a new version rolls back and is rejected; exit code 1
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=local["alarm_names"][0], StateValue="ALARM", StateReason="demo"
    )
    models(capsys, *register, "s3://models/v3.tar.gz")
    code, failed = models(capsys, "approve", "--group", group)
    assert code == 1
    assert failed["workflow"]["error"] == "DeploymentRolledBackByAlarm"
    assert failed["serving"] == v1["model_package_arn"]


def test_unknown_group_is_refused(local: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard_local.cli.main import main

    code = main(["models", "list", "--group", "nope", "--local"])

    assert code == 2
    assert "not a model family" in capsys.readouterr().err
