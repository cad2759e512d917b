"""Chaos drills against the local stack, over HTTP, with faults injected through the options table.

The mock provider counts the calls that reach each option, so "the dead primary was called no more
than threshold + probes per cooldown" is measured, not assumed.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from switchboard.options.model import ProviderKind
from switchboard.providers.registry import provider_for
from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack
from tests.e2e.local_cli import put_option, switchboard

pytestmark = pytest.mark.e2e

PRIMARY, FALLBACK = "claude-haiku-us", "nova-lite-us"
BREAKER = {
    "failure_threshold": 3,
    "window_s": 60,
    "cooldown_s": 2,
    "max_cooldown_s": 2,
    "half_open_probes": 1,
}
OPTIONS_TTL_S = 1.0


@pytest.fixture
def client(stack: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)


def _calls() -> Counter[str]:
    return provider_for(ProviderKind.MOCK).calls  # type: ignore[attr-defined, no-any-return]


def _put_option(tmp_path: Path, option_id: str, **changes: Any) -> None:
    put_option(tmp_path, option_id, settle_s=OPTIONS_TTL_S + 0.2, **changes)


def _ask(client: openai.OpenAI, model: str = "chat") -> tuple[int, dict[str, str], str]:
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "ping"}]
        )
    except openai.APIStatusError as exc:
        return exc.status_code, dict(exc.response.headers), exc.response.text
    return raw.status_code, dict(raw.headers), raw.parse().choices[0].message.content or ""


def _reset(tmp_path: Path, *option_ids: str) -> None:
    for option_id in option_ids:
        _put_option(tmp_path, option_id, params={"error_rate": 0.0, "latency_ms": 0})
        switchboard("circuits", "close", option_id, "--for", "1s", "--reason", "test reset")
    time.sleep(1.1)


def test_primary_down_loses_no_request_and_is_barely_called(stack, client, tmp_path) -> None:
    _put_option(tmp_path, PRIMARY, breaker=BREAKER, params={"error_rate": 1.0, "error_kind": "unavailable"})
    before = _calls()[PRIMARY]
    started = time.monotonic()

    answers = [_ask(client) for _ in range(100)]

    elapsed = time.monotonic() - started
    assert [status for status, _, _ in answers] == [200] * 100
    assert {headers["x-switchboard-option"] for _, headers, _ in answers} == {FALLBACK}
    primary_calls = _calls()[PRIMARY] - before
    cooldowns = math.ceil(elapsed / BREAKER["cooldown_s"]) + 1
    assert primary_calls <= BREAKER["failure_threshold"] + BREAKER["half_open_probes"] * cooldowns, (
        primary_calls,
        elapsed,
    )
    shown = switchboard("circuits", "show", PRIMARY)
    assert "CLOSED → OPEN" in shown

    # Heal it: within one cooldown (plus the option cache) the primary serves again.
    _put_option(tmp_path, PRIMARY, params={"error_rate": 0.0})
    # One cooldown plus the option cache; the margin absorbs a loaded CI machine, not the breaker.
    deadline = time.monotonic() + BREAKER["cooldown_s"] + OPTIONS_TTL_S + 8
    option = None
    while time.monotonic() < deadline:
        status, headers, _ = _ask(client)
        assert status == 200
        option = headers["x-switchboard-option"]
        if option == PRIMARY:
            break
        time.sleep(0.1)
    assert option == PRIMARY
    assert switchboard("circuits", "list")[0]["state"] in {"CLOSED", "HALF_OPEN"}
    _reset(tmp_path, PRIMARY)


def test_flapping_provider_loses_nothing(stack, client, tmp_path) -> None:
    _put_option(
        tmp_path,
        PRIMARY,
        breaker={**BREAKER, "failure_threshold": 4},
        params={"error_rate": 0.5, "error_kind": "unavailable"},
    )
    answers = [_ask(client) for _ in range(40)]
    assert [status for status, _, _ in answers] == [200] * 40
    assert {h["x-switchboard-option"] for _, h, _ in answers} <= {PRIMARY, FALLBACK}
    _reset(tmp_path, PRIMARY)


def test_slow_provider_counts_as_failing(stack, client, tmp_path) -> None:
    # A cooldown longer than the test: on a loaded machine eight slow calls can outlast a 2 s
    # cooldown and the last request would be a half-open probe of the primary (timing, not logic).
    slow_breaker = {**BREAKER, "slow_call_ms": 100, "cooldown_s": 60, "max_cooldown_s": 60}
    _put_option(tmp_path, PRIMARY, breaker=slow_breaker, params={"latency_ms": 300})
    answers = [_ask(client) for _ in range(8)]
    assert [status for status, _, _ in answers] == [200] * 8
    assert answers[0][1]["x-switchboard-option"] == PRIMARY  # slow, but it answered
    assert answers[-1][1]["x-switchboard-option"] == FALLBACK  # its circuit opened on slowness
    _reset(tmp_path, PRIMARY)


def test_throttling_burst_is_retried_then_routed_around(stack, client, tmp_path) -> None:
    _put_option(tmp_path, PRIMARY, breaker=BREAKER, params={"error_rate": 1.0, "error_kind": "throttled"})
    answers = [_ask(client) for _ in range(6)]
    assert [status for status, _, _ in answers] == [200] * 6
    assert answers[-1][1]["x-switchboard-option"] == FALLBACK
    _reset(tmp_path, PRIMARY)


def test_all_candidates_down_follow_the_degrade_policy(stack, client, tmp_path) -> None:
    dead = (PRIMARY, FALLBACK, "nova-micro-us", "mock-echo")
    for option_id in dead:
        _put_option(tmp_path, option_id, params={"error_rate": 1.0, "error_kind": "unavailable"})

    status, headers, text = _ask(client)
    assert status == 200 and headers["x-switchboard-degraded"] == "static"
    assert text.startswith("The assistant is busy")

    status, headers, body = _ask(client, model="echo")
    assert status == 503 and int(headers["retry-after"]) >= 1
    assert json.loads(body)["error"]["code"] == "no_healthy_option"
    _reset(tmp_path, *dead)


def test_concurrent_requests_during_half_open_are_all_answered(stack, client, tmp_path) -> None:
    """A smoke test: moto has no lock around conditional writes (the one-probe lease is proven
    deterministically in tests/integration/test_circuit_store.py)."""
    _put_option(tmp_path, PRIMARY, breaker=BREAKER, params={"error_rate": 1.0, "error_kind": "unavailable"})
    for _ in range(4):
        _ask(client)
    _put_option(tmp_path, PRIMARY, params={"error_rate": 0.0})
    time.sleep(BREAKER["cooldown_s"] + 0.5)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: _ask(client), range(6)))

    assert [status for status, _, _ in answers] == [200] * 6
    _reset(tmp_path, PRIMARY)
