"""ApiKeyStore against moto: hashed storage, lookup, revoke, list, API Gateway key + usage plan key."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.keys import ApiKeyNotFound, ApiKeyStore, hash_key

TABLE = "switchboard-keys-test"


@pytest.fixture
def ddb(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "key_hash", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "key_hash", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


@pytest.fixture
def apigw(ddb: Any) -> Any:
    return boto3.client("apigateway", region_name="us-east-1")


@pytest.fixture
def store(ddb: Any) -> ApiKeyStore:
    return ApiKeyStore(TABLE, client=ddb)


def test_create_stores_only_the_hash(store: ApiKeyStore, ddb: Any) -> None:
    # When a key is issued
    key, record = store.create("acme", "standard", apigateway=None, usage_plan_id=None)
    # Then it has the documented shape
    assert key.startswith("sk-switchboard-") and len(key) > 40
    assert re.fullmatch(r"key_[0-9a-f]{10}", record.key_id)
    assert (record.tenant, record.tier, record.status) == ("acme", "standard", "active")
    assert record.hint == key[-4:]
    assert record.api_key_id is None
    # And the raw table holds its hash, never the key itself
    raw = ddb.scan(TableName=TABLE)["Items"]
    assert len(raw) == 1
    assert raw[0]["key_hash"] == {"S": hash_key(key)}
    dumped = json.dumps(raw)
    assert key not in dumped
    assert key[:-4] not in dumped


def test_hash_is_sha256_hex(store: ApiKeyStore) -> None:
    assert store.hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_lookup(store: ApiKeyStore) -> None:
    key, record = store.create("acme", "premium", apigateway=None, usage_plan_id=None)
    assert store.lookup(key) == record
    assert store.lookup(key + "x") is None
    assert store.lookup("") is None


def test_supplied_key_and_allowed_routes(store: ApiKeyStore) -> None:
    key, _ = store.create(
        "t1",
        "standard",
        apigateway=None,
        usage_plan_id=None,
        key="sk-fixed-test-key-0123456789",
        allowed_routes=["chat"],
    )
    assert key == "sk-fixed-test-key-0123456789"
    found = store.lookup(key)
    assert found is not None and found.allowed_routes == ("chat",)
    assert found.allows("chat") and not found.allows("other")
    # A duplicate key is refused by the conditional put
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        store.create("t2", "standard", apigateway=None, usage_plan_id=None, key=key)


@pytest.mark.parametrize(
    ("tenant", "tier", "message"),
    [
        ("Acme", "standard", "invalid tenant"),
        ("", "standard", "invalid tenant"),
        ("-acme", "standard", "invalid tenant"),
        ("a" * 65, "standard", "invalid tenant"),
        ("acme", "gold", "invalid tier 'gold': expected one of standard, premium"),
    ],
)
def test_validation(store: ApiKeyStore, tenant: str, tier: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        store.create(tenant, tier, apigateway=None, usage_plan_id=None)


def test_revoke(store: ApiKeyStore) -> None:
    key, record = store.create("acme", "standard", apigateway=None, usage_plan_id=None)
    revoked = store.revoke(record.key_id)
    assert revoked.status == "revoked" and revoked.revoked_at
    found = store.lookup(key)
    assert found is not None and found.status == "revoked" and not found.active
    # Idempotent
    assert store.revoke(record.key_id).revoked_at == revoked.revoked_at
    with pytest.raises(ApiKeyNotFound):
        store.revoke("key_0000000000")
    with pytest.raises(ValueError, match="invalid key id"):
        store.revoke("nope")


def test_list_never_returns_keys_or_hashes(store: ApiKeyStore) -> None:
    issued = [store.create(t, "standard", apigateway=None, usage_plan_id=None) for t in ("a", "b", "c")]
    records = store.list()
    assert sorted(r.key_id for r in records) == sorted(r.key_id for _, r in issued)
    dumped = json.dumps([r.to_dict() for r in records])
    for key, _ in issued:
        assert key not in dumped
        assert hash_key(key) not in dumped
    assert "key_hash" not in dumped


def test_api_gateway_key_and_usage_plan(store: ApiKeyStore, apigw: Any) -> None:
    plan = apigw.create_usage_plan(name="premium", throttle={"rateLimit": 10, "burstLimit": 20})
    # When a key is issued with API Gateway wiring
    key, record = store.create("acme", "premium", apigateway=apigw, usage_plan_id=plan["id"])
    # Then an enabled API Gateway key exists and is attached to the tier's usage plan
    assert record.api_key_id
    api_key = apigw.get_api_key(apiKey=record.api_key_id, includeValue=True)
    assert api_key["enabled"] is True
    assert api_key["name"] == f"switchboard-acme-{record.key_id}"
    assert api_key["value"] != key  # the metering key is not the client credential
    plan_keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert [k["id"] for k in plan_keys] == [record.api_key_id]
    assert store.lookup(key) == record
    # When it is revoked, the API Gateway key is disabled too
    store.revoke(record.key_id, apigateway=apigw)
    assert apigw.get_api_key(apiKey=record.api_key_id)["enabled"] is False


def test_failed_create_deletes_the_api_gateway_key(store: ApiKeyStore, apigw: Any, ddb: Any) -> None:
    # Given a key already stored (moto does not check usage plan ids, so fail the DynamoDB write)
    plan = apigw.create_usage_plan(name="standard")
    key, _ = store.create("acme", "standard", apigateway=None, usage_plan_id=None)
    # When issuing the same key again fails at the conditional put
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        store.create("acme", "standard", apigateway=apigw, usage_plan_id=plan["id"], key=key)
    # Then the API Gateway key created on the way is removed again
    assert apigw.get_api_keys()["items"] == []
    assert len(ddb.scan(TableName=TABLE)["Items"]) == 1


def test_delete_removes_the_row_and_the_api_gateway_key(store: ApiKeyStore, apigw: Any, ddb: Any) -> None:
    plan = apigw.create_usage_plan(name="standard")["id"]
    keep_key, keep = store.create("acme", "standard", apigateway=apigw, usage_plan_id=plan)
    key, record = store.create("switchboard-doctor", "standard", apigateway=apigw, usage_plan_id=plan)

    deleted = store.delete(record.key_id, apigateway=apigw)

    assert deleted.key_id == record.key_id
    assert store.lookup(key) is None
    assert store.lookup(keep_key) is not None
    assert [k["id"] for k in apigw.get_api_keys()["items"]] == [keep.api_key_id]
    with pytest.raises(ApiKeyNotFound):
        store.delete(record.key_id, apigateway=apigw)


def test_delete_tolerates_an_api_gateway_key_already_gone(store: ApiKeyStore, apigw: Any) -> None:
    key, record = store.create("switchboard-doctor", "standard", apigateway=apigw)
    apigw.delete_api_key(apiKey=record.api_key_id)

    store.delete(record.key_id, apigateway=apigw)

    assert store.lookup(key) is None
