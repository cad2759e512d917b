"""The request path in-process on emulated AWS: authorizer → gateway → real ASL → invoke → mock."""

from __future__ import annotations

import json
import time

from switchboard.keys import ApiKeyStore

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}


def _premium_key(harness) -> str:
    import boto3

    keys = ApiKeyStore(harness.resources.keys_table, client=boto3.client("dynamodb"))
    key, _record = keys.create("acme", "premium", apigateway=None, usage_plan_id=None)
    return key


def test_chat_completion_has_openai_shape_and_switchboard_headers(gateway) -> None:
    status, headers, body = gateway.call("POST", "/v1/chat/completions", CHAT)

    assert status == 200, body
    assert body["object"] == "chat.completion"
    assert body["model"] == "chat"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert "hello there" in choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert headers["x-switchboard-route"] == "chat"
    assert headers["x-switchboard-option"] == "claude-haiku-us"  # standard tier → default variant
    assert headers["x-switchboard-request-id"] == "req-0001"


def test_tiers_get_different_options_on_the_same_route(gateway) -> None:
    premium = _premium_key(gateway)

    _, standard_headers, _ = gateway.call("POST", "/v1/chat/completions", CHAT)
    _, premium_headers, body = gateway.call("POST", "/v1/chat/completions", CHAT, key=premium)

    assert standard_headers["x-switchboard-option"] == "claude-haiku-us"
    assert premium_headers["x-switchboard-option"] == "claude-sonnet-us"
    assert premium_headers["x-switchboard-variant"] == "premium"
    assert "[claude-sonnet-us]" in body["choices"][0]["message"]["content"]


def test_failing_primary_falls_back_to_the_next_option(gateway) -> None:
    gateway.set_option_params("claude-haiku-us", error_rate=1.0, error_kind="unavailable")

    status, headers, body = gateway.call("POST", "/v1/chat/completions", CHAT)

    assert status == 200, body
    assert headers["x-switchboard-option"] == "nova-lite-us"


def test_throttled_primary_is_retried_then_skipped(gateway) -> None:
    gateway.set_option_params("claude-haiku-us", error_rate=1.0, error_kind="throttled")

    status, headers, _ = gateway.call("POST", "/v1/chat/completions", CHAT)

    assert status == 200
    assert headers["x-switchboard-option"] == "nova-lite-us"


def test_client_error_from_provider_is_a_400_not_a_fallback(gateway) -> None:
    gateway.set_option_params("claude-haiku-us", error_rate=1.0, error_kind="context_too_long")

    status, headers, body = gateway.call("POST", "/v1/chat/completions", CHAT)

    assert status == 400
    assert body["error"]["code"] == "context_length_exceeded"
    assert headers["x-switchboard-option"] == "claude-haiku-us"


def test_whole_chain_down_degrades_to_the_smaller_model(gateway) -> None:
    for option_id in ("claude-haiku-us", "nova-lite-us"):
        gateway.set_option_params(option_id, error_rate=1.0, error_kind="unavailable")

    status, headers, body = gateway.call("POST", "/v1/chat/completions", CHAT)

    assert status == 200, body
    assert headers["x-switchboard-degraded"] == "smaller_model"
    assert headers["x-switchboard-option"] == "nova-micro-us"


def test_smaller_model_down_too_gives_the_static_answer(gateway) -> None:
    for option_id in ("claude-haiku-us", "nova-lite-us", "nova-micro-us"):
        gateway.set_option_params(option_id, error_rate=1.0, error_kind="unavailable")

    status, headers, body = gateway.call("POST", "/v1/chat/completions", CHAT)

    assert status == 200, body
    assert headers["x-switchboard-degraded"] == "static"
    assert body["choices"][0]["message"]["content"].startswith("The assistant is busy")


def test_whole_chain_down_with_reject_policy_is_503_with_retry_after_and_body(gateway) -> None:
    gateway.set_option_params("mock-echo", error_rate=1.0, error_kind="unavailable")

    status, headers, body = gateway.call("POST", "/v1/chat/completions", {**CHAT, "model": "echo"})

    assert status == 503
    assert int(headers["retry-after"]) >= 1
    assert body["error"]["type"] == "server_error"
    assert "req-0001" in body["error"]["message"]


def test_models_lists_the_routes(gateway) -> None:
    status, _, body = gateway.call("GET", "/v1/models")

    assert status == 200
    assert body["object"] == "list"
    assert {card["id"] for card in body["data"]} == {"chat", "summarize", "echo", "embed", "tuned"}


def test_editing_the_flag_file_changes_the_answering_option(gateway) -> None:
    document = json.loads(gateway.flags_file.read_text())
    default = document["values"]["chat"]["_variants"][-1]
    default["attributeValues"]["chain"] = ["nova-lite-us", "claude-haiku-us"]
    gateway.flags_file.write_text(json.dumps(document))

    deadline = time.monotonic() + 10
    option = None
    while time.monotonic() < deadline:
        _, headers, _ = gateway.call("POST", "/v1/chat/completions", CHAT)
        option = headers.get("x-switchboard-option")
        if option == "nova-lite-us":
            break
        time.sleep(0.1)
    assert option == "nova-lite-us"


def test_agent_down_keeps_serving_from_last_known_good(gateway) -> None:
    _, first, _ = gateway.call("POST", "/v1/chat/completions", CHAT)
    gateway.agent.stop()

    status, headers, _ = gateway.call("POST", "/v1/chat/completions", CHAT)

    assert status == 200
    assert headers["x-switchboard-option"] == first["x-switchboard-option"]
    assert headers["x-switchboard-routing-source"] == "last_known_good"
