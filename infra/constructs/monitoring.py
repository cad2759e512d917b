"""Alarms and the dashboard an on-call engineer reads during an incident.

The custom metrics are EMF metrics the Lambda code emits with Powertools: namespace
``Switchboard``, dimension ``service=switchboard``, names declared once in
:mod:`switchboard.contract.metrics` (imported here and by the code that emits them). Provider
latency also carries an ``option`` dimension; the dashboard finds every option with a SEARCH
expression.

Fail-open is visible: every degraded-dependency event
(:data:`switchboard.contract.metrics.DEGRADED_DEPENDENCY_EVENTS`) is on the dashboard and behind an
alarm; serving routing or the options catalogue from last-known-good for ``last_known_good_minutes``
consecutive minutes pages the on-call.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from switchboard.contract import metrics as metric_names

PERIOD = Duration.minutes(5)
MINUTE = Duration.minutes(1)
DEFAULT_LAST_KNOWN_GOOD_MINUTES = 10


def switchboard_metric(
    metric_name: str,
    *,
    statistic: str = cloudwatch.Stats.SUM,
    label: str | None = None,
    period: Duration = PERIOD,
) -> cloudwatch.Metric:
    """One of the Lambda code's EMF metrics (dimension ``service`` only), over :data:`PERIOD`."""
    return cloudwatch.Metric(
        namespace=metric_names.NAMESPACE,
        metric_name=metric_name,
        dimensions_map={metric_names.SERVICE_DIMENSION: metric_names.SERVICE},
        statistic=statistic,
        period=period,
        label=label,
    )


def any_of_per_minute(names: tuple[str, ...], label: str) -> cloudwatch.MathExpression:
    """How many of ``names``' events happened in each minute (missing metrics count as 0)."""
    # Ids named after the metric: unique in a graph that shows several of these expressions.
    ids = {name[0].lower() + name[1:]: name for name in names}
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({metric_id}, 0)" for metric_id in ids),
        using_metrics={metric_id: switchboard_metric(name, period=MINUTE) for metric_id, name in ids.items()},
        label=label,
        period=MINUTE,
    )


def degraded_metric_names() -> list[str]:
    """``DegradedAnswer_<kind>`` for each degraded kind (the ``x-switchboard-degraded`` values)."""
    return [metric_names.degraded_answer(kind) for kind in metric_names.DEGRADED_KINDS]


def provider_error_metric_names() -> list[str]:
    """``ProviderError_<class>`` for each provider error class."""
    return [metric_names.provider_error(cls) for cls in metric_names.PROVIDER_ERROR_CLASSES]


def provider_latency_search(statistic: str) -> str:
    """A SEARCH over every option's ``ProviderLatency`` (dimensions ``option`` and ``service``)."""
    schema = f"{metric_names.NAMESPACE},{metric_names.OPTION_DIMENSION},{metric_names.SERVICE_DIMENSION}"
    return (
        f'SEARCH(\'{{{schema}}} MetricName="{metric_names.PROVIDER_LATENCY}" '
        f'{metric_names.SERVICE_DIMENSION}="{metric_names.SERVICE}"\', '
        f"'{statistic}', {int(PERIOD.to_seconds())})"
    )


def metering_row() -> list[cloudwatch.IWidget]:
    """Metering failures (fail-open: usage not recorded) and the requests limits and budgets refused."""
    return [
        cloudwatch.GraphWidget(
            title="Metering failures (usage not recorded)",
            left=[switchboard_metric(metric_names.METERING_FAILED, label="metering failed")],
            width=8,
            height=6,
        ),
        cloudwatch.GraphWidget(
            title="Refused by limits and budgets (429)",
            left=[
                switchboard_metric(metric_names.RATE_LIMITED, label="rate limited (rpm/tpm)"),
                switchboard_metric(metric_names.BUDGET_EXHAUSTED, label="budget exhausted (reject)"),
            ],
            stacked=True,
            width=8,
            height=6,
        ),
    ]


