"""The recorder attributes a handler's calls (botocore and the JSON client) and nothing else."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest

from iam import recorder
from iam.recorder import Attribution, RecordedCall


@pytest.fixture
def own_records() -> Iterator[set[RecordedCall]]:
    """The records this test adds, taken out again so the session's check never sees them."""
    calls_before, tasks_before = set(recorder.CALLS), set(recorder.TASKS)
    added: set[RecordedCall] = set()
    yield added
    added.update(recorder.CALLS - calls_before)
    recorder.CALLS.intersection_update(calls_before)
    recorder.TASKS.intersection_update(tasks_before)


def new_calls(before: set[RecordedCall]) -> set[RecordedCall]:
    return {c for c in recorder.CALLS if c.attribution.handler == "handlers.test.handler"} - before


def test_every_handler_and_handler_factory_is_wrapped() -> None:
    from handlers import authorizer, gateway, invoke, model_deployment, model_retirement

    for module in (authorizer, gateway, invoke, model_deployment, model_retirement):
        assert getattr(module.handler, "__switchboard_iam__", False), module.__name__
    for module in (model_deployment, model_retirement):
        assert getattr(module.make_handler, "__switchboard_iam__", False), module.__name__


def test_botocore_calls_inside_a_handler_are_recorded_with_its_environment(
    emulated_aws: None, own_records: set[RecordedCall]
) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.list_tables()  # set-up: not a handler's call
    before = set(recorder.CALLS)

    def handler() -> Any:
        return client.list_tables(Limit=5)

    env = {"OPTIONS_TABLE": "t", "SOMETHING_ELSE": "x", "WORKFLOW_MODE": "poll"}
    recorder.attributed("handlers.test.handler", handler, lambda: env)()
    assert new_calls(before) == {
        RecordedCall(
            Attribution("handlers.test.handler", (("OPTIONS_TABLE", "t"), ("WORKFLOW_MODE", "poll"))),
            "dynamodb",
            "ListTables",
            json.dumps({"Limit": 5}),
            "us-east-1",
        )
    }


def test_the_json_client_calls_are_recorded_without_their_data(own_records: set[RecordedCall]) -> None:
    from switchboard.awsjson import AwsJsonClient, Credentials

    class EmptyAnswer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), EmptyAnswer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = AwsJsonClient(
            "dynamodb", region="eu-west-1", credentials=Credentials("a", "b"), endpoint_url=url
        )
        before = set(recorder.CALLS)
        handler = recorder.attributed(
            "handlers.test.handler",
            lambda: client.get_item(TableName="keys", Key={"k": {"S": "secret"}}),
            dict,
        )
        handler()
    finally:
        server.shutdown()
        server.server_close()
    [recorded] = new_calls(before)
    assert (recorded.service, recorded.operation, recorded.region) == ("dynamodb", "GetItem", "eu-west-1")
    assert json.loads(recorded.params_json) == {"TableName": "keys"}


def test_what_the_emulator_does_inside_a_call_is_not_the_callers(
    emulated_aws: None, own_records: set[RecordedCall]
) -> None:
    """A workflow started by a handler runs its Tasks as the state machine, not as the handler."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="scratch",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    definition = {
        "StartAt": "Write",
        "States": {
            "Write": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": "scratch", "Item": {"pk": {"S": "x"}}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="scratch", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    before, tasks_before = set(recorder.CALLS), set(recorder.TASKS)

    def handler() -> str:
        arn = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex)["executionArn"]
        deadline = time.monotonic() + 30  # moto runs the execution on its own thread
        while time.monotonic() < deadline:
            status = str(sfn.describe_execution(executionArn=arn)["status"])
            if status != "RUNNING":
                return status
            time.sleep(0.01)
        return "RUNNING"

    assert recorder.attributed("handlers.test.handler", handler, dict)() == "SUCCEEDED"
    assert {c.operation for c in new_calls(before)} == {"StartExecution", "DescribeExecution"}
    [task] = recorder.TASKS - tasks_before
    assert (task.state, task.resource) == ("Write", "arn:aws:states:::dynamodb:putItem")
    assert json.loads(task.params_json) == {"TableName": "scratch"}


def test_a_stream_and_each_chunk_it_produces_are_the_function_s_calls_but_not_its_consumer_s(
    emulated_aws: None, own_records: set[RecordedCall]
) -> None:
    from dataclasses import dataclass

    from handlers import gateway

    assert getattr(gateway.open_stream, "__switchboard_iam__", False)
    client = boto3.client("dynamodb", region_name="us-east-1")
    before = set(recorder.CALLS)
    closed: list[str] = []

    @dataclass
    class Answer:
        status: int
        headers: dict[str, str]
        chunks: Iterator[bytes]

    def chunks() -> Iterator[bytes]:
        try:
            client.list_tables(Limit=1)  # producing the first chunk (a circuit read, say)
            yield b"one"
            client.list_tables(Limit=2)  # producing the last one (the cache write, say)
            yield b"two"
        finally:
            client.list_tables(Limit=3)  # closing (the outcome of a stream the client left)
            closed.append("closed")

    def open_stream(event: Any) -> Answer:
        client.list_tables(Limit=4)  # planning, before the first byte
        return Answer(200, {}, chunks())

    answer = recorder.attributed_stream("handlers.test.handler", open_stream, lambda: {})({})
    produced = []
    for chunk in answer.chunks:
        produced.append(chunk)
        client.list_tables(Limit=9)  # the consumer (the HTTP server) between chunks: not the function's
    assert produced == [b"one", b"two"] and closed == ["closed"]
    limits = sorted(json.loads(c.params_json)["Limit"] for c in new_calls(before))
    assert limits == [1, 2, 3, 4]
    assert recorder.attributed_stream("handlers.test.handler", lambda event: None, lambda: {})({}) is None
