"""The gateway function's HTTP entrypoint under AWS Lambda Web Adapter (streamed and whole answers).

Why an HTTP server: Lambda streams responses natively only from Node.js runtimes. API Gateway REST
response streaming (``responseTransferMode: STREAM``) calls ``InvokeWithResponseStream`` and needs
the function to write a JSON prelude (status, headers), eight NUL bytes, then the body as it is
produced. AWS Lambda Web Adapter (an AWS-published layer, zip packages, no Docker, no custom
runtime loop of our own to maintain) does exactly that: it runs as an extension, turns each
invocation into an HTTP request to this server on ``AWS_LWA_PORT`` and streams our HTTP response
back (``AWS_LWA_INVOKE_MODE=response_stream``). A hand-written runtime loop would have to
re-implement the Runtime API's streaming protocol, error trailers and the init/invoke lifecycle.

What arrives: the method, path, query, headers and body of the API Gateway request, plus the
original ``requestContext`` (request id, stage, the REQUEST authorizer's context: tenant, tier...)
as JSON in the ``x-amzn-request-context`` header and the Lambda context (request id, deadline,
function ARN, X-Ray trace id) in ``x-amzn-lambda-context`` (LWA's "Request & Lambda Context"
guide; LWA overwrites both headers, so a client cannot forge them).

What it does with it:

- ``POST /v1/chat/completions`` with ``"stream": true`` and a body the gateway would accept:
  ``StreamService.open`` decides everything before the first byte (auth, routing, the first
  candidate's first token, or the degrade policy); an ``ApiError`` is rendered as the gateway
  renders it (JSON, the catalogue's status and headers). Otherwise the status and the
  ``x-switchboard-*`` headers go out at once and each SSE chunk is written and flushed as it comes.
- Everything else (whole requests, and any stream request the gateway would refuse: bad JSON, a
  schema error, a missing caller, a foreign media type, a body over the limit) rebuilds the API
  Gateway proxy event and calls ``handlers.gateway.handler``, so status, headers and body are the
  ones the buffered gateway answers, byte for byte.
- ``GET`` :data:`READINESS_PATH`: LWA's readiness check (it polls until the server answers).
- ``POST`` :data:`PASS_THROUGH_PATH`: LWA posts non-HTTP events (a direct ``Invoke``) here; the
  only one the gateway answers is ``switchboard doctor``'s ``{"switchboard_selfcheck": true}``.

After-answer writes (``switchboard.after_response``): LWA is this function's runtime (it calls
``/runtime/invocation/next``, after our readiness check passes), so :func:`main` registers the
after-response internal extension before the server listens, and every request LWA forwards is
one invocation (``after_response.invocation``, keyed by the Lambda request id), finished once its
response has been written. A whole request's metering writes are deferred to the extension (the
gateway handler asks for that); a stream keeps writing after ``data: [DONE]``, before its
connection closes, and only releases the extension when it ends.

Cold start: this module imports the standard library only. The gateway's wiring and stream seam
(``handlers.gateway_wiring``: Powertools' logger and metrics, pydantic, the service) are imported on
a background thread as soon as the server listens, so they are usually warm by the first invocation
and never delay LWA's readiness check. The whole-request layer (``handlers.gateway``: Powertools'
REST resolver with OpenAPI validation, about 115 ms of imports a stream never uses) loads on the
same thread once no request is in flight (before the first one arrives, or after it has ended), so
it does not compete with a first streamed request for the interpreter; a whole request that comes
first imports it on its own path.

Run with ``python -m handlers.gateway_http`` (``handlers/gateway_http.sh`` is the function's handler).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from switchboard import after_response
from switchboard.contract import env

JSON = "application/json"
READINESS_PATH = env.GATEWAY_READINESS_PATH
EVENTS_PATH = env.GATEWAY_EVENTS_PATH
DEFAULT_PORT = env.GATEWAY_HTTP_PORT
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"
ADAPTER_HEADERS = frozenset({REQUEST_CONTEXT_HEADER, LAMBDA_CONTEXT_HEADER, "x-amz-tenant-id"})
"""Headers LWA adds to the request; the original event did not carry them."""
TRACE_ID_ENV = "_X_AMZN_TRACE_ID"
TRACE_HEADER = "x-amzn-trace-id"


# --- What the entrypoint needs from the streaming use case --------------------------------------


class StreamAnswerLike(Protocol):
    """``switchboard.streaming.StreamAnswer``: what goes out before the first byte, then the bytes."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def chunks(self) -> Iterator[bytes]: ...


