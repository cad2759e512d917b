"""Issue 16 on `make local`, with the official OpenAI SDK: approving acme's adapter through the CLI
makes acme's requests on route `tuned` answer from that adapter (`x-switchboard-adapter`), whole and
streamed, while globex, with no approved adapter, is answered by the base component."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from switchboard_local.lifecycle_local import names_for, prefix_of
from switchboard_local.stack import LocalStack
from tests.e2e.local_cli import switchboard

pytestmark = pytest.mark.e2e

MESSAGES: Any = [{"role": "user", "content": "hello adapter"}]


def _client(stack: LocalStack, tenant: str) -> openai.OpenAI:
    key = switchboard("keys", "create", "--tenant", tenant, "--tier", "standard")["key"]
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)


def _whole(client: openai.OpenAI) -> tuple[str | None, str]:
    raw = client.chat.completions.with_raw_response.create(model="tuned", messages=MESSAGES)
    return raw.headers.get("x-switchboard-adapter"), raw.parse().choices[0].message.content or ""


def _streamed(client: openai.OpenAI) -> tuple[str | None, str]:
    raw = client.chat.completions.with_raw_response.create(model="tuned", messages=MESSAGES, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    return raw.headers.get("x-switchboard-adapter"), text


def test_acmes_approved_adapter_answers_acme_while_globex_gets_the_base(stack: LocalStack) -> None:
    names = names_for(prefix_of(stack.resources))
    group, base = names["sample_adapter_group"], names["sample_base_component"]
    acme, globex = _client(stack, "acme"), _client(stack, "globex")
    assert _whole(acme)[0] == "base"  # nothing approved yet: the base component serves everyone

    approved = switchboard("models", "approve", "--group", group, "--version", "1")
    assert approved["tenant"] == "acme" and approved["workflow"]["status"] == "SUCCEEDED", approved
    listing = switchboard("models", "list", "--group", group, "--json")
    (row,) = [t for t in listing["tenants"] if t["tenant"] == "acme"]
    component, label = row["serving"], f"{group}:v{row['version']}"

    # The gateway's and the invoke step's adapter caches last a second locally (OPTIONS_CACHE_TTL_S).
    deadline = time.monotonic() + 10
    while (answer := _whole(acme))[0] != label and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer == (label, f"[sample-lora-tuned/{component}] hello adapter")
    assert _streamed(acme) == (label, f"[sample-lora-tuned/{component}] hello adapter")

    assert _whole(globex) == ("base", f"[sample-lora-tuned/{base}] hello adapter")
    assert _streamed(globex) == ("base", f"[sample-lora-tuned/{base}] hello adapter")

    # A route without an adapter family says nothing about adapters.
    raw = acme.chat.completions.with_raw_response.create(model="echo", messages=MESSAGES)
    assert "x-switchboard-adapter" not in raw.headers
