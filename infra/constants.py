"""Names of the infrastructure code: paths, outputs, sizes, and the contract's names re-exported.

A name the Lambda code also reads (env var, handler path, table key, definition substitution) is
declared once in ``switchboard.contract`` and imported here; the rest (paths, outputs, cdk-nag ids)
is infra's own. The CLI (``cli/target.py``) reads the same outputs. No other infra module spells
these strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from switchboard.contract import env, handlers, tables, workflow

# --- Paths (relative to the repository root, where app.py and cdk.json live) ----------------------
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
CDK_JSON: Final = PROJECT_ROOT / "cdk.json"
LAMBDA_ASSET_DIR: Final = PROJECT_ROOT / "lambdas"
LAMBDA_ASSET_EXCLUDE: Final = ("**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache")
FLAGS_FILE: Final = PROJECT_ROOT / "config" / "flags.json"
PROFILES_FILE: Final = PROJECT_ROOT / "config" / "profiles.json"
OPTIONS_FILE: Final = PROJECT_ROOT / "config" / "options.json"
REQUEST_WORKFLOW_ASL: Final = PROJECT_ROOT / "statemachines" / "request_workflow.asl.json"
MODEL_DEPLOYMENT_ASL: Final = PROJECT_ROOT / "statemachines" / "model_deployment.asl.json"
DEFAULT_OUTDIR: Final = "cdk.out"

# --- Names that cross into the Lambda code: declared once in switchboard.contract ---------------
# Re-exported under infra's historical names so infra code reads ``constants.X`` as before.
HANDLER_GATEWAY: Final = handlers.HANDLER_GATEWAY
HANDLER_GATEWAY_HTTP: Final = handlers.HANDLER_GATEWAY_HTTP
HANDLER_AUTHORIZER: Final = handlers.HANDLER_AUTHORIZER
HANDLER_INVOKE: Final = handlers.HANDLER_INVOKE
HANDLER_FLAGS_VALIDATOR: Final = handlers.HANDLER_FLAGS_VALIDATOR
HANDLER_PROFILES_VALIDATOR: Final = handlers.HANDLER_PROFILES_VALIDATOR
HANDLER_SEED_OPTIONS: Final = handlers.HANDLER_SEED_OPTIONS
HANDLER_CIRCUIT: Final = handlers.HANDLER_CIRCUIT
HANDLER_MODEL_DEPLOYMENT: Final = handlers.HANDLER_MODEL_DEPLOYMENT
HANDLER_MODEL_RETIREMENT: Final = handlers.HANDLER_MODEL_RETIREMENT

ENV_POWERTOOLS_SERVICE_NAME: Final = env.POWERTOOLS_SERVICE_NAME
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = env.POWERTOOLS_METRICS_NAMESPACE
ENV_LOG_PROMPTS: Final = env.LOG_PROMPTS
ENV_LIGHT_AWS_CLIENT: Final = env.LIGHT_AWS_CLIENT
ENV_XRAY_SDK: Final = env.XRAY_SDK
ENV_OPTIONS_TABLE: Final = env.OPTIONS_TABLE
ENV_KEYS_TABLE: Final = env.KEYS_TABLE
ENV_CIRCUIT_TABLE: Final = env.CIRCUIT_TABLE
ENV_USAGE_TABLE: Final = env.USAGE_TABLE
ENV_STATE_MACHINE_ARN: Final = env.STATE_MACHINE_ARN
ENV_PAYLOAD_BUCKET: Final = env.PAYLOAD_BUCKET
ENV_APPCONFIG_APPLICATION: Final = env.APPCONFIG_APPLICATION
ENV_APPCONFIG_ENVIRONMENT: Final = env.APPCONFIG_ENVIRONMENT
ENV_APPCONFIG_PROFILE: Final = env.APPCONFIG_PROFILE
ENV_APPCONFIG_AGENT_URL: Final = env.APPCONFIG_AGENT_URL
ENV_DEFAULT_ROUTES: Final = env.DEFAULT_ROUTES
ENV_MODEL_FAMILIES: Final = env.MODEL_FAMILIES
ENV_ADAPTERS_TABLE: Final = env.ADAPTERS_TABLE
ENV_REGIONAL_ARTIFACT_BUCKETS: Final = env.REGIONAL_ARTIFACT_BUCKETS
ENV_SAGEMAKER_EXECUTION_ROLE_ARN: Final = env.SAGEMAKER_EXECUTION_ROLE_ARN
# Read by the AppConfig Lambda extension itself, not by our code.
ENV_EXTENSION_POLL_INTERVAL: Final = env.EXTENSION_POLL_INTERVAL
ENV_EXTENSION_PREFETCH_LIST: Final = env.EXTENSION_PREFETCH_LIST
APPCONFIG_AGENT_URL: Final = env.APPCONFIG_AGENT_URL_DEFAULT

OPTIONS_TABLE_PARTITION_KEY: Final = tables.OPTIONS_PARTITION_KEY
KEYS_TABLE_PARTITION_KEY: Final = tables.KEYS_PARTITION_KEY
CIRCUIT_TABLE_PARTITION_KEY: Final = tables.CIRCUIT_PARTITION_KEY
CIRCUIT_TABLE_SORT_KEY: Final = tables.CIRCUIT_SORT_KEY
CACHE_TABLE_PARTITION_KEY: Final = tables.CACHE_PARTITION_KEY
USAGE_TABLE_PARTITION_KEY: Final = tables.USAGE_PARTITION_KEY
USAGE_TABLE_SORT_KEY: Final = tables.USAGE_SORT_KEY
USAGE_TABLE_ACTIONS: Final = ("dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query")
"""What the gateway and the invoke step may do to the usage table: atomic ``ADD`` updates, and
reads of one item or of a tenant's partition. No Scan, no Put, no Delete (TTL deletes)."""
GATEWAY_USAGE_TABLE_ACTIONS: Final = ("dynamodb:UpdateItem", "dynamodb:BatchGetItem")
"""What the gateway's quotas and metering do (``switchboard.accounting``): the window, spend and usage
``ADD`` updates, and one ``BatchGetItem`` of a tenant's limits, budget and spend. No reads of usage."""
TTL_ATTRIBUTE: Final = tables.TTL_ATTRIBUTE

