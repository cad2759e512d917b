"""Adapter versions in an adapter family's other regions (issue 16), on the in-memory fakes: the plan
checks each region's base and lists what each region's option serves, the component is made under
the same name on each region's base from its replica, one poll, the regional options of a
family-wide adapter move together, and the rollback puts every option back and deletes what was
made, whatever step failed."""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.lifecycle.errors import RegionalDeploymentFailed
from switchboard.lifecycle.model import ModelFamily, PackageVersion
from switchboard.lifecycle.service import BaseComponentMissing, LifecycleService
from switchboard.options.model import OptionStatus
from tests.fakes import InMemoryOptions, InMemoryRegistry
from tests.fakes.adapters import InMemoryTenantAdapters

HOME, IRELAND, SYDNEY = "us-east-1", "eu-west-1", "ap-southeast-2"
LORA = ModelFamily(
    group="lora",
    option_id="lora",
    endpoint_name="base-ep",
    base_component="base-ic",
    regions=(HOME, IRELAND, SYDNEY),
)
REPLICAS = {IRELAND: "replica-eu", SYDNEY: "replica-ap"}
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:deploy:abc123"


def _version(number: int, tenant: str | None = None) -> PackageVersion:
    return PackageVersion(
        arn=f"arn:aws:sagemaker:{HOME}:123456789012:model-package/lora/{number}",
        group="lora",
        version=number,
        approval="Approved",
        model_data_url=f"s3://home-artifacts/lora/v{number}.tar.gz",
        image="llm:1",
        adapter_of="base-ic",
        tenant=tenant,
    )


class World:
    def __init__(self, *, bases_in: tuple[str, ...] = (HOME, IRELAND, SYDNEY)) -> None:
        self.registries = {region: InMemoryRegistry() for region in (HOME, IRELAND, SYDNEY)}
        for region in bases_in:
            self.registries[region].endpoints["base-ep"] = {"status": "InService", "config_name": "c"}
            self.registries[region].components["base-ic"] = ("base-ep", "InService")
        self.options = InMemoryOptions()
        self.service = LifecycleService(
            families={LORA.group: LORA},
            options=self.options,
            registry=self.registries[HOME],
            adapters=InMemoryTenantAdapters(),
            registries=self.registries.__getitem__,
            home_region=HOME,
            regional_artifact_buckets=REPLICAS,
            execution_role_arn="arn:aws:iam::123456789012:role/sm",
        )

    def plan(self, version: PackageVersion) -> dict[str, Any]:
        self.registries[HOME].add_version(version)
        return self.service.plan(
            {"event": {"arn": version.arn, "status": "Approved", "group": "lora"}, "execution_id": EXECUTION}
        )

    def make_everywhere(self, plan: dict[str, Any]) -> str:
        """What the workflow does before routing moves: the home component, then each region's."""
        component = str(plan["names"]["component"])
        self.registries[HOME].components[component] = ("base-ep", "InService")
        for entry in plan["rollout"]["regions"]:
            self.service.create_region_adapter(
                {"region": entry, "family": plan["family"], "names": plan["names"]}
            )
        return component

    def switch_home(self, plan: dict[str, Any]) -> None:
        self.service.switch(
            {
                "option_id": "lora",
                "expect_package_arn": plan["live"]["arn"],
                "package_arn": plan["target"]["arn"],
                "version": plan["target"]["version"],
                "endpoint_name": "base-ep",
                "inference_component": plan["names"]["component"],
                "updated_by": "test",
            }
        )

    def live_everywhere(self, version: PackageVersion) -> tuple[dict[str, Any], str]:
        """Version ``version`` made in every region and every option on it (a finished rollout)."""
        plan = self.plan(version)
        component = self.make_everywhere(plan)
        self.switch_home(plan)
        self.service.switch_region_adapter_options({"plan": plan, "updated_by": "test"})
        return plan, component


