"""The AWS side of the local stack and the integration tests, on moto.

`provision()` creates what CDK creates (tables, payload bucket, the invoke function, the Express
request workflow from `statemachines/`, usage plans), seeds the options from `config/` and the
development key. `bind_lambda_handlers()` points moto's Lambda backend at the in-process handlers,
so the Step Functions interpreter runs the real ASL against the real handler code. Neither patches
moto beyond its block: every moto patch is in :mod:`switchboard_local.moto_patches` (the callers
apply ``ASL_PARSE_CACHE`` for speed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# FakeLambdaContext is re-exported: the front door, the benchmark and tests take it from here.
from switchboard.contract.tables import KEY_SCHEMAS
from switchboard_local.emulated_lambda import LOCAL_RUNTIME, Handler, placeholder_code_zip
from switchboard_local.emulated_lambda import FakeLambdaContext as FakeLambdaContext
from switchboard_local.moto_patches import lambda_handlers

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"
STATEMACHINES_DIR = ROOT / "statemachines"
FLAGS_FILE = CONFIG_DIR / "flags.json"
PROFILES_FILE = CONFIG_DIR / "profiles.json"
OPTIONS_FILE = CONFIG_DIR / "options.json"
CDK_JSON = ROOT / "cdk.json"

DEV_KEY = "sk-switchboard-local-dev"
DEV_TENANT = "dev"
DEV_TIER = "standard"
APPCONFIG_NAMES = {"application": "switchboard", "environment": "local", "profile": "routing"}
PROMPT_PROFILES_NAME = "prompt-profiles"
"""The freeform profile of tenant prompt profiles, beside the flags (as ``cdk.json`` deploys it)."""


def agent_freeform(profiles_file: Path = PROFILES_FILE) -> dict[str, Any]:
    """The agent emulator's freeform profiles: the prompt profiles, checked as their validator checks."""
    from switchboard.profiles import parse_document_bytes
    from switchboard_local.agent import FreeformConfiguration

    return {PROMPT_PROFILES_NAME: FreeformConfiguration(Path(profiles_file), check=parse_document_bytes)}


@lru_cache(maxsize=4)
def usage_plan_throttles(cdk_json: Path = CDK_JSON) -> dict[str, dict[str, float]]:
    """Each tier's usage-plan throttle (`rateLimit`, `burstLimit`), as API Gateway takes it.

    Read from `cdk.json`'s context through the infrastructure's own reader, so the local stack
    throttles with the numbers `cdk deploy` puts on the usage plans, not a copy of them.
    """
    from infra.config import SwitchboardConfig, load_cdk_json_context

    context = load_cdk_json_context(cdk_json)
    config = SwitchboardConfig.from_context(context.get, environ={})
    return {
        tier: {"rateLimit": float(limits.rate_limit), "burstLimit": limits.burst_limit}
        for tier, limits in config.throttling.items()
    }


def authorizer_cache_ttl_s(cdk_json: Path = CDK_JSON) -> float:
    """How long API Gateway caches the REQUEST authorizer's answer per `Authorization` value.

    `cdk.json`'s `authorizer_cache_ttl_s` through the infrastructure's reader, as
    infra/constructs/api.py deploys it (0 turns the cache off).
    """
    from infra.config import SwitchboardConfig, load_cdk_json_context

    context = load_cdk_json_context(cdk_json)
    return float(SwitchboardConfig.from_context(context.get, environ={}).authorizer_cache_ttl_s)


@dataclass
class LocalResources:
    region: str
    options_table: str
    keys_table: str
    payload_bucket: str
    invoke_function: str
    state_machine_arn: str
    circuit_table: str = ""
    cache_table: str = ""
    usage_table: str = ""
    circuit_function: str = ""
    usage_plans: dict[str, str] = field(default_factory=dict)
    # Registered so `switchboard doctor --local` can invoke them as it does in AWS; API traffic
    # reaches them through the front door, not through Lambda.
    gateway_function: str = ""
    authorizer_function: str = ""


@contextmanager
def bind_lambda_handlers(handlers: Mapping[str, Handler]) -> Iterator[None]:
    """Route moto Lambda invocations (the interpreter's Lambda tasks) to in-process handlers.

    The patch is :func:`switchboard_local.moto_patches.lambda_handlers` (undone on exit); a
    handler's exception reaches the ASL as Lambda reports it (see ``in_process_invoke``).
    """
    with lambda_handlers(handlers).applied():
        yield


