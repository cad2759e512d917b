"""Runs the request workflow and tells success from failure.

In AWS: `StartSyncExecution` on the Express state machine, which answers HTTP 200 even when the
execution failed, so `status` is always read. moto has no StartSyncExecution, so the local stack
and tests start the execution and poll it; both sit behind one interface.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class WorkflowResult:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT | ABORTED
    output: dict[str, Any] | None
    error: str | None = None
    cause: str | None = None
    execution_arn: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED" and self.output is not None


class WorkflowRunner(Protocol):
    def run(self, payload: dict[str, Any], *, name: str) -> WorkflowResult: ...


class WorkflowError(RuntimeError):
    """The workflow could not be started or read at all (not: the workflow decided to fail)."""


def _parse_output(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None


class SyncExpressRunner:
    """AWS: one StartSyncExecution call per request."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    @property
    def client(self) -> Any:
        """The Step Functions client it calls (read-only: wiring checks in tests)."""
        return self._client

    def run(self, payload: dict[str, Any], *, name: str) -> WorkflowResult:
        try:
            answer = self._client.start_sync_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )
        except Exception as exc:  # botocore errors and connection failures alike
            raise WorkflowError(f"could not run the request workflow: {type(exc).__name__}") from exc
        return WorkflowResult(
            status=answer["status"],
            output=_parse_output(answer.get("output")),
            error=answer.get("error"),
            cause=answer.get("cause"),
            execution_arn=answer.get("executionArn"),
        )


class PollingRunner:
    """moto (local stack, tests): StartExecution with a unique name, then DescribeExecution."""

    def __init__(
        self,
        client: Any,
        state_machine_arn: str,
        *,
        poll_interval_s: float = 0.005,
        timeout_s: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._arn = state_machine_arn
        self._interval = poll_interval_s
        self._timeout = timeout_s
        self._sleep = sleep
        self._clock = clock

    @property
    def client(self) -> Any:
        """The Step Functions client it calls (read-only: wiring checks in tests)."""
        return self._client

    def run(self, payload: dict[str, Any], *, name: str) -> WorkflowResult:
        unique = f"{name[:71]}-{uuid.uuid4().hex[:8]}"  # moto keeps every name; a retry must not collide
        try:
            arn = self._client.start_execution(
                stateMachineArn=self._arn, name=unique, input=json.dumps(payload)
            )["executionArn"]
            give_up = self._clock() + self._timeout
            interval = self._interval
            while True:
                described = self._client.describe_execution(executionArn=arn)
                if described["status"] != "RUNNING":
                    break
                if self._clock() > give_up:
                    return WorkflowResult(
                        status="TIMED_OUT", output=None, error="States.Timeout", execution_arn=arn
                    )
                self._sleep(interval)
                interval = min(interval * 1.5, 0.05)
        except Exception as exc:
            raise WorkflowError(f"could not run the request workflow: {type(exc).__name__}") from exc
        return WorkflowResult(
            status=described["status"],
            output=_parse_output(described.get("output")),
            error=described.get("error"),
            cause=described.get("cause"),
            execution_arn=arn,
        )
