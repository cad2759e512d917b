"""Both runners read the execution status: HTTP 200 does not mean the workflow succeeded."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from switchboard.workflow import PollingRunner, SyncExpressRunner, WorkflowError

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:switchboard-request"
EXEC = "arn:aws:states:us-east-1:123456789012:express:switchboard-request:x:y"


@pytest.fixture
def sfn(aws_credentials: None) -> Any:
    return boto3.client("stepfunctions", region_name="us-east-1")


def test_sync_runner_reports_failed_status(sfn: Any) -> None:
    with Stubber(sfn) as stub:
        stub.add_response(
            "start_sync_execution",
            {
                "executionArn": EXEC,
                "startDate": 0,
                "stopDate": 0,
                "status": "FAILED",
                "error": "States.Runtime",
            },
            {"stateMachineArn": ARN, "name": "n", "input": ANY},
        )
        result = SyncExpressRunner(sfn, ARN).run({"a": 1}, name="n")
    assert not result.succeeded
    assert result.error == "States.Runtime"


def test_sync_runner_parses_output(sfn: Any) -> None:
    with Stubber(sfn) as stub:
        stub.add_response(
            "start_sync_execution",
            {
                "executionArn": EXEC,
                "startDate": 0,
                "stopDate": 0,
                "status": "SUCCEEDED",
                "output": json.dumps({"outcome": "answered"}),
            },
        )
        result = SyncExpressRunner(sfn, ARN).run({}, name="n")
    assert result.succeeded and result.output == {"outcome": "answered"}


def test_sync_runner_wraps_service_errors(sfn: Any) -> None:
    with Stubber(sfn) as stub:
        stub.add_client_error("start_sync_execution", service_error_code="StateMachineDoesNotExist")
        with pytest.raises(WorkflowError):
            SyncExpressRunner(sfn, ARN).run({}, name="n")


def test_polling_runner_polls_until_done_with_unique_names(sfn: Any) -> None:
    with Stubber(sfn) as stub:
        for _ in range(2):
            stub.add_response("start_execution", {"executionArn": EXEC, "startDate": 0})
            stub.add_response(
                "describe_execution",
                {"executionArn": EXEC, "stateMachineArn": ARN, "status": "RUNNING", "startDate": 0},
            )
            stub.add_response(
                "describe_execution",
                {
                    "executionArn": EXEC,
                    "stateMachineArn": ARN,
                    "status": "SUCCEEDED",
                    "startDate": 0,
                    "output": "{}",
                },
            )
        names: list[str] = []
        sfn.meta.events.register(
            "provide-client-params.states.StartExecution", lambda params, **_: names.append(params["name"])
        )
        runner = PollingRunner(sfn, ARN, sleep=lambda _s: None)
        assert runner.run({}, name="chat-req").succeeded
        assert runner.run({}, name="chat-req").succeeded
    assert len(set(names)) == 2 and all(name.startswith("chat-req-") for name in names)
