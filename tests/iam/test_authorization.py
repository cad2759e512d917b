"""Calls → what IAM authorizes, checked against the Service Authorization Reference dataset."""

from __future__ import annotations

from typing import Any

import pytest

from iam.authorization import (
    ROWS,
    SECRET_SUFFIX,
    AwsCall,
    NoAuthorizationRow,
    Request,
    action_details,
    dataset_version,
    requests_for,
)

R, A = "us-east-1", "123456789012"

# One example per row, with what AWS authorizes for it. A new row needs an example here.
EXAMPLES: dict[tuple[str, str], tuple[dict[str, Any], list[tuple[str, str]]]] = {
    ("dynamodb", "GetItem"): (
        {"TableName": "t"},
        [("dynamodb:GetItem", f"arn:aws:dynamodb:{R}:{A}:table/t")],
    ),
    ("dynamodb", "PutItem"): (
        {"TableName": "t"},
        [("dynamodb:PutItem", f"arn:aws:dynamodb:{R}:{A}:table/t")],
    ),
    ("dynamodb", "UpdateItem"): (
        {"TableName": f"arn:aws:dynamodb:{R}:{A}:table/t"},
        [("dynamodb:UpdateItem", f"arn:aws:dynamodb:{R}:{A}:table/t")],
    ),
    ("dynamodb", "DeleteItem"): (
        {"TableName": "t"},
        [("dynamodb:DeleteItem", f"arn:aws:dynamodb:{R}:{A}:table/t")],
    ),
    ("dynamodb", "DescribeTable"): (
        {"TableName": "t"},
        [("dynamodb:DescribeTable", f"arn:aws:dynamodb:{R}:{A}:table/t")],
    ),
    ("dynamodb", "Query"): (
        {"TableName": "t", "IndexName": "by-tenant"},
        [("dynamodb:Query", f"arn:aws:dynamodb:{R}:{A}:table/t/index/by-tenant")],
    ),
    ("dynamodb", "Scan"): ({"TableName": "t"}, [("dynamodb:Scan", f"arn:aws:dynamodb:{R}:{A}:table/t")]),
    ("dynamodb", "BatchGetItem"): (
        {"RequestItems": {"a": {}, "b": {}}},
        [
            ("dynamodb:BatchGetItem", f"arn:aws:dynamodb:{R}:{A}:table/a"),
            ("dynamodb:BatchGetItem", f"arn:aws:dynamodb:{R}:{A}:table/b"),
        ],
    ),
    ("dynamodb", "BatchWriteItem"): (
        {"RequestItems": {"a": []}},
        [("dynamodb:BatchWriteItem", f"arn:aws:dynamodb:{R}:{A}:table/a")],
    ),
    ("dynamodb", "TransactWriteItems"): (
        {
            "TransactItems": [
                {"Put": {"TableName": "circuits"}},
                {"Update": {"TableName": "circuits"}},
                {"ConditionCheck": {"TableName": "options"}},
                {"Delete": {"TableName": "circuits"}},
            ]
        },
        [
            ("dynamodb:PutItem", f"arn:aws:dynamodb:{R}:{A}:table/circuits"),
            ("dynamodb:UpdateItem", f"arn:aws:dynamodb:{R}:{A}:table/circuits"),
            ("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:{R}:{A}:table/options"),
            ("dynamodb:DeleteItem", f"arn:aws:dynamodb:{R}:{A}:table/circuits"),
        ],
    ),
    ("dynamodb", "TransactGetItems"): (
        {"TransactItems": [{"Get": {"TableName": "a"}}]},
        [("dynamodb:GetItem", f"arn:aws:dynamodb:{R}:{A}:table/a")],
    ),
    ("stepfunctions", "StartSyncExecution"): (
        {"stateMachineArn": f"arn:aws:states:{R}:{A}:stateMachine:req"},
        [("states:StartSyncExecution", f"arn:aws:states:{R}:{A}:stateMachine:req")],
    ),
    ("stepfunctions", "StartExecution"): (
        {"stateMachineArn": f"arn:aws:states:{R}:{A}:stateMachine:dep"},
        [("states:StartExecution", f"arn:aws:states:{R}:{A}:stateMachine:dep")],
    ),
    ("stepfunctions", "DescribeExecution"): (
        {"executionArn": f"arn:aws:states:{R}:{A}:execution:dep:1"},
        [("states:DescribeExecution", f"arn:aws:states:{R}:{A}:execution:dep:1")],
    ),
    ("stepfunctions", "StopExecution"): (
        {"executionArn": f"arn:aws:states:{R}:{A}:execution:dep:1"},
        [("states:StopExecution", f"arn:aws:states:{R}:{A}:execution:dep:1")],
    ),
    ("stepfunctions", "GetExecutionHistory"): (
        {"executionArn": f"arn:aws:states:{R}:{A}:execution:dep:1"},
        [("states:GetExecutionHistory", f"arn:aws:states:{R}:{A}:execution:dep:1")],
    ),
    ("s3", "GetObject"): ({"Bucket": "b", "Key": "k/1"}, [("s3:GetObject", "arn:aws:s3:::b/k/1")]),
    ("s3", "PutObject"): ({"Bucket": "b", "Key": "k/1"}, [("s3:PutObject", "arn:aws:s3:::b/k/1")]),
    ("s3", "DeleteObject"): ({"Bucket": "b", "Key": "k"}, [("s3:DeleteObject", "arn:aws:s3:::b/k")]),
    ("s3", "HeadObject"): ({"Bucket": "b", "Key": "k"}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
    ("apigateway", "GetApiKey"): (
        {"apiKey": "abc123", "includeValue": True},
        [("apigateway:GET", f"arn:aws:apigateway:{R}::/apikeys/abc123")],
    ),
    ("bedrock-runtime", "Converse"): (
        {"modelId": "us.amazon.nova-lite-v1:0"},
        [
            ("bedrock:InvokeModel", f"arn:aws:bedrock:{R}:{A}:inference-profile/us.amazon.nova-lite-v1:0"),
            ("bedrock:InvokeModel", f"arn:aws:bedrock:{R}::foundation-model/amazon.nova-lite-v1:0"),
        ],
    ),
    ("bedrock-runtime", "ConverseStream"): (
        {"modelId": "amazon.nova-micro-v1:0"},
        [
            (
                "bedrock:InvokeModelWithResponseStream",
                f"arn:aws:bedrock:{R}::foundation-model/amazon.nova-micro-v1:0",
            )
        ],
    ),
    ("bedrock-runtime", "InvokeModel"): (
        {"modelId": f"arn:aws:bedrock:{R}::foundation-model/m"},
        [("bedrock:InvokeModel", f"arn:aws:bedrock:{R}::foundation-model/m")],
    ),
    ("bedrock-runtime", "InvokeModelWithResponseStream"): (
        {"modelId": "m"},
        [("bedrock:InvokeModelWithResponseStream", f"arn:aws:bedrock:{R}::foundation-model/m")],
    ),
    ("sagemaker-runtime", "InvokeEndpoint"): (
        {"EndpointName": "Switchboard-Base", "InferenceComponentName": "adapter-1"},
        [("sagemaker:InvokeEndpoint", f"arn:aws:sagemaker:{R}:{A}:endpoint/switchboard-base")],
    ),
    ("sagemaker-runtime", "InvokeEndpointWithResponseStream"): (
        {"EndpointName": "e"},
        [("sagemaker:InvokeEndpointWithResponseStream", f"arn:aws:sagemaker:{R}:{A}:endpoint/e")],
    ),
    ("sagemaker", "DescribeModelPackage"): (
        {"ModelPackageName": f"arn:aws:sagemaker:{R}:{A}:model-package/grp/3"},
        [("sagemaker:DescribeModelPackage", f"arn:aws:sagemaker:{R}:{A}:model-package/grp/3")],
    ),
    ("sagemaker", "UpdateModelPackage"): (
        {"ModelPackageArn": f"arn:aws:sagemaker:{R}:{A}:model-package/grp/3"},
        [("sagemaker:UpdateModelPackage", f"arn:aws:sagemaker:{R}:{A}:model-package/grp/3")],
    ),
    ("sagemaker", "DescribeEndpoint"): (
        {"EndpointName": "e"},
        [("sagemaker:DescribeEndpoint", f"arn:aws:sagemaker:{R}:{A}:endpoint/e")],
    ),
    ("sagemaker", "DescribeInferenceComponent"): (
        {"InferenceComponentName": "c"},
        [("sagemaker:DescribeInferenceComponent", f"arn:aws:sagemaker:{R}:{A}:inference-component/c")],
    ),
    ("sagemaker", "DeleteInferenceComponent"): (
        {"InferenceComponentName": "c"},
        [("sagemaker:DeleteInferenceComponent", f"arn:aws:sagemaker:{R}:{A}:inference-component/c")],
    ),
    ("sagemaker", "DeleteEndpointConfig"): (
        {"EndpointConfigName": "c"},
        [("sagemaker:DeleteEndpointConfig", f"arn:aws:sagemaker:{R}:{A}:endpoint-config/c")],
    ),
    ("sagemaker", "DeleteModel"): (
        {"ModelName": "m"},
        [("sagemaker:DeleteModel", f"arn:aws:sagemaker:{R}:{A}:model/m")],
    ),
    ("sagemaker", "ListModelPackages"): ({}, [("sagemaker:ListModelPackages", "*")]),
    ("sagemaker", "ListInferenceComponents"): ({}, [("sagemaker:ListInferenceComponents", "*")]),
    ("sagemaker", "ListEndpointConfigs"): ({}, [("sagemaker:ListEndpointConfigs", "*")]),
    ("sagemaker", "ListModels"): ({}, [("sagemaker:ListModels", "*")]),
    ("sagemaker", "CreateModel"): (
        {"ModelName": "m", "ExecutionRoleArn": f"arn:aws:iam::{A}:role/exec"},
        [
            ("sagemaker:CreateModel", f"arn:aws:sagemaker:{R}:{A}:model/m"),
            ("iam:PassRole", f"arn:aws:iam::{A}:role/exec"),
        ],
    ),
    ("sagemaker", "CreateEndpointConfig"): (
        {"EndpointConfigName": "c"},
        [("sagemaker:CreateEndpointConfig", f"arn:aws:sagemaker:{R}:{A}:endpoint-config/c")],
    ),
    ("sagemaker", "CreateEndpoint"): (
        {"EndpointName": "e", "EndpointConfigName": "c"},
        [
            ("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:{R}:{A}:endpoint/e"),
            ("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:{R}:{A}:endpoint-config/c"),
        ],
    ),
    ("sagemaker", "UpdateEndpoint"): (
        {
            "EndpointName": "e",
            "EndpointConfigName": "c",
            "DeploymentConfig": {
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "p-g-invocation-5xx"}]}
            },
        },
        [
            ("sagemaker:UpdateEndpoint", f"arn:aws:sagemaker:{R}:{A}:endpoint/e"),
            ("sagemaker:UpdateEndpoint", f"arn:aws:sagemaker:{R}:{A}:endpoint-config/c"),
            ("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{R}:{A}:alarm:p-g-invocation-5xx"),
        ],
    ),
    ("sagemaker", "CreateInferenceComponent"): (
        {"InferenceComponentName": "c", "EndpointName": "e"},
        [
            ("sagemaker:CreateInferenceComponent", f"arn:aws:sagemaker:{R}:{A}:inference-component/c"),
            ("sagemaker:CreateInferenceComponent", f"arn:aws:sagemaker:{R}:{A}:endpoint/e"),
        ],
    ),
    ("secretsmanager", "GetSecretValue"): (
        {"SecretId": "switchboard/openai"},
        [
            (
                "secretsmanager:GetSecretValue",
                f"arn:aws:secretsmanager:{R}:{A}:secret:switchboard/openai{SECRET_SUFFIX}",
            )
        ],
    ),
    ("cloudwatch", "PutMetricData"): ({"Namespace": "n"}, [("cloudwatch:PutMetricData", "*")]),
    ("cloudwatch", "GetMetricData"): (
        {"MetricDataQueries": [], "StartTime": "t0", "EndTime": "t1"},
        [("cloudwatch:GetMetricData", "*")],
    ),
    ("cloudwatch", "DescribeAlarms"): (
        {"AlarmNames": ["a1", "a2"]},
        [
            ("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{R}:{A}:alarm:a1"),
            ("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{R}:{A}:alarm:a2"),
        ],
    ),
    ("sns", "Publish"): (
        {"TopicArn": f"arn:aws:sns:{R}:{A}:topic"},
        [("sns:Publish", f"arn:aws:sns:{R}:{A}:topic")],
    ),
    ("lambda", "Invoke"): (
        {"FunctionName": "fn"},
        [("lambda:InvokeFunction", f"arn:aws:lambda:{R}:{A}:function:fn")],
    ),
    # the repository in the registry the call names (an AWS-owned one here), in the client's region
    ("ecr", "DescribeImages"): (
        {"registryId": "763104351884", "repositoryName": "djl-inference", "imageIds": [{"imageTag": "x"}]},
        [("ecr:DescribeImages", f"arn:aws:ecr:{R}:763104351884:repository/djl-inference")],
    ),
}