def proxy_event(
    method: str,
    path: str,
    body: str | None,
    *,
    headers: Mapping[str, str],
    authorizer: Mapping[str, Any],
    request_id: str,
    stage: str = "prod",
    identity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST Lambda-proxy event as the deployed API sends it after the authorizer
    (the local front door, the test harness and the benchmark all build it here)."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": stage,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "resourcePath": path,
            "authorizer": dict(authorizer),
            "identity": dict(identity or {"sourceIp": "127.0.0.1"}),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def provision(
    client: Callable[[str], Any],
    *,
    region: str = "us-east-1",
    prefix: str = "switchboard-local",
    seed: bool = True,
    dev_key: str = DEV_KEY,
    definition_overrides: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create the emulated resources. `client(service)` returns a boto3 client for the emulator."""
    ddb = client("dynamodb")
    resources = LocalResources(
        region=region,
        options_table=f"{prefix}-options",
        keys_table=f"{prefix}-keys",
        payload_bucket=f"{prefix}-payloads",
        invoke_function=f"{prefix}-invoke",
        state_machine_arn="",
        circuit_table=f"{prefix}-circuits",
        cache_table=f"{prefix}-answer-cache",
        usage_table=f"{prefix}-usage",
        circuit_function=f"{prefix}-circuit",
        gateway_function=f"{prefix}-gateway",
        authorizer_function=f"{prefix}-authorizer",
    )
    tables = {
        resources.options_table: KEY_SCHEMAS["options"],
        resources.keys_table: KEY_SCHEMAS["keys"],
        resources.circuit_table: KEY_SCHEMAS["circuits"],
        resources.cache_table: KEY_SCHEMAS["cache"],
        resources.usage_table: KEY_SCHEMAS["usage"],
    }
    for table, keys in tables.items():
        ddb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": key, "KeyType": "HASH" if index == 0 else "RANGE"}
                for index, key in enumerate(keys)
            ],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    client("s3").create_bucket(Bucket=resources.payload_bucket)

    iam = client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = iam.create_role(RoleName=f"{prefix}-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    function_arns = {
        name: client("lambda").create_function(
            FunctionName=name,
            Runtime=LOCAL_RUNTIME,
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": placeholder_code_zip()},
        )["FunctionArn"]
        for name, handler in (
            (resources.invoke_function, "handlers.invoke.handler"),
            (resources.circuit_function, "handlers.circuit.handler"),
            (resources.gateway_function, "handlers.gateway.handler"),
            (resources.authorizer_function, "handlers.authorizer.handler"),
        )
    }

    definition = (STATEMACHINES_DIR / "request_workflow.asl.json").read_text()
    substitutions = {
        "InvokeFunctionArn": function_arns[resources.invoke_function],
        "CircuitFunctionArn": function_arns[resources.circuit_function],
        "CircuitTable": resources.circuit_table,
        "CacheTable": resources.cache_table,
        **(definition_overrides or {}),
    }
    for name, value in substitutions.items():
        definition = definition.replace("${" + name + "}", value)
    resources.state_machine_arn = client("stepfunctions").create_state_machine(
        name=f"{prefix}-request", definition=definition, roleArn=role_arn, type="EXPRESS"
    )["stateMachineArn"]

    apigw = client("apigateway")
    for tier, throttle in usage_plan_throttles().items():
        plan = apigw.create_usage_plan(name=f"{prefix}-{tier}", throttle=throttle)
        resources.usage_plans[tier] = plan["id"]

    if seed:
        seed_catalogue(client, resources, dev_key=dev_key)
    return resources


def seed_catalogue(
    client: Callable[[str], Any], resources: LocalResources, *, dev_key: str = DEV_KEY
) -> None:
    from switchboard.keys import ApiKeyStore
    from switchboard.options.store import OptionsStore, load_seed_file

    OptionsStore(resources.options_table, client=client("dynamodb")).seed(
        load_seed_file(OPTIONS_FILE), updated_by="local-stack"
    )
    keys = ApiKeyStore(resources.keys_table, client=client("dynamodb"))
    if keys.lookup(dev_key) is None:
        keys.create(
            DEV_TENANT,
            DEV_TIER,
            apigateway=client("apigateway"),
            usage_plan_id=resources.usage_plans.get(DEV_TIER),
            key=dev_key,
        )


def handler_environment(
    resources: LocalResources,
    *,
    agent_url: str,
    endpoint_url: str | None,
    provider_override: str | None = "mock",
) -> dict[str, str]:
    """The environments CDK gives the functions (the same builders), pointed at the emulators.

    The handlers run in one process here, so their environments are merged; the only additions are
    the local knobs every loader declares (`switchboard.contract.env.DEFAULTED_IN_DEPLOYMENT`).
    """
    from infra.config import default_routes  # the same last-resort routes CDK computes
    from switchboard.contract import env as names
    from switchboard_local.lifecycle_local import names_for, prefix_of

    # The tenant adapters table the model lifecycle creates (provision_model_lifecycle); where it
    # was not provisioned, options with an adapter family fail open to their base component.
    adapters_table = names_for(prefix_of(resources))["adapters_table"]

    environment = {
        **names.gateway_environment(
            options_table=resources.options_table,
            circuit_table=resources.circuit_table,
            usage_table=resources.usage_table,
            payload_bucket=resources.payload_bucket,
            appconfig_application=APPCONFIG_NAMES["application"],
            appconfig_environment=APPCONFIG_NAMES["environment"],
            appconfig_profile=APPCONFIG_NAMES["profile"],
            appconfig_agent_url=agent_url,
            default_routes=default_routes(json.loads(FLAGS_FILE.read_text())),
            log_prompts=False,
            answer_cache_table=resources.cache_table or None,
            appconfig_prompt_profiles=PROMPT_PROFILES_NAME,
            adapters_table=adapters_table,
        ),
        **names.authorizer_environment(keys_table=resources.keys_table),
        **names.invoke_environment(
            options_table=resources.options_table,
            circuit_table=resources.circuit_table,
            usage_table=resources.usage_table,
            payload_bucket=resources.payload_bucket,
            log_prompts=False,
            adapters_table=adapters_table,
        ),
        **names.circuit_environment(
            options_table=resources.options_table, circuit_table=resources.circuit_table
        ),
        names.STATE_MACHINE_ARN: resources.state_machine_arn,
        # In-process moto has no StartSyncExecution: start + poll. Against the local stack's
        # server, `switchboard_local.sfn_ext` adds it and the gateway runs as deployed.
        names.WORKFLOW_MODE: "sync" if endpoint_url else "poll",
        "AWS_DEFAULT_REGION": resources.region,
        "AWS_REGION": resources.region,
        names.POWERTOOLS_METRICS_DISABLED: "true",
        names.POWERTOOLS_TRACE_DISABLED: "true",
        # Option edits (`switchboard options put --local`) show within a second, not ten.
        names.OPTIONS_CACHE_TTL_S: "1",
        # ... and synchronously: the first request past the TTL reads the table (no stale window).
        names.OPTIONS_CACHE_STALE_S: "0",
        # Circuits too: a circuit the workflow opens is seen by the next stream past the 2 s cache.
        names.CIRCUIT_CACHE_STALE_S: "0",
        # ... and a tenant's quota settings (a budget set with the CLI applies past the 5 s cache).
        names.QUOTA_SETTINGS_STALE_S: "0",
    }
    if endpoint_url:
        environment["AWS_ENDPOINT_URL"] = endpoint_url
        # As deployed: DynamoDB and Step Functions without botocore. Only against a real HTTP
        # emulator: in-process moto (endpoint_url None) intercepts botocore, not plain HTTP.
        environment[names.LIGHT_AWS_CLIENT] = "1"
    if provider_override:
        environment[names.PROVIDER_OVERRIDE] = provider_override
    return environment


def in_process_handlers(resources: LocalResources) -> dict[str, Handler]:
    from handlers import authorizer, circuit, gateway, invoke
    from switchboard_local.lifecycle_local import lifecycle_handlers

    handlers: dict[str, Handler] = {
        resources.invoke_function: invoke.handler,
        resources.circuit_function: circuit.handler,
        **lifecycle_handlers(resources),
    }
    if resources.gateway_function:
        handlers[resources.gateway_function] = gateway.handler
    if resources.authorizer_function:
        handlers[resources.authorizer_function] = authorizer.handler
    return handlers


def reset_handler_caches() -> None:
    """Handlers build their clients once per 'execution environment'; a new stack needs new ones."""
    from handlers import authorizer, circuit, gateway, invoke

    for handler_module in (gateway, invoke, authorizer, circuit):
        handler_module.forget_cached_state()
