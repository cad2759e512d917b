"""The local stack's DynamoDB adds numbers as DynamoDB does, whatever their notation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
from moto import mock_aws

from switchboard_local.moto_patches import DYNAMODB_ATOMIC_WRITES


def _add_twice(value: str) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for _ in range(2):
        client.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}},
            UpdateExpression="ADD usd :v, n :one",
            ExpressionAttributeValues={":v": {"N": value}, ":one": {"N": "1"}},
        )
    return client.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]


def test_tiny_decimal_sums_add_up_exactly_and_nothing_is_applied_twice(aws_credentials: None) -> None:
    with DYNAMODB_ATOMIC_WRITES.applied(), mock_aws():
        for notation in ("0.0000001", "1E-7"):
            item = _add_twice(notation)
            assert Decimal(item["usd"]["N"]) == Decimal("0.0000002"), notation
            assert item["n"] == {"N": "2"}
            boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName="t")
