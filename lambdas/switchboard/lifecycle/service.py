"""The steps the deployment workflow's Lambda tasks and the retirement Lambda run.

Each public method takes the task's JSON input and returns JSON for the state machine. The options
catalogue and the SageMaker registry are injected behind the two Protocols below
(:class:`LifecycleService` is built once per execution environment by the handlers, by the local
stack with emulated clients, and by logic tests with the in-memory fakes of ``tests/fakes``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from switchboard.lifecycle.errors import LifecycleError, OptionMovedByAnotherDeployment, UnknownModelFamily
from switchboard.lifecycle.logic import (
    Decision,
    plan_for_event,
    resource_names,
    select_retirements,
    version_option_id,
    version_prefix,
)
from switchboard.lifecycle.model import FamilyKind, ModelFamily, PackageVersion
from switchboard.options.errors import VersionConflict
from switchboard.options.model import LlmOption, OptionStatus, ProviderKind

logger = logging.getLogger(__name__)

SMOKE_PROMPT = "Reply with the single word OK."
RETIREMENT_ACTOR = "model-retirement"


class BaseComponentMissing(LifecycleError):
    """An adapter family's endpoint or base inference component does not exist (deploy it first)."""


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


class LifecycleService:
    """Plan, smoke-test and switch one deployment; retire old versions."""

    def __init__(
        self,
        *,
        families: Mapping[str, ModelFamily],
        options: VersionedOptions,
        registry: ModelRegistry,
    ) -> None:
        self.families = dict(families)
        self.options = options
        self.registry = registry

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
        option = self.options.get(family.option_id)
        live_arn = option.model_package_arn if option else None
        versions = self.registry.list_versions(family.group) if detail["status"] == "Rejected" else []
        decision = plan_for_event(
            event_arn=str(detail["arn"]),
            event_status=str(detail["status"]),
            current=current,
            live_arn=live_arn,
            versions=versions,
        )
        endpoint = self.registry.endpoint(family.endpoint_name)
        target = decision.target
        if target is not None and target.arn != current.arn:
            target = self.registry.describe_version(target.arn)  # the summary lacks the containers
        live_version = next((v.version for v in versions if v.arn == live_arn), 0)
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
            "family": family.as_state(),
            "target": target.as_state() if target else {},
            "live": {
                "arn": live_arn or "",
                "version": live_version,
                "inference_component": (option.inference_component if option else None) or "",
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
        }
        logger.info("deployment plan: %s (%s)", plan["decision"], plan["reason"])
        return plan

    # -- deployment: SmokeTest / SmokeTestAdapter

    def smoke(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Input: ``{"endpoint_name", "inference_component"}`` (component "" for full models)."""
        from switchboard.lifecycle.errors import SmokeTestFailed

        endpoint_name = str(event["endpoint_name"])
        component = str(event.get("inference_component") or "") or None
        if component is not None:
            status = self.registry.component_status(component)
            if status != "InService":
                raise SmokeTestFailed(
                    f"inference component {component} is {status or 'missing'}, not InService"
                )
        size = self.registry.smoke_invoke(endpoint_name, component, str(event.get("prompt") or SMOKE_PROMPT))
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
            return LlmOption(
                id=option_id,
                provider=ProviderKind.SAGEMAKER,
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

    # -- retirement

    def retire(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Retire versions older than each family's retention (or ``event["retention"]``).

        Input: ``{"groups": [...]}`` (default: every family), optional ``retention``, ``dry_run``.
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
        option = self.options.get(family.option_id)
        live_arn = option.model_package_arn if option else None
        routed_component = option.inference_component if option else None
        endpoint = self.registry.endpoint(family.endpoint_name)
        routed_config = endpoint["config_name"] if endpoint else None
        versions = self.registry.list_versions(family.group)
        retired: list[dict[str, Any]] = []
        for version in select_retirements(versions, live_arn=live_arn, retention=retention):
            retired.append(
                self._retire_version(
                    family,
                    version,
                    routed_component=routed_component,
                    routed_config=routed_config,
                    dry_run=dry_run,
                )
            )
        return {"live": live_arn or "", "retention": retention, "retired": retired}

    def _retire_version(
        self,
        family: ModelFamily,
        version: PackageVersion,
        *,
        routed_component: str | None,
        routed_config: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        prefix = version_prefix(family.group, version.version)
        keep = {name for name in (routed_component, routed_config) if name}
        components = [
            c for c in self.registry.components_named(family.endpoint_name, prefix) if c not in keep
        ]
        configs = [c for c in self.registry.endpoint_configs_named(prefix) if c not in keep]
        models = [m for m in self.registry.models_named(prefix) if m not in keep]
        done = {
            "version": version.version,
            "arn": version.arn,
            "inference_components": components,
            "endpoint_configs": configs,
            "models": models,
            "option": version_option_id(family.option_id, version.version),
        }
        if dry_run:
            return done
        for name in components:
            self.registry.delete_component(name)
        for name in configs:
            self.registry.delete_endpoint_config(name)
        for name in models:
            self.registry.delete_model(name)
        self.registry.archive(version.arn, f"Retired by {RETIREMENT_ACTOR}: older than the retention count")
        pinned = self.options.get(str(done["option"]))
        if pinned is not None and pinned.status is not OptionStatus.RETIRED:
            try:
                self.options.put(
                    replace(pinned, status=OptionStatus.RETIRED, replaced_by=family.option_id),
                    expected_version=pinned.version,
                    updated_by=RETIREMENT_ACTOR,
                )
            except VersionConflict:
                logger.warning("option %s changed during retirement; the next run retires it", pinned.id)
        return done
