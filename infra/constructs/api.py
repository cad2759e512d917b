"""The public REST API: OpenAI-compatible routes, the key authorizer, usage plans, errors, WAF."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra import checkov, constants
from infra.config import TierThrottle
from switchboard.contract import errors
from switchboard.limits import MAX_REQUEST_BODY_BYTES, larger_than_pattern


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """One API Gateway gateway response, in OpenAI's error shape."""

    response_type: apigw.ResponseType
    status: int | None
    """None for the DEFAULT_4XX/DEFAULT_5XX fallbacks: API Gateway's developer guide ("Gateway
    response types") says that setting their status code changes the status of every other 4XX
    (5XX) response to that value, so a 403, 415 or 504 would all reach clients as 400 or 500."""
    message: str | None
    """The text; None to pass API Gateway's own message (``$context.error.messageString``)."""
    type: str
    code: str

    @classmethod
    def of(cls, response_type: apigw.ResponseType, spec: errors.ErrorSpec) -> ErrorResponse:
        """The response API Gateway renders for ``response_type``: the catalogue entry ``spec``."""
        return cls(response_type, spec.status, spec.message, spec.type, spec.code)


# What API Gateway answers by itself (these never reach the gateway Lambda), from the same
# catalogue the gateway Lambda renders (switchboard.contract.errors). OpenAI clients read
# `error.message`, `error.type` and `error.code`; `request_id` ties a report to the access log.
GATEWAY_ERRORS: Sequence[ErrorResponse] = (
    ErrorResponse.of(apigw.ResponseType.UNAUTHORIZED, errors.INVALID_API_KEY),
    ErrorResponse.of(apigw.ResponseType.ACCESS_DENIED, errors.ACCESS_DENIED),
    ErrorResponse.of(apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, errors.UNKNOWN_PATH),
    ErrorResponse.of(apigw.ResponseType.THROTTLED, errors.RATE_LIMIT_EXCEEDED),
    ErrorResponse.of(apigw.ResponseType.QUOTA_EXCEEDED, errors.QUOTA_EXCEEDED),
    ErrorResponse.of(apigw.ResponseType.REQUEST_TOO_LARGE, errors.REQUEST_TOO_LARGE),
    ErrorResponse.of(apigw.ResponseType.BAD_REQUEST_BODY, errors.INVALID_REQUEST_BODY),
    ErrorResponse.of(apigw.ResponseType.INTEGRATION_TIMEOUT, errors.GATEWAY_TIMEOUT),
    # The statuses below are API Gateway's own defaults for these types, stated so the body and
    # the status are reviewed together.
    ErrorResponse.of(apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, errors.UNSUPPORTED_MEDIA_TYPE),
    ErrorResponse.of(apigw.ResponseType.INVALID_API_KEY, errors.USAGE_PLAN_KEY_INVALID),
    ErrorResponse.of(apigw.ResponseType.WAF_FILTERED, errors.REQUEST_BLOCKED),
    ErrorResponse.of(apigw.ResponseType.AUTHORIZER_FAILURE, errors.AUTHORIZER_FAILURE),
    ErrorResponse.of(apigw.ResponseType.INTEGRATION_FAILURE, errors.INTEGRATION_FAILURE),
    # Fallbacks: no status (each response keeps its own), API Gateway's message, its response type.
    ErrorResponse(
        apigw.ResponseType.DEFAULT_4_XX,
        None,
        None,
        errors.INVALID_REQUEST_ERROR,
        "$context.error.responseType",
    ),
    ErrorResponse(
        apigw.ResponseType.DEFAULT_5_XX,
        None,
        None,
        errors.SERVER_ERROR,
        "$context.error.responseType",
    ),
)

# Minimal shape of a chat completion request. The gateway Lambda validates the whole body; this
# lets API Gateway refuse obviously malformed requests before they cost an invocation.
CHAT_COMPLETION_REQUEST_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="ChatCompletionRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["model", "messages"],
    properties={
        "model": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1),
        "messages": apigw.JsonSchema(type=apigw.JsonSchemaType.ARRAY, min_items=1),
    },
)

