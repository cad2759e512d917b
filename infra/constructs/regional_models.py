"""Multi-region rollout (issue 16): what a model family's other regions need, and the home stack's
access to them.

**One stack per extra region, not StackSets.** Each region a family lists besides the stack's own
gets a small ``SwitchboardRegionalStack`` (``app.py``) holding :class:`RegionalModelResources`:
the region's artifacts replica (SageMaker reads ``ModelDataUrl`` only from a bucket in the model's
region) and the family's endpoint rollback alarms (``UpdateEndpoint``'s
``AutoRollbackConfiguration`` and the workflow read alarms in the endpoint's region; the metrics
``AWS/SageMaker`` are regional). The regions differ (only the families that list a region have
alarms there), every template is checked by cdk-nag like the home stack, and ``cdk deploy --all``
deploys them with the same bootstrap and credentials. StackSets would deploy one template with
parameters everywhere, need StackSet administration/execution roles (or Organizations), and hide the
per-region template from cdk-nag and from the tests.

**No cross-region references.** CDK cannot resolve a token of a stack in one region inside a stack
in another (only through SSM custom resources, ``crossRegionReferences``). Every name crossing a
region is therefore computed from configuration on both sides: the replica bucket is
:func:`regional_artifacts_bucket_name`, the alarms are ``<prefix><group>-<suffix>`` as in the home
region (alarm names are per region), and ARNs are built with the literal region. The home stack
depends on the regional stacks, so replication destinations exist before the replication rule.

**Images.** SageMaker runs a model only from an ECR image in the model's own region, so each other
region's model names that region's copy (``switchboard.lifecycle.images``): the account's own
``switchboard-*`` repositories there, or the region's AWS Deep Learning Containers registry (whose
account differs in some regions). The deployment tasks may look the account's images up
(``ecr:DescribeImages``) in each rollout region: the plan rejects a version whose image is missing in
any of them before anything moves. Copying the images is the account's business; the opt-in
``cdk.json`` ``replicate_images`` adds :class:`RegistryReplication` (ECR cross-region replication)
to the home stack. It is opt-in because ECR keeps **one** replication configuration per registry
(account and region): deploying it replaces any replication rules the home region's registry already
had.

What stays global or home-only: the SageMaker execution role (IAM is global; :class:`CrossRegionAccess`
lets it pull images and write logs in the other regions and read their replicas), the Model Registry,
the deployment workflow and its tasks Lambda (which gets the right to deploy in the other regions),
and the one options table (a family's option in another region is ``<option_id>-<region>``, see
``ModelFamily.regional_option_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Acknowledgment, Aws, RemovalPolicy, Validations
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import OWN_IMAGE_REPOSITORY_PREFIX
from infra.constructs.functions import iam5_resource
from infra.constructs.logical_ids import logical_id
from infra.constructs.model_registry import DLC_LLM_REPOSITORIES
from infra.constructs.private_bucket import private_bucket
from infra.constructs.rollback_alarms import ALARM_SPECS, AlarmSpec, RollbackAlarms, RollbackThresholds
from infra.constructs.sagemaker_arns import NAG_ACCOUNT, FamilyArns
from switchboard.contract.model_deployment import alarm_names
from switchboard.lifecycle.images import DLC_REGISTRY_ACCOUNTS
from switchboard.lifecycle.model import ModelFamily

REGIONAL_ALARM_SPECS: tuple[AlarmSpec, ...] = tuple(
    spec for spec in ALARM_SPECS if spec.namespace == "AWS/SageMaker"
)
"""The rollback alarms a family gets in its other regions: the endpoint's own. The gateway-side
alarm watches a metric of the gateway's logs, which are in the stack's region."""

REGIONAL_DEPLOY_ACTIONS = (
    "sagemaker:CreateModel",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:UpdateEndpoint",
    "sagemaker:DescribeEndpoint",
    "sagemaker:CreateInferenceComponent",
    "sagemaker:DescribeInferenceComponent",
    "sagemaker:DeleteInferenceComponent",
    "sagemaker:InvokeEndpoint",
)
"""What the deployment calls in a family's other region (with a boto3 client for that region)."""


