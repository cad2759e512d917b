"""Tenant prompt profiles applied on the request path (issue 16), on `make local` with the official
OpenAI SDK: acme's system prompt prefix reaches the model (the mock counts prompt words), globex may
use only the routes its profile lists (403 on the others, and /v1/models says which), a tenant
without a profile is served as it asks. The profiles are `config/profiles.json`, as deployed."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import openai
import pytest

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "How do I reset my password?"}]


def _client(stack: LocalStack, tenant: str | None) -> openai.OpenAI:
    if tenant is None:
        return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)
    from switchboard_local.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["keys", "create", "--tenant", tenant, "--tier", "standard", "--local"]) == 0
    key = json.loads(out.getvalue())["key"]
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)


def _profile(tenant: str) -> dict:
    return json.loads((ROOT / "config" / "profiles.json").read_text())["tenants"][tenant]


def test_acmes_system_prompt_prefix_reaches_the_model(stack: LocalStack) -> None:
    plain = _client(stack, None).chat.completions.create(model="echo", messages=MESSAGES)  # type: ignore[arg-type]
    acme = _client(stack, "acme").chat.completions.create(model="echo", messages=MESSAGES)  # type: ignore[arg-type]

    prefix_words = len(_profile("acme")["system_prompt_prefix"].split())
    assert plain.usage is not None and acme.usage is not None
    assert acme.usage.prompt_tokens == plain.usage.prompt_tokens + prefix_words
    # The prefix is the system prompt, not the user's message: the answer echoes the user's text.
    assert acme.choices[0].message.content == plain.choices[0].message.content


def test_a_streamed_request_gets_the_profile_too(stack: LocalStack) -> None:
    stream = _client(stack, "acme").chat.completions.create(
        model="echo",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    expected = len(_profile("acme")["system_prompt_prefix"].split()) + len(MESSAGES[0]["content"].split())
    assert [u.prompt_tokens for u in usage] == [expected]


def test_globex_may_use_only_the_routes_its_profile_lists(stack: LocalStack) -> None:
    globex = _client(stack, "globex")
    allowed = set(_profile("globex")["routes"])

    assert {model.id for model in globex.models.list()} == allowed
    with pytest.raises(openai.PermissionDeniedError) as refused:
        globex.chat.completions.create(model="summarize", messages=MESSAGES)  # type: ignore[arg-type]
    assert "profile does not allow the route `summarize`" in str(refused.value)
    with pytest.raises(openai.PermissionDeniedError):
        globex.chat.completions.create(model="summarize", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert globex.chat.completions.create(model="chat", messages=MESSAGES).choices  # type: ignore[arg-type]
