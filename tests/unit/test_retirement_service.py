"""Retirement in every region and per tenant (issue 16), with the in-memory fakes.

A family listing other regions loses a retired version's components, endpoint configs and models
there too, never what a region serves; a region that cannot be reached is reported and leaves the
version unarchived (the next run retries). Tenant adapter versions are retained per tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.lifecycle.adapter_store import AdapterRef, AdapterState, TenantAdapter
from switchboard.lifecycle.logic import version_option_id, version_prefix
from switchboard.lifecycle.model import ModelFamily, PackageVersion
from switchboard.lifecycle.service import LifecycleService, ModelRegistry
from switchboard.options.model import LlmOption, OptionStatus
from tests.fakes import InMemoryOptions, InMemoryRegistry, InMemoryTenantAdapters

HOME, IRELAND, SYDNEY = "us-east-1", "eu-west-1", "ap-southeast-2"
GLOBAL = ModelFamily(
    group="support-llm",
    option_id="support",
    endpoint_name="support-ep",
    retention=1,
    regions=(HOME, IRELAND, SYDNEY),
)
LORA = ModelFamily(
    group="support-lora", option_id="lora", endpoint_name="lora-ep", base_component="lora-base", retention=1
)


def version(number: int, group: str = GLOBAL.group, tenant: str | None = None) -> PackageVersion:
    return PackageVersion(
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{number}",
        group=group,
        version=number,
        approval="Approved",
        tenant=tenant,
    )


def option(
    option_id: str, serving: PackageVersion, *, region: str | None = None, component: str = ""
) -> LlmOption:
    return LlmOption.from_dict(
        {
            "id": option_id,
            "provider": "sagemaker",
            "endpoint_name": "support-ep",
            "model_package_arn": serving.arn,
            "region": region,
            "inference_component": component or None,
            "version": 3,
        }
    )


def deployed(registry: InMemoryRegistry, group: str, numbers: range, *, endpoint: str = "support-ep") -> None:
    """Each version's model and endpoint config as the rollout names them (the same in every region)."""
    for number in numbers:
        name = f"{version_prefix(group, number)}abcd1234"
        registry.models.add(name)
        registry.endpoint_configs.add(name)
    serving = f"{version_prefix(group, numbers[-1])}abcd1234"
    registry.endpoints[endpoint] = {"status": "InService", "config_name": serving}


@dataclass
class Regions:
    """``registries`` for the service: a fake per region; ``down`` ones raise as a network failure."""

    fakes: dict[str, InMemoryRegistry]
    down: set[str] = field(default_factory=set)

    def __call__(self, region: str) -> ModelRegistry:
        if region in self.down:
            raise ConnectionError(
                f"Could not connect to the endpoint URL: https://api.sagemaker.{region}.amazonaws.com/"
            )
        return self.fakes[region]


def global_setup() -> tuple[InMemoryRegistry, Regions, InMemoryOptions, list[PackageVersion]]:
    versions = [version(n) for n in range(1, 5)]  # 4 live everywhere, retention 1: 1 and 2 retire
    home = InMemoryRegistry()
    for each in versions:
        home.add_version(each)
    regions = Regions({IRELAND: InMemoryRegistry(), SYDNEY: InMemoryRegistry()})
    for registry in (home, *regions.fakes.values()):
        deployed(registry, GLOBAL.group, range(1, 5))
    options = InMemoryOptions(
        [
            option("support", versions[3]),
            option(f"support-{IRELAND}", versions[3], region=IRELAND),
            option(f"support-{SYDNEY}", versions[3], region=SYDNEY),
            *(
                option(version_option_id(base, n), versions[n - 1])
                for base in ("support", f"support-{IRELAND}", f"support-{SYDNEY}")
                for n in (1, 2)
            ),
        ]
    )
    return home, regions, options, versions


def service(
    home: InMemoryRegistry,
    regions: Regions | None,
    options: InMemoryOptions,
    adapters: InMemoryTenantAdapters | None = None,
) -> LifecycleService:
    return LifecycleService(
        families={f.group: f for f in (GLOBAL, LORA)},
        options=options,
        registry=home,
        registries=regions,
        adapters=adapters,
        home_region=HOME,
    )