def test_the_plan_lists_every_other_region_of_an_adapter_family_with_what_its_option_serves() -> None:
    world = World()
    _, v1_component = world.live_everywhere(_version(1))

    plan = world.plan(_version(2))

    assert plan["rollout"]["count"] == 2
    ireland, sydney = plan["rollout"]["regions"]
    assert (ireland["region"], sydney["region"]) == (IRELAND, SYDNEY)
    assert ireland["option_id"] == f"lora-{IRELAND}"
    assert ireland["live"]["arn"] == _version(1).arn
    assert ireland["live"]["inference_component"] == v1_component
    assert sydney["model_data_url"] == "s3://replica-ap/lora/v2.tar.gz"
    # an adapter component runs in its base's container: no image to map or look up per region
    assert "image" not in ireland
    assert plan["rollout"]["image_refusal"] == ""


def test_a_tenants_adapter_rolls_out_to_the_other_regions_too() -> None:
    world = World()
    plan = world.plan(_version(1, tenant="acme"))
    assert plan["tenant"] == "acme"
    assert [r["region"] for r in plan["rollout"]["regions"]] == [IRELAND, SYDNEY]
    assert all(
        r["live"] == {"arn": "", "endpoint_name": "", "inference_component": ""}
        for r in plan["rollout"]["regions"]
    )


def test_a_region_without_the_base_fails_the_plan_naming_it_before_anything_is_made() -> None:
    world = World(bases_in=(HOME, IRELAND))
    with pytest.raises(BaseComponentMissing, match=f"in region {SYDNEY}"):
        world.plan(_version(1))
    assert all(set(r.components) <= {"base-ic"} for r in world.registries.values())


def test_the_component_is_made_under_the_same_name_on_each_regions_base_from_its_replica() -> None:
    world = World()
    plan = world.plan(_version(1))
    component = plan["names"]["component"]

    done = world.service.create_region_adapter(
        {"region": plan["rollout"]["regions"][1], "family": plan["family"], "names": plan["names"]}
    )

    assert done == {"region": SYDNEY, "component": component}
    assert world.registries[SYDNEY].components[component] == ("base-ep", "InService")
    assert world.registries[SYDNEY].created_components[component] == "s3://replica-ap/lora/v1.tar.gz"
    assert component not in world.registries[IRELAND].components
    # a retried task finds it made and makes nothing twice
    world.service.create_region_adapter(
        {"region": plan["rollout"]["regions"][1], "family": plan["family"], "names": plan["names"]}
    )
    assert list(world.registries[SYDNEY].created_components) == [component]


def test_a_refused_creation_names_the_region() -> None:
    world = World()
    plan = world.plan(_version(1))
    del world.registries[IRELAND].components["base-ic"]  # gone since the plan
    with pytest.raises(RegionalDeploymentFailed, match=f"^region {IRELAND}: LookupError"):
        world.service.create_region_adapter(
            {"region": plan["rollout"]["regions"][0], "family": plan["family"], "names": plan["names"]}
        )


@pytest.mark.parametrize(
    ("status", "polls", "outcome"),
    [
        ("InService", 0, {"settled": True, "polls": 1}),
        ("Creating", 0, {"settled": False, "polls": 1}),
        ("Failed", 0, "is Failed"),
        (None, 0, "is missing"),
        ("Creating", 2, "still Creating after 3 polls"),
    ],
)
def test_one_poll_of_a_regions_new_component(status: str | None, polls: int, outcome: Any) -> None:
    world = World()
    if status is not None:
        world.registries[SYDNEY].components["new-ic"] = ("base-ep", status)
    event = {"region": SYDNEY, "component": "new-ic", "polls": polls, "max_polls": 3}
    if isinstance(outcome, dict):
        assert world.service.region_adapter(event) == outcome
    else:
        with pytest.raises(RegionalDeploymentFailed, match=f"^region {SYDNEY}: .*{outcome}"):
            world.service.region_adapter(event)


