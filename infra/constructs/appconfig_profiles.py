"""What every Switchboard AppConfig profile shares: a hosted JSON version checked by a Lambda
validator, deployed with the routing flags' strategy to their monitored environment.

The routing flags (:mod:`infra.constructs.routing_flags`) and the tenant prompt profiles
(:mod:`infra.constructs.prompt_profiles`) are both built with :func:`lambda_validated_profile`, so
the validator wiring, its confused-deputy pin and the data-plane ARN the gateway is granted are
written once. Both deploy to the same environment, so the same alarm rolls either back, and CDK
chains their deployments (an environment takes one deployment at a time; aws-cdk-lib's
environment deployment queue makes each ``AWS::AppConfig::Deployment`` depend on the previous).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_appconfig as appconfig
from aws_cdk import aws_lambda as lambda_
from constructs import Construct


def lambda_validated_profile(
    scope: Construct,
    construct_id: str,
    *,
    application: appconfig.IApplication,
    environment: appconfig.IEnvironment,
    deployment_strategy: appconfig.IDeploymentStrategy,
    name: str,
    description: str,
    configuration_type: appconfig.ConfigurationType,
    document: str,
    validator: lambda_.Function,
) -> appconfig.HostedConfiguration:
    """The profile, its hosted version (``document`` verbatim, ``application/json``) and its
    deployment to ``environment``; ``validator`` checks every version before it is deployed."""
    profile = appconfig.HostedConfiguration(
        scope,
        construct_id,
        application=application,
        name=name,
        description=description,
        type=configuration_type,
        content=appconfig.ConfigurationContent.from_inline_json(document),
        validators=[appconfig.LambdaValidator.from_function(validator)],
        deployment_strategy=deployment_strategy,
        deploy_to=[environment],
    )
    # LambdaValidator lets appconfig.amazonaws.com invoke the validator from any account: pin
    # the permission to this account (confused-deputy protection).
    permission = validator.node.try_find_child("AppConfigPermission")
    if isinstance(permission, lambda_.CfnPermission):
        permission.source_account = Aws.ACCOUNT_ID
    return profile


def configuration_arn(environment: appconfig.IEnvironment, profile: appconfig.HostedConfiguration) -> str:
    """The data-plane ARN (``…/environment/{id}/configuration/{profile id}``) that
    ``appconfig:StartConfigurationSession`` and ``GetLatestConfiguration`` authorize on."""
    return f"{environment.environment_arn}/configuration/{profile.configuration_profile_id}"
