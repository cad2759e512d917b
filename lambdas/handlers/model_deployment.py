"""The model-deployment workflow's Lambda tasks (one function, `action`): `plan`, `smoke`, `switch`, and
for tenant adapters `switch_tenant`, `revert_tenant`, `tenant_to_base` and the canary's
`start_canary`, `judge_canary`, `promote_canary`, `roll_back_canary`, and for the rollout to a
family's other regions `deploy_region`, `region_endpoint`, `roll_back_rollout`, and for an adapter
version there `create_region_adapter`, `region_adapter`, `switch_region_adapter_options`,
`roll_back_adapter_rollout`, `delete_region_adapters`, and after an adapter's bake
`regional_bake_alarms` (SageMaker and CloudWatch there are called with that region's clients: Step
Functions' SDK integrations reach only the stack's region).

Everything else the workflow does is a direct SDK integration. Errors are raised with the lifecycle's
own exception classes so the state machine can `Catch` them by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.lifecycle.service import LifecycleService
from switchboard.lifecycle.settings import LifecycleSettings
from switchboard.observability import keys_from_event, logger, tracer
from switchboard.selfcheck import is_selfcheck

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
ACTIONS = (
    "plan",
    "smoke",
    "switch",
    "switch_tenant",
    "revert_tenant",
    "tenant_to_base",
    "start_canary",
    "judge_canary",
    "promote_canary",
    "roll_back_canary",
    "deploy_region",
    "region_endpoint",
    "roll_back_rollout",
    "create_region_adapter",
    "region_adapter",
    "switch_region_adapter_options",
    "roll_back_adapter_rollout",
    "delete_region_adapters",
    "regional_bake_alarms",
)


def build_service(
    settings: LifecycleSettings,
    *,
    sagemaker: Any | None = None,
    runtime: Any | None = None,
    dynamodb: Any | None = None,
    cloudwatch: Any | None = None,
) -> LifecycleService:
    """The service with real clients unless given (tests and the local stack pass emulated ones)."""
    from switchboard import aws
    from switchboard.lifecycle.adapter_store import DynamoTenantAdapterStore
    from switchboard.lifecycle.canary import CloudWatchCanarySignals
    from switchboard.lifecycle.image_catalog import EcrImageCatalog
    from switchboard.lifecycle.registry import RegionalRegistries, SageMakerRegistry
    from switchboard.options.store import OptionsStore

    table_client = dynamodb or aws.client("dynamodb")
    home_sagemaker = sagemaker or aws.client("sagemaker")
    registry = SageMakerRegistry(home_sagemaker, runtime or aws.client("sagemaker-runtime"))
    # a family's other regions (issue 16): clients with region_name, made when a task names a region
    home_region = getattr(getattr(home_sagemaker, "meta", None), "region_name", None) or os.environ.get(
        "AWS_REGION", ""
    )
    return LifecycleService(
        families=settings.families,
        # ttl 0: every step reads the table (a deployment must see the option as it is now)
        options=OptionsStore(settings.options_table, client=table_client, ttl_s=0),
        registry=registry,
        registries=RegionalRegistries(
            home_region=home_region,
            home=registry,
            make_client=lambda service, region: aws.client(service, region_name=region),
        ),
        adapters=DynamoTenantAdapterStore(settings.adapters_table, client=table_client)
        if settings.adapters_table
        else None,
        signals=CloudWatchCanarySignals(cloudwatch or aws.client("cloudwatch")),
        # a canary in an adapter family's other regions is judged there too (issue 16)
        regional_signals=lru_cache(maxsize=None)(
            lambda region: CloudWatchCanarySignals(aws.client("cloudwatch", region_name=region))
        ),
        home_region=home_region,
        regional_artifact_buckets=settings.regional_artifact_buckets,
        execution_role_arn=settings.execution_role_arn,
        # the version's image in each other region is checked before anything moves (issue 16)
        images=EcrImageCatalog(lambda region: aws.client("ecr", region_name=region)),
    )


@lru_cache(maxsize=1)
def _service() -> LifecycleService:
    return build_service(LifecycleSettings.from_env())


def forget_cached_state() -> None:
    """Behave as a fresh execution environment: the next call builds clients and caches anew."""
    _service.cache_clear()


def dispatch(service: LifecycleService, event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action")
    if action == "plan":
        return service.plan(event)
    if action == "smoke":
        return service.smoke(event)
    if action == "switch":
        return service.switch(event)
    if action == "switch_tenant":
        return service.switch_tenant(event)
    if action == "revert_tenant":
        return service.revert_tenant(event)
    if action == "tenant_to_base":
        return service.tenant_to_base(event)
    if action == "start_canary":
        return service.start_canary(event)
    if action == "judge_canary":
        return service.judge_canary(event)
    if action == "promote_canary":
        return service.promote_canary(event)
    if action == "roll_back_canary":
        return service.roll_back_canary(event)
    if action == "deploy_region":
        return service.deploy_region(event)
    if action == "region_endpoint":
        return service.region_endpoint(event)
    if action == "roll_back_rollout":
        return service.roll_back_rollout(event)
    if action == "create_region_adapter":
        return service.create_region_adapter(event)
    if action == "region_adapter":
        return service.region_adapter(event)
    if action == "switch_region_adapter_options":
        return service.switch_region_adapter_options(event)
    if action == "roll_back_adapter_rollout":
        return service.roll_back_adapter_rollout(event)
    if action == "delete_region_adapters":
        return service.delete_region_adapters(event)
    if action == "regional_bake_alarms":
        return service.regional_bake_alarms(event)
    raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")


def make_handler(service: LifecycleService) -> Handler:
    """A handler bound to an explicit service (the local stack and tests)."""

    def bound(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return dispatch(service, event)

    return bound


@logger.inject_lambda_context
@keys_from_event(action="action", execution_id="execution_id")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck

        return selfcheck.report("model_deployment", settings=LifecycleSettings.from_env, init=_service)
    return dispatch(_service(), event)
