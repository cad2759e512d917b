"""Pieces of the Lambda Web Adapter entrypoint that need no server: the rebuilt event, the port,
the doctor reading a streamed self-check."""

from __future__ import annotations

import json

from handlers import gateway_http
from switchboard.contract import env, handlers
from switchboard_local.doctor.deployment import without_stream_prelude

CONTEXT = {"requestId": "r-1", "stage": "prod", "path": "/prod/v1/models", "resourcePath": "/v1/models"}


def test_event_is_the_rest_proxy_event_without_the_adapter_headers() -> None:
    headers = [
        ("Content-Type", "application/json"),
        ("X-Multi", "a"),
        ("X-Multi", "b"),
        (gateway_http.REQUEST_CONTEXT_HEADER, json.dumps(CONTEXT)),
        (gateway_http.LAMBDA_CONTEXT_HEADER, "{}"),
    ]

    event = gateway_http.proxy_event("GET", "/v1/models?x=1&x=2&y=", headers, b"", CONTEXT)

    assert event["path"] == "/v1/models"
    assert event["resource"] == "/v1/models"
    assert event["httpMethod"] == "GET"
    assert event["headers"] == {"Content-Type": "application/json", "X-Multi": "b"}
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert gateway_http.REQUEST_CONTEXT_HEADER not in event["multiValueHeaders"]
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["requestContext"] == CONTEXT


def test_stage_prefix_is_removed_only_when_the_context_shows_it() -> None:
    staged = gateway_http.proxy_event("GET", "/prod/v1/models", [], b"", CONTEXT)
    assert staged["path"] == "/v1/models"
    # A route that merely starts like the stage name is left alone.
    plain = gateway_http.proxy_event(
        "GET", "/prod/v1/models", [], b"", {**CONTEXT, "path": "/prod/prod/v1/models"}
    )
    assert plain["path"] == "/prod/v1/models"


def test_binary_body_travels_base64_as_api_gateway_sends_it() -> None:
    event = gateway_http.proxy_event("POST", "/v1/embeddings", [], b"\xff\xfe", CONTEXT)
    assert event["isBase64Encoded"] is True
    assert event["body"] == "//4="


def test_port_follows_lwa_order() -> None:
    assert gateway_http.port_from_env({env.LWA_PORT: "9001", "PORT": "7000"}) == 9001
    assert gateway_http.port_from_env({"PORT": "7000"}) == 7000
    assert gateway_http.port_from_env({}) == gateway_http.DEFAULT_PORT


def test_start_script_serves_the_gateway_handler() -> None:
    assert handlers.python_handler(handlers.HANDLER_GATEWAY_HTTP) == handlers.HANDLER_GATEWAY
    assert handlers.python_handler(handlers.HANDLER_INVOKE) == handlers.HANDLER_INVOKE


def test_doctor_reads_the_body_of_a_streamed_selfcheck() -> None:
    report = b'{"switchboard_selfcheck": 1}'
    prelude = json.dumps({"statusCode": 200, "headers": {"content-type": "application/json"}, "cookies": []})
    assert without_stream_prelude(prelude.encode() + b"\x00" * 8 + report) == report
    assert without_stream_prelude(report) == report
    # Eight NULs inside something that is not a prelude are left as they are.
    odd = b'["x"]' + b"\x00" * 8 + b"y"
    assert without_stream_prelude(odd) == odd


def test_the_entrypoint_imports_only_the_standard_library_and_the_contract() -> None:
    """LWA's readiness check waits for the server: nothing heavy may load before it listens."""
    from tests.fresh_python import run_fresh

    code = (
        "import sys; before = set(sys.modules); import handlers.gateway_http; "
        "new = sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in "
        "('switchboard', 'handlers', 'pydantic', 'aws_lambda_powertools', 'boto3', 'botocore')); "
        "print(','.join(new))"
    )
    result = run_fresh(code)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.strip().split(","))
    assert loaded <= {
        "handlers",
        "handlers.gateway_http",
        "switchboard",
        "switchboard.contract",
        "switchboard.contract.env",
        "switchboard.after_response",  # stdlib only: it registers the extension before the server listens
    }


def test_the_stream_wiring_leaves_the_whole_request_resolver_unloaded() -> None:
    """A stream is served by ``handlers.gateway_wiring``; Powertools' REST resolver (and its OpenAPI
    validation) is the whole-request layer, loaded later (``Wiring.load_when_idle``)."""
    from tests.fresh_python import run_fresh

    code = (
        "import sys; from handlers import gateway_http; wiring = gateway_http.default_wiring(); "
        "print(int('aws_lambda_powertools.event_handler' in sys.modules), "
        "int('handlers.gateway' in sys.modules), int('handlers.gateway_wiring' in sys.modules)); "
        "wiring.load_when_idle(); "
        "print(int('aws_lambda_powertools.event_handler' in sys.modules), "
        "int('handlers.gateway' in sys.modules))"
    )
    result = run_fresh(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["0 0 1", "1 1"]


def test_the_warm_up_loads_the_whole_request_layer_only_when_no_request_is_in_flight() -> None:
    import threading

    loaded = threading.Event()
    wiring = gateway_http.Wiring(
        gateway_handler=lambda event, context: {}, open_stream=None, load_when_idle=loaded.set
    )
    server = gateway_http.GatewayServer(("127.0.0.1", 0), lambda: wiring)
    try:
        server.request_started()  # a first (streamed) request arrived before the warm-up finished
        thread = server.warm()
        assert not loaded.wait(0.05)
        server.request_ended()
        assert loaded.wait(5)
        thread.join(5)
        assert not thread.is_alive()
    finally:
        server.server_close()
