"""Retirement: versions older than each family's retention count go, daily, never the live one.

Their components, endpoint configs and models are deleted, the packages archived, and the options
pinned to them marked retired (``switchboard.lifecycle.service.LifecycleService.retire``).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
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
from infra.constructs.sagemaker_arns import FamilyArns
from infra.constructs.tenant_adapters import TenantAdapterTable
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
    ) -> None:
        """
        Args:
            families: the model families (each with its retention count).
            options_table: the gateway's LLM options (pinned options are marked retired).
            adapters: the tenant adapters table (what serves a tenant is never retired; read only).
            powertools_layer: on the Lambda.
            schedule: default daily.
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
                resources=[*arns.component_arns, *arns.config_arns, *arns.model_arns, *arns.version_arns],
            )
        )
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
