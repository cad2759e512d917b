"""OptionsStore against moto: versioned writes, TTL cache, last-known-good, invalid items, seeding."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from handlers.seed_options import handler as seed_handler
from switchboard.options.errors import OptionNotFound, OptionsUnavailable, VersionConflict
from switchboard.options.model import LlmOption
from switchboard.options.store import (
    EVENT_INVALID_OPTION,
    EVENT_LAST_KNOWN_GOOD,
    EVENT_REFRESH_FAILED,
    OptionsStore,
    from_dynamodb_item,
    load_seed_file,
    to_dynamodb_item,
)
from tests.fakes import ManualClock, RecordedEvents

TABLE = "switchboard-options-test"
SEED_FILE = Path(__file__).resolve().parents[2] / "config" / "options.json"


@pytest.fixture
def ddb(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def store(ddb: Any, clock: ManualClock, events: RecordedEvents) -> OptionsStore:
    return OptionsStore(TABLE, client=ddb, ttl_s=10, clock=clock, on_event=events)


def mock_option(option_id: str = "mock-a", **overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": option_id,
        "provider": "mock",
        "params": {"latency_ms": 5, "error_rate": 0.25, "nested": {"ratio": 0.1, "n": [1, 2.5]}},
        "timeout_ms": 5000,
        "breaker": {"failure_rate": 0.5, "failure_threshold": 3},
    }
    data.update(overrides)
    return LlmOption.from_dict(data)


def test_put_then_get_round_trips_numbers(store: OptionsStore, ddb: Any) -> None:
    # Given a new option with floats, ints and nested values
    option = mock_option()
    # When it is created
    stored = store.put(option, expected_version=None, updated_by="test")
    # Then it is stored at version 1 with an audit stamp
    assert stored.version == 1
    assert stored.updated_by == "test"
    assert stored.updated_at is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stored.updated_at)
    raw = ddb.get_item(TableName=TABLE, Key={"id": {"S": "mock-a"}})["Item"]
    assert raw["version"] == {"N": "1"}
    assert raw["params"]["M"]["error_rate"] == {"N": "0.25"}
    # And reads return the same values, Decimals converted back to int/float
    got = store.get("mock-a")
    assert got == stored
    assert got is not None
    assert got.params["latency_ms"] == 5 and isinstance(got.params["latency_ms"], int)
    assert got.params["error_rate"] == 0.25 and isinstance(got.params["error_rate"], float)
    assert got.params["nested"] == {"ratio": 0.1, "n": [1, 2.5]}
    assert got.breaker.failure_rate == 0.5
    assert store.get_many(["mock-a", "missing"]) == {"mock-a": stored}
    assert [o.id for o in store.all()] == ["mock-a"]


def test_dynamodb_item_conversion_is_exact() -> None:
    item = to_dynamodb_item({"a": 0.1, "b": 3, "c": True, "d": [1.5, "x"], "e": {"f": 1e-7}})
    assert item["a"] == {"N": "0.1"}
    assert from_dynamodb_item(item) == {"a": 0.1, "b": 3, "c": True, "d": [1.5, "x"], "e": {"f": 1e-7}}
    with pytest.raises(ValueError):
        to_dynamodb_item({"x": float("nan")})


def test_conditional_update_and_conflict(store: OptionsStore) -> None:
    v1 = store.put(mock_option(), expected_version=None, updated_by="alice")
    # Creating again is refused, with the current version
    with pytest.raises(VersionConflict) as info:
        store.put(mock_option(), expected_version=None, updated_by="bob")
    assert info.value.current_version == 1
    # Updating at the right version bumps it
    v2 = store.put(mock_option(timeout_ms=6000), expected_version=v1.version, updated_by="alice")
    assert v2.version == 2
    # A stale writer loses and learns the current version
    with pytest.raises(VersionConflict) as info:
        store.put(mock_option(timeout_ms=7000), expected_version=1, updated_by="bob")
    assert (info.value.expected_version, info.value.current_version) == (1, 2)
    # Updating something that does not exist is a conflict with no current version
    with pytest.raises(VersionConflict) as info:
        store.put(mock_option("ghost"), expected_version=3, updated_by="bob")
    assert info.value.current_version is None
    got = store.get("mock-a")
    assert got is not None and got.timeout_ms == 6000 and got.updated_by == "alice"


def test_delete(store: OptionsStore) -> None:
    store.put(mock_option(), expected_version=None, updated_by="t")
    with pytest.raises(VersionConflict):
        store.delete("mock-a", expected_version=5)
    store.delete("mock-a", expected_version=1)
    assert store.get("mock-a") is None
    with pytest.raises(OptionNotFound):
        store.delete("mock-a")


def test_cache_ttl_with_fake_clock(store: OptionsStore, ddb: Any, clock: ManualClock) -> None:
    # Given a snapshot taken once
    store.put(mock_option(), expected_version=None, updated_by="t")
    assert store.get("mock-a") is not None
    # When another writer adds an item behind the store's back
    other = OptionsStore(TABLE, client=ddb)
    other.put(mock_option("mock-b"), expected_version=None, updated_by="t")
    # Then the snapshot serves the old view until the TTL passes
    clock.advance(9.9)
    assert store.get("mock-b") is None
    clock.advance(0.2)
    assert store.get("mock-b") is not None


def test_own_write_invalidates_cache(store: OptionsStore) -> None:
    assert store.all() == []
    store.put(mock_option(), expected_version=None, updated_by="t")
    assert store.get("mock-a") is not None  # no clock advance needed


def test_last_known_good_when_table_deleted(
    store: OptionsStore, ddb: Any, clock: ManualClock, events: RecordedEvents
) -> None:
    store.put(mock_option(), expected_version=None, updated_by="t")
    assert store.get("mock-a") is not None
    # When the table disappears
    ddb.delete_table(TableName=TABLE)
    clock.advance(11)
    # Then the last-known-good snapshot is served, and the failure is counted
    assert store.get("mock-a") is not None
    assert store.last_refresh_ok is False
    failures = [f for name, f in events.events if name == EVENT_REFRESH_FAILED]
    assert failures == [{"reason": "ResourceNotFoundException", "has_snapshot": True}]
    serving = [f for name, f in events.events if name == EVENT_LAST_KNOWN_GOOD]
    assert serving == [{"reason": "ResourceNotFoundException", "count": 1}]
    # And the store does not hammer DynamoDB: no retry before another TTL
    clock.advance(5)
    assert store.get("mock-a") is not None
    assert len([n for n, _ in events.events if n == EVENT_REFRESH_FAILED]) == 1
    clock.advance(6)
    assert store.get("mock-a") is not None
    assert len([n for n, _ in events.events if n == EVENT_REFRESH_FAILED]) == 2


class FlakyClient:
    """Delegates to a real client; scans fail while `broken` is set."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.broken = False
        self.scans = 0

    def scan(self, **kwargs: Any) -> Any:
        self.scans += 1
        if self.broken:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
        return self.real.scan(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_last_known_good_when_client_raises_then_recovers(ddb: Any, clock: ManualClock) -> None:
    flaky = FlakyClient(ddb)
    store = OptionsStore(TABLE, client=flaky, ttl_s=10, clock=clock)
    store.put(mock_option(), expected_version=None, updated_by="t")
    assert store.get("mock-a") is not None
    flaky.broken = True
    clock.advance(10)
    assert [o.id for o in store.all()] == ["mock-a"]
    # Recovery: the next refresh after the TTL picks up new data
    flaky.broken = False
    OptionsStore(TABLE, client=ddb).put(mock_option("mock-b"), expected_version=None, updated_by="t")
    clock.advance(10)
    assert [o.id for o in store.all()] == ["mock-a", "mock-b"]
    assert store.last_refresh_ok is True


def test_unavailable_without_any_snapshot(ddb: Any, clock: ManualClock) -> None:
    flaky = FlakyClient(ddb)
    flaky.broken = True
    store = OptionsStore(TABLE, client=flaky, clock=clock)
    with pytest.raises(OptionsUnavailable):
        store.get("mock-a")
    # A later call tries again (no negative caching without a snapshot) and succeeds once it can
    flaky.broken = False
    assert store.all() == []
    assert flaky.scans == 2


def test_other_client_errors_also_fall_back(ddb: Any, clock: ManualClock) -> None:
    class Throttled(FlakyClient):
        def scan(self, **kwargs: Any) -> Any:
            if self.broken:
                error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
                raise ClientError({"Error": error}, "Scan")
            return self.real.scan(**kwargs)

    client = Throttled(ddb)
    store = OptionsStore(TABLE, client=client, clock=clock)
    store.put(mock_option(), expected_version=None, updated_by="t")
    assert store.get("mock-a") is not None
    client.broken = True
    clock.advance(60)
    assert store.get("mock-a") is not None


def test_invalid_stored_item_is_skipped(
    store: OptionsStore, ddb: Any, events: RecordedEvents, caplog: pytest.LogCaptureFixture
) -> None:
    store.put(mock_option(), expected_version=None, updated_by="t")
    # Given rows an operator broke by hand: a bedrock option with no model, a leaked key, no id
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "broken"}, "provider": {"S": "bedrock"}})
    ddb.put_item(
        TableName=TABLE,
        Item={
            "id": {"S": "leaky"},
            "provider": {"S": "mock"},
            "params": {"M": {"api_key": {"S": "sk-super-secret-value"}}},
        },
    )
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "weird"}, "provider": {"S": "mock"}, "extra": {"N": "1"}})
    store.invalidate()
    # When the catalogue is read, Then the valid option is served and the others skipped
    assert [o.id for o in store.all()] == ["mock-a"]
    skipped = {f["option_id"]: f["reason"] for name, f in events.events if name == EVENT_INVALID_OPTION}
    assert set(skipped) == {"broken", "leaky", "weird"}
    assert "bedrock options need `model`" in skipped["broken"]
    # And nothing logged or counted carries the secret
    assert "sk-super-secret-value" not in caplog.text
    assert all("sk-super-secret-value" not in reason for reason in skipped.values())
    assert "skipping invalid option broken" in caplog.text


