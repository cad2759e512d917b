"""A JSON body sent as `Application/JSON; Charset=UTF-8` is answered, not refused with a 415."""

from __future__ import annotations

import json
from typing import Any

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def test_json_in_another_letter_case_gets_a_completion(gateway: Any) -> None:
    from handlers import gateway as gateway_handler
    from switchboard_local.emulation import FakeLambdaContext
    from tests.conftest import api_event

    event = api_event(
        "POST",
        "/v1/chat/completions",
        CHAT,
        authorizer=gateway.authorize("sk-switchboard-local-dev")["context"],
    )
    event["headers"] = {"Content-Type": "Application/JSON; Charset=UTF-8"}

    response = gateway_handler.handler(event, FakeLambdaContext())

    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["choices"][0]["message"]["content"] == "[claude-haiku-us] hi"
