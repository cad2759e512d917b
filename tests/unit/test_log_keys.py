"""Per-invocation log keys end with their invocation (a Lambda's Logger outlives it)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from switchboard.observability import SERVICE, invocation_keys, keys_from_event, logger


class _Lines(logging.Handler):
    """Every line the shared Logger writes, parsed from its own JSON formatter."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def last(self, message: str) -> dict[str, Any]:
        return next(line for line in reversed(self.lines) if line["message"] == message)


@pytest.fixture
def lines() -> Iterator[_Lines]:
    handler = _Lines()
    stdlib_logger = logging.getLogger(SERVICE)  # Powertools' Logger is this stdlib logger
    stdlib_logger.addHandler(handler)
    try:
        yield handler
    finally:
        stdlib_logger.removeHandler(handler)


def test_keys_hold_inside_the_invocation_only(lines: _Lines) -> None:
    with invocation_keys(request_id="req-a", route="chat"):
        logger.info("inside")
    logger.info("after")

    assert lines.last("inside")["request_id"] == "req-a" and lines.last("inside")["route"] == "chat"
    assert "request_id" not in lines.last("after") and "route" not in lines.last("after")


def test_a_nested_invocation_gives_the_outer_keys_back(lines: _Lines) -> None:
    """Locally the workflow's steps run inside the gateway's request, in the same process."""
    with invocation_keys(request_id="req-outer"):
        with invocation_keys(request_id="req-inner", option_id="opt"):
            logger.info("inner")
        logger.info("outer again")

    assert lines.last("inner")["request_id"] == "req-inner"
    assert lines.last("outer again")["request_id"] == "req-outer"
    assert "option_id" not in lines.last("outer again")


def test_concurrent_invocations_do_not_share_keys(lines: _Lines) -> None:
    both_inside = threading.Barrier(2)

    def invocation(request_id: str) -> None:
        with invocation_keys(request_id=request_id):
            both_inside.wait(timeout=5)
            logger.info(f"from {request_id}")
            both_inside.wait(timeout=5)

    threads = [threading.Thread(target=invocation, args=(rid,)) for rid in ("req-1", "req-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert lines.last("from req-1")["request_id"] == "req-1"
    assert lines.last("from req-2")["request_id"] == "req-2"


def test_decorated_handler_logs_the_event_values_and_leaves_nothing_behind(lines: _Lines) -> None:
    @keys_from_event(request_id="requestContext.requestId", route="route")
    def handler(event: dict[str, Any], context: object = None) -> str:
        logger.info("handling")
        return "done"

    assert handler({"requestContext": {"requestId": "req-first"}, "route": "chat"}) == "done"
    handler({"requestContext": {}})  # no request id, no route: neither key, and not the old ones
    logger.info("between invocations")

    assert lines.lines[-3]["request_id"] == "req-first" and lines.lines[-3]["route"] == "chat"
    assert "request_id" not in lines.lines[-2] and "route" not in lines.lines[-2]
    assert "request_id" not in lines.last("between invocations")


def test_keys_are_dropped_when_the_handler_raises(lines: _Lines) -> None:
    @keys_from_event(request_id="request_id")
    def failing(event: dict[str, Any], context: object = None) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing({"request_id": "req-failed"})
    logger.info("next")

    assert "request_id" not in lines.last("next")
