"""The steps the deployment workflow's Lambda tasks and the retirement Lambda run.

Each public method takes the task's JSON input and returns JSON for the state machine. The options
catalogue and the SageMaker registry are injected behind the two Protocols below, the tenant
adapters table behind ``switchboard.lifecycle.adapter_store.TenantAdapterStore``
(:class:`LifecycleService` is built once per execution environment by the handlers, by the local
stack with emulated clients, and by logic tests with the in-memory fakes of ``tests/fakes``).

Tenant adapters (issue 16): a version registered with ``--tenant T`` in an adapter family is T's
adapter. Its approval creates T's own inference component and moves T's item in the adapters table
(never the family's option, never another tenant's item); rejecting T's live adapter redeploys T's
newest remaining approved adapter, or returns T to the base model when there is none.

Adapter canaries (issue 16): an approved tenant adapter first runs as T's canary
(:meth:`LifecycleService.start_canary`: the gateway sends the family's ``canary.share_percent`` of
T's requests to it), the workflow bakes, :meth:`LifecycleService.judge_canary` reads the canary
component's metrics and the family's alarms (``switchboard.lifecycle.canary``), and
:meth:`LifecycleService.promote_canary` or :meth:`LifecycleService.roll_back_canary` ends it. Each
of the three writes is conditional on T's live adapter and T's canary as the workflow left them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from switchboard.lifecycle.adapter_store import (
    AdapterChange,
    AdapterRef,
    AdapterState,
    HistoryEvent,
    TenantAdapter,
    TenantAdapterStore,
    all_in_family,
    history_timestamp,
)
from switchboard.lifecycle.canary import (
    CanarySignals,
    ComponentSignals,
    Verdict,
    judge,
    metric_window,
    summed,
)
from switchboard.lifecycle.errors import LifecycleError, OptionMovedByAnotherDeployment, UnknownModelFamily
from switchboard.lifecycle.images import ImageCatalog, RolloutImages, account_of, check_rollout_images
from switchboard.lifecycle.logic import (
    ARCHIVED_STAGE,
    Decision,
    TenantPins,
    Trigger,
    plan_for_event,
    resource_names,
    select_owner_retirements,
    version_option_id,
    version_prefix,
)
from switchboard.lifecycle.model import Approval, FamilyKind, ModelFamily, PackageVersion
from switchboard.options.errors import VersionConflict
from switchboard.options.model import LlmOption, OptionStatus, ProviderKind
from switchboard.options.store import utc_timestamp

logger = logging.getLogger(__name__)

SMOKE_PROMPT = "Reply with the single word OK."
RETIREMENT_ACTOR = "model-retirement"


class BaseComponentMissing(LifecycleError):
    """An adapter family's endpoint or base inference component does not exist (deploy it first)."""


class NotATenantAdapterFamily(LifecycleError):
    """A version names a tenant, but its family is not an adapter family with tenant adapters."""


class CanaryNotJudged(LifecycleError):
    """The canary's signals could not be read (the workflow then rolls the canary back)."""


class VersionedOptions(Protocol):
    """The options catalogue as the lifecycle uses it: read one option, write it conditionally.

    ``switchboard.options.store.OptionsStore`` (built with ``ttl_s=0``: every step reads the table).
    """

    def get(self, option_id: str) -> LlmOption | None: ...

    def put(self, option: LlmOption, *, expected_version: int | None, updated_by: str) -> LlmOption:
        """Create (``expected_version`` None) or update; raises ``VersionConflict`` on a lost race."""


class ModelRegistry(Protocol):
    """The SageMaker calls the lifecycle makes (``switchboard.lifecycle.registry.SageMakerRegistry``)."""

    def describe_version(self, arn: str) -> PackageVersion: ...

    def list_versions(self, group: str) -> list[PackageVersion]:
        """Every version of the group, newest first."""

    def archive(self, arn: str, reason: str) -> None: ...

    def endpoint(self, name: str) -> dict[str, Any] | None:
        """``{"status", "config_name"}`` of an endpoint, or None when it does not exist."""

    def component_status(self, name: str) -> str | None:
        """An inference component's status, or None when it does not exist."""

    def components_named(self, endpoint_name: str, prefix: str) -> list[str]: ...

    def endpoint_configs_named(self, prefix: str) -> list[str]: ...

    def models_named(self, prefix: str) -> list[str]: ...

    def delete_component(self, name: str) -> bool:
        """True when deleted, False when it was already gone (the same for the two below)."""

    def delete_endpoint_config(self, name: str) -> bool: ...

    def delete_model(self, name: str) -> bool: ...

    def smoke_invoke(self, endpoint_name: str, component: str | None, prompt: str) -> int:
        """One tiny chat request; the answer's size. Raises ``SmokeTestFailed``."""

    def create_model(
        self, name: str, *, image: str, model_data_url: str, execution_role_arn: str
    ) -> None: ...

    def create_endpoint_config(
        self, name: str, *, model_name: str, variant_name: str, instance_type: str, instance_count: int
    ) -> None: ...

    def create_endpoint(self, name: str, config_name: str) -> None: ...

    def create_adapter_component(
        self, name: str, *, endpoint_name: str, base_component: str, artifact_url: str
    ) -> None:
        """A LoRA adapter's inference component on ``base_component`` (no compute of its own)."""

    def update_endpoint(
        self, name: str, config_name: str, deployment_config: dict[str, Any] | None = None
    ) -> None:
        """Guarded (blue/green, alarms) with ``deployment_config``, else a plain update."""


