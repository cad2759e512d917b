"""Retirement: versions older than each family's retention count go, daily, never the live one.

Their components, endpoint configs and models are deleted, the packages archived, and the options
pinned to them marked retired (``switchboard.lifecycle.service.LifecycleService.retire``). A family
listing other regions (issue 16) loses them there too: the Lambda may read the family's endpoint and
delete the names the rollout made (``<family prefix>-v…``) in exactly those regions, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import checkov, constants
from infra.constructs.lifecycle_functions import lifecycle_function
from infra.constructs.logical_ids import keep_logical_ids
from infra.constructs.regional_models import extra_regions, families_in
from infra.constructs.sagemaker_arns import FamilyArns, sagemaker_arn
from infra.constructs.tenant_adapters import TenantAdapterTable
from switchboard.lifecycle.logic import family_name_prefix
from switchboard.lifecycle.model import ModelFamily


class ModelRetirement(Construct):
    """The retirement Lambda and its schedule.

    Attributes:
        retirement_function: the Lambda.
        schedule: the EventBridge rule that runs it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        families: Sequence[ModelFamily],
        options_table: dynamodb.ITable,
        adapters: TenantAdapterTable,
        powertools_layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
        schedule: events.Schedule | None = None,
        home_region: str | None = None,
    ) -> None:
        """
        Args:
            families: the model families (each with its retention count).
            options_table: the gateway's LLM options (pinned options are marked retired).
            adapters: the tenant adapters table (what serves a tenant is never retired; read only).
            powertools_layer: on the Lambda.
            schedule: default daily.
            home_region: the stack's region; the families' other ``regions`` get the grants of
                :func:`grant_regional_retirement` (None: the stack's own region only).
        """
        super().__init__(scope, construct_id)
        arns = FamilyArns(tuple(families))
        retire = lifecycle_function(
            self,
            "RetirementFunction",
            handler=constants.HANDLER_MODEL_RETIREMENT,
            description="Retire model versions older than the retention count (never the live one)",
            timeout=Duration.minutes(5),
            families=families,
            options_table=options_table,
            adapters=adapters,
            powertools_layer=powertools_layer,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        retire.role.add_to_policy(
            iam.PolicyStatement(
                sid="DeleteRetiredVersionsAndArchive",
                actions=[
                    "sagemaker:DeleteInferenceComponent",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:DeleteModel",
                    "sagemaker:UpdateModelPackage",
                ],
                # the components the workflow made, never an adapter family's base component
                resources=[
                    *arns.made_component_arns,
                    *arns.config_arns,
                    *arns.model_arns,
                    *arns.version_arns,
                ],
            )
        )
        if home_region:
            grant_regional_retirement(retire.role, families, home_region)
        self.retirement_function = retire.function
        checkov.skip_check(
            retire.function,
            checkov.LAMBDA_DLQ,
            "Invoked asynchronously by the daily EventBridge schedule with a constant empty event, and the "
            "retirement sweep is idempotent: a failed run is retried by Lambda, then repeated in full by "
            "the next day's run, and shows in the function's Errors metric and logs. A dead-lettered "
            "copy of the empty event would hold nothing to replay.",
        )
        self.schedule = events.Rule(
            self,
            "RetirementSchedule",
            description="Retire Switchboard model versions older than each family's retention count",
            schedule=schedule or events.Schedule.rate(Duration.days(1)),
            targets=[targets.LambdaFunction(retire.function, event=events.RuleTargetInput.from_object({}))],
        )
        keep_logical_ids(self)


REGIONAL_RETIREMENT_READS = ("sagemaker:DescribeEndpoint",)
"""What retirement reads in a family's other region: which config the endpoint serves (kept)."""
REGIONAL_RETIREMENT_DELETES = ("sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel")
"""What it deletes there (the rollout's names only). ``DeleteInferenceComponent`` is granted only
for adapter families, and never on their base component; no ``UpdateModelPackage``: the registry
(and so the archive step) is in the stack's region."""


def grant_regional_retirement(role: iam.IRole, families: Sequence[ModelFamily], home_region: str) -> None:
    """Per other region: read the families' endpoints there, delete what the rollout made there.

    Scoped like the deployment's regional grant (``regional_models.CrossRegionAccess``): literal
    region, the families listing that region, the family name prefix. The List calls retirement
    makes (``ListModels``, ``ListEndpointConfigs``, ``ListInferenceComponents``) have no
    resource-level permissions and are already granted on ``*`` by ``lifecycle_function``.
    """
    for region in extra_regions(families, home_region):
        in_region = tuple(families_in(families, region, home_region))
        tag = re.sub(r"[^A-Za-z0-9]", "", region.title())
        arns = FamilyArns(in_region, region=region)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=f"ReadEndpointsToRetireIn{tag}",
                actions=list(REGIONAL_RETIREMENT_READS),
                resources=arns.endpoint_arns,
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=f"DeleteRetiredVersionsIn{tag}",
                actions=list(REGIONAL_RETIREMENT_DELETES),
                resources=[*arns.config_arns, *arns.model_arns],
            )
        )
        adapter_components = [  # the adapters the workflow made, never the base components
            sagemaker_arn("inference-component", f"{family_name_prefix(f.group)}*", region)
            for f in in_region
            if f.base_component
        ]
        if adapter_components:
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"DeleteRetiredAdaptersIn{tag}",
                    actions=["sagemaker:DeleteInferenceComponent"],
                    resources=adapter_components,
                )
            )
        Validations.of(role).acknowledge(*arns.wildcard_acknowledgments(versions=False))
