"""Route `tuned` through the deployed request path on moto (authorizer → gateway → Express workflow →
invoke step): the tenant with an approved adapter is answered by its adapter's inference component
and told so in `x-switchboard-adapter`; a tenant without one gets the base component (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from switchboard.contract import metrics as metric_names
from switchboard.contract.tables import KEY_SCHEMAS
from switchboard.keys import ApiKeyStore
from switchboard.lifecycle.adapter_store import (
    AdapterChange,
    AdapterRef,
    AdapterState,
    DynamoTenantAdapterStore,
    HistoryEvent,
    TenantAdapter,
)
from switchboard_local.lifecycle_local import names_for, prefix_of

ROOT = Path(__file__).resolve().parents[2]
OPTION = next(
    o for o in json.loads((ROOT / "config" / "options.json").read_text()) if o.get("adapter_family")
)
FAMILY = OPTION["adapter_family"]
BASE = OPTION["inference_component"]
TUNED = {"model": "tuned", "messages": [{"role": "user", "content": "hello"}]}


def _adapters(gateway: Any) -> DynamoTenantAdapterStore:
    table = names_for(prefix_of(gateway.resources))["adapters_table"]
    keys = KEY_SCHEMAS["adapters"]
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=True)],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoTenantAdapterStore(table, client=ddb)


def _approve(store: DynamoTenantAdapterStore, tenant: str, version: int) -> str:
    """The row the deployment workflow writes when it switches `tenant` to `version`."""
    component = f"{tenant}-adapter-v{version}-ic"
    ref = AdapterRef(
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{FAMILY}/{version}", version, component
    )
    record = TenantAdapter(FAMILY, tenant, AdapterState.LIVE, live=ref, endpoint_name=OPTION["endpoint_name"])
    change = AdapterChange(
        FAMILY, tenant, HistoryEvent.DEPLOYED, "2026-11-30T10:00:00.000000Z", "exec-1", record
    )
    store.write(record, expected_live_arn=None, change=change)
    return component


def _key(gateway: Any, tenant: str) -> str:
    keys = ApiKeyStore(gateway.resources.keys_table, client=boto3.client("dynamodb"))
    return keys.create(tenant, "standard", apigateway=None, usage_plan_id=None)[0]


def test_a_tenant_with_an_adapter_is_answered_by_it_and_another_tenant_by_the_base(gateway: Any) -> None:
    component = _approve(_adapters(gateway), "acme", 3)

    status, headers, body = gateway.call("POST", "/v1/chat/completions", TUNED, key=_key(gateway, "acme"))
    assert status == 200, body
    assert headers["x-switchboard-adapter"] == f"{FAMILY}:v3"
    assert headers["x-switchboard-option"] == OPTION["id"]
    # The mock provider names the inference component it was called with: acme's adapter.
    assert body["choices"][0]["message"]["content"] == f"[{OPTION['id']}/{component}] hello"
    states = gateway.last_states()
    assert "InvokeCandidate" in states and states[-1] == "Answered"

    status, headers, body = gateway.call("POST", "/v1/chat/completions", TUNED, key=_key(gateway, "globex"))
    assert status == 200, body
    assert headers["x-switchboard-adapter"] == "base"
    assert body["choices"][0]["message"]["content"] == f"[{OPTION['id']}/{BASE}] hello"


def test_a_route_without_an_adapter_family_has_no_adapter_header(gateway: Any) -> None:
    status, headers, _ = gateway.call("POST", "/v1/chat/completions", {**TUNED, "model": "chat"})
    assert status == 200
    assert "x-switchboard-adapter" not in headers


def test_without_the_adapters_table_the_base_answers_and_the_lookup_failure_is_counted(
    gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    status, headers, body = gateway.call("POST", "/v1/chat/completions", TUNED, key=_key(gateway, "acme"))
    assert status == 200, body
    assert headers["x-switchboard-adapter"] == "base"
    assert metric_names.ADAPTER_LOOKUP_FAILED in [r.getMessage() for r in caplog.records]


def test_during_a_canary_users_in_its_share_get_the_new_version_and_the_others_the_live_one(
    gateway: Any,
) -> None:
    from switchboard.adapter_routing import canary_bucket

    store = _adapters(gateway)
    live = _approve(store, "acme", 3)
    canary = AdapterRef(
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{FAMILY}/4", 4, "acme-adapter-v4-ic"
    )
    current = store.get(FAMILY, "acme")
    assert current is not None and current.live is not None
    record = TenantAdapter(
        FAMILY, "acme", AdapterState.CANARY, live=current.live, canary=canary, canary_share_percent=30
    )
    change = AdapterChange(
        FAMILY, "acme", HistoryEvent.DEPLOYED, "2026-11-30T10:01:00.000000Z", "exec-2", record
    )
    store.write(record, expected_live_arn=current.live.package_arn, change=change)
    users = [f"user-{i}" for i in range(50)]
    inside = next(u for u in users if canary_bucket("acme", u, FAMILY) < 30)
    outside = next(u for u in users if canary_bucket("acme", u, FAMILY) >= 30)
    key = _key(gateway, "acme")

    for user, label, component in ((inside, "v4", canary.component), (outside, "v3", live)):
        for _ in range(2):  # the same user, the same version
            status, headers, body = gateway.call(
                "POST", "/v1/chat/completions", {**TUNED, "user": user}, key=key
            )
            assert status == 200, body
            assert headers["x-switchboard-adapter"] == f"{FAMILY}:{label}"
            assert body["choices"][0]["message"]["content"] == f"[{OPTION['id']}/{component}] hello"
