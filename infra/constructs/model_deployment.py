"""Model lifecycle: Model Registry groups → Standard deployment workflow → gateway option → retirement.

Composes one construct per concern: :class:`ModelRegistry` (groups, artifacts bucket, registry and
execution roles), :class:`TenantAdapterTable` (which adapter serves each tenant),
:class:`RollbackAlarms` (per-family alarms and the gateway-side error metric),
:class:`DeploymentWorkflow` (state machine, tasks Lambda, deployments table, failure topic,
approval rule) and :class:`ModelRetirement` (daily retirement). The stack passes the families
(parsed once, by ``infra/config.py``), the options table and the invoke step's log group.

The concerns were one construct until they were split; :func:`keep_logical_ids` keeps every
resource's logical id as it was, so the split replaces nothing in a deployed stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants
from infra.constructs.deployment_workflow import DeploymentSettings, DeploymentWorkflow
from infra.constructs.model_registry import ModelRegistry
from infra.constructs.model_retirement import ModelRetirement
from infra.constructs.regional_models import (
    CrossRegionAccess,
    default_alarm_prefix,
    extra_regions,
    regional_artifacts_bucket_name,
)
from infra.constructs.rollback_alarms import RollbackAlarms, RollbackThresholds
from infra.constructs.tenant_adapters import TenantAdapterTable
from switchboard.lifecycle.model import ModelFamily

# CloudFormation outputs (the CLI's `switchboard models` reads them; cli/models.py holds the same names)
OUTPUT_STATE_MACHINE = "ModelDeploymentStateMachineArn"
OUTPUT_DEPLOYMENTS_TABLE = "ModelDeploymentsTableName"
OUTPUT_DEPLOYMENT_FUNCTION = "ModelDeploymentFunctionName"
OUTPUT_REGISTRY_ROLE = "ModelRegistryRoleArn"
OUTPUT_ARTIFACTS_BUCKET = "ModelArtifactsBucketName"
OUTPUT_TOPIC = "ModelDeploymentTopicArn"
OUTPUT_ADAPTERS_TABLE = "ModelAdaptersTableName"
OUTPUT_RETIREMENT_FUNCTION = "ModelRetirementFunctionName"


class ModelDeployment(Construct):
    """The model lifecycle (see the module docstring).

    Attributes:
        registry: :class:`ModelRegistry`.
        tenant_adapters: :class:`TenantAdapterTable` (issue 16).
        rollback_alarms: :class:`RollbackAlarms`.
        workflow: :class:`DeploymentWorkflow`.
        retirement: :class:`ModelRetirement`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        families: Sequence[ModelFamily],
        options_table: dynamodb.ITable,
        powertools_layer: lambda_.ILayerVersion,
        invoke_log_group: logs.ILogGroup | None = None,
        settings: DeploymentSettings | None = None,
        thresholds: RollbackThresholds | None = None,
        alarm_name_prefix: str | None = None,
        deletion_protection: bool = True,
        include_execution_data: bool = True,
        retirement_schedule: events.Schedule | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        registry_principal_arns: Sequence[str] = (),
        home_region: str | None = None,
    ) -> None:
        """
        Args:
            families: the model families (``cdk.json`` ``model_families``, parsed by ``infra/config.py``).
            options_table: the gateway's LLM options (the workflow switches them).
            powertools_layer: on both Lambdas.
            invoke_log_group: the invoke step's log group (the gateway-side error metric).
            settings: blue/green and polling defaults.
            thresholds: when a deployment rolls back.
            alarm_name_prefix: default ``<stack name>-model-``.
            deletion_protection: the deployments table and artifacts bucket are kept.
            include_execution_data: log states' input/output (no prompts here: package ARNs, names).
            retirement_schedule: default daily.
            registry_principal_arns: who may assume the registry role (:class:`ModelRegistry`).
            home_region: the stack's region (default the stack's); a family listing other
                ``regions`` gets :class:`CrossRegionAccess` to them (issue 16).
        """
        super().__init__(scope, construct_id)
        if not families:
            raise ValueError("ModelDeployment needs at least one model family")
        prefix = alarm_name_prefix or default_alarm_prefix(Stack.of(self).stack_name)
        removal = RemovalPolicy.RETAIN if deletion_protection else RemovalPolicy.DESTROY

        self.registry = ModelRegistry(
            self,
            "Registry",
            families=families,
            removal=removal,
            registry_principal_arns=registry_principal_arns,
        )
        self.tenant_adapters = TenantAdapterTable(
            self, "TenantAdapters", deletion_protection=deletion_protection
        )
        self.rollback_alarms = RollbackAlarms(
            self,
            "RollbackAlarms",
            families=families,
            alarm_name_prefix=prefix,
            thresholds=thresholds or RollbackThresholds(),
            invoke_log_group=invoke_log_group,
        )
        self.workflow = DeploymentWorkflow(
            self,
            "Workflow",
            families=families,
            options_table=options_table,
            adapters=self.tenant_adapters,
            powertools_layer=powertools_layer,
            execution_role=self.registry.execution_role,
            alarm_name_prefix=prefix,
            alarm_arns=self.rollback_alarms.alarm_arns,
            settings=settings or DeploymentSettings(),
            deletion_protection=deletion_protection,
            include_execution_data=include_execution_data,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            definition_file=constants.MODEL_DEPLOYMENT_ASL,
        )
        self.cross_region: CrossRegionAccess | None = None
        home = home_region or Stack.of(self).region
        if any(family.extra_regions(home) for family in families):
            tasks_role = self.workflow.deployment_function.role
            assert tasks_role is not None  # lifecycle_function always makes one
            self.cross_region = CrossRegionAccess(
                self,
                "CrossRegion",
                families=families,
                home_region=home,
                stack_name=Stack.of(self).stack_name,
                alarm_name_prefix=prefix,
                artifacts_bucket=self.registry.artifacts_bucket,
                execution_role=self.registry.execution_role,
                tasks_role=tasks_role,
            )
            # the rollout to the other regions (issue 16): the tasks Lambda makes the models there, with
            # the replica of each region (named as the regional stacks name them) and the execution role
            tasks = self.workflow.deployment_function
            tasks.add_environment(
                constants.ENV_REGIONAL_ARTIFACT_BUCKETS,
                Stack.of(self).to_json_string(
                    {
                        region: regional_artifacts_bucket_name(Stack.of(self).stack_name, region)
                        for region in extra_regions(families, home)
                    }
                ),
            )
            tasks.add_environment(
                constants.ENV_SAGEMAKER_EXECUTION_ROLE_ARN, self.registry.execution_role.role_arn
            )
        self.retirement = ModelRetirement(
            self,
            "Retirement",
            families=families,
            options_table=options_table,
            adapters=self.tenant_adapters,
            powertools_layer=powertools_layer,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            schedule=retirement_schedule,
            home_region=home,
        )

    def outputs(self) -> list[tuple[str, str, str]]:
        """(output key, value, description) for the stack's CloudFormation outputs (the CLI reads them)."""
        workflow = self.workflow
        return [
            (
                OUTPUT_STATE_MACHINE,
                workflow.state_machine.state_machine_arn,
                "Model deployment workflow (Standard)",
            ),
            (OUTPUT_DEPLOYMENTS_TABLE, workflow.deployments_table.table_name, "Model deployments table"),
            (
                OUTPUT_DEPLOYMENT_FUNCTION,
                workflow.deployment_function.function_name,
                "Model deployment tasks Lambda",
            ),
            (
                OUTPUT_REGISTRY_ROLE,
                self.registry.registry_role.role_arn,
                "Role ML engineers assume to register versions",
            ),
            (
                OUTPUT_ARTIFACTS_BUCKET,
                self.registry.artifacts_bucket.bucket_name,
                "Model and adapter artifacts",
            ),
            (OUTPUT_TOPIC, workflow.topic.topic_arn, "Model deployment failure notifications"),
            (
                OUTPUT_ADAPTERS_TABLE,
                self.tenant_adapters.table.table_name,
                "Tenant adapters: which adapter serves each tenant",
            ),
            (
                OUTPUT_RETIREMENT_FUNCTION,
                self.retirement.retirement_function.function_name,
                "Model retirement Lambda (`switchboard models retire` invokes it)",
            ),
        ]
