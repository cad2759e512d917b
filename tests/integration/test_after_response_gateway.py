"""The gateway's HTTP entrypoint (as Lambda Web Adapter drives it in AWS) with the after-response
extension registered: a whole request's metering writes are handed to the extension once the
response has been written, and run by it; a stream's stay inline and its invocation is released.

The extension here is registered in name only (its thread does not run): the test plays its part
with ``Handoff.claim``, so what the gateway hands over is visible before it runs. The protocol side
is tests/integration/test_after_response_extension.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from switchboard import after_response
from switchboard.after_response import AfterResponseExtension, ExtensionsApi
from tests.integration.test_gateway_http import (  # noqa: F401 - fixtures
    CHAT,
    STREAM,
    FakeStreamService,
    fake_streams,
    request_context,
    send,
    server,
)

LAMBDA_REQUEST_ID = "lambda-1"  # what `send` forwards in x-amzn-lambda-context


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[AfterResponseExtension]:
    extension = AfterResponseExtension(ExtensionsApi("127.0.0.1:9"))  # its API is never called here
    extension.active = True
    monkeypatch.setattr(after_response, "_extension", extension)
    yield extension


def _usage_items(harness: Any) -> list[dict[str, Any]]:
    table = harness.resources.usage_table
    return list(boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Items"])


def test_a_whole_request_answers_first_and_hands_its_metering_to_the_extension(
    server: Any,  # noqa: F811
    gateway: Any,
    registered: AfterResponseExtension,
) -> None:
    before = _usage_items(gateway)
    response = send(server, "POST", "/v1/chat/completions", CHAT, context=request_context(gateway))
    body = json.loads(response.read())
    assert response.status == 200, body

    # The client has its answer; nothing is metered yet: the writes wait for the extension.
    assert _usage_items(gateway) == before
    writes = registered.handoff.claim(LAMBDA_REQUEST_ID, until=time.time() + 5)
    assert writes, "the request's after-answer writes were not handed over"
    from handlers import gateway as gateway_module

    assert writes.then == [gateway_module._publish_late_metrics]
    assert _usage_items(gateway) == before

    from switchboard.accounting import ConcurrentWrites

    assert ConcurrentWrites().run_within(writes, 5)
    metered = _usage_items(gateway)
    assert len(metered) > len(before)
    assert any(
        int(item.get("prompt_tokens", {}).get("N", 0)) == body["usage"]["prompt_tokens"] for item in metered
    )


def test_a_stream_releases_its_invocation_when_it_ends(
    server: Any,  # noqa: F811
    gateway: Any,
    fake_streams: FakeStreamService,  # noqa: F811
    registered: AfterResponseExtension,
) -> None:
    response = send(server, "POST", "/v1/chat/completions", STREAM, context=request_context(gateway))
    assert response.status == 200
    assert response.read().endswith(b"data: [DONE]\n\n")
    # Finished (claim returns at once, not after begin_within_s), with nothing deferred.
    started = time.monotonic()
    assert registered.handoff.claim(LAMBDA_REQUEST_ID, until=time.time() + 5, begin_within_s=5) == []
    assert time.monotonic() - started < 1.0


def test_without_the_extension_a_whole_request_is_metered_before_it_answers(
    server: Any,  # noqa: F811
    gateway: Any,
) -> None:
    before = _usage_items(gateway)
    response = send(server, "POST", "/v1/chat/completions", CHAT, context=request_context(gateway))
    assert response.status == 200
    response.read()
    assert len(_usage_items(gateway)) > len(before)