def test_a_family_wide_adapter_moves_every_regions_option_to_the_same_component() -> None:
    world = World()
    _, v1_component = world.live_everywhere(_version(1))
    plan = world.plan(_version(2))
    v2_component = world.make_everywhere(plan)
    world.switch_home(plan)

    moved = world.service.switch_region_adapter_options({"plan": plan, "updated_by": "model-deployment:x"})

    assert moved == {"moved": [f"lora-{IRELAND}", f"lora-{SYDNEY}"]}
    for region in (IRELAND, SYDNEY):
        option = world.options.get(f"lora-{region}")
        assert option is not None and option.region == region
        assert (option.model_package_arn, option.inference_component) == (_version(2).arn, v2_component)
        assert option.endpoint_name == "base-ep"
    assert v1_component != v2_component


def test_a_regional_option_moved_by_someone_else_refuses_the_switch_naming_the_region() -> None:
    world = World()
    world.live_everywhere(_version(1))
    plan = world.plan(_version(2))
    world.make_everywhere(plan)
    world.switch_home(plan)
    sydney = world.options.get(f"lora-{SYDNEY}")
    assert sydney is not None
    world.options.put(
        sydney.__class__.from_dict({**sydney.to_dict(), "model_package_arn": "arn:other"}),
        expected_version=sydney.version,
        updated_by="operator",
    )
    with pytest.raises(RegionalDeploymentFailed, match=f"^region {SYDNEY}: option"):
        world.service.switch_region_adapter_options({"plan": plan, "updated_by": "x"})


def test_the_rollback_puts_every_option_back_and_deletes_the_version_in_every_other_region() -> None:
    world = World()
    _, v1_component = world.live_everywhere(_version(1))
    plan = world.plan(_version(2))
    v2_component = world.make_everywhere(plan)
    # home and Ireland moved; Sydney's option was refused
    world.switch_home(plan)
    ireland = plan["rollout"]["regions"][0]
    world.service.switch(
        {
            "option_id": ireland["option_id"],
            "region": IRELAND,
            "expect_package_arn": ireland["live"]["arn"],
            "package_arn": plan["target"]["arn"],
            "version": 2,
            "endpoint_name": "base-ep",
            "inference_component": v2_component,
            "updated_by": "test",
        }
    )
    sydney_before = world.options.get(f"lora-{SYDNEY}")

    done = world.service.roll_back_adapter_rollout({"plan": plan, "updated_by": "model-deployment:x"})

    assert done == {
        "restored_options": [f"lora-{IRELAND}", "lora"],
        "deleted_in": [IRELAND, SYDNEY],
        "left": [],
    }
    for option_id in ("lora", f"lora-{IRELAND}", f"lora-{SYDNEY}"):
        option = world.options.get(option_id)
        assert option is not None
        assert (option.model_package_arn, option.inference_component) == (_version(1).arn, v1_component)
    assert world.options.get(f"lora-{SYDNEY}") == sydney_before
    for region in (IRELAND, SYDNEY):
        assert v2_component not in world.registries[region].components
        assert v1_component in world.registries[region].components
    # the home component is the workflow's next state, once no option names it
    assert v2_component in world.registries[HOME].components
    again = world.service.roll_back_adapter_rollout({"plan": plan, "updated_by": "model-deployment:x"})
    assert again == {"restored_options": [], "deleted_in": [], "left": []}


def test_a_first_version_rolled_back_retires_the_options_it_created() -> None:
    world = World()
    plan = world.plan(_version(1))
    world.make_everywhere(plan)
    world.switch_home(plan)
    world.service.switch_region_adapter_options({"plan": plan, "updated_by": "x"})

    world.service.roll_back_adapter_rollout({"plan": plan, "updated_by": "x"})

    for option_id in ("lora", f"lora-{IRELAND}", f"lora-{SYDNEY}"):
        option = world.options.get(option_id)
        assert option is not None and option.status is OptionStatus.RETIRED


