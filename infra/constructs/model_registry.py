"""The Model Registry side of the model lifecycle: where versions are registered and what they run as.

The Model Package Groups of the configured families, the artifacts bucket, the role ML engineers
assume to register and approve versions (approval starts the deployment workflow), and the
SageMaker execution role, the only role the workflow may pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Aws, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.constructs.functions import iam5_resource
from infra.constructs.logical_ids import keep_logical_ids, logical_id
from infra.constructs.private_bucket import private_bucket
from infra.constructs.sagemaker_arns import NAG_ACCOUNT, NAG_REGION, FamilyArns
from switchboard.lifecycle.images import DLC_REGISTRY_ACCOUNTS
from switchboard.lifecycle.model import ModelFamily

DLC_ACCOUNT = "763104351884"
"""AWS Deep Learning Containers (LMI, TGI, vLLM images) live in this AWS-owned registry account."""
DLC_LLM_REPOSITORIES = ("djl-inference", "huggingface-pytorch-tgi-inference")
"""The LLM-serving repositories of that account (LMI/DJL with vLLM and LoRA, Hugging Face TGI)."""


class ModelRegistry(Construct):
    """Model Package Groups, artifacts bucket, registry role and SageMaker execution role.

    Attributes:
        groups: group name → ``CfnModelPackageGroup``.
        artifacts_bucket: model and adapter artifacts (``model.tar.gz``), versioned.
        registry_role: for ML engineers: upload artifacts, register, describe and approve versions.
        execution_role: the role SageMaker models run with.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        families: Sequence[ModelFamily],
        removal: RemovalPolicy,
        registry_principal_arns: Sequence[str] = (),
    ) -> None:
        """
        Args:
            families: the model families (one group each).
            removal: what happens to the artifacts bucket when the stack goes.
            registry_principal_arns: ARN patterns of the IAM principals (of this account) that may
                assume the registry role; default the roles named ``<stack name>-ml-*`` (with or
                without a path, e.g. an IAM Identity Center permission set's role path).
        """
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        arns = FamilyArns(tuple(families))

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
        trusted = list(registry_principal_arns)
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
                resources=[*arns.group_arns, *arns.version_arns],
            )
        )
        self.registry_role.add_to_policy(
            iam.PolicyStatement(sid="ListVersions", actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        self.artifacts_bucket.grant_read_write(self.registry_role)

        self.execution_role = iam.Role(
            self,
            "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Runs the Switchboard family models: pulls images, artifacts; writes logs, metrics",
        )
        self.artifacts_bucket.grant_read(self.execution_role)
        # The DLC registry account is the region's own: 763104351884 in most regions, another in
        # some opt-in ones, none where AWS publishes no DLC images (switchboard.lifecycle.images).
        dlc_account = (
            DLC_ACCOUNT if Token.is_unresolved(stack.region) else DLC_REGISTRY_ACCOUNTS.get(stack.region)
        )
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
                        f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{dlc_account}:repository/{repo}"
                        for repo in DLC_LLM_REPOSITORIES
                        if dlc_account
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

        keep_logical_ids(self)  # before the acknowledgments below name the bucket by logical id
        self._acknowledge(arns)

    def _acknowledge(self, arns: FamilyArns) -> None:
        bucket_objects = f"AwsSolutions-IAM5[Resource::<{logical_id(self.artifacts_bucket)}.Arn>/*]"
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
                for nag in arns.version_nags
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
                id=bucket_objects,
                reason="Any object of the artifacts bucket (artifact keys are chosen at registration).",
            ),
        )
        Validations.of(self.execution_role).acknowledge(
            Acknowledgment(
                id=iam5_resource("*"),
                reason="ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                "permissions (Service Authorization Reference).",
            ),
            Acknowledgment(
                id=iam5_resource(
                    f"arn:<AWS::Partition>:ecr:{NAG_REGION}:{NAG_ACCOUNT}:repository/switchboard-*"
                ),
                reason="The account's own inference images in repositories named switchboard-*: read-only "
                "pulls; image tags are chosen at registration.",
            ),
            Acknowledgment(
                id=iam5_resource(
                    f"arn:<AWS::Partition>:logs:{NAG_REGION}:{NAG_ACCOUNT}:log-group:/aws/sagemaker/*"
                ),
                reason="SageMaker endpoint log groups, named by SageMaker after the endpoint.",
            ),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:GetBucket*]", reason="Artifacts bucket only."),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:GetObject*]", reason="Artifacts bucket only."),
            Acknowledgment(id="AwsSolutions-IAM5[Action::s3:List*]", reason="Artifacts bucket only."),
            Acknowledgment(id=bucket_objects, reason="Model artifacts anywhere in the artifacts bucket."),
        )
