"""The Switchboard stack: composes the constructs, wires them together, exports what the CLI reads."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Aspects, CfnOutput, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import checkov, constants, layers
from infra.config import (
    ConfigError,
    SwitchboardConfig,
    bedrock_targets,
    default_routes,
    load_json,
    route_names,
)
from infra.constructs.api import GatewayApi
from infra.constructs.functions import GatewayFunctions
from infra.constructs.log_encryption import EncryptLogGroups, LogsKey
from infra.constructs.model_deployment import ModelDeployment
from infra.constructs.monitoring import Monitoring
from infra.constructs.prompt_profiles import PromptProfiles
from infra.constructs.regional_models import RegistryReplication, default_alarm_prefix, extra_regions
from infra.constructs.request_workflow import RequestWorkflow
from infra.constructs.routing_flags import RoutingFlags
from infra.constructs.seed_options import SeedOptions
from infra.constructs.slo_alarms import SloAlarms
from infra.constructs.tables import DataTables

_RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    """CloudWatch Logs accepts only certain retention periods."""
    try:
        return _RETENTION_BY_DAYS[days]
    except KeyError:
        allowed = ", ".join(str(d) for d in sorted(_RETENTION_BY_DAYS))
        raise ConfigError(f"log_retention_days must be one of {allowed}; got {days}") from None


class SwitchboardStack(Stack):
    """Everything Switchboard needs in one region.

    The account is left to CloudFormation (``AWS::AccountId``) so the template is the same whoever
    synthesizes it; the region is fixed at synth time because the layer ARNs are per region.

    Attributes: data, routing_flags, prompt_profiles, functions, workflow, seed, api, monitoring (the
    constructs).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: SwitchboardConfig, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=settings.stack_name,
            env=Environment(region=settings.region),
            description="Switchboard: serverless OpenAI-compatible LLM gateway with runtime routing",
            **kwargs,
        )
        log_retention = retention(settings.log_retention_days)
        log_removal = RemovalPolicy.RETAIN if settings.deletion_protection else RemovalPolicy.DESTROY
        flags_text = constants.FLAGS_FILE.read_text()
        flags_document = load_json(constants.FLAGS_FILE)
        options_document = load_json(constants.OPTIONS_FILE)
        if not isinstance(options_document, list):
            raise ConfigError(f"{constants.OPTIONS_FILE}: expected a list of options")

        # The Powertools release requirements.txt pins (the one the tests ran), resolved by
        # CloudFormation from Powertools' public SSM parameter for our runtime and architecture.
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self, "PowertoolsLayer", layers.powertools_layer_arn()
        )
        appconfig_extension = lambda_.LayerVersion.from_layer_version_arn(
            self, "AppConfigExtensionLayer", layers.appconfig_extension_arm64_arn(settings.region)
        )

        # Every log group gets the stack's logs key; every Lambda the checkov reasons that hold for all.
        self.logs_key = LogsKey(self, "LogsKey", removal_policy=log_removal).key
        Aspects.of(self).add(EncryptLogGroups(self.logs_key))
        Aspects.of(self).add(checkov.LambdaAcknowledgments())

        self.data = DataTables(self, "Data", deletion_protection=settings.deletion_protection)

        self.seed = SeedOptions(
            self,
            "SeedOptions",
            options_table=self.data.options_table,
            options_document=json.dumps(options_document, separators=(",", ":"), sort_keys=True),
            powertools_layer=powertools,
            log_retention=log_retention,
            log_removal_policy=log_removal,
        )

        rollout = settings.flags_rollout
        self.routing_flags = RoutingFlags(
            self,
            "RoutingFlags",
            flags_document=flags_text,
            options_table=self.data.options_table,
            powertools_layer=powertools,
            gateway_function_name=settings.gateway_function_name,
            application_name=settings.appconfig_application,
            environment_name=settings.appconfig_environment,
            profile_name=settings.appconfig_profile,
            growth_factor=rollout.growth_factor,
            deployment_duration=Duration.minutes(rollout.deployment_minutes),
            final_bake_time=Duration.minutes(rollout.final_bake_minutes),
            gateway_errors_threshold=settings.gateway_errors_alarm_threshold,
            log_retention=log_retention,
            log_removal_policy=log_removal,
        )
        # The validator checks every chain against the options table: seed it first.
        self.routing_flags.profile.node.add_dependency(self.seed.resource)
        # Tenant prompt profiles: rolled out and rolled back with the flags (same environment).
        self.prompt_profiles = PromptProfiles(
            self,
            "PromptProfiles",
            profiles_document=constants.PROFILES_FILE.read_text(),
            application=self.routing_flags.application,
            environment=self.routing_flags.environment,
            deployment_strategy=self.routing_flags.deployment_strategy,
            powertools_layer=powertools,
            log_retention=log_retention,
            log_removal_policy=log_removal,
        )

        self.functions = GatewayFunctions(
            self,
            "Functions",
            options_table=self.data.options_table,
            keys_table=self.data.keys_table,
            circuit_table=self.data.circuit_table,
            answer_cache_table=self.data.cache_table,
            usage_table=self.data.usage_table,
            payload_bucket=self.data.payload_bucket,
            powertools_layer=powertools,
            appconfig_extension_layer=appconfig_extension,
            appconfig_application=self.routing_flags.application_name,
            appconfig_environment=self.routing_flags.environment_name,
            appconfig_profile=self.routing_flags.profile_name,
            appconfig_configuration_arn=self.routing_flags.configuration_arn,
            prompt_profiles_profile=self.prompt_profiles.profile_name,
            prompt_profiles_configuration_arn=self.prompt_profiles.configuration_arn,
            default_routes=default_routes(flags_document),
            bedrock_targets=bedrock_targets(options_document, default_region=settings.region),
            gateway_function_name=settings.gateway_function_name,
            log_prompts=settings.log_prompts,
            xray_sdk=settings.xray_sdk,
            log_retention=log_retention,
            log_removal_policy=log_removal,
        )

        self.workflow = RequestWorkflow(
            self,
            "RequestWorkflow",
            invoke_function=self.functions.invoke,
            circuit_function=self.functions.circuit,
            circuit_table=self.data.circuit_table,
            cache_table=self.data.cache_table,
            include_execution_data=settings.include_execution_data,
            log_retention=log_retention,
            log_removal_policy=log_removal,
        )
        self.functions.bind_workflow(self.workflow.state_machine)

        self.api = GatewayApi(
            self,
            "Api",
            gateway_function=self.functions.gateway,
            authorizer_function=self.functions.authorizer,
            throttling=settings.throttling,
            stage_name=settings.api_stage_name,
            api_name=settings.stack_name.lower(),
            authorizer_cache_ttl=Duration.seconds(settings.authorizer_cache_ttl_s),
            waf_enabled=settings.waf_enabled,
            log_retention=log_retention,
            log_removal_policy=log_removal,
        )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            state_machine=self.workflow.state_machine,
            gateway_function=self.functions.gateway,
            functions={
                "gateway": self.functions.gateway,
                "authorizer": self.functions.authorizer,
                "invoke": self.functions.invoke,
                "circuit": self.functions.circuit,
                "flags validator": self.routing_flags.validator,
                "profiles validator": self.prompt_profiles.validator,
            },
            dashboard_name=f"Switchboard-{settings.stack_name}",
            gateway_errors_threshold=settings.gateway_errors_alarm_threshold,
            removal_policy=log_removal,
        )

        self.slo = SloAlarms(
            self,
            "Slo",
            routes=settings.slos.for_routes(route_names(flags_document)),
            window_days=settings.slos.window_days,
            alarm_topic=self.monitoring.alarm_topic,
            alarm_name_prefix=f"{settings.stack_name}-slo-",
        )
        for row in self.slo.widgets():  # one call per row: widgets of one call go left to right
            self.monitoring.dashboard.add_widgets(*row)

        if settings.model_families:
            self.model_deployment = ModelDeployment(
                self,
                "ModelDeployment",
                families=settings.model_families,
                options_table=self.data.options_table,
                powertools_layer=powertools,
                invoke_log_group=self.functions.invoke.log_group,
                alarm_name_prefix=default_alarm_prefix(settings.stack_name),
                home_region=settings.region,
                deletion_protection=settings.deletion_protection,
                log_retention=log_retention,
                log_removal_policy=log_removal,
            )
            self.functions.bind_tenant_adapters(self.model_deployment.tenant_adapters)
            if settings.replicate_images is not None:
                # opt-in: replaces the home registry's replication configuration (see the construct)
                RegistryReplication(
                    self,
                    "ImageReplication",
                    repository_prefixes=settings.replicate_images.repository_prefixes,
                    destination_regions=extra_regions(settings.model_families, settings.region),
                )
            for key, value, description in self.model_deployment.outputs():
                CfnOutput(self, key, value=value, description=description)

        self._outputs()

    def _outputs(self) -> None:
        api_url = self.api.rest_api.url
        outputs: dict[str, tuple[str, str]] = {
            constants.OUTPUT_OPTIONS_TABLE: (self.data.options_table.table_name, "LLM options table"),
            constants.OUTPUT_KEYS_TABLE: (self.data.keys_table.table_name, "API keys table (hashed keys)"),
            constants.OUTPUT_USAGE_PLAN_STANDARD: (
                self.api.usage_plans["standard"].usage_plan_id,
                "Usage plan of standard-tier keys",
            ),
            constants.OUTPUT_USAGE_PLAN_PREMIUM: (
                self.api.usage_plans["premium"].usage_plan_id,
                "Usage plan of premium-tier keys",
            ),
            constants.OUTPUT_API_URL: (api_url, "Stage URL of the REST API"),
            constants.OUTPUT_OPENAI_BASE_URL: (f"{api_url}v1", "base_url for OpenAI SDKs"),
            constants.OUTPUT_STATE_MACHINE_ARN: (
                self.workflow.state_machine.state_machine_arn,
                "Express request workflow (circuit breaker)",
            ),
            constants.OUTPUT_PAYLOAD_BUCKET: (self.data.payload_bucket.bucket_name, "Claim-check bucket"),
            constants.OUTPUT_APPCONFIG_APPLICATION: (
                self.routing_flags.application_name,
                "AppConfig application",
            ),
            constants.OUTPUT_APPCONFIG_ENVIRONMENT: (
                self.routing_flags.environment_name,
                "AppConfig environment",
            ),
            constants.OUTPUT_APPCONFIG_PROFILE: (self.routing_flags.profile_name, "AppConfig flags profile"),
            constants.OUTPUT_APPCONFIG_APPLICATION_ID: (
                self.routing_flags.application.application_id,
                "AppConfig application id",
            ),
            constants.OUTPUT_APPCONFIG_ENVIRONMENT_ID: (
                self.routing_flags.environment.environment_id,
                "AppConfig environment id",
            ),
            constants.OUTPUT_APPCONFIG_PROFILE_ID: (
                self.routing_flags.profile.configuration_profile_id,
                "AppConfig configuration profile id",
            ),
            constants.OUTPUT_CIRCUIT_TABLE: (
                self.data.circuit_table.table_name,
                "Circuit table (circuit states and transition events)",
            ),
            constants.OUTPUT_CACHE_TABLE: (self.data.cache_table.table_name, "Answer cache table"),
            constants.OUTPUT_USAGE_TABLE: (
                self.data.usage_table.table_name,
                "Usage table (metered tokens and cost per tenant)",
            ),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
