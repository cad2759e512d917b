"""What the model lifecycle's two Lambdas (deployment tasks, retirement) share.

Both run ``lambdas/switchboard/lifecycle`` with the families in ``MODEL_FAMILIES``, read and write
the gateway's options table, read the tenant adapters table, the registry and the families'
endpoints and components.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants
from infra.constructs.functions import SwitchboardFunction, iam5_resource, powertools_environment
from infra.constructs.logical_ids import logical_id
from infra.constructs.sagemaker_arns import FamilyArns
from infra.constructs.tenant_adapters import TenantAdapterTable
from switchboard.lifecycle.model import ModelFamily


def families_json(families: Sequence[ModelFamily]) -> str:
    """The families as `cdk.json` gave them (what was set, not the defaults: Lambda's 4 KB of
    variables), parsed again by the Lambdas with the same model."""
    return json.dumps(
        [family.model_dump(mode="json", exclude_unset=True) for family in families],
        separators=(",", ":"),
        sort_keys=True,
    )


def lifecycle_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    description: str,
    timeout: Duration,
    families: Sequence[ModelFamily],
    options_table: dynamodb.ITable,
    adapters: TenantAdapterTable,
    powertools_layer: lambda_.ILayerVersion,
    log_retention: logs.RetentionDays,
    log_removal_policy: RemovalPolicy,
) -> SwitchboardFunction:
    """One lifecycle Lambda with the shared environment and grants; the caller adds its own.

    Both read the tenant adapters table (the plan reads a tenant's adapter; retirement keeps what
    serves a tenant); the deployment tasks' writes are granted by the caller."""
    arns = FamilyArns(tuple(families))
    function = SwitchboardFunction(
        scope,
        construct_id,
        handler=handler,
        description=description,
        memory_size=256,
        timeout=timeout,
        environment={
            **powertools_environment(),
            constants.ENV_OPTIONS_TABLE: options_table.table_name,
            constants.ENV_MODEL_FAMILIES: families_json(families),
            constants.ENV_ADAPTERS_TABLE: adapters.table.table_name,
        },
        layers=[powertools_layer],
        log_retention=log_retention,
        log_removal_policy=log_removal_policy,
    )
    options_table.grant_read_write_data(function.role)
    adapters.grant_read(function.role)
    function.role.add_to_policy(
        iam.PolicyStatement(
            sid="ReadRegistryAndEndpoints",
            actions=[
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeInferenceComponent",
            ],
            resources=[*arns.version_arns, *arns.endpoint_arns, *arns.component_arns],
        )
    )
    function.role.add_to_policy(
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
    Validations.of(function.role).acknowledge(
        Acknowledgment(
            id=iam5_resource("*"),
            reason="X-Ray tracing and sagemaker:List* (ListModelPackages, ListInferenceComponents, "
            "ListEndpointConfigs, ListModels) support no resource-level permissions.",
        ),
        *arns.wildcard_acknowledgments(),
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{logical_id(options_table)}.Arn>/index/*]",
            reason="CDK grant_read_write_data on the options table (its indexes, if any).",
        ),
    )
    return function
