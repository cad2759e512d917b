"""The gateway's HTTP entrypoint under Lambda Web Adapter, served in-process on a free port.

Requests arrive as LWA forwards them: the API Gateway request as HTTP plus the original request
context in ``x-amzn-request-context``. Whole requests go to the real gateway handler on emulated
AWS (moto, the real ASL, the mock provider); ``stream: true`` goes to a fake ``StreamService`` with
the interface of ``switchboard.streaming``.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from handlers import gateway_http
from switchboard.errors import RouteNotFound, ServiceUnavailable

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}
STREAM = {**CHAT, "stream": True}


@dataclass
class FakeAnswer:
    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]


@dataclass
class FakeStreamService:
    """Records each ``open``; streams ``chunks``, waiting on ``gates[i]`` before chunk i (if any)."""

    chunks: list[bytes] = field(
        default_factory=lambda: [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n', b"data: [DONE]\n\n"]
    )
    gates: dict[int, threading.Event] = field(default_factory=dict)
    refuse: Exception | None = None
    opened: list[tuple[Any, Any, str]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)

    def open(self, body: Any, caller: Any, request_id: str) -> FakeAnswer:
        self.opened.append((body, caller, request_id))
        if self.refuse is not None:
            raise self.refuse
        headers = {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "x-switchboard-request-id": request_id,
            "x-switchboard-route": body.model,
        }
        return FakeAnswer(200, headers, self._chunks())

    def _chunks(self) -> Iterator[bytes]:
        try:
            for index, chunk in enumerate(self.chunks):
                gate = self.gates.get(index)
                if gate is not None:
                    assert gate.wait(5), f"chunk {index} was never released"
                yield chunk
        finally:
            self.closed.set()


@pytest.fixture
def fake_streams() -> FakeStreamService:
    return FakeStreamService()


@pytest.fixture
def server(
    gateway: Any, fake_streams: FakeStreamService, monkeypatch: pytest.MonkeyPatch
) -> Iterator[gateway_http.GatewayServer]:
    from handlers import gateway_wiring

    # The deployed seam (`gateway.open_stream`: parsing, caller, error rendering) over a fake use case.
    def stream_service() -> FakeStreamService:
        return fake_streams

    stream_service.cache_clear = lambda: None  # type: ignore[attr-defined]  # as lru_cache's
    monkeypatch.setattr(gateway_wiring, "stream_service", stream_service)
    wiring = gateway_http.default_wiring()
    running = gateway_http.serve(0, wiring=lambda: wiring)
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()


def request_context(
    harness: Any, *, key: str | None = "sk-switchboard-local-dev", request_id: str = "req-0001"
) -> dict[str, Any]:
    """``x-amzn-request-context`` as LWA sends it: the proxy event's requestContext."""
    from switchboard_local.emulation import proxy_event

    authorizer = harness.authorize(key)["context"] if key is not None else {}
    event = proxy_event(
        "POST", "/v1/chat/completions", None, headers={}, authorizer=authorizer, request_id=request_id
    )
    return dict(event["requestContext"])


