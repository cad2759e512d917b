"""A local stand-in for API Gateway (REST) in front of the gateway Lambda.

Does what the deployed API does before the Lambda runs: the REQUEST authorizer (401 for missing
or unknown keys, its context passed on), usage-plan throttling per API key (429) with the limits
`cdk.json` deploys, the payload limit (413 above `switchboard.limits.MAX_REQUEST_BODY_BYTES`,
which the deployed WAF enforces), request framing (400 for an unreadable `Content-Length`, 411
for a POST without one), unknown paths (404) and methods (405 with `Allow`), and OpenAI-style
bodies for each of these. Every connection has a socket timeout, so a client that stops sending
cannot hold a thread.

Streamed chat requests (`stream: true`) are served as API Gateway's response streaming serves
them: the gateway's `open_stream` decides status and headers before the first byte, then the
server-sent events go out as they come (chunked transfer encoding), each one flushed. Every other
request goes to the gateway handler, whole, as before.

The authorizer's answers are cached as API Gateway caches them (`AuthorizerCache`): per value of
the identity source (the `Authorization` header), for the TTL `cdk.json` deploys
(`authorizer_cache_ttl_s`, 60 s). As in AWS, a key revoked in the keys table keeps working until
its cached answer expires; a refused key is not cached (the authorizer runs again next time).
Sockets have Nagle's algorithm off: a streamed answer is many small writes, and a loopback stand-in
should not add the 40 ms delayed-ACK stalls an API Gateway edge does not.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.constants import AUTHORIZATION_HEADER
from switchboard.contract import errors
from switchboard.limits import MAX_REQUEST_BODY_BYTES
from switchboard_local.emulation import (
    FakeLambdaContext,
    authorizer_cache_ttl_s,
    proxy_event,
    usage_plan_throttles,
)

log = logging.getLogger("switchboard.local")

MAX_BODY_BYTES = MAX_REQUEST_BODY_BYTES  # what the WAF rule refuses in AWS (switchboard.limits)
DRAIN_LIMIT_BYTES = 10 * 1024 * 1024  # API Gateway's own limit: beyond it we just close
ROUTES = {("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings"), ("GET", "/v1/models")}
SOCKET_TIMEOUT_S = 30.0  # one read or write on a connection, idle keep-alive included
_LENGTH = re.compile(r"[0-9]{1,18}")  # 18 digits: beyond any body, and never near int()'s limits
STAGE = "local"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:local/{stage}/{method}{path}"


def error_body(message: str, type_: str, code: str, request_id: str) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": None, "code": code, "request_id": request_id}}
    ).encode()


def catalogue_body(spec: errors.ErrorSpec, request_id: str, message: str | None = None) -> bytes:
    """What API Gateway's gateway response for ``spec`` renders (infra/constructs/api.py)."""
    return error_body(spec.message if message is None else message, spec.type, spec.code, request_id)


class RequestFramingError(ValueError):
    """The request's body cannot be delimited: answered with `status`, then the connection closes."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def body_length(method: str, content_lengths: list[str], transfer_encoding: str | None) -> int:
    """The request body's length in bytes, from its `Content-Length` header(s).

    A missing length is an empty body, except on POST: a POST body without a length (or sent
    chunked, which this server does not decode) is refused with 411. A length that is not a plain
    decimal number (`-1`, `abc`, `1e3`) or several lengths that disagree are a 400: read as a
    number, `-1` used to mean "read until the client closes" and held a thread open.
    """
    values = [part.strip() for header in content_lengths for part in header.split(",")]
    if not values:
        if transfer_encoding is not None:
            raise RequestFramingError(
                411, "length_required", "Chunked request bodies are not accepted: send Content-Length."
            )
        if method == "POST":
            raise RequestFramingError(411, "length_required", "A POST needs a Content-Length header.")
        return 0
    if any(not _LENGTH.fullmatch(value) for value in values):
        shown = ", ".join(values)[:40]
        raise RequestFramingError(
            400, "invalid_content_length", f"Content-Length {shown!r} is not a number of bytes."
        )
    if len({int(value) for value in values}) > 1:
        raise RequestFramingError(
            400, "invalid_content_length", "The request carries different Content-Length values."
        )
    if transfer_encoding is not None:
        # RFC 9112 6.3: a message with both is a smuggling attempt or a broken client.
        raise RequestFramingError(
            400, "invalid_content_length", "Send either Content-Length or Transfer-Encoding, not both."
        )
    return int(values[0])


def allowed_methods(path: str) -> list[str]:
    """The methods the API serves on `path` (empty for an unknown path)."""
    return sorted(method for method, route in ROUTES if route == path)


class TokenBucket:
    """API Gateway's usage-plan throttle: `rate` requests a second with bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class AuthorizerCache:
    """API Gateway's cache of REQUEST authorizer answers, keyed by the identity source's value.

    Only answers (policies) are cached; a refusal (the authorizer raising `Unauthorized`) is not.
    The deployed policy allows the whole API (`handlers.authorizer._api_wildcard`), so one cached
    answer serves every route, as it does in AWS. `ttl_s` 0 turns the cache off.
    """

    MAX_ENTRIES = 10_000  # a bound on memory: beyond it the oldest answers are dropped

    def __init__(self, ttl_s: float, clock: Any = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, identity: str) -> dict[str, Any] | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            cached = self._answers.get(identity)
            if cached is None:
                return None
            if self._clock() - cached[0] >= self.ttl_s:
                del self._answers[identity]
                return None
            return cached[1]

    def put(self, identity: str, policy: dict[str, Any]) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._answers) >= self.MAX_ENTRIES:
                del self._answers[next(iter(self._answers))]
            self._answers[identity] = (self._clock(), policy)


