"""A streamed answer is cached like a whole one (issue 14): on the local stack, through the official
OpenAI SDK, an answer streamed on a caching route is what the degrade policy's `cache` step serves
later, to a whole request and to a streamed one, once the route is forced degraded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import openai
import pytest

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

QUESTION: list[Any] = [{"role": "user", "content": "stream this once and remember it"}]


def _flags(stack: LocalStack, edit: Any) -> None:
    flags_file = Path(stack.flags_file)
    document = json.loads(flags_file.read_text())
    edit(document["values"])
    flags_file.write_text(json.dumps(document, indent=2))


def _streamed(client: openai.OpenAI) -> tuple[dict[str, str], str]:
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=QUESTION, stream=True)
    chunks = list(raw.parse())
    return dict(raw.headers), "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_streamed_answer_is_served_from_the_cache_to_whole_and_streamed_requests(stack: LocalStack) -> None:
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=60)
    cache_table = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url)

    def default_variant_caches(values: dict[str, Any]) -> None:
        attributes = values["chat"]["_variants"][-1]["attributeValues"]
        attributes.update({"degrade": ["cache", "static", "reject"], "cache_ttl_s": 300})

    _flags(stack, default_variant_caches)
    deadline = time.monotonic() + 10  # the AppConfig agent emulator polls the file every 0.2 s
    while True:
        headers, streamed = _streamed(client)
        if cache_table.scan(TableName=stack.resources.cache_table)["Items"]:
            break
        assert time.monotonic() < deadline, "the streamed answer was never cached"
        time.sleep(0.2)
    assert "x-switchboard-degraded" not in headers
    answered_by = headers["x-switchboard-option"]

    def forced(values: dict[str, Any]) -> None:
        values["force-degraded"] = {"enabled": True, "routes": ["chat"]}

    _flags(stack, forced)
    deadline = time.monotonic() + 10
    while True:  # the primary answers until the forced mode shows
        whole = client.chat.completions.with_raw_response.create(model="chat", messages=QUESTION)
        if whole.headers.get("x-switchboard-degraded") == "cache":
            break
        assert time.monotonic() < deadline, "the forced degraded mode never served the cache"
        time.sleep(0.1)

    assert whole.headers["x-switchboard-option"] == answered_by
    assert whole.parse().choices[0].message.content == streamed
    headers, text = _streamed(client)
    assert headers["x-switchboard-degraded"] == "cache" and headers["x-switchboard-option"] == answered_by
    assert text == streamed
