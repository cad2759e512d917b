"""`switchboard limits …` and `switchboard budgets …` against moto, with a fake target."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.quotas.dynamo import DynamoUsageCounters
from switchboard.quotas.model import TenantLimits
from switchboard.quotas.service import BudgetBook, QuotaSettingsStore, RateLimiter
from switchboard_local.cli import main as cli_main
from switchboard_local.cli import quotas as quotas_cli
from tests.unit.test_quota_counters_dynamo import create_usage_table

TABLE = "cli-usage"


@dataclass
class FakeTarget:
    region: str = "us-east-1"
    usage_table: str | None = TABLE

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


def run(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Through the real entry point, as `switchboard …` runs it."""
    code = cli_main.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def target(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTarget]:
    monkeypatch.setattr("getpass.getuser", lambda: "tester")
    fake = FakeTarget()
    monkeypatch.setattr(quotas_cli, "resolve_target", lambda args: fake)
    with mock_aws():
        create_usage_table(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
        yield fake


def counters() -> DynamoUsageCounters:
    return DynamoUsageCounters(TABLE, client=boto3.client("dynamodb", region_name="us-east-1"))


def test_limits_set_then_show(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["limits", "set", "--tenant", "acme", "--rpm", "60", "--tpm", "100000", "--json"], capsys
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {"tenant": "acme", "limits": {"rpm": 60, "tpm": 100000}}
    stored = QuotaSettingsStore(counters()).get("acme").limits
    assert (stored.rpm, stored.tpm) == (60, 100000)

    # only what is given changes; 'off' removes a limit
    code, out, _ = run(["limits", "set", "--tenant", "acme", "--rpm", "off"], capsys)
    assert code == 0 and out.strip() == "tenant acme: rpm no limit, tpm 100000 tokens per minute"

    RateLimiter(counters()).admit("acme", TenantLimits(tpm=100000), 250)
    code, out, _ = run(["limits", "show", "--tenant", "acme", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0
    assert shown["limits"] == {"tpm": 100000}
    assert (shown["current_minute"]["requests"], shown["current_minute"]["tokens"]) == (1, 250)
    assert 1 <= shown["current_minute"]["resets_in_s"] <= 60
    code, out, _ = run(["limits", "show", "--tenant", "acme"], capsys)
    assert "tpm: 100000 tokens per minute (used 250)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tenant", "acme"], "give --rpm and/or --tpm"),
        (["--tenant", "acme", "--rpm", "ten"], "--rpm must be a whole number, got 'ten'"),
        (["--tenant", "acme", "--tpm", "0"], "--tpm must be between 1 and"),
        (["--tenant", "acme", "--tpm", "-4"], "--tpm must be between 1 and"),
        (["--tenant", "acme", "--rpm", "2.5"], "--rpm must be a whole number"),
        (["--tenant", "Acme Corp", "--rpm", "5"], "invalid tenant 'Acme Corp'"),
    ],
)
def test_limits_set_refuses_bad_knobs_by_name(
    target: FakeTarget, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(["limits", "set", *argv], capsys)
    assert code == 1 and out == ""
    assert err.startswith("switchboard limits: ") and message in err
    assert QuotaSettingsStore(counters()).get("acme").limits.to_dict() == {}


def test_budgets_set_then_show(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["budgets", "set", "--tenant", "acme", "--tokens", "1000", "--usd", "12.50", "--period", "month"]
    code, out, err = run([*argv, "--on-exhausted", "reject", "--low-at", "0.75"], capsys)
    assert (code, err) == (0, "")
    assert (
        out.strip() == "tenant acme: 1000 tokens and 12.50 USD per month, low at 75%, rejected when exhausted"
    )
    BudgetBook(counters()).record("acme", "month", tokens=800, usd=Decimal("1.25"))
    code, out, _ = run(["budgets", "show", "--tenant", "acme", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0
    assert shown["budget"] == {
        "period": "month",
        "tokens": 1000,
        "usd": "12.50",
        "on_exhausted": "reject",
        "low_at": 0.75,
    }
    assert shown["spend"] == {"tokens": 800, "usd": "1.25"}
    assert shown["status"] == "low"
    assert shown["resets_at"].endswith("-01T00:00:00Z")
    code, out, _ = run(["budgets", "show", "--tenant", "acme"], capsys)
    assert "spent this month: 800 tokens and 1.25 USD" in out and "status: low" in out

    code, out, _ = run(["budgets", "show", "--tenant", "globex", "--json"], capsys)
    assert json.loads(out) == {"tenant": "globex", "budget": None, "status": "ok"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--period", "day"], "a budget needs --tokens, --usd or both"),
        (["--period", "day", "--tokens", "lots"], "--tokens must be a whole number, got 'lots'"),
        (["--period", "day", "--tokens", "0"], "--tokens must be between 1 and"),
        (["--period", "day", "--usd", "-1"], "--usd must be more than 0"),
        (["--period", "day", "--usd", "5 dollars"], "--usd must be an amount in USD"),
        (["--period", "day", "--usd", "0.0000001"], "--usd has more than 6 decimals"),
        (["--period", "day", "--usd", "5", "--low-at", "80%"], "--low-at must be a share above 0"),
        (["--period", "day", "--usd", "5", "--low-at", "1.5"], "--low-at must be a share above 0"),
        (["--period", "day", "--usd", "5", "--low-at", "0"], "--low-at must be a share above 0"),
    ],
)
def test_budgets_set_refuses_bad_knobs_by_name(
    target: FakeTarget, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(["budgets", "set", "--tenant", "acme", *argv], capsys)
    assert code == 1 and out == ""
    assert err.startswith("switchboard budgets: ") and message in err
    assert QuotaSettingsStore(counters()).get("acme").budget is None


@pytest.mark.parametrize(
    "argv",
    [
        ["budgets", "set", "--tenant", "acme", "--tokens", "5", "--period", "week"],
        ["budgets", "set", "--tenant", "acme", "--tokens", "5"],
        ["budgets", "set", "--tenant", "acme", "--tokens", "5", "--period", "day", "--on-exhausted", "drop"],
        ["limits", "show"],
    ],
)
def test_argparse_refuses_choices_and_missing_flags(
    target: FakeTarget, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_stack_without_a_usage_table_is_named(
    target: FakeTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    target.usage_table = None
    code, _, err = run(["limits", "show", "--tenant", "acme"], capsys)
    assert code == 2 and "has no usage table (output UsageTableName)" in err


def test_the_groups_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main.main(["--help"])
    help_text = capsys.readouterr().out
    assert "limits" in help_text and "budgets" in help_text
