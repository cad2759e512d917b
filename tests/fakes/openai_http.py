"""A real local HTTP server that plays an OpenAI-compatible endpoint for the provider tests.

It records every request (path, headers, JSON body) and answers with one canned response
(status, body, headers, optional delay), so a test sees exactly what went over the wire.

Streams (`respond_stream`): the parts are written one by one as HTTP/1.1 chunks (`text/event-stream`),
each flushed, `part_delay_s` apart (and `first_delay_s` before the first); `end="done"` closes
the chunked body properly, `end="cut"` drops the connection in the middle of a chunk. When the
client goes away while parts are still being written, `client_gone` is set.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

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
    stream: list[bytes] | None = None
    first_delay_s: float = 0.0
    part_delay_s: float = 0.0
    end: Literal["done", "cut"] = "done"


def sse(*events: Any) -> list[bytes]:
    """`data:` events (dicts as JSON, strings as is, e.g. "[DONE]"), one part each."""
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    role: bool = False,
) -> dict[str, Any]:
    """One `chat.completion.chunk` with a single choice."""
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "model": "gpt-test-2025",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage_chunk(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "choices": [], "usage": usage}


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
                if canned.stream is not None:
                    self._stream(canned)
                    return
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

            def _stream(self, canned: Canned) -> None:
                self.protocol_version = "HTTP/1.1"
                self.close_connection = True
                try:
                    self.send_response(canned.status)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Connection", "close")
                    for name, value in canned.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.flush()
                    write_chunks(self.connection, self.wfile, canned.stream or [], canned)
                except OSError:
                    server.client_gone.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.client_gone = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def respond(self, status: int = 200, body: Any = CHAT_OK_BODY, **kwargs: Any) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.canned = Canned(status=status, body=raw, **kwargs)

    def respond_stream(self, parts: Iterable[bytes], **kwargs: Any) -> None:
        self.canned = Canned(stream=list(parts), **kwargs)

    def reset(self) -> FakeOpenAIServer:
        self.canned = Canned()
        self.seen.clear()
        self.client_gone.clear()
        return self


def write_chunks(connection: socket.socket, wfile: Any, parts: list[bytes], canned: Canned) -> None:
    """Write `parts` as HTTP/1.1 chunks, paced as `canned` says; raises OSError when the client left."""
    for number, part in enumerate(parts):
        delay = canned.first_delay_s if number == 0 else canned.part_delay_s
        if delay:
            time.sleep(delay)
        if canned.end == "cut" and number == len(parts) - 1:
            wfile.write(f"{len(part) + 10:x}\r\n".encode() + part)  # promises more than it sends
            wfile.flush()
            connection.shutdown(socket.SHUT_RDWR)
            return
        wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        wfile.flush()
    if canned.end == "done":
        wfile.write(b"0\r\n\r\n")
        wfile.flush()


@contextmanager
def running_openai_server() -> Iterator[FakeOpenAIServer]:
    fake = FakeOpenAIServer()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()
