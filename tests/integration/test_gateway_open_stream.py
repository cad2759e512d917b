"""`gateway.open_stream`: the seam an HTTP layer that can stream asks before `handler`.

It takes only well-formed, authorized streamed chat requests; everything else is None and goes to
`handler`, which answers it exactly as before (an invalid streamed body gets the usual 400).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from handlers import gateway as gateway_module
from tests.conftest import api_event

CHAT: dict[str, Any] = {
    "model": "chat",
    "messages": [{"role": "user", "content": "hi there"}],
    "stream": True,
}


def _event(gateway: Any, body: Any, *, path: str = "/v1/chat/completions", **kwargs: Any) -> dict[str, Any]:
    context = gateway.authorize("sk-switchboard-local-dev")["context"]
    return api_event("POST", path, body, authorizer=context, **kwargs)


def test_a_streamed_chat_request_streams_through_the_chain(gateway: Any) -> None:
    answer = gateway_module.open_stream(_event(gateway, CHAT, request_id="req-stream-1"))
    assert answer is not None and answer.status == 200
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.headers["x-switchboard-request-id"] == "req-stream-1"
    raw = b"".join(answer.chunks)
    assert raw.endswith(b"data: [DONE]\n\n")
    option = answer.headers["x-switchboard-option"]
    assert f"[{option}] hi there".encode() not in raw  # pieces, not the whole answer in one event
    texts = [
        json.loads(block[6:])["choices"][0]["delta"].get("content") or ""
        for block in raw.split(b"\n\n")
        if block.startswith(b"data: {")
    ]
    assert "".join(texts) == f"[{option}] hi there"


@pytest.mark.parametrize(
    "body",
    [
        {**CHAT, "stream": False},
        {key: value for key, value in CHAT.items() if key != "stream"},
        {**CHAT, "stream": "yes"},
        {**CHAT, "messages": []},  # invalid: handler's 400
        [CHAT],
    ],
)
def test_anything_else_is_left_to_the_handler(gateway: Any, body: Any) -> None:
    assert gateway_module.open_stream(_event(gateway, body)) is None


def test_other_paths_unreadable_json_and_no_caller_are_left_to_the_handler(gateway: Any) -> None:
    assert gateway_module.open_stream(_event(gateway, CHAT, path="/v1/embeddings")) is None
    assert (
        gateway_module.open_stream(_event(gateway, None, raw_body='{"stream": true, "model": NaN}')) is None
    )
    assert gateway_module.open_stream(api_event("POST", "/v1/chat/completions", CHAT)) is None


def test_errors_before_the_first_byte_are_one_json_chunk(gateway: Any) -> None:
    answer = gateway_module.open_stream(_event(gateway, {**CHAT, "model": "no-such-route"}))
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(b"".join(answer.chunks))
    assert body["error"]["code"] == "model_not_found"


def test_the_whole_request_path_still_refuses_stream_true(gateway: Any) -> None:
    status, _, body = gateway.call("POST", "/v1/chat/completions", CHAT)
    assert status == 400 and body["error"]["code"] == "stream_not_supported"