class LifecycleService:
    """Plan, smoke-test and switch one deployment; retire old versions."""

    def __init__(
        self,
        *,
        families: Mapping[str, ModelFamily],
        options: VersionedOptions,
        registry: ModelRegistry,
        adapters: TenantAdapterStore | None = None,
        signals: CanarySignals | None = None,
        registries: Callable[[str], ModelRegistry] | None = None,
        home_region: str = "",
        regional_artifact_buckets: Mapping[str, str] | None = None,
        execution_role_arn: str = "",
        regional_signals: Callable[[str], CanarySignals] | None = None,
        images: ImageCatalog | None = None,
    ) -> None:
        """
        Args:
            registry: SageMaker in the stack's region.
            registries: region → SageMaker there, for a family's other regions (multi-region
                rollout, issue 16); None: the stack's region only.
            home_region: the stack's region (where the registry, workflow and options table are).
            regional_artifact_buckets: region → the replica of the artifacts bucket there (the
                regional stacks' buckets): a version's model data is read from its region's replica.
            execution_role_arn: the role SageMaker assumes for the models made in other regions.
            regional_signals: region → the canary signals (CloudWatch) there: a tenant's canary in an
                adapter family with other regions is judged on its component in every region.
            images: ECR in each region (``EcrImageCatalog``): the rollout's plan checks that the
                account's own image exists in every other region before anything moves.
        """
        self.families = dict(families)
        self.options = options
        self.registry = registry
        self.adapters = adapters
        self.signals = signals
        self.registries = registries
        self.home_region = home_region
        self.regional_artifact_buckets = dict(regional_artifact_buckets or {})
        self.execution_role_arn = execution_role_arn
        self.regional_signals = regional_signals
        self.images = images

    def registry_in(self, region: str | None) -> ModelRegistry:
        """SageMaker in ``region``; None or "" is the stack's region (what every task used before)."""
        if not region:
            return self.registry
        if self.registries is None:
            raise LifecycleError(f"no SageMaker clients for region {region}: this service is single-region")
        return self.registries(region)

    def tenant_adapters(self, family: ModelFamily, tenant: str) -> TenantAdapterStore:
        """The adapters table, for a tenant's version of an adapter family (else a clear error)."""
        from switchboard.keys import validate_tenant

        try:
            validate_tenant(tenant)
        except ValueError as exc:
            raise NotATenantAdapterFamily(f"{family.group}: {exc}") from None
        if family.kind is not FamilyKind.ADAPTER:
            raise NotATenantAdapterFamily(
                f"{family.group} is a full-model family: only adapter families (base_component set) "
                f"take tenant adapters (the version names tenant {tenant!r})"
            )
        if self.adapters is None:
            raise NotATenantAdapterFamily("this stack has no tenant adapters table (ADAPTERS_TABLE)")
        return self.adapters

    def family(self, group: str) -> ModelFamily:
        try:
            return self.families[group]
        except KeyError:
            raise UnknownModelFamily(group) from None

    # -- deployment: PlanDeployment

    def plan(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """What this event asks for, and everything the rest of the workflow needs to do it.

        Input: ``{"event": {"arn", "status", "group"}, "execution_id"}``.
        """
        detail = event["event"]
        family = self.family(str(detail["group"]))
        current = self.registry.describe_version(str(detail["arn"]))
        tenant = current.tenant
        if tenant:
            record = self.tenant_adapters(family, tenant).get(family.group, tenant)
            serving = record.live if record else None
            live_arn = serving.package_arn if serving else None
            live_component = serving.component if serving else ""
        else:
            option = self.options.get(family.option_id)
            live_arn = option.model_package_arn if option else None
            live_component = (option.inference_component if option else None) or ""
        versions = self.registry.list_versions(family.group) if detail["status"] == "Rejected" else []
        decision = plan_for_event(
            event_arn=str(detail["arn"]),
            event_status=str(detail["status"]),
            current=current,
            live_arn=live_arn,
            versions=self._rollback_candidates(versions, rejected_arn=str(detail["arn"]), tenant=tenant),
            tenant=tenant,
        )
        endpoint = self.registry.endpoint(family.endpoint_name)
        target = decision.target
        if target is not None and target.arn != current.arn:
            target = self.registry.describe_version(target.arn)  # the summary lacks the containers
        live_version = (
            serving.version
            if tenant and serving
            else next((v.version for v in versions if v.arn == live_arn), 0)
        )
        adapter_deploy = decision.decision is Decision.DEPLOY and family.kind is FamilyKind.ADAPTER
        if adapter_deploy and (
            endpoint is None or self.registry.component_status(family.base_component or "") is None
        ):
            raise BaseComponentMissing(
                f"adapter family {family.group}: endpoint {family.endpoint_name} or base inference "
                f"component {family.base_component} does not exist"
            )
        names = resource_names(family.group, target.version, str(event["execution_id"])) if target else {}
        plan = {
            "decision": decision.decision.value,
            "reason": decision.reason,
            "trigger": decision.trigger.value,
            "event_version_is_live": decision.event_version_is_live,
            "tenant": tenant or "",
            "family": family.as_state(),
            "target": target.as_state() if target else {},
            "live": {
                "arn": live_arn or "",
                "version": live_version,
                "inference_component": live_component,
            },
            "endpoint": {
                "exists": endpoint is not None,
                "config_name": endpoint["config_name"] if endpoint else "",
            },
            "names": names,
            # where the gateway option will point: the endpoint, and for adapters the new component
            "route": {
                "endpoint_name": family.endpoint_name,
                "inference_component": names.get("component", "")
                if family.kind is FamilyKind.ADAPTER
                else "",
            },
            "rollout": self._rollout_plan(family, target, tenant=tenant, decision=decision.decision),
            "adapter_regions": self._adapter_regions(family),
        }
        logger.info("deployment plan: %s (%s)", plan["decision"], plan["reason"])
        return plan

    def _rollout_plan(
        self, family: ModelFamily, target: PackageVersion | None, *, tenant: str | None, decision: Decision
    ) -> dict[str, Any]:
        """The family's other regions, in rollout order, each as it serves now (what a rollback restores).

        Every deployed version rolls out region by region: a full model (family-wide), and for an
        adapter family a family-wide or a tenant's adapter (:meth:`_adapter_region_state` adds what
        the adapter path needs). ``count`` 0: the home region only, as before.

        Each region of a full-model family names the version's image there (SageMaker runs only an
        image of the model's own region: :mod:`switchboard.lifecycle.images`); ``image_refusal`` is
        "" when every region has it, else the reason the workflow rejects the version with, before
        the home region moves. An adapter component runs in its base component's container: no image.
        """
        regions = family.extra_regions(self.home_region) if self.home_region else ()
        if target is None or decision is not Decision.DEPLOY:
            regions = ()
        images = self._rollout_images(target, regions if family.kind is FamilyKind.FULL else ())
        planned: list[dict[str, Any]] = []
        for region in regions:
            endpoint = self.registry_in(region).endpoint(family.endpoint_name)
            option_id = family.regional_option_id(region, self.home_region)
            option = self.options.get(option_id)
            planned.append(
                {
                    "region": region,
                    "option_id": option_id,
                    "endpoint": {
                        "exists": endpoint is not None,
                        "config_name": endpoint["config_name"] if endpoint else "",
                    },
                    "live": {
                        "arn": (option.model_package_arn if option else None) or "",
                        "endpoint_name": option.endpoint_name if option and option.endpoint_name else "",
                    },
                    "model_data_url": self._regional_model_data(
                        region, target.model_data_url if target else ""
                    ),
                    **images.per_region.get(region, {}),
                }
            )
            if family.kind is FamilyKind.ADAPTER:
                planned[-1]["live"]["inference_component"] = self._adapter_region_state(
                    family, region, endpoint, option
                )
        return {"count": len(planned), "regions": planned, "image_refusal": images.refusal}

    def _rollout_images(self, target: PackageVersion | None, regions: tuple[str, ...]) -> RolloutImages:
        """The target's image in each other region, checked (none: nothing to roll out)."""
        if target is None or not regions:
            return RolloutImages(per_region={}, refusal="")
        return check_rollout_images(
            target.image, regions, own_account=account_of(self.execution_role_arn), catalog=self.images
        )

    def _adapter_regions(self, family: ModelFamily) -> dict[str, Any]:
        """An adapter family's other regions, whatever the decision: where a component that stops
        serving (a tenant's rejected adapter when the tenant goes back to the base) is deleted too,
        by its name (the same in every region)."""
        regions = family.extra_regions(self.home_region) if self.home_region else ()
        if family.kind is not FamilyKind.ADAPTER:
            regions = ()
        return {"count": len(regions), "regions": [{"region": region} for region in regions]}

    def _regional_model_data(self, region: str, model_data_url: str) -> str:
        """The version's artifact in ``region``'s replica (S3 replication keeps the same key)."""
        from switchboard.lifecycle.errors import RegionalDeploymentFailed

        bucket = self.regional_artifact_buckets.get(region)
        if not self.execution_role_arn:
            raise RegionalDeploymentFailed(
                f"region {region}: no SageMaker execution role configured (SAGEMAKER_EXECUTION_ROLE_ARN)"
            )
        if not bucket:
            raise RegionalDeploymentFailed(
                f"region {region}: no artifacts replica configured (REGIONAL_ARTIFACT_BUCKETS)"
            )
        if not model_data_url.startswith("s3://") or "/" not in model_data_url[5:]:
            raise RegionalDeploymentFailed(
                f"region {region}: model data {model_data_url!r} is not an S3 object"
            )
        key = model_data_url[5:].split("/", 1)[1]
        return f"s3://{bucket}/{key}"

    # -- adapter versions in the family's other regions (issue 16): CreateAdapterInRegion,
    #    CheckAdapterInRegion, SwitchAdapterOptionsInOtherRegions, RollBackAdapterInOtherRegions,
    #    DeleteOldAdapterInOtherRegions

    def _adapter_region_state(
        self, family: ModelFamily, region: str, endpoint: Mapping[str, Any] | None, option: LlmOption | None
    ) -> str:
        """Check an adapter family's other region before anything is created, and return the
        inference component its option serves now (what a rollback restores; "" when none).

        **One name per adapter version, in every region.** SageMaker names are unique per account
        and region, so a version's component is created under the same name
        (``names.component``) in each region, on that region's endpoint and base component, which
        carry the family's names too (``endpoint_name``, ``base_component``: the platform engineer
        deploys the base in each listed region as in the home one; no stack creates a base model,
        which has its own image, instances and lifetime). That keeps the tenant adapters table
        (home region, one row per tenant and family) the single source of truth: a regional option
        (``<option_id>-<region>``, ``region`` set, ``adapter_family`` set, ``inference_component``
        the region's base) resolves a tenant's row to a component name that exists in its own
        region, so a tenant's adapter moves in every region with the one conditional write of its
        row, and the gateway fails over across regions to the same version.
        """
        if endpoint is None or self.registry_in(region).component_status(family.base_component or "") is None:
            raise BaseComponentMissing(
                f"adapter family {family.group} in region {region}: endpoint {family.endpoint_name} or "
                f"base inference component {family.base_component} does not exist there (deploy the "
                "base in every region the family lists)"
            )
        return (option.inference_component if option else None) or ""

    def create_region_adapter(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The adapter version's inference component in one other region, on that region's base.

        Input: ``{"region" (an entry of the plan's ``rollout.regions``), "family", "names"}``. The
        artifact is the region's replica of the version's (``model_data_url`` of the entry): SageMaker
        loads an adapter's ``ArtifactUrl`` from its own region. A component of that name already
        there (this task retried after its create went through) is taken as created. Any failure is
        :class:`RegionalDeploymentFailed` naming the region.
        """
        from switchboard.lifecycle.errors import RegionalDeploymentFailed

        region = event["region"]
        name = str(region["region"])
        family = event["family"]
        component = str(event["names"]["component"])
        registry = self.registry_in(name)
        try:
            if registry.component_status(component) is None:
                registry.create_adapter_component(
                    component,
                    endpoint_name=str(family["endpoint_name"]),
                    base_component=str(family["base_component"]),
                    artifact_url=str(region["model_data_url"]),
                )
        except Exception as exc:
            if isinstance(exc, LifecycleError):
                raise
            raise RegionalDeploymentFailed(f"region {name}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        return {"region": name, "component": component}

    def region_adapter(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One poll of the new component in a region: ``settled`` once it is ``InService``.

        Input: ``{"region", "component", "polls", "max_polls"}``. ``Failed``, a component gone, or too
        many polls raise :class:`RegionalDeploymentFailed` naming the region.
        """
        from switchboard.lifecycle.errors import RegionalDeploymentFailed

        region = str(event["region"])
        component = str(event["component"])
        polls = int(event.get("polls") or 0) + 1
        status = self.registry_in(region).component_status(component)
        if status == "InService":
            return {"settled": True, "polls": polls}
        if status is None or status == "Failed":
            raise RegionalDeploymentFailed(
                f"region {region}: inference component {component} is {status or 'missing'}"
            )
        if polls >= int(event.get("max_polls") or 1):
            raise RegionalDeploymentFailed(
                f"region {region}: inference component {component} still {status} after {polls} polls"
            )
        return {"settled": False, "polls": polls}

    def switch_region_adapter_options(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A family-wide adapter: every other region's option moves to the version's component,
        right after the home option (one task, so the options move together).

        Input: ``{"plan", "updated_by"}``. Each write is conditional on what the region's option
        served at the plan; a refusal raises :class:`RegionalDeploymentFailed` naming the region (the
        workflow then puts every option back, :meth:`roll_back_adapter_rollout`).
        """
        from switchboard.lifecycle.errors import RegionalDeploymentFailed

        plan = event["plan"]
        moved: list[str] = []
        for region in plan["rollout"]["regions"]:
            name = str(region["region"])
            try:
                self.switch(
                    {
                        "region": name,
                        "option_id": region["option_id"],
                        "expect_package_arn": region["live"]["arn"],
                        "package_arn": plan["target"]["arn"],
                        "version": plan["target"]["version"],
                        "endpoint_name": plan["family"]["endpoint_name"],
                        "inference_component": plan["names"]["component"],
                        "updated_by": event["updated_by"],
                    }
                )
            except LifecycleError as exc:
                raise RegionalDeploymentFailed(f"region {name}: {exc}") from exc
            except VersionConflict as exc:
                raise RegionalDeploymentFailed(f"region {name}: option changed concurrently: {exc}") from exc
            moved.append(str(region["option_id"]))
        return {"moved": moved}

    def roll_back_adapter_rollout(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The adapter version failed somewhere: routing goes back and its other regions' components go.

        Input: ``{"plan", "updated_by"}``. Driven by what each region serves now, not by which steps
        ran, so it is idempotent and serves every failure after the home component exists (a region
        that failed, the regional options refused, an alarm during the bake, a rolled-back canary):

        1. every option still pointing at the version (the home one and each region's) goes back to
           the version and component it served at the plan (a family-wide adapter; a tenant's
           version never moves an option: its row is the tenant path's own);
        2. the version's component is deleted in each other region (absent: nothing to do). The
           home component is the workflow's next state (``DeleteUntestedAdapter``), once no option
           names it.

        A deletion that fails is reported in ``left`` and logged, never raised: the version is
        rejected either way, and retirement removes what is left by its name.
        """
        plan = event["plan"]
        family = plan["family"]
        target_arn = str(plan["target"]["arn"])
        component = str(plan["names"]["component"])
        updated_by = str(event["updated_by"])
        restored: list[str] = []
        for region in plan["rollout"]["regions"]:
            if self._restore_adapter_option(
                str(region["option_id"]),
                target_arn,
                str(region["live"]["arn"]),
                str(region["live"].get("inference_component") or ""),
                updated_by,
            ):
                restored.append(str(region["option_id"]))
        if self._restore_adapter_option(
            str(family["option_id"]),
            target_arn,
            str(plan["live"]["arn"]),
            str(plan["live"]["inference_component"]),
            updated_by,
        ):
            restored.append(str(family["option_id"]))
        removed = self.delete_region_adapters({"regions": plan["rollout"]["regions"], "component": component})
        logger.warning(
            "adapter rollout of %s rolled back: options %s, deleted in %s", target_arn, restored, removed
        )
        return {"restored_options": restored, **removed}

    def _restore_adapter_option(
        self, option_id: str, target_arn: str, previous_arn: str, previous_component: str, updated_by: str
    ) -> bool:
        """The option back on its previous adapter when it still points at the rejected version;
        retired when it served nothing before (the gateway skips it)."""
        current = self.options.get(option_id)
        if current is None or current.model_package_arn != target_arn:
            return False
        if previous_arn:
            desired = replace(
                current,
                model_package_arn=previous_arn,
                inference_component=previous_component or None,
                status=OptionStatus.ACTIVE,
            )
        else:
            desired = replace(current, status=OptionStatus.RETIRED)
        self.options.put(desired, expected_version=current.version, updated_by=updated_by)
        return True

    def delete_region_adapters(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """An adapter component that no longer serves (the old live one after the bake) goes in every
        other region too, by its name (the same in each).

        Input: ``{"regions" (the plan's ``rollout.regions``), "component"}``. Idempotent; failures are
        reported in ``left``, never raised (the deployment succeeded; retirement finds what is left).
        """
        component = str(event.get("component") or "")
        deleted: list[str] = []
        left: list[str] = []
        if not component:
            return {"deleted_in": deleted, "left": left}
        for region in event.get("regions") or []:
            name = str(region["region"])
            try:
                if self.registry_in(name).delete_component(component):
                    deleted.append(name)
            except Exception as exc:
                logger.warning("region %s: could not delete %s: %s", name, component, exc)
                left.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
        return {"deleted_in": deleted, "left": left}

    def regional_bake_alarms(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """After the bake of an adapter version that moved in every region: which of the family's
        rollback alarms are in ALARM in each other region (``CheckRegionalAlarmsAfterBake``).

        Step Functions' ``describeAlarms`` integration reads only the stack's region; each regional
        stack holds the family's endpoint alarms under the same names (``regional_models``), so a
        regression only another region sees is read here with that region's CloudWatch client.

        Input: ``{"regions" (the plan's ``rollout.regions``), "alarm_names" (the regional ones)}``.
        Output: ``{"firing": bool, "alarms": [{"region", "alarm"}], "regions_checked", "reason"}``,
        the reason naming each region and alarm (the version's rejection says it). Raises
        ``LifecycleError`` when a region has no CloudWatch reader; an unreadable region is handled as
        the home region's unreadable alarms are (the workflow's Catch).
        """
        names = [str(name) for name in event.get("alarm_names") or [] if name]
        firing: list[dict[str, str]] = []
        checked: list[str] = []
        for region in [str(r["region"]) for r in event.get("regions") or []]:
            if self.regional_signals is None:
                raise LifecycleError(f"no CloudWatch reader configured for region {region}")
            for alarm in self.regional_signals(region).alarms_in_alarm(names):
                firing.append({"region": region, "alarm": alarm})
            checked.append(region)
        reason = "; ".join(f"rollback alarm {f['alarm']} in ALARM in {f['region']}" for f in firing)
        if firing:
            logger.warning("regional alarms after the bake: %s", reason)
        return {
            "firing": bool(firing),
            "alarms": firing,
            "regions_checked": checked,
            "reason": reason or f"no rollback alarm in ALARM in {', '.join(checked) or 'no other region'}",
        }

    # -- deployment in the family's other regions: DeployInRegion, CheckRegionEndpoint, rollback

    def deploy_region(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The version in one other region: model (from the replica), endpoint config, then the
        alarm-guarded blue/green update of the region's endpoint (or its creation, the first time).

        Input: ``{"region" (one entry of the plan's ``rollout.regions``), "family", "target", "names",
        "alarm_names", "settings"}``; the execution role comes from the function's environment.
        """
        from switchboard.lifecycle.errors import RegionalDeploymentFailed

        region = event["region"]
        name = str(region["region"])
        family = event["family"]
        names = event["names"]
        registry = self.registry_in(name)
        image = self._image_in(name, region, str(event["target"]["image"]))
        try:
            registry.create_model(
                str(names["model"]),
                image=image,
                model_data_url=str(region["model_data_url"]),
                execution_role_arn=self.execution_role_arn,
            )
            registry.create_endpoint_config(
                str(names["endpoint_config"]),
                model_name=str(names["model"]),
                variant_name=str(family["variant_name"]),
                instance_type=str(family["instance_type"]),
                instance_count=int(family["instance_count"]),
            )
            if region["endpoint"]["exists"]:
                registry.update_endpoint(
                    str(family["endpoint_name"]),
                    str(names["endpoint_config"]),
                    guarded_deployment(event["settings"], [str(a) for a in event["alarm_names"]]),
                )
            else:
                registry.create_endpoint(str(family["endpoint_name"]), str(names["endpoint_config"]))
        except Exception as exc:
            if isinstance(exc, LifecycleError):
                raise
            raise RegionalDeploymentFailed(f"region {name}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        return {"region": name, "config_name": names["endpoint_config"]}

    def _image_in(self, region: str, planned: Mapping[str, Any], home_image: str) -> str:
        """The region's image as the plan mapped it (a plan from before images were mapped: mapped
        now); never the home region's URI, which SageMaker refuses in another region."""
        from switchboard.lifecycle.errors import RegionalDeploymentFailed
        from switchboard.lifecycle.images import ImageNotPortable, regional_image

        image = str(planned.get("image") or "")
        if image:
            return image
        try:
            return regional_image(home_image, region, own_account=account_of(self.execution_role_arn)).uri
        except ImageNotPortable as exc:
            raise RegionalDeploymentFailed(f"region {region}: {exc}") from exc

    def region_endpoint(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One poll of a region's endpoint after its update: ``settled`` once it serves the new config.

        Input: ``{"region", "endpoint_name", "config_name", "polls", "max_polls"}``. An alarm rollback
        (back InService on another config), a failed update or too many polls raise
        :class:`RegionalDeploymentFailed` naming the region.
        """
        from switchboard.lifecycle.errors import RegionalDeploymentFailed

        region = str(event["region"])
        endpoint_name = str(event["endpoint_name"])
        wanted = str(event["config_name"])
        polls = int(event.get("polls") or 0) + 1
        now = self.registry_in(region).endpoint(endpoint_name)
        if now is None:
            raise RegionalDeploymentFailed(f"region {region}: endpoint {endpoint_name} does not exist")
        status, config = str(now["status"]), str(now["config_name"])
        if status == "InService" and config == wanted:
            return {"settled": True, "polls": polls}
        if status == "InService":
            raise RegionalDeploymentFailed(
                f"region {region}: SageMaker auto-rollback: endpoint {endpoint_name} is back on config "
                f"{config} (not {wanted}): an alarm fired during the blue/green deployment"
            )
        if status in ("Failed", "UpdateRollbackFailed", "OutOfService"):
            raise RegionalDeploymentFailed(f"region {region}: endpoint {endpoint_name} is {status}")
        if polls >= int(event.get("max_polls") or 1):
            raise RegionalDeploymentFailed(
                f"region {region}: endpoint {endpoint_name} still {status} after {polls} polls"
            )
        return {"settled": False, "polls": polls}

    def roll_back_rollout(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A region failed: every other region already moved serves what it served, and so does the
        home option (the workflow then puts the home endpoint back itself, as after a failed smoke
        test).

        Input: ``{"plan", "updated_by"}``. Idempotent and driven by what each region serves now, not
        by which steps ran: an endpoint on another config than the plan saw goes back to that config
        (a plain update: the old fleet is known good), an option pointing at the rejected version goes
        back to the version it served. An endpoint created by this rollout (nothing served before) is
        left to retirement, and its option is marked retired so the gateway skips it.
        """
        plan = event["plan"]
        family = plan["family"]
        target_arn = str(plan["target"]["arn"])
        updated_by = str(event["updated_by"])
        restored: list[dict[str, Any]] = []
        for region in plan["rollout"]["regions"]:
            name = str(region["region"])
            registry = self.registry_in(name)
            done: dict[str, Any] = {"region": name, "endpoint": "", "option": ""}
            previous_config = str(region["endpoint"]["config_name"])
            now = registry.endpoint(str(family["endpoint_name"]))
            if region["endpoint"]["exists"] and now is not None and now["config_name"] != previous_config:
                registry.update_endpoint(str(family["endpoint_name"]), previous_config)
                done["endpoint"] = previous_config
            done["option"] = self._restore_option(
                str(region["option_id"]), target_arn, str(region["live"]["arn"]), updated_by
            )
            restored.append(done)
        home_option = self._restore_option(
            str(family["option_id"]), target_arn, str(plan["live"]["arn"]), updated_by
        )
        restored.append({"region": self.home_region, "endpoint": "", "option": home_option})
        logger.warning("rollout of %s rolled back: %s", target_arn, restored)
        return {"restored": restored}

    def _restore_option(self, option_id: str, target_arn: str, previous_arn: str, updated_by: str) -> str:
        """The option back on ``previous_arn`` when it still points at the rejected version."""
        current = self.options.get(option_id)
        if current is None or current.model_package_arn != target_arn:
            return ""
        if previous_arn:
            desired = replace(current, model_package_arn=previous_arn, status=OptionStatus.ACTIVE)
        else:
            desired = replace(current, status=OptionStatus.RETIRED)
        self.options.put(desired, expected_version=current.version, updated_by=updated_by)
        return previous_arn or "retired"

    def _rollback_candidates(
        self, versions: list[PackageVersion], *, rejected_arn: str, tenant: str | None
    ) -> list[PackageVersion]:
        """The newest Approved, unarchived version (other than the rejected one) of the same owner:
        that tenant's adapters, or for a family-wide version the versions of no tenant.

        Summaries carry no metadata, so candidates are described newest first until one belongs to
        the same owner: one call in the common case, never a pass over hundreds of tenants' versions.
        """
        for summary in versions:
            if (
                summary.arn == rejected_arn
                or summary.approval != Approval.APPROVED
                or summary.stage == ARCHIVED_STAGE
            ):
                continue
            described = self.registry.describe_version(summary.arn)
            if (described.tenant or None) == (tenant or None):
                return [described]
        return []

    # -- deployment: SmokeTest / SmokeTestAdapter

    def smoke(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Input: ``{"endpoint_name", "inference_component", "region"}`` (component "" for full
        models; region absent or "" for the stack's region, else the family's other region to test)."""
        from switchboard.lifecycle.errors import SmokeTestFailed

        endpoint_name = str(event["endpoint_name"])
        component = str(event.get("inference_component") or "") or None
        registry = self.registry_in(str(event.get("region") or "") or None)
        if component is not None:
            status = registry.component_status(component)
            if status != "InService":
                raise SmokeTestFailed(
                    f"inference component {component} is {status or 'missing'}, not InService"
                )
        size = registry.smoke_invoke(endpoint_name, component, str(event.get("prompt") or SMOKE_PROMPT))
        return {"ok": True, "answer_bytes": size}

    # -- deployment: SwitchGatewayOption (and the revert of an adapter after a failed bake)

    def switch(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Point the family's option at a version, with a conditional write.

        Input: ``{"option_id", "expect_package_arn", "package_arn", "version", "endpoint_name",
        "inference_component", "updated_by"}``. The write is refused (:class:`OptionMovedByAnotherDeployment`)
        when the option no longer serves ``expect_package_arn`` (another deployment or an operator
        moved it since the plan); a concurrent edit of anything else (:class:`VersionConflict`) is
        re-read and retried once here, and again by the state machine's Retry.
        """
        option_id = str(event["option_id"])
        expected = str(event.get("expect_package_arn") or "") or None
        updated_by = str(event["updated_by"])
        for attempt in (1, 2):
            current = self.options.get(option_id)
            found = current.model_package_arn if current else None
            if (found or None) != expected:
                raise OptionMovedByAnotherDeployment(option_id, expected=expected, found=found)
            desired = self._pointed(current, option_id, event)
            try:
                stored = self.options.put(
                    desired, expected_version=current.version if current else None, updated_by=updated_by
                )
            except VersionConflict:
                if attempt == 2:
                    raise
                continue
            self._pin_version(event, updated_by)
            return {
                "option_id": stored.id,
                "option_version": stored.version,
                "previous_package_arn": found or "",
                "previous_inference_component": (current.inference_component if current else None) or "",
            }
        raise AssertionError("unreachable")

    @staticmethod
    def _pointed(current: LlmOption | None, option_id: str, event: Mapping[str, Any]) -> LlmOption:
        version = int(event.get("version") or 0)
        changes: dict[str, Any] = {
            "endpoint_name": str(event["endpoint_name"]),
            "inference_component": str(event.get("inference_component") or "") or None,
            "model_package_arn": str(event["package_arn"]),
            "status": OptionStatus.ACTIVE,
            "replaced_by": None,
        }
        if current is None:
            region = str(event.get("region") or "") or None
            return LlmOption(
                id=option_id,
                provider=ProviderKind.SAGEMAKER,
                region=region,
                description=f"Model package version {version}, deployed by the model-deployment workflow",
                **changes,
            )
        if current.provider is not ProviderKind.SAGEMAKER:
            raise LifecycleError(f"option {option_id} is a {current.provider.value} option, not sagemaker")
        return replace(current, **changes)

    def _pin_version(self, event: Mapping[str, Any], updated_by: str) -> None:
        """Create or refresh the option pinned to this version (``<option>-v<N>``)."""
        version = int(event.get("version") or 0)
        if not version:
            return
        pinned_id = version_option_id(str(event["option_id"]), version)
        current = self.options.get(pinned_id)
        desired = replace(
            self._pointed(current, pinned_id, event), description=f"Pinned to model package version {version}"
        )
        try:
            self.options.put(
                desired, expected_version=current.version if current else None, updated_by=updated_by
            )
        except VersionConflict:
            logger.warning("pinned option %s changed concurrently; left as is", pinned_id)

    # -- deployment: SwitchTenantAdapter, RevertTenantToOldAdapter, RollTenantBackToBase

    def switch_tenant(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Point one tenant at its new adapter component (conditional on the adapter it replaces).

        Input: ``{"group", "tenant", "trigger", "expect_package_arn", "package_arn", "version",
        "endpoint_name", "inference_component", "updated_by", "execution"}``. Output
        ``{"displaced"}``: the tenant's record before (None: no record), which the revert after an
        alarm restores. A rollback (the live adapter was rejected) marks the tenant ``rolled_back``
        and keeps no previous adapter: the rejected one may never serve again.
        """
        family, tenant, store = self._tenant_of(event)
        current = store.get(family.group, tenant)
        new = AdapterRef(
            str(event["package_arn"]), int(event.get("version") or 0), str(event["inference_component"])
        )
        rollback = event.get("trigger") == Trigger.ROLLBACK
        record = TenantAdapter(
            family=family.group,
            tenant=tenant,
            state=AdapterState.ROLLED_BACK if rollback else AdapterState.LIVE,
            live=new,
            previous=current.live if current and current.live and not rollback else None,
            endpoint_name=str(event["endpoint_name"]),
            updated_at=utc_timestamp(),
            updated_by=str(event["updated_by"]),
        )
        self._write_tenant(event, record, HistoryEvent.DEPLOYED)
        return {"displaced": current.as_state() if current else None}

    def revert_tenant(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """An alarm fired during the bake: the tenant's record before the switch comes back.

        Input: ``{"group", "tenant", "expect_package_arn" (the new version), "restore" (the
        ``displaced`` record), "updated_by", "execution", "reason"}``.
        """
        family, tenant, _ = self._tenant_of(event)
        restore = event.get("restore") or {}
        record = TenantAdapter(
            family=family.group,
            tenant=tenant,
            state=AdapterState.ROLLED_BACK,
            live=AdapterRef.from_state(restore.get("live")),
            previous=AdapterRef.from_state(restore.get("previous")),
            endpoint_name=str(restore.get("endpoint_name") or family.endpoint_name),
            updated_at=utc_timestamp(),
            updated_by=str(event["updated_by"]),
        )
        self._write_tenant(event, record, HistoryEvent.REVERTED_AFTER_ALARM)
        return {"tenant": tenant, "live": record.live.as_state() if record.live else None}

    def tenant_to_base(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The tenant's live adapter was rejected and no other is approved: the base model serves it.

        Input: ``{"group", "tenant", "expect_package_arn" (the rejected live version), "updated_by",
        "execution", "reason"}``. The workflow deletes the rejected component afterwards (routing
        never points at a deleted component).
        """
        family, tenant, _ = self._tenant_of(event)
        record = TenantAdapter(
            family=family.group,
            tenant=tenant,
            state=AdapterState.ROLLED_BACK,
            live=None,
            previous=None,
            endpoint_name=family.endpoint_name,
            updated_at=utc_timestamp(),
            updated_by=str(event["updated_by"]),
        )
        self._write_tenant(event, record, HistoryEvent.ROLLED_BACK_TO_BASE)
        return {"tenant": tenant, "base_component": family.base_component or ""}

    def _tenant_of(self, event: Mapping[str, Any]) -> tuple[ModelFamily, str, TenantAdapterStore]:
        family = self.family(str(event["group"]))
        tenant = str(event.get("tenant") or "")
        return family, tenant, self.tenant_adapters(family, tenant)

    def _write_tenant(
        self,
        event: Mapping[str, Any],
        record: TenantAdapter,
        what: HistoryEvent,
        *,
        expected_canary_arn: str | None = None,
        check_canary: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        family = self.family(record.family)
        store = self.tenant_adapters(family, record.tenant)
        change = AdapterChange(
            family=record.family,
            tenant=record.tenant,
            event=what,
            at=history_timestamp(),
            execution=str(event.get("execution") or record.updated_by),
            record=record,
            reason=str(event.get("reason") or "")[:1024],
            extra=dict(extra or {}),
        )
        store.write(
            record,
            expected_live_arn=str(event.get("expect_package_arn") or "") or None,
            change=change,
            expected_canary_arn=expected_canary_arn,
            check_canary=check_canary,
        )
        logger.info(
            "tenant %s of %s: %s (%s)",
            record.tenant,
            record.family,
            what.value,
            record.live.component if record.live else "base model",
        )

    # -- deployment: StartTenantCanary, JudgeTenantCanary, PromoteTenantCanary, RollBackTenantCanary

    def start_canary(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The tenant's new adapter serves the family's canary share of the tenant's requests.

        Input: as ``switch_tenant`` (``expect_package_arn`` is the tenant's live adapter, "" for the
        base model). The write is refused when the live adapter moved or another canary of the
        tenant is running (one canary per tenant at a time). Output ``{"started_at",
        "share_percent", "component"}``: the bake's metric window starts at ``started_at``.
        """
        family, tenant, store = self._tenant_of(event)
        current = store.get(family.group, tenant)
        new = AdapterRef(
            str(event["package_arn"]), int(event.get("version") or 0), str(event["inference_component"])
        )
        share = family.canary.share_percent
        record = TenantAdapter(
            family=family.group,
            tenant=tenant,
            state=AdapterState.CANARY,
            live=current.live if current else None,
            previous=current.previous if current else None,
            canary=new,
            canary_share_percent=share,
            endpoint_name=str(event["endpoint_name"]),
            updated_at=utc_timestamp(),
            updated_by=str(event["updated_by"]),
        )
        self._write_tenant(
            {**event, "reason": f"canary of version {new.version} on {share}% of the tenant's requests"},
            record,
            HistoryEvent.CANARY_STARTED,
            check_canary=True,
        )
        return {"started_at": utc_timestamp(), "share_percent": share, "component": new.component}

    def judge_canary(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """After the bake: promote (``healthy``) or roll back, and why.

        Input: ``{"group", "tenant", "package_arn", "component", "started_at", "alarm_names",
        "regions", "regional_alarm_names"}``. A version rejected while it canaried rolls back; so does
        a firing family alarm, or the component's metrics beyond the family's ``canary`` thresholds.
        Raises :class:`CanaryNotJudged` when no signal reader is configured (the workflow rolls back).

        ``regions`` (the plan's ``rollout.regions``; absent or empty: the home region only): the
        canary's component serves the tenant's share in every region (one row, the same component
        name), so its metrics are read in each (``AWS/SageMaker`` is regional) and judged twice: summed
        (the invocations the canary needs, the error rate, the worst latency) and region by region
        without the invocation floor, so one region's failing copy is not diluted by the others'
        traffic. The reason names the region that failed. The family's rollback alarms are read in
        each of those regions too (``regional_alarm_names``, the ones the regional stacks hold): one
        in ALARM there rolls the canary back, the reason naming the alarm and its region.
        """
        family = self.family(str(event["group"]))
        if self.signals is None:
            raise CanaryNotJudged("no CloudWatch reader configured for canary signals")
        approval = self.registry.describe_version(str(event["package_arn"])).approval
        start, end = metric_window(str(event["started_at"]), datetime.now(UTC))
        component = str(event["component"])
        statistic = family.canary.latency_statistic
        seen = self.signals.component(component, start=start, end=end, latency_statistic=statistic)
        regional: list[tuple[str, ComponentSignals]] = []
        for region in [str(r["region"]) for r in event.get("regions") or []]:
            if self.regional_signals is None:
                raise CanaryNotJudged(f"no CloudWatch reader configured for region {region}")
            regional.append(
                (
                    region,
                    self.regional_signals(region).component(
                        component, start=start, end=end, latency_statistic=statistic
                    ),
                )
            )
        firing = self.signals.alarms_in_alarm([str(n) for n in event.get("alarm_names") or []])
        firing.extend(self._regional_alarms_firing(event))
        verdict = judge(family.canary, seen, firing_alarms=firing, approval=approval)
        if regional:
            each = [(self.home_region or "home", seen), *regional]
            seen = summed(signals for _, signals in each)
            verdict = judge(family.canary, seen, firing_alarms=firing, approval=approval)
            floorless = family.canary.model_copy(update={"min_invocations": 0})
            for region, signals in each:
                alone = judge(floorless, signals)
                if verdict.healthy and not alone.healthy:
                    verdict = Verdict(False, f"region {region}: {alone.reason}")
        logger.info("canary of %s (tenant %s): %s", event["package_arn"], event.get("tenant"), verdict.reason)
        return {
            **verdict.as_state(),
            "invocations": seen.invocations,
            "errors": seen.errors,
            "latency_ms": seen.latency_ms,
        }

    def _regional_alarms_firing(self, event: Mapping[str, Any]) -> list[str]:
        """The family's rollback alarms in ALARM in the canary's other regions, each named with its
        region (``regional_alarm_names``: the alarms the regional stacks hold, under the same names)."""
        names = [str(n) for n in event.get("regional_alarm_names") or [] if n]
        if not names:
            return []
        firing: list[str] = []
        for region in [str(r["region"]) for r in event.get("regions") or []]:
            if self.regional_signals is None:
                raise CanaryNotJudged(f"no CloudWatch reader configured for region {region}")
            firing.extend(
                f"{alarm} in {region}" for alarm in self.regional_signals(region).alarms_in_alarm(names)
            )
        return firing

    def promote_canary(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The canary becomes the tenant's live adapter; the old live one becomes ``previous``.

        Input: ``{"group", "tenant", "expect_package_arn" (the live adapter when the canary
        started), "package_arn" (the canary), "reason", "updated_by", "execution"}``.
        """
        family, tenant, store = self._tenant_of(event)
        current, canary = self._running_canary(store, family, tenant, event)
        self._end_canary(event, family, tenant, current, canary, AdapterState.LIVE, canary, current.live)
        return {"tenant": tenant, "live": canary.as_state()}

    def roll_back_canary(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The canary goes: the tenant's live adapter (or the base model) serves all its requests.

        Input: as :meth:`promote_canary`, ``reason`` saying why. The history item keeps which
        version canaried (``canary_*``) and why it was rolled back; the workflow deletes the
        canary's component afterwards, once no request is routed to it.
        """
        family, tenant, store = self._tenant_of(event)
        current, canary = self._running_canary(store, family, tenant, event)
        self._end_canary(
            event, family, tenant, current, canary, AdapterState.ROLLED_BACK, current.live, current.previous
        )
        return {"tenant": tenant, "live": current.live.as_state() if current.live else None}

    def _end_canary(
        self,
        event: Mapping[str, Any],
        family: ModelFamily,
        tenant: str,
        current: TenantAdapter,
        canary: AdapterRef,
        state: AdapterState,
        live: AdapterRef | None,
        previous: AdapterRef | None,
    ) -> None:
        """Write the row a finished canary leaves (promoted: ``LIVE``; rolled back: ``ROLLED_BACK``),
        conditional on that canary still running; the history item keeps the canary (``canary_*``)."""
        record = TenantAdapter(
            family=family.group,
            tenant=tenant,
            state=state,
            live=live,
            previous=previous,
            endpoint_name=current.endpoint_name or family.endpoint_name,
            updated_at=utc_timestamp(),
            updated_by=str(event["updated_by"]),
        )
        history = (
            HistoryEvent.CANARY_PROMOTED if state is AdapterState.LIVE else HistoryEvent.CANARY_ROLLED_BACK
        )
        self._write_tenant(
            event,
            record,
            history,
            expected_canary_arn=canary.package_arn,
            check_canary=True,
            extra=canary.as_item("canary"),
        )

    @staticmethod
    def _running_canary(
        store: TenantAdapterStore, family: ModelFamily, tenant: str, event: Mapping[str, Any]
    ) -> tuple[TenantAdapter, AdapterRef]:
        """The tenant's record and its canary, when the canary is still this deployment's version."""
        from switchboard.lifecycle.adapter_store import TenantAdapterMovedByAnotherDeployment

        current = store.get(family.group, tenant)
        expected_arn = str(event["package_arn"])
        if current is None or current.canary is None or current.canary.package_arn != expected_arn:
            found = current.canary.package_arn if current and current.canary else None
            raise TenantAdapterMovedByAnotherDeployment(
                family.group, tenant, expected=f"canary {expected_arn}", found=f"canary {found}"
            )
        return current, current.canary

    # -- retirement

    def retire(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Retire versions older than each family's retention (or ``event["retention"]``).

        Input: ``{"groups": [...]}`` (default: every family), optional ``retention``, ``dry_run``.
        Output ``{"dry_run", "families": {group: report}}``; see :meth:`_retire_family`.
        """
        groups = event.get("groups") or sorted(self.families)
        dry_run = bool(event.get("dry_run", False))
        report: dict[str, Any] = {}
        for group in groups:
            family = self.family(str(group))
            retention = int(event.get("retention") or family.retention)
            report[family.group] = self._retire_family(family, retention, dry_run=dry_run)
        return {"dry_run": dry_run, "families": report}

    def _retire_family(self, family: ModelFamily, retention: int, *, dry_run: bool) -> dict[str, Any]:
        """One family: retention per owner (family-wide, then each tenant), cleanup in every region.

        Report: ``{"live", "retention", "retired": [...] (each version as :meth:`_retire_version`
        reports it), "tenants": {tenant: {"live", "kept", "retired"}}, "regions": {region:
        {"reachable", "error"}}}`` (``regions``: the family's other regions, empty for one region).
        """
        option = self.options.get(family.option_id)
        live_arn = option.model_package_arn if option else None
        routed_component = option.inference_component if option else None
        endpoint = self.registry.endpoint(family.endpoint_name)
        routed_config = endpoint["config_name"] if endpoint else None
        tenants, kept_components = self._tenant_pins(family)
        selections = select_owner_retirements(
            self._versions_with_owner(family),
            family_live_arn=live_arn,
            tenants=tenants,
            retention=retention,
        )
        sweeps = self._region_sweeps(family)
        home = _RegionSweep(
            region="",
            registry=self.registry,
            keep=frozenset(name for name in (routed_component, routed_config) if name) | kept_components,
            option_id=family.option_id,
        )
        served_in_a_region = {sweep.serving_arn: sweep.region for sweep in sweeps if sweep.serving_arn}
        retired: list[dict[str, Any]] = []
        tenant_report: dict[str, Any] = {}
        for selection in selections:
            for version in selection.retired:
                if version.arn in served_in_a_region:  # a region left behind still serves it: keep it
                    logger.warning(
                        "%s version %s not retired: region %s's option still serves it",
                        family.group,
                        version.version,
                        served_in_a_region[version.arn],
                    )
                    continue
                retired.append(self._retire_version(family, version, home, sweeps, dry_run=dry_run))
            if selection.tenant is not None:
                tenant_report[selection.tenant] = {
                    "live": selection.live_arn or "",
                    "kept": [v.version for v in selection.kept],
                    "retired": [v.version for v in selection.retired],
                }
        return {
            "live": live_arn or "",
            "retention": retention,
            "retired": retired,
            "tenants": tenant_report,
            "regions": {
                sweep.region: {"reachable": not sweep.error, "error": sweep.error} for sweep in sweeps
            },
        }

    def _versions_with_owner(self, family: ModelFamily) -> list[PackageVersion]:
        """The family's unarchived versions, each with its tenant (adapter families).

        ``list_versions`` pages through the group; its summaries carry no metadata, so an adapter
        family's unarchived versions are described one by one to learn their tenant (after each
        retirement run only the retained versions stay unarchived, so this stays small). A full-model
        family's versions are all family-wide: no describe.
        """
        listed = [v for v in self.registry.list_versions(family.group) if v.stage != ARCHIVED_STAGE]
        if family.kind is not FamilyKind.ADAPTER or self.adapters is None:
            return [replace(v, tenant=None) for v in listed]
        described = []
        for summary in listed:
            version = self.registry.describe_version(summary.arn)
            if version.stage != ARCHIVED_STAGE:
                described.append(version)
        return described

    def _tenant_adapters_in_use(self, family: ModelFamily) -> tuple[frozenset[str], frozenset[str]]:
        """Versions and components serving a tenant, or kept as its previous approved adapter:
        retirement by the family's retention never takes them (a tenant's versions age separately)."""
        if family.kind is not FamilyKind.ADAPTER or self.adapters is None:
            return frozenset(), frozenset()
        arns: set[str] = set()
        components: set[str] = set()
        for record in all_in_family(self.adapters, family.group):
            for ref in (record.live, record.previous, record.canary):
                if ref is not None:
                    arns.add(ref.package_arn)
                    components.add(ref.component)
        return frozenset(arns), frozenset(components)

    def _tenant_pins(self, family: ModelFamily) -> tuple[dict[str, TenantPins], frozenset[str]]:
        """Each tenant's live adapter and pinned versions (live, previous, canary), and the components
        of all of them (never deleted), read page by page from the adapters table."""
        if family.kind is not FamilyKind.ADAPTER or self.adapters is None:
            return {}, frozenset()
        pins: dict[str, TenantPins] = {}
        components: set[str] = set()
        for record in all_in_family(self.adapters, family.group):
            refs = [ref for ref in (record.live, record.previous, record.canary) if ref is not None]
            pins[record.tenant] = TenantPins(
                live_arn=record.live.package_arn if record.live else None,
                pinned=frozenset(ref.package_arn for ref in refs),
            )
            components.update(ref.component for ref in refs)
        return pins, frozenset(components)

    def _region_sweeps(self, family: ModelFamily) -> list[_RegionSweep]:
        """The family's other regions, each with what it serves now (never deleted) or why it cannot
        be reached (its cleanup is then skipped and the versions stay unarchived for the next run)."""
        regions = family.extra_regions(self.home_region) if self.home_region else ()
        sweeps: list[_RegionSweep] = []
        for region in regions:
            option_id = family.regional_option_id(region, self.home_region)
            try:
                registry = self.registry_in(region)
                endpoint = registry.endpoint(family.endpoint_name)
            except Exception as exc:  # any failure to reach the region: report it, go on with the others
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
                logger.warning("retirement of %s: region %s unreachable: %s", family.group, region, error)
                sweeps.append(_RegionSweep(region, None, frozenset(), option_id, error=error))
                continue
            option = self.options.get(option_id)
            serving = {
                endpoint["config_name"] if endpoint else None,
                option.inference_component if option else None,
            }
            sweeps.append(
                _RegionSweep(
                    region,
                    registry,
                    frozenset(n for n in serving if n),
                    option_id,
                    serving_arn=(option.model_package_arn if option else None) or "",
                )
            )
        return sweeps

    def _retire_version(
        self,
        family: ModelFamily,
        version: PackageVersion,
        home: _RegionSweep,
        sweeps: list[_RegionSweep],
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Delete one version's components, endpoint configs and models in the home region and in
        each other region, retire its pinned options, then archive it unless a region failed.

        Report: the home region's names at the top level (as before multi-region), ``tenant``,
        ``archived``, and ``regions``: per other region its names, pinned option and ``error``.
        """
        prefix = version_prefix(family.group, version.version)
        done: dict[str, Any] = {
            "version": version.version,
            "arn": version.arn,
            "tenant": version.tenant or "",
            **self._sweep_version(family, version, home, prefix, kept_by=home.keep, dry_run=dry_run),
        }
        regions: list[dict[str, Any]] = []
        for sweep in sweeps:
            pinned_id = version_option_id(sweep.option_id, version.version)
            if sweep.registry is None:
                regions.append({"region": sweep.region, "option": pinned_id, "error": sweep.error})
                continue
            try:
                swept = self._sweep_version(
                    family, version, sweep, prefix, kept_by=sweep.keep | home.keep, dry_run=dry_run
                )
            except Exception as exc:  # one region failing never stops the others
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
                logger.warning(
                    "retirement of %s version %s: region %s failed: %s",
                    family.group,
                    version.version,
                    sweep.region,
                    error,
                )
                regions.append({"region": sweep.region, "option": pinned_id, "error": error})
                continue
            regions.append({"region": sweep.region, **swept, "error": ""})
        failed = [r["region"] for r in regions if r["error"]]
        done["regions"] = regions
        done["archived"] = not dry_run and not failed
        if dry_run:
            return done
        if failed:
            logger.warning(
                "%s version %s left unarchived (the next run retries): regions %s failed",
                family.group,
                version.version,
                ", ".join(failed),
            )
            return done
        self.registry.archive(version.arn, f"Retired by {RETIREMENT_ACTOR}: older than the retention count")
        return done

    def _sweep_version(
        self,
        family: ModelFamily,
        version: PackageVersion,
        sweep: _RegionSweep,
        prefix: str,
        *,
        kept_by: frozenset[str],
        dry_run: bool,
    ) -> dict[str, Any]:
        """One region's part of a version's retirement: what it holds under the version's prefix,
        except what that region serves, deleted (components first), then its pinned option retired."""
        registry = sweep.registry
        assert registry is not None
        components = [c for c in registry.components_named(family.endpoint_name, prefix) if c not in kept_by]
        configs = [c for c in registry.endpoint_configs_named(prefix) if c not in kept_by]
        models = [m for m in registry.models_named(prefix) if m not in kept_by]
        pinned_id = version_option_id(sweep.option_id, version.version)
        if not dry_run:
            for name in components:
                registry.delete_component(name)
            for name in configs:
                registry.delete_endpoint_config(name)
            for name in models:
                registry.delete_model(name)
            self._retire_pinned_option(pinned_id, replaced_by=sweep.option_id)
        return {
            "inference_components": components,
            "endpoint_configs": configs,
            "models": models,
            "option": pinned_id,
        }

    def _retire_pinned_option(self, pinned_id: str, *, replaced_by: str) -> None:
        pinned = self.options.get(pinned_id)
        if pinned is None or pinned.status is OptionStatus.RETIRED:
            return
        try:
            self.options.put(
                replace(pinned, status=OptionStatus.RETIRED, replaced_by=replaced_by),
                expected_version=pinned.version,
                updated_by=RETIREMENT_ACTOR,
            )
        except VersionConflict:
            logger.warning("option %s changed during retirement; the next run retires it", pinned.id)


@dataclass(frozen=True, slots=True)
class _RegionSweep:
    """One region of a family's retirement run: its SageMaker, what it serves, its option."""

    region: str
    """Empty for the stack's own region."""
    registry: ModelRegistry | None
    """None: the region could not be reached (``error`` says why)."""
    keep: frozenset[str]
    """Endpoint config and component the region serves now: never deleted."""
    option_id: str
    """The family's option in the region (its pinned options are ``<option_id>-v<N>``)."""
    error: str = ""
    serving_arn: str = ""
    """The version the region's option serves: never retired, even when the home region moved on."""


def guarded_deployment(settings: Mapping[str, Any], alarm_names: list[str]) -> dict[str, Any]:
    """``UpdateEndpoint``'s ``DeploymentConfig`` as the ASL's home-region update builds it: blue/green,
    CANARY or LINEAR from the workflow's settings, with the region's rollback alarms."""
    linear = str(settings.get("traffic_type")) == "LINEAR"
    routing: dict[str, Any] = {"Type": "LINEAR" if linear else "CANARY"}
    size = {
        "Type": "CAPACITY_PERCENT",
        "Value": int(settings["linear_step_percent"] if linear else settings["canary_percent"]),
    }
    routing["LinearStepSize" if linear else "CanarySize"] = size
    routing["WaitIntervalInSeconds"] = int(settings["wait_interval_seconds"])
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": int(settings["termination_wait_seconds"]),
            "MaximumExecutionTimeoutInSeconds": int(settings["maximum_execution_timeout_seconds"]),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }
