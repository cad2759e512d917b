"""A real local HTTP server that plays an OpenAI-compatible endpoint for the provider tests.

It records every request (path, headers, JSON body) and answers with one canned response
(status, body, headers, optional delay), so a test sees exactly what went over the wire.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_OK_BODY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-test-2025",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
}


@dataclass
class Canned:
    status: int = 200
    body: bytes = json.dumps(CHAT_OK_BODY).encode()
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


class FakeOpenAIServer:
    def __init__(self) -> None:
        self.canned = Canned()
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                server.seen.append(Seen(self.path, dict(self.headers.items()), json.loads(raw or b"{}")))
                canned = server.canned
                if canned.delay_s:
                    time.sleep(canned.delay_s)
                try:
                    self.send_response(canned.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(canned.body)))
                    for name, value in canned.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(canned.body)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def respond(self, status: int = 200, body: Any = CHAT_OK_BODY, **kwargs: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.canned = Canned(status=status, body=raw, **kwargs)

    def reset(self) -> FakeOpenAIServer:
        self.canned = Canned()
        self.seen.clear()
        return self


@contextmanager
def running_openai_server() -> Iterator[FakeOpenAIServer]:
    fake = FakeOpenAIServer()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()
