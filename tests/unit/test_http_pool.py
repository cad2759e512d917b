"""Keep-alive connections for provider streams and agent reads (switchboard.http_pool).

Against a real keep-alive HTTP/1.1 server on loopback that counts the connections it accepted:
a stream that ended well leaves its connection for the next one, a failed or abandoned stream's
connection is closed, a reused connection the server closed is replaced once, on a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import switchboard.http_pool as http_pool
from switchboard.errors import ErrorClass, ProviderError
from switchboard.http_pool import ConnectionPool, KeepAliveOpener
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import ChatMessage, ChatRequest, StreamDeadlines, StreamDelta
from switchboard.providers.openai_compatible import OpenAICompatibleProvider

DEADLINES = StreamDeadlines(first_token_s=5, idle_s=5, total_s=10)


def _event(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def _delta(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip


class KeepAliveServer:
    """Streams `hello world` (or, with `cut`, a broken stream) and keeps connections open."""

    def __init__(self) -> None:
        self.accepted = 0
        self.requests = 0
        self.cut = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with server.lock:
                    server.accepted += 1
                    server.sockets.append(self.connection)

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

            def do_GET(self) -> None:
                with server.lock:
                    server.requests += 1
                status = 404 if self.path.endswith("/missing") else 200
                body = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    server.requests += 1
                    cut = server.cut
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._chunk(_event(_delta("hello ")))
                if cut:  # a connection dropped mid-stream: no terminator, no [DONE]
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._chunk(_event(_delta("world")))
                self._chunk(_event(_delta(finish="stop")))
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(b"data: [DONE]\n\n"), b"data: [DONE]\n\n"))
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close_idle_connections(self) -> None:
        """What a server does to connections idle past its keep-alive timeout."""
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    running = KeepAliveServer()
    yield running
    running.stop()


def _option(url: str) -> LlmOption:
    return LlmOption(id="kept", provider=ProviderKind.OPENAI_COMPATIBLE, model="m", base_url=f"{url}/v1")


def _text(provider: OpenAICompatibleProvider, url: str) -> str:
    request = ChatRequest(messages=[ChatMessage("user", "Hi")])
    deltas: list[StreamDelta] = list(provider.stream(_option(url), request, DEADLINES))
    return "".join(delta.text or "" for delta in deltas)


def test_a_stream_that_ended_well_leaves_its_connection_for_the_next(server: KeepAliveServer) -> None:
    pool = ConnectionPool()
    provider = OpenAICompatibleProvider(pool=pool)
    for _ in range(4):
        assert _text(provider, server.url) == "hello world"
        assert pool.idle_count() == 1
    assert server.requests == 4 and server.accepted == 1


def test_a_failed_stream_closes_its_connection(server: KeepAliveServer) -> None:
    pool = ConnectionPool()
    provider = OpenAICompatibleProvider(pool=pool)
    assert _text(provider, server.url) == "hello world"
    server.cut = True
    with pytest.raises(ProviderError) as caught:
        _text(provider, server.url)
    assert caught.value.error_class is ErrorClass.UNAVAILABLE
    assert pool.idle_count() == 0  # never reused after a failure
    server.cut = False
    assert _text(provider, server.url) == "hello world"
    assert server.accepted == 2 and server.requests == 3


def test_an_abandoned_stream_closes_its_connection(server: KeepAliveServer) -> None:
    pool = ConnectionPool()
    provider = OpenAICompatibleProvider(pool=pool)
    deltas = provider.stream(
        _option(server.url), ChatRequest(messages=[ChatMessage("user", "Hi")]), DEADLINES
    )
    assert next(deltas).text == "hello "
    deltas.close()  # type: ignore[attr-defined]  # a generator: its reader went away
    assert pool.idle_count() == 0


def test_an_idle_connection_the_server_closed_is_dropped_when_taken(server: KeepAliveServer) -> None:
    pool = ConnectionPool()
    provider = OpenAICompatibleProvider(pool=pool)
    assert _text(provider, server.url) == "hello world"
    server.close_idle_connections()
    assert _text(provider, server.url) == "hello world"
    assert server.accepted == 2 and server.requests == 2


def test_a_reused_connection_that_fails_before_the_answer_is_retried_once_afresh(
    server: KeepAliveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = ConnectionPool()
    provider = OpenAICompatibleProvider(pool=pool)
    assert _text(provider, server.url) == "hello world"
    # The race the liveness check cannot see: the server closes just after the check.
    monkeypatch.setattr(http_pool, "idle_connection_is_dead", lambda _connection: False)
    server.close_idle_connections()
    assert _text(provider, server.url) == "hello world"
    assert server.accepted == 2 and server.requests == 2  # the dead one never carried the request


def test_a_fresh_connection_that_fails_is_not_retried() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []

    def reset_each() -> None:
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()  # an RST: the request fails on a connection that was never reused

    thread = threading.Thread(target=reset_each, daemon=True)
    thread.start()
    provider = OpenAICompatibleProvider(pool=ConnectionPool())
    try:
        with pytest.raises(ProviderError) as caught:
            _text(provider, f"http://127.0.0.1:{port}")
        assert caught.value.error_class is ErrorClass.UNAVAILABLE
        assert len(accepted) == 1
    finally:
        listener.close()
        thread.join(2)


def test_the_pool_is_bounded_per_host_and_in_all() -> None:
    pool = ConnectionPool(max_idle_per_host=2, max_idle_total=3)
    made = [http_pool.http.client.HTTPConnection("127.0.0.1", 9) for _ in range(6)]
    for connection in made[:3]:
        pool.give_back(("http", "a", 1), connection)
    assert pool.idle_count(("http", "a", 1)) == 2
    for connection in made[3:]:
        pool.give_back(("http", "b", 1), connection)
    assert pool.idle_count() == 3 and pool.idle_count(("http", "b", 1)) == 2


def test_the_pool_drops_connections_idle_too_long() -> None:
    now = [0.0]
    pool = ConnectionPool(max_idle_s=20.0, clock=lambda: now[0])
    pool.give_back(("http", "a", 1), http_pool.http.client.HTTPConnection("127.0.0.1", 9))
    now[0] = 20.5
    assert pool.take(("http", "a", 1)) is None and pool.idle_count() == 0


def test_the_agent_opener_keeps_one_connection_and_answers_as_urlopen(server: KeepAliveServer) -> None:
    opener = KeepAliveOpener()
    for _ in range(3):
        with opener(urllib.request.Request(f"{server.url}/config"), timeout=1.0) as response:
            assert json.loads(response.read()) == {"ok": True}
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener(urllib.request.Request(f"{server.url}/missing"), timeout=1.0)
    assert caught.value.code == 404
    server.close_idle_connections()
    after_close = opener(urllib.request.Request(f"{server.url}/config"), timeout=1.0)
    assert json.loads(after_close.read()) == {"ok": True}
    assert server.accepted == 2 and server.requests == 5


def test_the_agent_opener_reports_an_unreachable_agent_as_urlerror() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(urllib.error.URLError):
        KeepAliveOpener()(urllib.request.Request(f"http://127.0.0.1:{port}/x"), timeout=1.0)
