"""What the local stack adds to moto's Step Functions: `StartSyncExecution`, and parse-once ASL.

moto 5.2 answers `StartSyncExecution` with a 404 (FACTS: "moto has no StartSyncExecution"), which is
why in-process tests run the workflow with `StartExecution` + `DescribeExecution` polling
(`switchboard.workflow.PollingRunner`). Against moto's *server* the local stack can do better: this
adds the operation to moto's `StepFunctionResponse`, starting the execution and waiting for it in
the server, and answering with the fields AWS's `StartSyncExecution` returns. The gateway then uses
`SyncExpressRunner`, as deployed, and no request pays for polling over HTTP.

:func:`cached_asl_parse` keeps each definition's parse tree (see its docstring). Both are applied and
undone by :mod:`switchboard_local.moto_patches` (``SFN_START_SYNC``, ``ASL_PARSE_CACHE``); importing
this module patches nothing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

_POLL_S = 0.002  # in-process status checks: cheap, and the sleep lets the interpreter thread run
_TIMEOUT_S = 300.0  # an Express workflow's own limit is five minutes


def start_sync_execution(self: Any) -> Any:
    """`StepFunctionResponse.start_sync_execution`: start, wait in the server, answer as AWS does."""
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


_ASL_TREES_MAX = 32


def cached_asl_parse(original: Callable[[str], tuple[Any, Any]]) -> Callable[[str], tuple[Any, Any]]:
    """`AmazonStateLanguageParser.parse` that parses each definition once, not per execution.

    moto's interpreter runs ANTLR over the ASL at every StartExecution: ~80 ms for the request
    workflow, most of what a local request costs. The parse tree only depends on the definition
    text, so it is kept per definition; the evaluation components are still built fresh from it
    for each execution (moto's own `Preprocessor`), so executions share no state. A definition
    that does not parse is never cached and fails as before.
    """
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            tree = trees.get(definition)
        if tree is None:
            program, tree = original(definition)
            with lock:
                if len(trees) >= _ASL_TREES_MAX:
                    trees.clear()
                trees[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    return parse