def test_a_tenants_rollback_touches_no_option_and_a_failed_deletion_is_reported_not_raised() -> None:
    world = World()
    plan = world.plan(_version(1, tenant="acme"))
    component = world.make_everywhere(plan)

    def broken(name: str) -> bool:
        raise ConnectionError("sagemaker unreachable")

    world.registries[IRELAND].delete_component = broken  # type: ignore[method-assign]

    done = world.service.roll_back_adapter_rollout({"plan": plan, "updated_by": "x"})

    assert done["restored_options"] == [] and done["deleted_in"] == [SYDNEY]
    assert done["left"] == [f"{IRELAND}: ConnectionError: sagemaker unreachable"]
    assert component not in world.registries[SYDNEY].components
    assert world.options.get("lora") is None


def test_the_old_component_goes_in_every_other_region_by_its_name() -> None:
    world = World()
    plan, v1_component = world.live_everywhere(_version(1))

    done = world.service.delete_region_adapters(
        {"regions": plan["rollout"]["regions"], "component": v1_component}
    )

    assert done == {"deleted_in": [IRELAND, SYDNEY], "left": []}
    assert all(v1_component not in world.registries[r].components for r in (IRELAND, SYDNEY))
    assert world.service.delete_region_adapters({"regions": plan["rollout"]["regions"], "component": ""}) == {
        "deleted_in": [],
        "left": [],
    }


# -- a tenant's canary is judged on its component in every region


def _judged(home: Any, regional: dict[str, Any], *, min_invocations: int = 0) -> dict[str, Any]:
    from switchboard.lifecycle.model import AdapterCanaryPolicy
    from tests.unit.test_adapter_canary import FakeSignals, _canarying, canary_service, judge_event

    registry, adapters, _, acme3 = _canarying()
    svc = canary_service(registry, adapters, FakeSignals(seen=home))
    svc.families = {
        group: family.model_copy(
            update={"canary": AdapterCanaryPolicy(max_error_rate_percent=5, min_invocations=min_invocations)}
        )
        for group, family in svc.families.items()
    }
    svc.home_region = HOME
    readers = {region: FakeSignals(seen=seen) for region, seen in regional.items()}
    svc.regional_signals = readers.__getitem__
    event = {**judge_event(acme3), "regions": [{"region": region} for region in regional]}
    verdict = svc.judge_canary(event)
    for reader in readers.values():
        assert [asked[0] for asked in reader.asked] == [event["component"]]  # the same name everywhere
    return verdict


def test_a_canary_failing_in_one_region_only_rolls_back_naming_that_region() -> None:
    from switchboard.lifecycle.canary import ComponentSignals

    # 1 error in 100 at home and 0 in Ireland: 1 % overall; but 5 of 10 in Sydney
    verdict = _judged(
        ComponentSignals(100, 1, 200.0),
        {IRELAND: ComponentSignals(100, 0, 250.0), SYDNEY: ComponentSignals(10, 5, 300.0)},
    )
    assert verdict["healthy"] is False
    assert verdict["reason"].startswith(f"region {SYDNEY}: error rate 50.0%")
    assert (verdict["invocations"], verdict["errors"], verdict["latency_ms"]) == (210, 6, 300.0)


def test_a_canary_healthy_everywhere_counts_its_invocations_over_every_region() -> None:
    from switchboard.lifecycle.canary import ComponentSignals

    # 10 invocations needed: 4 at home, 3 in each other region
    verdict = _judged(
        ComponentSignals(4, 0, 200.0),
        {IRELAND: ComponentSignals(3, 0, None), SYDNEY: ComponentSignals(3, 0, 100.0)},
        min_invocations=10,
    )
    assert verdict["healthy"] is True and "10 invocations" in verdict["reason"]
    too_few = _judged(
        ComponentSignals(4, 0, 200.0), {IRELAND: ComponentSignals(3, 0, None)}, min_invocations=10
    )
    assert too_few["healthy"] is False and "fewer than the 10 needed" in too_few["reason"]