EMBEDDINGS_REQUEST_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="EmbeddingsRequest",
    type=apigw.JsonSchemaType.OBJECT,
    required=["model", "input"],
    properties={"model": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1)},
)

# Rules of the AWS managed Common rule set that only count. SizeRestrictions_BODY blocks bodies over
# 8 KB, and an LLM gateway's prompts are routinely larger. The other *_BODY rules match HTML,
# script, paths and URLs anywhere in the body, which prompts about code carry all the time; the
# body here is text for a model, never rendered, executed or used as a path by the gateway.
COMMON_RULES_COUNT_ONLY: Sequence[str] = (
    "SizeRestrictions_BODY",
    "CrossSiteScripting_BODY",
    "GenericLFI_BODY",
    "GenericRFI_BODY",
    "EC2MetaDataSSRF_BODY",
)

ACCESS_LOG_FIELDS: Mapping[str, str] = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "principalId": "$context.authorizer.principalId",
    "apiKeyId": "$context.identity.apiKeyId",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "xrayTraceId": "$context.xrayTraceId",
}


_MESSAGE_PLACEHOLDER = "__SWITCHBOARD_MESSAGE__"


BODY_TOO_LARGE_RESPONSE_KEY = "request_too_large"
BODY_SIZE_RULE = "RequestBodyOverLimit"


def body_too_large_json() -> str:
    """The WAF's 413 body: the catalogue's (WAF custom responses cannot carry the request id)."""
    return errors.REQUEST_TOO_LARGE.json()


def body_size_guard_rule() -> wafv2.CfnWebACL.RuleProperty:
    """413 for a ``Content-Length`` over :data:`MAX_REQUEST_BODY_BYTES`, before API Gateway invokes
    anything. WAF inspects at most the first 64 KB of a body, so it compares the declared length,
    as a number, with a regular expression (``larger_than_pattern``)."""
    return wafv2.CfnWebACL.RuleProperty(
        name=BODY_SIZE_RULE,
        priority=0,
        action=wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                    response_code=413,
                    custom_response_body_key=BODY_TOO_LARGE_RESPONSE_KEY,
                )
            )
        ),
        statement=wafv2.CfnWebACL.StatementProperty(
            regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                regex_string=larger_than_pattern(MAX_REQUEST_BODY_BYTES),
                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(single_header={"Name": "content-length"}),
                text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
            )
        ),
        visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=BODY_SIZE_RULE, sampled_requests_enabled=True
        ),
    )


def error_body(error: ErrorResponse) -> str:
    """The response template: OpenAI's error object plus API Gateway's request id.

    Without a message of our own, API Gateway's ``$context.error.messageString`` (the message as a
    quoted JSON string) goes in unquoted, so the body stays valid JSON.
    """
    body = json.dumps(
        {
            "error": {
                "message": error.message if error.message is not None else _MESSAGE_PLACEHOLDER,
                "type": error.type,
                "param": None,
                "code": error.code,
                "request_id": "$context.requestId",
            }
        },
        separators=(",", ":"),
    )
    return body.replace(f'"{_MESSAGE_PLACEHOLDER}"', "$context.error.messageString")


