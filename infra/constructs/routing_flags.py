"""AppConfig: the multi-variant routing flags, their validator and a monitored rollout."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import checkov, constants
from infra.constructs.appconfig_profiles import configuration_arn, lambda_validated_profile
from infra.constructs.functions import SwitchboardFunction, powertools_environment
from switchboard.contract import env


class RoutingFlags(Construct):
    """The routing flags as an ``AWS.AppConfig.FeatureFlags`` profile, deployed to one environment.

    - The hosted version's content is ``flags_document`` verbatim (``config/flags.json``), so the
      AWS deployment and the local agent emulator serve the same document.
    - A Lambda validator (``handlers.flags_validator.handler``) refuses a document whose chains name
      unknown or retired options before any rollout (feature-flag profiles take Lambda validators
      only; AppConfig checks the flag schema itself).
    - The environment is monitored by an alarm on the gateway's Lambda errors: an alarm during the
      rollout or the bake time rolls the deployment back. The alarm's metric names the gateway by
      its literal function name: a reference to the function would make a cycle (the function's
      policy refers to this environment).

    Attributes:
        application, environment, profile: the AppConfig resources (profile = the hosted configuration).
        validator: the validator function.
        gateway_errors_alarm: the monitor's alarm.
        application_name, environment_name, profile_name: the names the extension resolves.
        configuration_arn: the data-plane ARN (``…/environment/{id}/configuration/{profile id}``)
            for ``appconfig:StartConfigurationSession`` and ``GetLatestConfiguration``.
        profile_arn: the configuration profile's ARN.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        flags_document: str,
        options_table: dynamodb.ITable,
        powertools_layer: lambda_.ILayerVersion,
        gateway_function_name: str,
        application_name: str,
        environment_name: str,
        profile_name: str,
        growth_factor: float = 25,
        deployment_duration: Duration | None = None,
        final_bake_time: Duration | None = None,
        gateway_errors_threshold: int = 5,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            flags_document: the AppConfig feature-flags JSON, as text.
            options_table: the validator checks chains against it.
            powertools_layer: for the validator.
            gateway_function_name: literal name of the gateway function (alarm dimension).
            application_name / environment_name / profile_name: AppConfig names.
            growth_factor / deployment_duration / final_bake_time: the custom LINEAR strategy
                (default 25 % steps over 4 minutes, then 2 minutes of bake time).
            gateway_errors_threshold: gateway Lambda errors per minute that roll a deployment back.
            log_retention / log_removal_policy: the validator's settings.
        """
        super().__init__(scope, construct_id)
        self.application_name = application_name
        self.environment_name = environment_name
        self.profile_name = profile_name

        validator = SwitchboardFunction(
            self,
            "Validator",
            handler=constants.HANDLER_FLAGS_VALIDATOR,
            description="Switchboard flags validator: refuses routing flags that name unknown options",
            memory_size=256,
            timeout=Duration.seconds(15),
            environment={
                **powertools_environment(),
                **env.flags_validator_environment(options_table=options_table.table_name),
            },
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        options_table.grant_read_data(validator.function)
        self.validator = validator.function
        checkov.acknowledge_no_dlq(
            self.validator,
            invoked_by="AppConfig when a flags version is validated or deployed (a failure refuses the "
            "version)",
        )

        self.gateway_errors_alarm = cloudwatch.Alarm(
            self,
            "GatewayErrors",
            alarm_description="Gateway Lambda errors: rolls back an AppConfig routing-flags deployment",
            metric=cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={"FunctionName": gateway_function_name},
                statistic=cloudwatch.Stats.SUM,
                period=Duration.minutes(1),
            ),
            threshold=gateway_errors_threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        monitor_role = iam.Role(
            self,
            "MonitorRole",
            assumed_by=iam.ServicePrincipal("appconfig.amazonaws.com"),
            description="AppConfig reads the rollback alarm of the routing-flags environment",
        )
        monitor_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"], resources=[self.gateway_errors_alarm.alarm_arn]
            )
        )

        self.application = appconfig.Application(
            self,
            "Application",
            application_name=application_name,
            description="Switchboard: runtime routing of LLM requests",
        )
        self.environment = appconfig.Environment(
            self,
            "Environment",
            application=self.application,
            environment_name=environment_name,
            description="Routing flags the gateway reads through the AppConfig Lambda extension",
            monitors=[appconfig.Monitor.from_cloud_watch_alarm(self.gateway_errors_alarm, monitor_role)],
        )
        self.deployment_strategy = appconfig.DeploymentStrategy(
            self,
            "Rollout",
            description="Linear rollout of routing flags with a bake time watched by the gateway alarm",
            rollout_strategy=appconfig.RolloutStrategy.linear(
                growth_factor=growth_factor,
                deployment_duration=deployment_duration or Duration.minutes(4),
                final_bake_time=final_bake_time or Duration.minutes(2),
            ),
        )
        self.profile = lambda_validated_profile(
            self,
            "Profile",
            application=self.application,
            environment=self.environment,
            deployment_strategy=self.deployment_strategy,
            name=profile_name,
            description="Multi-variant routing flags: route -> chain of LLM options and degrade policy",
            configuration_type=appconfig.ConfigurationType.FEATURE_FLAGS,
            document=flags_document,
            validator=self.validator,
        )
        self.profile_arn = self.profile.configuration_profile_arn
        self.configuration_arn = configuration_arn(self.environment, self.profile)
