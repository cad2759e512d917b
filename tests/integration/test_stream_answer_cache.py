"""A streamed answer is cached as the workflow caches a whole one, and served back by the degrade
policy's `cache` step to whole and streamed requests alike (emulated AWS: moto's DynamoDB and S3,
the real request workflow ASL, the AppConfig agent emulator, the mock provider).

The streamed requests go through `handlers.gateway.open_stream`, the seam the HTTP entrypoint under
Lambda Web Adapter calls, so every AWS call they make is recorded and judged against the gateway
function's synthesized policy (tests/iam): the cache write, its claim check, the circuit records and
a half-open probe lease.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from handlers import gateway as gateway_module
from tests.conftest import api_event

DEV_KEY = "sk-switchboard-local-dev"
PRIMARY, FALLBACK = "claude-haiku-us", "nova-lite-us"
FAST_BREAKER = {
    "failure_threshold": 2,
    "window_s": 60,
    "cooldown_s": 1,
    "max_cooldown_s": 1,
    "half_open_probes": 1,
}


def _edit_flags(gateway: Any, edit: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(gateway.flags_file.read_text())
    edit(document)
    gateway.flags_file.write_text(json.dumps(document))


def _cache_the_default_variant(document: dict[str, Any]) -> None:
    default = document["values"]["chat"]["_variants"][-1]["attributeValues"]
    default.update({"degrade": ["cache", "static", "reject"], "cache_ttl_s": 300})


def _force_degraded(document: dict[str, Any]) -> None:
    document["values"]["force-degraded"] = {"enabled": True, "routes": ["chat"]}


def _stream(gateway: Any, messages: list[Any], request_id: str) -> tuple[dict[str, str], str, bytes]:
    context = gateway.authorize(DEV_KEY)["context"]
    body = {"model": "chat", "messages": messages, "stream": True}
    event = api_event("POST", "/v1/chat/completions", body, authorizer=context, request_id=request_id)
    answer = gateway_module.open_stream(event)
    assert answer is not None
    raw = b"".join(answer.chunks)
    text = "".join(
        json.loads(block[6:])["choices"][0]["delta"].get("content") or ""
        for block in raw.split(b"\n\n")
        if block.startswith(b"data: {") and json.loads(block[6:]).get("choices")
    )
    return answer.headers, text, raw


def _cached_items(gateway: Any) -> list[dict[str, Any]]:
    table = gateway.resources.cache_table
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return items


def _until(condition: Callable[[], Any], *, within_s: float = 10.0) -> Any:
    """Ask until the agent emulator has picked up a flag edit (it polls every 0.1 s)."""
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.mark.parametrize("prompt_bytes", [40, 60_000], ids=["inline", "claim-checked"])
def test_a_streamed_answer_is_served_from_the_cache_to_whole_and_streamed_requests(
    gateway: Any, prompt_bytes: int
) -> None:
    _edit_flags(gateway, _cache_the_default_variant)
    # The mock echoes the prompt: a long prompt makes an answer over the inline limit (48 KB), which
    # the cache keeps as a claim check in the payload bucket, exactly as the workflow would.
    # (Its max_tokens counts words: a few long words make it.)
    word = "w" * 499
    question = [{"role": "user", "content": "remember " + " ".join([word] * (prompt_bytes // 500))}]
    attempt = iter(range(1000))

    def streamed_and_cached() -> str | None:
        headers, text, raw = _stream(gateway, question, f"req-cache-{next(attempt)}")
        assert raw.endswith(b"data: [DONE]\n\n") and headers["x-switchboard-option"] == PRIMARY
        return text if _cached_items(gateway) else None

    streamed = _until(streamed_and_cached)
    assert streamed and streamed.startswith(f"[{PRIMARY}] remember")
    (item,) = _cached_items(gateway)
    assert item["tenant"]["S"] and item["option_id"]["S"] == PRIMARY and item["route"]["S"] == "chat"
    stored = json.loads(item["answer"]["S"])
    assert ("$ref" in stored) == (prompt_bytes > 50_000)

    _edit_flags(gateway, _force_degraded)

    def whole_from_cache() -> tuple[int, dict[str, str], dict[str, Any]] | None:
        status, headers, body = gateway.call(
            "POST", "/v1/chat/completions", {"model": "chat", "messages": question}
        )
        return (status, headers, body) if headers.get("x-switchboard-degraded") == "cache" else None

    whole = _until(whole_from_cache)
    assert whole is not None, "the whole request was not answered from the cache"
    status, headers, body = whole
    assert status == 200 and headers["x-switchboard-option"] == PRIMARY
    assert body["choices"][0]["message"]["content"] == streamed

    headers, text, raw = _stream(gateway, question, "req-cache-streamed-hit")
    assert headers["x-switchboard-degraded"] == "cache" and headers["x-switchboard-option"] == PRIMARY
    assert text == streamed and raw.endswith(b"data: [DONE]\n\n")


def test_a_streamed_request_records_circuits_and_probes_a_half_open_one(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchboard.circuits.store import CircuitStore
    from switchboard.contract import env as names

    monkeypatch.setenv(names.CIRCUIT_CACHE_TTL_S, "0")  # the gateway reads each circuit afresh
    gateway_module.stream_service.cache_clear()
    gateway.set_option(PRIMARY, breaker=FAST_BREAKER)
    gateway.set_option_params(PRIMARY, error_rate=1.0, error_kind="unavailable")
    for n in range(2):  # two failures before the first token: skipped invisibly, the circuit opens
        headers, _, raw = _stream(gateway, [{"role": "user", "content": "hi"}], f"req-break-{n}")
        assert headers["x-switchboard-option"] == FALLBACK and raw.endswith(b"data: [DONE]\n\n")
    circuits = CircuitStore(gateway.resources.circuit_table, client=boto3.client("dynamodb"), cache_ttl_s=0)
    opened = circuits.get(PRIMARY)
    assert opened.state.value == "OPEN" and opened.open_until is not None

    gateway.set_option_params(PRIMARY, error_rate=0.0)
    # The cooldown (1 s, kept in whole seconds): then the next request takes the probe lease.
    time.sleep(max(0.0, (opened.open_until - circuits.now()).total_seconds()) + 0.1)
    headers, _, raw = _stream(gateway, [{"role": "user", "content": "hi"}], "req-probe")
    assert headers["x-switchboard-option"] == PRIMARY and raw.endswith(b"data: [DONE]\n\n")
    assert circuits.get(PRIMARY).state.value == "CLOSED"