def test_every_row_has_an_example() -> None:
    assert set(ROWS) == set(EXAMPLES)


@pytest.mark.parametrize("key", sorted(EXAMPLES), ids=lambda k: " ".join(k))
def test_each_row_authorizes_what_the_reference_says(key: tuple[str, str]) -> None:
    params, expected = EXAMPLES[key]
    requests = requests_for(AwsCall(key[0], key[1], params, R, A))
    assert [(r.action, r.resource) for r in requests] == expected
    for request in requests:  # every action is the reference's own spelling of an existing action
        prefix, action = request.action.split(":")
        assert action_details(prefix, action)["name"] == action


def test_each_row_cites_its_page() -> None:
    for row in ROWS.values():
        assert row.reference.startswith("https://docs.aws.amazon.com/")


def test_passing_the_execution_role_carries_the_service_it_is_passed_to() -> None:
    (_, pass_role) = requests_for(
        AwsCall(
            "sagemaker", "CreateModel", {"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::1:role/x"}, R, A
        )
    )
    assert pass_role == Request(
        "iam:PassRole", "arn:aws:iam::1:role/x", (("iam:PassedToService", ("sagemaker.amazonaws.com",)),)
    )


def test_a_call_without_a_row_fails_loudly() -> None:
    with pytest.raises(NoAuthorizationRow, match="s3 ListObjectsV2"):
        requests_for(AwsCall("s3", "ListObjectsV2", {"Bucket": "b"}, R, A))


def test_the_dataset_is_recent_enough() -> None:
    """The reference changes (new actions, resource types): a dataset older than 2026 is stale."""
    assert dataset_version() >= "0.1.202601010"
