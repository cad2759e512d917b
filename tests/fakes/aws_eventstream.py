"""A real local HTTP server that streams AWS event-stream messages (`application/vnd.amazon.eventstream`).

A botocore client pointed at it (`endpoint_url`) parses what it sends exactly as it parses
Bedrock's ConverseStream or SageMaker's InvokeEndpointWithResponseStream: the messages are encoded
in the binary event-stream framing (prelude, headers, payload, CRC32s), written as HTTP/1.1 chunks
one by one, paced like the OpenAI fake (`tests.fakes.openai_http.write_chunks`). An error before
the stream is an ordinary AWS JSON error response (`respond_error`).
"""

from __future__ import annotations

import binascii
import json
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.openai_http import Canned, write_chunks


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers (header value type 7)."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event(event_type: str, body: Any) -> bytes:
    """A JSON event (`messageStart`, `contentBlockDelta`, ...)."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(body).encode())


def exception(exception_type: str, message: str, **members: Any) -> bytes:
    """An exception event (`throttlingException`, `ModelStreamError`, ...)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    key = "Message" if exception_type[:1].isupper() else "message"
    return encode_message(headers, json.dumps({key: message, **members}).encode())


def payload_part(data: bytes) -> bytes:
    """SageMaker's `PayloadPart` event: raw bytes from the container."""
    headers = {
        ":event-type": "PayloadPart",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    return encode_message(headers, data)


@dataclass
class SeenCall:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeEventStreamServer:
    def __init__(self) -> None:
        self.canned = Canned(stream=[])
        self.error: tuple[int, str, str] | None = None
        self.error_times: int | None = None
        self.announce_close = False
        """Say `Connection: close` on a stream (the connection is closed after it either way)."""
        self.seen: list[SeenCall] = []
        self.client_gone = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.seen.append(SeenCall(self.path, dict(self.headers.items()), raw))
                self.close_connection = True
                canned = server.canned
                try:
                    if server.error is not None and server.error_times != 0:
                        if server.error_times is not None:
                            server.error_times -= 1
                        status, code, message = server.error
                        body = json.dumps({"message": message}).encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("x-amzn-ErrorType", code)
                        self.send_header("Connection", "close")  # a client must not reuse it
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    if canned.delay_s:
                        time.sleep(canned.delay_s)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                    self.send_header("Transfer-Encoding", "chunked")
                    if server.announce_close:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    write_chunks(self.connection, self.wfile, canned.stream or [], canned)
                except OSError:
                    server.client_gone.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def respond_stream(self, messages: Iterable[bytes], **kwargs: Any) -> None:
        """Stream `messages` (after the errors `respond_error(..., times=n)` asked for)."""
        if self.error_times is None:
            self.error = None
        self.canned = Canned(stream=list(messages), **kwargs)

    def respond_error(self, status: int, code: str, message: str, *, times: int | None = None) -> None:
        """Answer with an AWS JSON error (every time, or the next `times` calls, then the stream)."""
        self.error = (status, code, message)
        self.error_times = times

    def reset(self) -> FakeEventStreamServer:
        self.canned = Canned(stream=[])
        self.error = None
        self.error_times = None
        self.announce_close = False
        self.seen.clear()
        self.client_gone.clear()
        return self


@contextmanager
def running_event_stream_server() -> Iterator[FakeEventStreamServer]:
    fake = FakeEventStreamServer()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()
