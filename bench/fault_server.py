"""A tiny OpenAI-compatible chat server with a switchable fault mode (stdlib only).

Started by the benchmark as the providers behind both gateways ("primary" and "fallback"), on
loopback, in its own process (so neither gateway's interpreter serves it).

    python bench/fault_server.py --name primary     # prints {"port": N} on its first line

- `POST /v1/chat/completions`: answers like OpenAI, or with `503` when the current fault draws.
  With `"stream": true` it streams as OpenAI does (`text/event-stream`, chunked): a wait of
  `first_token_ms`, a first `chat.completion.chunk` carrying the role and the first word, one word
  per chunk `chunk_delay_ms` apart, a last chunk with `finish_reason: "stop"`, `data: [DONE]`.
  The words are `stream_text(name, chunks)`, so a client knows the whole answer of each server.
  A drawn fault on a stream is `stream_fault`: `before_first_token` answers `503` before any byte;
  `mid_stream` sends `fail_after_chunks` content chunks, then ends the HTTP body cleanly with no
  finish reason and no `[DONE]` (a cut upstream stream that looks like an ordinary end at the HTTP
  level: only the missing `[DONE]` tells).
- `POST /control` with `{"error_rate": 0..1, "seed": int, "stream_fault": ..., "fail_after_chunks":
  n, "first_token_ms": ms, "chunks": n, "chunk_delay_ms": ms}`: the fault mode and stream shape.
- `GET /stats`: `{"calls": n, "failures": n}` since the last `/control` with `"reset": true`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STREAM_FAULTS = ("before_first_token", "mid_stream")


def stream_text(name: str, chunks: int) -> str:
    """The whole streamed answer of server `name`: one word per content chunk."""
    words = [f"[{name}]"] + [f"word{i}" for i in range(1, max(chunks, 1))]
    return " ".join(words)


def stream_words(name: str, chunks: int) -> list[str]:
    """`stream_text` cut into the content deltas the server sends (they concatenate to it)."""
    words = stream_text(name, chunks).split(" ")
    return [word if i == len(words) - 1 else word + " " for i, word in enumerate(words)]


class State:
    def __init__(
        self, name: str, *, first_token_ms: float = 0.0, chunks: int = 8, chunk_delay_ms: float = 0.0
    ) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.error_rate = 0.0
        self.rng = random.Random(0)
        self.calls = 0
        self.failures = 0
        self.stream_fault = "before_first_token"
        self.fail_after_chunks = 2
        self.first_token_ms = first_token_ms
        self.chunks = chunks
        self.chunk_delay_ms = chunk_delay_ms

    def control(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.error_rate = float(body.get("error_rate", self.error_rate))
            if "seed" in body:
                self.rng = random.Random(int(body["seed"]))
            if body.get("reset"):
                self.calls = self.failures = 0
            fault = str(body.get("stream_fault", self.stream_fault))
            if fault not in STREAM_FAULTS:
                raise ValueError(f"stream_fault must be one of {STREAM_FAULTS}")
            self.stream_fault = fault
            self.fail_after_chunks = int(body.get("fail_after_chunks", self.fail_after_chunks))
            self.first_token_ms = float(body.get("first_token_ms", self.first_token_ms))
            self.chunks = max(1, int(body.get("chunks", self.chunks)))
            self.chunk_delay_ms = float(body.get("chunk_delay_ms", self.chunk_delay_ms))

    def draw_failure(self) -> bool:
        with self.lock:
            self.calls += 1
            failed = self.error_rate > 0 and self.rng.random() < self.error_rate
            self.failures += int(failed)
            return failed


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY, as streaming servers set it (asyncio/uvicorn and Go do by default): with
        # Nagle's algorithm the first chunk, written 20 ms after the headers, waits for the
        # client's delayed ACK of the headers on a kept-alive connection (up to 40 ms on Linux).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                value = json.loads(raw or b"{}")
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}

        def do_GET(self) -> None:
            if self.path.startswith("/stats"):
                with state.lock:
                    self._send(200, {"name": state.name, "calls": state.calls, "failures": state.failures})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def _unavailable(self) -> None:
            self._send(
                503,
                {"error": {"message": f"{state.name} unavailable", "type": "server_error", "code": None}},
            )

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _stream(self, model: str, failed: bool) -> None:
            """An OpenAI chat-completions stream, or (a drawn `mid_stream` fault) a cut one."""
            with state.lock:
                fault, cut_after = state.stream_fault, state.fail_after_chunks
                first_token_s, delay_s = state.first_token_ms / 1000.0, state.chunk_delay_ms / 1000.0
                words, calls = stream_words(state.name, state.chunks), state.calls
            if failed and fault == "before_first_token":
                self._unavailable()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            base = {
                "id": f"chatcmpl-{state.name}-{calls}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
            }

            def event(delta: dict[str, Any], finish: str | None = None) -> None:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                self._write_chunk(b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n")

            time.sleep(first_token_s)
            try:
                for index, word in enumerate(words):
                    if failed and index >= cut_after:
                        self.wfile.write(b"0\r\n\r\n")  # a clean HTTP end: no finish, no [DONE]
                        self.wfile.flush()
                        return
                    if index and delay_s:
                        time.sleep(delay_s)
                    event({"role": "assistant", "content": word} if index == 0 else {"content": word})
                event({}, "stop")
                self._write_chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client left: nothing to finish
                self.close_connection = True

        def do_POST(self) -> None:
            body = self._body()
            if self.path.startswith("/control"):
                try:
                    state.control(body)
                except (TypeError, ValueError) as exc:
                    self._send(400, {"error": {"message": str(exc)}})
                    return
                self._send(200, {"ok": True})
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            failed = state.draw_failure()
            if body.get("stream") is True:
                self._stream(str(body.get("model", state.name)), failed)
                return
            if failed:
                self._unavailable()
                return
            self._send(
                200,
                {
                    "id": f"chatcmpl-{state.name}-{state.calls}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": str(body.get("model", state.name)),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": f"[{state.name}] ok"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                },
            )

    return Handler


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about a client that reset a kept-alive connection (a gateway closing its stream)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--first-token-ms", type=float, default=0.0, help="streams: wait before the first chunk"
    )
    parser.add_argument("--chunks", type=int, default=8, help="streams: content chunks (one word each)")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="streams: wait between chunks")
    args = parser.parse_args()
    state = State(
        args.name, first_token_ms=args.first_token_ms, chunks=args.chunks, chunk_delay_ms=args.chunk_delay_ms
    )
    server = FaultServer(("127.0.0.1", args.port), make_handler(state))
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
