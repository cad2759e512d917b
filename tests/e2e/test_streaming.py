"""Streamed chat completions (`stream: true`) from the local stack, through the official OpenAI SDK.

Faults go in through the options table as an operator would put them (`switchboard options put
--local`), into the mock provider's streaming contract (`fail_after_chunks`, `first_token_ms`):
the gateway sees real cut streams and slow first tokens, not a stubbed service.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack
from tests.e2e.local_cli import switchboard

pytestmark = pytest.mark.e2e

PRIMARY, FALLBACK, SMALLER = "claude-haiku-us", "nova-lite-us", "nova-micro-us"
STATIC = "The assistant is busy right now. Please try again in a minute."
BREAKER = {
    "failure_threshold": 50,
    "window_s": 60,
    "cooldown_s": 1,
    "max_cooldown_s": 1,
    "half_open_probes": 1,
}
OPTIONS_TTL_S = 1.0
MESSAGES: list[Any] = [{"role": "user", "content": "stream me a few words please"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture
def client(stack: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)


def _put_params(tmp_path: Path, option_id: str, params: dict[str, Any]) -> None:
    """`switchboard options put` as an operator would: get, edit, put (conditional on version)."""
    option = switchboard("options", "get", option_id)
    option["params"] = {**option.get("params", {}), **params}
    option["breaker"] = {**option.get("breaker", {}), **BREAKER}
    path = tmp_path / f"{option_id}.json"
    path.write_text(json.dumps(option))
    switchboard("options", "put", str(path))


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[Any]:
    """Put stream faults on options; every touched option is healed and its circuit closed after."""
    touched: set[str] = set()

    def put(**params_by_option: dict[str, Any]) -> None:
        for option_id, params in params_by_option.items():
            touched.add(option_id.replace("_", "-"))
            _put_params(tmp_path, option_id.replace("_", "-"), params)
        time.sleep(OPTIONS_TTL_S + 0.2)  # the handlers' option cache

    yield put
    for option_id in touched:
        _put_params(
            tmp_path,
            option_id,
            {
                "fail_after_chunks": None,
                "first_token_ms": 0,
                "error_rate": 0.0,
                "first_token_timeout_ms": None,
            },
        )
        switchboard("circuits", "close", option_id, "--for", "1s", "--reason", "test reset")
    time.sleep(max(OPTIONS_TTL_S, 1.0) + 0.2)


def _stream(client: openai.OpenAI, **kwargs: Any) -> tuple[dict[str, str], list[Any]]:
    raw = client.chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "chat"), messages=kwargs.pop("messages", MESSAGES), stream=True, **kwargs
    )
    return dict(raw.headers), list(raw.parse())


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_text_stream_concatenates_to_the_whole_answer(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="chat", messages=MESSAGES)
    headers, chunks = _stream(client)

    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-switchboard-option"] == PRIMARY
    assert headers["x-switchboard-route"] == "chat" and headers["x-switchboard-request-id"]
    assert "x-switchboard-degraded" not in headers
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3  # word by word
    assert _text(chunks) == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_include_usage_adds_a_last_chunk_with_usage_and_no_choices(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="chat", messages=MESSAGES)
    _, chunks = _stream(client, stream_options={"include_usage": True})

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])


def test_the_raw_stream_ends_with_done(stack: LocalStack) -> None:
    body = {"model": "chat", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {DEV_KEY}"}
    with httpx.stream("POST", f"{stack.url}/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status_code == 200
        raw = b"".join(response.iter_bytes())
    events = raw.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert all(event.startswith(b"data: ") for event in events[:-1])


def test_a_primary_failing_before_its_first_token_is_skipped_invisibly(
    client: openai.OpenAI, faults: Any
) -> None:
    faults(claude_haiku_us={"fail_after_chunks": 0, "error_kind": "unavailable"})
    headers, chunks = _stream(client)
    assert headers["x-switchboard-option"] == FALLBACK
    assert "x-switchboard-degraded" not in headers
    assert _text(chunks) == f"[{FALLBACK}] stream me a few words please"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_first_token_later_than_the_option_allows_moves_on(client: openai.OpenAI, faults: Any) -> None:
    faults(claude_haiku_us={"first_token_ms": 2000, "first_token_timeout_ms": 150})
    started = time.monotonic()
    headers, chunks = _stream(client)
    assert headers["x-switchboard-option"] == FALLBACK
    assert _text(chunks).startswith(f"[{FALLBACK}]")
    assert time.monotonic() - started < 1.5  # the deadline cut the wait, not the fault's 2 s


def test_a_mid_stream_failure_raises_in_the_sdk_never_a_clean_end(client: openai.OpenAI, faults: Any) -> None:
    faults(claude_haiku_us={"fail_after_chunks": 2, "error_kind": "unavailable"})
    received: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in client.chat.completions.create(model="chat", messages=MESSAGES, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["[claude-haiku-us] ", "stream "]  # content had gone out: nothing could hide the cut
    assert "failed after it started" in raised.value.message
    body = raised.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_failed"


def test_chain_exhausted_streams_the_smaller_model_then_the_static_answer(
    client: openai.OpenAI, faults: Any
) -> None:
    dead = {"fail_after_chunks": 0, "error_kind": "unavailable"}
    faults(claude_haiku_us=dead, nova_lite_us=dead)
    headers, chunks = _stream(client)
    assert headers["x-switchboard-degraded"] == "smaller_model"
    assert headers["x-switchboard-option"] == SMALLER
    assert _text(chunks).startswith(f"[{SMALLER}]")

    faults(nova_micro_us=dead)
    headers, chunks = _stream(client, stream_options={"include_usage": True})
    assert headers["x-switchboard-degraded"] == "static"
    assert _text(chunks) == STATIC
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].usage is not None


def test_cached_answer_streams_with_the_degraded_header(
    stack: LocalStack, client: openai.OpenAI, faults: Any
) -> None:
    flags_file = Path(stack.flags_file)
    original = flags_file.read_text()
    document = json.loads(original)
    variant = document["values"]["chat"]["_variants"][-1]["attributeValues"]
    variant.update({"degrade": ["cache", "static", "reject"], "cache_ttl_s": 300})
    flags_file.write_text(json.dumps(document, indent=2))
    try:
        question: list[Any] = [{"role": "user", "content": "remember this answer"}]
        deadline = time.monotonic() + 10
        while True:  # the agent picks the edit up within its poll interval
            raw = client.chat.completions.with_raw_response.create(model="chat", messages=question)
            cached = raw.parse().choices[0].message.content
            dead = {"fail_after_chunks": 0, "error_kind": "unavailable"}
            faults(claude_haiku_us=dead, nova_lite_us=dead)
            headers, chunks = _stream(client, messages=question)
            if headers.get("x-switchboard-degraded") == "cache" or time.monotonic() > deadline:
                break
            faults(claude_haiku_us={"fail_after_chunks": None}, nova_lite_us={"fail_after_chunks": None})
        assert headers["x-switchboard-degraded"] == "cache"
        assert headers["x-switchboard-option"] == PRIMARY  # the option that gave the cached answer
        assert _text(chunks) == cached
    finally:
        flags_file.write_text(original)


def test_reject_is_a_503_with_retry_after_before_any_byte(client: openai.OpenAI, faults: Any) -> None:
    faults(mock_echo={"fail_after_chunks": 0, "error_kind": "unavailable"})
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="echo", messages=MESSAGES, stream=True)
    response = raised.value.response
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "no_healthy_option"


def test_request_errors_are_json_before_any_byte(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-route", messages=MESSAGES, stream=True)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="chat", messages=[], stream=True)
    assert raised.value.response.headers["content-type"].startswith("application/json")


def test_tool_call_deltas_are_reassembled_by_the_sdk(client: openai.OpenAI) -> None:
    kwargs: Any = {"model": "chat", "messages": MESSAGES, "tools": [WEATHER_TOOL], "tool_choice": "required"}
    whole = client.chat.completions.create(**kwargs)
    with client.chat.completions.stream(**kwargs) as stream:
        pieces = [event for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()

    expected = whole.choices[0].message.tool_calls
    assert expected is not None and len(pieces) > 1  # the arguments came in pieces
    got = final.choices[0].message.tool_calls
    assert got is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in got] == [
        (c.id, c.function.name, c.function.arguments) for c in expected
    ]
    assert json.loads(got[0].function.arguments)["city"]
    assert final.choices[0].finish_reason == "tool_calls"


def test_whole_requests_are_unchanged(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, stream=False)
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.parse().choices[0].message.content == f"[{PRIMARY}] stream me a few words please"
