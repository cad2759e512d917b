"""Tenant isolation over HTTP on the local stack: tenant B sending tenant A's messages while the
route degrades to the answer cache never gets A's answer (issue 11, item 2)."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from pathlib import Path

import openai
import pytest

from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "Summarize our confidential Q3 plan."}]


def _premium_client(stack: LocalStack, tenant: str) -> openai.OpenAI:
    from switchboard_local.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["keys", "create", "--tenant", tenant, "--tier", "premium", "--local"]) == 0
    key = json.loads(out.getvalue())["key"]
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)


def _ask(client: openai.OpenAI) -> tuple[str | None, str | None, str]:
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=QUESTION)  # type: ignore[arg-type]
    content = raw.parse().choices[0].message.content or ""
    return raw.headers.get("x-switchboard-degraded"), raw.headers.get("x-switchboard-option"), content


def _degrade_chat_to_the_cache(flags_file: Path) -> None:
    """Operator flags: force `chat` into degraded mode, premium policy `cache` then `static`."""
    document = json.loads(flags_file.read_text())
    premium = next(v for v in document["values"]["chat"]["_variants"] if v["name"] == "premium")
    premium["attributeValues"]["degrade"] = ["cache", "static"]
    document["values"]["force-degraded"] = {"enabled": True, "routes": ["chat"]}
    flags_file.write_text(json.dumps(document, indent=2))


def test_tenant_b_never_gets_tenant_a_s_cached_answer(stack: LocalStack) -> None:
    tenant_a, tenant_b = _premium_client(stack, "acme"), _premium_client(stack, "globex")
    degraded, option, answer_for_a = _ask(tenant_a)
    assert degraded is None and option == "claude-sonnet-us"  # answered, and cached for acme

    _degrade_chat_to_the_cache(Path(stack.flags_file))
    deadline = time.monotonic() + 10
    while (seen := _ask(tenant_a))[0] != "cache" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen == ("cache", "claude-sonnet-us", answer_for_a)  # A still gets A's own answer

    degraded, option, answer_for_b = _ask(tenant_b)

    assert degraded == "static" and option == "static"
    assert answer_for_b != answer_for_a