OpenStream = Callable[[dict[str, Any]], StreamAnswerLike | None]
"""A proxy event -> its stream (errors decided before the first byte included), or None when the
event is not a stream request the gateway would accept (the gateway handler answers it)."""


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the server calls: the buffered gateway handler and the stream opener (built lazily)."""

    gateway_handler: Callable[[dict[str, Any], Any], Any]
    """``handlers.gateway.handler``: every whole request, and the self-check event."""
    open_stream: OpenStream | None
    """None: streams are not wired, and a ``stream: true`` request goes to the gateway handler."""
    load_when_idle: Callable[[], object] | None = None
    """What the warm-up loads once no request is in flight (the whole-request layer), if anything."""


def default_wiring() -> Wiring:
    """The deployed wiring: ``handlers.gateway``'s handler and its stream seam.

    ``open_stream(event)`` (``handlers.gateway_wiring``'s, re-exported by ``handlers.gateway``):
    the seam the local stack's front door calls too, so local and AWS streams run the same code
    (request parsing, caller, error rendering included). Only the stream seam is imported here;
    ``handlers.gateway`` (the resolver) on the first whole request or when the server is idle.
    """
    from handlers import gateway_wiring

    return Wiring(
        gateway_handler=_whole_request,
        open_stream=gateway_wiring.open_stream,
        load_when_idle=_whole_request_layer,
    )


def _whole_request_layer() -> Any:
    from handlers import gateway

    return gateway


def _whole_request(event: dict[str, Any], context: Any) -> Any:
    """``handlers.gateway.handler``, imported on first use."""
    return _whole_request_layer().handler(event, context)


# --- The Lambda context LWA forwards --------------------------------------------------------------


class ForwardedLambdaContext:
    """The invocation's Lambda context rebuilt from ``x-amzn-lambda-context`` (Powertools reads it)."""

    def __init__(self, forwarded: Mapping[str, Any]) -> None:
        config = forwarded.get("env_config") or {}
        self.aws_request_id = str(forwarded.get("request_id") or "")
        self.invoked_function_arn = str(forwarded.get("invoked_function_arn") or "")
        self.function_name = str(
            config.get("function_name") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        )
        self.function_version = str(
            config.get("version") or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
        )
        self.memory_limit_in_mb = int(
            config.get("memory") or os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 0
        )
        self.log_group_name = str(config.get("log_group") or os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", ""))
        self.log_stream_name = str(
            config.get("log_stream") or os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        )
        self.xray_trace_id = forwarded.get("xray_trace_id")
        deadline = forwarded.get("deadline")
        self._deadline_ms = int(deadline) if isinstance(deadline, int | float) else None

    def get_remaining_time_in_millis(self) -> int:
        if self._deadline_ms is None:
            return 0
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _json_header(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


# --- The API Gateway proxy event, rebuilt --------------------------------------------------------


def proxy_event(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    request_context: Mapping[str, Any],
) -> dict[str, Any]:
    """The REST Lambda-proxy event API Gateway built for this request (the one LWA unpacked).

    LWA forwards the path without the stage (``event.path``); should a stage prefix arrive, it is
    removed when ``requestContext.path`` shows it is one.
    """
    split = urlsplit(target)
    path = split.path or "/"
    stage = str(request_context.get("stage") or "")
    if stage and path.startswith(f"/{stage}/") and request_context.get("path") == path:
        path = path[len(stage) + 1 :]
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        if name.lower() in ADAPTER_HEADERS:
            continue
        single[name] = value
        multi.setdefault(name, []).append(value)
    query = parse_qsl(split.query, keep_blank_values=True)
    query_single = {k: v for k, v in query} or None
    query_multi: dict[str, list[str]] = {}
    for k, v in query:
        query_multi.setdefault(k, []).append(v)
    text: str | None
    encoded = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": str(request_context.get("resourcePath") or path),
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query_single,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": dict(request_context),
        "body": text,
        "isBase64Encoded": encoded,
    }


# --- The server ------------------------------------------------------------------------------------


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    # LWA keeps one connection per execution environment; the backlog only matters to tests.
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], wiring: Callable[[], Wiring]) -> None:
        super().__init__(address, GatewayRequestHandler)
        self._wiring_factory = wiring
        self._wiring: Wiring | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Condition()

    def request_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def request_ended(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def wait_until_idle(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0)

    def wiring(self) -> Wiring:
        with self._lock:
            if self._wiring is None:
                self._wiring = self._wiring_factory()
            return self._wiring

    def warm(self) -> threading.Thread:
        """Import and wire the gateway on a background thread (the first request waits if needed),
        then, once no request is in flight, what the wiring loads when idle (the whole-request layer)."""

        def run() -> None:
            try:
                wiring = self.wiring()
                if wiring.load_when_idle is not None:
                    self.wait_until_idle()
                    wiring.load_when_idle()
            except Exception as exc:  # the first request raises it again, and it is logged there
                print(f"gateway_http: warm-up failed: {type(exc).__name__}: {exc}", file=sys.stderr)

        thread = threading.Thread(target=run, name="gateway-warm-up", daemon=True)
        thread.start()
        return thread


class GatewayRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the gateway logs each request itself (JSON lines, with the request id)."""

    def do_GET(self) -> None:
        if urlsplit(self.path).path == READINESS_PATH and REQUEST_CONTEXT_HEADER not in self.headers:
            self._send_whole(HTTPStatus.OK, {"Content-Type": JSON}, b'{"ready":true}')
            return
        self._serve()

    def do_POST(self) -> None:
        if urlsplit(self.path).path == EVENTS_PATH and not _is_api_request(self.headers):
            self._pass_through()
            return
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    # --- the two paths -----------------------------------------------------------------------

    def _serve(self) -> None:
        lambda_context = ForwardedLambdaContext(_json_header(self.headers.get(LAMBDA_CONTEXT_HEADER)))
        # One invocation per request LWA forwards: the after-response extension waits for this
        # block (the whole response written), then runs a whole request's deferred writes.
        self.server.request_started()
        try:
            with after_response.invocation(lambda_context.aws_request_id):
                self._serve_invocation(lambda_context)
        finally:
            self.server.request_ended()

    def _serve_invocation(self, lambda_context: ForwardedLambdaContext) -> None:
        body = self._read_body()
        request_context = _json_header(self.headers.get(REQUEST_CONTEXT_HEADER))
        _set_trace_id(invocation_trace_header(self.headers.get(TRACE_HEADER), lambda_context.xray_trace_id))
        event = proxy_event(self.command, self.path, self.headers.items(), body, request_context)
        wiring = self.server.wiring()
        answer = wiring.open_stream(event) if wiring.open_stream is not None else None
        if answer is not None:
            self._send_answer(answer)
            return
        self._whole(wiring.gateway_handler(event, lambda_context))

    def _whole(self, response: Mapping[str, Any]) -> None:
        status = int(response.get("statusCode") or 500)
        headers: list[tuple[str, str]] = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
        single = {k.lower() for k, _ in headers}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            if name.lower() not in single:
                headers.extend((name, str(v)) for v in values)
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode("utf-8")
        self._send_whole(status, headers, payload)

    def _pass_through(self) -> None:
        """A direct ``Invoke``: the doctor's self-check report, or 400 for anything else."""
        forwarded = ForwardedLambdaContext(_json_header(self.headers.get(LAMBDA_CONTEXT_HEADER)))
        self.server.request_started()
        try:
            with after_response.invocation(forwarded.aws_request_id):
                self._pass_through_invocation()
        finally:
            self.server.request_ended()

    def _pass_through_invocation(self) -> None:
        body = self._read_body()
        try:
            event = json.loads(body or b"null")
        except ValueError:
            event = None
        from switchboard.selfcheck import is_selfcheck

        if not is_selfcheck(event):
            error = {
                "errorType": "UnsupportedEvent",
                "errorMessage": "the gateway answers API Gateway requests",
            }
            self._send_whole(HTTPStatus.BAD_REQUEST, {"Content-Type": JSON}, json.dumps(error).encode())
            return
        try:
            report = self.server.wiring().gateway_handler(event, ForwardedLambdaContext({}))
        except Exception as exc:  # e.g. a module missing from the layers: the doctor names it
            failure = {"errorType": type(exc).__name__, "errorMessage": str(exc)[:500]}
            self._send_whole(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"Content-Type": JSON}, json.dumps(failure).encode()
            )
            return
        self._send_whole(HTTPStatus.OK, {"Content-Type": JSON}, json.dumps(report).encode())

    # --- writing ---------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_whole(
        self, status: int, headers: Mapping[str, str] | Iterable[tuple[str, str]], payload: bytes
    ) -> None:
        self.send_response(status)
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def _send_answer(self, answer: StreamAnswerLike) -> None:
        """A JSON answer (an error decided before the first byte) whole; anything else streamed."""
        content_type = next((v for k, v in answer.headers.items() if k.lower() == "content-type"), "")
        if content_type.split(";")[0].strip().lower() == JSON:
            try:
                payload = b"".join(answer.chunks)
            finally:
                close = getattr(answer.chunks, "close", None)
                if callable(close):
                    close()
            self._send_whole(answer.status, answer.headers, payload)
            return
        self._send_stream(answer)

    def _send_stream(self, answer: StreamAnswerLike) -> None:
        """Status and headers now, then each chunk as it comes (chunked transfer, flushed each time).

        A client gone mid-stream closes the iterator, so the service ends its provider call and
        records how the stream ended.
        """
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        chunks = answer.chunks
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()


