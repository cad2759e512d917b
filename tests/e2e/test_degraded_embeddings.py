"""Embeddings through the degraded path on the local stack (issue 13): a cached embedding is a fine
degraded answer, a static one is not. The seeded `embed` route degrades to `cache` then `reject`
(vectors of another model do not compare, so no smaller model either)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

DOCUMENTS = ["Switchboard routes LLM requests", "The circuit breaker opens after failures"]


def test_cached_embedding_is_served_while_forced_degraded_and_unseen_text_is_rejected(
    stack: LocalStack,
) -> None:
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)
    healthy = client.embeddings.with_raw_response.create(model="embed", input=DOCUMENTS)
    assert "x-switchboard-degraded" not in healthy.headers
    vectors = [item.embedding for item in healthy.parse().data]

    flags_file = Path(stack.flags_file)
    document = json.loads(flags_file.read_text())
    document["values"]["force-degraded"] = {"enabled": True, "routes": ["embed"]}
    flags_file.write_text(json.dumps(document, indent=2))
    deadline = time.monotonic() + 10  # the AppConfig agent emulator polls the file every 0.2 s
    attempt = 0
    while True:  # a text embedded for the first time: 200 until the forced mode shows, then 503
        attempt += 1
        try:
            client.embeddings.create(model="embed", input=f"never seen before #{attempt}")
        except openai.APIStatusError as exc:
            rejected = exc
            break
        assert time.monotonic() < deadline, "the forced degraded mode never showed"
        time.sleep(0.1)

    assert rejected.status_code == 503  # `reject`: a static embedding would be a wrong answer
    assert rejected.response.json()["error"]["code"] == "no_healthy_option"
    assert int(rejected.response.headers["retry-after"]) >= 1

    cached = client.embeddings.with_raw_response.create(model="embed", input=DOCUMENTS)

    assert cached.headers["x-switchboard-degraded"] == "cache"
    assert cached.headers["x-switchboard-option"] == healthy.headers["x-switchboard-option"]
    cached_vectors = [item.embedding for item in cached.parse().data]
    assert [len(v) for v in cached_vectors] == [len(v) for v in vectors]
    for served, original in zip(cached_vectors, vectors, strict=True):
        assert served == pytest.approx(original, abs=1e-6)
