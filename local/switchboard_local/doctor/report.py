"""Findings, the runner that keeps one broken check from hiding the others, and the table.

A check is a callable that yields :class:`Finding` rows (one per function, per route, per table...).
:func:`run_checks` runs each in turn; an exception escaping a check becomes a FAIL row naming the
check's component, and the next check runs. Nothing here talks to AWS.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "FAIL",
    "PASS",
    "Check",
    "Finding",
    "all_passed",
    "describe_exception",
    "failed",
    "guarded",
    "passed",
    "render_json",
    "render_table",
    "run_checks",
]

PASS = "PASS"  # noqa: S105 - a verdict, not a password
FAIL = "FAIL"
_Ctx = TypeVar("_Ctx")


@dataclass(frozen=True)
class Finding:
    """One row: which component, what was checked, the verdict, what was seen, what to do."""

    component: str
    check: str
    passed: bool
    detail: str = ""
    remedy: str = ""

    @property
    def result(self) -> str:
        return PASS if self.passed else FAIL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result}


def passed(component: str, check: str, detail: str = "") -> Finding:
    return Finding(component, check, True, detail)


def failed(component: str, check: str, detail: str, remedy: str) -> Finding:
    return Finding(component, check, False, detail, remedy)


def describe_exception(exc: BaseException) -> str:
    """`Type: message` with AWS error codes spelled out, on one line."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        error = response["Error"]
        text = f"AWS {error.get('Code', '?')}: {error.get('Message', exc)}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:400]


@dataclass(frozen=True)
class Check(Generic[_Ctx]):
    """A named check over a context (the deployment); ``remedy`` is the advice when it crashes."""

    component: str
    description: str
    run: Callable[[_Ctx], Iterable[Finding]]
    remedy: str = "rerun with --verbose for the traceback; the component's logs say more"


def guarded(
    component: str, check: str, remedy: str, body: Callable[[], Iterable[Finding]]
) -> Iterator[Finding]:
    """Run one item of a multi-item check (one function, one route) so its crash is its own row."""
    try:
        yield from body()
    except Exception as exc:
        yield failed(component, check, describe_exception(exc), remedy)


def run_checks(
    checks: Sequence[Check[_Ctx]],
    context: _Ctx,
    *,
    on_finding: Callable[[Finding], None] | None = None,
    on_crash: Callable[[Check[_Ctx], BaseException, str], None] | None = None,
) -> list[Finding]:
    """Every check's findings, in order. A check that raises (even after yielding some rows) adds a
    FAIL row for its component and the runner carries on with the next one."""
    findings: list[Finding] = []

    def add(finding: Finding) -> None:
        findings.append(finding)
        if on_finding is not None:
            on_finding(finding)

    for check in checks:
        produced = 0
        try:
            for finding in check.run(context):
                produced += 1
                add(finding)
        except Exception as exc:
            if on_crash is not None:
                on_crash(check, exc, traceback.format_exc())
            add(failed(check.component, check.description, describe_exception(exc), check.remedy))
            continue
        if produced == 0:
            add(failed(check.component, check.description, "the check reported nothing", check.remedy))
    return findings


def all_passed(findings: Sequence[Finding]) -> bool:
    return bool(findings) and all(f.passed for f in findings)


def _note(finding: Finding) -> str:
    if finding.passed:
        return finding.detail
    return f"{finding.detail} -> {finding.remedy}" if finding.remedy else finding.detail


def render_table(findings: Sequence[Finding], *, width: int | None = None) -> str:
    """An aligned text table: COMPONENT, CHECK, RESULT, and what was seen / what to do.

    The last column is not padded; with ``width``, it wraps under itself so each row stays readable.
    """
    headers = ("COMPONENT", "CHECK", "RESULT", "DETAIL / WHAT TO DO")
    rows = [(_cell(f.component), _cell(f.check), f.result, _cell(_note(f))) for f in findings]
    widths = [max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i]) for i in range(3)]
    indent = sum(widths) + 3 * 2
    lines = []
    for row in (headers, *rows):
        head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3]))
        note_lines = _wrap(row[3], (width - indent) if width else None)
        lines.append(f"{head}  {note_lines[0]}".rstrip())
        lines.extend((" " * indent + more).rstrip() for more in note_lines[1:])
    failed_count = sum(1 for f in findings if not f.passed)
    summary = (
        f"{len(findings)} checks, all passed"
        if failed_count == 0 and findings
        else f"{len(findings)} checks, {failed_count} failed"
    )
    return "\n".join([*lines, "", summary])


def _cell(text: str) -> str:
    """One line: an AWS or Python message may carry newlines, tabs or other separators."""
    return " ".join(str(text).split())


def _wrap(text: str, width: int | None) -> list[str]:
    if not width or width < 20 or len(text) <= width:
        return [text]
    import textwrap

    return textwrap.wrap(text, width) or [""]


def render_json(findings: Sequence[Finding], *, target: str) -> str:
    return json.dumps(
        {"target": target, "ok": all_passed(findings), "findings": [f.to_dict() for f in findings]},
        indent=2,
    )