def _is_api_request(headers: Any) -> bool:
    """True when LWA unpacked an API Gateway event (its request context names a request id)."""
    context = _json_header(headers.get(REQUEST_CONTEXT_HEADER))
    return bool(context.get("requestId") or context.get("apiId"))


def invocation_trace_header(header: str | None, forwarded: object) -> str | None:
    """This invocation's X-Ray trace header (``Root=…;Parent=…;Sampled=…``), or None.

    The Lambda runtime sets ``_X_AMZN_TRACE_ID`` for a handler process per invocation; this server
    is not the runtime's client (LWA is), so it never gets that variable. LWA's ``lambda_http``
    replaces the request's ``x-amzn-trace-id`` header with the invocation's trace header (its
    ``update_xray_trace_id_header``); the same value is ``xray_trace_id`` in
    ``x-amzn-lambda-context``. The header wins; the context is the fallback.
    """
    for candidate in (header, forwarded):
        if isinstance(candidate, str) and "Root=" in candidate:
            return candidate.strip()
    return None


def _set_trace_id(trace_header: str | None) -> None:
    """Make this request's trace header the process's trace context before the gateway's code runs:
    the X-Ray SDK's Lambda context reads ``_X_AMZN_TRACE_ID`` whenever a subsegment opens and
    starts a new (facade) segment when its root changes, so a streamed request's subsegments attach
    to its own invocation. A request without one clears it: the previous invocation's trace must
    not collect this request's subsegments (the SDK then records nothing)."""
    if trace_header:
        os.environ[TRACE_ID_ENV] = trace_header
    else:
        os.environ.pop(TRACE_ID_ENV, None)


def port_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """``AWS_LWA_PORT``, then ``PORT`` (LWA's own fallback order), then 8080 (LWA's default)."""
    for name in (env.LWA_PORT, "PORT"):
        value = environ.get(name, "").strip()
        if value:
            return int(value)
    return DEFAULT_PORT


def serve(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    wiring: Callable[[], Wiring] = default_wiring,
    warm: bool = True,
) -> GatewayServer:
    """A started server (on a thread); ``port=0`` picks a free port (``server.server_address``)."""
    server = GatewayServer((host, port_from_env() if port is None else port), wiring)
    threading.Thread(target=server.serve_forever, name="gateway-http", daemon=True).start()
    if warm:
        server.warm()
    return server


def main() -> None:
    # During init, before LWA's readiness check can pass (LWA calls the runtime's first `next` only
    # then): the after-response extension must register before that call.
    after_response.start_from_env()
    server = GatewayServer(("127.0.0.1", port_from_env()), default_wiring)
    server.warm()
    server.serve_forever()


if __name__ == "__main__":
    main()
