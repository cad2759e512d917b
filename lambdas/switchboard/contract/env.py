"""Environment variable names, and the environment each deployed function is given.

The settings loaders (``switchboard.settings``, ``switchboard.circuits.service``) read these names;
infra (``infra/constructs/functions.py``) and the local stack (``switchboard_local.emulation``) build
the environments with the ``*_environment`` functions below, so the deployed shape and the local
one are the same code. ``tests/infra/test_function_environments.py`` feeds each synthesized
function's ``Environment`` to its loaders (``switchboard.contract.handlers``): a variable renamed on
one side only fails there.

Stdlib only: infra (CDK), the local stack and the handlers all import this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

# --- Read by the settings loaders -----------------------------------------------------------------
OPTIONS_TABLE: Final = "OPTIONS_TABLE"
KEYS_TABLE: Final = "KEYS_TABLE"
CIRCUIT_TABLE: Final = "CIRCUIT_TABLE"
USAGE_TABLE: Final = "USAGE_TABLE"
"""The per-tenant usage table (issue 15): metered totals, limit windows, budgets."""
STATE_MACHINE_ARN: Final = "STATE_MACHINE_ARN"
PAYLOAD_BUCKET: Final = "PAYLOAD_BUCKET"
APPCONFIG_APPLICATION: Final = "APPCONFIG_APPLICATION"
APPCONFIG_ENVIRONMENT: Final = "APPCONFIG_ENVIRONMENT"
APPCONFIG_PROFILE: Final = "APPCONFIG_PROFILE"
APPCONFIG_PROMPT_PROFILES: Final = "APPCONFIG_PROMPT_PROFILES"
"""The freeform profile of tenant prompt profiles (``switchboard.profiles``), in the same AppConfig
application and environment as the flags; unset: no profiles are read."""
APPCONFIG_AGENT_URL: Final = "APPCONFIG_AGENT_URL"
DEFAULT_ROUTES: Final = "DEFAULT_ROUTES"
LOG_PROMPTS: Final = "LOG_PROMPTS"
WORKFLOW_MODE: Final = "WORKFLOW_MODE"
REQUEST_BUDGET_MS: Final = "REQUEST_BUDGET_MS"
STREAM_BUDGET_MS: Final = "STREAM_BUDGET_MS"
OPTIONS_CACHE_TTL_S: Final = "OPTIONS_CACHE_TTL_S"
OPTIONS_CACHE_STALE_S: Final = "OPTIONS_CACHE_STALE_S"
PROVIDER_OVERRIDE: Final = "PROVIDER_OVERRIDE"
CIRCUIT_PROBE_LEASE_S: Final = "CIRCUIT_PROBE_LEASE_S"
CIRCUIT_CACHE_TTL_S: Final = "CIRCUIT_CACHE_TTL_S"
CIRCUIT_CACHE_STALE_S: Final = "CIRCUIT_CACHE_STALE_S"
QUOTA_SETTINGS_STALE_S: Final = "QUOTA_SETTINGS_STALE_S"
MODEL_FAMILIES: Final = "MODEL_FAMILIES"
ADAPTERS_TABLE: Final = "ADAPTERS_TABLE"
"""The tenant adapters table (issue 16) the model-deployment workflow keeps: (tenant, family) → adapter."""
REGIONAL_ARTIFACT_BUCKETS: Final = "REGIONAL_ARTIFACT_BUCKETS"
"""JSON region → the artifacts replica there (the regional stacks' buckets): where a version's model
data is read in a family's other regions (multi-region rollout, issue 16)."""
SAGEMAKER_EXECUTION_ROLE_ARN: Final = "SAGEMAKER_EXECUTION_ROLE_ARN"
"""The role the deployment tasks Lambda passes to SageMaker for the models it makes in other regions."""
ANSWER_CACHE_TABLE: Final = "ANSWER_CACHE_TABLE"
"""The answer cache the workflow writes; streamed requests read it for their `cache` degrade step."""

# --- Read outside the settings loaders ------------------------------------------------------------
POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_METRICS_DISABLED: Final = "POWERTOOLS_METRICS_DISABLED"
POWERTOOLS_TRACE_DISABLED: Final = "POWERTOOLS_TRACE_DISABLED"
LIGHT_AWS_CLIENT: Final = "SWITCHBOARD_LIGHT_AWS_CLIENT"
"""``1``: request-path DynamoDB / Step Functions calls without botocore (``switchboard.aws``)."""
XRAY_SDK: Final = "SWITCHBOARD_XRAY_SDK"
"""Opt-in X-Ray SDK subsegments (``switchboard.observability`` explains the cold-start cost)."""
AFTER_RESPONSE: Final = "SWITCHBOARD_AFTER_RESPONSE"
"""``extension``: a whole request's after-answer writes run after its response, in an internal Lambda
extension (``switchboard.after_response``); ``inline`` (or unset): before it, as locally."""
AFTER_RESPONSE_EXTENSION: Final = "extension"
AFTER_RESPONSE_INLINE: Final = "inline"
EXTENSION_POLL_INTERVAL: Final = "AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS"
EXTENSION_PREFETCH_LIST: Final = "AWS_APPCONFIG_EXTENSION_PREFETCH_LIST"
# AWS Lambda Web Adapter (the gateway's layer; its "Environment Variables" reference). The gateway
# function's handler is then a start script that runs ``handlers.gateway_http`` on LWA_PORT.
LAMBDA_EXEC_WRAPPER: Final = "AWS_LAMBDA_EXEC_WRAPPER"
LWA_PORT: Final = "AWS_LWA_PORT"
LWA_READINESS_CHECK_PATH: Final = "AWS_LWA_READINESS_CHECK_PATH"
LWA_INVOKE_MODE: Final = "AWS_LWA_INVOKE_MODE"
LWA_PASS_THROUGH_PATH: Final = "AWS_LWA_PASS_THROUGH_PATH"  # noqa: S105 - a variable name, not a secret

READ_OUTSIDE_SETTINGS: Final[Mapping[str, str]] = {
    POWERTOOLS_SERVICE_NAME: "Powertools Logger and Metrics",
    POWERTOOLS_METRICS_NAMESPACE: "Powertools Metrics",
    POWERTOOLS_METRICS_DISABLED: "Powertools Metrics (the local stack only)",
    POWERTOOLS_TRACE_DISABLED: "Powertools Tracer (the local stack only)",
    LIGHT_AWS_CLIENT: "switchboard.aws",
    XRAY_SDK: "switchboard.observability",
    AFTER_RESPONSE: "switchboard.after_response (the gateway, in AWS)",
    EXTENSION_POLL_INTERVAL: "the AWS AppConfig Lambda extension",
    EXTENSION_PREFETCH_LIST: "the AWS AppConfig Lambda extension",
    LAMBDA_EXEC_WRAPPER: "the Lambda runtime (runs the Lambda Web Adapter's /opt/bootstrap)",
    LWA_PORT: "the Lambda Web Adapter and handlers.gateway_http",
    LWA_READINESS_CHECK_PATH: "the Lambda Web Adapter",
    LWA_INVOKE_MODE: "the Lambda Web Adapter",
    LWA_PASS_THROUGH_PATH: "the Lambda Web Adapter",
}
"""Variables a function may be given that no settings loader reads, and who reads each one."""

DEFAULTED_IN_DEPLOYMENT: Final[Mapping[str, str]] = {
    WORKFLOW_MODE: "sync (StartSyncExecution) as deployed; poll only against in-process moto",
    REQUEST_BUDGET_MS: "the loader's default fits API Gateway's 29 s integration timeout",
    STREAM_BUDGET_MS: "the loader's default (14 min) fits the 15-minute stream and function limits",
    OPTIONS_CACHE_TTL_S: "the loader's default; the local stack shortens it",
    OPTIONS_CACHE_STALE_S: "the loader's default (2 TTLs); the local stack refreshes synchronously (0)",
    PROVIDER_OVERRIDE: "tests and the local stack only (the mock provider)",
    CIRCUIT_PROBE_LEASE_S: "the breaker's default lease",
    CIRCUIT_CACHE_TTL_S: "the breaker's default read cache",
    CIRCUIT_CACHE_STALE_S: "the gateway loader's default (2 TTLs); the local stack reads synchronously (0)",
    QUOTA_SETTINGS_STALE_S: "the gateway loader's default (2 TTLs); the local stack reads synchronously (0)",
    ANSWER_CACHE_TABLE: "only where streamed requests are served: without it their `cache` step is skipped",
    APPCONFIG_PROMPT_PROFILES: "only where tenant prompt profiles are deployed: without it none are applied",
    REGIONAL_ARTIFACT_BUCKETS: "only where a family lists other regions: without it a version whose "
    "family has other regions fails its plan with the reason",
    SAGEMAKER_EXECUTION_ROLE_ARN: "only where a family lists other regions (as REGIONAL_ARTIFACT_BUCKETS)",
    ADAPTERS_TABLE: "only where model families are deployed (the tenant adapters table): without it "
    "options with an adapter family answer with their base component",
}
"""Variables a loader reads that a deployed function may lack: the loader's default is meant."""

# --- Values --------------------------------------------------------------------------------------
APPCONFIG_AGENT_URL_DEFAULT: Final = "http://localhost:2772"
"""Where the AppConfig Lambda extension (and the local agent emulator by default) listens."""


def flag(value: bool) -> str:
    """How a boolean variable is written (the loaders accept 1/0, yes/no and on/off too)."""
    return "true" if value else "false"


def default_routes_json(default_routes: Mapping[str, Mapping[str, Any]]) -> str:
    """``DEFAULT_ROUTES``: route -> default-variant attributes, compact and stable."""
    return json.dumps(default_routes, separators=(",", ":"), sort_keys=True)


def gateway_environment(
    *,
    options_table: str,
    circuit_table: str,
    usage_table: str,
    payload_bucket: str,
    appconfig_application: str,
    appconfig_environment: str,
    appconfig_profile: str,
    appconfig_agent_url: str,
    default_routes: Mapping[str, Mapping[str, Any]],
    log_prompts: bool,
    answer_cache_table: str | None = None,
    appconfig_prompt_profiles: str | None = None,
    adapters_table: str | None = None,
) -> dict[str, str]:
    """The gateway's own variables (``STATE_MACHINE_ARN`` comes with the workflow, see infra);
    ``answer_cache_table`` where the function also serves streamed requests;
    ``appconfig_prompt_profiles`` where tenant prompt profiles are deployed; ``adapters_table``
    where tenant adapters are (streamed requests resolve them here)."""
    cache = {ANSWER_CACHE_TABLE: answer_cache_table} if answer_cache_table else {}
    profiles = {APPCONFIG_PROMPT_PROFILES: appconfig_prompt_profiles} if appconfig_prompt_profiles else {}
    adapters = {ADAPTERS_TABLE: adapters_table} if adapters_table else {}
    return {
        **cache,
        **profiles,
        **adapters,
        OPTIONS_TABLE: options_table,
        CIRCUIT_TABLE: circuit_table,
        USAGE_TABLE: usage_table,
        PAYLOAD_BUCKET: payload_bucket,
        APPCONFIG_APPLICATION: appconfig_application,
        APPCONFIG_ENVIRONMENT: appconfig_environment,
        APPCONFIG_PROFILE: appconfig_profile,
        APPCONFIG_AGENT_URL: appconfig_agent_url,
        DEFAULT_ROUTES: default_routes_json(default_routes),
        LOG_PROMPTS: flag(log_prompts),
    }


GATEWAY_HTTP_PORT: Final = 8080
"""``AWS_LWA_PORT`` of the gateway: where ``handlers.gateway_http`` listens (LWA's default port)."""
GATEWAY_READINESS_PATH: Final = "/_switchboard/ready"
"""``AWS_LWA_READINESS_CHECK_PATH``: outside ``/v1``, so API Gateway never routes a client there."""
GATEWAY_EVENTS_PATH: Final = "/_switchboard/events"
"""``AWS_LWA_PASS_THROUGH_PATH``: where LWA posts non-HTTP events (``switchboard doctor``'s Invoke)."""
LWA_EXEC_WRAPPER_PATH: Final = "/opt/bootstrap"
"""The layer's wrapper: it execs the function's handler (the start script) instead of the runtime."""
LWA_INVOKE_MODE_STREAM: Final = "response_stream"


def web_adapter_environment(*, port: int, readiness_path: str, pass_through_path: str) -> dict[str, str]:
    """The Lambda Web Adapter's variables for a function that streams (the gateway).

    ``response_stream`` applies to every response of the function (LWA has one invoke mode per
    process), so every API Gateway integration of that function must use the STREAM transfer mode.
    """
    return {
        LAMBDA_EXEC_WRAPPER: LWA_EXEC_WRAPPER_PATH,
        LWA_PORT: str(port),
        LWA_READINESS_CHECK_PATH: readiness_path,
        LWA_INVOKE_MODE: LWA_INVOKE_MODE_STREAM,
        LWA_PASS_THROUGH_PATH: pass_through_path,
    }


def authorizer_environment(*, keys_table: str) -> dict[str, str]:
    return {KEYS_TABLE: keys_table}


def invoke_environment(
    *,
    options_table: str,
    circuit_table: str,
    usage_table: str,
    payload_bucket: str,
    log_prompts: bool,
    adapters_table: str | None = None,
) -> dict[str, str]:
    """The invoke step's variables; ``adapters_table`` where tenant adapters are (issue 16)."""
    return {
        **({ADAPTERS_TABLE: adapters_table} if adapters_table else {}),
        OPTIONS_TABLE: options_table,
        CIRCUIT_TABLE: circuit_table,
        USAGE_TABLE: usage_table,
        PAYLOAD_BUCKET: payload_bucket,
        LOG_PROMPTS: flag(log_prompts),
    }


def circuit_environment(*, options_table: str, circuit_table: str) -> dict[str, str]:
    return {OPTIONS_TABLE: options_table, CIRCUIT_TABLE: circuit_table}


def flags_validator_environment(*, options_table: str) -> dict[str, str]:
    return {OPTIONS_TABLE: options_table}
