"""Fail-open is visible: each handler's stores report to the one event sink, whose events leave the
function as EMF metrics under the names the alarms read (switchboard.contract.metrics).

The request path runs in-process over emulated AWS (the `gateway` fixture); a dependency is taken
away mid-traffic and the metrics the functions print (Powertools' EMF, on stdout) are read back.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from switchboard.contract import metrics as metric_names
from tests.conftest import GatewayHarness

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def emitted_metrics(stdout: str) -> Counter[str]:
    """Metric name → total value, over the EMF documents among `stdout`'s lines.

    In-process, the gateway and the workflow's steps share one Powertools `Metrics`, so a name
    emitted twice may leave as one document value `[1, 1]`: count values, not names.
    """
    totals: Counter[str] = Counter()
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    totals[metric["Name"]] += int(sum(value) if isinstance(value, list) else value)
    return totals


@pytest.fixture
def harness(gateway: GatewayHarness, monkeypatch: pytest.MonkeyPatch) -> GatewayHarness:
    """The request path with EMF on: the local stack turns it off (noise on a terminal)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    return gateway


def drop_table(name: str) -> None:
    boto3.client("dynamodb", region_name="us-east-1").delete_table(TableName=name)


def test_the_options_table_lost_mid_traffic_is_served_from_last_known_good_and_counted(
    harness: GatewayHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given traffic that loaded the catalogue
    assert harness.call("POST", "/v1/chat/completions", CHAT)[0] == 200
    # When the options table disappears and the caches come due
    drop_table(harness.resources.options_table)
    harness.refresh_caches()
    capsys.readouterr()
    status, _, _ = harness.call("POST", "/v1/chat/completions", CHAT)
    # Then the request is still answered from the last-known-good catalogue
    assert status == 200
    # And both the gateway and the invoke step said so, as metrics (at least once each: a store
    # whose snapshot is past its TTL may also try a refresh in the background, which fails too)
    names = emitted_metrics(capsys.readouterr().out)
    assert names[metric_names.OPTIONS_LAST_KNOWN_GOOD] >= 2, names
    assert names[metric_names.OPTIONS_REFRESH_FAILED] >= 2, names
    assert names[metric_names.OPTIONS_LAST_KNOWN_GOOD] == names[metric_names.OPTIONS_REFRESH_FAILED], names


def test_an_invoke_step_without_any_catalogue_skips_the_candidate_and_counts_it(
    harness: GatewayHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    from handlers import invoke
    from switchboard_local.emulation import FakeLambdaContext

    drop_table(harness.resources.options_table)
    invoke.forget_cached_state()  # a fresh execution environment: no snapshot to fall back on
    capsys.readouterr()
    event: dict[str, Any] = {
        "option_id": "claude-haiku-us",
        "deadline_ms": time.time() * 1000 + 10_000,
        "request": {"messages": [{"role": "user", "content": "hi"}]},
        "request_id": "req-catalogue-down",
    }

    out = invoke.handler(event, FakeLambdaContext())

    assert out["ok"] is False and out["error"]["error_class"] == "unavailable"
    assert metric_names.OPTIONS_CATALOGUE_UNAVAILABLE in emitted_metrics(capsys.readouterr().out)


def test_the_circuit_step_without_its_table_fails_open_and_counts_it(
    harness: GatewayHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    from handlers import circuit
    from switchboard_local.emulation import FakeLambdaContext

    drop_table(harness.resources.circuit_table)
    capsys.readouterr()

    probe = circuit.handler(
        {"action": "acquire_probe", "option_id": "claude-haiku-us", "request_id": "req-c"},
        FakeLambdaContext(),
    )

    assert probe["granted"] is True  # fail-open: a circuit nobody can read is CLOSED
    assert metric_names.CIRCUIT_STORE_UNAVAILABLE in emitted_metrics(capsys.readouterr().out)


def test_each_request_leaves_the_route_slis_the_slo_alarms_read(
    harness: GatewayHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """`RouteRequests`/`RouteBadAnswers`/`RouteLatency` leave with the `service` and `route`
    dimensions the burn-rate alarms name (infra/constructs/slo_alarms.py)."""
    assert harness.call("POST", "/v1/chat/completions", CHAT)[0] == 200

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_name = {
        metric["Name"]: (document, directive["Dimensions"])
        for document in documents
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
        if metric["Name"].startswith("Route")
    }
    assert set(by_name) == {
        metric_names.ROUTE_REQUESTS,
        metric_names.ROUTE_BAD_ANSWERS,
        metric_names.ROUTE_LATENCY,
    }
    for name, (document, dimensions) in by_name.items():
        assert dimensions == [[metric_names.SERVICE_DIMENSION, metric_names.ROUTE_DIMENSION]], name
        assert document[metric_names.ROUTE_DIMENSION] == "chat"
    bad = by_name[metric_names.ROUTE_BAD_ANSWERS][0][metric_names.ROUTE_BAD_ANSWERS]
    assert bad in (0, [0])
