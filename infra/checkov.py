"""checkov acknowledgments, written where the finding is: the resource's CloudFormation metadata.

`make checkov` fails on any failed check. A check that does not apply to a resource is skipped on that
resource only, with the reason, as checkov reads it from the template::

    "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_117", "comment": "<why>"}]}}

Use :func:`skip_check` for one resource. :class:`LambdaAcknowledgments` (an Aspect on the stack) gives
every ``AWS::Lambda::Function``, CDK-generated ones included, the reasons that hold for all of this
project's functions (reserved concurrency, VPC, environment-variable key). Whether a dead-letter
queue applies depends on how the function is invoked, so each construct states that itself with
:func:`acknowledge_no_dlq` (or :func:`skip_check` for asynchronous invokers): a new function without
it fails ``make checkov``.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import CfnResource, IAspect
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

METADATA_KEY = "checkov"
MIN_COMMENT_LENGTH = 40
"""A reason, not a label: shorter comments are refused at synth (and by the infra tests)."""

LAMBDA_RESERVED_CONCURRENCY = "CKV_AWS_115"
LAMBDA_DLQ = "CKV_AWS_116"
LAMBDA_VPC = "CKV_AWS_117"
LAMBDA_ENV_KMS = "CKV_AWS_173"

LAMBDA_REASONS: dict[str, str] = {
    LAMBDA_RESERVED_CONCURRENCY: (
        "No reserved concurrency: reserving carves capacity out of the account pool and caps "
        "throughput. The API-facing functions scale with traffic and are throttled upstream by the "
        "API Gateway usage plans and stage throttling; the workflow, deployment, validator and "
        "custom-resource functions run a bounded number of times per request or operation."
    ),
    LAMBDA_VPC: (
        "No VPC: the functions call only public AWS service endpoints (DynamoDB, S3, Step Functions, "
        "AppConfig, Secrets Manager, SageMaker, Bedrock, CloudFormation) and third-party provider APIs "
        "over TLS, with IAM-authorized requests. There is no private resource to reach; a VPC would add "
        "NAT or endpoint cost and cold-start latency for no isolation gain."
    ),
    LAMBDA_ENV_KMS: (
        "Environment variables hold resource names, ARNs, AppConfig names, default routes and "
        "Powertools settings, never secrets (provider keys are read from Secrets Manager at run time). "
        "Lambda encrypts them at rest with the AWS-managed key; a customer-managed key would protect "
        "nothing more and add a key-policy dependency to every cold start."
    ),
}


def _cfn(scope: IConstruct) -> CfnResource:
    """The CloudFormation resource of ``scope`` (itself, or an L2's default child)."""
    if isinstance(scope, CfnResource):
        return scope
    child = scope.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{scope.node.path}: no CloudFormation resource to annotate")
    return child


def skips_of(resource: CfnResource) -> list[dict[str, str]]:
    """The checkov skips already on ``resource``."""
    metadata: Any = resource.get_metadata(METADATA_KEY)
    if not isinstance(metadata, dict):
        return []
    return [dict(s) for s in metadata.get("skip", []) if isinstance(s, dict)]


def has_skip(scope: IConstruct, check_id: str) -> bool:
    return any(s.get("id") == check_id for s in skips_of(_cfn(scope)))


def skip_check(scope: IConstruct, check_id: str, comment: str) -> None:
    """Acknowledge checkov check ``check_id`` on ``scope``'s resource, with the reason.

    Replaces an earlier skip of the same check on that resource (the last reason wins).

    Raises:
        ValueError: the comment is shorter than :data:`MIN_COMMENT_LENGTH` (say why, not just what).
    """
    comment = " ".join(comment.split())
    if len(comment) < MIN_COMMENT_LENGTH:
        raise ValueError(f"checkov skip of {check_id} needs a reason of {MIN_COMMENT_LENGTH}+ characters")
    resource = _cfn(scope)
    skips = [s for s in skips_of(resource) if s.get("id") != check_id]
    skips.append({"id": check_id, "comment": comment})
    resource.add_metadata(METADATA_KEY, {"skip": skips})


def acknowledge_no_dlq(function: IConstruct, *, invoked_by: str) -> None:
    """CKV_AWS_116 on a function only ever invoked synchronously (``invoked_by`` says by what)."""
    skip_check(
        function,
        LAMBDA_DLQ,
        "A dead-letter queue receives only asynchronous invocations that failed every retry. This "
        f"function is invoked synchronously, by {invoked_by}: the caller receives the error and "
        "handles it, so a DLQ would never receive an event.",
    )


@jsii.implements(IAspect)
class LambdaAcknowledgments:
    """Adds :data:`LAMBDA_REASONS` to every ``AWS::Lambda::Function`` that does not state its own."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, lambda_.CfnFunction):
            return
        for check_id, comment in LAMBDA_REASONS.items():
            if not has_skip(node, check_id):
                skip_check(node, check_id, comment)
