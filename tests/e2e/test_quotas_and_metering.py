"""Issue 15's "Done when" on the local stack, with the official `openai` client: tenant limits (429
`rate_limit_exceeded` with Retry-After), budgets (`$budget` flag rules, 429 `insufficient_quota`)
and metering that equals, under concurrent load, the sum of the usage the clients saw.

The quotas' minute is pinned (a fixed clock handed to the gateway's `TenantQuotas`, and no settings
cache, so a limit or budget set through the CLI applies to the next request): no test waits for a
minute window to pass.
"""

from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

PINNED = datetime.now(UTC).replace(second=20, microsecond=0)
HELLO = [{"role": "user", "content": "Say hello to everyone here"}]
BUDGET_RULE = {
    "name": "budget-exhausted",
    "enabled": True,
    "rule": '(eq $budget "exhausted")',
    "attributeValues": {"chain": ["nova-micro-us"], "degrade": ["reject"]},
}


def _cli(*argv: str) -> str:
    from switchboard_local.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main([*argv, "--local"]) == 0, argv
    return out.getvalue()


def _client(stack: LocalStack, tenant: str) -> openai.OpenAI:
    key = json.loads(_cli("keys", "create", "--tenant", tenant, "--tier", "standard"))["key"]
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(autouse=True)
def pinned_quota_minute(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The gateway rebuilt with its quotas on a fixed clock and reading settings on every request."""
    from handlers import gateway, gateway_wiring

    monkeypatch.setattr(
        gateway_wiring,
        "_accounting",
        functools.partial(gateway_wiring._accounting, clock=lambda: PINNED, settings_ttl_s=0),
    )
    gateway.forget_cached_state()
    yield
    gateway.forget_cached_state()


def test_a_tenant_over_its_tpm_gets_429_with_retry_after_and_another_tenant_is_unaffected(
    stack: LocalStack,
) -> None:
    tenant_a, tenant_b = _client(stack, "tpm-a"), _client(stack, "tpm-b")
    _cli("limits", "set", "--tenant", "tpm-a", "--tpm", "100")
    # Reserves ceil(26/4) + 90 = 97 of 100 tokens, reconciled to the 11 the answer used.
    first = tenant_a.chat.completions.create(model="chat", messages=HELLO, max_tokens=90)  # type: ignore[arg-type]
    assert first.usage is not None and first.usage.total_tokens == 11

    with pytest.raises(openai.RateLimitError) as caught:  # 11 + 97 > 100
        tenant_a.chat.completions.create(model="chat", messages=HELLO, max_tokens=90)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as streamed:  # refused before the first byte too
        tenant_a.chat.completions.create(model="chat", messages=HELLO, max_tokens=90, stream=True)  # type: ignore[arg-type]

    for error in (caught.value, streamed.value):
        assert error.status_code == 429 and error.code == "rate_limit_exceeded"
        assert error.response.headers["retry-after"] == "40"  # the pinned minute ends in 40 s
        assert error.response.headers["x-switchboard-request-id"]
    for _ in range(3):  # tenant B, no limits: unaffected
        answer = tenant_b.chat.completions.create(model="chat", messages=HELLO, max_tokens=90)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    minute = _pinned_window(stack, "tpm-a")
    assert (minute.rpm, minute.tpm) == (1, 11)  # a refused request counts nothing (all or nothing)


def test_an_exhausted_token_budget_routes_by_a_flag_rule_then_rejects_with_insufficient_quota(
    stack: LocalStack,
) -> None:
    flags_file = Path(stack.flags_file)
    document = json.loads(flags_file.read_text())
    document["values"]["chat"]["_variants"].insert(0, BUDGET_RULE)
    flags_file.write_text(json.dumps(document, indent=2))
    tenant_a, tenant_b = _client(stack, "budget-a"), _client(stack, "budget-b")
    _cli("budgets", "set", "--tenant", "budget-a", "--tokens", "20", "--period", "day")

    options = [_ask(tenant_a) for _ in range(2)]  # 11 tokens each: 22 of 20 spent
    deadline = time.monotonic() + 10  # the agent emulator polls the edited document every 0.2 s
    while (routed := _ask(tenant_a))[1] != "budget-exhausted" and time.monotonic() < deadline:
        time.sleep(0.2)

    assert options == [("claude-haiku-us", "default")] * 2
    assert routed == ("nova-micro-us", "budget-exhausted")  # the cheaper chain, no code change
    assert _ask(tenant_b) == ("claude-haiku-us", "default")
    assert json.loads(_cli("budgets", "show", "--tenant", "budget-a", "--json"))["status"] == "exhausted"

    _cli(
        "budgets",
        "set",
        "--tenant",
        "budget-a",
        "--tokens",
        "20",
        "--period",
        "day",
        "--on-exhausted",
        "reject",
    )
    with pytest.raises(openai.RateLimitError) as caught:
        tenant_a.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.status_code == 429 and caught.value.code == "insufficient_quota"
    assert caught.value.response.headers["x-switchboard-request-id"]
    assert _ask(tenant_b) == ("claude-haiku-us", "default")


def _ask(client: openai.OpenAI) -> tuple[str | None, str | None]:
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    raw.parse()
    return raw.headers.get("x-switchboard-option"), raw.headers.get("x-switchboard-variant")


def _priced(option_id: str, price: dict[str, float], tmp_path: Path) -> None:
    """Give a catalogue option a list price through `switchboard options put`."""
    item = json.loads(_cli("options", "get", option_id))
    item["price"] = price
    path = tmp_path / f"{option_id}.json"
    path.write_text(json.dumps(item))
    _cli("options", "put", str(path))


def test_metered_usage_equals_the_sum_of_what_clients_saw_under_concurrent_load(
    stack: LocalStack, tmp_path: Path
) -> None:
    prices = {
        "claude-haiku-us": {"input": 0.8, "output": 4.0, "cached_input": 0.08},
        "titan-embed-v2-us": {"input": 0.02, "output": 0.0},
    }
    for option_id, price in prices.items():
        _priced(option_id, price, tmp_path)
    clients = [_client(stack, "meter-a") for _ in range(2)]  # two keys of one tenant
    _cli("limits", "set", "--tenant", "meter-a", "--rpm", "1000", "--tpm", "1000000")

    def one(n: int) -> tuple[int, int, int, Decimal]:
        client = clients[n % 2]
        words = " ".join(["word"] * (n % 7 + 1))
        if n % 3 == 0:
            answer = client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": words}]
            )
            usage, option = answer.parse().usage, answer.headers["x-switchboard-option"]
            assert usage is not None
            return _seen(usage.prompt_tokens, usage.completion_tokens, 0, prices.get(option))
        if n % 3 == 1:
            with client.chat.completions.with_streaming_response.create(
                model="chat",
                messages=[{"role": "user", "content": words}],
                stream=True,
                stream_options={"include_usage": True},
            ) as response:
                option = response.headers["x-switchboard-option"]
                chunks = list(response.parse())
            final = chunks[-1].usage
            assert final is not None
            return _seen(final.prompt_tokens, final.completion_tokens, 0, prices.get(option))
        embedded = client.embeddings.with_raw_response.create(model="embed", input=[words, "two words"])
        option = embedded.headers["x-switchboard-option"]
        return _seen(embedded.parse().usage.prompt_tokens, 0, 0, prices.get(option))

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(one, range(40)))

    report = json.loads(_cli("usage", "--tenant", "meter-a", "--json"))
    assert report["total"] == {
        "prompt_tokens": sum(s[0] for s in seen),
        "completion_tokens": sum(s[1] for s in seen),
        "cached_tokens": sum(s[2] for s in seen),
        "requests": 40,
        "cost_usd": format(sum((s[3] for s in seen), Decimal(0)).normalize(), "f"),
    }
    by_key = json.loads(_cli("usage", "--tenant", "meter-a", "--by", "key", "--json"))
    assert [row["requests"] for row in by_key["rows"]] == [20, 20]
    # every reservation was reconciled: the pinned minute holds the tokens the answers used
    minute = _pinned_window(stack, "meter-a")
    assert (minute.rpm, minute.tpm) == (40, sum(s[0] + s[1] for s in seen))


def _pinned_window(stack: LocalStack, tenant: str) -> Any:
    import boto3

    from switchboard.quotas.dynamo import DynamoUsageCounters
    from switchboard.quotas.service import RateLimiter

    client = boto3.client("dynamodb", endpoint_url=stack.aws_url, region_name="us-east-1")
    return RateLimiter(
        DynamoUsageCounters(stack.resources.usage_table, client=client), clock=lambda: PINNED
    ).current(tenant)


def _seen(
    prompt: int, completion: int, cached: int, price: dict[str, Any] | None
) -> tuple[int, int, int, Decimal]:
    from switchboard.metering import cost_usd
    from switchboard.options.model import Price

    priced = Price(**price) if price else None
    return (
        prompt,
        completion,
        cached,
        cost_usd(priced, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached),
    )
