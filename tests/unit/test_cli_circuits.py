"""`switchboard circuits …` against moto, with a fake target (the real Target has no circuit table yet)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.circuits.policy import Outcome
from switchboard.circuits.store import CircuitStore
from switchboard.contract.workflow import TIMESTAMP_FORMAT
from switchboard.options.model import BreakerPolicy
from switchboard_local.cli import circuits as circuits_cli
from switchboard_local.cli.target import TargetError

TABLE = "cli-circuits"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass
class FakeTarget:
    region: str = "us-east-1"
    circuit_table: str | None = TABLE

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


def run(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="switchboard")
    sub = parser.add_subparsers(dest="group", required=True)
    circuits_cli.register(sub)
    args = parser.parse_args(list(argv))
    try:
        code: int = args.func(args)
    except TargetError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        code = 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def target(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTarget]:
    monkeypatch.setattr("getpass.getuser", lambda: "tester")
    fake = FakeTarget()
    monkeypatch.setattr(circuits_cli, "resolve_target", lambda args: fake)
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield fake


def test_parse_duration() -> None:
    assert circuits_cli.parse_duration("10m") == timedelta(minutes=10)
    assert circuits_cli.parse_duration("45") == timedelta(seconds=45)
    assert circuits_cli.parse_duration("2h") == timedelta(hours=2)
    for bad in ("", "0m", "10x", "-5s", "1.5m"):
        with pytest.raises(argparse.ArgumentTypeError):
            circuits_cli.parse_duration(bad)


def test_list_empty_then_open_for_duration(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["circuits", "list"], capsys)
    assert code == 0 and json.loads(out) == []

    before = datetime.now(UTC)
    code, out, _ = run(["circuits", "open", "opt-a", "--for", "10m", "--reason", "provider incident"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["transition"] == "forced_open" and result["to_state"] == "OPEN"
    assert result["sticky"] is False and ISO.match(result["open_until"])
    until = datetime.strptime(result["open_until"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    assert timedelta(minutes=9, seconds=58) <= until - before <= timedelta(minutes=10, seconds=2)

    code, out, _ = run(["circuits", "list"], capsys)
    (row,) = json.loads(out)
    assert row["option_id"] == "opt-a" and row["state"] == "OPEN" and row["forced"] == "open"
    assert row["open_until"] == result["open_until"] and row["forced_by"] == "cli:tester"


def test_default_duration_is_15_minutes(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)
    code, out, _ = run(["circuits", "close", "opt-b"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["transition"] == "forced_closed"
    until = datetime.strptime(result["forced_until"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    assert timedelta(minutes=14, seconds=58) <= until - before <= timedelta(minutes=15, seconds=2)


def test_sticky_and_exclusive_flags(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["circuits", "open", "opt-s", "--sticky"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["sticky"] is True and result["open_until"] == "9999-12-31T23:59:59Z"
    with pytest.raises(SystemExit):
        run(["circuits", "open", "opt-s", "--sticky", "--for", "5m"], capsys)
    with pytest.raises(SystemExit):
        run(["circuits", "open", "opt-s", "--for", "soon"], capsys)


def test_show_timeline_oldest_first(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    store = CircuitStore(TABLE, client=target.client("dynamodb"), cache_ttl_s=0)
    policy = BreakerPolicy(failure_threshold=2, window_s=60)
    for request in ("req-0", "req-1"):
        store.record(
            "opt-t", policy, Outcome(False, "unavailable", message="503"), actor=f"workflow:{request}"
        )
    run(["circuits", "close", "opt-t", "--sticky", "--reason", "false alarm"], capsys)

    code, out, _ = run(["circuits", "show", "opt-t"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "opt-t: CLOSED"
    assert any(line.strip().startswith("forced       closed (sticky) by cli:tester") for line in lines)
    timeline = [line.strip() for line in lines[lines.index("timeline:") + 1 :]]
    assert len(timeline) == 2
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  CLOSED → OPEN  by workflow:req-1  "
        r"\(2 failures in 60s: unavailable\)  until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
        timeline[0],
    ), timeline[0]
    assert re.match(
        r"^\S+  OPEN → CLOSED  by cli:tester  \(forced closed sticky: false alarm\)$", timeline[1]
    )

    code, out, _ = run(["circuits", "show", "opt-t", "--json"], capsys)
    data = json.loads(out)
    assert data["state"] == "CLOSED" and data["forced"] == "closed" and data["forced_until"] is None
    assert [e["to_state"] for e in data["events"]] == ["OPEN", "CLOSED"]
    assert data["last_error"] == "unavailable: 503"


def test_show_unknown_option_is_closed(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["circuits", "show", "never-seen"], capsys)
    assert code == 0
    assert out.splitlines() == ["never-seen: CLOSED", "timeline: (no transitions recorded)"]


def test_target_without_circuit_table(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    target.circuit_table = None
    code, _, err = run(["circuits", "list"], capsys)
    assert code == 2 and "no circuit table" in err


def test_aws_error_is_one_line(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    target.circuit_table = "missing-table"
    code, _, err = run(["circuits", "open", "x"], capsys)
    assert code == 1 and err.startswith("switchboard circuits: AWS error ResourceNotFoundException")


def test_release_ends_a_sticky_force(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(["circuits", "open", "opt-r", "--sticky", "--reason", "incident"], capsys)
    assert code == 0

    before = datetime.now(UTC).replace(microsecond=0)
    code, out, _ = run(["circuits", "release", "opt-r", "--reason", "provider healthy"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["transition"] == "released" and result["state"] == "OPEN"
    assert result["reason"] == "forced open released: provider healthy"
    released_at = datetime.strptime(result["open_until"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    assert before <= released_at <= datetime.now(UTC)

    # The stored circuit now lets the next request probe, and the timeline says who released it.
    store = CircuitStore(TABLE, client=target.client("dynamodb"), cache_ttl_s=0)
    decision = store.acquire_probe("opt-r", BreakerPolicy(), owner="req-1", actor="workflow")
    assert decision.granted and decision.state.value == "HALF_OPEN"
    code, out, _ = run(["circuits", "show", "opt-r", "--json"], capsys)
    events = json.loads(out)["events"]
    assert any(e["transition"] == "released" and e["actor"] == "cli:tester" for e in events)

    # Nothing is forced any more: a second release says so and fails.
    code, out, err = run(["circuits", "release", "opt-r"], capsys)
    assert code == 1 and out == "" and "not forced" in err
