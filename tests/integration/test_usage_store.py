"""The usage store on DynamoDB (moto): exact totals under concurrency, tenants apart, reads grouped.

Given a usage table keyed as the contract says (``switchboard.contract.tables``), metering through
:class:`DynamoUsageStore` writes one ``UpdateItem ADD`` per request. Many threads metering at once
(as many Lambda instances do) leave stored totals equal to the sum of the usages they recorded:
no update is lost. moto's backend is made as atomic per write as DynamoDB
(``switchboard_local.moto_patches.DYNAMODB_ATOMIC_WRITES``; without it moto itself loses updates);
a store that read, added and wrote back would still lose them here.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.contract import tables
from switchboard.metering import GroupBy, Metering, Usage, UsageGroup, UsageTotals, cost_usd
from switchboard.options.model import Price
from switchboard.usage_store import DynamoUsageStore, usage_key
from switchboard_local.moto_patches import DYNAMODB_ATOMIC_WRITES

TABLE = "usage"
NOW = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
PRICES = {
    "claude-haiku-us": Price(input=1, output=5, cached_input=0.1),
    "nova-lite-us": Price(input=0.06, output=0.24),
}


@pytest.fixture
def client(aws_credentials: None) -> Iterator[Any]:
    with mock_aws(), DYNAMODB_ATOMIC_WRITES.applied():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        keys = tables.KEY_SCHEMAS["usage"]
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=True)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ddb


def meter(client: Any) -> Metering:
    return Metering(DynamoUsageStore(TABLE, client=client), price_of=PRICES.get, clock=lambda: NOW)


def test_concurrent_metering_stores_exactly_the_sum_of_the_usages_recorded(client: Any) -> None:
    # Given 16 threads, each with its own client (as each Lambda instance has), metering 40 requests
    # of random sizes for two tenants into the same few items
    rng = random.Random(15)
    batches = [
        [
            Usage(
                tenant=rng.choice(["acme", "globex"]),
                route="chat",
                option_id=rng.choice(list(PRICES)),
                key_id="k1",
                prompt_tokens=(prompt := rng.randint(0, 50_000)),
                completion_tokens=rng.randint(0, 4_000),
                cached_tokens=rng.randint(0, prompt),
            )
            for _ in range(40)
        ]
        for _ in range(16)
    ]
    clients = [boto3.client("dynamodb", region_name="us-east-1") for _ in batches]
    start = threading.Barrier(len(batches))
    failures: list[Usage] = []

    def work(batch: list[Usage], own_client: Any) -> None:
        metering = meter(own_client)
        start.wait()
        failures.extend(u for u in batch if not metering.record(u))

    threads = [threading.Thread(target=work, args=pair) for pair in zip(batches, clients, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every record succeeded and the stored totals equal the sums, per tenant and option
    assert failures == []
    expected: dict[tuple[str, str], UsageTotals] = {}
    for u in (u for batch in batches for u in batch):
        key = (u.tenant, u.option_id)
        expected[key] = expected.get(key, UsageTotals()) + UsageTotals(
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            cached_tokens=u.cached_tokens,
            requests=1,
            cost_usd=cost_usd(
                PRICES[u.option_id],
                prompt_tokens=u.prompt_tokens,
                completion_tokens=u.completion_tokens,
                cached_tokens=u.cached_tokens,
            ),
        )
    stored = {
        (tenant, option): totals
        for tenant in ("acme", "globex")
        for (_, option), totals in meter(client).totals(tenant=tenant, since=NOW, by=GroupBy.OPTION).items()
    }
    assert stored == expected
    assert sum(t.requests for t in stored.values()) == 16 * 40


def test_an_item_is_keyed_by_tenant_and_hour_and_expires(client: Any) -> None:
    meter(client).record(
        Usage(
            tenant="acme",
            route="chat",
            option_id="nova-lite-us",
            key_id=None,
            prompt_tokens=3,
            completion_tokens=1,
        )
    )
    (item,) = client.scan(TableName=TABLE)["Items"]
    assert item[tables.USAGE_PARTITION_KEY] == {"S": "tenant#acme"}
    assert item[tables.USAGE_SORT_KEY] == {"S": "usage#2026-11-30T08#chat#nova-lite-us#-"}
    assert item["requests"] == {"N": "1"}
    assert Decimal(item["cost_usd"]["N"]) == Decimal("0.00000042")
    expires = datetime.fromtimestamp(int(item[tables.TTL_ATTRIBUTE]["N"]), UTC)
    assert expires == datetime(2026, 11, 30, 9, tzinfo=UTC) + timedelta(days=400)


def test_a_hash_inside_a_name_cannot_merge_two_groups(client: Any) -> None:
    store = DynamoUsageStore(TABLE, client=client)
    one = usage_key(tenant="t", hour="2026-11-30T08", group=UsageGroup("a#b", "c", "k"))
    other = usage_key(tenant="t", hour="2026-11-30T08", group=UsageGroup("a", "b#c", "k"))
    assert one != other
    metering = Metering(store, clock=lambda: NOW)
    for route, option in (("a#b", "c"), ("a", "b#c")):
        metering.record(
            Usage(tenant="t", route=route, option_id=option, key_id="k", prompt_tokens=1, completion_tokens=0)
        )
    by_route = metering.totals(tenant="t", since=NOW, by=GroupBy.ROUTE)
    assert {route: t.requests for (_, route), t in by_route.items()} == {"a": 1, "a#b": 1}


def test_reads_page_through_a_tenant_and_every_tenant_from_an_hour_on(client: Any) -> None:
    metering = meter(client)
    for hour in range(30):  # 30 hours x 2 tenants
        for tenant in ("acme", "globex"):
            metering.record(
                Usage(
                    tenant=tenant,
                    route="chat",
                    option_id="claude-haiku-us",
                    key_id="k1",
                    prompt_tokens=10,
                    completion_tokens=1,
                    at=NOW - timedelta(hours=hour),
                )
            )
    store = DynamoUsageStore(TABLE, client=client)
    small_pages = _Paged(client, limit=7)
    paged = DynamoUsageStore(TABLE, client=small_pages)
    since = (NOW - timedelta(hours=9)).strftime("%Y-%m-%dT%H")

    acme = list(paged.hours_since(tenant="acme", since_hour=since))
    assert len(acme) == 10 and {r.tenant for r in acme} == {"acme"} and small_pages.calls > 1
    everyone = list(store.hours_since(tenant=None, since_hour=since))
    assert len(everyone) == 20 and {r.tenant for r in everyone} == {"acme", "globex"}
    by_hour = metering.totals(tenant="globex", since=NOW - timedelta(hours=9), by=GroupBy.HOUR)
    assert len(by_hour) == 10 and all(t.requests == 1 for t in by_hour.values())


class _Paged:
    """A client whose Query and Scan return at most ``limit`` items a page (moto honours Limit)."""

    def __init__(self, client: Any, *, limit: int) -> None:
        self._client, self._limit, self.calls = client, limit, 0

    def query(self, **request: Any) -> Any:
        self.calls += 1
        return self._client.query(Limit=self._limit, **request)

    def scan(self, **request: Any) -> Any:
        self.calls += 1
        return self._client.scan(Limit=self._limit, **request)
