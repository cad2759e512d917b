"""`switchboard models` against the local stack's emulated AWS (in-process moto instead of the server).

With `--local`, approving starts the deployment workflow with the event EventBridge would deliver
(moto emits none) and waits: the option switch, the alarm rollback and `models rollback` all show.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.cli_lifecycle import REGION, local_model_lifecycle


@pytest.fixture
def local(emulated_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with local_model_lifecycle(tmp_path, monkeypatch) as names:
        yield names


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

    code, listing = models(capsys, "list", "--group", group, "--json")
    assert code == 0
    assert listing["tenants"] == []  # a full-model family has no tenant adapters
    rows = listing["versions"]
    assert [(r["version"], r["approval"], r["deployment"], r["serving"]) for r in rows] == [
        (2, "Approved", "deployed", True),
        (1, "Approved", "deployed", False),
    ]

    # rollback rejects the live version; the same workflow redeploys version 1
    code, rolled = models(capsys, "rollback", "--group", group, "--reason", "bad answers")
    assert code == 0, rolled
    assert rolled["serving"] == v1["model_package_arn"]
    code, listing = models(capsys, "list", "--group", group, "--json")
    assert [(r["version"], r["approval"], r["serving"]) for r in listing["versions"]] == [
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


# --------------------------------------------------------------------------------------------------
# tenant adapters (issue 16): the local stack's sample adapter family, acme's and globex's adapters


def test_tenant_adapters_register_approve_list_and_roll_back_per_tenant(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    group = local["sample_adapter_group"]
    # the local stack registered one adapter for each sample tenant, pending approval
    code, listing = models(capsys, "list", "--group", group, "--json")
    assert code == 0
    assert [(r["version"], r["approval"]) for r in listing["versions"]] == [
        (2, "PendingManualApproval"),
        (1, "PendingManualApproval"),
    ]
    assert listing["tenants"] == []

    # approving each deploys that tenant's adapter; each answer says what serves the tenant
    code, acme = models(capsys, "approve", "--group", group, "--version", "1")
    assert code == 0, acme
    assert acme["tenant"] == "acme" and acme["tenant_serving"] == acme["model_package_arn"]
    assert acme["serving"] is None  # the family's option is not a tenant's
    code, globex = models(capsys, "approve", "--group", group, "--version", "2")
    assert code == 0 and globex["tenant"] == "globex"

    # a new adapter for acme, registered and approved through the CLI
    code, v3 = models(
        capsys,
        *("register", "--group", group, "--image", "llm:1", "--model-data", "s3://adapters/acme-3.tar.gz"),
        *("--adapter-of", local["sample_base_component"], "--tenant", "acme"),
    )
    assert code == 0 and (v3["version"], v3["tenant"]) == (3, "acme")
    code, approved = models(capsys, "approve", "--group", group, "--version", "3")
    assert code == 0 and "PromoteTenantCanary" in approved["workflow"]["states"]

    code, listing = models(capsys, "list", "--group", group, "--json")
    tenants = {t["tenant"]: (t["version"], t["state"], t["previous_version"]) for t in listing["tenants"]}
    assert tenants == {"acme": (3, "live", 1), "globex": (2, "live", None)}
    code, view = models(capsys, "list", "--group", group, "--tenant", "acme", "--json")
    assert view["adapter"]["version"] == 3
    assert [(h["event"], h["version"], h["canary_version"]) for h in view["history"]] == [
        ("canary_promoted", 3, 3),
        ("canary_started", 1, 3),
        ("canary_promoted", 1, 1),
        ("canary_started", None, 1),
    ]

    # rolling acme back: acme's previous approved adapter serves again; globex is untouched
    code, rolled = models(capsys, "rollback", "--group", group, "--tenant", "acme", "--reason", "acme")
    assert code == 0, rolled
    assert rolled["tenant_serving"] == acme["model_package_arn"]
    # rolling globex back: it has no other adapter, so the base model serves it
    code, based = models(capsys, "rollback", "--group", group, "--tenant", "globex")
    assert code == 0 and based["tenant_serving"] is None
    assert based["workflow"]["states"][-1] == "TenantServedByBaseModel"
    code, listing = models(capsys, "list", "--group", group, "--json")
    tenants = {t["tenant"]: (t["version"], t["state"], t["serving"]) for t in listing["tenants"]}
    assert tenants["acme"][:2] == (1, "rolled_back")
    assert tenants["globex"] == (None, "rolled_back", "base model")

    # the table for people
    from switchboard_local.cli.main import main

    assert main(["models", "list", "--group", group, "--local"]) == 0
    text = capsys.readouterr().out
    assert "tenant adapters" in text and "base model" in text and "rolled_back" in text


def test_tenant_options_are_checked_before_anything_is_registered(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from switchboard_local.cli.main import main

    register = ("models", "register", "--image", "llm:1", "--model-data", "s3://m.tar.gz", "--local")
    # a tenant in a full-model family
    assert main([*register, "--group", local["sample_group"], "--tenant", "acme"]) == 2
    assert "--tenant needs an adapter family" in capsys.readouterr().err
    # an adapter of another base component than the family's
    group = local["sample_adapter_group"]
    assert main([*register, "--group", group, "--tenant", "acme", "--adapter-of", "other-base"]) == 2
    assert "run on base component" in capsys.readouterr().err
    # a tenant id API keys would refuse
    with pytest.raises(SystemExit) as exited:
        main([*register, "--group", group, "--tenant", "Not A Tenant"])
    assert exited.value.code == 2
    assert "invalid tenant" in capsys.readouterr().err
    _, listing = models(capsys, "list", "--group", group, "--json")
    assert len(listing["versions"]) == 2  # only the two the local stack registered


def _canary_of_acme_v3(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> tuple[str, dict[str, Any]]:
    """acme's version 1 live; acme's version 3 approved, its workflow started with a 2 s bake, and
    acme's row in state canary. Returns the execution and acme's `list` row."""
    from switchboard_local.lifecycle_local import LOCAL_SETTINGS, state_change_event

    group = local["sample_adapter_group"]
    assert models(capsys, "approve", "--group", group, "--version", "1")[0] == 0  # acme: version 1 live
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    code, v3 = models(
        capsys,
        *("register", "--group", group, "--image", "llm:1", "--model-data", "s3://adapters/acme-3.tar.gz"),
        *("--adapter-of", local["sample_base_component"], "--tenant", "acme"),
    )
    assert code == 0
    arn = v3["model_package_arn"]
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    event = state_change_event(sagemaker.describe_model_package(ModelPackageName=arn), region=REGION)
    execution: str = boto3.client("stepfunctions", region_name=REGION).start_execution(
        stateMachineArn=local["deployment_state_machine_arn"],
        input=json.dumps({**event, "settings": {**LOCAL_SETTINGS, "bake_seconds": 2}}),
    )["executionArn"]
    deadline = time.monotonic() + 30
    while True:
        _, listing = models(capsys, "list", "--group", group, "--json")
        acme = next(t for t in listing["tenants"] if t["tenant"] == "acme")
        if acme["state"] == "canary" or time.monotonic() > deadline:
            return execution, acme
        time.sleep(0.05)


def _finished(execution: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        time.sleep(0.05)
    return described


def test_a_tenants_canary_shows_its_share_while_it_bakes(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    group = local["sample_adapter_group"]
    execution, acme = _canary_of_acme_v3(local, capsys)
    try:
        # during the bake: version 1 serves 90% of acme's requests, version 3 the family's 10%
        assert (acme["version"], acme["canary_version"], acme["canary_share_percent"]) == (1, 3, 10)
        assert acme["share"] == "90% v1 / 10% v3"
        assert main_text(capsys, "list", "--group", group).count("90% v1 / 10% v3") == 1
        code, view = models(capsys, "list", "--group", group, "--tenant", "acme", "--json")
        assert (view["adapter"]["state"], view["history"][0]["event"]) == ("canary", "canary_started")
    finally:
        _finished(execution)

    # after the bake (no bad signal): promoted
    code, listing = models(capsys, "list", "--group", group, "--json")
    (acme,) = listing["tenants"]
    assert code == 0
    assert (acme["version"], acme["state"], acme["canary_version"]) == (3, "live", None)
    assert acme["share"] == "100%"


def test_bad_signals_on_a_tenants_canary_roll_it_back_and_leave_other_tenants(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    group = local["sample_adapter_group"]
    assert models(capsys, "approve", "--group", group, "--version", "2")[0] == 0  # globex: version 2 live
    code, listing = models(capsys, "list", "--group", group, "--json")
    (globex_before,) = listing["tenants"]
    # no canary yet: nothing to put signals on
    code, _ = models(capsys, "canary-signals", "--group", group, "--tenant", "acme", "--invocations", "1")
    assert code == 1
    execution, _ = _canary_of_acme_v3(local, capsys)

    # when acme's canary fails every request during the bake
    code, put = models(
        capsys,
        "canary-signals",
        "--group",
        group,
        "--tenant",
        "acme",
        "--invocations",
        "10",
        "--errors",
        "10",
    )
    assert code == 0 and put["canary_version"] == 3
    result = _finished(execution)

    # then acme is back on version 1, and globex never moved
    assert (result["status"], result["error"]) == ("FAILED", "CanaryRolledBack")
    code, listing = models(capsys, "list", "--group", group, "--json")
    tenants = {t["tenant"]: t for t in listing["tenants"]}
    assert (tenants["acme"]["version"], tenants["acme"]["state"], tenants["acme"]["canary_version"]) == (
        1,
        "rolled_back",
        None,
    )
    assert tenants["globex"] == globex_before
    code, view = models(capsys, "list", "--group", group, "--tenant", "acme", "--json")
    assert view["history"][0]["event"] == "canary_rolled_back"
    assert "error rate 100.0%" in view["history"][0]["reason"]


def main_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from switchboard_local.cli.main import main

    assert main(["models", *argv, "--local"]) == 0
    return capsys.readouterr().out
