"""The Tasks of both state machines, as IAM sees them.

A Task's ``Resource`` names a service integration; Step Functions calls the service with the state
machine's role, so the role needs the integration's IAM action on the resources the parameters name
(Step Functions developer guide, "IAM policies for integrated services";
https://docs.aws.amazon.com/step-functions/latest/dg/service-integration-iam-templates.html).
Optimized integrations map to one action each (``lambda:invoke`` → ``lambda:InvokeFunction``,
``dynamodb:getItem`` → ``dynamodb:GetItem``, ``sns:publish`` → ``sns:Publish``); an AWS SDK
integration ``aws-sdk:SERVICE:apiAction`` is the SDK call ``SERVICE ApiAction``, authorized as that
operation is (:mod:`iam.authorization`).

Statically, ``${Name}`` placeholders take the template's DefinitionSubstitutions; a JSONPath
parameter (``Key.$``) is unknown until run time and stands as a wildcard (``States.Format`` keeps its
literal parts). At run time :mod:`iam.recorder` records the parameters each executed Task had.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iam.authorization import AwsCall

ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = {
    "request_workflow.asl.json": ROOT / "statemachines" / "request_workflow.asl.json",
    "model_deployment.asl.json": ROOT / "statemachines" / "model_deployment.asl.json",
}
DYNAMIC = "__dynamic__"
"""Stands for a value only known at run time; becomes ``*`` in a resource pattern."""

_OPTIMIZED: Mapping[str, tuple[str, str]] = {
    "lambda:invoke": ("lambda", "Invoke"),
    "dynamodb:getItem": ("dynamodb", "GetItem"),
    "dynamodb:putItem": ("dynamodb", "PutItem"),
    "dynamodb:updateItem": ("dynamodb", "UpdateItem"),
    "dynamodb:deleteItem": ("dynamodb", "DeleteItem"),
    "sns:publish": ("sns", "Publish"),
    "states:startExecution": ("stepfunctions", "StartExecution"),
}
_SDK_SERVICE_NAMES = {"sfn": "stepfunctions"}
"""AWS SDK integration service names that differ from botocore's."""


@dataclass(frozen=True)
class TaskState:
    file: str
    name: str
    resource: str
    parameters: Mapping[str, Any]


def load(file: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ASL_FILES[file].read_text())
    return data


def task_states(file: str) -> list[TaskState]:
    return list(_walk(file, load(file)["States"]))


def _walk(file: str, states: Mapping[str, Any]) -> Iterator[TaskState]:
    for name, state in states.items():
        if state.get("Type") == "Task":
            yield TaskState(file, name, state["Resource"], state.get("Parameters") or {})
        for branch in state.get("Branches", []):
            yield from _walk(file, branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _walk(file, state[key]["States"])


def tasks_by_name() -> dict[str, TaskState]:
    """Every Task of both files by state name (names are unique across the two: checked here)."""
    found: dict[str, TaskState] = {}
    for file in ASL_FILES:
        for task in task_states(file):
            if task.name in found:
                raise ValueError(f"state {task.name} appears in {found[task.name].file} and {file}")
            found[task.name] = task
    return found


def task_call(resource: str, params: Mapping[str, Any], *, region: str, account: str) -> AwsCall:
    """The AWS call Step Functions makes for a Task (``.sync``/callback patterns are not used here)."""
    if resource.startswith("arn:aws:states:::"):
        integration = resource.removeprefix("arn:aws:states:::")
        if integration.count(":") > 1 and not integration.startswith("aws-sdk:"):
            raise ValueError(f"{resource}: .sync and callback integrations are not modelled")
        if integration.startswith("aws-sdk:"):
            _, service, action = integration.split(":", 2)
            service = _SDK_SERVICE_NAMES.get(service, service)
            return AwsCall(service, action[0].upper() + action[1:], params, region, account)
        if integration not in _OPTIMIZED:
            raise ValueError(f"{resource}: add the optimized integration to tests/iam/asl.py")
        service, operation = _OPTIMIZED[integration]
        return AwsCall(service, operation, params, region, account)
    if resource.startswith("arn:aws:lambda:"):
        return AwsCall("lambda", "Invoke", {"FunctionName": resource}, region, account)
    raise ValueError(f"{resource}: not a service integration this checker knows")


# -- static rendering ----------------------------------------------------------------------------

_FORMAT = re.compile(r"States\.Format\('((?:[^'\\]|\\.)*)'")


def render_parameters(parameters: Any, substitutions: Mapping[str, str]) -> Any:
    """Parameters as far as they are known before run time (see the module docstring)."""
    if isinstance(parameters, list):
        return [render_parameters(p, substitutions) for p in parameters]
    if isinstance(parameters, dict):
        out: dict[str, Any] = {}
        for key, value in parameters.items():
            if key.endswith(".$"):
                out[key[:-2]] = _render_expression(str(value), substitutions)
            else:
                out[key] = render_parameters(value, substitutions)
        return out
    if isinstance(parameters, str):
        return substitute(parameters, substitutions)
    return parameters


def substitute(text: str, substitutions: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise KeyError(f"${{{name}}} has no DefinitionSubstitution")
        return substitutions[name]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, text)


def _render_expression(expression: str, substitutions: Mapping[str, str]) -> Any:
    formats = [substitute(f, substitutions).replace("{}", DYNAMIC) for f in _FORMAT.findall(expression)]
    if expression.startswith("States.Array("):
        return formats or [DYNAMIC]
    if expression.startswith("States.Format(") and len(formats) == 1:
        return formats[0]
    return DYNAMIC


def runtime_bindings(task: TaskState, executed: Mapping[str, Any]) -> dict[str, str]:
    """``${Name}`` → the value it had in an executed Task's parameters (where it was the whole value)."""
    found: dict[str, str] = {}

    def walk(template: Any, value: Any) -> None:
        if isinstance(template, dict) and isinstance(value, dict):
            for key, sub in template.items():
                if not key.endswith(".$") and key in value:
                    walk(sub, value[key])
        elif isinstance(template, list) and isinstance(value, list):
            for sub_template, sub_value in zip(template, value, strict=False):
                walk(sub_template, sub_value)
        elif isinstance(template, str) and isinstance(value, str):
            whole = re.fullmatch(r"\$\{([A-Za-z0-9_]+)\}", template)
            if whole:
                found[whole.group(1)] = value

    walk(task.parameters, executed)
    return found
