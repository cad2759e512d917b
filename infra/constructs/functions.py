"""The request-path Lambdas (gateway, authorizer, invoke and circuit steps) and how to build one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import checkov, constants, layers
from infra.config import BedrockTarget
from infra.constructs.tenant_adapters import TenantAdapterTable
from infra.lambda_asset import lambda_asset_dir
from switchboard.contract import env
from switchboard.routing.appconfig_path import configuration_path

_NAG_ACCOUNT = "<AWS::AccountId>"
"""How cdk-nag prints ``{"Ref": "AWS::AccountId"}`` inside a finding id."""

XRAY_REASON = (
    "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
    "resource-level permissions (Service Authorization Reference), so CDK grants them on '*'."
)

RUNTIME_REASON = (
    "Deployed as tested: the functions run the Python minor version `make test` runs the Lambda "
    "code's tests on (infra/layers.py LAMBDA_PYTHON_VERSION, 3.13, a supported Lambda runtime); "
    "python3.14 cannot be installed on the machines that run the suite, so shipping it would ship "
    "an untested interpreter."
)


@dataclass(frozen=True, slots=True)
class AccountScopedArn:
    """An ARN pattern with the account left to CloudFormation, and how cdk-nag prints it."""

    template: str
    """``str.format`` template with an ``{account}`` field."""

    @property
    def arn(self) -> str:
        return self.template.format(account=Aws.ACCOUNT_ID)

    @property
    def nag_form(self) -> str:
        return self.template.format(account=_NAG_ACCOUNT)


def iam5_resource(resource: str) -> str:
    """The cdk-nag finding id for a wildcard resource, e.g. ``AwsSolutions-IAM5[Resource::arn:…/*]``."""
    return f"{constants.NAG_IAM5}[Resource::{resource}]"


def lambda_code() -> lambda_.Code:
    """The one code asset every function runs: ``lambdas/`` as is, plus its bytecode compiled by the
    runtime's Python (:mod:`infra.lambda_asset`: no compiling from source on a cold start).
    Powertools comes from a layer."""
    return lambda_.Code.from_asset(str(lambda_asset_dir()))


def powertools_environment() -> dict[str, str]:
    """The variables every Switchboard function gets (``LOG_PROMPTS`` only where a loader reads it:
    the gateway's and the invoke step's, see :mod:`switchboard.contract.env`)."""
    return {
        env.POWERTOOLS_SERVICE_NAME: constants.POWERTOOLS_SERVICE_NAME,
        env.POWERTOOLS_METRICS_NAMESPACE: constants.POWERTOOLS_METRICS_NAMESPACE,
        env.LIGHT_AWS_CLIENT: "1",
    }


def lambda_runtime() -> lambda_.Runtime:
    """The runtime whose Python minor version ``make test`` runs the Lambda code's tests on."""
    name = "PYTHON_" + layers.LAMBDA_PYTHON_VERSION.replace(".", "_")
    runtime: lambda_.Runtime = getattr(lambda_.Runtime, name)
    return runtime


class SwitchboardFunction(Construct):
    """One arm64 function on the tested Python with its own role, log group (retention) and X-Ray.

    The role has no managed policy: the function may write to its own log group only, plus what
    the caller grants. ``Code.from_asset`` with no bundling (no Docker here): third-party code comes
    from layers or the runtime.

    Attributes:
        function: the Lambda function.
        role: its execution role.
        log_group: its log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        memory_size: int,
        timeout: Duration,
        environment: Mapping[str, str],
        layers: Sequence[lambda_.ILayerVersion],
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        function_name: str | None = None,
    ) -> None:
        """
        Args:
            handler: ``module.function`` inside ``lambdas/``.
            description: shown in the console.
            memory_size: MB.
            timeout: the function timeout.
            environment: variables (merged over nothing: pass :func:`powertools_environment` in).
            layers: Lambda layers (Powertools at least).
            log_retention: retention of the function's log group.
            log_removal_policy: what happens to the log group when the stack goes.
            function_name: a literal name, when something must name the function without a reference.
        """
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {construct_id}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            code=lambda_code(),
            handler=handler,
            runtime=lambda_runtime(),
            architecture=lambda_.Architecture.ARM_64,
            memory_size=memory_size,
            timeout=timeout,
            environment=dict(environment),
            layers=list(layers),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=self.log_group,
        )
        Validations.of(self.role).acknowledge(Acknowledgment(id=iam5_resource("*"), reason=XRAY_REASON))
        if self.function.runtime.name != lambda_.Runtime.PYTHON_3_14.name:
            Validations.of(self.function).acknowledge(
                Acknowledgment(id="AwsSolutions-L1", reason=RUNTIME_REASON)
            )
        cfn_function = self.function.node.default_child
        if isinstance(cfn_function, CfnResource):
            depend_on_role_policy_only(cfn_function, self.role)
        _check_environment_size(construct_id, environment)


def depend_on_role_policy_only(resource: CfnResource, role: iam.Role) -> None:
    """Keep the resource's DependsOn on the role's default policy, drop the one on the role.

    CDK makes a function (or state machine) depend on both its role and the role's DefaultPolicy.
    The role is already referenced through ``Fn::GetAtt``, so cfn-lint warns (W3005) about the
    redundant entry; the policy dependency is the one that matters (the grants must exist before
    the first invocation). Call after the default policy exists.
    """
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None or not isinstance(policy.node.default_child, CfnResource):
        return
    resource.add_override("DependsOn", [policy.node.default_child.logical_id])


def _check_environment_size(name: str, environment: Mapping[str, str]) -> None:
    """Lambda refuses more than 4 KB of variables; fail at synth with a useful message instead."""
    size = sum(len(k) + len(v) for k, v in environment.items() if "${Token[" not in v)
    if size > constants.LAMBDA_ENV_LIMIT_BYTES - 512:
        raise ValueError(
            f"{name}: environment variables take {size} bytes, too close to Lambda's 4 KB limit "
            "(is DEFAULT_ROUTES too large? keep the default variants small)"
        )


class GatewayFunctions(Construct):
    """The gateway (API), the authorizer, the invoke step and the circuit step, with env vars and grants.

    Attributes:
        gateway: the OpenAI-compatible API behind API Gateway: ``handlers.gateway_http`` under
            Lambda Web Adapter (``response_stream``), serving ``handlers.gateway.handler``.
        authorizer: ``handlers.authorizer.handler``: REQUEST authorizer (hashed bearer keys).
        invoke: ``handlers.invoke.handler``: one provider call, run by the request workflow.
        circuit: ``handlers.circuit.handler``: the circuit breaker's steps in the request workflow
            (half-open probe lease, outcome recording and transitions).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options_table: dynamodb.ITable,
        keys_table: dynamodb.ITable,
        circuit_table: dynamodb.ITable,
        answer_cache_table: dynamodb.ITable,
        usage_table: dynamodb.ITable,
        payload_bucket: s3.IBucket,
        powertools_layer: lambda_.ILayerVersion,
        appconfig_extension_layer: lambda_.ILayerVersion,
        appconfig_application: str,
        appconfig_environment: str,
        appconfig_profile: str,
        appconfig_configuration_arn: str,
        default_routes: Mapping[str, Mapping[str, Any]],
        prompt_profiles_profile: str | None = None,
        prompt_profiles_configuration_arn: str | None = None,
        bedrock_targets: Sequence[BedrockTarget],
        gateway_function_name: str,
        log_prompts: bool = False,
        xray_sdk: bool = False,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        gateway_timeout: Duration | None = None,
        invoke_timeout: Duration | None = None,
        authorizer_timeout: Duration | None = None,
        circuit_timeout: Duration | None = None,
    ) -> None:
        """
        Args:
            options_table: LLM options (gateway and invoke read it).
            keys_table: hashed API keys (the authorizer reads it).
            circuit_table: circuit states and transition events. The circuit step and the invoke step
                read and write it (the invoke step records outcomes; every transition is a
                conditional write); the gateway reads it (BatchGetItem) for Retry-After.
            answer_cache_table: the workflow's answer cache; the gateway reads it for a streamed
                request's `cache` degrade step and puts a streamed answer in it (as the workflow
                does for whole answers).
            usage_table: per-tenant usage counters (issue 15); the gateway and the invoke step may
                update (atomic ADD), get and query it, nothing else.
            payload_bucket: claim-check bucket (gateway reads/writes, invoke reads).
            powertools_layer: on every function.
            appconfig_extension_layer: on the gateway only (AppConfig Agent on localhost:2772).
            appconfig_application / appconfig_environment / appconfig_profile: the AppConfig *names*
                the extension resolves (it accepts names or ids).
            appconfig_configuration_arn: the data-plane ARN
                (``…:application/{id}/environment/{id}/configuration/{profile id}``) the gateway may
                start sessions on and read.
            default_routes: route → default-variant attributes; the gateway's last-resort routing
                when the extension has never answered.
            prompt_profiles_profile / prompt_profiles_configuration_arn: the tenant prompt
                profiles' freeform profile (same application and environment) and its data-plane
                ARN; the gateway is told the name, prefetches it and may read it (None: no profiles).
            bedrock_targets: the Bedrock models of the seed options; the invoke step may call those
                and nothing else.
            gateway_function_name: literal name of the gateway (the AppConfig monitor alarm uses it).
            log_prompts: LOG_PROMPTS of the gateway and the invoke step, the functions that could log
                a prompt (False: prompts never reach the logs).
            xray_sdk: X-Ray SDK subsegments on the request path (costs 0.2-0.3 s of cold start;
                active tracing records every invocation either way). It also sends the request
                path's DynamoDB and Step Functions calls through botocore, which the SDK traces.
            log_retention / log_removal_policy: every function's log group.
            gateway_timeout: default 15 minutes, Lambda's maximum: the gateway also serves
                ``stream: true`` chat completions, which API Gateway lets last 15 minutes (a stream
                is bounded first by its option's deadlines to first token and between chunks).
                Whole requests keep their own budget below API Gateway's 29 s
                (REQUEST_BUDGET_MS); for them this timeout is only a backstop.
            invoke_timeout: default 120 s: one provider call (the state machine's task timeout and
                the request deadline bound it further).
            authorizer_timeout: default 5 s: one key lookup.
            circuit_timeout: default 10 s: a few conditional writes to the circuit table.
        """
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        common = {
            **powertools_environment(),
            env.XRAY_SDK: env.flag(xray_sdk),
            # With the X-Ray SDK on, AWS calls go through botocore so that it traces each of them.
            env.LIGHT_AWS_CLIENT: "0" if xray_sdk else "1",
        }

        gateway_env = {
            **common,
            **env.gateway_environment(
                options_table=options_table.table_name,
                circuit_table=circuit_table.table_name,
                usage_table=usage_table.table_name,
                payload_bucket=payload_bucket.bucket_name,
                answer_cache_table=answer_cache_table.table_name,
                appconfig_application=appconfig_application,
                appconfig_environment=appconfig_environment,
                appconfig_profile=appconfig_profile,
                appconfig_agent_url=env.APPCONFIG_AGENT_URL_DEFAULT,
                default_routes=default_routes,
                log_prompts=log_prompts,
                appconfig_prompt_profiles=prompt_profiles_profile,
            ),
            # A whole request's after-answer DynamoDB writes run after its response is returned
            # (an internal extension: switchboard.after_response); operators may set `inline`.
            env.AFTER_RESPONSE: env.AFTER_RESPONSE_EXTENSION,
            env.EXTENSION_POLL_INTERVAL: str(constants.EXTENSION_POLL_INTERVAL_SECONDS),
            # Comma-separated configuration paths (AWS AppConfig user guide, "Configuring the AWS
            # AppConfig Agent Lambda extension"): every profile the gateway reads, fetched at init.
            env.EXTENSION_PREFETCH_LIST: ",".join(
                configuration_path(appconfig_application, appconfig_environment, profile)
                for profile in (appconfig_profile, prompt_profiles_profile)
                if profile
            ),
            # Streams: Lambda streams natively only from Node.js, so the gateway runs under AWS
            # Lambda Web Adapter (handlers/gateway_http.py says why that and not a runtime loop).
            **env.web_adapter_environment(
                port=env.GATEWAY_HTTP_PORT,
                readiness_path=env.GATEWAY_READINESS_PATH,
                pass_through_path=env.GATEWAY_EVENTS_PATH,
            ),
        }
        web_adapter = lambda_.LayerVersion.from_layer_version_arn(
            self, "WebAdapterLayer", layers.web_adapter_arm64_arn(stack.region)
        )
        self._gateway = SwitchboardFunction(
            self,
            "Gateway",
            # The adapter's /opt/bootstrap executes this start script in place of the runtime.
            handler=constants.HANDLER_GATEWAY_HTTP,
            description="Switchboard gateway: OpenAI-compatible chat completions (whole and streamed), "
            "embeddings and models",
            memory_size=512,
            timeout=gateway_timeout or Duration.seconds(constants.LAMBDA_MAX_TIMEOUT_S),
            environment=gateway_env,
            layers=[powertools_layer, appconfig_extension_layer, web_adapter],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            function_name=gateway_function_name,
        )
        self._authorizer = SwitchboardFunction(
            self,
            "Authorizer",
            handler=constants.HANDLER_AUTHORIZER,
            description="Switchboard authorizer: bearer key -> tenant, tier and usage-plan key",
            memory_size=256,
            timeout=authorizer_timeout or Duration.seconds(5),
            environment={**common, **env.authorizer_environment(keys_table=keys_table.table_name)},
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        self._invoke = SwitchboardFunction(
            self,
            "Invoke",
            handler=constants.HANDLER_INVOKE,
            description="Switchboard invoke step: one provider call for the request workflow",
            memory_size=512,
            timeout=invoke_timeout or Duration.seconds(120),
            environment={
                **common,
                **env.invoke_environment(
                    options_table=options_table.table_name,
                    circuit_table=circuit_table.table_name,
                    usage_table=usage_table.table_name,
                    payload_bucket=payload_bucket.bucket_name,
                    log_prompts=log_prompts,
                ),
            },
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        self._circuit = SwitchboardFunction(
            self,
            "Circuit",
            handler=constants.HANDLER_CIRCUIT,
            description="Switchboard circuit step: probe lease and outcome of a candidate's circuit",
            memory_size=256,
            timeout=circuit_timeout or Duration.seconds(10),
            environment={
                **common,
                **env.circuit_environment(
                    options_table=options_table.table_name, circuit_table=circuit_table.table_name
                ),
            },
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        self.gateway = self._gateway.function
        self.authorizer = self._authorizer.function
        self.invoke = self._invoke.function
        self.circuit = self._circuit.function
        checkov.acknowledge_no_dlq(
            self.gateway, invoked_by="API Gateway (the REST API's Lambda proxy integration)"
        )
        checkov.acknowledge_no_dlq(
            self.authorizer, invoked_by="API Gateway (the REST API's REQUEST authorizer)"
        )
        for step in (self.invoke, self.circuit):
            checkov.acknowledge_no_dlq(
                step,
                invoked_by="the Express request workflow's lambda:invoke tasks (RequestResponse), whose "
                "Retry and Catch rules handle every failure",
            )

        # --- gateway grants -------------------------------------------------------------------
        options_table.grant_read_data(self.gateway)  # the circuit table: read/write, see streams below
        usage_table.grant(self.gateway, *constants.GATEWAY_USAGE_TABLE_ACTIONS)
        payload_objects = payload_bucket.arn_for_objects("*")
        self.gateway.add_to_role_policy(
            iam.PolicyStatement(
                sid="ClaimCheckReadWrite",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[payload_objects],
            )
        )
        self.gateway.add_to_role_policy(
            iam.PolicyStatement(
                sid="RoutingFlags",
                actions=["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
                resources=[appconfig_configuration_arn],
            )
        )
        if prompt_profiles_configuration_arn:
            self.gateway.add_to_role_policy(
                iam.PolicyStatement(
                    sid="PromptProfiles",
                    actions=["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
                    resources=[prompt_profiles_configuration_arn],
                )
            )
        bucket_objects_nag = stack.resolve(payload_objects)
        Validations.of(self._gateway.role).acknowledge(
            Acknowledgment(
                id=iam5_resource(nag_render(bucket_objects_nag)),
                reason="Claim-check objects have per-request keys: the gateway writes and reads any "
                "object of the stack's own payload bucket (and no other bucket).",
            )
        )

        # --- authorizer grants ----------------------------------------------------------------
        # The keys table only: each row stores its usage-plan key value, so the authorizer reads
        # no API Gateway key (it may not: GetApiKey includeValue would expose every key's value).
        keys_table.grant_read_data(self.authorizer)

        # --- circuit step grants --------------------------------------------------------------
        options_table.grant_read_data(self.circuit)
        circuit_table.grant_read_write_data(self.circuit)

        # --- invoke grants --------------------------------------------------------------------
        options_table.grant_read_data(self.invoke)
        circuit_table.grant_read_write_data(self.invoke)
        usage_table.grant(self.invoke, *constants.USAGE_TABLE_ACTIONS)
        # Reads the request's claim check; writes an answer too large to travel in the workflow's
        # state (payloads.PayloadStore.wrap). Without PutObject a large answer fails as AccessDenied
        # and counts against a healthy option's circuit (issue 10 item 2).
        self.invoke.add_to_role_policy(
            iam.PolicyStatement(
                sid="ClaimCheckReadWrite",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[payload_objects],
            )
        )
        Validations.of(self._invoke.role).acknowledge(
            Acknowledgment(
                id=iam5_resource(nag_render(bucket_objects_nag)),
                reason="The invoke step reads claim-check objects (per-request keys) and writes large "
                "answers (per-request keys) in the stack's own payload bucket only.",
            )
        )
        self.bedrock_resources = bedrock_resource_arns(bedrock_targets)
        if self.bedrock_resources:
            self.invoke.add_to_role_policy(
                iam.PolicyStatement(
                    sid="BedrockSeedModels",
                    actions=["bedrock:InvokeModel"],
                    resources=[r.arn for r in self.bedrock_resources],
                )
            )
        for resource in self.bedrock_resources:
            if "*" in resource.nag_form:
                Validations.of(self._invoke.role).acknowledge(
                    Acknowledgment(
                        id=iam5_resource(resource.nag_form),
                        reason="A cross-region inference profile routes to the named foundation model "
                        "in any region of its geography; Bedrock authorizes the call on that model's "
                        "ARN in the serving region, which is chosen at run time. Only the model ids of "
                        "config/options.json are listed.",
                    )
                )
        region = stack.region
        sagemaker_endpoints = AccountScopedArn(
            f"arn:aws:sagemaker:{region}:{{account}}:endpoint/switchboard-*"
        )
        secrets = AccountScopedArn(f"arn:aws:secretsmanager:{region}:{{account}}:secret:switchboard/*")
        self.invoke.add_to_role_policy(
            iam.PolicyStatement(
                sid="SageMakerSwitchboardEndpoints",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[sagemaker_endpoints.arn],
            )
        )
        self.invoke.add_to_role_policy(
            iam.PolicyStatement(
                sid="ThirdPartyProviderKeys",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secrets.arn],
            )
        )
        Validations.of(self._invoke.role).acknowledge(
            Acknowledgment(
                id=iam5_resource(sagemaker_endpoints.nag_form),
                reason="Endpoints are created by the model-deployment workflow at run time; by "
                "convention their names start with 'switchboard-', and only those may be invoked.",
            ),
            Acknowledgment(
                id=iam5_resource(secrets.nag_form),
                reason="Keys of OpenAI-compatible providers are added by operators at run time under "
                "the 'switchboard/' prefix; only that prefix may be read.",
            ),
        )

        # --- gateway grants for streamed requests -------------------------------------------
        # A `stream: true` chat completion does not pass through the workflow (Express workflows
        # cannot stream): the gateway calls the providers' streaming APIs itself and records each
        # candidate's outcome through the circuit service (conditional writes, as the invoke step
        # does). ConverseStream is authorized as bedrock:InvokeModelWithResponseStream and
        # InvokeEndpointWithResponseStream as sagemaker:InvokeEndpointWithResponseStream (Service
        # Authorization Reference); the resources are the invoke step's.
        circuit_table.grant_read_write_data(self.gateway)
        answer_cache_table.grant_read_data(self.gateway)  # the `cache` degrade step, tenant-checked
        # A streamed answer is cached as the workflow's RememberAnswer caches it: one PutItem (its
        # claim check, when large, goes to the payload bucket under ClaimCheckReadWrite).
        answer_cache_table.grant(self.gateway, "dynamodb:PutItem")
        if self.bedrock_resources:
            self.gateway.add_to_role_policy(
                iam.PolicyStatement(
                    sid="BedrockSeedModelsStreaming",
                    actions=["bedrock:InvokeModelWithResponseStream"],
                    resources=[r.arn for r in self.bedrock_resources],
                )
            )
        self.gateway.add_to_role_policy(
            iam.PolicyStatement(
                sid="SageMakerSwitchboardEndpointsStreaming",
                actions=["sagemaker:InvokeEndpointWithResponseStream"],
                resources=[sagemaker_endpoints.arn],
            )
        )
        self.gateway.add_to_role_policy(
            iam.PolicyStatement(
                sid="ThirdPartyProviderKeys",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secrets.arn],
            )
        )
        streaming_acknowledgments = [
            Acknowledgment(
                id=iam5_resource(resource.nag_form),
                reason="Streamed requests call the seed Bedrock models from the gateway: a cross-region "
                "inference profile is authorized on the foundation model in whichever region of its "
                "geography serves the call. Only the model ids of config/options.json are listed.",
            )
            for resource in self.bedrock_resources
            if "*" in resource.nag_form
        ]
        Validations.of(self._gateway.role).acknowledge(
            *streaming_acknowledgments,
            Acknowledgment(
                id=iam5_resource(sagemaker_endpoints.nag_form),
                reason="Streamed requests call SageMaker endpoints from the gateway; endpoints are created "
                "at run time by the model-deployment workflow, named 'switchboard-*', and only those may "
                "be invoked.",
            ),
            Acknowledgment(
                id=iam5_resource(secrets.nag_form),
                reason="Streamed requests call OpenAI-compatible providers from the gateway with keys "
                "operators add at run time under the 'switchboard/' prefix; only that prefix may be read.",
            ),
        )

    def bind_tenant_adapters(self, adapters: TenantAdapterTable) -> None:
        """Give the gateway (streamed requests) and the invoke step the tenant adapters table (issue
        16): its name in ADAPTERS_TABLE and GetItem on it, the one read the request path makes."""
        for function in (self.gateway, self.invoke):
            function.add_environment(env.ADAPTERS_TABLE, adapters.table.table_name)
            adapters.grant_get_item(function)

    def bind_workflow(self, state_machine: sfn.IStateMachine) -> None:
        """Give the gateway the request workflow: its ARN in STATE_MACHINE_ARN and StartSyncExecution."""
        self.gateway.add_environment(env.STATE_MACHINE_ARN, state_machine.state_machine_arn)
        self.gateway.add_to_role_policy(
            iam.PolicyStatement(
                sid="RunRequestWorkflow",
                actions=["states:StartSyncExecution"],
                resources=[state_machine.state_machine_arn],
            )
        )


def bedrock_resource_arns(targets: Sequence[BedrockTarget]) -> list[AccountScopedArn]:
    """Inference-profile and foundation-model ARNs for ``bedrock:InvokeModel``, sorted, no duplicates.

    A profile id (``us.anthropic…``) needs the profile ARN in the option's region and the foundation
    model in every region the profile may route to (``arn:aws:bedrock:*::foundation-model/…``); a
    plain model id needs only the foundation model in the option's region.
    """
    templates: set[str] = set()
    for target in targets:
        if target.inference_profile_id:
            templates.add(
                f"arn:aws:bedrock:{target.region}:{{account}}:inference-profile/{target.inference_profile_id}"
            )
            templates.add(f"arn:aws:bedrock:*::foundation-model/{target.foundation_model_id}")
        else:
            templates.add(f"arn:aws:bedrock:{target.region}::foundation-model/{target.foundation_model_id}")
    return [AccountScopedArn(t) for t in sorted(templates)]


def nag_render(resolved: Any) -> str:
    """Render a resolved CloudFormation value the way cdk-nag prints it inside a finding id."""
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and len(resolved) == 1:
        ((fn, arg),) = resolved.items()
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Join":
            separator, parts = arg
            return str(separator).join(nag_render(p) for p in parts)
    raise ValueError(f"cannot render {resolved!r} as a cdk-nag id")
