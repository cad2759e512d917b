"""A local stand-in for API Gateway (REST) in front of the gateway Lambda.

Does what the deployed API does before the Lambda runs: the REQUEST authorizer (401 for missing
or unknown keys, its context passed on), usage-plan throttling per API key (429), the payload
limit (413 above `switchboard.limits.MAX_REQUEST_BODY_BYTES`, which the deployed WAF enforces),
unknown paths, and OpenAI-style bodies for each of these.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from switchboard.limits import MAX_REQUEST_BODY_BYTES
from switchboard_local.emulation import TIERS, FakeLambdaContext, proxy_event

log = logging.getLogger("switchboard.local")

MAX_BODY_BYTES = MAX_REQUEST_BODY_BYTES  # what the WAF rule refuses in AWS (switchboard.limits)
DRAIN_LIMIT_BYTES = 10 * 1024 * 1024  # API Gateway's own limit: beyond it we just close
ROUTES = {("POST", "/v1/chat/completions"), ("GET", "/v1/models")}
STAGE = "local"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:local/{stage}/{method}{path}"


def error_body(message: str, type_: str, code: str, request_id: str) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": None, "code": code, "request_id": request_id}}
    ).encode()


class TokenBucket:
    """API Gateway's usage-plan throttle: `rate` requests a second with bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
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


class FrontDoor:
    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 8080, tiers: Mapping[str, Any] = TIERS
    ) -> None:
        self._tiers = tiers
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        door = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

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
        self._server.shutdown()
        self._server.server_close()

    def _bucket(self, key: str, tier: str) -> TokenBucket:
        with self._buckets_lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                throttle = self._tiers.get(tier, TIERS["standard"])
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
    def _drain(handler: BaseHTTPRequestHandler, length: int) -> None:
        """Read (and drop) a refused body so the client sees our 413, not a broken pipe."""
        remaining = min(length, DRAIN_LIMIT_BYTES)
        while remaining > 0:
            chunk = handler.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        from handlers import authorizer, gateway

        request_id = str(uuid.uuid4())
        json_headers = {"Content-Type": "application/json", "x-switchboard-request-id": request_id}
        path = handler.path.split("?", 1)[0].rstrip("/") or "/"
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            handler.close_connection = True
            self._drain(handler, length)
            message = f"Request body is {length} bytes; the limit is {MAX_BODY_BYTES}."
            self._send(
                handler,
                413,
                error_body(message, "invalid_request_error", "request_too_large", request_id),
                json_headers,
            )
            return
        body = handler.rfile.read(length).decode("utf-8", errors="replace") if length else None
        if (method, path) not in ROUTES:
            known_path = any(p == path for _, p in ROUTES)
            status, code = (405, "method_not_allowed") if known_path else (404, "unknown_url")
            message = (
                f"Unknown path {method} {path}." if status == 404 else f"{method} is not allowed on {path}."
            )
            self._send(
                handler, status, error_body(message, "invalid_request_error", code, request_id), json_headers
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
            policy = authorizer.handler(auth_event, FakeLambdaContext(function_name="switchboard-authorizer"))  # type: ignore[arg-type]
        except Exception as exc:
            if str(exc) != "Unauthorized":
                log.exception("authorizer failed")
            message = "Missing or unknown API key. Send `Authorization: Bearer <key>`."
            self._send(
                handler,
                401,
                error_body(message, "authentication_error", "invalid_api_key", request_id),
                {**json_headers, "WWW-Authenticate": "Bearer"},
            )
            return
        context = policy.get("context", {})
        usage_key = policy.get("usageIdentifierKey") or context.get("key_id", "anonymous")
        if not self._bucket(str(usage_key), str(context.get("tier", "standard"))).take():
            message = "Too many requests for this API key: slow down and retry."
            self._send(
                handler,
                429,
                error_body(message, "rate_limit_error", "rate_limited", request_id),
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
        try:
            context = FakeLambdaContext(function_name="switchboard-gateway")
            response = gateway.handler(event, context)
        except Exception:
            log.exception("gateway handler crashed")
            message = f"Internal error (request id {request_id})."
            self._send(
                handler, 502, error_body(message, "api_error", "internal_error", request_id), json_headers
            )
            return
        out_headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = ",".join(values)
        out_body = (response.get("body") or "").encode()
        self._send(handler, int(response.get("statusCode", 502)), out_body, out_headers)
