"""`switchboard doctor --local` against the running local stack: all PASS, then a FAIL naming
the component for each part we break (the AppConfig agent emulator, then the circuit table).

The tests share one stack and run in file order: each breaks one more part.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest

from switchboard_local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:No application metrics to publish")]


def doctor(*extra: str) -> tuple[int, dict[str, Any]]:
    from switchboard_local.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["doctor", "--local", "--json", *extra])
    # The stack's handlers run in this process and log to stdout too (one JSON line each): the
    # doctor's report is the indented document.
    text = out.getvalue()
    report, _ = json.JSONDecoder().raw_decode(text, text.index('{\n  "target"'))
    return code, report


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{f['component']} | {f['check']}": f for f in report["findings"]}


def failing(report: dict[str, Any]) -> list[str]:
    return sorted({f["component"] for f in report["findings"] if f["result"] == "FAIL"})


def test_a_healthy_local_stack_passes_every_check(stack: LocalStack) -> None:
    code, report = doctor("--flags-file", str(stack.flags_file))

    assert code == 0, failing(report)
    assert report["ok"] is True
    components = {f["component"] for f in report["findings"]}
    assert {
        "function gateway",
        "function authorizer",
        "function invoke",
        "function circuit",
        "function model_deployment",
        "function model_retirement",
        "appconfig extension",
        "chain chat",
        "options table",
        "keys table",
        "circuit table",
        "request workflow",
        "route chat",
        "route echo",
        "route embed",
        "route summarize",
        "route tuned",
        "api keys",
        "model registry",
        "deployment workflow",
    } <= components
    assert all(f["result"] == "PASS" for f in report["findings"])


def test_the_table_is_printed_without_json(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard_local.cli.main import main

    code = main(["doctor", "--local", "--flags-file", str(stack.flags_file)])

    lines = capsys.readouterr().out.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("COMPONENT")) :]
    assert code == 0
    assert table[0].split() == ["COMPONENT", "CHECK", "RESULT", "DETAIL", "/", "WHAT", "TO", "DO"]
    assert table[-1].endswith("all passed")


def test_nothing_of_the_temporary_key_is_left(stack: LocalStack) -> None:
    doctor("--flags-file", str(stack.flags_file))

    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url)
    assert stack.resources is not None
    tenants = [i["tenant"]["S"] for i in ddb.scan(TableName=stack.resources.keys_table)["Items"]]
    assert "switchboard-doctor" not in tenants
    apigateway = boto3.client("apigateway", region_name="us-east-1", endpoint_url=stack.aws_url)
    assert all("switchboard-doctor" not in k["name"] for k in apigateway.get_api_keys()["items"])


def test_a_stopped_agent_emulator_fails_naming_the_appconfig_component(stack: LocalStack) -> None:
    stack.agent.stop()

    code, report = doctor("--flags-file", str(stack.flags_file))

    assert code == 1
    found = rows(report)
    agent = found["appconfig extension | serves the deployed flag document to the gateway"]
    assert agent["result"] == "FAIL"
    assert "does not answer /ping" in agent["detail"]
    assert "restart `make local`" in agent["remedy"]
    completion, embedding = "answers a completion (max_tokens 5)", "answers an embedding of one text"
    for route in ("chat", "echo", "embed", "summarize", "tuned"):
        answer = found[f"route {route} | {embedding if route == 'embed' else completion}"]
        assert answer["result"] == "FAIL"
        assert "last-known-good routing" in answer["detail"]
    assert failing(report) == [
        "appconfig extension",
        "route chat",
        "route echo",
        "route embed",
        "route summarize",
        "route tuned",
    ]


def test_a_deleted_circuit_table_fails_naming_it(stack: LocalStack) -> None:
    assert stack.resources is not None
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url)
    ddb.delete_table(TableName=stack.resources.circuit_table)

    code, report = doctor("--flags-file", str(stack.flags_file))

    assert code == 1
    circuit = rows(report)["circuit table | active and readable (DescribeTable, GetItem)"]
    assert circuit["result"] == "FAIL"
    assert "ResourceNotFoundException" in circuit["detail"]
    assert "circuit table" in failing(report)
    assert rows(report)["options table | active and readable (DescribeTable, GetItem)"]["result"] == "PASS"


def test_no_local_stack_is_exit_2(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from switchboard_local.cli.main import main

    monkeypatch.setattr("switchboard_local.cli.target.LOCAL_STATE_FILE", tmp_path / "none.json")

    assert main(["doctor", "--local"]) == 2
