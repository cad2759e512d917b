"""The region-by-region rollout's tasks (issue 16) on the in-memory fakes: what the plan hands the
workflow for each other region, one poll of a region's endpoint, and the rollback of every region
moved (home included) when a later region fails. (Adapter versions in the other regions:
``test_lifecycle_adapter_regions.py``.)"""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.lifecycle.errors import RegionalDeploymentFailed
from switchboard.lifecycle.model import ModelFamily, PackageVersion
from switchboard.lifecycle.service import LifecycleService, guarded_deployment
from tests.fakes import InMemoryOptions, InMemoryRegistry
from tests.fakes.images import InMemoryImages

HOME, IRELAND, SYDNEY = "us-east-1", "eu-west-1", "ap-southeast-2"
GLOBAL = ModelFamily(group="glob", option_id="glob", endpoint_name="glob-ep", regions=(HOME, IRELAND, SYDNEY))
LOCAL = ModelFamily(group="solo", option_id="solo", endpoint_name="solo-ep")
ADAPTERS = ModelFamily(
    group="lora", option_id="lora", endpoint_name="base-ep", base_component="base-ic", regions=(HOME, IRELAND)
)
REPLICAS = {IRELAND: "replica-eu", SYDNEY: "replica-ap"}
ROLE = "arn:aws:iam::123456789012:role/sm"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm:1"
SETTINGS = {
    "traffic_type": "CANARY",
    "canary_percent": 10,
    "linear_step_percent": 20,
    "wait_interval_seconds": 0,
    "termination_wait_seconds": 0,
    "maximum_execution_timeout_seconds": 600,
}


def _version(group: str, number: int) -> PackageVersion:
    return PackageVersion(
        arn=f"arn:aws:sagemaker:{HOME}:123456789012:model-package/{group}/{number}",
        group=group,
        version=number,
        approval="Approved",
        model_data_url=f"s3://home-artifacts/{group}/v{number}.tar.gz",
        image=IMAGE,
    )


class ImageRecordingRegistry(InMemoryRegistry):
    """Keeps the image each model was created with."""

    def __init__(self) -> None:
        super().__init__()
        self.model_images: dict[str, str] = {}

    def create_model(self, name: str, *, image: str, model_data_url: str, execution_role_arn: str) -> None:
        super().create_model(
            name, image=image, model_data_url=model_data_url, execution_role_arn=execution_role_arn
        )
        self.model_images[name] = image


class World:
    def __init__(
        self,
        *,
        buckets: dict[str, str] | None = None,
        role: str = ROLE,
        image_regions: tuple[str, ...] = (IRELAND, SYDNEY),
    ) -> None:
        self.registries = {region: ImageRecordingRegistry() for region in (HOME, IRELAND, SYDNEY)}
        self.options = InMemoryOptions()
        self.images = InMemoryImages(*[IMAGE.replace(HOME, region) for region in image_regions])
        self.service = LifecycleService(
            families={f.group: f for f in (GLOBAL, LOCAL, ADAPTERS)},
            options=self.options,
            registry=self.registries[HOME],
            registries=self.registries.__getitem__,
            home_region=HOME,
            regional_artifact_buckets=REPLICAS if buckets is None else buckets,
            execution_role_arn=role,
            images=self.images,
        )

    def live_everywhere(self, family: ModelFamily, version: PackageVersion, config: str) -> None:
        for region in family.deployment_regions(HOME):
            self.registries[region].endpoints[family.endpoint_name] = {
                "status": "InService",
                "config_name": config,
            }
            self.service.switch(
                {
                    "option_id": family.regional_option_id(region, HOME),
                    "region": "" if region == HOME else region,
                    "expect_package_arn": "",
                    "package_arn": version.arn,
                    "version": version.version,
                    "endpoint_name": family.endpoint_name,
                    "updated_by": "test",
                }
            )

    def plan(self, version: PackageVersion) -> dict[str, Any]:
        self.registries[HOME].add_version(version)
        return self.service.plan(
            {
                "event": {"arn": version.arn, "status": "Approved", "group": version.group},
                "execution_id": "arn:aws:states:us-east-1:123456789012:execution:deploy:abc123",
            }
        )


