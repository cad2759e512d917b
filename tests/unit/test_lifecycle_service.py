"""LifecycleService on the in-memory fakes: what the deployment workflow's Lambda tasks and the
retirement Lambda decide and write, without SageMaker or DynamoDB. The whole workflow, with the
real adapters on moto and the project's SageMaker extension, runs in
``tests/integration/test_model_deployment_asl.py``."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.lifecycle.errors import (
    OptionMovedByAnotherDeployment,
    SmokeTestFailed,
    UnknownModelFamily,
)
from switchboard.lifecycle.logic import resource_names, version_prefix
from switchboard.lifecycle.model import ModelFamily, PackageVersion
from switchboard.lifecycle.service import BaseComponentMissing, LifecycleService
from switchboard.options.errors import VersionConflict
from switchboard.options.model import LlmOption, OptionStatus
from tests.fakes import InMemoryOptions, InMemoryRegistry

GROUP = "support-llm"
ADAPTERS = "support-lora"
FULL = ModelFamily(group=GROUP, option_id="support", endpoint_name="support-ep", retention=1)
ADAPTER = ModelFamily(group=ADAPTERS, option_id="lora", endpoint_name="lora-ep", base_component="lora-base")


def version(number: int, approval: str = "Approved", group: str = GROUP) -> PackageVersion:
    return PackageVersion(
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{number}",
        group=group,
        version=number,
        approval=approval,
        model_data_url=f"s3://models/{group}/{number}.tar.gz",
    )


def live_option(option_id: str, serving: PackageVersion, endpoint: str = "support-ep") -> LlmOption:
    return LlmOption.from_dict(
        {
            "id": option_id,
            "provider": "sagemaker",
            "endpoint_name": endpoint,
            "model_package_arn": serving.arn,
            "version": 4,
        }
    )


def service(registry: InMemoryRegistry, options: InMemoryOptions) -> LifecycleService:
    return LifecycleService(
        families={f.group: f for f in (FULL, ADAPTER)}, options=options, registry=registry
    )


def event(v: PackageVersion, status: str = "Approved") -> dict[str, Any]:
    return {"event": {"arn": v.arn, "status": status, "group": v.group}, "execution_id": "exec-1"}


# --- plan -----------------------------------------------------------------------------------------


def test_an_approved_version_plans_a_deployment_with_its_names_and_the_live_version() -> None:
    registry = InMemoryRegistry(endpoints={"support-ep": {"status": "InService", "config_name": "cfg-1"}})
    v1, v2 = registry.add_version(version(1)), registry.add_version(version(2))
    options = InMemoryOptions([live_option("support", v1)])

    plan = service(registry, options).plan(event(v2))

    assert (plan["decision"], plan["trigger"]) == ("deploy", "approval")
    assert plan["target"]["arn"] == v2.arn and plan["target"]["version"] == 2
    assert plan["live"] == {"arn": v1.arn, "version": 0, "inference_component": ""}  # no list on approval
    assert plan["endpoint"] == {"exists": True, "config_name": "cfg-1"}
    assert plan["names"] == resource_names(GROUP, 2, "exec-1")
    assert plan["route"] == {"endpoint_name": "support-ep", "inference_component": ""}


def test_rejecting_the_live_version_plans_the_newest_other_approved_one() -> None:
    registry = InMemoryRegistry()
    _, v2, v3 = (registry.add_version(version(n)) for n in (1, 2, 3))
    registry.add_version(version(3, approval="Rejected"))  # the operator's rollback
    options = InMemoryOptions([live_option("support", v3)])

    plan = service(registry, options).plan(event(v3, "Rejected"))

    assert (plan["decision"], plan["trigger"]) == ("deploy", "rollback_of_rejected_live_version")
    assert plan["target"]["arn"] == v2.arn and plan["live"]["version"] == 3
    assert plan["endpoint"] == {"exists": False, "config_name": ""}


def test_a_rejection_of_a_version_that_never_served_plans_nothing() -> None:
    registry = InMemoryRegistry()
    v1, v2 = registry.add_version(version(1)), registry.add_version(version(2, approval="Rejected"))
    plan = service(registry, InMemoryOptions([live_option("support", v1)])).plan(event(v2, "Rejected"))
    assert plan["decision"] == "ignore_rejection_of_non_live_version" and plan["target"] == {}
    assert plan["names"] == {}


def test_an_adapter_needs_its_endpoint_and_base_component_first() -> None:
    registry = InMemoryRegistry(endpoints={"lora-ep": {"status": "InService", "config_name": "c"}})
    v1 = registry.add_version(version(1, group=ADAPTERS))
    with pytest.raises(BaseComponentMissing, match="lora-base"):
        service(registry, InMemoryOptions()).plan(event(v1))

    registry.components["lora-base"] = ("lora-ep", "InService")
    plan = service(registry, InMemoryOptions()).plan(event(v1))
    assert plan["route"] == {"endpoint_name": "lora-ep", "inference_component": plan["names"]["component"]}


def test_an_unknown_group_is_refused_by_name() -> None:
    registry = InMemoryRegistry()
    other = registry.add_version(version(1, group="someone-else"))
    with pytest.raises(UnknownModelFamily):
        service(registry, InMemoryOptions()).plan(event(other))


# --- smoke ----------------------------------------------------------------------------------------


def test_the_smoke_test_needs_an_in_service_component_and_an_answer() -> None:
    registry = InMemoryRegistry(
        endpoints={"lora-ep": {"status": "InService", "config_name": "c"}},
        components={"lora-v2-x": ("lora-ep", "Creating")},
    )
    lifecycle = service(registry, InMemoryOptions())
    with pytest.raises(SmokeTestFailed, match="Creating"):
        lifecycle.smoke({"endpoint_name": "lora-ep", "inference_component": "lora-v2-x"})
    assert registry.smoked == []  # refused before any invocation

    registry.components["lora-v2-x"] = ("lora-ep", "InService")
    assert lifecycle.smoke({"endpoint_name": "lora-ep", "inference_component": "lora-v2-x"})["ok"] is True
    registry.smoke_fails = True
    with pytest.raises(SmokeTestFailed):
        lifecycle.smoke({"endpoint_name": "lora-ep", "inference_component": ""})
    assert registry.smoked == [("lora-ep", "lora-v2-x"), ("lora-ep", None)]


# --- switch ---------------------------------------------------------------------------------------


def switch_event(v: PackageVersion, expect: PackageVersion | None) -> dict[str, Any]:
    return {
        "option_id": "support",
        "expect_package_arn": expect.arn if expect else "",
        "package_arn": v.arn,
        "version": v.version,
        "endpoint_name": "support-ep",
        "inference_component": "",
        "updated_by": "model-deployment:exec-1",
    }


def test_switching_moves_the_option_and_pins_the_version() -> None:
    v1, v2 = version(1), version(2)
    options = InMemoryOptions([live_option("support", v1)])

    out = service(InMemoryRegistry(), options).switch(switch_event(v2, expect=v1))

    assert out == {
        "option_id": "support",
        "option_version": 5,
        "previous_package_arn": v1.arn,
        "previous_inference_component": "",
    }
    moved, pinned = options.options["support"], options.options["support-v2"]
    assert moved.model_package_arn == v2.arn and moved.updated_by == "model-deployment:exec-1"
    assert pinned.model_package_arn == v2.arn and pinned.version == 1


def test_the_first_deployment_creates_the_option() -> None:
    options = InMemoryOptions()
    service(InMemoryRegistry(), options).switch(switch_event(version(1), expect=None))
    created = options.options["support"]
    assert created.provider.value == "sagemaker" and created.version == 1


def test_an_option_moved_since_the_plan_is_left_alone() -> None:
    v1, v2, v3 = version(1), version(2), version(3)
    options = InMemoryOptions([live_option("support", v3)])  # another deployment got there first
    with pytest.raises(OptionMovedByAnotherDeployment):
        service(InMemoryRegistry(), options).switch(switch_event(v2, expect=v1))
    assert options.options["support"].model_package_arn == v3.arn and "support-v2" not in options.options


class RacedOnce(InMemoryOptions):
    """An operator edits the option (another field) between the service's read and its write, once."""

    def __init__(self, option: LlmOption) -> None:
        super().__init__([option])
        self.raced = False

    def put(self, option: LlmOption, *, expected_version: int | None, updated_by: str) -> LlmOption:
        if not self.raced and option.id == "support":
            self.raced = True
            current = self.options["support"]
            super().put(current, expected_version=current.version, updated_by="operator")
        return super().put(option, expected_version=expected_version, updated_by=updated_by)


