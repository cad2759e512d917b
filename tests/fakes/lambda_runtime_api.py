"""A fake Lambda Runtime API + Extensions API (``AWS_LAMBDA_RUNTIME_API``) for in-process tests.

It keeps the documented ordering (Lambda developer guide, "Lambda Extensions API" and "Runtime
API"): extensions register during init, and registration is refused once the runtime has asked for
its first invocation (``/runtime/invocation/next``); an invocation is delivered to the runtime and,
as an ``INVOKE`` event, to every registered extension; it ends (the environment "freezes") only
when the runtime *and* every extension have called ``next`` again. Everything the clients do is
written to :attr:`FakeLambdaApi.log` with a monotonic timestamp, so tests assert orderings.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXT = "/2020-01-01/extension"
RUNTIME = "/2018-06-01/runtime"


@dataclass
class Invocation:
    request_id: str
    payload: Any
    deadline_ms: int
    response: Any = None
    error: Any = None
    ended: threading.Event = field(default_factory=threading.Event)


@dataclass
class Registered:
    identifier: str
    name: str
    events: list[str]
    ready: bool = False  # called next since the last invocation was delivered


class FakeLambdaApi:
    """Start with :meth:`start`; ``runtime_api`` is the ``host:port`` for ``AWS_LAMBDA_RUNTIME_API``."""

    def __init__(self, *, register_status: int = 200) -> None:
        self.register_status = register_status
        self.log: list[tuple[float, str, str]] = []
        self.errors: list[tuple[str, str, dict[str, Any]]] = []
        self.extensions: dict[str, Registered] = {}
        self._lock = threading.Condition()
        self._pending: list[Invocation] = []
        self._current: Invocation | None = None
        self._runtime_ready = False
        self._init_over = False
        self._server: ThreadingHTTPServer | None = None

    # --- test side ---------------------------------------------------------------------------

    def start(self) -> FakeLambdaApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    @property
    def runtime_api(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}" if isinstance(host, str) else f"{host.decode()}:{port}"

    def invoke(self, payload: Any, *, timeout_s: float = 5.0) -> Invocation:
        """Queue an invocation (delivered once the runtime and every extension are ready)."""
        invocation = Invocation(str(uuid.uuid4()), payload, int((time.time() + timeout_s) * 1000))
        with self._lock:
            self._pending.append(invocation)
            self._lock.notify_all()
        return invocation

    def when(self, what: str, request_id: str = "") -> float:
        """When ``what`` (for ``request_id``, if given) was first logged; raises if never."""
        for at, name, rid in self.log:
            if name == what and (not request_id or rid == request_id):
                return at
        raise AssertionError(f"{what} {request_id} never happened: {self.log}")

    # --- server side -------------------------------------------------------------------------

    _closed = False

    def _note(self, what: str, request_id: str = "") -> None:
        self.log.append((time.monotonic(), what, request_id))

    def _dispatchable(self) -> bool:
        return (
            self._current is None
            and bool(self._pending)
            and self._runtime_ready
            and all(e.ready for e in self.extensions.values())
        )

    def _end_current_if_done(self) -> None:
        current = self._current
        if current is not None and self._runtime_ready and all(e.ready for e in self.extensions.values()):
            self._note("invocation-ended", current.request_id)
            current.ended.set()
            self._current = None
            self._lock.notify_all()

    def _wait_for_delivery(self, check: Any) -> Invocation | None:
        """Block until an invocation is delivered (the runtime dispatches; extensions follow)."""
        while not self._closed:
            current = check()
            if current is not None:
                return current
            self._lock.wait(0.05)
        return None

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        path = request.path
        if method == "POST" and path == f"{EXT}/register":
            self._register(request, body)
        elif method == "GET" and path == f"{EXT}/event/next":
            self._extension_next(request)
        elif method == "POST" and path in (f"{EXT}/init/error", f"{EXT}/exit/error"):
            identifier = request.headers.get("Lambda-Extension-Identifier", "")
            self.errors.append((path.rsplit("/", 2)[-2], identifier, json.loads(body or b"{}")))
            self._note(f"extension-{path.rsplit('/', 2)[-2]}-error", identifier)
            self._reply(request, 202, {"status": "OK"})
        elif method == "GET" and path == f"{RUNTIME}/invocation/next":
            self._runtime_next(request)
        elif method == "POST" and path.startswith(f"{RUNTIME}/invocation/"):
            _, _, rest = path.partition(f"{RUNTIME}/invocation/")
            request_id, _, kind = rest.partition("/")
            with self._lock:
                if self._current is not None and self._current.request_id == request_id:
                    if kind == "response":
                        self._current.response = json.loads(body or b"null")
                    else:
                        self._current.error = json.loads(body or b"null")
            self._note(f"runtime-{kind}", request_id)
            self._reply(request, 202, {"status": "OK"})
        else:
            self._reply(request, 404, {"errorMessage": f"{method} {path}"})

    def _register(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        name = request.headers.get("Lambda-Extension-Name") or ""
        events = list(json.loads(body or b"{}").get("events") or [])
        with self._lock:
            if self.register_status != 200:
                self._reply(request, self.register_status, {"errorType": "Extension.Failed"})
                return
            if self._init_over or not name or "SHUTDOWN" in events:
                # Internal extensions may not register for SHUTDOWN; nobody registers after init.
                self._reply(request, 403, {"errorType": "Extension.InvalidRegistration"})
                return
            identifier = str(uuid.uuid4())
            self.extensions[identifier] = Registered(identifier, name, events)
        self._note("extension-registered", identifier)
        self._reply(
            request,
            200,
            {"functionName": "fake", "functionVersion": "$LATEST", "handler": "fake.handler"},
            {"Lambda-Extension-Identifier": identifier},
        )

    def _extension_next(self, request: BaseHTTPRequestHandler) -> None:
        identifier = request.headers.get("Lambda-Extension-Identifier", "")
        with self._lock:
            extension = self.extensions.get(identifier)
            if extension is None:
                self._reply(request, 403, {"errorType": "Extension.Unknown"})
                return
            previous = self._current
            extension.ready = True
            self._note("extension-next", previous.request_id if previous is not None else "")
            self._end_current_if_done()
            self._lock.notify_all()

            def delivered() -> Invocation | None:
                current = self._current
                return current if current is not None and not extension.ready else None

            invocation = self._wait_for_delivery(delivered)
        if invocation is None:
            return
        event = {
            "eventType": "INVOKE",
            "deadlineMs": invocation.deadline_ms,
            "requestId": invocation.request_id,
            "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fake",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-00000000-000000000000000000000000"},
        }
        self._reply(request, 200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

    def _runtime_next(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._init_over = True
            self._runtime_ready = True
            self._note("runtime-next")
            self._end_current_if_done()

            def dispatch() -> Invocation | None:
                if self._current is not None and not self._runtime_ready:
                    return self._current
                if self._dispatchable():
                    self._current = self._pending.pop(0)
                    self._runtime_ready = False
                    for extension in self.extensions.values():
                        extension.ready = False
                    self._note("invocation-delivered", self._current.request_id)
                    self._lock.notify_all()
                    return self._current
                return None

            invocation = self._wait_for_delivery(dispatch)
        if invocation is None:
            return
        self._reply(
            request,
            200,
            invocation.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            },
        )

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        request.send_response(status)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)
        request.wfile.flush()


def run_python_runtime(api: FakeLambdaApi, handler: Any, *, invocations: int) -> threading.Thread:
    """The managed Python runtime's loop (awslambdaric's order): ``next``, the handler, then the
    response (or error) is posted, then ``next`` again. A thread; it stops after ``invocations``."""
    import http.client

    def loop() -> None:
        connection = http.client.HTTPConnection(api.runtime_api, timeout=None)
        served = 0
        while True:
            connection.request("GET", f"{RUNTIME}/invocation/next")
            response = connection.getresponse()
            payload = json.loads(response.read() or b"null")
            if served == invocations or response.status != 200:
                return
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            context = _Context(request_id, int(response.headers["Lambda-Runtime-Deadline-Ms"]))
            try:
                result, kind = handler(payload, context), "response"
            except Exception as exc:
                result, kind = {"errorType": type(exc).__name__, "errorMessage": str(exc)}, "error"
            body = json.dumps(result).encode()
            connection.request("POST", f"{RUNTIME}/invocation/{request_id}/{kind}", body=body)
            connection.getresponse().read()
            served += 1

    thread = threading.Thread(target=loop, name="fake-runtime", daemon=True)
    thread.start()
    return thread


@dataclass
class _Context:
    aws_request_id: str
    deadline_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))
