"""Data at rest: the options, keys, circuit, answer-cache and usage tables and the claim-check bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import checkov, constants
from infra.constructs.private_bucket import private_bucket

TABLE_KEY_REASON = (
    "Encrypted at rest with the AWS-managed DynamoDB key (aws/dynamodb). The tables hold option "
    "metadata (secret ARNs, never secrets), SHA-256 hashes of bearer keys, circuit states and cached "
    "answers readable only by the request workflow's role: a customer-managed key would add a monthly "
    "key cost and a key policy on the request path without narrowing who can read them (IAM does)."
)

USAGE_TABLE_KEY_REASON = (
    "Encrypted at rest with the AWS-managed DynamoDB key (aws/dynamodb). The usage table holds "
    "counters per tenant (token counts, request counts, cost, limit windows and budget settings): no "
    "prompt, answer or secret. A customer-managed key would add a monthly key cost and a key policy on "
    "the request path without narrowing who can read them (IAM does)."
)


class DataTables(Construct):
    """The LLM options, API keys, circuit, answer-cache and usage tables and the payload bucket.

    Tables: on-demand, point-in-time recovery on, encrypted with the AWS-managed DynamoDB key
    (``aws/dynamodb``). A customer-managed key would add a monthly key cost and a key policy to
    look after for data that holds no secrets: option metadata (secret *ARNs*, never secrets),
    SHA-256 hashes of bearer keys and circuit states. The answer cache holds model answers (as the
    claim-check bucket holds prompts), readable only by the request workflow's role.

    The circuit, cache and usage tables expire items through DynamoDB TTL on ``expires_at`` (epoch
    seconds): circuit transition events, cached answers and metered hours are not kept forever.

    Payload bucket: the Step Functions claim check for prompts and answers above the state-size
    threshold. SSE-S3, TLS only, no public access, objects expire after one day.

    Attributes:
        options_table: partition key ``id`` (S).
        keys_table: partition key ``key_hash`` (S).
        circuit_table: partition key ``pk`` (S, the option id), sort key ``sk`` (S: ``STATE``, or one
            item per transition event); TTL ``expires_at``. One owner writes it: the circuit breaker.
        cache_table: partition key ``cache_key`` (S, ``tenant#route#`` and a hash of tenant, route and
            normalized messages; each item also names its ``tenant``); TTL ``expires_at``.
        usage_table: partition key ``pk`` (S, ``tenant#<tenant>``), sort key ``sk`` (S: ``usage#<hour>#…``
            metered totals, and the limit windows, limits, budgets and spend of issue 15); TTL
            ``expires_at``. Every per-tenant counter lives here, updated with atomic ``ADD``.
        payload_bucket: claim-check objects.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deletion_protection: bool = True,
        payload_expiration_days: int = 1,
    ) -> None:
        """
        Args:
            deletion_protection: DynamoDB deletion protection on every table, and RETAIN as the
                removal policy of the tables and the bucket (DESTROY when False, for throwaway stacks).
            payload_expiration_days: lifecycle expiry of claim-check objects.
        """
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if deletion_protection else RemovalPolicy.DESTROY

        self.options_table = durable_table(
            self, "OptionsTable", constants.OPTIONS_TABLE_PARTITION_KEY, deletion_protection, removal
        )
        self.keys_table = durable_table(
            self, "KeysTable", constants.KEYS_TABLE_PARTITION_KEY, deletion_protection, removal
        )
        self.circuit_table = durable_table(
            self,
            "CircuitTable",
            constants.CIRCUIT_TABLE_PARTITION_KEY,
            deletion_protection,
            removal,
            sort_key=constants.CIRCUIT_TABLE_SORT_KEY,
            time_to_live_attribute=constants.TTL_ATTRIBUTE,
        )
        self.cache_table = durable_table(
            self,
            "CacheTable",
            constants.CACHE_TABLE_PARTITION_KEY,
            deletion_protection,
            removal,
            time_to_live_attribute=constants.TTL_ATTRIBUTE,
        )
        self.usage_table = durable_table(
            self,
            "UsageTable",
            constants.USAGE_TABLE_PARTITION_KEY,
            deletion_protection,
            removal,
            sort_key=constants.USAGE_TABLE_SORT_KEY,
            time_to_live_attribute=constants.TTL_ATTRIBUTE,
            key_reason=USAGE_TABLE_KEY_REASON,
        )

        self.payload_bucket = private_bucket(
            self,
            "PayloadBucket",
            removal=removal,
            versioned=False,
            no_access_logs_reason=(
                "Transient claim-check objects (expire after one day) written and read only by the "
                "gateway and invoke Lambda roles, whose own logs and X-Ray traces record every access "
                "with the request id. Server access logs would copy prompt object keys into a second, "
                "longer-lived bucket; enable CloudTrail S3 data events where an audit trail is required."
            ),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-claim-checks",
                    enabled=True,
                    expiration=Duration.days(payload_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        checkov.skip_check(
            self.payload_bucket,
            "CKV_AWS_21",
            "No versioning: each claim-check object has a per-request key, is written once and expires "
            "after one day. Versioning would keep noncurrent copies of prompts and answers past that expiry "
            "and recover nothing the request path needs.",
        )


def durable_table(
    scope: Construct,
    construct_id: str,
    partition_key: str,
    deletion_protection: bool,
    removal: RemovalPolicy,
    *,
    sort_key: str | None = None,
    time_to_live_attribute: str | None = None,
    key_reason: str = TABLE_KEY_REASON,
) -> dynamodb.Table:
    """The one way this project makes a table: on-demand, point-in-time recovery, AWS-managed key.

    `key_reason` says why the AWS-managed key is enough for what this table holds (checkov CKV_AWS_119).
    """
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        sort_key=(
            dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING) if sort_key else None
        ),
        time_to_live_attribute=time_to_live_attribute,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=deletion_protection,
        removal_policy=removal,
    )
    checkov.skip_check(table, "CKV_AWS_119", key_reason)
    return table
