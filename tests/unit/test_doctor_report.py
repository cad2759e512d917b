"""The doctor's runner, table and JSON: one crashing check never hides the others."""

from __future__ import annotations

import json
from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from switchboard_local.doctor.report import (
    Check,
    Finding,
    all_passed,
    describe_exception,
    failed,
    guarded,
    passed,
    render_json,
    render_table,
    run_checks,
)


def _ok(_: object) -> Iterator[Finding]:
    yield passed("options table", "readable", "switchboard-options")


def _boom(_: object) -> Iterator[Finding]:
    raise ConnectionError("endpoint refused")


def _half(_: object) -> Iterator[Finding]:
    yield passed("function gateway", "initialises", "ok")
    raise RuntimeError("second function exploded")


def _silent(_: object) -> Iterator[Finding]:
    return iter(())


def test_a_crashing_check_is_a_fail_row_naming_its_component_and_the_next_check_still_runs() -> None:
    checks = [
        Check("appconfig extension", "serves the flags", _boom, remedy="restart the agent"),
        Check("tables", "readable", _ok),
    ]

    findings = run_checks(checks, context=None)

    assert [(f.component, f.result) for f in findings] == [
        ("appconfig extension", "FAIL"),
        ("options table", "PASS"),
    ]
    assert findings[0].detail == "ConnectionError: endpoint refused"
    assert findings[0].remedy == "restart the agent"
    assert not all_passed(findings)


def test_rows_yielded_before_a_crash_are_kept_and_the_crash_is_added() -> None:
    crashes: list[str] = []

    findings = run_checks(
        [Check("functions", "initialise", _half)],
        context=None,
        on_crash=lambda check, exc, trace: crashes.append(check.component),
    )

    assert [(f.component, f.result) for f in findings] == [
        ("function gateway", "PASS"),
        ("functions", "FAIL"),
    ]
    assert crashes == ["functions"]


def test_a_check_that_reports_nothing_fails() -> None:
    findings = run_checks([Check("model registry", "groups readable", _silent)], context=None)

    assert [(f.component, f.result) for f in findings] == [("model registry", "FAIL")]


def test_guarded_turns_one_items_crash_into_its_own_row() -> None:
    def body() -> Iterator[Finding]:
        raise KeyError("Payload")

    rows = list(guarded("function invoke", "initialises", "read its logs", body))

    assert rows == [failed("function invoke", "initialises", "KeyError: 'Payload'", "read its logs")]


def test_aws_errors_are_described_by_their_code() -> None:
    from botocore.exceptions import ClientError

    error = ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}}, "GetItem"
    )

    assert describe_exception(error) == "AWS ResourceNotFoundException: Requested resource not found"


def test_all_passed_needs_at_least_one_row() -> None:
    assert not all_passed([])
    assert all_passed([passed("a", "b")])


def test_table_is_aligned_and_says_what_to_do_on_failure() -> None:
    findings = [
        passed("function gateway", "initialises", "python 3.13.1"),
        failed("circuit table", "readable", "AWS ResourceNotFoundException: gone", "restart `make local`"),
    ]

    lines = render_table(findings).splitlines()

    header, first, second = lines[0], lines[1], lines[2]
    assert header.index("RESULT") == first.index("PASS") == second.index("FAIL")
    assert header.index("CHECK") == first.index("initialises") == second.index("readable")
    assert second.endswith("AWS ResourceNotFoundException: gone -> restart `make local`")
    assert lines[-1] == "2 checks, 1 failed"


def test_table_wraps_long_notes_under_their_column() -> None:
    findings = [failed("api", "GET /v1/models", "x " * 60, "do y")]

    lines = render_table(findings, width=80).splitlines()

    column = lines[0].index("DETAIL")
    continuation = lines[2]
    assert len(lines) > 4
    assert continuation[:column].strip() == ""
    assert all(len(line) <= 80 for line in lines[1:-2])


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=30),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_every_row_has_its_verdict_in_the_result_column(rows: list[tuple[str, bool]]) -> None:
    findings = [Finding(name, "check", ok, "detail", "remedy") for name, ok in rows]

    lines = render_table(findings).splitlines()

    column = lines[0].index("RESULT")
    for line, finding in zip(lines[1:], findings, strict=False):
        assert line[column : column + 4] == finding.result


def test_messages_with_line_breaks_stay_on_their_row() -> None:
    findings = [failed("function gateway", "initialises", "Traceback:\n  line 1\r\n\tline 2", "read\nlogs")]

    lines = render_table(findings).splitlines()

    assert len(lines) == 4  # header, the row, a blank line, the summary
    assert lines[1].endswith("Traceback: line 1 line 2 -> read logs")


def test_json_lists_every_finding_and_the_overall_verdict() -> None:
    findings = [passed("a", "b", "c"), failed("d", "e", "f", "g")]

    data = json.loads(render_json(findings, target="local stack"))

    assert data["ok"] is False
    assert data["target"] == "local stack"
    assert data["findings"][1] == {
        "component": "d",
        "check": "e",
        "passed": False,
        "result": "FAIL",
        "detail": "f",
        "remedy": "g",
    }
