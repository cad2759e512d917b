"""The usage store as deployed: the light JSON client (no botocore), over HTTP, many threads at once.

Given moto's server (real HTTP, its own request threads, writes made atomic as DynamoDB's) and one
:class:`switchboard.awsjson.AwsJsonClient` per thread, as each Lambda instance has with
``SWITCHBOARD_LIGHT_AWS_CLIENT=1``, when every thread meters its requests through
:class:`DynamoUsageStore`, then the totals read back (through the light client too) are exactly
the sums of what was recorded: the store's UpdateItem, Query and numbers travel through the light
client as through botocore. (Over HTTP, moto's server rarely interleaves two writes; the test that
shows lost updates when writes are not atomic is ``test_usage_store.py``'s in-process one.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest

from switchboard.awsjson import AwsJsonClient, Credentials
from switchboard.contract import tables
from switchboard.metering import Metering, Usage
from switchboard.options.model import Price
from switchboard.usage_store import DynamoUsageStore
from switchboard_local.moto_patches import DYNAMODB_ATOMIC_WRITES

REGION = "us-east-1"
TABLE = "usage-light"
NOW = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
PRICE = Price(input=0.06, output=0.24)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from switchboard_local.stack import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with DYNAMODB_ATOMIC_WRITES.applied():
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


def light(endpoint: str) -> AwsJsonClient:
    return AwsJsonClient(
        "dynamodb", region=REGION, credentials=Credentials("testing", "testing"), endpoint_url=endpoint
    )


def test_threads_with_light_clients_meter_exact_totals(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    keys = tables.KEY_SCHEMAS["usage"]
    boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint).create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=True)],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        BillingMode="PAY_PER_REQUEST",
    )
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)
    failed: list[int] = []

    def work(index: int) -> None:
        metering = Metering(
            DynamoUsageStore(TABLE, client=light(endpoint)), price_of=lambda _: PRICE, clock=lambda: NOW
        )
        start.wait()
        for n in range(per_thread):
            usage = Usage(
                tenant="acme",
                route="chat",
                option_id="nova-lite-us",
                key_id=f"k{index % 2}",
                prompt_tokens=100 + n,
                completion_tokens=index,
            )
            if not metering.record(usage):
                failed.append(index)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failed == []
    reader = Metering(DynamoUsageStore(TABLE, client=light(endpoint)))
    ((_, total),) = reader.totals(tenant="acme", since=NOW).items()
    prompt = threads * sum(100 + n for n in range(per_thread))
    completion = per_thread * sum(range(threads))
    assert (total.requests, total.prompt_tokens, total.completion_tokens) == (
        threads * per_thread,
        prompt,
        completion,
    )
    assert total.cost_usd == (prompt * Decimal("0.06") + completion * Decimal("0.24")) / 1_000_000