def test_the_plan_lists_the_other_regions_in_order_as_each_serves_now() -> None:
    world = World()
    v1, v2 = _version("glob", 1), _version("glob", 2)
    world.registries[HOME].add_version(v1)
    world.live_everywhere(GLOBAL, v1, "glob-v1-config")

    rollout = world.plan(v2)["rollout"]

    assert rollout["count"] == 2
    assert [r["region"] for r in rollout["regions"]] == [IRELAND, SYDNEY]
    ireland = rollout["regions"][0]
    assert ireland["option_id"] == f"glob-{IRELAND}"
    assert ireland["endpoint"] == {"exists": True, "config_name": "glob-v1-config"}
    assert ireland["live"]["arn"] == v1.arn
    assert ireland["model_data_url"] == "s3://replica-eu/glob/v2.tar.gz"
    assert ireland["image"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/llm:1"
    assert ireland["image_check"] == "present"
    assert rollout["image_refusal"] == ""
    assert world.options.get(f"glob-{IRELAND}").region == IRELAND  # type: ignore[union-attr]


def test_a_single_region_family_rolls_out_nowhere_else() -> None:
    world = World()
    assert world.plan(_version(LOCAL.group, 1))["rollout"] == {
        "count": 0,
        "regions": [],
        "image_refusal": "",
    }
    assert world.images.asked == []
    # (adapter families roll out region by region too: tests/unit/test_lifecycle_adapter_regions.py)


@pytest.mark.parametrize(
    ("buckets", "role", "missing"),
    [
        ({IRELAND: "replica-eu"}, ROLE, "REGIONAL_ARTIFACT_BUCKETS"),
        (REPLICAS, "", "SAGEMAKER_EXECUTION_ROLE"),
    ],
)
def test_a_region_without_its_replica_or_role_fails_the_plan_naming_it(
    buckets: dict[str, str], role: str, missing: str
) -> None:
    world = World(buckets=buckets, role=role)
    with pytest.raises(RegionalDeploymentFailed, match=missing):
        world.plan(_version("glob", 1))


def _deploy_event(world: World, plan: dict[str, Any], index: int) -> dict[str, Any]:
    return {
        "region": plan["rollout"]["regions"][index],
        "family": plan["family"],
        "target": plan["target"],
        "names": plan["names"],
        "alarm_names": ["a-invocation-5xx", "a-model-latency"],
        "settings": SETTINGS,
    }


def test_deploying_in_a_region_makes_the_model_config_and_updates_that_regions_endpoint() -> None:
    world = World()
    v1, v2 = _version("glob", 1), _version("glob", 2)
    world.registries[HOME].add_version(v1)
    world.live_everywhere(GLOBAL, v1, "glob-v1-config")
    plan = world.plan(v2)

    world.service.deploy_region(_deploy_event(world, plan, 1))

    sydney, ireland = world.registries[SYDNEY], world.registries[IRELAND]
    config = plan["names"]["endpoint_config"]
    assert config in sydney.endpoint_configs and plan["names"]["model"] in sydney.models
    assert sydney.endpoints["glob-ep"]["config_name"] == config
    assert ireland.endpoints["glob-ep"]["config_name"] == "glob-v1-config"  # untouched
    # SageMaker runs only an image of the model's own region: Sydney's copy, not the home one
    assert sydney.model_images[plan["names"]["model"]] == IMAGE.replace(HOME, SYDNEY)


def test_an_image_missing_in_one_region_refuses_the_rollout_in_the_plan_naming_it() -> None:
    world = World(image_regions=(IRELAND,))

    plan = world.plan(_version("glob", 2))

    refusal = plan["rollout"]["image_refusal"]
    assert f"{SYDNEY}: image {IMAGE.replace(HOME, SYDNEY)} does not exist" in refusal
    assert IRELAND not in refusal.split("; ", 1)[1]
    assert [r["image_check"] for r in plan["rollout"]["regions"]] == ["present", "missing"]
    assert all(not registry.models for registry in world.registries.values())  # nothing made yet


def test_a_plan_without_mapped_images_still_deploys_the_regions_own_copy() -> None:
    """An execution planned before images were mapped (its plan has no ``image``) never sends the
    home region's URI to another region."""
    world = World()
    plan = world.plan(_version("glob", 2))
    event = _deploy_event(world, plan, 0)
    event["region"] = {k: v for k, v in event["region"].items() if k not in ("image", "image_check")}

    world.service.deploy_region(event)

    assert world.registries[IRELAND].model_images[plan["names"]["model"]] == IMAGE.replace(HOME, IRELAND)


def test_a_region_whose_image_cannot_be_mapped_fails_that_regions_deployment() -> None:
    world = World()
    plan = world.plan(_version("glob", 2))
    event = {**_deploy_event(world, plan, 0), "target": {**plan["target"], "image": "llm:1"}}
    event["region"] = {k: v for k, v in event["region"].items() if k != "image"}

    with pytest.raises(
        RegionalDeploymentFailed, match=f"region {IRELAND}: image 'llm:1' is not an Amazon ECR"
    ):
        world.service.deploy_region(event)
    assert not world.registries[IRELAND].models


@pytest.mark.parametrize(
    ("now", "polls", "outcome"),
    [
        ({"status": "InService", "config_name": "new"}, 0, {"settled": True, "polls": 1}),
        ({"status": "Updating", "config_name": "old"}, 0, {"settled": False, "polls": 1}),
        ({"status": "InService", "config_name": "old"}, 0, "auto-rollback"),
        ({"status": "Failed", "config_name": "new"}, 0, "is Failed"),
        ({"status": "Updating", "config_name": "old"}, 2, "after 3 polls"),
    ],
)
def test_one_poll_of_a_regions_endpoint(now: dict[str, str], polls: int, outcome: Any) -> None:
    world = World()
    world.registries[SYDNEY].endpoints["glob-ep"] = now
    event = {
        "region": SYDNEY,
        "endpoint_name": "glob-ep",
        "config_name": "new",
        "polls": polls,
        "max_polls": 3,
    }
    if isinstance(outcome, dict):
        assert world.service.region_endpoint(event) == outcome
    else:
        with pytest.raises(RegionalDeploymentFailed, match=f"region {SYDNEY}: .*{outcome}"):
            world.service.region_endpoint(event)


def test_the_rollback_restores_every_region_moved_and_home_and_leaves_the_rest() -> None:
    world = World()
    v1, v2 = _version("glob", 1), _version("glob", 2)
    world.registries[HOME].add_version(v1)
    world.live_everywhere(GLOBAL, v1, "glob-v1-config")
    plan = world.plan(v2)
    # home and Ireland moved to version 2; Sydney failed before its option moved
    for region in (HOME, IRELAND, SYDNEY):
        world.registries[region].endpoints["glob-ep"]["config_name"] = "glob-v2-config"
    for region in (HOME, IRELAND):
        world.service.switch(
            {
                "option_id": GLOBAL.regional_option_id(region, HOME),
                "expect_package_arn": v1.arn,
                "package_arn": v2.arn,
                "version": 2,
                "endpoint_name": "glob-ep",
                "updated_by": "test",
            }
        )
    sydney_before = world.options.get(f"glob-{SYDNEY}")

    done = world.service.roll_back_rollout({"plan": plan, "updated_by": "model-deployment:x"})

    for region in (IRELAND, SYDNEY):
        assert world.registries[region].endpoints["glob-ep"]["config_name"] == "glob-v1-config"
    # the home endpoint is the workflow's own (RestorePreviousEndpointConfig after this task)
    assert world.registries[HOME].endpoints["glob-ep"]["config_name"] == "glob-v2-config"
    for option_id in ("glob", f"glob-{IRELAND}", f"glob-{SYDNEY}"):
        assert world.options.get(option_id).model_package_arn == v1.arn  # type: ignore[union-attr]
    assert world.options.get(f"glob-{SYDNEY}") == sydney_before
    assert [(d["region"], d["option"]) for d in done["restored"]] == [
        (IRELAND, v1.arn),
        (SYDNEY, ""),
        (HOME, v1.arn),
    ]
    # idempotent: a second run finds nothing to restore
    again = world.service.roll_back_rollout({"plan": plan, "updated_by": "model-deployment:x"})
    assert all(d["endpoint"] == "" and d["option"] == "" for d in again["restored"])


def test_a_linear_guarded_update_steps_with_the_regions_alarms() -> None:
    config = guarded_deployment({**SETTINGS, "traffic_type": "LINEAR"}, ["x-invocation-5xx"])
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 20},
        "WaitIntervalInSeconds": 0,
    }
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "x-invocation-5xx"}]}
