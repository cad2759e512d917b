"""The tenant adapters table (issue 16): which LoRA adapter serves each tenant of an adapter family.

The model-deployment workflow's tasks Lambda is its only writer (switch, revert, roll back to the
base model); the retirement Lambda reads it so that it never retires a tenant's serving adapter; the
gateway (streamed requests) and the invoke step read one tenant's row per request
(:meth:`grant_get_item`, ``switchboard.adapter_routing``). Keys and
item layout: ``switchboard.contract.tables`` and ``switchboard.lifecycle.adapter_store``.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.constructs.tables import durable_table
from switchboard.contract import tables

READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
WRITE_ACTIONS = ("dynamodb:PutItem",)
"""TransactWriteItems authorizes each of its Puts as ``dynamodb:PutItem`` on the table."""


class TenantAdapterTable(Construct):
    """One table, on-demand, PITR, AWS-managed key (:func:`durable_table`).

    Attributes:
        table: partition ``pk`` (``family#<group>``), sort ``sk`` (``tenant#<tenant>`` or
            ``history#<tenant>#<time>#<execution>``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, deletion_protection: bool) -> None:
        super().__init__(scope, construct_id)
        self.table = durable_table(
            self,
            "AdaptersTable",
            tables.ADAPTERS_PARTITION_KEY,
            deletion_protection,
            RemovalPolicy.RETAIN if deletion_protection else RemovalPolicy.DESTROY,
            sort_key=tables.ADAPTERS_SORT_KEY,
            key_reason="Encrypted at rest with the AWS-managed DynamoDB key (aws/dynamodb). The table holds "
            "which adapter version (package ARN, inference component name) serves each tenant and its "
            "history: no prompts, answers or secrets. A customer-managed key would add a monthly cost and "
            "a key policy on the request path without narrowing who can read it (IAM does).",
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """One tenant's adapter (GetItem) and a family's tenants and history (Query), nothing else."""
        return self.table.grant(grantee, *READ_ACTIONS)

    def grant_get_item(self, grantee: iam.IGrantable) -> iam.Grant:
        """The request path's one read: a tenant's row by key (GetItem), nothing else."""
        return self.table.grant(grantee, "dynamodb:GetItem")

    def grant_write(self, grantee: iam.IGrantable) -> iam.Grant:
        """Reads plus the conditional Puts of the workflow's tasks; no Delete, no Update, no Scan."""
        return self.table.grant(grantee, *READ_ACTIONS, *WRITE_ACTIONS)
