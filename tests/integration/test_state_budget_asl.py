"""The request workflow's state stays under Step Functions' 256 KiB cap in its worst case.

Issue 10 item 6: a request just under the old per-item inline threshold (128 KiB) plus an answer
just under it, with the workflow's own keys, overflowed the state (`States.DataLimitExceeded`,
which no Catch handles; moto enforces the cap as AWS does). The worst state is the cached-answer
branch: the input, the cache item read back as a JSON string, and the parsed cached answer. These
tests drive that branch through the real ASL with payloads just under today's shares
(`switchboard.state_budget`), and with the sizes that used to fail.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from switchboard.state_budget import ANSWER_INLINE_LIMIT_BYTES, INPUT_BUDGET_BYTES, json_size


def _route_caches_answers(gateway: Any) -> None:
    document = json.loads(gateway.flags_file.read_text())
    document["flags"]["echo"]["attributes"]["cache_ttl_s"] = document["flags"]["chat"]["attributes"][
        "cache_ttl_s"
    ]
    document["values"]["echo"]["_variants"][-1]["attributeValues"].update(
        {"degrade": ["cache", "reject"], "cache_ttl_s": 300}
    )
    gateway.flags_file.write_text(json.dumps(document))
    time.sleep(0.5)  # the agent emulator polls every 0.1 s


def _executions(gateway: Any) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    listed = sfn.list_executions(stateMachineArn=gateway.resources.state_machine_arn)["executions"]
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
    return sorted(described, key=lambda e: e["startDate"])


def _ask_twice_second_from_cache(gateway: Any, content: str) -> tuple[dict[str, Any], dict[str, Any]]:
    body = {"model": "echo", "messages": [{"role": "user", "content": content}]}
    status, headers, first = gateway.call("POST", "/v1/chat/completions", body)
    assert status == 200, first
    assert "x-switchboard-degraded" not in headers
    gateway.set_option_params("mock-echo", error_rate=1.0, error_kind="unavailable")
    status, headers, second = gateway.call("POST", "/v1/chat/completions", body)
    assert status == 200, second
    assert headers["x-switchboard-degraded"] == "cache"
    return first, second


def test_request_and_answer_just_under_their_shares_fit_on_the_cached_answer_branch(gateway) -> None:
    _route_caches_answers(gateway)
    # The answer: quotes, which JSON escaping (twice, in the cache item) grows the most.
    reply = '"' * ((ANSWER_INLINE_LIMIT_BYTES - 200) // 2)
    gateway.set_option_params("mock-echo", reply=reply)
    # The request: as large as still travels inline (the rest of the input is ~1 KiB).
    content = "a" * (INPUT_BUDGET_BYTES - 2048)

    first, second = _ask_twice_second_from_cache(gateway, content)

    assert first["choices"][0]["message"]["content"] == reply
    assert second["choices"][0]["message"]["content"] == reply
    answered, cached = _executions(gateway)[-2:]
    assert "$ref" not in json.loads(answered["input"])["request"]  # the request really was inline
    assert '"$ref"' not in answered["output"]  # and so was the answer
    assert json_size(json.loads(answered["output"])["result"]) > ANSWER_INLINE_LIMIT_BYTES - 300
    assert cached["status"] == "SUCCEEDED"


@pytest.mark.parametrize("kib", [100, 127])
def test_sizes_that_used_to_overflow_the_state_now_travel_by_claim_check(gateway, kib: int) -> None:
    """Under the old rule (each item inline up to 128 KiB) a 127 KiB request echoed back overflowed
    the state (DataLimitExceeded); both now travel by claim check, and the cache keeps the claim
    check, so the cached-answer branch serves large answers too."""
    _route_caches_answers(gateway)
    content = "q" * (kib * 1024 - 600)

    first, second = _ask_twice_second_from_cache(gateway, content)

    assert first["choices"][0]["message"]["content"] == f"[mock-echo] {content}"
    assert second["choices"][0]["message"]["content"] == f"[mock-echo] {content}"
    for execution in _executions(gateway)[-2:]:
        assert execution["status"] == "SUCCEEDED"
        assert json.loads(execution["input"])["request"].keys() == {"$ref"}
        assert json.loads(execution["output"])["result"].keys() == {"$ref"}


def test_quote_heavy_answer_under_the_old_threshold_fits_the_cached_answer_branch(gateway) -> None:
    """An 80 KiB answer of quotes was inline before (< 128 KiB) and, read back from the cache as an
    escaped string beside its parsed copy, overflowed the state."""
    _route_caches_answers(gateway)
    reply = '"' * 40_000
    gateway.set_option_params("mock-echo", reply=reply)

    _, second = _ask_twice_second_from_cache(gateway, "p" * 60_000)

    assert second["choices"][0]["message"]["content"] == reply