SUBST_INVOKE_FUNCTION_ARN: Final = workflow.SUBST_INVOKE_FUNCTION_ARN
SUBST_CIRCUIT_FUNCTION_ARN: Final = workflow.SUBST_CIRCUIT_FUNCTION_ARN
SUBST_CIRCUIT_TABLE: Final = workflow.SUBST_CIRCUIT_TABLE
SUBST_CACHE_TABLE: Final = workflow.SUBST_CACHE_TABLE

# --- Values infra chooses ---------------------------------------------------------------------------
POWERTOOLS_SERVICE_NAME: Final = "switchboard"
POWERTOOLS_METRICS_NAMESPACE: Final = "Switchboard"
PROMPT_PROFILES_NAME: Final = "prompt-profiles"
"""The AppConfig freeform profile of the tenant prompt profiles (in the flags' application)."""
EXTENSION_POLL_INTERVAL_SECONDS: Final = 30

# Lambda's limit on all environment variables of one function together.
LAMBDA_ENV_LIMIT_BYTES: Final = 4096

# --- Custom resource properties (the seed handler reads these) ------------------------------------
SEED_PROP_TABLE_NAME: Final = "TableName"
SEED_PROP_OPTIONS: Final = "Options"

# --- API -------------------------------------------------------------------------------------------
API_PATH_CHAT_COMPLETIONS: Final = ("v1", "chat", "completions")
API_PATH_EMBEDDINGS: Final = ("v1", "embeddings")
API_PATH_MODELS: Final = ("v1", "models")
AUTHORIZATION_HEADER: Final = "Authorization"
# API Gateway REST's default (and, without a quota raise, maximum) integration timeout.
API_INTEGRATION_TIMEOUT_S: Final = 29
# A streamed (responseTransferMode STREAM) integration may wait up to 15 minutes, the longest a
# streamed response may last (API Gateway developer guide, "Stream the integration response for your
# proxy integrations" and "Set up an HTTP proxy integration with payload response streaming").
API_STREAM_TIMEOUT_S: Final = 15 * 60
# Lambda's longest function timeout: the gateway's, so a stream is never cut before API Gateway's cap.
LAMBDA_MAX_TIMEOUT_S: Final = 15 * 60
TIERS: Final = ("standard", "premium")

# --- CloudFormation outputs (cli/target.py OUTPUT_KEYS reads the first five and the two tables) ---
OUTPUT_OPTIONS_TABLE: Final = "OptionsTableName"
OUTPUT_KEYS_TABLE: Final = "KeysTableName"
OUTPUT_USAGE_PLAN_STANDARD: Final = "UsagePlanStandardId"
OUTPUT_USAGE_PLAN_PREMIUM: Final = "UsagePlanPremiumId"
OUTPUT_API_URL: Final = "ApiUrl"
OUTPUT_OPENAI_BASE_URL: Final = "OpenAIBaseUrl"
OUTPUT_STATE_MACHINE_ARN: Final = "StateMachineArn"
OUTPUT_PAYLOAD_BUCKET: Final = "PayloadBucketName"
OUTPUT_APPCONFIG_APPLICATION: Final = "AppConfigApplication"
OUTPUT_APPCONFIG_ENVIRONMENT: Final = "AppConfigEnvironment"
OUTPUT_APPCONFIG_PROFILE: Final = "AppConfigProfile"
OUTPUT_APPCONFIG_APPLICATION_ID: Final = "AppConfigApplicationId"
OUTPUT_APPCONFIG_ENVIRONMENT_ID: Final = "AppConfigEnvironmentId"
OUTPUT_APPCONFIG_PROFILE_ID: Final = "AppConfigProfileId"
OUTPUT_CIRCUIT_TABLE: Final = "CircuitTableName"
OUTPUT_CACHE_TABLE: Final = "CacheTableName"
OUTPUT_USAGE_TABLE: Final = "UsageTableName"

# --- Metrics: names live in lambdas/switchboard/contract/metrics.py (the code emits them, the
# monitoring construct imports them from there).

# --- cdk-nag ---------------------------------------------------------------------------------------
NAG_IAM5: Final = "AwsSolutions-IAM5"
NAG_IAM4: Final = "AwsSolutions-IAM4"