def names(group: str, *numbers: int) -> set[str]:
    return {f"{version_prefix(group, n)}abcd1234" for n in numbers}


# --- every region -----------------------------------------------------------------------------------


def test_a_retired_version_goes_in_every_region_the_family_lists() -> None:
    home, regions, options, versions = global_setup()
    # Sydney's endpoint still serves version 2 (its rollout of 3 and 4 was rolled back there)
    regions.fakes[SYDNEY].endpoints["support-ep"]["config_name"] = next(iter(names(GLOBAL.group, 2)))

    report = service(home, regions, options).retire({"groups": [GLOBAL.group]})

    family = report["families"][GLOBAL.group]
    assert [(r["version"], r["archived"]) for r in family["retired"]] == [(2, True), (1, True)]
    assert family["regions"] == {
        IRELAND: {"reachable": True, "error": ""},
        SYDNEY: {"reachable": True, "error": ""},
    }
    assert set(home.archived) == {versions[0].arn, versions[1].arn}
    for registry in (home, regions.fakes[IRELAND]):
        assert registry.models == names(GLOBAL.group, 3, 4)
        assert registry.endpoint_configs == names(GLOBAL.group, 3, 4)
    # what Sydney serves is never deleted there (its config, and the model of that name it runs)
    assert regions.fakes[SYDNEY].endpoint_configs == names(GLOBAL.group, 2, 3, 4)
    assert regions.fakes[SYDNEY].models == names(GLOBAL.group, 2, 3, 4)
    two = family["retired"][0]
    assert two["endpoint_configs"] == sorted(names(GLOBAL.group, 2))  # the home region's, as before
    by_region = {r["region"]: r for r in two["regions"]}
    assert by_region[SYDNEY]["endpoint_configs"] == by_region[SYDNEY]["models"] == []
    assert by_region[IRELAND]["models"] == sorted(names(GLOBAL.group, 2)) and by_region[SYDNEY]["error"] == ""
    assert by_region[IRELAND]["option"] == f"support-{IRELAND}-v2"
    for base in ("support", f"support-{IRELAND}", f"support-{SYDNEY}"):
        for n in (1, 2):
            pinned = options.options[version_option_id(base, n)]
            assert (pinned.status, pinned.replaced_by) == (OptionStatus.RETIRED, base)
        assert options.options[base].status is OptionStatus.ACTIVE


def test_a_dry_run_lists_every_regions_names_and_changes_nothing() -> None:
    home, regions, options, _ = global_setup()
    report = service(home, regions, options).retire({"groups": [GLOBAL.group], "dry_run": True})
    one = report["families"][GLOBAL.group]["retired"][1]
    assert one["archived"] is False
    assert {r["region"]: r["models"] for r in one["regions"]} == {
        IRELAND: sorted(names(GLOBAL.group, 1)),
        SYDNEY: sorted(names(GLOBAL.group, 1)),
    }
    assert home.archived == {}
    assert all(len(r.models) == 4 for r in (home, *regions.fakes.values()))
    assert options.options["support-eu-west-1-v1"].status is OptionStatus.ACTIVE


