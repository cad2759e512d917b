"""Names shared by the infrastructure code: env vars, outputs, handler paths, paths, sizes.

The Lambda code (``lambdas/switchboard/settings.py``) and the CLI (``cli/target.py``) read the same
names; keep them in step. No other infra module spells these strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

# --- Paths (relative to the repository root, where app.py and cdk.json live) ----------------------
PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
CDK_JSON: Final = PROJECT_ROOT / "cdk.json"
LAMBDA_ASSET_DIR: Final = PROJECT_ROOT / "lambdas"
LAMBDA_ASSET_EXCLUDE: Final = ("**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache")
FLAGS_FILE: Final = PROJECT_ROOT / "config" / "flags.json"
OPTIONS_FILE: Final = PROJECT_ROOT / "config" / "options.json"
REQUEST_WORKFLOW_ASL: Final = PROJECT_ROOT / "statemachines" / "request_workflow.asl.json"
MODEL_DEPLOYMENT_ASL: Final = PROJECT_ROOT / "statemachines" / "model_deployment.asl.json"
DEFAULT_OUTDIR: Final = "cdk.out"

# --- Handlers (module.function inside lambdas/) -----------------------------------------------------
HANDLER_GATEWAY: Final = "handlers.gateway.handler"
HANDLER_AUTHORIZER: Final = "handlers.authorizer.handler"
HANDLER_INVOKE: Final = "handlers.invoke.handler"
HANDLER_FLAGS_VALIDATOR: Final = "handlers.flags_validator.handler"
HANDLER_SEED_OPTIONS: Final = "handlers.seed_options.handler"
HANDLER_CIRCUIT: Final = "handlers.circuit.handler"
HANDLER_MODEL_DEPLOYMENT: Final = "handlers.model_deployment.handler"
HANDLER_MODEL_RETIREMENT: Final = "handlers.model_retirement.handler"

# --- Environment variables read by the handlers ---------------------------------------------------
ENV_POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
ENV_LOG_PROMPTS: Final = "LOG_PROMPTS"
# Request-path DynamoDB / Step Functions calls without botocore (switchboard.aws, switchboard.awsjson).
ENV_LIGHT_AWS_CLIENT: Final = "SWITCHBOARD_LIGHT_AWS_CLIENT"
# Opt-in X-Ray SDK subsegments (lambdas/switchboard/observability.py explains the cold-start cost).
ENV_XRAY_SDK: Final = "SWITCHBOARD_XRAY_SDK"
ENV_OPTIONS_TABLE: Final = "OPTIONS_TABLE"
ENV_KEYS_TABLE: Final = "KEYS_TABLE"
ENV_CIRCUIT_TABLE: Final = "CIRCUIT_TABLE"
ENV_STATE_MACHINE_ARN: Final = "STATE_MACHINE_ARN"
ENV_PAYLOAD_BUCKET: Final = "PAYLOAD_BUCKET"
ENV_APPCONFIG_APPLICATION: Final = "APPCONFIG_APPLICATION"
ENV_APPCONFIG_ENVIRONMENT: Final = "APPCONFIG_ENVIRONMENT"
ENV_APPCONFIG_PROFILE: Final = "APPCONFIG_PROFILE"
ENV_APPCONFIG_AGENT_URL: Final = "APPCONFIG_AGENT_URL"
ENV_DEFAULT_ROUTES: Final = "DEFAULT_ROUTES"
# The model families as JSON (switchboard.lifecycle.settings reads it).
ENV_MODEL_FAMILIES: Final = "MODEL_FAMILIES"
# Read by the AppConfig Lambda extension itself, not by our code.
ENV_EXTENSION_POLL_INTERVAL: Final = "AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS"
ENV_EXTENSION_PREFETCH_LIST: Final = "AWS_APPCONFIG_EXTENSION_PREFETCH_LIST"

POWERTOOLS_SERVICE_NAME: Final = "switchboard"
POWERTOOLS_METRICS_NAMESPACE: Final = "Switchboard"
APPCONFIG_AGENT_URL: Final = "http://localhost:2772"
EXTENSION_POLL_INTERVAL_SECONDS: Final = 30

# Lambda's limit on all environment variables of one function together.
LAMBDA_ENV_LIMIT_BYTES: Final = 4096

# --- Table keys ------------------------------------------------------------------------------------
OPTIONS_TABLE_PARTITION_KEY: Final = "id"
KEYS_TABLE_PARTITION_KEY: Final = "key_hash"
CIRCUIT_TABLE_PARTITION_KEY: Final = "pk"
CIRCUIT_TABLE_SORT_KEY: Final = "sk"
CACHE_TABLE_PARTITION_KEY: Final = "cache_key"
# Epoch seconds after which DynamoDB TTL may delete the item (circuit events, cached answers).
TTL_ATTRIBUTE: Final = "expires_at"

# --- Custom resource properties (the seed handler reads these) ------------------------------------
SEED_PROP_TABLE_NAME: Final = "TableName"
SEED_PROP_OPTIONS: Final = "Options"

# --- Step Functions definition substitutions -------------------------------------------------------
SUBST_INVOKE_FUNCTION_ARN: Final = "InvokeFunctionArn"
SUBST_CIRCUIT_FUNCTION_ARN: Final = "CircuitFunctionArn"
SUBST_CIRCUIT_TABLE: Final = "CircuitTable"
SUBST_CACHE_TABLE: Final = "CacheTable"

# --- API -------------------------------------------------------------------------------------------
API_PATH_CHAT_COMPLETIONS: Final = ("v1", "chat", "completions")
API_PATH_MODELS: Final = ("v1", "models")
AUTHORIZATION_HEADER: Final = "Authorization"
# API Gateway REST's default (and, without a quota raise, maximum) integration timeout.
API_INTEGRATION_TIMEOUT_S: Final = 29
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

# --- Metrics: names live in lambdas/switchboard/contract/metrics.py (the code emits them, the
# monitoring construct imports them from there).

# --- cdk-nag ---------------------------------------------------------------------------------------
NAG_IAM5: Final = "AwsSolutions-IAM5"
NAG_IAM4: Final = "AwsSolutions-IAM4"
