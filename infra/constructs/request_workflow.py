"""The Express circuit-breaker workflow that tries a route's chain of LLM options."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import constants
from infra.constructs.state_machine import observed_state_machine


class RequestWorkflow(Construct):
    """An EXPRESS state machine from ``statemachines/request_workflow.asl.json``.

    The definition is inlined with ``DefinitionBody.from_string`` (not ``from_file``, which would
    make an S3 asset) so the template carries it for assertions and cfn-lint. Logging level ALL
    (every named state of a request is in the log, so the console shows what happened); execution
    data only when ``include_execution_data`` is set, since inputs carry prompts. X-Ray on.

    Attributes:
        state_machine: the Express state machine.
        log_group: its execution log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        invoke_function: lambda_.IFunction,
        circuit_function: lambda_.IFunction,
        circuit_table: dynamodb.ITable,
        cache_table: dynamodb.ITable,
        definition_file: Path = constants.REQUEST_WORKFLOW_ASL,
        include_execution_data: bool = False,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            invoke_function: the invoke step (``${InvokeFunctionArn}``).
            circuit_function: the circuit step (``${CircuitFunctionArn}``). These two are the only
                functions the workflow may invoke.
            circuit_table: ``${CircuitTable}``; ``CheckCircuit`` reads a candidate's circuit with a
                direct ``getItem`` (no Lambda on the skip path). Read-only: the circuit breaker in
                the Lambdas owns every write.
            cache_table: ``${CacheTable}``; the workflow reads (``Degrade_CachedAnswer``) and writes
                (``RememberAnswer``) cached answers directly.
            definition_file: the ASL file.
            include_execution_data: log states' input and output (prompts and answers) too.
            log_retention / log_removal_policy: the execution log group.
        """
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=log_removal_policy
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Request workflow: invokes the invoke and circuit steps, reads circuits, "
            "reads and writes cached answers, writes its logs and traces",
        )
        # Unqualified ARNs only: the definition calls `${InvokeFunctionArn}` and `${CircuitFunctionArn}`,
        # never a version or alias (grant_invoke would add `<arn>:*` as well).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="InvokeSteps",
                actions=["lambda:InvokeFunction"],
                resources=[invoke_function.function_arn, circuit_function.function_arn],
            )
        )
        # Exactly the actions of the definition's DynamoDB integrations, on the table ARNs only
        # (Table.grant_read_data would add Query, Scan, BatchGetItem and more).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadCircuits", actions=["dynamodb:GetItem"], resources=[circuit_table.table_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CachedAnswers",
                actions=["dynamodb:GetItem", "dynamodb:PutItem"],
                resources=[cache_table.table_arn],
            )
        )
        self.state_machine = observed_state_machine(
            self,
            "StateMachine",
            definition_file=definition_file,
            substitutions={
                constants.SUBST_INVOKE_FUNCTION_ARN: invoke_function.function_arn,
                constants.SUBST_CIRCUIT_FUNCTION_ARN: circuit_function.function_arn,
                constants.SUBST_CIRCUIT_TABLE: circuit_table.table_name,
                constants.SUBST_CACHE_TABLE: cache_table.table_name,
            },
            role=role,
            state_machine_type=sfn.StateMachineType.EXPRESS,
            log_group=self.log_group,
            include_execution_data=include_execution_data,
        )
