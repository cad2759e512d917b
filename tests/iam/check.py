"""Every recorded call and every Task, against the synthesized policy of the role that makes it.

:func:`synthesize` builds the template the way ``cdk synth`` does (same app, same ``cdk.json``
context) with two overrides that make its literal names the emulation's: the stack name is the
local prefix (``switchboard-local``: alarm names, the gateway's function name) and the model
families are the ones the recorded lifecycle handlers ran with. cdk-nag is left out (the infra suite
runs it); nothing it does changes a policy.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from iam import asl
from iam.authorization import AwsCall, NoAuthorizationRow, Request, requests_for
from iam.policy import Decision, Statement, action_matches, evaluate, possibly_allowed
from iam.recorder import ExecutedTask, RecordedCall
from iam.template import SynthesizedStack

REGION = "us-east-1"
LOCAL_PREFIX = "switchboard-local"
"""`switchboard_local.emulation.provision`'s default prefix: the emulated resources' names."""


@dataclass(frozen=True)
class KnownDenial:
    principal: str
    """A handler (``handlers.invoke.handler``) or an ASL file (``model_deployment.asl.json``)."""
    action: str
    resource: str
    """A glob over the resource ARN."""
    reason: str
    """Why it is tolerated for now, and where the fix goes."""


KNOWN_DENIALS: tuple[KnownDenial, ...] = ()
"""Denials found in the template and not fixed yet: the one place to tolerate them. Keep it empty."""


@dataclass(frozen=True)
class Finding:
    principal: str
    role: str
    call: str
    action: str
    resource: str
    reason: str

    def line(self) -> str:
        where = f"{self.action} on {self.resource}"
        return f"{self.principal} (role {self.role}): {self.call} -> {where}: {self.reason}"


def synthesize(families: list[Mapping[str, Any]] | None = None) -> SynthesizedStack:
    """The stack as ``cdk synth`` makes it for these model families (None: ``cdk.json``'s); once per
    session for each set of families."""
    template = _synthesized_template(json.dumps(families, sort_keys=True))
    return SynthesizedStack(template, region=REGION, stack_name=LOCAL_PREFIX)


@lru_cache(maxsize=4)
def _synthesized_template(families_json: str) -> dict[str, Any]:
    families = json.loads(families_json)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App

    from infra.config import SwitchboardConfig, load_cdk_json_context
    from infra.stacks import SwitchboardStack

    context: dict[str, Any] = {
        **load_cdk_json_context(),
        "region": REGION,
        "aws:cdk:bundling-stacks": [],
        "stack_name": LOCAL_PREFIX,
    }
    if families:
        context["model_families"] = [dict(f) for f in families]
    with tempfile.TemporaryDirectory(prefix="iam-synth-") as outdir:
        app = App(context=context, outdir=outdir)
        settings = SwitchboardConfig.from_context(app.node.try_get_context)
        stack = SwitchboardStack(app, settings.stack_name, settings=settings)
        assembly = app.synth()
        path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
        template = json.loads(path.read_text())
    return template


def recorded_families(calls: Iterable[RecordedCall]) -> list[dict[str, Any]]:
    """The model families the recorded lifecycle handlers ran with, one per group."""
    by_group: dict[str, dict[str, Any]] = {}
    for call in calls:
        raw = call.attribution.env().get("MODEL_FAMILIES")
        if raw:
            for family in json.loads(raw):
                by_group.setdefault(str(family["group"]), family)
    return [by_group[g] for g in sorted(by_group)]


def _emulation_substitute(call: RecordedCall) -> AwsCall | None:
    """The call the deployed function makes instead of this emulation-only one (None: none at all).

    In-process moto has no StartSyncExecution (FACTS), so there the gateway runs with
    ``WORKFLOW_MODE=poll``: StartExecution, then DescribeExecution until the run ends. Deployed, the
    template leaves WORKFLOW_MODE unset (sync, checked in tests/iam/test_check.py): one
    StartSyncExecution on the same state machine, and no DescribeExecution.
    """
    aws = call.call()
    if call.attribution.env().get("WORKFLOW_MODE") == "poll" and aws.service == "stepfunctions":
        if aws.operation == "StartExecution":
            return AwsCall(aws.service, "StartSyncExecution", aws.params, aws.region, aws.account)
        if aws.operation == "DescribeExecution":
            return None
    return aws


class IamCheck:
    def __init__(self, stack: SynthesizedStack, known: Iterable[KnownDenial] = KNOWN_DENIALS) -> None:
        self.stack = stack
        self.known = tuple(known)
        self._statements: dict[tuple[str, tuple[tuple[str, str], ...]], list[Statement]] = {}
        self.checked_requests = 0
        self.unevaluated: set[str] = set()
        self.tolerated: set[KnownDenial] = set()
        """The known denials that matched a request in this run (the others may be fixed already)."""

    def statements(self, role_id: str, names: Mapping[str, str]) -> list[Statement]:
        key = (role_id, tuple(sorted(names.items())))
        if key not in self._statements:
            self._statements[key] = self.stack.role_statements(role_id, names)
        return self._statements[key]

    def _tolerated(self, principal: str, request: Request) -> bool:
        for known in self.known:
            if (
                known.principal == principal
                and known.action.lower() == request.action.lower()
                and fnmatch.fnmatchcase(request.resource, known.resource)
            ):
                self.tolerated.add(known)
                return True
        return False

    def _judge(
        self,
        principal: str,
        role: str,
        call: AwsCall,
        statements: list[Statement],
        *,
        static: bool = False,
    ) -> list[Finding]:
        label = f"{call.service} {call.operation}"
        try:
            requests = requests_for(call)
        except NoAuthorizationRow as exc:
            return [Finding(principal, role, label, "?", "?", str(exc))]
        findings = []
        for request in requests:
            self.checked_requests += 1
            decision: Decision
            if static and asl.DYNAMIC in request.resource:
                pattern = request.resource.replace(asl.DYNAMIC, "*")
                decision = possibly_allowed(statements, request.action, pattern, request.context_map())
                resource = pattern
            else:
                decision = evaluate(statements, request.action, request.resource, request.context_map())
                resource = request.resource
            self.unevaluated.update(f"{principal}: {u}" for u in decision.unevaluated)
            if not decision.allowed and not self._tolerated(principal, request):
                reason = decision.reason + _granted_elsewhere(statements, request.action)
                findings.append(Finding(principal, role, label, request.action, resource, reason))
        return findings

    def check_calls(self, calls: Iterable[RecordedCall]) -> list[Finding]:
        findings: list[Finding] = []
        for recorded in calls:
            handler = recorded.attribution.handler
            try:
                role = self.stack.function_role(handler)
            except LookupError as exc:
                label = f"{recorded.service} {recorded.operation}"
                findings.append(Finding(handler, "?", label, "?", "?", str(exc)))
                continue
            call = _emulation_substitute(recorded)
            if call is None:
                continue
            names = self.stack.bind_environment(role.principal_id, recorded.attribution.env())
            findings.extend(self._judge(handler, role.role_id, call, self.statements(role.role_id, names)))
        return findings

    def check_executed_tasks(self, tasks: Iterable[ExecutedTask]) -> list[Finding]:
        """Tasks moto's interpreter ran, with the parameters they had; others' state machines skipped."""
        ours = asl.tasks_by_name()
        findings: list[Finding] = []
        for executed in tasks:
            task = ours.get(executed.state)
            if task is None or task.resource != executed.resource:
                continue
            role = self.stack.state_machine_role(asl.load(task.file), task.file)
            substitutions = self.stack.substitutions(role.principal_id)
            params = json.loads(executed.params_json)
            names: dict[str, str] = {}
            for name, value in asl.runtime_bindings(task, params).items():
                self.stack.bind(substitutions.get(name), value, names)
            call = asl.task_call(executed.resource, params, region=executed.region, account=executed.account)
            statements = self.statements(role.role_id, names)
            findings.extend(self._judge(f"{task.file} {task.name}", role.role_id, call, statements))
        return findings

    def check_static_tasks(self) -> list[Finding]:
        """Every Task of both files as the template configures it (JSONPath values as wildcards)."""
        findings: list[Finding] = []
        for file in asl.ASL_FILES:
            role = self.stack.state_machine_role(asl.load(file), file)
            substitutions = {
                name: str(self.stack.resolve(value, {}))
                for name, value in self.stack.substitutions(role.principal_id).items()
            }
            statements = self.statements(role.role_id, {})
            for task in asl.task_states(file):
                params = asl.render_parameters(task.parameters, substitutions)
                call = asl.task_call(
                    task.resource, params, region=self.stack.region, account=self.stack.account
                )
                findings.extend(
                    self._judge(f"{file} {task.name}", role.role_id, call, statements, static=True)
                )
        return findings


def _granted_elsewhere(statements: list[Statement], action: str) -> str:
    """Where the role does allow `action`, so the report shows how far off the grant is."""
    resources = sorted(
        {
            r
            for s in statements
            if s.effect == "Allow" and any(action_matches(p, action) for p in s.actions or ())
            for r in s.resources or ()
        }
    )
    if not resources:
        return f"; the role has no {action} at all"
    return f"; the role allows {action} only on {', '.join(resources)}"


def summarize(findings: Iterable[Finding], *, examples: int = 1) -> list[str]:
    """One line per (principal, call, action), with an example resource and how many there were."""
    grouped: dict[tuple[str, str, str, str, str], list[Finding]] = {}
    for finding in findings:
        key = (finding.principal, finding.role, finding.call, finding.action, finding.reason)
        grouped.setdefault(key, []).append(finding)
    lines = []
    for (principal, role, call, action, reason), group in sorted(grouped.items()):
        resources = sorted({f.resource for f in group})
        more = f" (and {len(resources) - examples} more)" if len(resources) > examples else ""
        shown = ", ".join(resources[:examples])
        lines.append(f"{principal} (role {role}): {call} -> {action} on {shown}{more}: {reason}")
    return lines
