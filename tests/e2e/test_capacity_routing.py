"""Capacity-aware routing on the local stack, through the official OpenAI SDK.

An operator gives the primary option a capacity of 2 requests a minute (`switchboard options put
--local`, as for any option change); of 4 requests in that minute the first two are answered by the
primary and the overflow by the next candidate of the chain, and the primary's circuit records
nothing: saturation is not a failure. The same for a streamed request.

The minute window is pinned, not waited for: the local stack runs the handlers in this process, and
the tests set the capacity counters' clock of the invoke step and of the streaming path to one
instant (a request that fell across a real minute boundary would start a fresh window).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import boto3
import openai
import pytest

from switchboard.circuits.store import CircuitStore
from switchboard.quotas.service import capacity_sk, option_pk
from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack
from tests.e2e.local_cli import switchboard

pytestmark = pytest.mark.e2e

PRIMARY, FALLBACK = "claude-haiku-us", "nova-lite-us"
OPTIONS_TTL_S = 1.0  # the handlers' option cache on the local stack (OPTIONS_CACHE_TTL_S)
MESSAGES: list[Any] = [{"role": "user", "content": "ping"}]
_MINUTES = count(1)


@pytest.fixture
def client(stack: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)


@pytest.fixture
def one_minute(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Every capacity counter of the stack counts into the minute of one pinned instant."""
    from handlers import gateway, invoke

    # A minute of its own per test: the stack (and its usage table) lives for the whole module.
    moment = datetime.now(UTC) + timedelta(minutes=next(_MINUTES))
    streaming = gateway.stream_service().capacity.counters  # the StreamService's CapacityCounters
    for counters in (invoke.dependencies().capacity, streaming):
        assert counters is not None, "USAGE_TABLE is set on the local stack: capacity is counted"
        monkeypatch.setattr(counters, "clock", lambda: moment)
    return moment


def _put_option(tmp_path: Path, option_id: str, **changes: Any) -> None:
    """`switchboard options put` as an operator would: get, edit, put (conditional on version)."""
    option = switchboard("options", "get", option_id)
    option.update(changes)
    path = tmp_path / f"{option_id}.json"
    path.write_text(json.dumps(option))
    switchboard("options", "put", str(path))
    time.sleep(OPTIONS_TTL_S + 0.2)  # the handlers' option cache


@pytest.fixture
def primary_capacity(stack: LocalStack, tmp_path: Path) -> Iterator[None]:
    _put_option(tmp_path, PRIMARY, capacity={"rpm": 2})
    yield
    _put_option(tmp_path, PRIMARY, capacity=None)


def _ask(client: openai.OpenAI) -> tuple[int, str]:
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content
    return raw.status_code, raw.headers["x-switchboard-option"]


def _capacity_used(stack: LocalStack, option_id: str, moment: datetime) -> dict[str, int]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url)
    assert stack.resources is not None
    item = dynamodb.get_item(
        TableName=stack.resources.usage_table,
        Key={"pk": {"S": option_pk(option_id)}, "sk": {"S": capacity_sk(option_id, moment)}},
    ).get("Item", {})
    return {name: int(item[name]["N"]) if name in item else 0 for name in ("rpm", "tpm")}


def _assert_circuit_untouched(stack: LocalStack, option_id: str) -> None:
    shown = switchboard("circuits", "show", option_id, "--json")
    assert shown["state"] == "CLOSED" and shown["last_error"] is None and shown["events"] == []
    assert stack.resources is not None
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url)
    snapshot = CircuitStore(stack.resources.circuit_table, client=dynamodb, cache_ttl_s=0).get(option_id)
    assert snapshot.failures == () and snapshot.version == 0  # nothing was ever recorded


def test_the_overflow_of_an_options_rpm_goes_to_the_next_candidate(
    stack, client, primary_capacity, one_minute
) -> None:
    served = [_ask(client) for _ in range(4)]

    assert served == [(200, PRIMARY), (200, PRIMARY), (200, FALLBACK), (200, FALLBACK)]
    _assert_circuit_untouched(stack, PRIMARY)
    used = _capacity_used(stack, PRIMARY, one_minute)
    assert used["rpm"] == 2 and used["tpm"] > 0  # two requests, reconciled to the reported tokens


def test_a_streamed_request_skips_a_saturated_option_too(stack, client, primary_capacity, one_minute) -> None:
    assert [_ask(client) for _ in range(2)] == [(200, PRIMARY)] * 2

    with client.chat.completions.with_streaming_response.create(
        model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        option = response.headers["x-switchboard-option"]
        chunks = list(response.parse())

    assert option == FALLBACK
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None
    _assert_circuit_untouched(stack, PRIMARY)
    assert _capacity_used(stack, PRIMARY, one_minute)["rpm"] == 2
