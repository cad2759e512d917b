"""Issue 11's reproductions against the local stack over HTTP: a client's `user` cannot lift the kill
switch, a flag document naming an unknown option is refused, and a route left with no known option
answers a 503 that says why."""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e

HOSTILE_USERS = ["用户", "x,tier=premium", "u=1,route=echo", "a\r\nContext: tier=premium", "é" * 256, " "]


@pytest.fixture
def client(stack: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)


def _edit_flags(stack: LocalStack, mutate: Callable[[dict[str, Any]], None]) -> None:
    path = Path(stack.flags_file)
    document = json.loads(path.read_text())
    mutate(document)
    path.write_text(json.dumps(document, indent=2))


def _agent_version() -> str:
    """The Configuration-Version the stack's agent serves (its URL is in the handlers' environment)."""
    url = (
        os.environ["APPCONFIG_AGENT_URL"]
        + "/applications/switchboard/environments/local/configurations/routing"
    )
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.headers["Configuration-Version"])


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _ask(client: openai.OpenAI, user: str, model: str = "chat") -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], user=user
    )


def test_a_user_outside_latin_1_cannot_lift_the_kill_switch(stack: LocalStack, client: openai.OpenAI) -> None:
    before = _ask(client, "用户")
    assert before.headers["x-switchboard-option"] == "claude-haiku-us"
    assert "x-switchboard-routing-source" not in before.headers  # the agent answered, not a fallback

    version = _agent_version()
    _edit_flags(
        stack,
        lambda doc: doc["values"].update(
            {"kill-switch": {"enabled": True, "providers": [], "options": ["claude-haiku-us"]}}
        ),
    )
    assert _wait_for(lambda: _agent_version() != version)

    for user in HOSTILE_USERS:
        raw = _ask(client, user)
        assert raw.headers["x-switchboard-option"] == "nova-lite-us", user
        assert "x-switchboard-routing-source" not in raw.headers, user


def test_a_user_that_is_not_text_is_a_400_naming_the_field(stack: LocalStack) -> None:
    """A lone surrogate is valid JSON but no Unicode text: refused while parsing, never routed."""
    body = (
        b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "user": "\\ud800,tier=premium"}'
    )
    request = urllib.request.Request(
        f"{stack.url}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {DEV_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"]["param"] == "user"


def test_a_flag_document_naming_an_unknown_option_is_refused(
    stack: LocalStack, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="switchboard.agent")
    version = _agent_version()
    _edit_flags(
        stack, lambda doc: doc["values"]["echo"]["_variants"][0]["attributeValues"].update(chain=["ghost"])
    )

    assert _wait_for(lambda: any("unknown option 'ghost'" in r.getMessage() for r in caplog.records))
    assert _agent_version() == version  # the previous document is still served
    assert _ask(client, "u-1", model="echo").headers["x-switchboard-option"] == "mock-echo"


def test_a_route_left_without_a_known_option_says_so_in_its_503(
    stack: LocalStack, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """An option deleted after the document was accepted: the chain names no known option."""
    from switchboard_local.cli.main import main

    caplog.set_level(logging.WARNING)
    with open(os.devnull, "w") as sink, pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", sink)
        assert main(["options", "delete", "mock-echo", "--local"]) == 0

    def refused_naming_it() -> bool:  # once the gateway's option cache (1 s locally) has expired
        try:
            _ask(client, "u-1", model="echo")
        except openai.APIStatusError as exc:
            message = str(exc.body["message"])  # type: ignore[index]
            return (
                exc.status_code == 503
                and "could be tried: `mock-echo` not in the options catalogue" in message
            )
        return False

    assert _wait_for(refused_naming_it)
    assert any(
        r.getMessage() == "RouteNamesUnknownOptions" and getattr(r, "option_ids", None) == ["mock-echo"]
        for r in caplog.records
    )
