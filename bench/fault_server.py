"""A tiny OpenAI-compatible chat server with a switchable fault mode (stdlib only).

Started by the benchmark as the LiteLLM anchor's "primary" and "fallback" providers, on loopback.

    python bench/fault_server.py --name primary     # prints {"port": N} on its first line

- `POST /v1/chat/completions`: answers like OpenAI, or with `503` when the current fault draws.
- `POST /control` with `{"error_rate": 0..1, "seed": int}`: the fault mode (the chaos schedule).
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


class State:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.error_rate = 0.0
        self.rng = random.Random(0)
        self.calls = 0
        self.failures = 0

    def draw_failure(self) -> bool:
        with self.lock:
            self.calls += 1
            failed = self.error_rate > 0 and self.rng.random() < self.error_rate
            self.failures += int(failed)
            return failed


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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

        def do_POST(self) -> None:
            body = self._body()
            if self.path.startswith("/control"):
                with state.lock:
                    state.error_rate = float(body.get("error_rate", state.error_rate))
                    if "seed" in body:
                        state.rng = random.Random(int(body["seed"]))
                    if body.get("reset"):
                        state.calls = state.failures = 0
                self._send(200, {"ok": True})
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": "not found"}})
                return
            if state.draw_failure():
                self._send(
                    503,
                    {"error": {"message": f"{state.name} unavailable", "type": "server_error", "code": None}},
                )
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State(args.name)))
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