def send(
    server: gateway_http.GatewayServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    context: dict[str, Any] | None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> http.client.HTTPResponse:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": content_type}
    if context is not None:
        headers[gateway_http.REQUEST_CONTEXT_HEADER] = json.dumps(context)
        headers[gateway_http.LAMBDA_CONTEXT_HEADER] = json.dumps(
            {
                "request_id": "lambda-1",
                "deadline": 0,
                "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:gw",
                "xray_trace_id": None,
                "env_config": {
                    "function_name": "gw",
                    "memory": 512,
                    "version": "$LATEST",
                    "log_stream": "s",
                    "log_group": "g",
                },
            }
        )
    connection.request(method, path, body=payload, headers=headers)
    return connection.getresponse()


def direct(
    harness: Any,
    method: str,
    path: str,
    body: Any,
    *,
    key: str | None = "sk-switchboard-local-dev",
    raw_body: str | None = None,
) -> dict[str, Any]:
    """The buffered gateway's own answer to the same request (what API Gateway would relay)."""
    from handlers import gateway
    from switchboard_local.emulation import FakeLambdaContext
    from tests.conftest import api_event

    policy = harness.authorize(key)["context"] if key is not None else {}
    return dict(
        gateway.handler(
            api_event(method, path, body, raw_body=raw_body, authorizer=policy), FakeLambdaContext()
        )
    )


def test_readiness_answers_without_loading_the_gateway() -> None:
    loaded = threading.Event()

    def wiring() -> gateway_http.Wiring:
        loaded.set()
        raise AssertionError("the readiness check must not build the wiring")

    running = gateway_http.serve(0, wiring=wiring, warm=False)
    try:
        response = send(running, "GET", gateway_http.READINESS_PATH, context=None)
        assert response.status == 200
        assert json.loads(response.read()) == {"ready": True}
        assert not loaded.is_set()
    finally:
        running.shutdown()
        running.server_close()


def test_models_is_the_gateway_answer_byte_for_byte(server: Any, gateway: Any) -> None:
    expected = direct(gateway, "GET", "/v1/models", None)

    response = send(server, "GET", "/v1/models", context=request_context(gateway))

    assert response.status == expected["statusCode"] == 200
    assert response.read().decode() == expected["body"]
    headers = {k.lower(): v for k, v in response.getheaders()}
    for name, value in (expected.get("headers") or {}).items():
        assert headers[name.lower()] == value


def test_whole_chat_completion_goes_through_the_gateway(
    server: Any, gateway: Any, fake_streams: FakeStreamService
) -> None:
    response = send(server, "POST", "/v1/chat/completions", CHAT, context=request_context(gateway))

    body = json.loads(response.read())
    assert response.status == 200, body
    assert body["object"] == "chat.completion"
    assert "hello there" in body["choices"][0]["message"]["content"]
    assert response.getheader("x-switchboard-option") == "claude-haiku-us"
    assert response.getheader("x-switchboard-request-id") == "req-0001"
    assert response.getheader("Content-Length") == str(len(json.dumps(body, separators=(",", ":"))))
    assert fake_streams.opened == []


@pytest.mark.parametrize(
    ("body", "raw", "content_type"),
    [
        ({"model": "chat", "messages": [], "stream": True}, None, "application/json"),
        (None, b'{"model": "chat", "stream": true, "messages": [', "application/json"),
        (STREAM, None, "text/plain"),
    ],
    ids=["schema-error", "broken-json", "foreign-media-type"],
)
def test_a_stream_request_the_gateway_refuses_gets_the_gateway_error(
    server: Any,
    gateway: Any,
    fake_streams: FakeStreamService,
    body: Any,
    raw: bytes | None,
    content_type: str,
) -> None:
    from handlers import gateway as gateway_module
    from switchboard_local.emulation import FakeLambdaContext, proxy_event

    text = raw.decode() if raw is not None else json.dumps(body)
    event = proxy_event(
        "POST",
        "/v1/chat/completions",
        text,
        headers={"Content-Type": content_type},
        authorizer=gateway.authorize("sk-switchboard-local-dev")["context"],
        request_id="req-0001",
    )
    expected = gateway_module.handler(event, FakeLambdaContext())

    response = send(
        server,
        "POST",
        "/v1/chat/completions",
        body,
        raw=raw,
        context=request_context(gateway),
        content_type=content_type,
    )

    assert response.status == expected["statusCode"]
    assert 400 <= response.status < 500
    assert response.read().decode() == expected["body"]
    assert fake_streams.opened == []


def test_a_stream_without_an_authorized_caller_is_the_gateway_401(
    server: Any, gateway: Any, fake_streams: FakeStreamService
) -> None:
    context = request_context(gateway)
    context["authorizer"] = {}

    response = send(server, "POST", "/v1/chat/completions", STREAM, context=context)

    assert response.status == 401
    assert json.loads(response.read())["error"]["code"] == "invalid_api_key"
    assert fake_streams.opened == []


def test_stream_headers_then_each_chunk_as_it_comes(
    server: Any, gateway: Any, fake_streams: FakeStreamService
) -> None:
    release_second = threading.Event()
    fake_streams.gates[1] = release_second

    response = send(
        server, "POST", "/v1/chat/completions", STREAM, context=request_context(gateway, request_id="req-s1")
    )

    # Headers and the first chunk arrive while the service still holds the second one back.
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("x-switchboard-request-id") == "req-s1"
    assert response.getheader("x-switchboard-route") == "chat"
    assert response.getheader("Transfer-Encoding") == "chunked"
    first = response.read1()
    assert first == fake_streams.chunks[0]
    release_second.set()
    rest = response.read()
    assert first + rest == b"".join(fake_streams.chunks)
    (body, caller, request_id) = fake_streams.opened[0]
    assert body.stream is True and body.model == "chat"
    assert (caller.tenant, caller.tier, request_id) == ("dev", "standard", "req-s1")
    assert fake_streams.closed.wait(2)


def test_stream_refused_before_the_first_byte_is_rendered_as_the_gateway_renders_errors(
    server: Any, gateway: Any, fake_streams: FakeStreamService
) -> None:
    # The same refusal, decided by the buffered gateway: an unknown route is a 404 there.
    expected = direct(gateway, "POST", "/v1/chat/completions", {**CHAT, "model": "no-such-route"})
    message = json.loads(expected["body"])["error"]["message"]
    fake_streams.refuse = RouteNotFound(message, param="model")

    response = send(
        server,
        "POST",
        "/v1/chat/completions",
        {**STREAM, "model": "no-such-route"},
        context=request_context(gateway),
    )

    assert response.status == expected["statusCode"] == 404
    assert response.read().decode() == expected["body"]
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("x-switchboard-request-id") == "req-0001"


def test_stream_rejected_with_retry_after(server: Any, gateway: Any, fake_streams: FakeStreamService) -> None:
    fake_streams.refuse = ServiceUnavailable(
        "No healthy option for route 'chat'.", headers={"Retry-After": "30"}
    )

    response = send(server, "POST", "/v1/chat/completions", STREAM, context=request_context(gateway))

    assert response.status == 503
    assert response.getheader("Retry-After") == "30"
    assert json.loads(response.read())["error"]["message"] == "No healthy option for route 'chat'."


def test_client_gone_mid_stream_closes_the_service_iterator(
    server: Any, gateway: Any, fake_streams: FakeStreamService
) -> None:
    hold = threading.Event()
    fake_streams.gates[1] = hold
    response = send(server, "POST", "/v1/chat/completions", STREAM, context=request_context(gateway))
    assert response.read1() == fake_streams.chunks[0]
    response.close()  # the client hangs up
    hold.set()

    assert fake_streams.closed.wait(5)


def test_selfcheck_through_the_pass_through_path(server: Any, gateway: Any) -> None:
    response = send(server, "POST", gateway_http.EVENTS_PATH, {"switchboard_selfcheck": True}, context={})

    report = json.loads(response.read())
    assert response.status == 200
    assert report["switchboard_selfcheck"]
    assert report["handler"] == "gateway"


def test_pass_through_path_refuses_other_events_and_api_requests(server: Any, gateway: Any) -> None:
    other = send(server, "POST", gateway_http.EVENTS_PATH, {"Records": []}, context={})
    assert other.status == 400
    assert json.loads(other.read())["errorType"] == "UnsupportedEvent"

    # With an API Gateway request context it is an API path like any other: the gateway's 404.
    api = send(
        server,
        "POST",
        gateway_http.EVENTS_PATH,
        {"switchboard_selfcheck": True},
        context=request_context(gateway),
    )
    assert api.status == 404
    assert json.loads(api.read())["error"]["code"] == "unknown_path"


def test_start_script_serves_the_readiness_check_on_the_adapter_port(tmp_path: Any) -> None:
    """What LWA's /opt/bootstrap does: exec the handler file with the function's environment."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from switchboard.contract import env, handlers

    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LAMBDA_TASK_ROOT": str(lambdas),
        env.LWA_PORT: str(port),
    }
    process = subprocess.Popen(
        [str(lambdas / handlers.HANDLER_GATEWAY_HTTP)],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", env.GATEWAY_READINESS_PATH)
                status = connection.getresponse().status
            except OSError:
                time.sleep(0.05)
        assert status == 200
    finally:
        process.terminate()
        process.wait(10)


class _CapturingEmitter:
    """The X-Ray SDK's emitter, keeping what it would send to the daemon."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.sent.append(entity.to_dict())

    def set_daemon_address(self, address: str) -> None:
        return None


def test_the_invocation_trace_header_is_the_trace_context_of_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LWA's lambda_http puts the invocation's trace header (``_X_AMZN_TRACE_ID`` of the adapter) on
    the request as ``x-amzn-trace-id``; subsegments the stream opens join that invocation's trace,
    and a request without one does not join the previous request's."""
    from aws_xray_sdk.core.lambda_launcher import LambdaContext
    from aws_xray_sdk.core.recorder import AWSXRayRecorder

    from switchboard.tracing import XraySubsegments

    monkeypatch.delenv(gateway_http.TRACE_ID_ENV, raising=False)  # restored after the test
    emitter = _CapturingEmitter()
    recorder = AWSXRayRecorder()
    recorder.configure(context=LambdaContext(), emitter=emitter, sampling=False, streaming_threshold=0)
    tracing = XraySubsegments(recorder)

    def open_stream(event: dict[str, Any]) -> FakeAnswer:
        def chunks() -> Iterator[bytes]:
            with tracing.subsegment("candidate a") as span:
                span.annotate("route", "chat")
                yield b"data: [DONE]\n\n"

        return FakeAnswer(200, {"Content-Type": "text/event-stream"}, chunks())

    def refuse(event: Any, context: Any) -> Any:
        raise AssertionError("stream requests do not reach the buffered handler")

    running = gateway_http.serve(0, wiring=lambda: gateway_http.Wiring(refuse, open_stream), warm=False)
    root, parent = "1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"
    try:
        host, port = running.server_address[:2]
        for trace in (f"Root={root};Parent={parent};Sampled=1", None):
            connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
            headers = {"Content-Type": "application/json", gateway_http.REQUEST_CONTEXT_HEADER: "{}"}
            if trace:
                headers[gateway_http.TRACE_HEADER] = trace
            connection.request("POST", "/v1/chat/completions", body=json.dumps(STREAM), headers=headers)
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b"data: [DONE]\n\n"
            connection.close()
    finally:
        running.shutdown()
        running.server_close()

    (subsegment,) = emitter.sent  # the second request had no trace: nothing recorded, nothing leaked
    assert subsegment["name"] == "candidate a" and subsegment["annotations"] == {"route": "chat"}
    assert subsegment["trace_id"] == root and subsegment["parent_id"] == parent


@pytest.mark.parametrize(
    ("header", "forwarded", "expected"),
    [
        ("Root=1-a-b;Parent=c;Sampled=1", "Root=1-x-y;Parent=z;Sampled=1", "Root=1-a-b;Parent=c;Sampled=1"),
        (None, "Root=1-x-y;Parent=z;Sampled=0", "Root=1-x-y;Parent=z;Sampled=0"),
        ("garbage", None, None),
        (None, None, None),
    ],
)
def test_invocation_trace_header_prefers_the_request_header(
    header: str | None, forwarded: str | None, expected: str | None
) -> None:
    assert gateway_http.invocation_trace_header(header, forwarded) == expected