class Monitoring(Construct):
    """An encrypted SNS alarm topic, the incident alarms, and one CloudWatch dashboard.

    Alarms (each notifies :attr:`alarm_topic`):
        - ``circuit_opened_alarm``: ``CircuitOpened`` Sum over 5 minutes ≥ 1.
        - ``degraded_rate_alarm``: (``DegradedAnswer_cache`` + ``_static`` + ``_smaller_model`` +
          ``Rejected_NoHealthyOption``) / ``ChatCompletions`` above ``degraded_rate_percent`` in 3
          consecutive 5-minute periods; no traffic is not an incident (missing data: not breaching).
        - ``workflow_failed_alarm``: the request workflow's ``ExecutionsFailed`` ≥ 1 (a failed run
          means the ASL itself broke: every expected failure is caught and answered).
        - ``gateway_errors_alarm``: the gateway Lambda's ``Errors`` Sum over 5 minutes ≥
          ``gateway_errors_threshold``.
        - ``routing_answer_invalid_alarm``: ``RoutingAnswerInvalid`` Sum over 5 minutes ≥ 1 (the
          AppConfig extension answered flags the gateway refused: it serves last-known-good).
        - ``routing_last_known_good_alarm``: routing served from last-known-good or the deploy-time
          default (``RoutingLastKnownGood`` + ``RoutingEnvironmentDefault``) in each of
          ``last_known_good_minutes`` consecutive minutes: the AppConfig extension keeps failing.
        - ``options_last_known_good_alarm``: the options catalogue unreadable (``OptionsRefreshFailed``
          + ``OptionsLastKnownGood`` + ``OptionsCatalogueUnavailable``) in each of
          ``last_known_good_minutes`` consecutive minutes: options served from a stale snapshot, or
          (no snapshot) chains passed unchecked and candidates skipped.
        - ``circuit_store_unavailable_alarm``: ``CircuitStoreUnavailable`` in each of
          ``last_known_good_minutes`` consecutive minutes: every circuit fails open (CLOSED), so a
          failing option is no longer skipped.
        - ``adapter_lookup_failed_alarm``: ``AdapterLookupFailed`` in each of
          ``last_known_good_minutes`` consecutive minutes: tenants of adapter families served by a
          stale row or the base component.
        - ``routing_unavailable_alarm``: ``RoutingUnavailable`` Sum over 5 minutes ≥ 1: no routing
          answer and no fallback, callers got 503.
        - ``metering_failed_alarm``: ``MeteringFailed`` Sum over 5 minutes ≥ 1: usage of answered
          requests went unrecorded (metering fails open; usage and budgets run short).

    The topic is encrypted with a customer-managed KMS key: CloudWatch cannot publish to a topic
    under the AWS-managed ``alias/aws/sns`` key, whose policy cannot be changed. The key policy and
    the topic policy let ``cloudwatch.amazonaws.com`` use them for this account's alarms only.

    Attributes:
        alarm_topic, alarm_key, dashboard, the alarms above, and ``alarms`` (all of them).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        gateway_function: lambda_.IFunction,
        functions: Mapping[str, lambda_.IFunction],
        dashboard_name: str,
        degraded_rate_percent: float = 5,
        gateway_errors_threshold: int = 5,
        last_known_good_minutes: int = DEFAULT_LAST_KNOWN_GOOD_MINUTES,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """
        Args:
            state_machine: the request workflow.
            gateway_function: the gateway Lambda (errors alarm).
            functions: label → function, for the dashboard's Lambda errors and duration widgets.
            dashboard_name: the dashboard's name (``Switchboard-<stack>``).
            degraded_rate_percent: the degraded-answer rate (percent of chat completions) that alarms.
            gateway_errors_threshold: gateway errors per 5 minutes that alarm.
            last_known_good_minutes: consecutive minutes of serving last-known-good (routing,
                options) or failing open (circuits) before the alarm; 1 to 1440 (CloudWatch's
                evaluation window for 1-minute periods is at most a day).
            removal_policy: of the topic's KMS key.
        """
        super().__init__(scope, construct_id)
        if not 1 <= last_known_good_minutes <= 1440:
            raise ValueError(f"last_known_good_minutes must be 1..1440, got {last_known_good_minutes}")
        alarms_of_this_account = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": alarms_of_this_account},
        }

        self.alarm_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Switchboard alarm topic: SNS encryption at rest",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
        # (alarm actions to an encrypted topic: the key must let CloudWatch encrypt messages).
        self.alarm_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_our_alarms,
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Switchboard alarms",
            master_key=self.alarm_key,
            enforce_ssl=True,
        )
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions=from_our_alarms,
            )
        )
        action = cw_actions.SnsAction(self.alarm_topic)

        self.circuit_opened_alarm = cloudwatch.Alarm(
            self,
            "CircuitOpened",
            alarm_description="A candidate's circuit opened: an LLM option is failing and is skipped "
            "(see the dashboard's provider errors and the circuit table's events).",
            metric=switchboard_metric(metric_names.CIRCUIT_OPENED),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        degraded_ids = {f"d{i}": name for i, name in enumerate(degraded_metric_names())}
        degraded_ids["rejected"] = metric_names.REJECTED_NO_HEALTHY_OPTION
        numerator = " + ".join(f"FILL({metric_id}, 0)" for metric_id in degraded_ids)
        self.degraded_rate = cloudwatch.MathExpression(
            expression=f"100 * ({numerator}) / (FILL(chat, 0) + FILL(embeddings, 0))",
            using_metrics={
                **{metric_id: switchboard_metric(name) for metric_id, name in degraded_ids.items()},
                "chat": switchboard_metric(metric_names.CHAT_COMPLETIONS),
                "embeddings": switchboard_metric(metric_names.EMBEDDINGS_REQUESTS),
            },
            label="Degraded or rejected (% of requests)",
            period=PERIOD,
        )
        self.degraded_rate_alarm = cloudwatch.Alarm(
            self,
            "DegradedRate",
            alarm_description=f"More than {degraded_rate_percent:g}% of requests were answered "
            "degraded (cache, static, smaller model) or rejected with no healthy option, for 15 minutes.",
            metric=self.degraded_rate,
            threshold=degraded_rate_percent,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        self.workflow_failed_alarm = cloudwatch.Alarm(
            self,
            "WorkflowFailed",
            alarm_description="Request workflow executions failed: the gateway answered 5xx.",
            metric=state_machine.metric_failed(period=PERIOD, statistic=cloudwatch.Stats.SUM),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        self.gateway_errors_alarm = cloudwatch.Alarm(
            self,
            "GatewayErrors",
            alarm_description="The gateway Lambda raised errors (callers got API Gateway's 5xx).",
            metric=gateway_function.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
            threshold=gateway_errors_threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.routing_answer_invalid_alarm = cloudwatch.Alarm(
            self,
            "RoutingAnswerInvalid",
            alarm_description="The AppConfig extension answered routing flags the gateway refused (see "
            "the gateway's RoutingAnswerInvalid log lines): routing is served from last-known-good.",
            metric=switchboard_metric(metric_names.ROUTING_ANSWER_INVALID),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        minutes = last_known_good_minutes
        self.routing_fallbacks = any_of_per_minute(
            (metric_names.ROUTING_LAST_KNOWN_GOOD, metric_names.ROUTING_ENVIRONMENT_DEFAULT),
            "routing served from last-known-good or the deploy-time default",
        )
        self.routing_last_known_good_alarm = self._sustained(
            "RoutingLastKnownGood",
            self.routing_fallbacks,
            minutes,
            f"Routing served from last-known-good (or the deploy-time default routes) for {minutes} "
            "minutes: the AppConfig extension keeps failing or answering flags the gateway refuses. "
            "Flag changes made now do not reach callers (see the gateway's RoutingLastKnownGood logs).",
        )
        self.profiles_fallbacks = any_of_per_minute(
            (
                metric_names.PROFILES_ANSWER_INVALID,
                metric_names.PROFILES_LAST_KNOWN_GOOD,
                metric_names.PROFILES_BUILT_IN_DEFAULT,
            ),
            "prompt profiles not current",
        )
        self.profiles_last_known_good_alarm = self._sustained(
            "ProfilesLastKnownGood",
            self.profiles_fallbacks,
            minutes,
            f"Tenant prompt profiles have not been read from the AppConfig extension for {minutes} "
            "minutes: the gateway applies the last good document (or, never having read one, no "
            "prefix, no defaults and every route). Profile changes made now do not apply.",
        )
        self.options_fallbacks = any_of_per_minute(
            (
                metric_names.OPTIONS_REFRESH_FAILED,
                metric_names.OPTIONS_LAST_KNOWN_GOOD,
                metric_names.OPTIONS_CATALOGUE_UNAVAILABLE,
            ),
            "options catalogue unreadable",
        )
        self.options_last_known_good_alarm = self._sustained(
            "OptionsLastKnownGood",
            self.options_fallbacks,
            minutes,
            f"The options catalogue (DynamoDB) has been unreadable for {minutes} minutes: the gateway "
            "and the invoke step serve options from last-known-good (option edits do not apply), or "
            "with no snapshot skip the catalogue checks.",
        )
        self.circuit_store_failures = any_of_per_minute(
            (metric_names.CIRCUIT_STORE_UNAVAILABLE,), "circuit table unavailable (failing open)"
        )
        self.circuit_store_unavailable_alarm = self._sustained(
            "CircuitStoreUnavailable",
            self.circuit_store_failures,
            minutes,
            f"The circuit table has been unavailable for {minutes} minutes: every circuit fails open "
            "(CLOSED), so failing options are called instead of skipped.",
        )
        self.capacity_store_failures = any_of_per_minute(
            (metric_names.CAPACITY_STORE_UNAVAILABLE,), "usage table unavailable for capacity (failing open)"
        )
        self.capacity_store_unavailable_alarm = self._sustained(
            "CapacityStoreUnavailable",
            self.capacity_store_failures,
            minutes,
            f"The usage table has not taken options' capacity for {minutes} minutes: candidates are "
            "called uncounted (fail-open), so an option can go past its share of the provider quota "
            "and be throttled instead of skipped.",
        )
        self.adapter_lookup_failures = any_of_per_minute(
            (metric_names.ADAPTER_LOOKUP_FAILED,), "tenant adapters table unreadable (serving the base)"
        )
        self.adapter_lookup_failed_alarm = self._sustained(
            "AdapterLookupFailed",
            self.adapter_lookup_failures,
            minutes,
            f"The tenant adapters table has been unreadable for {minutes} minutes: tenants of adapter "
            "families are served by the last adapter read for them or by the base component (fail-open), "
            "so adapter approvals and rollbacks made now do not reach requests.",
        )
        self.routing_unavailable_alarm = cloudwatch.Alarm(
            self,
            "RoutingUnavailable",
            alarm_description="Requests were refused with 503: no routing answer from the AppConfig "
            "extension and no last-known-good or default routes to fall back on.",
            metric=switchboard_metric(metric_names.ROUTING_UNAVAILABLE),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.metering_failed_alarm = cloudwatch.Alarm(
            self,
            "MeteringFailed",
            alarm_description="Answered requests whose usage could not be recorded (the usage table was "
            "unreachable, throttled or refused the write): metering fails open, so usage, cost and the "
            "budgets that read them are short by those requests (see the MeteringFailed log lines).",
            metric=switchboard_metric(metric_names.METERING_FAILED),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms = (
            self.circuit_opened_alarm,
            self.degraded_rate_alarm,
            self.workflow_failed_alarm,
            self.gateway_errors_alarm,
            self.routing_answer_invalid_alarm,
            self.routing_last_known_good_alarm,
            self.options_last_known_good_alarm,
            self.profiles_last_known_good_alarm,
            self.circuit_store_unavailable_alarm,
            self.capacity_store_unavailable_alarm,
            self.adapter_lookup_failed_alarm,
            self.routing_unavailable_alarm,
            self.metering_failed_alarm,
        )
        for alarm in self.alarms:
            alarm.add_alarm_action(action)

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.hours(3),
            widgets=self._widgets(state_machine, functions),
        )

    def _sustained(
        self, construct_id: str, per_minute: cloudwatch.MathExpression, minutes: int, description: str
    ) -> cloudwatch.Alarm:
        """An alarm when ``per_minute`` is ≥ 1 in each of ``minutes`` consecutive minutes.

        No data is no event (the metrics are emitted only when something fails), so missing data
        is not breaching: one quiet minute restarts the count.
        """
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=per_minute,
            threshold=1,
            evaluation_periods=minutes,
            datapoints_to_alarm=minutes,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _widgets(
        self, state_machine: sfn.IStateMachine, functions: Mapping[str, lambda_.IFunction]
    ) -> list[list[cloudwatch.IWidget]]:
        def graph(
            title: str,
            metrics: list[cloudwatch.IMetric],
            *,
            right: list[cloudwatch.IMetric] | None = None,
            stacked: bool = False,
        ) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title, left=metrics, right=right, stacked=stacked, width=8, height=6
            )

        def stacked_by_kind(title: str, names: list[str], prefix: str) -> cloudwatch.GraphWidget:
            """One stacked series per metric of a family, labelled with what follows the prefix."""
            return graph(
                title, [switchboard_metric(n, label=n.removeprefix(prefix)) for n in names], stacked=True
            )

        traffic: list[cloudwatch.IWidget] = [
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3),
        ]
        requests: list[cloudwatch.IWidget] = [
            graph(
                "Requests",
                [
                    switchboard_metric(metric_names.CHAT_COMPLETIONS, label="chat completions"),
                    switchboard_metric(metric_names.EMBEDDINGS_REQUESTS, label="embeddings"),
                ],
                right=[self.degraded_rate],
            ),
            stacked_by_kind(
                "Degraded answers by kind", degraded_metric_names(), metric_names.DEGRADED_ANSWER_PREFIX
            ),
            graph(
                "Rejected (503, no healthy option)",
                [switchboard_metric(metric_names.REJECTED_NO_HEALTHY_OPTION, label="rejected")],
            ),
            graph(
                "Routing configuration fallbacks",
                [
                    switchboard_metric(metric_names.ROUTING_ANSWER_INVALID, label="invalid answer"),
                    switchboard_metric(metric_names.ROUTING_LAST_KNOWN_GOOD, label="last-known-good"),
                    switchboard_metric(metric_names.ROUTING_ENVIRONMENT_DEFAULT, label="deploy-time default"),
                    switchboard_metric(
                        metric_names.ROUTE_NAMES_UNKNOWN_OPTIONS, label="unknown option in chain"
                    ),
                    switchboard_metric(metric_names.ROUTING_UNAVAILABLE, label="no routing (503)"),
                ],
            ),
        ]
        # Streamed chat completions (issue 14) skip the request workflow, so its graphs do not see
        # them: these rows are their traffic, time to first token and how streams failed.
        streams: list[cloudwatch.IWidget] = [
            graph(
                "Streamed requests",
                [
                    switchboard_metric(metric_names.STREAMED_REQUESTS, label="streamed"),
                    switchboard_metric(metric_names.CHAT_COMPLETIONS, label="chat completions (all)"),
                ],
            ),
            graph(
                "Time to first token (p50, p99)",
                [
                    switchboard_metric(
                        metric_names.STREAM_TIME_TO_FIRST_TOKEN,
                        statistic=statistic,
                        label=f"{statistic} (ms)",
                    )
                    for statistic in ("p50", "p99")
                ],
            ),
            graph(
                "Stream failures",
                [
                    switchboard_metric(
                        metric_names.STREAM_FAILED_MID_STREAM, label="failed mid-stream (error event sent)"
                    ),
                    switchboard_metric(
                        metric_names.STREAM_FAILED_OVER, label="failed over before the first byte (invisible)"
                    ),
                ],
            ),
        ]
        fail_open: list[cloudwatch.IWidget] = [
            graph(
                "Serving last-known-good (events per minute)",
                [self.routing_fallbacks, self.options_fallbacks, self.circuit_store_failures],
            ),
            graph(
                "Options catalogue fallbacks",
                [
                    switchboard_metric(metric_names.OPTIONS_REFRESH_FAILED, label="refresh failed"),
                    switchboard_metric(metric_names.OPTIONS_LAST_KNOWN_GOOD, label="last-known-good"),
                    switchboard_metric(
                        metric_names.OPTIONS_CATALOGUE_UNAVAILABLE, label="no snapshot (unchecked)"
                    ),
                    switchboard_metric(metric_names.INVALID_OPTION_SKIPPED, label="invalid item skipped"),
                ],
            ),
            graph(
                "Circuit table (fail-open)",
                [
                    switchboard_metric(metric_names.CIRCUIT_STORE_UNAVAILABLE, label="unavailable"),
                    switchboard_metric(metric_names.CIRCUIT_STORE_CONTENTION, label="contention"),
                ],
            ),
            graph(
                "Tenant prompt profiles (fail-open)",
                [
                    switchboard_metric(metric_names.PROFILES_ANSWER_INVALID, label="answer refused"),
                    switchboard_metric(metric_names.PROFILES_LAST_KNOWN_GOOD, label="last-known-good"),
                    switchboard_metric(metric_names.PROFILES_BUILT_IN_DEFAULT, label="built-in default"),
                ],
            ),
            graph(
                "Option capacity",
                [
                    switchboard_metric(
                        metric_names.CANDIDATE_SATURATED, label="candidates skipped (saturated)"
                    ),
                    switchboard_metric(
                        metric_names.CAPACITY_STORE_UNAVAILABLE, label="usage table unavailable (uncounted)"
                    ),
                ],
            ),
            graph(
                "Tenant adapters",
                [
                    switchboard_metric(
                        metric_names.ADAPTER_LOOKUP_FAILED, label="table unreadable (last row or base)"
                    ),
                    switchboard_metric(metric_names.ADAPTER_FALLBACK, label="adapter failed, next tried"),
                ],
            ),
        ]
        providers: list[cloudwatch.IWidget] = [
            graph(
                "Circuit transitions",
                [
                    switchboard_metric(metric_names.CIRCUIT_OPENED, label="opened"),
                    switchboard_metric(metric_names.CIRCUIT_CLOSED, label="closed"),
                ],
            ),
            stacked_by_kind(
                "Provider errors by class",
                provider_error_metric_names(),
                metric_names.PROVIDER_ERROR_PREFIX,
            ),
            graph(
                "Provider latency by option (p50, p99)",
                [
                    cloudwatch.MathExpression(
                        expression=provider_latency_search(statistic),
                        using_metrics={},
                        # A dynamic label: one series per option, named after it.
                        label=f"${{PROP('Dim.{metric_names.OPTION_DIMENSION}')}} {statistic}",
                        period=PERIOD,
                    )
                    for statistic in ("p50", "p99")
                ],
            ),
        ]
        workflow: list[cloudwatch.IWidget] = [
            graph(
                "Request workflow executions",
                [
                    state_machine.metric_started(period=PERIOD, label="started"),
                    state_machine.metric_succeeded(period=PERIOD, label="succeeded"),
                    state_machine.metric_failed(period=PERIOD, label="failed"),
                    state_machine.metric_timed_out(period=PERIOD, label="timed out"),
                ],
            ),
            graph(
                "Request workflow duration (p50, p99)",
                [
                    state_machine.metric_time(period=PERIOD, statistic="p50", label="p50"),
                    state_machine.metric_time(period=PERIOD, statistic="p99", label="p99"),
                ],
            ),
        ]
        lambdas: list[cloudwatch.IWidget] = [
            graph(
                "Lambda errors",
                [fn.metric_errors(period=PERIOD, label=name) for name, fn in functions.items()],
            ),
            graph(
                "Lambda duration (p99)",
                [
                    fn.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in functions.items()
                ],
            ),
            graph(
                "Lambda throttles",
                [fn.metric_throttles(period=PERIOD, label=name) for name, fn in functions.items()],
            ),
        ]
        return [traffic, requests, streams, fail_open, metering_row(), providers, workflow, lambdas]