def default_alarm_prefix(stack_name: str) -> str:
    """The rollback alarms' name prefix, the same in every region of the deployment."""
    return f"{stack_name}-model-"


def regional_stack_id(stack_name: str, region: str) -> str:
    return f"{stack_name}-{region}"


def regional_artifacts_bucket_name(stack_name: str, region: str) -> str:
    """The artifacts replica in ``region``: computed, not referenced (see the module docstring).

    The account id makes it globally unique; lower case because bucket names must be.
    """
    return f"{stack_name.lower()}-models-{region}-{Aws.ACCOUNT_ID}"


def _bucket_nag(stack_name: str, region: str) -> str:
    return f"arn:<AWS::Partition>:s3:::{stack_name.lower()}-models-{region}-{NAG_ACCOUNT}"


def extra_regions(families: Sequence[ModelFamily], home_region: str) -> list[str]:
    """Every region some family deploys to besides ``home_region``, in first-listed order."""
    found: list[str] = []
    for family in families:
        found.extend(region for region in family.extra_regions(home_region) if region not in found)
    return found


def families_in(families: Sequence[ModelFamily], region: str, home_region: str) -> list[ModelFamily]:
    return [family for family in families if region in family.extra_regions(home_region)]


class RegionalModelResources(Construct):
    """In a family's other region: the artifacts replica and the endpoint rollback alarms.

    Attributes:
        artifacts_bucket: the replica of the home artifacts bucket (versioned: replication needs it).
        rollback_alarms: :class:`RollbackAlarms` with :data:`REGIONAL_ALARM_SPECS` only.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        families: Sequence[ModelFamily],
        stack_name: str,
        region: str,
        alarm_name_prefix: str,
        thresholds: RollbackThresholds,
        removal: RemovalPolicy,
    ) -> None:
        """
        Args:
            families: the families that deploy to ``region`` (not the stack's own region).
            stack_name: the home stack's name (names are computed from it on both sides).
            region: this stack's region.
            alarm_name_prefix: the home stack's rollback alarm prefix.
        """
        super().__init__(scope, construct_id)
        if not families:
            raise ValueError(f"no model family deploys to {region}")
        self.artifacts_bucket = private_bucket(
            self,
            "ArtifactsReplica",
            removal=removal,
            versioned=True,
            bucket_name=regional_artifacts_bucket_name(stack_name, region),
            no_access_logs_reason=(
                "A replica of the home artifacts bucket, written only by S3 replication and read by the "
                "SageMaker execution role; CloudTrail (S3 data events where required) records access."
            ),
        )
        self.rollback_alarms = RollbackAlarms(
            self,
            "RollbackAlarms",
            families=families,
            alarm_name_prefix=alarm_name_prefix,
            thresholds=thresholds,
            specs=REGIONAL_ALARM_SPECS,
        )


class CrossRegionAccess(Construct):
    """In the home stack: the replication of artifacts to every other region, and the rights the
    SageMaker execution role and the deployment tasks Lambda need there.

    Attributes:
        replication_role: assumed by S3 to replicate the artifacts bucket to the regional replicas.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        families: Sequence[ModelFamily],
        home_region: str,
        stack_name: str,
        alarm_name_prefix: str,
        artifacts_bucket: s3.Bucket,
        execution_role: iam.Role,
        tasks_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        regions = extra_regions(families, home_region)
        if not regions:
            raise ValueError("CrossRegionAccess needs a family with a region besides the stack's")
        replicas = {
            region: f"arn:{Aws.PARTITION}:s3:::{regional_artifacts_bucket_name(stack_name, region)}"
            for region in regions
        }

        self.replication_role = iam.Role(
            self,
            "ReplicationRole",
            assumed_by=iam.ServicePrincipal("s3.amazonaws.com"),
            description="S3 replication of the model artifacts bucket to the families' other regions",
        )
        self.replication_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadSourceConfiguration",
                actions=["s3:GetReplicationConfiguration", "s3:ListBucket"],
                resources=[artifacts_bucket.bucket_arn],
            )
        )
        self.replication_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadSourceVersions",
                actions=[
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                ],
                resources=[artifacts_bucket.arn_for_objects("*")],
            )
        )
        self.replication_role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteReplicas",
                actions=["s3:ReplicateObject", "s3:ReplicateTags"],
                resources=[f"{arn}/*" for arn in replicas.values()],
            )
        )
        source = artifacts_bucket.node.default_child
        assert isinstance(source, s3.CfnBucket)
        source.replication_configuration = s3.CfnBucket.ReplicationConfigurationProperty(
            role=self.replication_role.role_arn,
            rules=[
                s3.CfnBucket.ReplicationRuleProperty(
                    id=f"to-{region}",
                    status="Enabled",
                    priority=priority,
                    filter=s3.CfnBucket.ReplicationRuleFilterProperty(prefix=""),
                    delete_marker_replication=s3.CfnBucket.DeleteMarkerReplicationProperty(status="Disabled"),
                    destination=s3.CfnBucket.ReplicationDestinationProperty(bucket=arn),
                )
                for priority, (region, arn) in enumerate(replicas.items(), start=1)
            ],
        )

        for region in regions:
            in_region = families_in(families, region, home_region)
            tag = re.sub(r"[^A-Za-z0-9]", "", region.title())
            arns = FamilyArns(tuple(in_region), region=region)
            own_images = (
                f"arn:{Aws.PARTITION}:ecr:{region}:{Aws.ACCOUNT_ID}:repository/{OWN_IMAGE_REPOSITORY_PREFIX}*"
            )
            # the region's copy of each image: the DLC registry account differs in some regions (and
            # there is none in a few: only the account's own images can run there)
            dlc_account = DLC_REGISTRY_ACCOUNTS.get(region)
            execution_role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"PullImagesIn{tag}",
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    resources=[
                        *[
                            f"arn:{Aws.PARTITION}:ecr:{region}:{dlc_account}:repository/{repo}"
                            for repo in DLC_LLM_REPOSITORIES
                            if dlc_account
                        ],
                        own_images,
                    ],
                )
            )
            tasks_role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"FindImagesIn{tag}",
                    actions=["ecr:DescribeImages"],
                    resources=[own_images],
                )
            )
            execution_role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"EndpointLogsIn{tag}",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    resources=[
                        f"arn:{Aws.PARTITION}:logs:{region}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"
                    ],
                )
            )
            execution_role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"ReadArtifactsIn{tag}",
                    actions=["s3:GetObject", "s3:ListBucket"],
                    resources=[replicas[region], f"{replicas[region]}/*"],
                )
            )
            tasks_role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"DeployIn{tag}",
                    actions=list(REGIONAL_DEPLOY_ACTIONS),
                    resources=[
                        *arns.model_arns,
                        *arns.config_arns,
                        *arns.endpoint_arns,
                        *arns.component_arns,
                    ],
                )
            )
            tasks_role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid=f"ReadRollbackAlarmsIn{tag}",
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[
                        f"arn:{Aws.PARTITION}:cloudwatch:{region}:{Aws.ACCOUNT_ID}:alarm:{name}"
                        for family in in_region
                        for name in alarm_names(alarm_name_prefix, family.group)
                        if name.endswith(tuple(spec.name_suffix for spec in REGIONAL_ALARM_SPECS))
                    ],
                )
            )
            Validations.of(tasks_role).acknowledge(
                *arns.wildcard_acknowledgments(versions=False),
                Acknowledgment(
                    id=iam5_resource(
                        f"arn:<AWS::Partition>:ecr:{region}:{NAG_ACCOUNT}:repository/"
                        f"{OWN_IMAGE_REPOSITORY_PREFIX}*"
                    ),
                    reason=f"ecr:DescribeImages on the account's own inference image repositories in "
                    f"{region} (switchboard-*): the rollout's plan checks a version's image is there "
                    "before anything moves; read-only, tags are chosen at registration.",
                ),
            )
            Validations.of(execution_role).acknowledge(
                Acknowledgment(
                    id=iam5_resource(
                        f"arn:<AWS::Partition>:ecr:{region}:{NAG_ACCOUNT}:repository/"
                        f"{OWN_IMAGE_REPOSITORY_PREFIX}*"
                    ),
                    reason=f"The account's own inference images in {region} (repositories named "
                    "switchboard-*): read-only pulls; image tags are chosen at registration.",
                ),
                Acknowledgment(
                    id=iam5_resource(
                        f"arn:<AWS::Partition>:logs:{region}:{NAG_ACCOUNT}:log-group:/aws/sagemaker/*"
                    ),
                    reason=f"SageMaker endpoint log groups in {region}, named by SageMaker after the "
                    "endpoint.",
                ),
                Acknowledgment(
                    id=iam5_resource(f"{_bucket_nag(stack_name, region)}/*"),
                    reason=f"Model artifacts anywhere in the {region} replica of the artifacts bucket.",
                ),
            )
        tasks_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassExecutionRoleToSageMakerInOtherRegions",
                actions=["iam:PassRole"],
                resources=[execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        Validations.of(self.replication_role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{logical_id(artifacts_bucket)}.Arn>/*]",
                reason="S3 replication reads every object version of the artifacts bucket (its whole "
                "content is replicated to the families' other regions).",
            ),
            *[
                Acknowledgment(
                    id=iam5_resource(f"{_bucket_nag(stack_name, region)}/*"),
                    reason=f"S3 replication writes every artifact into the {region} replica.",
                )
                for region in regions
            ],
        )


class RegistryReplication(Construct):
    """In the home stack, only with ``cdk.json`` ``replicate_images``: ECR cross-region replication of
    the account's own inference images to every other region a family lists.

    ``AWS::ECR::ReplicationConfiguration`` is **account-wide per region**: ECR keeps one replication
    configuration per private registry, and this resource *replaces* it. Deploying it overwrites any
    replication rules the home region's registry already had (another team's, or the console's), and
    deleting the stack removes replication for the whole registry. Hence opt-in, and one rule naming
    only the configured ``switchboard-*`` prefixes. ECR replicates only what is pushed after the
    configuration exists: push (or re-tag) an image again to copy an older one. The first
    configuration creates ECR's service-linked role for replication; no role is needed here.

    Attributes:
        configuration: the ``CfnReplicationConfiguration``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository_prefixes: Sequence[str],
        destination_regions: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        if not repository_prefixes or not destination_regions:
            raise ValueError("RegistryReplication needs repository prefixes and destination regions")
        self.configuration = ecr.CfnReplicationConfiguration(
            self,
            "Configuration",
            replication_configuration=ecr.CfnReplicationConfiguration.ReplicationConfigurationProperty(
                rules=[
                    ecr.CfnReplicationConfiguration.ReplicationRuleProperty(
                        destinations=[
                            ecr.CfnReplicationConfiguration.ReplicationDestinationProperty(
                                region=region, registry_id=Aws.ACCOUNT_ID
                            )
                            for region in destination_regions
                        ],
                        repository_filters=[
                            ecr.CfnReplicationConfiguration.RepositoryFilterProperty(
                                filter=prefix, filter_type="PREFIX_MATCH"
                            )
                            for prefix in repository_prefixes
                        ],
                    )
                ]
            ),
        )
