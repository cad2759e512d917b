"""The Standard deployment workflow: an approval (or the rejection of the live version) to traffic.

``statemachines/model_deployment.asl.json`` with its deployment-tasks Lambda, the deployments table
(idempotency claims and the deployment history), the failure topic, the workflow's role and the
EventBridge rule on the families' registry state changes that starts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import checkov, constants
from infra.constructs.functions import XRAY_REASON, iam5_resource
from infra.constructs.lifecycle_functions import lifecycle_function
from infra.constructs.logical_ids import keep_logical_ids
from infra.constructs.sagemaker_arns import FamilyArns
from infra.constructs.state_machine import observed_state_machine
from infra.constructs.tables import durable_table
from infra.constructs.tenant_adapters import TenantAdapterTable
from switchboard.contract import tables
from switchboard.contract.model_deployment import EVENT_DETAIL_TYPE, DeploymentSettings, machine_substitutions
from switchboard.lifecycle.model import ModelFamily

__all__ = ["EVENT_DETAIL_TYPE", "DeploymentSettings", "DeploymentWorkflow"]


class DeploymentWorkflow(Construct):
    """The deployment state machine, its tasks Lambda, records, notifications and trigger.

    Attributes:
        state_machine: the Standard deployment workflow.
        deployments_table: ``pk`` (``group#<group>`` or ``event#…`` claims) + ``sk``.
        topic: failure notifications.
        deployment_function: the Lambda of the plan, smoke and switch tasks.
        log_group: the workflow's execution log.
        rule: the EventBridge rule that starts the workflow.
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
        execution_role: iam.IRole,
        alarm_name_prefix: str,
        alarm_arns: Sequence[str],
        settings: DeploymentSettings,
        deletion_protection: bool,
        include_execution_data: bool,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
        definition_file: Path = constants.MODEL_DEPLOYMENT_ASL,
    ) -> None:
        """
        Args:
            families: the model families (the rule matches their groups).
            options_table: the gateway's LLM options (the switch task moves them).
            adapters: the tenant adapters table (the tenant switch, revert and rollback tasks write it).
            powertools_layer: on the tasks Lambda.
            execution_role: the SageMaker execution role, the only role the workflow may pass.
            alarm_name_prefix: the rollback alarms' prefix (``${AlarmNamePrefix}`` in the ASL).
            alarm_arns: the rollback alarms (the workflow reads them; SageMaker needs that of the caller).
            settings: blue/green and polling defaults.
            deletion_protection: the deployments table is kept.
            include_execution_data: log states' input/output (no prompts here: package ARNs, names).
        """
        super().__init__(scope, construct_id)
        arns = FamilyArns(tuple(families))
        removal = RemovalPolicy.RETAIN if deletion_protection else RemovalPolicy.DESTROY

        self.deployments_table = durable_table(
            self,
            "DeploymentsTable",
            tables.DEPLOYMENTS_PARTITION_KEY,
            deletion_protection,
            removal,
            sort_key=tables.DEPLOYMENTS_SORT_KEY,
            key_reason="Encrypted at rest with the AWS-managed DynamoDB key (aws/dynamodb). The table holds "
            "deployment records (version ARNs, endpoint names, states), no secrets and no prompts; a "
            "customer-managed key would add a monthly cost and a key policy without narrowing who can read "
            "it (IAM does).",
        )
        self.topic = sns.Topic(
            self,
            "FailureTopic",
            display_name="Switchboard model deployment failures",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )

        tasks = lifecycle_function(
            self,
            "DeploymentFunction",
            handler=constants.HANDLER_MODEL_DEPLOYMENT,
            description="Model deployment workflow tasks: plan, smoke test, switch the gateway option or a "
            "tenant's adapter",
            timeout=Duration.seconds(60),
            families=families,
            options_table=options_table,
            adapters=adapters,
            powertools_layer=powertools_layer,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        tasks.role.add_to_policy(
            iam.PolicyStatement(
                sid="SmokeInvoke",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[*arns.endpoint_arns, *arns.component_arns],
            )
        )
        adapters.grant_write(tasks.role)
        # JudgeTenantCanary (issue 16): the canary component's own metrics and the family's alarms,
        # instead of one paid CloudWatch alarm per tenant adapter
        tasks.role.add_to_policy(
            iam.PolicyStatement(
                sid="JudgeCanaryAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=list(alarm_arns),
            )
        )
        tasks.role.add_to_policy(
            iam.PolicyStatement(
                sid="JudgeCanaryMetrics",
                actions=["cloudwatch:GetMetricData"],
                resources=["*"],
            )
        )
        Validations.of(tasks.role).acknowledge(
            Acknowledgment(
                id=iam5_resource("*"),
                reason=f"{XRAY_REASON} cloudwatch:GetMetricData (JudgeTenantCanary reads the canary "
                "inference component's AWS/SageMaker metrics) supports no resource-level permissions "
                "(Service Authorization Reference, Amazon CloudWatch): IAM accepts only Resource '*'.",
            )
        )
        self.deployment_function = tasks.function
        checkov.acknowledge_no_dlq(
            tasks.function,
            invoked_by="the model deployment state machine's lambda:invoke tasks (RequestResponse), whose "
            "Retry and Catch rules handle every failure",
        )

        self.log_group = logs.LogGroup(
            self, "WorkflowLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        role = iam.Role(
            self,
            "WorkflowRole",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Model deployment workflow: SageMaker deployment calls, option switch, records",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeDeploymentTasks",
                actions=["lambda:InvokeFunction"],
                resources=[tasks.function.function_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Deploy",
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:CreateInferenceComponent",
                    "sagemaker:DescribeInferenceComponent",
                    "sagemaker:DeleteInferenceComponent",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
                ],
                resources=[
                    *arns.model_arns,
                    *arns.config_arns,
                    *arns.endpoint_arns,
                    *arns.component_arns,
                    *arns.version_arns,
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassExecutionRoleToSageMakerOnly",
                actions=["iam:PassRole"],
                resources=[execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRollbackAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=list(alarm_arns),
            )
        )
        self.deployments_table.grant(role, "dynamodb:PutItem")
        self.topic.grant_publish(role)
        self.state_machine = observed_state_machine(
            self,
            "StateMachine",
            definition_file=definition_file,
            substitutions=machine_substitutions(
                function_arn=tasks.function.function_arn,
                table=self.deployments_table.table_name,
                topic_arn=self.topic.topic_arn,
                execution_role_arn=execution_role.role_arn,
                alarm_prefix=alarm_name_prefix,
                settings=settings,
            ),
            role=role,
            state_machine_type=sfn.StateMachineType.STANDARD,
            log_group=self.log_group,
            include_execution_data=include_execution_data,
        )
        Validations.of(role).acknowledge(*arns.wildcard_acknowledgments())

        self.rule = events.Rule(
            self,
            "ApprovalRule",
            description="A version of a Switchboard model family was Approved or Rejected: run the "
            "deployment workflow (it ignores rejections of versions that are not live)",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[EVENT_DETAIL_TYPE],
                detail={
                    "ModelPackageGroupName": [f.group for f in families],
                    "ModelApprovalStatus": ["Approved", "Rejected"],
                },
            ),
            targets=[targets.SfnStateMachine(self.state_machine)],
        )
        keep_logical_ids(self)
