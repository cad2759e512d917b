"""The local stack's DynamoDB answers item reads as moto's serializer would, only sooner.

`switchboard_local.moto_patches.DYNAMODB_JSON_ITEM_READS` writes GetItem, BatchGetItem, Query and
Scan answers as the JSON their results already are. Every read here is made twice, through moto's
serializer and through the patch, on the same data, and the SDK must parse the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from switchboard_local import dynamodb_ext
from switchboard_local.moto_patches import DYNAMODB_JSON_ITEM_READS

TABLE = "reads"

_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-1000, max_value=1000).map(
        lambda d: str(d.normalize()) if d != 0 else "0"
    ),
)
_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=12)),
    st.builds(lambda n: {"N": n}, _numbers),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=8)),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=3)),
    st.builds(lambda s: {"NS": sorted(s)}, st.sets(st.integers(-99, 99).map(str), min_size=1, max_size=3)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
        st.builds(lambda fields: {"M": fields}, st.dictionaries(_names, inner, max_size=3)),
    ),
    max_leaves=8,
)
_items = st.dictionaries(_names, _values, max_size=5)


@pytest.fixture
def dynamodb(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "ResponseMetadata"}


def _reads(client: Any) -> dict[str, Callable[[], dict[str, Any]]]:
    key = {"pk": {"S": "p"}, "sk": {"S": "0"}}
    query = {":p": {"S": "p"}}
    return {
        "get": lambda: client.get_item(TableName=TABLE, Key=key),
        "get-missing": lambda: client.get_item(TableName=TABLE, Key={"pk": {"S": "x"}, "sk": {"S": "x"}}),
        "get-consistent-with-capacity": lambda: client.get_item(
            TableName=TABLE, Key=key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
        ),
        "get-projected": lambda: client.get_item(
            TableName=TABLE, Key=key, ProjectionExpression="#p", ExpressionAttributeNames={"#p": "pk"}
        ),
        "batch-get": lambda: client.batch_get_item(
            RequestItems={TABLE: {"Keys": [key, {"pk": {"S": "p"}, "sk": {"S": "1"}}]}},
            ReturnConsumedCapacity="INDEXES",
        ),
        "query": lambda: client.query(
            TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues=query
        ),
        "query-page": lambda: client.query(
            TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues=query, Limit=1
        ),
        "query-count": lambda: client.query(
            TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues=query, Select="COUNT"
        ),
        "scan": lambda: client.scan(TableName=TABLE, ReturnConsumedCapacity="TOTAL"),
        "scan-page": lambda: client.scan(TableName=TABLE, Limit=1),
    }


def _answers(client: Any) -> dict[str, dict[str, Any]]:
    return {name: _without_metadata(read()) for name, read in _reads(client).items()}


def _answers_both_ways(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    through_moto = _answers(client)
    with DYNAMODB_JSON_ITEM_READS.applied():
        through_patch = _answers(client)
    return through_moto, through_patch


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_items, min_size=0, max_size=3))
def test_every_item_read_answers_as_moto_s_serializer_does(
    dynamodb: Any, items: list[dict[str, Any]]
) -> None:
    for old in dynamodb.scan(TableName=TABLE)["Items"]:
        dynamodb.delete_item(TableName=TABLE, Key={"pk": old["pk"], "sk": old["sk"]})
    for index, attributes in enumerate(items):
        fields = {name: value for name, value in attributes.items() if name not in ("pk", "sk")}
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "p"}, "sk": {"S": str(index)}, **fields})
    through_moto, through_patch = _answers_both_ways(dynamodb)
    assert through_patch == through_moto


def test_the_patch_answers_plain_items_itself_and_leaves_binary_ones_to_moto(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a pass-through in disguise: plain items take the JSON path, a `B` value does not."""
    verdicts: list[bool] = []  # on each GetItem result (not on the values it recurses into)
    wire_ready = dynamodb_ext._wire_ready

    def noted(value: Any) -> bool:
        verdict = wire_ready(value)
        if isinstance(value, dict) and "Item" in value:
            verdicts.append(verdict)
        return verdict

    monkeypatch.setattr(dynamodb_ext, "_wire_ready", noted)
    plain = {"pk": {"S": "p"}, "sk": {"S": "0"}, "usd": {"N": "0.0000001"}, "tags": {"SS": ["a", "b"]}}
    dynamodb.put_item(TableName=TABLE, Item={**plain, "m": {"M": {"l": {"L": [{"NULL": True}]}}}})
    with DYNAMODB_JSON_ITEM_READS.applied():
        item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "0"}})["Item"]
    assert verdicts == [True]
    assert item["usd"] == {"N": "0.0000001"} and Decimal(item["usd"]["N"]) == Decimal("1E-7")
    dynamodb.put_item(TableName=TABLE, Item={**plain, "blob": {"B": b"\x00\xff"}})
    with DYNAMODB_JSON_ITEM_READS.applied():
        item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "0"}})["Item"]
    assert verdicts == [True, False]
    assert item["blob"] == {"B": b"\x00\xff"}
