"""The alarms that roll a model deployment back, per family.

SageMaker watches them during a blue/green update (``AutoRollbackConfiguration``) and returns the
endpoint to its old config when one fires; the workflow reads them again after an adapter's bake.
Two watch the endpoint (5xx errors, p90 latency), one the gateway's own errors calling the family's
option: a metric filter on the invoke step's "candidate failed" log lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.logical_ids import keep_logical_ids
from switchboard.contract.model_deployment import ALARM_SUFFIXES, alarm_names

__all__ = ["ALARM_SPECS", "ALARM_SUFFIXES", "AlarmSpec", "RollbackAlarms", "alarm_names"]
from switchboard.lifecycle.model import ModelFamily

OPTION_ERRORS_NAMESPACE = "Switchboard/Models"
OPTION_ERRORS_METRIC = "OptionErrors"


@dataclass(frozen=True, slots=True)
class RollbackThresholds:
    """When a deployment rolls back (per minute unless stated)."""

    errors_5xx: int = 5
    """Invocation5XXErrors in a minute."""
    latency_p90_ms: int = 10_000
    """ModelLatency p90, over 3 minutes."""
    gateway_errors: int = 5
    """The option's gateway-side errors in a minute."""


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    """One rollback alarm of a family, before the family is known."""

    name_suffix: str
    """The alarm is named ``<prefix><group>-<name_suffix>`` (the ASL formats the same names)."""
    construct_id: str
    description: Callable[[ModelFamily], str]
    namespace: str
    metric_name: str
    dimensions: Callable[[ModelFamily], Mapping[str, str]]
    statistic: str
    threshold: Callable[[RollbackThresholds], float]
    evaluation_periods: int
    comparison: cloudwatch.ComparisonOperator


def _endpoint_variant(family: ModelFamily) -> Mapping[str, str]:
    return {"EndpointName": family.endpoint_name, "VariantName": family.variant_name}


ALARM_SPECS: tuple[AlarmSpec, ...] = (
    AlarmSpec(
        name_suffix="invocation-5xx",
        construct_id="Errors5xx",
        description=lambda f: f"{f.endpoint_name}: model 5xx errors (rolls a deployment back)",
        namespace="AWS/SageMaker",
        metric_name="Invocation5XXErrors",
        dimensions=_endpoint_variant,
        statistic="Sum",
        threshold=lambda t: t.errors_5xx,
        evaluation_periods=1,
        comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ),
    AlarmSpec(
        name_suffix="model-latency",
        construct_id="Latency",
        description=lambda f: f"{f.endpoint_name}: model latency p90 (rolls a deployment back)",
        namespace="AWS/SageMaker",
        metric_name="ModelLatency",  # microseconds
        dimensions=_endpoint_variant,
        statistic="p90",
        threshold=lambda t: t.latency_p90_ms * 1000,
        evaluation_periods=3,
        comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    ),
    AlarmSpec(
        name_suffix="gateway-errors",
        construct_id="GatewayErrors",
        description=lambda f: f"Gateway-side errors calling option {f.option_id} (rolls back)",
        namespace=OPTION_ERRORS_NAMESPACE,
        metric_name=OPTION_ERRORS_METRIC,
        dimensions=lambda f: {"Option": f.option_id},
        statistic="Sum",
        threshold=lambda t: t.gateway_errors,
        evaluation_periods=1,
        comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ),
)
if tuple(spec.name_suffix for spec in ALARM_SPECS) != ALARM_SUFFIXES:
    raise AssertionError("ALARM_SPECS must name the contract's ALARM_SUFFIXES, in the ASL's order")


class RollbackAlarms(Construct):
    """Three named alarms per family, and the metric filter behind the gateway-side one.

    Attributes:
        alarms: group → its alarms, in :data:`ALARM_SPECS` order.
        option_errors_filter: the metric filter on the invoke step's log group (None without it).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        families: Sequence[ModelFamily],
        alarm_name_prefix: str,
        thresholds: RollbackThresholds,
        invoke_log_group: logs.ILogGroup | None = None,
        specs: Sequence[AlarmSpec] = ALARM_SPECS,
    ) -> None:
        """
        Args:
            families: the model families.
            alarm_name_prefix: alarm names are ``<prefix><group>-<suffix>``.
            thresholds: when a deployment rolls back.
            invoke_log_group: the invoke step's log group; its "candidate failed" lines give the
                per-option gateway-side error metric (the alarm then has no data without it).
            specs: which of :data:`ALARM_SPECS` to create (a family's other regions take only the
                endpoint alarms: the gateway-side metric is in the stack's region).
        """
        super().__init__(scope, construct_id)
        self.option_errors_filter: logs.MetricFilter | None = None
        if invoke_log_group is not None:
            self.option_errors_filter = logs.MetricFilter(
                self,
                "OptionErrorsFilter",
                log_group=invoke_log_group,
                filter_pattern=logs.FilterPattern.string_value("$.message", "=", "candidate failed"),
                metric_namespace=OPTION_ERRORS_NAMESPACE,
                metric_name=OPTION_ERRORS_METRIC,
                metric_value="1",
                dimensions={"Option": "$.option_id"},
            )
        self.alarms: dict[str, list[cloudwatch.Alarm]] = {}
        for family in families:
            names = dict(zip(ALARM_SUFFIXES, alarm_names(alarm_name_prefix, family.group), strict=True))
            self.alarms[family.group] = [
                self._alarm(spec, family, names[spec.name_suffix], thresholds) for spec in specs
            ]
        keep_logical_ids(self)

    @property
    def alarm_arns(self) -> list[str]:
        return [alarm.alarm_arn for alarms in self.alarms.values() for alarm in alarms]

    def _alarm(
        self, spec: AlarmSpec, family: ModelFamily, name: str, thresholds: RollbackThresholds
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            f"{spec.construct_id}-{family.group}",
            alarm_name=name,
            alarm_description=spec.description(family),
            metric=cloudwatch.Metric(
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions_map=dict(spec.dimensions(family)),
                statistic=spec.statistic,
                period=Duration.minutes(1),
            ),
            threshold=spec.threshold(thresholds),
            evaluation_periods=spec.evaluation_periods,
            comparison_operator=spec.comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
