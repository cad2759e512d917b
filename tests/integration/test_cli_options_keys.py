"""`switchboard options …` and `switchboard keys …` end to end against moto, through `--local`."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import switchboard_local.cli.target as target_mod
from switchboard.keys import hash_key
from switchboard_local.cli import keys as keys_cli
from switchboard_local.cli import options as options_cli
from switchboard_local.cli.target import Target, TargetError, write_local_state

OPTIONS_TABLE = "cli-options"
KEYS_TABLE = "cli-keys"
SEED_FILE = Path(__file__).resolve().parents[2] / "config" / "options.json"
FLAGS_FILE = SEED_FILE.with_name("flags.json")


def _fallback_main(argv: Sequence[str]) -> int:
    """Only the two groups under test, wired like cli/main.py, if main cannot be imported."""
    parser = argparse.ArgumentParser(prog="switchboard")
    sub = parser.add_subparsers(dest="group", required=True)
    options_cli.register(sub)
    keys_cli.register(sub)
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except TargetError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    return result


def _entry_point() -> Callable[[Sequence[str]], int]:
    try:
        from switchboard_local.cli.main import main
    except ImportError:  # another group module is not there yet
        return _fallback_main
    return main


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def aws(aws_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr("getpass.getuser", lambda: "tester")
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for table, pk in ((OPTIONS_TABLE, "id"), (KEYS_TABLE, "key_hash")):
            ddb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
        apigw = boto3.client("apigateway", region_name="us-east-1")
        plan = apigw.create_usage_plan(name="premium")
        state = tmp_path / ".switchboard" / "local.json"
        write_local_state(
            Target(
                region="us-east-1",
                options_table=OPTIONS_TABLE,
                keys_table=KEYS_TABLE,
                endpoint_url=None,
                usage_plans={"standard": "", "premium": plan["id"]},
            ),
            path=state,
        )
        monkeypatch.setattr(target_mod, "LOCAL_STATE_FILE", state)
        yield {"ddb": ddb, "apigw": apigw, "plan_id": plan["id"], "state": state}


@pytest.fixture
def run(aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    main = _entry_point()

    def _run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = main([*argv, "--local"])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


MOCK = {"id": "mock-cli", "provider": "mock", "params": {"error_rate": 0.5}, "timeout_ms": 4000}


def test_options_put_get_list_delete(run: Run, tmp_path: Path) -> None:
    # Create from a file
    path = tmp_path / "opt.json"
    path.write_text(json.dumps(MOCK))
    code, out, err = run("options", "put", str(path))
    assert code == 0, err
    stored = json.loads(out)
    assert stored["version"] == 1 and stored["updated_by"] == "cli:tester"
    assert stored["params"] == {"error_rate": 0.5}
    # get prints the object
    code, out, _ = run("options", "get", "mock-cli")
    assert code == 0 and json.loads(out) == stored
    # Update from stdin with the version read
    code, out, err = run("options", "put", "-", stdin=json.dumps({**stored, "timeout_ms": 4500}))
    assert code == 0, err
    assert json.loads(out)["version"] == 2
    # list prints an array
    code, out, _ = run("options", "list")
    assert code == 0 and [o["id"] for o in json.loads(out)] == ["mock-cli"]
    # delete with a stale version fails, with the right one succeeds
    code, _, err = run("options", "delete", "mock-cli", "--version", "1")
    assert code == 1 and "version 2, not 1" in err
    code, out, _ = run("options", "delete", "mock-cli", "--version", "2")
    assert code == 0 and json.loads(out) == {"deleted": "mock-cli"}
    code, _, err = run("options", "get", "mock-cli")
    assert code == 1 and "not found" in err
    code, _, err = run("options", "delete", "mock-cli")
    assert code == 1 and "not found" in err


def test_options_put_array_of_seed(run: Run) -> None:
    code, out, err = run("options", "put", str(SEED_FILE))
    assert code == 0, err
    assert len(json.loads(out)) == len(json.loads(SEED_FILE.read_text()))


def test_options_list_shows_task_and_capabilities_and_filters_by_task(run: Run) -> None:
    code, _, err = run("options", "put", str(SEED_FILE))
    assert code == 0, err
    code, out, _ = run("options", "list")
    listed = {o["id"]: o for o in json.loads(out)}
    assert listed["claude-haiku-us"]["task"] == "chat"
    assert listed["claude-haiku-us"]["capabilities"] == ["images", "json_object", "json_schema", "tools"]
    assert listed["titan-embed-v2-us"]["task"] == "embeddings"
    assert "capabilities" not in listed["titan-embed-v2-us"]  # not declared
    code, out, _ = run("options", "list", "--task", "embeddings")
    assert code == 0
    assert sorted(o["id"] for o in json.loads(out)) == ["cohere-embed-us", "mock-embed", "titan-embed-v2-us"]
    code, out, _ = run("options", "list", "--task", "chat")
    assert "mock-embed" not in {o["id"] for o in json.loads(out)}


def test_options_put_existing_without_version_is_refused(run: Run) -> None:
    assert run("options", "put", "-", stdin=json.dumps(MOCK))[0] == 0
    code, out, err = run("options", "put", "-", stdin=json.dumps({**MOCK, "timeout_ms": 9000}))
    assert code == 1 and out == ""
    assert "already exists at version 1" in err and '"version": 1' in err
    # A stale version is refused too
    assert run("options", "put", "-", stdin=json.dumps({**MOCK, "version": 1}))[0] == 0
    code, _, err = run("options", "put", "-", stdin=json.dumps({**MOCK, "version": 1}))
    assert code == 1 and "is at version 2, not 1" in err


def test_options_put_reports_every_validation_error(run: Run, aws: dict[str, Any]) -> None:
    bad = [
        {"id": "b", "provider": "bedrock"},
        {"id": "m", "provider": "mock", "params": {"api_key": "sk-secret-999"}},
        {"id": "s", "provider": "openai_compatible", "base_url": "http://x", "model": "m", "secret_arn": "x"},
        {"id": "r", "provider": "mock", "params": {"error_rate": 2}},
        MOCK,
    ]
    code, out, err = run("options", "put", "-", stdin=json.dumps(bad))
    assert code == 1 and out == ""
    assert "4 validation error(s); nothing was written" in err
    fragments = ("entry 0 (id 'b')", "entry 1 (id 'm')", "entry 2 (id 's'): secret_arn", "entry 3 (id 'r')")
    for fragment in fragments:
        assert fragment in err
    assert "sk-secret-999" not in err
    assert aws["ddb"].scan(TableName=OPTIONS_TABLE)["Items"] == []
    code, _, err = run("options", "put", "-", stdin="{not json")
    assert code == 1 and "not valid JSON" in err


def test_keys_create_list_revoke(run: Run, aws: dict[str, Any]) -> None:
    # create (premium has a usage plan in the state file)
    code, out, err = run("keys", "create", "--tenant", "acme", "--tier", "premium")
    assert code == 0, err
    created = json.loads(out)
    key, key_id = created["key"], created["key_id"]
    assert key.startswith("sk-switchboard-") and "cannot be shown again" in err
    assert created["api_key_id"]
    plan_keys = aws["apigw"].get_usage_plan_keys(usagePlanId=aws["plan_id"])["items"]
    assert [k["id"] for k in plan_keys] == [created["api_key_id"]]
    # standard has no usage plan here: no API Gateway key
    code, out, _ = run("keys", "create", "--tenant", "beta", "--tier", "standard", "--route", "chat")
    assert code == 0
    beta = json.loads(out)
    assert beta["api_key_id"] is None and beta["allowed_routes"] == ["chat"]
    # list never shows a key or hash
    code, out, _ = run("keys", "list")
    assert code == 0
    listed = json.loads(out)
    assert {r["key_id"] for r in listed} == {key_id, beta["key_id"]}
    assert key not in out and beta["key"] not in out and hash_key(key) not in out
    code, out, _ = run("keys", "list", "--tenant", "acme")
    assert [r["key_id"] for r in json.loads(out)] == [key_id]
    # revoke disables the API Gateway key too
    code, out, _ = run("keys", "revoke", key_id)
    assert code == 0 and json.loads(out)["status"] == "revoked"
    assert aws["apigw"].get_api_key(apiKey=created["api_key_id"])["enabled"] is False
    code, _, err = run("keys", "revoke", "key_0123456789")
    assert code == 1 and "not found" in err


def test_keys_create_rejects_bad_tenant(run: Run) -> None:
    code, out, err = run("keys", "create", "--tenant", "Bad Tenant", "--tier", "standard")
    assert code == 1 and out == "" and "invalid tenant" in err


def test_keys_create_refuses_a_route_the_flags_do_not_define(run: Run) -> None:
    code, out, err = run(
        "keys",
        "create",
        "--tenant",
        "beta",
        "--tier",
        "standard",
        "--route",
        "chat",
        "--route",
        "no-such-route",
    )

    assert code == 1 and out == ""
    assert "unknown route(s) 'no-such-route'" in err
    # the known ones, and where from
    assert "chat, echo, embed, summarize" in err and "config/flags.json" in err
    assert "kill-switch" not in err  # operator flags are not routes
    code, out, _ = run("keys", "list", "--tenant", "beta")
    assert json.loads(out) == []  # nothing was issued


def test_keys_create_checks_routes_against_the_stacks_own_flag_file(
    run: Run, aws: dict[str, Any], tmp_path: Path
) -> None:
    document = json.loads(FLAGS_FILE.read_text())
    document["flags"]["special"] = document["flags"].pop("chat")
    document["values"]["special"] = document["values"].pop("chat")
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps(document))
    state = json.loads(aws["state"].read_text())
    aws["state"].write_text(json.dumps({**state, "flags_file": str(flags)}))

    code, out, err = run("keys", "create", "--tenant", "beta", "--tier", "standard", "--route", "special")
    assert code == 0, err
    assert json.loads(out)["allowed_routes"] == ["special"]
    code, _, err = run("keys", "create", "--tenant", "beta", "--tier", "standard", "--route", "chat")
    assert code == 1 and "unknown route(s) 'chat'" in err and str(flags) in err


def test_aws_errors_are_messages_not_tracebacks(run: Run, aws: dict[str, Any]) -> None:
    aws["ddb"].delete_table(TableName=KEYS_TABLE)
    code, _, err = run("keys", "list")
    assert code == 1 and "ResourceNotFoundException" in err
    aws["ddb"].delete_table(TableName=OPTIONS_TABLE)
    code, _, err = run("options", "list")
    assert code == 1 and "unreadable" in err


def test_missing_local_state(run: Run, aws: dict[str, Any]) -> None:
    aws["state"].unlink()
    code, _, err = run("options", "list")
    assert code == 2 and "no local stack found" in err
