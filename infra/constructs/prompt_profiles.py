"""AppConfig: the tenant prompt profiles, a freeform profile beside the routing flags."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import checkov, constants
from infra.constructs.appconfig_profiles import configuration_arn, lambda_validated_profile
from infra.constructs.functions import SwitchboardFunction, powertools_environment


class PromptProfiles(Construct):
    """The prompt profiles (``config/profiles.json``) as a *freeform* JSON profile.

    - Same application, environment and deployment strategy as the routing flags: a version rolls
      out linearly with a bake time, and the environment's alarm (gateway errors) rolls it back,
      as it does a flags deployment. CDK chains the two deployments (one at a time per
      environment).
    - A Lambda validator (``handlers.profiles_validator.handler``) runs the checks the gateway's
      reader runs (:mod:`switchboard.profiles`): unknown keys, tenant ids, prefix length and text,
      parameter names and ranges, route names. It needs no permission beyond its own logs: the
      document comes in the validation event.

    Attributes:
        profile: the hosted configuration (profile, version, deployment).
        validator: the validator function.
        profile_name: the name the extension resolves.
        configuration_arn: the data-plane ARN the gateway may start sessions on and read.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profiles_document: str,
        application: appconfig.IApplication,
        environment: appconfig.IEnvironment,
        deployment_strategy: appconfig.IDeploymentStrategy,
        powertools_layer: lambda_.ILayerVersion,
        profile_name: str = constants.PROMPT_PROFILES_NAME,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            profiles_document: the prompt-profiles JSON, as text.
            application / environment / deployment_strategy: the routing flags' (their monitored
                environment and rollout).
            powertools_layer: for the validator.
            profile_name: the AppConfig profile name.
            log_retention / log_removal_policy: the validator's log group.
        """
        super().__init__(scope, construct_id)
        self.profile_name = profile_name
        validator = SwitchboardFunction(
            self,
            "Validator",
            handler=constants.HANDLER_PROFILES_VALIDATOR,
            description="Switchboard prompt-profiles validator: refuses bad tenant prompt profiles",
            memory_size=256,
            timeout=Duration.seconds(15),
            environment=powertools_environment(),
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        self.validator = validator.function
        checkov.acknowledge_no_dlq(
            self.validator,
            invoked_by="AppConfig when a prompt-profiles version is validated or deployed (a failure "
            "refuses the version)",
        )
        self.profile = lambda_validated_profile(
            self,
            "Profile",
            application=application,
            environment=environment,
            deployment_strategy=deployment_strategy,
            name=profile_name,
            description="Tenant prompt profiles: system prompt prefix, default parameters, allowed routes",
            configuration_type=appconfig.ConfigurationType.FREEFORM,
            document=profiles_document,
            validator=self.validator,
        )
        self.configuration_arn = configuration_arn(environment, self.profile)
