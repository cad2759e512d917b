"""The usage table's counters against moto: conditional ADD holds its limit, also under threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.contract import tables
from switchboard.quotas.dynamo import DynamoUsageCounters
from switchboard_local.moto_patches import DYNAMODB_ATOMIC_WRITES

TABLE = "usage-test"
PK = "tenant#acme"


def create_usage_table(client: Any, name: str = TABLE) -> None:
    """The usage table as contract.tables declares it (infra creates the real one)."""
    keys = tables.KEY_SCHEMAS["usage"]
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
        KeySchema=[
            {"AttributeName": key, "KeyType": kind} for key, kind in zip(keys, ("HASH", "RANGE"), strict=True)
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def dynamodb(aws_credentials: None) -> Iterator[Any]:
    with mock_aws(), DYNAMODB_ATOMIC_WRITES.applied():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_usage_table(client)
        yield client


@pytest.fixture
def counters(dynamodb: Any) -> DynamoUsageCounters:
    return DynamoUsageCounters(TABLE, client=dynamodb)


def raw_item(dynamodb: Any, sk: str) -> dict[str, Any]:
    key = {tables.USAGE_PARTITION_KEY: {"S": PK}, tables.USAGE_SORT_KEY: {"S": sk}}
    item: dict[str, Any] = dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item", {})
    return item


def test_take_adds_until_a_limit_would_pass_and_names_it(
    counters: DynamoUsageCounters, dynamodb: Any
) -> None:
    limits = {"rpm": 3, "tpm": 100}
    assert counters.take(PK, "window#m", {"rpm": 1, "tpm": 60}, limits, expires_at=1000) is None
    # tpm 60 + 50 > 100: refused, and the rpm slot is not kept either
    assert counters.take(PK, "window#m", {"rpm": 1, "tpm": 50}, limits, expires_at=1000) == "tpm"
    assert counters.take(PK, "window#m", {"rpm": 1, "tpm": 40}, limits, expires_at=1000) is None
    assert counters.take(PK, "window#m", {"rpm": 1, "tpm": 0}, limits, expires_at=1000) is None
    assert counters.take(PK, "window#m", {"rpm": 1, "tpm": 0}, limits, expires_at=1000) == "rpm"
    item = raw_item(dynamodb, "window#m")
    assert item["rpm"] == {"N": "3"}
    assert item["tpm"] == {"N": "100"}
    assert item[tables.TTL_ATTRIBUTE] == {"N": "1000"}


def test_an_amount_larger_than_its_limit_never_fits(counters: DynamoUsageCounters, dynamodb: Any) -> None:
    assert (
        counters.take(PK, "window#m", {"rpm": 1, "tpm": 101}, {"rpm": 5, "tpm": 100}, expires_at=1) == "tpm"
    )
    assert raw_item(dynamodb, "window#m") == {}


def test_unlimited_attributes_are_counted_without_a_condition(counters: DynamoUsageCounters) -> None:
    for _ in range(3):
        assert counters.take(PK, "window#m", {"rpm": 1, "tpm": 10**6}, {"rpm": 5}, expires_at=1) is None
    assert counters.read(PK, ["window#m"])["window#m"]["tpm"] == 3 * 10**6


def test_give_back_subtracts_and_floors_at_zero(counters: DynamoUsageCounters) -> None:
    counters.take(PK, "w", {"tpm": 100}, {"tpm": 1000}, expires_at=1)
    counters.give_back(PK, "w", 30, attribute="tpm")
    assert counters.read(PK, ["w"])["w"]["tpm"] == 70
    counters.give_back(PK, "w", 500, attribute="tpm")
    assert counters.read(PK, ["w"])["w"]["tpm"] == 0
    counters.give_back(PK, "absent", 5, attribute="tpm")  # an expired window: nothing to do
    assert counters.read(PK, ["absent"]) == {}


def test_add_read_and_put(counters: DynamoUsageCounters) -> None:
    counters.add(PK, "spend#day#2026-11-30", {"tokens": 10, "usd": Decimal("0.0125")}, expires_at=99)
    counters.add(PK, "spend#day#2026-11-30", {"tokens": 5, "usd": Decimal("0.0005")}, expires_at=99)
    counters.put(PK, "limits", {"rpm": 10, "tpm": None, "updated_by": "cli:me"})
    found = counters.read(PK, ["spend#day#2026-11-30", "limits", "budget", "limits"])
    assert found == {
        "spend#day#2026-11-30": {"tokens": 15, "usd": Decimal("0.013"), tables.TTL_ATTRIBUTE: 99},
        "limits": {"rpm": 10, "updated_by": "cli:me"},
    }


def test_threads_never_admit_more_than_the_limit(counters: DynamoUsageCounters) -> None:
    """Many callers at once (as many Lambda instances would be): exactly `limit` requests get in."""
    limits = {"rpm": 25, "tpm": 10_000}
    barrier = threading.Barrier(8)

    def caller(_: int) -> int:
        barrier.wait()
        admitted = 0
        for _ in range(10):
            if counters.take(PK, "window#m", {"rpm": 1, "tpm": 7}, limits, expires_at=1) is None:
                admitted += 1
        return admitted

    with ThreadPoolExecutor(max_workers=8) as pool:
        admitted = sum(pool.map(caller, range(8)))
    assert admitted == 25
    assert counters.read(PK, ["window#m"])["window#m"]["rpm"] == 25
    assert counters.read(PK, ["window#m"])["window#m"]["tpm"] == 25 * 7
