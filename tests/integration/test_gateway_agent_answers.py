"""The gateway never trusts the shape of the agent's answer (issue 11, item 4).

A small HTTP relay sits between the gateway and the real agent emulator; a test makes it answer a
malformed document instead. Each malformed answer must be an agent failure served from
last-known-good (or the defaults with the newest operator flags), never a 500, a 404 or a kill
switch that silently does nothing.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from switchboard_local.emulation import reset_handler_caches

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
KILL_HAIKU = {"enabled": True, "providers": [], "options": ["claude-haiku-us"]}


class TamperingRelay(ThreadingHTTPServer):
    """Forwards to the agent, or answers `tampered` (JSON) when it is set."""

    daemon_threads = True

    def __init__(self, agent_url: str) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.agent_url = agent_url
        self.tampered: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RelayHandler(BaseHTTPRequestHandler):
    server: TamperingRelay

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.server.tampered is not None:
            body, version = json.dumps(self.server.tampered).encode(), "666"
        else:
            headers = {"Context": self.headers["Context"]} if self.headers["Context"] else {}
            request = urllib.request.Request(self.server.agent_url + self.path, headers=headers)
            with urllib.request.urlopen(request, timeout=5) as upstream:
                body, version = upstream.read(), upstream.headers["Configuration-Version"]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Configuration-Version", version)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def relay(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[TamperingRelay]:
    server = TamperingRelay(gateway.agent.url)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("APPCONFIG_AGENT_URL", server.url)
    reset_handler_caches()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        reset_handler_caches()


def _kill_haiku(gateway: Any) -> None:
    document = json.loads(gateway.flags_file.read_text())
    document["values"]["kill-switch"] = KILL_HAIKU
    version = gateway.agent.configuration_version
    gateway.flags_file.write_text(json.dumps(document))
    deadline = time.monotonic() + 5
    while gateway.agent.configuration_version == version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.agent.configuration_version != version


MALFORMED = [
    pytest.param({"chat": {"enabled": True, "chain": "claude-haiku-us"}}, id="string-chain"),
    pytest.param(
        {"chat": {"enabled": True, "chain": ["claude-haiku-us"]}, "kill-switch": "bad"}, id="kill-switch-bad"
    ),
    pytest.param({}, id="empty"),
    pytest.param(
        {
            "chat": {"enabled": True, "chain": ["claude-haiku-us"], "_variant": "default"},
            "kill-switch": {"enabled": True, "options": "claude-haiku-us"},
        },
        id="kill-switch-options-string",
    ),
    pytest.param([1, 2], id="not-an-object"),
]


@pytest.mark.parametrize("answer", MALFORMED)
def test_a_malformed_answer_keeps_last_known_good(gateway: Any, relay: TamperingRelay, answer: Any) -> None:
    _kill_haiku(gateway)
    status, headers, _ = gateway.call("POST", "/v1/chat/completions", {**CHAT, "user": "u-1"})
    assert (status, headers["x-switchboard-option"]) == (200, "nova-lite-us")
    assert "x-switchboard-routing-source" not in headers

    relay.tampered = answer
    status, headers, body = gateway.call("POST", "/v1/chat/completions", {**CHAT, "user": "u-1"})

    assert status == 200, body
    assert headers["x-switchboard-routing-source"] == "last_known_good"
    assert headers["x-switchboard-option"] == "nova-lite-us"  # the kill switch still holds


@pytest.mark.parametrize("answer", MALFORMED)
def test_a_malformed_answer_for_a_new_caller_keeps_the_kill_switch(
    gateway: Any, relay: TamperingRelay, answer: Any
) -> None:
    """No last-known-good for this context: the deploy-time defaults, with the newest kill switch."""
    _kill_haiku(gateway)
    assert gateway.call("POST", "/v1/chat/completions", {**CHAT, "user": "u-1"})[0] == 200

    relay.tampered = answer
    status, headers, body = gateway.call("POST", "/v1/chat/completions", {**CHAT, "user": "never-seen"})

    assert status == 200, body
    assert headers["x-switchboard-routing-source"] == "environment_default"
    assert headers["x-switchboard-option"] == "nova-lite-us"
    status, _, listing = gateway.call("GET", "/v1/models")
    assert status == 200 and {m["id"] for m in listing["data"]} >= {"chat"}
