"""The light JSON 1.0 client and botocore, side by side against moto's server (real HTTP).

Every call the request path makes is made both ways; answers and errors must be the same shapes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from switchboard.awsjson import AwsJsonClient, Credentials

REGION = "us-east-1"
TABLE = "light-client"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from switchboard_local.stack import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def clients(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, AwsJsonClient]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    boto = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    light = AwsJsonClient(
        "dynamodb", region=REGION, credentials=Credentials("testing", "testing"), endpoint_url=endpoint
    )
    boto.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield boto, light
    finally:
        boto.delete_table(TableName=TABLE)


def _without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def _error(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return {k: v for k, v in caught.value.response.items() if k != "ResponseMetadata"}


def test_reads_and_writes_answer_as_botocore_does(clients: tuple[Any, AwsJsonClient]) -> None:
    boto, light = clients
    item = {"pk": {"S": "a"}, "n": {"N": "1"}, "tags": {"L": [{"S": "x"}]}, "flag": {"BOOL": True}}

    light.put_item(TableName=TABLE, Item=item)

    for client in (boto, light):
        assert _without_metadata(client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}})) == {"Item": item}
    assert _without_metadata(light.scan(TableName=TABLE)) == _without_metadata(boto.scan(TableName=TABLE))
    assert light.get_item(TableName=TABLE, Key={"pk": {"S": "missing"}}).keys() == {"ResponseMetadata"}


def test_conditional_failures_are_the_same_errors(clients: tuple[Any, AwsJsonClient]) -> None:
    boto, light = clients
    boto.put_item(TableName=TABLE, Item={"pk": {"S": "c"}, "version": {"N": "2"}})
    params = {
        "TableName": TABLE,
        "Item": {"pk": {"S": "c"}, "version": {"N": "3"}},
        "ConditionExpression": "version = :v",
        "ExpressionAttributeValues": {":v": {"N": "1"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }

    ours, theirs = _error(light.put_item, **params), _error(boto.put_item, **params)

    assert ours == theirs
    assert ours["Error"]["Code"] == "ConditionalCheckFailedException"


def test_cancelled_transactions_carry_the_same_reasons(clients: tuple[Any, AwsJsonClient]) -> None:
    boto, light = clients
    boto.put_item(TableName=TABLE, Item={"pk": {"S": "t"}, "version": {"N": "5"}})
    params = {
        "TransactItems": [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {"pk": {"S": "t"}, "version": {"N": "6"}},
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": {"N": "4"}},
                }
            },
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "event"}}}},
        ]
    }

    ours, theirs = _error(light.transact_write_items, **params), _error(boto.transact_write_items, **params)

    assert ours == theirs
    assert ours["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in ours["CancellationReasons"]] == ["ConditionalCheckFailed", "None"]


def test_step_functions_start_and_describe(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    boto = boto3.client("stepfunctions", region_name=REGION, endpoint_url=endpoint)
    light = AwsJsonClient(
        "stepfunctions", region=REGION, credentials=Credentials("testing", "testing"), endpoint_url=endpoint
    )
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    arn = boto.create_state_machine(
        name=f"light-{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]

    started = light.start_execution(stateMachineArn=arn, name="run-1", input=json.dumps({"x": 1}))
    described = light.describe_execution(executionArn=started["executionArn"])

    assert described["executionArn"] == started["executionArn"]
    assert described["status"] in {"RUNNING", "SUCCEEDED"}
    assert isinstance(described["startDate"], int | float)  # epoch seconds, not a datetime
    unknown = arn.replace(":stateMachine:", ":execution:") + ":nope"
    missing = _error(light.describe_execution, executionArn=unknown)
    assert missing["Error"]["Code"] == "ExecutionDoesNotExist"


def test_local_start_sync_execution_waits_and_answers_as_aws(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`switchboard_local.sfn_ext` gives moto's server StartSyncExecution (the local stack's gateway)."""
    from switchboard_local.moto_patches import SFN_START_SYNC

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    boto = boto3.client("stepfunctions", region_name=REGION, endpoint_url=endpoint)
    light = AwsJsonClient(
        "stepfunctions", region=REGION, credentials=Credentials("testing", "testing"), endpoint_url=endpoint
    )
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(
            f"{endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            method="POST",
        )
    ).close()

    def machine(states: dict[str, Any]) -> str:
        definition = {"StartAt": next(iter(states)), "States": states}
        return str(
            boto.create_state_machine(
                name=f"sync-{time.monotonic_ns()}",
                definition=json.dumps(definition),
                roleArn="arn:aws:iam::123456789012:role/sfn",
                type="EXPRESS",
            )["stateMachineArn"]
        )

    ok = machine({"Answer": {"Type": "Pass", "Result": {"answer": 42}, "End": True}})
    failing = machine({"Broken": {"Type": "Fail", "Error": "ProviderDown", "Cause": "all candidates failed"}})
    with SFN_START_SYNC.applied():
        done = light.start_sync_execution(stateMachineArn=ok, name="one", input="{}")
        failed = light.start_sync_execution(stateMachineArn=failing, name="two", input="{}")

    assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"answer": 42}
    assert done["executionArn"].endswith(":one") and "stopDate" in done
    assert (failed["status"], failed["error"], failed["cause"]) == (
        "FAILED",
        "ProviderDown",
        "all candidates failed",
    )
    # Express workflows take a name again (AWS keeps no history of them); moto would refuse
    with SFN_START_SYNC.applied():
        again = light.start_sync_execution(stateMachineArn=ok, name="one", input="{}")
    assert again["status"] == "SUCCEEDED" and again["executionArn"] != done["executionArn"]
    # Uninstalled, moto is back to not knowing the operation.
    _error(light.start_sync_execution, stateMachineArn=ok, name="three", input="{}")