def test_a_concurrent_edit_of_another_field_is_reread_and_retried_once() -> None:
    v1, v2 = version(1), version(2)
    options = RacedOnce(live_option("support", v1))
    out = service(InMemoryRegistry(), options).switch(switch_event(v2, expect=v1))
    assert options.raced and out["option_version"] == 6
    assert options.options["support"].model_package_arn == v2.arn


def test_a_second_lost_race_reaches_the_state_machines_retry() -> None:
    class AlwaysRaced(InMemoryOptions):
        def put(self, option: LlmOption, *, expected_version: int | None, updated_by: str) -> LlmOption:
            raise VersionConflict(option.id, expected_version=expected_version, current_version=99)

    v1 = version(1)
    with pytest.raises(VersionConflict):
        service(InMemoryRegistry(), AlwaysRaced([live_option("support", v1)])).switch(
            switch_event(version(2), expect=v1)
        )


# --- retire ---------------------------------------------------------------------------------------


def test_retirement_removes_old_versions_resources_but_never_what_serves() -> None:
    v = [version(n) for n in range(1, 5)]  # v4 live, retention 1 keeps v3: v1 and v2 retire
    registry = InMemoryRegistry(endpoints={"support-ep": {"status": "InService", "config_name": "x"}})
    for each in v:
        registry.add_version(each)
        prefix = version_prefix(GROUP, each.version)
        registry.endpoint_configs.add(f"{prefix}cfg")
        registry.models.add(f"{prefix}model")
    registry.endpoints["support-ep"]["config_name"] = f"{version_prefix(GROUP, 2)}cfg"  # still routed
    pinned = LlmOption.from_dict({**live_option("support-v1", v[0]).to_item(), "id": "support-v1"})
    options = InMemoryOptions([live_option("support", v[3]), pinned])
    lifecycle = service(registry, options)

    dry = lifecycle.retire({"groups": [GROUP], "dry_run": True})
    assert [r["version"] for r in dry["families"][GROUP]["retired"]] == [2, 1]
    assert registry.archived == {} and len(registry.endpoint_configs) == 4  # a dry run changes nothing

    report = lifecycle.retire({"groups": [GROUP]})

    retired = report["families"][GROUP]["retired"]
    assert [(r["version"], r["endpoint_configs"]) for r in retired] == [
        (2, []),
        (1, [f"{version_prefix(GROUP, 1)}cfg"]),
    ]
    assert set(registry.archived) == {v[0].arn, v[1].arn}
    assert f"{version_prefix(GROUP, 2)}cfg" in registry.endpoint_configs  # the endpoint still uses it
    assert registry.models == {f"{version_prefix(GROUP, n)}model" for n in (3, 4)}
    assert options.options["support-v1"].status is OptionStatus.RETIRED
    assert options.options["support-v1"].replaced_by == "support"
    assert options.options["support"].model_package_arn == v[3].arn
