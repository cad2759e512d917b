"""The tenant adapters store on DynamoDB (moto), on a table keyed as the contract says.

Given the adapters table, :class:`DynamoTenantAdapterStore` reads one tenant with one GetItem, lists a
family's tenants page by page (never history items, never another family's), keeps each change as a
history item newest first, and refuses a write when the tenant is no longer served by the adapter
the writer expected: the workflow's guard against a concurrent deployment or operator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.contract import tables
from switchboard.lifecycle.adapter_store import (
    AdapterChange,
    AdapterRef,
    AdapterState,
    DynamoTenantAdapterStore,
    HistoryEvent,
    TenantAdapter,
    TenantAdapterMovedByAnotherDeployment,
    all_in_family,
)

FAMILY = "support-lora"


@pytest.fixture
def store(aws_credentials: None) -> Iterator[DynamoTenantAdapterStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        keys = tables.KEY_SCHEMAS["adapters"]
        client.create_table(
            TableName="adapters",
            KeySchema=[
                {"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=True)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoTenantAdapterStore("adapters", client=client)


def adapter(version: int) -> AdapterRef:
    return AdapterRef(
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{FAMILY}/{version}", version, f"c-v{version}"
    )


def record(tenant: str, live: AdapterRef | None, *, family: str = FAMILY, **kwargs: Any) -> TenantAdapter:
    return TenantAdapter(
        family, tenant, kwargs.pop("state", AdapterState.LIVE), live=live, endpoint_name="ep", **kwargs
    )


def write(store: DynamoTenantAdapterStore, new: TenantAdapter, expected: AdapterRef | None, at: str) -> None:
    event = HistoryEvent.DEPLOYED if new.live else HistoryEvent.ROLLED_BACK_TO_BASE
    change = AdapterChange(new.family, new.tenant, event, at, f"exec-{at}", new, reason="test")
    store.write(new, expected_live_arn=expected.package_arn if expected else None, change=change)


def test_a_tenant_moves_only_from_the_adapter_the_writer_expected(store: DynamoTenantAdapterStore) -> None:
    write(store, record("acme", adapter(1)), None, "2026-11-30T10:00:00Z")
    write(store, record("acme", adapter(3), previous=adapter(1)), adapter(1), "2026-11-30T10:05:00Z")

    # a writer that planned from version 1 (or from nothing) is refused, naming what serves now
    with pytest.raises(TenantAdapterMovedByAnotherDeployment, match="model-package/support-lora/3"):
        write(store, record("acme", adapter(4)), adapter(1), "2026-11-30T10:06:00Z")
    with pytest.raises(TenantAdapterMovedByAnotherDeployment):
        write(store, record("acme", adapter(4)), None, "2026-11-30T10:06:00Z")

    assert store.get(FAMILY, "acme") == record("acme", adapter(3), previous=adapter(1))
    history = store.history(FAMILY, "acme")
    assert [(h["event"], h["live_version"]) for h in history] == [("deployed", 3), ("deployed", 1)]


def test_the_base_model_is_a_record_without_an_adapter_and_the_next_adapter_expects_none(
    store: DynamoTenantAdapterStore,
) -> None:
    write(store, record("acme", adapter(1)), None, "2026-11-30T10:00:00Z")
    write(store, record("acme", None, state=AdapterState.ROLLED_BACK), adapter(1), "2026-11-30T10:01:00Z")
    based = store.get(FAMILY, "acme")
    assert based is not None and (based.live, based.state) == (None, AdapterState.ROLLED_BACK)

    write(store, record("acme", adapter(2)), None, "2026-11-30T10:02:00Z")
    again = store.get(FAMILY, "acme")
    assert again is not None and again.live == adapter(2)


def test_a_familys_tenants_list_in_pages_without_history_or_other_families(
    store: DynamoTenantAdapterStore,
) -> None:
    for n in range(25):
        write(store, record(f"tenant-{n:02d}", adapter(n + 1)), None, f"2026-11-30T10:{n:02d}:00Z")
    write(store, record("acme", adapter(1), family="other-lora"), None, "2026-11-30T11:00:00Z")

    first = store.list_family(FAMILY, limit=10)
    assert [a.tenant for a in first.adapters] == [f"tenant-{n:02d}" for n in range(10)]
    assert first.next_token == "tenant-09"
    listed = list(all_in_family(store, FAMILY, page_size=10))
    assert [a.tenant for a in listed] == [f"tenant-{n:02d}" for n in range(25)]
    assert store.get(FAMILY, "acme") is None and store.get("other-lora", "acme") is not None


def test_a_canary_write_is_refused_while_another_canary_of_the_tenant_runs(
    store: DynamoTenantAdapterStore,
) -> None:
    write(store, record("acme", adapter(1)), None, "2026-11-30T10:00:00Z")
    canary = record("acme", adapter(1), state=AdapterState.CANARY, canary=adapter(3), canary_share_percent=10)
    change = AdapterChange(FAMILY, "acme", HistoryEvent.CANARY_STARTED, "2026-11-30T10:01:00Z", "e3", canary)
    store.write(canary, expected_live_arn=adapter(1).package_arn, change=change, check_canary=True)
    assert store.get(FAMILY, "acme") == canary  # the share round-trips

    # a second canary (version 4) is refused: one canary per tenant at a time
    other = record("acme", adapter(1), state=AdapterState.CANARY, canary=adapter(4), canary_share_percent=10)
    change4 = AdapterChange(FAMILY, "acme", HistoryEvent.CANARY_STARTED, "2026-11-30T10:02:00Z", "e4", other)
    with pytest.raises(TenantAdapterMovedByAnotherDeployment, match=r"with canary .*/3"):
        store.write(other, expected_live_arn=adapter(1).package_arn, change=change4, check_canary=True)

    # ending version 3's canary names it; ending a canary that is not running is refused
    promoted = record("acme", adapter(3), previous=adapter(1))
    done = AdapterChange(FAMILY, "acme", HistoryEvent.CANARY_PROMOTED, "2026-11-30T10:03:00Z", "e3", promoted)
    with pytest.raises(TenantAdapterMovedByAnotherDeployment):
        store.write(
            promoted,
            expected_live_arn=adapter(1).package_arn,
            change=done,
            expected_canary_arn=adapter(4).package_arn,
            check_canary=True,
        )
    store.write(
        promoted,
        expected_live_arn=adapter(1).package_arn,
        change=done,
        expected_canary_arn=adapter(3).package_arn,
        check_canary=True,
    )
    assert store.get(FAMILY, "acme") == promoted
    assert [h["event"] for h in store.history(FAMILY, "acme")] == [
        "canary_promoted",
        "canary_started",
        "deployed",
    ]
