"""What the model-deployment workflow and whoever deploys it (CDK, the local stack) must agree on.

The ASL (``statemachines/model_deployment.asl.json``) names its ``${Placeholders}``, formats the
rollback alarms' names as ``${AlarmNamePrefix}<group>-<suffix>`` and is started by the EventBridge
detail type below. CDK (``infra/constructs/deployment_workflow.py``, ``rollback_alarms.py``) and the
local stack (``local/switchboard_local/lifecycle_local.py``) build their definitions from here, so a
renamed placeholder or alarm is one edit (a test holds the ASL to :func:`machine_substitutions`).
Stdlib only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Final

EVENT_DETAIL_TYPE: Final = "SageMaker Model Package State Change"
ALARM_SUFFIXES: Final = ("invocation-5xx", "model-latency", "gateway-errors")
"""The rollback alarms of one family, in the order the ASL's ``AlarmNames`` array lists them."""


def alarm_names(prefix: str, group: str) -> list[str]:
    """A family's rollback alarm names, as the ASL formats them."""
    return [f"{prefix}{group}-{suffix}" for suffix in ALARM_SUFFIXES]


@dataclass(frozen=True, slots=True)
class DeploymentSettings:
    """Blue/green and polling defaults (the ASL's DefinitionSubstitutions; input ``settings`` wins).

    CANARY: ``canary_percent`` of the new fleet takes traffic for ``wait_interval_seconds``, then the
    rest at once. LINEAR: steps of ``linear_step_percent`` (10-50) every ``wait_interval_seconds``.
    Keep ``max_polls * max_poll_seconds`` above ``maximum_execution_timeout_seconds``: a timeout
    then means a stuck endpoint, not a slow canary (:meth:`checked`; the local stack's tiny waits
    skip that check on purpose).
    """

    traffic_type: str = "CANARY"
    canary_percent: int = 10
    linear_step_percent: int = 20
    wait_interval_seconds: int = 600
    termination_wait_seconds: int = 300
    maximum_execution_timeout_seconds: int = 3600
    poll_seconds: int = 30
    max_poll_seconds: int = 120
    max_polls: int = 60
    bake_seconds: int = 900

    def checked(self) -> DeploymentSettings:
        """Itself, when SageMaker and the polling loops can honour it; else ValueError."""
        if self.traffic_type not in ("CANARY", "LINEAR"):
            raise ValueError("traffic_type must be CANARY or LINEAR")
        if not 1 <= self.canary_percent <= 50 or not 10 <= self.linear_step_percent <= 50:
            raise ValueError("canary_percent must be 1..50 and linear_step_percent 10..50")
        if self.max_polls * self.max_poll_seconds <= self.maximum_execution_timeout_seconds:
            raise ValueError("max_polls * max_poll_seconds must exceed maximum_execution_timeout_seconds")
        return self

    def with_overrides(self, overrides: dict[str, Any] | None) -> DeploymentSettings:
        return replace(self, **(overrides or {}))

    def substitutions(self) -> dict[str, str]:
        """The settings' placeholders (validated: what a deployed stack gets)."""
        return _settings_placeholders(self.checked())

    def as_input(self) -> dict[str, Any]:
        return asdict(self)


def _settings_placeholders(settings: DeploymentSettings) -> dict[str, str]:
    return {
        "TrafficRoutingType": settings.traffic_type,
        "CanaryPercent": str(settings.canary_percent),
        "LinearStepPercent": str(settings.linear_step_percent),
        "WaitIntervalSeconds": str(settings.wait_interval_seconds),
        "TerminationWaitSeconds": str(settings.termination_wait_seconds),
        "MaximumExecutionTimeoutSeconds": str(settings.maximum_execution_timeout_seconds),
        "PollSeconds": str(settings.poll_seconds),
        "MaxPollSeconds": str(settings.max_poll_seconds),
        "MaxPolls": str(settings.max_polls),
        "BakeSeconds": str(settings.bake_seconds),
    }


def machine_substitutions(
    *,
    function_arn: str,
    table: str,
    topic_arn: str,
    execution_role_arn: str,
    alarm_prefix: str,
    settings: DeploymentSettings,
    check: bool = True,
) -> dict[str, str]:
    """Every ``${Placeholder}`` of the deployment ASL, from the resources and the settings."""
    return {
        "DeploymentFunctionArn": function_arn,
        "DeploymentsTable": table,
        "NotificationTopicArn": topic_arn,
        "SageMakerExecutionRoleArn": execution_role_arn,
        "AlarmNamePrefix": alarm_prefix,
        **_settings_placeholders(settings.checked() if check else settings),
    }
