"""A request's log lines carry its own `request_id`, and the next request's lines never do.

Found on `make local`: the invoke step appended `request_id` to the Logger the whole process
shares, so every later line (the gateway's included) named the previous request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from switchboard.observability import SERVICE, logger

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    captured: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(json.loads(self.format(record)))

    handler = Collect()
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(SERVICE).addHandler(handler)
    try:
        yield captured
    finally:
        logging.getLogger(SERVICE).removeHandler(handler)


def _request(gateway: Any, request_id: str) -> int:
    from handlers import gateway as gateway_handler
    from switchboard_local.emulation import FakeLambdaContext
    from tests.conftest import api_event

    policy = gateway.authorize("sk-switchboard-local-dev")
    event = api_event(
        "POST", "/v1/chat/completions", CHAT, authorizer=policy["context"], request_id=request_id
    )
    return int(gateway_handler.handler(event, FakeLambdaContext())["statusCode"])


def test_lines_after_a_request_do_not_name_it(gateway: Any, lines: list[dict[str, Any]]) -> None:
    # The primary fails, so the invoke step logs "candidate failed" inside the request.
    gateway.set_option_params("claude-haiku-us", error_rate=1.0, error_kind="unavailable")

    assert _request(gateway, "req-first") == 200
    during = list(lines)
    logger.info("between requests")
    assert _request(gateway, "req-second") == 200

    failed = [line for line in during if line["message"] == "candidate failed"]
    assert failed and all(line["request_id"] == "req-first" for line in failed)
    assert {line.get("request_id") for line in during} <= {"req-first"}
    between = next(line for line in lines if line["message"] == "between requests")
    assert "request_id" not in between and "route" not in between and "option_id" not in between
    second = [line for line in lines[len(during) + 1 :] if "request_id" in line]
    assert second and {line["request_id"] for line in second} == {"req-second"}
