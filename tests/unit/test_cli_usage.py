"""`switchboard usage` against moto: totals per tenant and group, JSON and table, clear refusals.

Given a usage table metered through :class:`switchboard.metering.Metering` (as the request path
will), the command run through the real `switchboard` parser prints what was recorded, for one
tenant or all, from `--since` on, grouped by `--by`; a bad `--since` or a target without a usage
table is a clear error, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.contract import tables
from switchboard.metering import Metering, Usage
from switchboard.options.model import Price
from switchboard.usage_store import DynamoUsageStore
from switchboard_local.cli import main as cli_main
from switchboard_local.cli import usage as usage_cli

TABLE = "cli-usage"
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
PRICE = Price(input=1, output=5, cached_input=0.1)


@dataclass
class FakeTarget:
    region: str = "us-east-1"
    usage_table: str | None = TABLE

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


def run(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main.main(["usage", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def target(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTarget]:
    fake = FakeTarget()
    monkeypatch.setattr(usage_cli, "resolve_target", lambda args: fake)
    with mock_aws():
        keys = tables.KEY_SCHEMAS["usage"]
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=True)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
        metering = Metering(DynamoUsageStore(TABLE, client=client), price_of=lambda _: PRICE)
        for tenant, route, key, prompt, cached, completion, at in (
            ("acme", "chat", "k1", 1000, 100, 200, HOUR),
            ("acme", "chat", "k2", 10, 0, 1, HOUR),
            ("acme", "summarize", "k1", 500, 0, 50, HOUR - timedelta(hours=1)),
            ("acme", "chat", "k1", 99, 0, 9, HOUR - timedelta(days=40)),  # before every --since below
            ("globex", "chat", "g1", 7, 0, 0, HOUR),
        ):
            assert metering.record(
                Usage(
                    tenant=tenant,
                    route=route,
                    option_id="claude-haiku-us",
                    key_id=key,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cached_tokens=cached,
                    at=at,
                )
            )
        yield fake


SINCE = (HOUR - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")


def test_json_totals_for_one_tenant_since_a_time(
    target: FakeTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--tenant", "acme", "--since", SINCE, "--json"], capsys)

    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["tenant"] == "acme" and data["by"] is None
    assert data["rows"] == [{"tenant": "acme", **data["total"]}]
    total = data["total"]
    assert (
        total["prompt_tokens"],
        total["completion_tokens"],
        total["cached_tokens"],
        total["requests"],
    ) == (
        1510,
        251,
        100,
        3,
    )
    # 1410 uncached at $1 + 100 cached at $0.10 + 251 out at $5, per million tokens
    assert Decimal(total["cost_usd"]) == Decimal("0.002675")


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("route", {"chat": 2, "summarize": 1}),
        ("key", {"k1": 2, "k2": 1}),
        ("option", {"claude-haiku-us": 3}),
    ],
)
def test_json_rows_grouped_by(
    target: FakeTarget, capsys: pytest.CaptureFixture[str], by: str, expected: dict[str, int]
) -> None:
    code, out, _ = run(["--tenant", "acme", "--since", SINCE, "--by", by, "--json"], capsys)
    assert code == 0
    assert {row[by]: row["requests"] for row in json.loads(out)["rows"]} == expected


def test_every_tenant_by_hour_and_the_since_hour_bounds_the_rows(
    target: FakeTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["--since", HOUR.isoformat(), "--by", "hour", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)["rows"]
    assert {(r["tenant"], r["hour"], r["requests"]) for r in rows} == {
        ("acme", HOUR.strftime("%Y-%m-%dT%H"), 2),
        ("globex", HOUR.strftime("%Y-%m-%dT%H"), 1),
    }


def test_the_table_shows_rows_and_a_total(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--since", SINCE, "--by", "route"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("usage since ")
    assert lines[1].split() == ["tenant", "route", *usage_cli.COLUMNS]
    assert [line.split()[:2] for line in lines[2:5]] == [
        ["acme", "chat"],
        ["acme", "summarize"],
        ["globex", "chat"],
    ]
    assert lines[-1].split()[0] == "total" and lines[-1].split()[4] == "4"


def test_the_default_since_is_the_start_of_the_month() -> None:
    assert usage_cli.start_of_month(datetime(2026, 11, 30, 8, 41, tzinfo=UTC)) == datetime(
        2026, 11, 1, tzinfo=UTC
    )


@pytest.mark.parametrize("argv", [["--since", "yesterday"], ["--by", "model"], ["--tenant", " "]])
def test_bad_arguments_are_refused_by_the_parser(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main.main(["usage", *argv])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_a_future_since_is_refused(target: FakeTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--since", "2999-01-01"], capsys)
    assert code == 2 and "in the future" in err


def test_a_target_without_a_usage_table_says_what_to_do(
    target: FakeTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    target.usage_table = None
    code, _, err = run(["--json"], capsys)
    assert code == 2 and "no usage table" in err


def test_an_aws_error_is_one_line_not_a_traceback(
    target: FakeTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    target.usage_table = "no-such-table"
    code, _, err = run(["--tenant", "acme"], capsys)
    assert code == 1 and "AWS error ResourceNotFoundException" in err
