"""Model lifecycle: Model Registry groups → Standard deployment workflow → gateway option → retirement.

One construct for the concern (STYLE habit 7): the Model Package Groups of the configured model
families, the IAM role ML engineers assume to register and approve versions, the SageMaker execution
role, the deployments table, the SNS topic, the rollback alarms, the deployment and retirement
Lambdas, the Standard state machine from ``statemachines/model_deployment.asl.json``, the EventBridge
rule that starts it and the daily retirement schedule. The stack passes the options table and the
invoke step's log group (for the gateway-side error alarm) and grants nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import checkov
from infra.constructs.functions import (
    SwitchboardFunction,
    iam5_resource,
    powertools_environment,
)
from infra.constructs.private_bucket import private_bucket
from infra.constructs.state_machine import observed_state_machine
from infra.constructs.tables import durable_table
from switchboard.lifecycle.logic import family_name_prefix

CTX_MODEL_FAMILIES = "model_families"
DEPLOYMENT_ASL = Path(__file__).resolve().parents[2] / "statemachines" / "model_deployment.asl.json"
EVENT_DETAIL_TYPE = "SageMaker Model Package State Change"
ALARM_SUFFIXES = ("invocation-5xx", "model-latency", "gateway-errors")
"""The ASL formats ``${AlarmNamePrefix}<group>-<suffix>``: keep both in step."""
OPTION_ERRORS_NAMESPACE = "Switchboard/Models"
OPTION_ERRORS_METRIC = "OptionErrors"
# AWS Deep Learning Containers (LMI, TGI, vLLM images) live in this AWS-owned registry account.
DLC_ACCOUNT = "763104351884"
# The LLM-serving repositories of that account (LMI/DJL with vLLM and LoRA, Hugging Face TGI).
DLC_LLM_REPOSITORIES = ("djl-inference", "huggingface-pytorch-tgi-inference")
# CloudFormation outputs (the CLI's `switchboard models` reads them; cli/models.py holds the same names)
OUTPUT_STATE_MACHINE = "ModelDeploymentStateMachineArn"
OUTPUT_DEPLOYMENTS_TABLE = "ModelDeploymentsTableName"
OUTPUT_DEPLOYMENT_FUNCTION = "ModelDeploymentFunctionName"
OUTPUT_REGISTRY_ROLE = "ModelRegistryRoleArn"
OUTPUT_ARTIFACTS_BUCKET = "ModelArtifactsBucketName"
OUTPUT_TOPIC = "ModelDeploymentTopicArn"
_NAG_ACCOUNT = "<AWS::AccountId>"
_NAG_REGION = "<AWS::Region>"


@dataclass(frozen=True, slots=True)
class ModelFamilyConfig:
    """One ``model_families`` entry as the infrastructure needs it (the Lambdas validate the rest)."""

    group: str
    option_id: str
    endpoint_name: str
    variant_name: str = "AllTraffic"
    base_component: str | None = None
    raw: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, entry: Any) -> ModelFamilyConfig:
        if not isinstance(entry, Mapping):
            raise ValueError(f"{CTX_MODEL_FAMILIES}: each entry must be an object, got {entry!r}")
        try:
            return cls(
                group=str(entry["group"]),
                option_id=str(entry["option_id"]),
                endpoint_name=str(entry["endpoint_name"]),
                variant_name=str(entry.get("variant_name") or "AllTraffic"),
                base_component=entry.get("base_component"),
                raw=dict(entry),
            )
        except KeyError as exc:
            raise ValueError(f"{CTX_MODEL_FAMILIES}: entry {entry!r} lacks {exc}") from exc


def model_families_from_context(get: Any) -> list[ModelFamilyConfig]:
    """`cdk.json` context ``model_families`` (a list, or a JSON string when given with ``-c``)."""
    raw = get(CTX_MODEL_FAMILIES)
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list):
        raise ValueError(f"context '{CTX_MODEL_FAMILIES}' must be a list of objects")
    families = [ModelFamilyConfig.parse(e) for e in raw]
    groups = [f.group for f in families]
    if len(set(groups)) != len(groups):
        raise ValueError(f"context '{CTX_MODEL_FAMILIES}': a group appears twice")
    return families


@dataclass(frozen=True, slots=True)
class DeploymentSettings:
    """Blue/green and polling defaults (the ASL's DefinitionSubstitutions; input ``settings`` wins).

    CANARY: ``canary_percent`` of the new fleet takes traffic for ``wait_interval_seconds``, then the
    rest at once. LINEAR: steps of ``linear_step_percent`` (10-50) every ``wait_interval_seconds``.
    Keep ``max_polls * max_poll_seconds`` above ``maximum_execution_timeout_seconds``: a timeout
    here then means a stuck endpoint, not a slow canary.
    """

    traffic_type: str = "CANARY"
    canary_percent: int = 10
    linear_step_percent: int = 20
    wait_interval_seconds: int = 600
    termination_wait_seconds: int = 300
    maximum_execution_timeout_seconds: int = 3600
    poll_seconds: int = 30
    max_poll_seconds: int = 120
    max_polls: int = 60
    bake_seconds: int = 900

    def substitutions(self) -> dict[str, str]:
        if self.traffic_type not in ("CANARY", "LINEAR"):
            raise ValueError("traffic_type must be CANARY or LINEAR")
        if not 1 <= self.canary_percent <= 50 or not 10 <= self.linear_step_percent <= 50:
            raise ValueError("canary_percent must be 1..50 and linear_step_percent 10..50")
        if self.max_polls * self.max_poll_seconds <= self.maximum_execution_timeout_seconds:
            raise ValueError("max_polls * max_poll_seconds must exceed maximum_execution_timeout_seconds")
        return {
            "TrafficRoutingType": self.traffic_type,
            "CanaryPercent": str(self.canary_percent),
            "LinearStepPercent": str(self.linear_step_percent),
            "WaitIntervalSeconds": str(self.wait_interval_seconds),
            "TerminationWaitSeconds": str(self.termination_wait_seconds),
            "MaximumExecutionTimeoutSeconds": str(self.maximum_execution_timeout_seconds),
            "PollSeconds": str(self.poll_seconds),
            "MaxPollSeconds": str(self.max_poll_seconds),
            "MaxPolls": str(self.max_polls),
            "BakeSeconds": str(self.bake_seconds),
        }


def alarm_names(prefix: str, group: str) -> list[str]:
    return [f"{prefix}{group}-{suffix}" for suffix in ALARM_SUFFIXES]


def _sm_arn(kind: str, name: str) -> str:
    # SageMaker lower-cases resource names in ARNs; IAM matching is case-sensitive.
    return f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:{kind}/{name.lower()}"


def _sm_nag(kind: str, name: str) -> str:
    return f"arn:<AWS::Partition>:sagemaker:{_NAG_REGION}:{_NAG_ACCOUNT}:{kind}/{name.lower()}"


class ModelDeployment(Construct):
    """The model lifecycle's resources (see the module docstring).

    Attributes:
        state_machine: the Standard deployment workflow.
        deployments_table: ``pk`` (``group#<group>`` or ``event#…`` claims) + ``sk``.
        topic: failure notifications.
        execution_role: the role SageMaker models run with (the only role the workflow may pass).
        registry_role: for ML engineers: register, describe and approve versions of our groups.
        artifacts_bucket: model and adapter artifacts (``model.tar.gz``).
        deployment_function / retirement_function: the Lambdas.
        groups: group name → ``CfnModelPackageGroup``.
        alarms: group → its three rollback alarms.
        rule: the EventBridge rule that starts the workflow.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        families: Sequence[ModelFamilyConfig],
        options_table: dynamodb.ITable,
        powertools_layer: lambda_.ILayerVersion,
        invoke_log_group: logs.ILogGroup | None = None,
        settings: DeploymentSettings | None = None,
        alarm_name_prefix: str | None = None,
        deletion_protection: bool = True,
        include_execution_data: bool = True,
        errors_5xx_threshold: int = 5,
        latency_p90_ms: int = 10_000,
        gateway_errors_threshold: int = 5,
        retirement_schedule: events.Schedule | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        definition_file: Path = DEPLOYMENT_ASL,
        registry_principal_arns: Sequence[str] | None = None,
    ) -> None:
        """
        Args:
            families: the model families (``cdk.json`` ``model_families``).
            options_table: the gateway's LLM options (the workflow switches them).
            powertools_layer: on both Lambdas.
            invoke_log_group: the invoke step's log group; a metric filter on its "candidate failed"
                lines gives the per-option gateway-side error metric (no alarm without it).
            settings: blue/green and polling defaults.
            alarm_name_prefix: default ``<stack name>-model-``.
            deletion_protection: the deployments table and artifacts bucket are kept.
            include_execution_data: log states' input/output (no prompts here: package ARNs, names).
            errors_5xx_threshold: Invocation5XXErrors per minute that roll a deployment back.
            latency_p90_ms: ModelLatency p90 (over 3 minutes) that rolls a deployment back.
            gateway_errors_threshold: the option's gateway-side errors per minute.
            retirement_schedule: default daily.
            registry_principal_arns: ARN patterns of the IAM principals (of this account) that may
                assume the registry role; default the roles named ``<stack name>-ml-*`` (with or
                without a path, e.g. an IAM Identity Center permission set's role path).
        """
        super().__init__(scope, construct_id)
        if not families:
            raise ValueError("ModelDeployment needs at least one model family")
        stack = Stack.of(self)
        settings = settings or DeploymentSettings()
        prefix = alarm_name_prefix or f"{stack.stack_name}-model-"
        removal = RemovalPolicy.RETAIN if deletion_protection else RemovalPolicy.DESTROY
        families_json = json.dumps(
            [dict(f.raw or {}) for f in families], separators=(",", ":"), sort_keys=True
        )

        # -- registry ----------------------------------------------------------------------------
        self.groups: dict[str, sagemaker.CfnModelPackageGroup] = {}
        for family in families:
            self.groups[family.group] = sagemaker.CfnModelPackageGroup(
                self,
                f"Group-{family.group}",
                model_package_group_name=family.group,
                model_package_group_description=(
                    f"Switchboard model family behind option {family.option_id}"
                    + (" (LoRA adapters)" if family.base_component else "")
                ),
            )
        group_arns = [_sm_arn("model-package-group", f.group) for f in families]
        version_arns = [_sm_arn("model-package", f"{f.group}/*") for f in families]
        version_nags = [iam5_resource(_sm_nag("model-package", f"{f.group}/*")) for f in families]

        self.artifacts_bucket = private_bucket(
            self,
            "Artifacts",
            removal=removal,
            versioned=True,
            no_access_logs_reason=(
                "Model artifacts are written by the registry role and read by the SageMaker execution "
                "role only; CloudTrail (S3 data events where required) records access. Versioning keeps "
                "every artifact a registered version points at."
            ),
        )

        # Not "anyone in the account who may call sts:AssumeRole": only principals the project names.
        role_prefix = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role"
        trusted = list(registry_principal_arns or ())
        if not trusted:
            trusted = [f"{role_prefix}/{stack.stack_name}-ml-*", f"{role_prefix}/*/{stack.stack_name}-ml-*"]
        self.registry_role = iam.Role(
            self,
            "RegistryRole",
            assumed_by=iam.AccountRootPrincipal().with_conditions({"ArnLike": {"aws:PrincipalArn": trusted}}),
            description="ML engineers: upload artifacts, register, describe and approve versions of "
            "the Switchboard model families (approval starts the deployment workflow)",
        )
        self.registry_role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterAndApproveVersions",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
                ],
                resources=[*group_arns, *version_arns],
            )
        )
        self.registry_role.add_to_policy(
            iam.PolicyStatement(sid="ListVersions", actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        self.artifacts_bucket.grant_read_write(self.registry_role)
        Validations.of(self.registry_role).acknowledge(
            Acknowledgment(
                id=iam5_resource("*"),
                reason="sagemaker:ListModelPackages supports no resource-level permissions "
                "(Service Authorization Reference); the role can read nothing else with it.",
            ),
            *[
                Acknowledgment(
                    id=nag,
                    reason="Versions of our own groups only: a version's ARN is "
                    "<group>/<number>, unknown until it is registered.",
                )
                for nag in version_nags
            ],
            Acknowledgment(
                id="AwsSolutions-IAM5[Action::s3:Abort*]",
                reason="CDK grant_read_write on the artifacts bucket only (multipart uploads of models).",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Action::s3:DeleteObject*]",
                reason="CDK grant_read_write on the artifacts bucket only; versioning keeps overwritten "
                "artifacts.",
            ),
            Acknowledgment(
                id="AwsSolutions-IAM5[Action::s3:GetBucket*]",
                reason="CDK grant_read_write on the artifacts bucket only.",
            ),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:GetObject*]", reason="Artifacts bucket only."),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:List*]", reason="Artifacts bucket only."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{self._logical(self.artifacts_bucket)}.Arn>/*]",
                reason="Any object of the artifacts bucket (artifact keys are chosen at registration).",
            ),
        )

        # -- SageMaker execution role: the one role the workflow may pass ---------------------------
        self.execution_role = iam.Role(
            self,
            "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the Switchboard family models: pulls images, artifacts; writes logs, metrics",
        )
        self.artifacts_bucket.grant_read(self.execution_role)
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                sid="PullImages",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                # The AWS LLM-serving images, and the account's own repositories named for the
                # project; not every repository of the account (or of the DLC account).
                resources=[
                    *[
                        f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{DLC_ACCOUNT}:repository/{repo}"
                        for repo in DLC_LLM_REPOSITORIES
                    ],
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{Aws.ACCOUNT_ID}:repository/switchboard-*",
                ],
            )
        )
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                sid="NoResourceLevel",
                actions=["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"],
                resources=["*"],
            )
        )
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                sid="EndpointLogs",
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"
                ],
            )
        )
        Validations.of(self.execution_role).acknowledge(
            Acknowledgment(
                id=iam5_resource("*"),
                reason="ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                "permissions (Service Authorization Reference).",
            ),
            Acknowledgment(
                id=iam5_resource(
                    f"arn:<AWS::Partition>:ecr:{_NAG_REGION}:{_NAG_ACCOUNT}:repository/switchboard-*"
                ),
                reason="The account's own inference images in repositories named switchboard-*: read-only "
                "pulls; image tags are chosen at registration.",
            ),
            Acknowledgment(
                id=iam5_resource(
                    f"arn:<AWS::Partition>:logs:{_NAG_REGION}:{_NAG_ACCOUNT}:log-group:/aws/sagemaker/*"
                ),
                reason="SageMaker endpoint log groups, named by SageMaker after the endpoint.",
            ),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:GetBucket*]", reason="Artifacts bucket only."),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:GetObject*]", reason="Artifacts bucket only."),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:List*]", reason="Artifacts bucket only."),
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{self._logical(self.artifacts_bucket)}.Arn>/*]",
                reason="Model artifacts anywhere in the artifacts bucket.",
            ),
        )

        # -- data, notification, alarms --------------------------------------------------------------
        self.deployments_table = durable_table(
            self,
            "DeploymentsTable",
            "pk",
            deletion_protection,
            removal,
            sort_key="sk",
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

        self.option_errors_filter: logs.MetricFilter | None = None
        if invoke_log_group is not None:
            self.option_errors_filter = logs.MetricFilter(
                self,
                "OptionErrorsFilter",
                log_group=invoke_log_group,
                filter_pattern=logs.FilterPattern.string_value("$.message", "=", "candidate failed"),
                metric_namespace=OPTION_ERRORS_NAMESPACE,
                metric_name=OPTION_ERRORS_METRIC,
                metric_value="1",
                dimensions={"Option": "$.option_id"},
            )
        self.alarms: dict[str, list[cloudwatch.Alarm]] = {}
        for family in families:
            self.alarms[family.group] = self._family_alarms(
                family,
                prefix,
                errors_5xx_threshold=errors_5xx_threshold,
                latency_p90_ms=latency_p90_ms,
                gateway_errors_threshold=gateway_errors_threshold,
            )
        all_alarm_arns = [a.alarm_arn for alarms in self.alarms.values() for a in alarms]

        # -- Lambdas -----------------------------------------------------------------------------
        environment = {
            **powertools_environment(),
            "OPTIONS_TABLE": options_table.table_name,
            "MODEL_FAMILIES": families_json,
        }
        endpoint_arns = [_sm_arn("endpoint", f.endpoint_name) for f in families]
        deploy = SwitchboardFunction(
            self,
            "DeploymentFunction",
            handler="handlers.model_deployment.handler",
            description="Model deployment workflow tasks: plan, smoke test, switch the gateway option",
            memory_size=256,
            timeout=Duration.seconds(60),
            environment=environment,
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        retire = SwitchboardFunction(
            self,
            "RetirementFunction",
            handler="handlers.model_retirement.handler",
            description="Retire model versions older than the retention count (never the live one)",
            memory_size=256,
            timeout=Duration.minutes(5),
            environment=environment,
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        self.deployment_function = deploy.function
        self.retirement_function = retire.function
        checkov.acknowledge_no_dlq(
            deploy.function,
            invoked_by="the model deployment state machine's lambda:invoke tasks (RequestResponse), whose "
            "Retry and Catch rules handle every failure",
        )
        checkov.skip_check(
            retire.function,
            checkov.LAMBDA_DLQ,
            "Invoked asynchronously by the daily EventBridge schedule with a constant empty event, and the "
            "retirement sweep is idempotent: a failed run is retried by Lambda, then repeated in full by "
            "the next day's run, and shows in the function's Errors metric and logs. A dead-lettered "
            "copy of the empty event would hold nothing to replay.",
        )
        # Only the names the workflow makes (family_name_prefix) and the LoRA families' base components.
        component_arns = [_sm_arn("inference-component", f"{family_name_prefix(f.group)}*") for f in families]
        component_arns += [
            _sm_arn("inference-component", f.base_component) for f in families if f.base_component
        ]
        config_arns = [_sm_arn("endpoint-config", f"{family_name_prefix(f.group)}*") for f in families]
        model_arns = [_sm_arn("model", f"{family_name_prefix(f.group)}*") for f in families]
        for fn in (deploy, retire):
            options_table.grant_read_write_data(fn.role)
            fn.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadRegistryAndEndpoints",
                    actions=[
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:DescribeEndpoint",
                        "sagemaker:DescribeInferenceComponent",
                    ],
                    resources=[*version_arns, *endpoint_arns, *component_arns],
                )
            )
            fn.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ListWithoutResourceLevel",
                    actions=[
                        "sagemaker:ListModelPackages",
                        "sagemaker:ListInferenceComponents",
                        "sagemaker:ListEndpointConfigs",
                        "sagemaker:ListModels",
                    ],
                    resources=["*"],
                )
            )
        deploy.role.add_to_policy(
            iam.PolicyStatement(
                sid="SmokeInvoke",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[*endpoint_arns, *component_arns],
            )
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
                resources=[*component_arns, *config_arns, *model_arns, *version_arns],
            )
        )
        wildcard_acks = self._sagemaker_wildcard_acks(version_nags, families)
        for fn in (deploy, retire):
            Validations.of(fn.role).acknowledge(
                Acknowledgment(
                    id=iam5_resource("*"),
                    reason="X-Ray tracing and sagemaker:List* (ListModelPackages, ListInferenceComponents, "
                    "ListEndpointConfigs, ListModels) support no resource-level permissions.",
                ),
                *wildcard_acks,
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{self._logical(options_table)}.Arn>/index/*]",
                    reason="CDK grant_read_write_data on the options table (its indexes, if any).",
                ),
            )

        # -- the Standard state machine -------------------------------------------------------------
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
                resources=[deploy.function.function_arn],
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
                resources=[*model_arns, *config_arns, *endpoint_arns, *component_arns, *version_arns],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassExecutionRoleToSageMakerOnly",
                actions=["iam:PassRole"],
                resources=[self.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadRollbackAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=all_alarm_arns,
            )
        )
        self.deployments_table.grant(role, "dynamodb:PutItem")
        self.topic.grant_publish(role)
        self.state_machine = observed_state_machine(
            self,
            "StateMachine",
            definition_file=definition_file,
            substitutions={
                "DeploymentFunctionArn": deploy.function.function_arn,
                "DeploymentsTable": self.deployments_table.table_name,
                "NotificationTopicArn": self.topic.topic_arn,
                "SageMakerExecutionRoleArn": self.execution_role.role_arn,
                "AlarmNamePrefix": prefix,
                **settings.substitutions(),
            },
            role=role,
            state_machine_type=sfn.StateMachineType.STANDARD,
            log_group=self.log_group,
            include_execution_data=include_execution_data,
        )
        Validations.of(role).acknowledge(*wildcard_acks)

        # -- triggers --------------------------------------------------------------------------------
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
        self.retirement_rule = events.Rule(
            self,
            "RetirementSchedule",
            description="Retire Switchboard model versions older than each family's retention count",
            schedule=retirement_schedule or events.Schedule.rate(Duration.days(1)),
            targets=[targets.LambdaFunction(retire.function, event=events.RuleTargetInput.from_object({}))],
        )

    def outputs(self) -> list[tuple[str, str, str]]:
        """(output key, value, description) for the stack's CloudFormation outputs (the CLI reads them)."""
        return [
            (
                OUTPUT_STATE_MACHINE,
                self.state_machine.state_machine_arn,
                "Model deployment workflow (Standard)",
            ),
            (OUTPUT_DEPLOYMENTS_TABLE, self.deployments_table.table_name, "Model deployments table"),
            (
                OUTPUT_DEPLOYMENT_FUNCTION,
                self.deployment_function.function_name,
                "Model deployment tasks Lambda",
            ),
            (
                OUTPUT_REGISTRY_ROLE,
                self.registry_role.role_arn,
                "Role ML engineers assume to register versions",
            ),
            (OUTPUT_ARTIFACTS_BUCKET, self.artifacts_bucket.bucket_name, "Model and adapter artifacts"),
            (OUTPUT_TOPIC, self.topic.topic_arn, "Model deployment failure notifications"),
        ]

    @staticmethod
    def _logical(construct: Any) -> str:
        """The logical id of a construct's CloudFormation resource (as cdk-nag prints it)."""
        child = construct.node.default_child
        if isinstance(child, CfnResource):
            return Stack.of(construct).get_logical_id(child)
        raise ValueError(f"{construct.node.path} has no CloudFormation resource")

    @staticmethod
    def _sagemaker_wildcard_acks(
        version_nags: list[str], families: Sequence[ModelFamilyConfig]
    ) -> list[Acknowledgment]:
        named = "named <family prefix>-v<version>-<deployment> at run time (family_name_prefix)"
        return [
            *[
                Acknowledgment(id=iam5_resource(_sm_nag(kind, f"{family_name_prefix(f.group)}*")), reason=why)
                for f in families
                for kind, why in (
                    ("inference-component", f"Adapter inference components of this family only, {named}."),
                    ("endpoint-config", f"Endpoint configs of this family only, {named}."),
                    ("model", f"SageMaker models of this family only, {named}."),
                )
            ],
            *[
                Acknowledgment(
                    id=nag, reason="Versions of our own model package groups (numbered at registration)."
                )
                for nag in version_nags
            ],
        ]

    def _family_alarms(
        self,
        family: ModelFamilyConfig,
        prefix: str,
        *,
        errors_5xx_threshold: int,
        latency_p90_ms: int,
        gateway_errors_threshold: int,
    ) -> list[cloudwatch.Alarm]:
        dimensions = {"EndpointName": family.endpoint_name, "VariantName": family.variant_name}
        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        # (construct id, description, namespace, metric, dimensions, statistic, threshold, periods, operator),
        # in the order of `alarm_names`.
        specs = [
            (
                "Errors5xx",
                f"{family.endpoint_name}: model 5xx errors (rolls a deployment back)",
                "AWS/SageMaker",
                "Invocation5XXErrors",
                dimensions,
                "Sum",
                errors_5xx_threshold,
                1,
                at_least,
            ),
            (
                "Latency",
                f"{family.endpoint_name}: model latency p90 (rolls a deployment back)",
                "AWS/SageMaker",
                "ModelLatency",  # microseconds
                dimensions,
                "p90",
                latency_p90_ms * 1000,
                3,
                above,
            ),
            (
                "GatewayErrors",
                f"Gateway-side errors calling option {family.option_id} (rolls back)",
                OPTION_ERRORS_NAMESPACE,
                OPTION_ERRORS_METRIC,
                {"Option": family.option_id},
                "Sum",
                gateway_errors_threshold,
                1,
                at_least,
            ),
        ]
        return [
            cloudwatch.Alarm(
                self,
                f"{construct_id}-{family.group}",
                alarm_name=name,
                alarm_description=description,
                metric=cloudwatch.Metric(
                    namespace=namespace,
                    metric_name=metric,
                    dimensions_map=dims,
                    statistic=statistic,
                    period=Duration.minutes(1),
                ),
                threshold=threshold,
                evaluation_periods=periods,
                comparison_operator=operator,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for name, (
                construct_id,
                description,
                namespace,
                metric,
                dims,
                statistic,
                threshold,
                periods,
                operator,
            ) in zip(alarm_names(prefix, family.group), specs, strict=True)
        ]