class FrontDoor:
    """Binds its port when built (so a busy port fails there) and serves once `start()` is called."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        tiers: Mapping[str, Mapping[str, float]] | None = None,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
        authorizer_ttl_s: float | None = None,
    ) -> None:
        self._tiers = dict(tiers) if tiers is not None else usage_plan_throttles()
        self.authorizer_cache = AuthorizerCache(
            authorizer_cache_ttl_s() if authorizer_ttl_s is None else authorizer_ttl_s
        )
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        door = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = socket_timeout_s  # applied to the connection by StreamRequestHandler.setup
            disable_nagle_algorithm = True  # TCP_NODELAY (see the module docstring)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s - %s", self.address_string(), format % args)

            def do_GET(self) -> None:
                door.handle(self, "GET")

            def do_POST(self) -> None:
                door.handle(self, "POST")

            def do_PUT(self) -> None:
                door.handle(self, "PUT")

            def do_DELETE(self) -> None:
                door.handle(self, "DELETE")

            def do_PATCH(self) -> None:
                door.handle(self, "PATCH")

            def do_OPTIONS(self) -> None:
                door.handle(self, "OPTIONS")

            def do_TRACE(self) -> None:
                door.handle(self, "TRACE")

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FrontDoor:
        self._thread = threading.Thread(target=self._server.serve_forever, name="front-door", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (if started) and release the port; safe to call twice."""
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever: only once it runs
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def bucket_for(self, key: str, tier: str) -> TokenBucket:
        """The usage-plan token bucket of one API key (created with its tier's throttle)."""
        with self._buckets_lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                throttle = self._tiers.get(tier) or self._tiers["standard"]
                bucket = self._buckets[key] = TokenBucket(throttle["rateLimit"], throttle["burstLimit"])
            return bucket

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _stream(
        handler: BaseHTTPRequestHandler, event: dict[str, Any], json_headers: Mapping[str, str]
    ) -> bool:
        """Serve ``event`` as a stream when the gateway says it is one; False: it is not, nothing sent."""
        from handlers import gateway

        try:
            answer = gateway.open_stream(event)
        except Exception:
            log.exception("stream handler crashed")
            request_id = str(json_headers.get("x-switchboard-request-id", ""))
            message = f"Internal error (request id {request_id})."
            crash = error_body(message, errors.SERVER_ERROR, errors.INTERNAL_ERROR.code, request_id)
            FrontDoor._send(handler, 502, crash, json_headers)
            return True
        if answer is None:
            return False
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()
        try:
            for chunk in answer.chunks:
                if chunk:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:  # the client went away: stop the stream (its provider call is closed)
            handler.close_connection = True
        finally:
            close = getattr(answer.chunks, "close", None)
            if close is not None:
                close()
        return True

    @staticmethod
    def _drain(handler: BaseHTTPRequestHandler, length: int) -> None:
        """Read (and drop) a refused body so the client sees our 413, not a broken pipe."""
        remaining = min(length, DRAIN_LIMIT_BYTES)
        while remaining > 0:
            chunk = handler.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)

    def authorize(self, auth_event: dict[str, Any]) -> dict[str, Any]:
        """The authorizer's policy for this request: cached per `Authorization` value, as in AWS.

        Without the header, API Gateway answers 401 without calling the authorizer; the authorizer
        refuses such a request itself, so it is called (and its refusal, never cached, raised).
        """
        from handlers import authorizer

        headers = {name.lower(): value for name, value in auth_event["headers"].items()}
        identity = headers.get(AUTHORIZATION_HEADER.lower())
        if identity:
            cached = self.authorizer_cache.get(identity)
            if cached is not None:
                return cached
        context = FakeLambdaContext(function_name="switchboard-authorizer")
        policy: dict[str, Any] = authorizer.handler(auth_event, context)  # type: ignore[arg-type]
        if identity:
            self.authorizer_cache.put(identity, policy)
        return policy

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        from handlers import gateway

        request_id = str(uuid.uuid4())
        json_headers = {"Content-Type": "application/json", "x-switchboard-request-id": request_id}
        path = handler.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            length = body_length(
                method,
                handler.headers.get_all("Content-Length") or [],
                handler.headers.get("Transfer-Encoding"),
            )
        except RequestFramingError as exc:
            # Where this request's body ends is unknown, so nothing after it on the connection can
            # be read as a request.
            handler.close_connection = True
            self._send(
                handler,
                exc.status,
                error_body(exc.message, "invalid_request_error", exc.code, request_id),
                {**json_headers, "Connection": "close"},
            )
            return
        if length > MAX_BODY_BYTES:
            handler.close_connection = True
            self._drain(handler, length)
            message = f"Request body is {length} bytes; the limit is {MAX_BODY_BYTES}."
            self._send(
                handler,
                errors.REQUEST_TOO_LARGE.status,
                catalogue_body(errors.REQUEST_TOO_LARGE, request_id, message),
                json_headers,
            )
            return
        body = handler.rfile.read(length).decode("utf-8", errors="replace") if length else None
        if (method, path) not in ROUTES:
            allowed = allowed_methods(path)
            if allowed:
                message = f"{method} is not allowed on {path}; use {', '.join(allowed)}."
                self._send(
                    handler,
                    405,
                    error_body(message, "invalid_request_error", "method_not_allowed", request_id),
                    {**json_headers, "Allow": ", ".join(allowed)},
                )
            else:
                self._send(
                    handler,
                    errors.UNKNOWN_PATH.status,
                    catalogue_body(errors.UNKNOWN_PATH, request_id),
                    json_headers,
                )
            return
        headers = {k: v for k, v in handler.headers.items()}
        auth_event = {
            "type": "REQUEST",
            "methodArn": METHOD_ARN.format(stage=STAGE, method=method, path=path),
            "headers": headers,
            "httpMethod": method,
            "path": path,
        }
        try:
            policy = self.authorize(auth_event)
        except Exception as exc:
            if str(exc) != "Unauthorized":
                log.exception("authorizer failed")
            self._send(
                handler,
                errors.INVALID_API_KEY.status,
                catalogue_body(errors.INVALID_API_KEY, request_id),
                {**json_headers, "WWW-Authenticate": "Bearer"},
            )
            return
        context = policy.get("context", {})
        usage_key = policy.get("usageIdentifierKey") or context.get("key_id", "anonymous")
        if not self.bucket_for(str(usage_key), str(context.get("tier", "standard"))).take():
            self._send(
                handler,
                errors.RATE_LIMIT_EXCEEDED.status,
                catalogue_body(errors.RATE_LIMIT_EXCEEDED, request_id),
                {**json_headers, "Retry-After": "1"},
            )
            return
        event = proxy_event(
            method,
            path,
            body,
            headers=headers,
            authorizer={**context, "principalId": policy.get("principalId")},
            request_id=request_id,
            stage=STAGE,
            identity={"sourceIp": handler.client_address[0], "apiKey": usage_key},
        )
        if self._stream(handler, event, json_headers):
            return
        try:
            context = FakeLambdaContext(function_name="switchboard-gateway")
            response = gateway.handler(event, context)
        except Exception:
            log.exception("gateway handler crashed")
            message = f"Internal error (request id {request_id})."
            crash_body = error_body(message, errors.SERVER_ERROR, errors.INTERNAL_ERROR.code, request_id)
            self._send(handler, 502, crash_body, json_headers)
            return
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = ",".join(values)
        out_body = (response.get("body") or "").encode()
        self._send(handler, int(response.get("statusCode", 502)), out_body, out_headers)
