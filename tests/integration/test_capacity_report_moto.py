"""`switchboard capacity report` end to end on moto, with Service Quotas through botocore's Stubber.

Given the usage table written by the real write paths (capacity windows taken by
:class:`CapacityCounters` over DynamoDB, hours recorded by :class:`Metering`), the options table,
per-option ``ProviderCalls`` in moto's CloudWatch and a flag document, the command run through the
real parser reads every source and prints the documented JSON and a table. moto has no
``ListServiceQuotas`` (5.2 implements only the AWS default quotas and ``GetServiceQuota``), so a
real Service Quotas client answers through a Stubber: it checks our request and its canned
answer against the service model, paging included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from switchboard.capacity_sources import CloudWatchProviderCalls, DynamoCapacityWindows
from switchboard.contract import metrics as metric_names
from switchboard.contract import tables
from switchboard.metering import Metering, Usage
from switchboard.options.model import LlmOption
from switchboard.options.store import OptionsStore
from switchboard.quotas.dynamo import DynamoUsageCounters
from switchboard.quotas.service import CapacityCounters
from switchboard.usage_store import DynamoUsageStore
from switchboard_local.cli import capacity as capacity_cli
from switchboard_local.cli import main as cli_main
from switchboard_local.cli.target import Target

REGION = "us-east-1"
USAGE = "cap-usage"
OPTIONS = "cap-options"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOW = datetime.now(UTC)
BUSY_MINUTE = (NOW - timedelta(minutes=20)).replace(second=5, microsecond=0)
QUIET_MINUTE = BUSY_MINUTE + timedelta(minutes=1)
CW_MINUTE = (NOW - timedelta(hours=3)).replace(second=0, microsecond=0)

QUOTA_PAGES: list[dict[str, Any]] = [
    {
        "Quotas": [
            {
                "ServiceCode": "bedrock",
                "ServiceName": "Amazon Bedrock",
                "QuotaArn": f"arn:aws:servicequotas:{REGION}:123456789012:bedrock/L-RH3",
                "QuotaCode": "L-RH3",
                "QuotaName": "On-demand model inference requests per minute for Anthropic Claude 3 Haiku",
                "Value": 5.0,
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        ],
        "NextToken": "page-2",
    },
    {
        "Quotas": [
            {
                "ServiceCode": "bedrock",
                "ServiceName": "Amazon Bedrock",
                "QuotaArn": f"arn:aws:servicequotas:{REGION}:123456789012:bedrock/L-TH3",
                "QuotaCode": "L-TH3",
                "QuotaName": "On-demand model inference tokens per minute for Anthropic Claude 3 Haiku",
                "Value": 2000000.0,
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        ]
    },
]


def _table(client: Any, name: str, kind: str) -> None:
    keys = tables.KEY_SCHEMAS[kind]
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def target(aws_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        _table(dynamodb, USAGE, "usage")
        _table(dynamodb, OPTIONS, "options")
        OptionsStore(OPTIONS, client=dynamodb, ttl_s=0).seed(
            [
                LlmOption.from_dict(
                    {
                        "id": "haiku",
                        "provider": "bedrock",
                        "model": HAIKU,
                        "capacity": {"rpm": 4, "tpm": 100000},
                    }
                ),
                LlmOption.from_dict({"id": "mock-b", "provider": "mock"}),
            ],
            updated_by="test",
        )
        # Capacity windows through the real take path: 3 requests in the busy minute, 1 after it.
        for moment, calls in ((BUSY_MINUTE, 3), (QUIET_MINUTE, 1)):
            counters = CapacityCounters(DynamoUsageCounters(USAGE, client=dynamodb), clock=lambda m=moment: m)
            for _ in range(calls):
                taken = counters.take("haiku", 400, rpm=4, tpm=100000)
                assert taken is not None
                counters.reconcile(taken, 1000)  # the real usage replaces the estimate
        metering = Metering(DynamoUsageStore(USAGE, client=dynamodb))
        for option_id, prompt in (("haiku", 700), ("mock-b", 300), ("mock-b", 300)):
            assert metering.record(
                Usage(
                    tenant="acme",
                    route="chat",
                    option_id=option_id,
                    key_id="k1",
                    prompt_tokens=prompt,
                    completion_tokens=300,
                    at=NOW - timedelta(hours=2),
                )
            )
        boto3.client("cloudwatch", region_name=REGION).put_metric_data(
            Namespace=metric_names.NAMESPACE,
            MetricData=[
                {
                    "MetricName": metric_names.PROVIDER_CALLS,
                    "Dimensions": [
                        {"Name": metric_names.SERVICE_DIMENSION, "Value": metric_names.SERVICE},
                        {"Name": metric_names.OPTION_DIMENSION, "Value": "mock-b"},
                    ],
                    "Timestamp": CW_MINUTE + timedelta(seconds=s),
                    "Value": 1.0,
                    "Unit": "Count",
                }
                for s in range(0, 42, 6)  # seven calls in one minute
            ],
        )
        flags_file = tmp_path / "flags.json"
        flags_file.write_text(
            json.dumps(
                {
                    "version": "1",
                    "flags": {"chat": {"attributes": {"chain": {}}}},
                    "values": {"chat": {"enabled": True, "chain": ["haiku", "mock-b"]}},
                }
            )
        )
        resolved = Target(
            region=REGION,
            options_table=OPTIONS,
            keys_table="unused",
            usage_table=USAGE,
            flags_file=str(flags_file),
        )
        monkeypatch.setattr(capacity_cli, "resolve_target", lambda args: resolved)
        yield resolved


@pytest.fixture
def service_quotas(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("service-quotas", region_name=REGION)
    stubber = Stubber(client)
    for page, token in zip(QUOTA_PAGES, (None, "page-2"), strict=True):
        expected: dict[str, Any] = {"ServiceCode": "bedrock", "MaxResults": 100}
        if token:
            expected["NextToken"] = token
        stubber.add_response("list_service_quotas", page, expected)
    asked: list[tuple[str, str]] = []

    def fake_client(service: str, *, region: str, endpoint_url: str | None = None) -> Any:
        asked.append((service, region))
        return client

    monkeypatch.setattr(capacity_cli, "aws_client", fake_client)
    with stubber:
        yield stubber
    assert asked in ([], [("service-quotas", REGION)])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(["capacity", "report", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_report_reads_every_source_of_a_deployed_stack(
    target: Target, service_quotas: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--json", "--hours", "6")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert set(data) == {"since", "until", "headroom_threshold_pct", "sources", "options", "routes", "notes"}
    assert data["sources"] == {
        "capacity_windows": "read",
        "cloudwatch": "read",
        "metering": "read",
        "service_quotas": "read",
    }
    service_quotas.assert_no_pending_responses()  # both pages were read
    haiku, mock_b = data["options"]
    assert set(haiku) == {
        "option",
        "provider",
        "model",
        "region",
        "status",
        "routes",
        "rpm",
        "tpm",
        "suggestions",
    }
    busy = BUSY_MINUTE.strftime("%Y-%m-%dT%H:%M")
    assert haiku["rpm"]["observed"] == {
        "value": 3,
        "basis": "peak_minute",
        "source": "capacity_windows",
        "at": busy,
    }
    assert haiku["tpm"]["observed"]["value"] == 3000  # reconciled to the real usage
    assert haiku["rpm"]["headroom"] == {"limit": 4, "used": 3, "headroom": 1, "headroom_pct": 25.0}
    assert (
        haiku["rpm"]["quota"]["code"] == "L-RH3" and haiku["rpm"]["quota"]["headroom"]["headroom_pct"] == 40.0
    )
    assert haiku["tpm"]["quota"]["code"] == "L-TH3"
    # The mock option has no windows: its calls come from CloudWatch, its tokens from metering
    assert mock_b["rpm"]["observed"] == {
        "value": 7,
        "basis": "peak_minute",
        "source": "cloudwatch",
        "at": CW_MINUTE.strftime("%Y-%m-%dT%H:%M"),
    }
    assert mock_b["tpm"]["observed"]["basis"] == "hourly_average" and mock_b["tpm"]["observed"]["value"] == 20
    assert mock_b["tpm"]["quota"]["matched"] is False
    assert [s["code"] for s in mock_b["suggestions"]] == ["set_capacity"]
    (route,) = data["routes"]
    assert route["options"] == ["haiku", "mock-b"] and route["rpm"]["capacity"] is None
    assert route["rpm"]["observed"]["value"] == 7  # the busiest minute of the two options together


def test_table_output_names_the_tight_option_and_what_would_help(
    target: Target, service_quotas: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--hours", "6", "--headroom-below", "30")
    assert code == 0
    assert "rpm peak" in out and "quota headroom" in out
    assert f"[cross_region_profile] haiku: call the cross-region inference profile us.{HAIKU}" in out
    assert "service_quotas: read" in out


def test_local_reads_the_usage_table_only(target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--local", "--json", "--since", (NOW - timedelta(hours=6)).isoformat())
    assert code == 0
    data = json.loads(out)
    assert data["sources"]["cloudwatch"].startswith("not read: --local")
    assert data["sources"]["service_quotas"].startswith("not read: --local")
    assert data["options"][0]["rpm"]["quota"] is None


def test_unreadable_routes_are_a_note_and_the_options_still_report(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    # A deployed stack whose AppConfig application is gone (or that the caller may not read)
    target.appconfig = {"application_id": "gone1", "environment_id": "gone2", "profile_id": "gone3"}
    code, out, _ = run(capsys, "--local", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["routes"] == [] and [o["option"] for o in data["options"]] == ["haiku", "mock-b"]
    assert data["notes"][0].startswith("routes not read:")


def test_bad_periods_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--hours", "0"],
        ["--hours", "x"],
        ["--since", "yesterday"],
        ["--since", "2026-01-01", "--hours", "1"],
    ):
        with pytest.raises(SystemExit) as exit_:
            cli_main.main(["capacity", "report", *argv])
        assert exit_.value.code == 2
    assert "--hours" in capsys.readouterr().err


def test_adapters_page_through_dynamodb_and_cloudwatch(target: Target) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    readings = DynamoCapacityWindows(USAGE, client=dynamodb).minutes("haiku", since=NOW - timedelta(hours=1))
    assert [(r.requests, r.tokens) for r in readings] == [(3, 3000), (1, 1000)]
    assert DynamoCapacityWindows(USAGE, client=dynamodb).minutes("haiku", since=QUIET_MINUTE) == readings[1:]
    calls = CloudWatchProviderCalls(boto3.client("cloudwatch", region_name=REGION)).minutes(
        ["haiku", "mock-b"], since=NOW - timedelta(hours=6), until=NOW
    )
    assert calls["haiku"] == []
    assert [(r.minute, r.requests, r.tokens) for r in calls["mock-b"]] == [
        (CW_MINUTE.strftime("%Y-%m-%dT%H:%M"), 7, None)
    ]
