"""Streams in AWS, on the synthesized template: the gateway under Lambda Web Adapter, API Gateway
integrations in STREAM mode, their timeouts and permissions, the dashboard's streamed-request rows."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from template_queries import env_of, function_by_handler, of_type, only

from infra import constants, layers
from switchboard.contract import env, handlers
from switchboard.contract import metrics as metric_names

STREAM_URI_SUFFIX = "/response-streaming-invocations"


def methods(template_json: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, resource path part) -> the method's properties."""
    resources = of_type(template_json, "AWS::ApiGateway::Resource")
    found = {}
    for method in of_type(template_json, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        part = resources[props["ResourceId"]["Ref"]]["Properties"]["PathPart"]
        found[(props["HttpMethod"], part)] = props
    return found


def test_gateway_runs_the_start_script_under_the_web_adapter(template_json: dict[str, Any]) -> None:
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    props = gateway["Properties"]
    assert props["Handler"] == handlers.HANDLER_GATEWAY_HTTP == "handlers/gateway_http.sh"
    adapter = "arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerArm64:30"
    assert layers.web_adapter_arm64_arn("us-east-1") == adapter
    assert adapter in props["Layers"]
    variables = env_of(gateway)
    assert variables[env.LAMBDA_EXEC_WRAPPER] == "/opt/bootstrap"
    assert variables[env.LWA_INVOKE_MODE] == "response_stream"
    assert variables[env.LWA_PORT] == str(env.GATEWAY_HTTP_PORT)
    assert variables[env.LWA_READINESS_CHECK_PATH] == env.GATEWAY_READINESS_PATH
    assert variables[env.LWA_PASS_THROUGH_PATH] == env.GATEWAY_EVENTS_PATH
    # A stream may last as long as API Gateway lets it: Lambda's maximum timeout.
    assert props["Timeout"] == 900


def test_no_other_function_gets_the_adapter(template_json: dict[str, Any]) -> None:
    for logical_id, function in of_type(template_json, "AWS::Lambda::Function").items():
        props = function["Properties"]
        if props["Handler"] == handlers.HANDLER_GATEWAY_HTTP:
            continue
        assert not any("LambdaAdapterLayer" in str(layer) for layer in props.get("Layers", [])), logical_id
        assert env.LAMBDA_EXEC_WRAPPER not in (props.get("Environment") or {}).get("Variables", {}), (
            logical_id
        )


def test_start_script_is_executable_and_runs_the_http_entrypoint() -> None:
    script = Path(constants.LAMBDA_ASSET_DIR) / handlers.HANDLER_GATEWAY_HTTP
    mode = script.stat().st_mode
    assert mode & stat.S_IXUSR and mode & stat.S_IXOTH, "the adapter's /opt/bootstrap execs the handler file"
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "exec python3 -m handlers.gateway_http" in text
    assert "\r" not in text


def test_staged_asset_keeps_the_script_executable(cloud_assembly_dir: Path) -> None:
    staged = list(cloud_assembly_dir.glob(f"asset.*/{handlers.HANDLER_GATEWAY_HTTP}"))
    assert staged, "the Lambda asset carries the start script"
    assert all(os.access(path, os.X_OK) for path in staged)


@pytest.mark.parametrize(
    ("http_method", "part", "timeout_ms"),
    [
        ("POST", "completions", 900_000),  # streams: up to the 15-minute cap of a streamed response
        ("POST", "embeddings", 29_000),
        ("GET", "models", 29_000),
    ],
)
def test_every_gateway_integration_streams_through_invoke_with_response_stream(
    template_json: dict[str, Any], http_method: str, part: str, timeout_ms: int
) -> None:
    integration = methods(template_json)[(http_method, part)]["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    # LWA's response_stream mode answers every invocation in the streaming format: a buffered
    # integration of the same function would read it as a malformed proxy response.
    assert integration["ResponseTransferMode"] == "STREAM"
    assert integration["TimeoutInMillis"] == timeout_ms
    uri = json.dumps(integration["Uri"])
    assert ":lambda:path/2021-11-15/functions/" in uri
    assert uri.endswith(f'"{STREAM_URI_SUFFIX}"]]}}')


def test_api_gateway_may_invoke_the_gateway_for_each_route(template_json: dict[str, Any]) -> None:
    gateway_id, _ = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    permissions = [
        p["Properties"]
        for p in of_type(template_json, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [gateway_id, "Arn"]}
        and p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    # InvokeWithResponseStream is authorized as lambda:InvokeFunction (Lambda API reference).
    assert {p["Action"] for p in permissions} == {"lambda:InvokeFunction"}
    source_arns = " ".join(json.dumps(p["SourceArn"]) for p in permissions)
    for route in ("/POST/v1/chat/completions", "/POST/v1/embeddings", "/GET/v1/models"):
        assert route in source_arns


def test_dashboard_has_the_streamed_request_rows(template_json: dict[str, Any]) -> None:
    _, dashboard = only(template_json, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in (
        metric_names.STREAMED_REQUESTS,
        metric_names.STREAM_TIME_TO_FIRST_TOKEN,
        metric_names.STREAM_FAILED_MID_STREAM,
        metric_names.STREAM_FAILED_OVER,
    ):
        assert f'\\"{name}\\"' in body, name
    assert "Streamed requests" in body
    assert "Time to first token (p50, p99)" in body
    for statistic in ("p50", "p99"):
        assert f'\\"stat\\":\\"{statistic}\\"' in body


def test_gateway_may_call_the_providers_streaming_apis(template_json: dict[str, Any]) -> None:
    from template_queries import function_statements

    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    statements = {s.get("Sid"): s for s in function_statements(template_json, gateway)}
    bedrock = statements["BedrockSeedModelsStreaming"]
    assert bedrock["Action"] == "bedrock:InvokeModelWithResponseStream"
    sagemaker = statements["SageMakerSwitchboardEndpointsStreaming"]
    assert sagemaker["Action"] == "sagemaker:InvokeEndpointWithResponseStream"
    assert "endpoint/switchboard-*" in json.dumps(sagemaker["Resource"])
    secrets = statements["ThirdPartyProviderKeys"]
    assert secrets["Action"] == "secretsmanager:GetSecretValue"
    assert "secret:switchboard/*" in json.dumps(secrets["Resource"])


def test_gateway_may_put_streamed_answers_in_the_answer_cache_and_nothing_more(
    template_json: dict[str, Any],
) -> None:
    from template_queries import actions_on, arn_of, function_statements, table_with_partition_key

    cache_id, _ = table_with_partition_key(template_json, "cache_key")
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    allowed = actions_on(function_statements(template_json, gateway), arn_of(cache_id))
    assert "dynamodb:PutItem" in allowed  # RememberAnswer's one write, for streamed answers
    writes = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    assert not allowed & writes


def test_gateway_is_traced_actively_so_stream_subsegments_have_a_segment(
    template_json: dict[str, Any],
) -> None:
    from template_queries import as_list, function_statements

    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    assert gateway["Properties"]["TracingConfig"] == {"Mode": "Active"}
    actions = {
        action
        for statement in function_statements(template_json, gateway)
        for action in as_list(statement["Action"])
    }
    assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= actions
