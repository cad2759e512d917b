"""`StartSyncExecution` for moto's Step Functions, so the local stack runs the production runner.

moto 5.2 answers `StartSyncExecution` with a 404 (FACTS: "moto has no StartSyncExecution"), which is
why in-process tests run the workflow with `StartExecution` + `DescribeExecution` polling
(`switchboard.workflow.PollingRunner`). Against moto's *server* the local stack can do better: this
adds the operation to moto's `StepFunctionResponse`, starting the execution and waiting for it in
the server, and answering with the fields AWS's `StartSyncExecution` returns. The gateway then uses
`SyncExpressRunner`, as deployed, and no request pays for polling over HTTP.

Install with :func:`install` (idempotent); :func:`uninstall` removes it.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

_POLL_S = 0.002  # in-process status checks: cheap, and the sleep lets the interpreter thread run
_TIMEOUT_S = 300.0  # an Express workflow's own limit is five minutes
_installed = [False]


def _start_sync_execution(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import ExecutionAlreadyExists
    from moto.stepfunctions.parser.api import ExecutionStatus

    machine, name = self._get_param("stateMachineArn"), self._get_param("name") or uuid.uuid4().hex
    execution_input = self._get_param("input", if_none="{}")
    try:
        execution = self.stepfunction_backend.start_execution(machine, name, execution_input)
    except ExecutionAlreadyExists:
        # Express workflows do not keep names unique (no history to check them against); moto does.
        execution = self.stepfunction_backend.start_execution(
            machine, f"{name[:70]}-{uuid.uuid4().hex[:8]}", execution_input
        )
    arn = execution.execution_arn
    deadline = time.monotonic() + _TIMEOUT_S
    while True:
        execution = self.stepfunction_backend.describe_execution(arn)
        status = getattr(execution.status, "value", execution.status)
        if status != ExecutionStatus.RUNNING.value or time.monotonic() > deadline:
            break
        time.sleep(_POLL_S)
    response: dict[str, Any] = {
        "executionArn": arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "status": "TIMED_OUT" if status == ExecutionStatus.RUNNING.value else status,
        "input": execution.execution_input,
        "billingDetails": {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 100},
    }
    if execution.stop_date is not None:
        response["stopDate"] = execution.stop_date
    if status == ExecutionStatus.SUCCEEDED.value and execution.output is not None:
        output = execution.output
        response["output"] = output if isinstance(output, str) else json.dumps(output)
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    return ActionResult(response)


def install() -> None:
    from moto.stepfunctions.responses import StepFunctionResponse

    if _installed[0]:
        return
    StepFunctionResponse.start_sync_execution = _start_sync_execution  # type: ignore[attr-defined]
    _installed[0] = True


def uninstall() -> None:
    from moto.stepfunctions.responses import StepFunctionResponse

    if not _installed[0]:
        return
    del StepFunctionResponse.start_sync_execution  # type: ignore[attr-defined]
    _installed[0] = False
