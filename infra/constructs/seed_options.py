"""A custom resource that seeds the options table from ``config/options.json`` on every change."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, CustomResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import checkov, constants
from infra.constructs.functions import (
    SwitchboardFunction,
    depend_on_role_policy_only,
    iam5_resource,
    nag_render,
    powertools_environment,
)


class SeedOptions(Construct):
    """Writes the seed LLM options into the options table (``handlers.seed_options.handler``).

    The resource's properties carry the options document itself (as JSON text, so numbers and
    booleans keep their types through CloudFormation) and the table name: editing
    ``config/options.json`` changes the properties, and the next deploy runs the handler again.
    The handler never overwrites an operator's later edit (see ``switchboard.options.store``).

    Attributes:
        handler: the on-event function (write access to the options table only).
        provider: the custom-resource provider.
        resource: the custom resource.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options_table: dynamodb.ITable,
        options_document: str,
        powertools_layer: lambda_.ILayerVersion,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            options_table: the table to seed.
            options_document: ``config/options.json`` as text.
            powertools_layer: for the handler.
            log_retention / log_removal_policy: the handler's settings.
        """
        super().__init__(scope, construct_id)
        handler = SwitchboardFunction(
            self,
            "Handler",
            handler=constants.HANDLER_SEED_OPTIONS,
            description="Switchboard: seeds the LLM options table from config/options.json",
            memory_size=256,
            timeout=Duration.minutes(2),
            environment=powertools_environment(),
            layers=[powertools_layer],
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        options_table.grant_write_data(handler.function)
        self.handler = handler.function
        checkov.acknowledge_no_dlq(
            self.handler, invoked_by="the CDK custom-resource provider framework (RequestResponse)"
        )

        framework_logs = logs.LogGroup(
            self, "ProviderLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        framework_role = iam.Role(
            self,
            "ProviderRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Custom-resource framework of the options seed",
        )
        framework_logs.grant_write(framework_role)
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler,
            log_group=framework_logs,
            framework_on_event_role=framework_role,
        )
        framework_function = self.provider.node.try_find_child("framework-onEvent")
        if framework_function is not None and isinstance(framework_function.node.default_child, CfnResource):
            depend_on_role_policy_only(framework_function.node.default_child, framework_role)
            checkov.skip_check(
                framework_function,
                checkov.LAMBDA_DLQ,
                "CloudFormation invokes the custom-resource framework asynchronously with a lifecycle "
                "event carrying a pre-signed response URL. The framework reports any handler failure to "
                "that URL and the stack operation rolls back (if the function cannot run at all, "
                "CloudFormation times the resource out and rolls back); a dead-lettered event, whose "
                "response URL expires, could not be replayed.",
            )
        # The framework invokes the handler through `grant_invoke`, which adds `<handler arn>:*`.
        handler_versions = nag_render(Stack.of(self).resolve(self.handler.function_arn)) + ":*"
        Validations.of(framework_role).acknowledge(
            Acknowledgment(
                id=iam5_resource(handler_versions),
                reason="CDK's custom-resource framework grants lambda:InvokeFunction on the seed handler "
                "and its versions/aliases (<arn>:*); that one function only.",
            )
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type="Custom::SwitchboardSeedOptions",
            properties={
                constants.SEED_PROP_TABLE_NAME: options_table.table_name,
                constants.SEED_PROP_OPTIONS: options_document,
            },
        )