def test_pagination(ddb: Any, clock: ManualClock) -> None:
    class SmallPages(FlakyClient):
        def scan(self, **kwargs: Any) -> Any:
            self.scans += 1
            return self.real.scan(Limit=2, **kwargs)

    writer = OptionsStore(TABLE, client=ddb)
    for i in range(5):
        writer.put(mock_option(f"m{i}"), expected_version=None, updated_by="t")
    client = SmallPages(ddb)
    assert len(OptionsStore(TABLE, client=client, clock=clock).all()) == 5
    assert client.scans >= 3


def test_seed_never_overwrites(store: OptionsStore) -> None:
    seed = load_seed_file(SEED_FILE)
    # Given the catalogue was seeded and an operator then edited one option
    written = store.seed(seed, updated_by="cloudformation")
    assert sorted(written) == sorted(o.id for o in seed)
    edited = store.put(mock_option("mock-echo", timeout_ms=1234), expected_version=1, updated_by="operator")
    # When the seed runs again (a stack update)
    assert store.seed(seed, updated_by="cloudformation") == []
    # Then the edit survives
    assert store.get("mock-echo") == edited


def test_seed_custom_resource(ddb: Any) -> None:
    props = {"ServiceToken": "arn:x", "TableName": TABLE, "Options": SEED_FILE.read_text()}
    count = len(json.loads(SEED_FILE.read_text()))
    created = seed_handler({"RequestType": "Create", "ResourceProperties": props}, None, client=ddb)
    assert created == {"PhysicalResourceId": f"seed-options-{TABLE}", "Data": {"Seeded": count}}
    updated = seed_handler(
        {"RequestType": "Update", "ResourceProperties": props, "PhysicalResourceId": f"seed-options-{TABLE}"},
        None,
        client=ddb,
    )
    assert updated["Data"] == {"Seeded": 0}
    deleted = seed_handler(
        {"RequestType": "Delete", "ResourceProperties": props, "PhysicalResourceId": f"seed-options-{TABLE}"},
        None,
        client=ddb,
    )
    assert deleted["PhysicalResourceId"] == f"seed-options-{TABLE}"
    assert ddb.scan(TableName=TABLE, Select="COUNT")["Count"] == count


def test_seed_custom_resource_default_client_and_bad_options(ddb: Any) -> None:
    # Without an injected client the handler builds its own (region from the environment).
    props = {"TableName": TABLE, "Options": json.dumps([{"id": "m", "provider": "mock"}])}
    assert seed_handler({"RequestType": "Create", "ResourceProperties": props})["Data"] == {"Seeded": 1}
    bad = {"TableName": TABLE, "Options": json.dumps([{"id": "b", "provider": "bedrock"}])}
    with pytest.raises(ValueError, match="bedrock options need"):
        seed_handler({"RequestType": "Create", "ResourceProperties": bad})