class GatewayApi(Construct):
    """REGIONAL REST API in front of the gateway Lambda.

    - ``POST /v1/chat/completions``, ``POST /v1/embeddings`` and ``GET /v1/models``, Lambda proxy
      integration (one function: the gateway) with ``responseTransferMode: STREAM``: chat
      completions stream (``stream: true``) for up to 15 minutes; the other two answer whole
      within 29 s.
    - REQUEST authorizer on ``Authorization``; its answer is cached ``authorizer_cache_ttl`` per
      header value, so a revoked key keeps working for at most that TTL.
    - ``apiKeySource: AUTHORIZER`` and ``apiKeyRequired`` on every method: the authorizer returns
      the tenant's usage-plan key as ``usageIdentifierKey`` and the plan's throttle applies.
    - One usage plan per tier, on this stage.
    - OpenAI-shaped bodies for every error API Gateway produces itself.
    - JSON access logs, execution logs at ERROR without data tracing (prompts stay out of the logs),
      X-Ray.
    - A WAF web ACL, always: its first rule refuses a ``Content-Length`` over the body limit with 413
      (:func:`body_size_guard_rule`). With ``waf_enabled``, also the AWS managed Common and
      Known-bad-inputs rule sets, with the Common set's
      ``SizeRestrictions_BODY`` (refuses bodies over 8 KB) and its other body-content rules switched
      to Count (see :data:`COMMON_RULES_COUNT_ONLY`) so long prompts and prompts about code pass.

    Attributes:
        rest_api, stage, authorizer, usage_plans (tier → plan), access_log_group, web_acl (or None),
        chat_completions_method, models_method.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        gateway_function: lambda_.IFunction,
        authorizer_function: lambda_.IFunction,
        throttling: Mapping[str, TierThrottle],
        stage_name: str = "prod",
        api_name: str = "switchboard",
        authorizer_cache_ttl: Duration | None = None,
        waf_enabled: bool = True,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            gateway_function: serves every route (proxy integration).
            authorizer_function: the REQUEST authorizer.
            throttling: tier → rate, burst and optional daily quota; one usage plan each.
            stage_name: the deployment stage (part of the URL).
            api_name: the REST API's name.
            authorizer_cache_ttl: API Gateway's cache of authorizer answers (default 60 s; 0 disables it).
            waf_enabled: create and associate the WAF web ACL.
            log_retention / log_removal_policy: the access log group.
        """
        super().__init__(scope, construct_id)
        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=api_name,
            description="Switchboard: OpenAI-compatible LLM gateway",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            # API Gateway needs an account-level role to write access and execution logs.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        self.stage = self.rest_api.deployment_stage
        checkov.skip_check(
            self.stage,
            "CKV_AWS_120",
            "No stage cache: responses are LLM completions answered per tenant and per request; caching "
            "them at the stage would serve one tenant's answer to another and freeze routing decisions. "
            "Degraded-mode answer caching is done deliberately, in the request workflow's cache table.",
        )
        Validations.of(self.rest_api).acknowledge(
            Acknowledgment(
                id=f"{constants.NAG_IAM4}[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="The account-level role API Gateway uses to write logs: AWS's managed policy is "
                "the documented one and covers exactly log group creation and log writes.",
            )
        )

        self.authorizer = apigw.RequestAuthorizer(
            self,
            "KeyAuthorizer",
            handler=authorizer_function,
            identity_sources=[apigw.IdentitySource.header(constants.AUTHORIZATION_HEADER)],
            results_cache_ttl=authorizer_cache_ttl or Duration.seconds(60),
        )
        validator = self.rest_api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        # Every route streams its integration response (Lambda's InvokeWithResponseStream, URI
        # .../2021-11-15/functions/<arn>/response-streaming-invocations). The gateway runs under
        # Lambda Web Adapter with AWS_LWA_INVOKE_MODE=response_stream, which answers *every*
        # invocation in the streaming format (JSON prelude, eight NULs, body); a BUFFERED
        # integration (plain Invoke) would read that as a malformed proxy response. Whole answers
        # reach clients unchanged: STREAM only drops what this API does not use (endpoint caching,
        # content encoding, VTL response mapping; API Gateway's own error responses still apply).
        # lambda:InvokeFunction, the permission CDK adds per method, is the one
        # InvokeWithResponseStream requires (Lambda API reference).
        #
        # Timeouts: chat completions may stream for 15 minutes, the cap of a streamed response
        # (the 29 s limit does not apply to STREAM integrations); embeddings and models answer
        # whole within the gateway's request budget, so they keep API Gateway's 29 s.
        streamed = apigw.LambdaIntegration(
            gateway_function,
            proxy=True,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=Duration.seconds(constants.API_STREAM_TIMEOUT_S),
        )
        whole = apigw.LambdaIntegration(
            gateway_function,
            proxy=True,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            timeout=Duration.seconds(constants.API_INTEGRATION_TIMEOUT_S),
        )

        def post(
            path: tuple[str, ...], schema: apigw.JsonSchema, integration: apigw.LambdaIntegration
        ) -> apigw.Method:
            """A POST the gateway serves, its body checked first against `schema` (API Gateway's model)."""
            model = self.rest_api.add_model(
                schema.title or "", content_type="application/json", model_name=schema.title, schema=schema
            )
            return self._resource(path).add_method(
                "POST",
                integration,
                authorizer=self.authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
                api_key_required=True,
                request_validator=validator,
                request_models={"application/json": model},
            )

        self.chat_completions_method = post(
            constants.API_PATH_CHAT_COMPLETIONS, CHAT_COMPLETION_REQUEST_SCHEMA, streamed
        )
        self.embeddings_method = post(constants.API_PATH_EMBEDDINGS, EMBEDDINGS_REQUEST_SCHEMA, whole)
        models = self._resource(constants.API_PATH_MODELS)
        self.models_method = models.add_method(
            "GET",
            whole,
            authorizer=self.authorizer,
            authorization_type=apigw.AuthorizationType.CUSTOM,
            api_key_required=True,
            request_validator=validator,
        )
        Validations.of(self.rest_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-COG4",
                reason="Clients are applications holding Switchboard API keys (OpenAI SDK style bearer "
                "keys), not Cognito users: a Lambda REQUEST authorizer checks the SHA-256 of the key "
                "against the keys table and returns the tenant's usage-plan key.",
            )
        )

        for error in GATEWAY_ERRORS:
            self.rest_api.add_gateway_response(
                f"Error{error.response_type.response_type}".replace("_", ""),
                type=error.response_type,
                status_code=None if error.status is None else str(error.status),
                response_headers={"Content-Type": "'application/json'"},
                templates={"application/json": error_body(error)},
            )

        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        for tier, limits in throttling.items():
            self.usage_plans[tier] = self.rest_api.add_usage_plan(
                f"UsagePlan{tier.capitalize()}",
                name=f"{api_name}-{tier}",
                description=f"Switchboard {tier} tier",
                throttle=apigw.ThrottleSettings(rate_limit=limits.rate_limit, burst_limit=limits.burst_limit),
                quota=(
                    apigw.QuotaSettings(limit=limits.quota_per_day, period=apigw.Period.DAY)
                    if limits.quota_per_day
                    else None
                ),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
            )

        # Always a web ACL: the body-size guard must run in front of Lambda (switchboard.limits);
        # waf_enabled adds the AWS managed rule groups.
        self.web_acl = self._web_acl(api_name, managed_rules=waf_enabled)
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _resource(self, path: Sequence[str]) -> apigw.IResource:
        resource: apigw.IResource = self.rest_api.root
        for part in path:
            resource = resource.get_resource(part) or resource.add_resource(part)
        return resource

    def _web_acl(self, api_name: str, *, managed_rules: bool) -> wafv2.CfnWebACL:
        def managed(name: str, priority: int, overrides: Sequence[str] = ()) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in overrides
                        ]
                        or None,
                    )
                ),
                visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                    cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
                ),
            )

        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{api_name}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description="Switchboard API - AWS managed rules, body rules count only",
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"{api_name}-api", sampled_requests_enabled=True
            ),
            custom_response_bodies={
                BODY_TOO_LARGE_RESPONSE_KEY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=body_too_large_json()
                )
            },
            rules=[
                body_size_guard_rule(),
                *(
                    [
                        managed("AWSManagedRulesCommonRuleSet", 10, overrides=COMMON_RULES_COUNT_ONLY),
                        managed("AWSManagedRulesKnownBadInputsRuleSet", 20),
                    ]
                    if managed_rules
                    else []
                ),
            ],
        )
