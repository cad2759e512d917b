"""A state machine loaded from `statemachines/*.asl.json`, with the logging and tracing every
Switchboard workflow needs, shared by the request and model-deployment workflows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Acknowledgment, CfnResource, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.functions import depend_on_role_policy_only, iam5_resource

LOG_DELIVERY_AND_XRAY_REASON = (
    "CloudWatch Logs vended log delivery (logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, "
    "DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, "
    "DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSamplingRules, "
    "GetSamplingTargets) support no resource-level permissions; Step Functions documents '*' for both."
)


def observed_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    definition_file: Path,
    substitutions: Mapping[str, str],
    role: iam.Role,
    state_machine_type: sfn.StateMachineType,
    log_group: logs.ILogGroup,
    include_execution_data: bool,
) -> sfn.StateMachine:
    """Definition inlined with `DefinitionBody.from_string` (not `from_file`, which makes an S3 asset)
    so the template carries it for assertions and cfn-lint; every state logged (level ALL), execution
    data (prompts, answers) only when asked; X-Ray on."""
    state_machine = sfn.StateMachine(
        scope,
        construct_id,
        state_machine_type=state_machine_type,
        definition_body=sfn.DefinitionBody.from_string(definition_file.read_text()),
        definition_substitutions=dict(substitutions),
        role=role,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=include_execution_data
        ),
    )
    cfn_state_machine = state_machine.node.default_child
    if isinstance(cfn_state_machine, CfnResource):
        depend_on_role_policy_only(cfn_state_machine, role)
    Validations.of(role).acknowledge(
        Acknowledgment(id=iam5_resource("*"), reason=LOG_DELIVERY_AND_XRAY_REASON)
    )
    return state_machine