def test_a_region_without_a_signal_reader_is_not_judged() -> None:
    from switchboard.lifecycle.service import CanaryNotJudged
    from tests.unit.test_adapter_canary import FakeSignals, _canarying, canary_service, judge_event

    registry, adapters, _, acme3 = _canarying()
    svc = canary_service(registry, adapters, FakeSignals())
    with pytest.raises(CanaryNotJudged, match=IRELAND):
        svc.judge_canary({**judge_event(acme3), "regions": [{"region": IRELAND}]})


def test_a_canary_is_rolled_back_by_a_family_alarm_in_alarm_in_another_region_only() -> None:
    from switchboard.lifecycle.canary import ComponentSignals
    from tests.unit.test_adapter_canary import FakeSignals, _canarying, canary_service, judge_event

    registry, adapters, _, acme3 = _canarying()
    svc = canary_service(registry, adapters, FakeSignals(seen=ComponentSignals(100, 0, 200.0)))
    healthy = ComponentSignals(100, 0, 200.0)
    readers = {IRELAND: FakeSignals(seen=healthy), SYDNEY: FakeSignals(seen=healthy)}
    svc.regional_signals = readers.__getitem__
    event = {
        **judge_event(acme3),
        "regions": [{"region": IRELAND}, {"region": SYDNEY}],
        "regional_alarm_names": ["lora-invocation-5xx", "lora-model-latency"],
    }
    assert svc.judge_canary(event)["healthy"] is True

    readers[SYDNEY].firing = ["lora-model-latency"]
    verdict = svc.judge_canary(event)
    assert verdict["healthy"] is False
    assert verdict["reason"] == f"rollback alarm in ALARM: lora-model-latency in {SYDNEY}"
    # without the regional names (an older definition) only the home alarms count, as before
    assert svc.judge_canary({k: v for k, v in event.items() if k != "regional_alarm_names"})["healthy"]


# -- after the bake of a version live in every region: each region's alarms


def _bake_reader(firing_by_region: dict[str, list[str]]) -> tuple[LifecycleService, dict[str, Any]]:
    from tests.unit.test_adapter_canary import FakeSignals

    world = World()
    readers = {region: FakeSignals(firing=list(firing)) for region, firing in firing_by_region.items()}
    world.service.regional_signals = readers.__getitem__
    return world.service, readers


def test_the_bake_reads_each_other_regions_alarms_and_names_region_and_alarm() -> None:
    names = ["lora-invocation-5xx", "lora-model-latency"]
    service, _ = _bake_reader({IRELAND: ["lora-invocation-5xx", "other-family-5xx"], SYDNEY: []})
    event = {"regions": [{"region": IRELAND}, {"region": SYDNEY}], "alarm_names": names}

    result = service.regional_bake_alarms(event)

    assert result == {
        "firing": True,
        "alarms": [{"region": IRELAND, "alarm": "lora-invocation-5xx"}],
        "regions_checked": [IRELAND, SYDNEY],
        "reason": f"rollback alarm lora-invocation-5xx in ALARM in {IRELAND}",
    }


def test_a_quiet_bake_everywhere_is_not_firing_and_says_where_it_looked() -> None:
    service, _ = _bake_reader({IRELAND: [], SYDNEY: []})
    result = service.regional_bake_alarms(
        {"regions": [{"region": IRELAND}, {"region": SYDNEY}], "alarm_names": ["lora-invocation-5xx"]}
    )
    assert (result["firing"], result["alarms"]) == (False, [])
    assert result["reason"] == f"no rollback alarm in ALARM in {IRELAND}, {SYDNEY}"


def test_the_bake_without_a_reader_for_a_region_raises_naming_it() -> None:
    from switchboard.lifecycle.errors import LifecycleError

    world = World()
    with pytest.raises(LifecycleError, match=IRELAND):
        world.service.regional_bake_alarms({"regions": [{"region": IRELAND}], "alarm_names": ["a"]})