def test_an_unreachable_region_is_reported_and_leaves_the_version_for_the_next_run() -> None:
    home, regions, options, versions = global_setup()
    regions.down.add(SYDNEY)
    lifecycle = service(home, regions, options)

    report = lifecycle.retire({"groups": [GLOBAL.group]})

    family = report["families"][GLOBAL.group]
    assert family["regions"][SYDNEY]["reachable"] is False
    assert "Could not connect" in family["regions"][SYDNEY]["error"]
    assert [(r["version"], r["archived"]) for r in family["retired"]] == [(2, False), (1, False)]
    for retired in family["retired"]:
        sydney = next(r for r in retired["regions"] if r["region"] == SYDNEY)
        assert "Could not connect" in sydney["error"]
    # the other regions were cleaned up all the same; the version stays unarchived
    assert home.models == regions.fakes[IRELAND].models == names(GLOBAL.group, 3, 4)
    assert home.archived == {}
    assert options.options["support-ap-southeast-2-v1"].status is OptionStatus.ACTIVE
    assert options.options["support-eu-west-1-v1"].status is OptionStatus.RETIRED

    # When Sydney is back, the next run finishes the job
    regions.down.clear()
    again = lifecycle.retire({"groups": [GLOBAL.group]})
    assert [(r["version"], r["archived"]) for r in again["families"][GLOBAL.group]["retired"]] == [
        (2, True),
        (1, True),
    ]
    assert regions.fakes[SYDNEY].models == names(GLOBAL.group, 3, 4)
    assert set(home.archived) == {versions[0].arn, versions[1].arn}
    assert lifecycle.retire({"groups": [GLOBAL.group]})["families"][GLOBAL.group]["retired"] == []


def test_a_region_failing_during_its_deletes_does_not_stop_the_next_region() -> None:
    home, regions, options, _ = global_setup()

    class Throttled(InMemoryRegistry):
        def delete_model(self, name: str) -> bool:
            raise RuntimeError("ThrottlingException: Rate exceeded")

    broken = Throttled(endpoints=regions.fakes[IRELAND].endpoints, models=set(regions.fakes[IRELAND].models))
    regions.fakes[IRELAND] = broken

    report = service(home, regions, options).retire({"groups": [GLOBAL.group]})

    family = report["families"][GLOBAL.group]
    assert family["regions"][IRELAND] == {"reachable": True, "error": ""}  # reached; the deletes failed
    for retired in family["retired"]:
        by_region = {r["region"]: r for r in retired["regions"]}
        assert "Rate exceeded" in by_region[IRELAND]["error"] and by_region[SYDNEY]["error"] == ""
        assert retired["archived"] is False
    assert regions.fakes[SYDNEY].models == names(GLOBAL.group, 3, 4)
    assert home.archived == {}


def test_a_version_a_regions_option_still_serves_is_not_retired() -> None:
    home, regions, options, versions = global_setup()
    sydney = options.options[f"support-{SYDNEY}"]
    options.options[sydney.id] = LlmOption.from_dict(
        {**sydney.to_item(), "model_package_arn": versions[1].arn}
    )

    report = service(home, regions, options).retire({"groups": [GLOBAL.group]})

    assert [r["version"] for r in report["families"][GLOBAL.group]["retired"]] == [1]
    assert set(home.archived) == {versions[0].arn}
    assert names(GLOBAL.group, 2) <= regions.fakes[SYDNEY].models and names(GLOBAL.group, 2) <= home.models


def test_a_single_region_family_reports_no_regions_and_asks_for_no_other_client() -> None:
    home, _, options, _ = global_setup()
    single = GLOBAL.model_copy(update={"regions": ()})
    lifecycle = LifecycleService(
        families={single.group: single}, options=options, registry=home, home_region=HOME
    )
    family = lifecycle.retire({})["families"][single.group]
    assert family["regions"] == {} and family["tenants"] == {}
    assert [(r["version"], r["regions"], r["archived"]) for r in family["retired"]] == [
        (2, [], True),
        (1, [], True),
    ]


# --- per tenant ----------------------------------------------------------------------------------------


def lora(number: int, tenant: str | None = None) -> PackageVersion:
    return version(number, LORA.group, tenant)


def component(v: PackageVersion) -> str:
    return f"{version_prefix(LORA.group, v.version)}abcd1234"


def serving(
    tenant: str, live: PackageVersion | None, previous: PackageVersion | None = None
) -> TenantAdapter:
    def ref(v: PackageVersion | None) -> AdapterRef | None:
        return AdapterRef(v.arn, v.version, component(v)) if v else None

    state = AdapterState.LIVE if live else AdapterState.ROLLED_BACK
    return TenantAdapter(
        LORA.group, tenant, state, live=ref(live), previous=ref(previous), endpoint_name="lora-ep"
    )


