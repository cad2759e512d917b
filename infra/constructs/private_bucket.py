"""The one way this project makes an S3 bucket: private, TLS-only, encrypted, owner-enforced.

Both buckets (claim checks, model artifacts) skip server access logging for the same kind of
reason, stated once per bucket and given to cdk-nag (AwsSolutions-S1) and checkov (CKV_AWS_18)
alike, so the two scanners can never disagree about why.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import checkov


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    removal: RemovalPolicy,
    versioned: bool,
    no_access_logs_reason: str,
    lifecycle_rules: Sequence[s3.LifecycleRule] = (),
    bucket_name: str | None = None,
) -> s3.Bucket:
    """A bucket no one outside this account's named roles can read, without server access logs."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=versioned,
        removal_policy=removal,
        lifecycle_rules=list(lifecycle_rules) or None,
        bucket_name=bucket_name,
    )
    Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=no_access_logs_reason))
    checkov.skip_check(bucket, "CKV_AWS_18", no_access_logs_reason)
    return bucket
