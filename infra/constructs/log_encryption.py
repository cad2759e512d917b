"""One customer-managed KMS key for every CloudWatch log group of the stack.

The logs may hold prompts and answers (``LOG_PROMPTS``, the request workflow's execution data) and
always hold tenant ids and routing decisions. Encrypting them with a key of our own puts reading them
behind the key policy as well as IAM, and lets an operator make retained logs unreadable by disabling
or scheduling deletion of one key. :class:`EncryptLogGroups` applies the key to every
``AWS::Logs::LogGroup`` (the functions', the workflows', the API access logs), so a new log group
cannot be forgotten.
"""

from __future__ import annotations

import jsii
from aws_cdk import Aws, IAspect, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct


class LogsKey(Construct):
    """The key, with rotation, usable by CloudWatch Logs for this account's log groups in this region.

    Attributes:
        key: the KMS key.
    """

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        """
        Args:
            removal_policy: follow the log groups' (a retained log group needs its key).
        """
        super().__init__(scope, construct_id)
        region = Stack.of(self).region
        self.key = kms.Key(
            self,
            "Key",
            description="Switchboard: encrypts the stack's CloudWatch log groups",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # The documented key policy for CloudWatch Logs, scoped to this account's log groups.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{region}:{Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )


@jsii.implements(IAspect)
class EncryptLogGroups:
    """Sets ``KmsKeyId`` on every log group that has none."""

    def __init__(self, key: kms.IKey) -> None:
        self._key = key

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, logs.CfnLogGroup) and node.kms_key_id is None:
            node.kms_key_id = self._key.key_arn