def test_tenant_versions_are_retained_per_tenant_not_by_the_familys_count() -> None:
    registry = InMemoryRegistry(endpoints={"lora-ep": {"status": "InService", "config_name": "c"}})
    family = [lora(n) for n in (8, 9, 10)]  # 10 live: 9 kept, 8 retired
    acme = [lora(n, "acme") for n in (1, 2, 3, 5)]  # 5 live, 1 previous: 3 kept, 2 retired
    globex = [lora(4, "globex"), lora(6, "globex")]  # 6 live: 4 kept
    initech = [lora(11, "initech"), lora(12, "initech")]  # back on the base model: nothing retired
    for v in (*family, *acme, *globex, *initech):
        registry.add_version(v)
        registry.components[component(v)] = ("lora-ep", "InService")
    adapters = InMemoryTenantAdapters()
    for record in (
        serving("acme", acme[3], previous=acme[0]),
        serving("globex", globex[1]),
        serving("initech", None),
    ):
        adapters.records[(LORA.group, record.tenant)] = record
    options = InMemoryOptions([option("lora", family[2])])

    report = service(registry, None, options, adapters).retire({"groups": [LORA.group]})

    retired = report["families"][LORA.group]
    assert [(r["version"], r["tenant"]) for r in retired["retired"]] == [(8, ""), (2, "acme")]
    assert retired["tenants"] == {
        "acme": {"live": acme[3].arn, "kept": [3], "retired": [2]},
        "globex": {"live": globex[1].arn, "kept": [4], "retired": []},
        "initech": {"live": "", "kept": [], "retired": []},
    }
    assert set(registry.archived) == {family[0].arn, acme[1].arn}
    assert component(acme[1]) not in registry.components
    for kept in (acme[0], acme[2], acme[3], *globex, *initech, family[1], family[2]):
        assert component(kept) in registry.components


def test_retention_reads_every_page_of_hundreds_of_tenants() -> None:
    registry = InMemoryRegistry(endpoints={"lora-ep": {"status": "InService", "config_name": "c"}})
    adapters = InMemoryTenantAdapters()
    number = 0
    olds = []
    for n in range(250):
        tenant = f"tenant-{n:03d}"
        old, kept, live = (lora(number + i, tenant) for i in (1, 2, 3))
        number += 3
        for v in (old, kept, live):
            registry.add_version(v)
        olds.append(old.arn)
        adapters.records[(LORA.group, tenant)] = serving(tenant, live)

    report = service(registry, None, InMemoryOptions(), adapters).retire({"groups": [LORA.group]})

    family = report["families"][LORA.group]
    assert len(family["tenants"]) == 250
    assert set(registry.archived) == set(olds)
    assert all(t["kept"] and len(t["retired"]) == 1 for t in family["tenants"].values())


def test_the_registry_lists_every_page_of_a_groups_versions_newest_first() -> None:
    from switchboard.lifecycle.registry import SageMakerRegistry

    class PagedSageMaker:
        """ListModelPackages in pages of two, newest first as asked (SortOrder Descending)."""

        def __init__(self) -> None:
            self.calls: list[dict[str, object]] = []

        def list_model_packages(self, **kwargs: object) -> dict[str, object]:
            self.calls.append(kwargs)
            start = int(str(kwargs.get("NextToken") or 0))
            numbers = list(range(5, 0, -1))[start : start + 2]
            page: dict[str, object] = {
                "ModelPackageSummaryList": [
                    {
                        "ModelPackageArn": version(n).arn,
                        "ModelPackageVersion": n,
                        "ModelApprovalStatus": "Approved",
                    }
                    for n in numbers
                ]
            }
            if start + 2 < 5:
                page["NextToken"] = str(start + 2)
            return page

    client = PagedSageMaker()
    assert [v.version for v in SageMakerRegistry(client).list_versions(GLOBAL.group)] == [5, 4, 3, 2, 1]
    assert [c.get("NextToken") for c in client.calls] == [None, "2", "4"]
    assert all(c["SortOrder"] == "Descending" for c in client.calls)
