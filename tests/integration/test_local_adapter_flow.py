"""The local stack's start-up adapter flow (issue 16), on in-process moto: acme's sample adapter is
approved and the deployment workflow canaries, judges and promotes it (or rolls it back when the
family's rollback alarm is in ALARM); globex's stays pending; a second run changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

REGION = "us-east-1"


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


@pytest.fixture
def lifecycle(emulated_aws: None) -> Iterator[dict[str, Any]]:
    from switchboard_local.emulation import bind_lambda_handlers, provision
    from switchboard_local.lifecycle_local import lifecycle_handlers, provision_model_lifecycle
    from switchboard_local.moto_patches import SAGEMAKER

    SAGEMAKER.install()
    try:
        resources = provision(client, region=REGION, seed=False)
        names = provision_model_lifecycle(client, resources)
        with bind_lambda_handlers(lifecycle_handlers(resources)):
            yield names
    finally:
        SAGEMAKER.uninstall()


def _executions(lifecycle: dict[str, Any]) -> int:
    arn = lifecycle["deployment_state_machine_arn"]
    return len(client("stepfunctions").list_executions(stateMachineArn=arn)["executions"])


def _approval(arn: str) -> str:
    return str(client("sagemaker").describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"])


def test_start_up_promotes_acmes_adapter_once_and_leaves_globex_pending(lifecycle: dict[str, Any]) -> None:
    from switchboard.lifecycle.adapter_store import DynamoTenantAdapterStore
    from switchboard_local.lifecycle_local import approve_sample_adapter

    report = approve_sample_adapter(client, lifecycle)

    assert (report.tenant, report.version, report.outcome, report.share_percent) == (
        "acme",
        1,
        "promoted",
        10,
    )
    assert report.reason.startswith("healthy") and "PromoteTenantCanary" in report.states
    assert "acme: " in report.summary() and "promoted to live" in report.summary()
    store = DynamoTenantAdapterStore(lifecycle["adapters_table"], client=client("dynamodb"))
    acme = store.get(lifecycle["sample_adapter_group"], "acme")
    assert acme is not None and acme.live is not None and acme.live.version == 1 and acme.canary is None
    assert store.get(lifecycle["sample_adapter_group"], "globex") is None
    assert _approval(lifecycle["sample_adapters"]["globex"]) == "PendingManualApproval"

    # idempotent: a second start-up flow (a restart with state kept) starts no workflow
    runs = _executions(lifecycle)
    again = approve_sample_adapter(client, lifecycle)
    assert again.outcome == "already deployed" and _executions(lifecycle) == runs
    assert "left as it was" in again.summary()


def test_the_familys_alarm_in_alarm_during_the_canary_rolls_acme_back(lifecycle: dict[str, Any]) -> None:
    from switchboard_local.lifecycle_local import approve_sample_adapter

    alarm = next(name for name in lifecycle["alarm_names"] if lifecycle["sample_adapter_group"] in name)
    client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")

    report = approve_sample_adapter(client, lifecycle)

    assert report.outcome == "rolled back" and alarm in report.reason
    assert "RollBackTenantCanary" in report.states and "rolled back" in report.summary()
    assert _approval(lifecycle["sample_adapters"]["acme"]) == "Rejected"


def test_the_sample_family_canaries_as_cdk_json_configures_adapter_families(tmp_path: Path) -> None:
    from switchboard_local.lifecycle_local import sample_canary_policy

    cdk_json = tmp_path / "cdk.json"
    family = {"group": "g", "option_id": "o", "endpoint_name": "e", "base_component": "b"}
    canary = {"share_percent": 25, "max_error_rate_percent": 2, "latency_statistic": "p99"}
    cdk_json.write_text(json.dumps({"context": {"model_families": [{**family, "canary": canary}]}}))

    policy = sample_canary_policy(cdk_json)

    assert (policy["share_percent"], policy["max_error_rate_percent"]) == (25, 2)
    assert policy["latency_statistic"] == "Average"  # moto computes no percentiles
