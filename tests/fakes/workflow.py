"""A ``switchboard.workflow.WorkflowRunner`` that answers from a script, without Step Functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchboard.workflow import WorkflowResult


class ScriptedRunner:
    """Answers every run with ``result`` (a workflow output dict, a ``WorkflowResult``, or a function
    of the input), and keeps each input and execution name for assertions."""

    def __init__(
        self, result: dict[str, Any] | WorkflowResult | Callable[[dict[str, Any]], WorkflowResult]
    ) -> None:
        self.result = result
        self.payloads: list[dict[str, Any]] = []
        self.names: list[str] = []

    def run(self, payload: dict[str, Any], *, name: str) -> WorkflowResult:
        self.payloads.append(payload)
        self.names.append(name)
        if isinstance(self.result, WorkflowResult):
            return self.result
        if callable(self.result):
            return self.result(payload)
        return WorkflowResult(status="SUCCEEDED", output=self.result)
