"""Tenant adapters (issue 16) in LifecycleService, on the in-memory fakes: a tenant's version plans
against that tenant's adapter, the tenant tasks write only that tenant's record, a rejected live
adapter rolls the tenant back (to its previous approved adapter, or the base model), and retirement
keeps whatever serves a tenant. The workflow around these tasks runs in moto in
``tests/integration/test_model_deployment_asl.py``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from switchboard.lifecycle.adapter_store import (
    AdapterChange,
    AdapterRef,
    AdapterState,
    HistoryEvent,
    TenantAdapter,
    TenantAdapterMovedByAnotherDeployment,
    all_in_family,
)
from switchboard.lifecycle.model import ModelFamily, PackageVersion
from switchboard.lifecycle.service import LifecycleService, NotATenantAdapterFamily
from tests.fakes import InMemoryOptions, InMemoryRegistry, InMemoryTenantAdapters

FULL = ModelFamily(group="support-llm", option_id="support", endpoint_name="support-ep", retention=1)
LORA = ModelFamily(
    group="support-lora", option_id="lora", endpoint_name="lora-ep", base_component="lora-base", retention=1
)


def version(
    number: int, tenant: str | None, approval: str = "Approved", group: str = LORA.group
) -> PackageVersion:
    return PackageVersion(
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{number}",
        group=group,
        version=number,
        approval=approval,
        model_data_url=f"s3://adapters/{number}.tar.gz",
        tenant=tenant,
    )


def ref(v: PackageVersion) -> AdapterRef:
    return AdapterRef(v.arn, v.version, f"support-lora-v{v.version}-abcd1234")


def serving(tenant: str, v: PackageVersion, previous: PackageVersion | None = None) -> TenantAdapter:
    return TenantAdapter(
        LORA.group,
        tenant,
        AdapterState.LIVE,
        live=ref(v),
        previous=ref(previous) if previous else None,
        endpoint_name="lora-ep",
    )


def seeded(*records: TenantAdapter) -> InMemoryTenantAdapters:
    store = InMemoryTenantAdapters()
    for record in records:
        store.records[(record.family, record.tenant)] = record
    return store


def lora_registry() -> InMemoryRegistry:
    return InMemoryRegistry(
        endpoints={"lora-ep": {"status": "InService", "config_name": "c"}},
        components={"lora-base": ("lora-ep", "InService")},
    )


def service(
    registry: InMemoryRegistry,
    adapters: InMemoryTenantAdapters | None,
    options: InMemoryOptions | None = None,
) -> LifecycleService:
    return LifecycleService(
        families={f.group: f for f in (FULL, LORA)},
        options=options or InMemoryOptions(),
        registry=registry,
        adapters=adapters,
    )


def event(v: PackageVersion, status: str = "Approved") -> dict[str, Any]:
    return {"event": {"arn": v.arn, "status": status, "group": v.group}, "execution_id": "exec-1"}


def task(v: PackageVersion, tenant: str, expect: PackageVersion | None, **extra: Any) -> dict[str, Any]:
    return {
        "group": LORA.group,
        "tenant": tenant,
        "expect_package_arn": expect.arn if expect else "",
        "package_arn": v.arn,
        "version": v.version,
        "endpoint_name": "lora-ep",
        "inference_component": ref(v).component,
        "updated_by": "model-deployment:exec-1",
        "execution": "arn:exec-1",
        **extra,
    }


# --- plan -------------------------------------------------------------------------------------------


def test_a_tenants_version_plans_against_that_tenants_adapter_not_the_familys_option() -> None:
    registry = lora_registry()
    acme1, globex2, acme3 = (
        registry.add_version(version(n, t)) for n, t in ((1, "acme"), (2, "globex"), (3, "acme"))
    )
    adapters = seeded(serving("acme", acme1), serving("globex", globex2))

    plan = service(registry, adapters).plan(event(acme3))

    assert (plan["decision"], plan["tenant"]) == ("deploy", "acme")
    assert plan["live"] == {"arn": acme1.arn, "version": 1, "inference_component": ref(acme1).component}
    assert plan["route"]["inference_component"] == plan["names"]["component"]
    assert plan["target"]["tenant"] == "acme"


def test_a_family_wide_version_plans_against_the_option_with_no_tenant() -> None:
    registry = lora_registry()
    v1 = registry.add_version(version(1, None))
    plan = service(registry, seeded()).plan(event(v1))
    assert (plan["decision"], plan["tenant"], plan["live"]["arn"]) == ("deploy", "", "")


def test_reapproving_a_tenants_live_adapter_does_nothing() -> None:
    registry = lora_registry()
    acme1 = registry.add_version(version(1, "acme"))
    plan = service(registry, seeded(serving("acme", acme1))).plan(event(acme1))
    assert plan["decision"] == "ignore_already_live"


def test_rejecting_a_tenants_live_adapter_picks_that_tenants_previous_approved_one() -> None:
    # globex's version 3 is newer and Approved, but it is globex's: acme goes back to its version 1
    registry = lora_registry()
    acme1 = registry.add_version(version(1, "acme"))
    registry.add_version(version(2, None))
    registry.add_version(version(3, "globex"))
    acme4 = registry.add_version(version(4, "acme", "Rejected"))

    plan = service(registry, seeded(serving("acme", acme4, previous=acme1))).plan(event(acme4, "Rejected"))

    assert (plan["decision"], plan["trigger"]) == ("deploy", "rollback_of_rejected_live_version")
    assert plan["target"]["arn"] == acme1.arn
    assert plan["live"]["version"] == 4


def test_a_family_wide_rollback_never_picks_a_tenants_adapter() -> None:
    registry = lora_registry()
    v1 = registry.add_version(version(1, None))
    registry.add_version(version(2, "acme"))
    v3 = registry.add_version(version(3, None, "Rejected"))
    options = InMemoryOptions()
    options.put(
        replace(_option(v3), inference_component="support-lora-v3-x"), expected_version=None, updated_by="t"
    )

    plan = service(registry, seeded(), options).plan(event(v3, "Rejected"))

    assert plan["target"]["arn"] == v1.arn and plan["tenant"] == ""


def _option(v: PackageVersion) -> Any:
    from switchboard.options.model import LlmOption

    return LlmOption.from_dict(
        {"id": "lora", "provider": "sagemaker", "endpoint_name": "lora-ep", "model_package_arn": v.arn}
    )


def test_rejecting_a_tenants_only_adapter_plans_the_base_model() -> None:
    registry = lora_registry()
    acme1 = registry.add_version(version(1, "acme", "Rejected"))
    registry.add_version(version(2, "globex"))

    plan = service(registry, seeded(serving("acme", acme1))).plan(event(acme1, "Rejected"))

    assert plan["decision"] == "roll_back_to_base"
    assert plan["live"]["inference_component"] == ref(acme1).component
    assert plan["target"] == {} and plan["names"] == {}


@pytest.mark.parametrize(
    ("family_version", "adapters", "message"),
    [
        (version(1, "acme", group=FULL.group), InMemoryTenantAdapters(), "full-model family"),
        (version(1, "acme"), None, "no tenant adapters table"),
        (version(1, "Not A Tenant"), InMemoryTenantAdapters(), "invalid tenant"),
    ],
)
def test_a_tenants_version_needs_an_adapter_family_a_table_and_a_valid_tenant(
    family_version: PackageVersion, adapters: InMemoryTenantAdapters | None, message: str
) -> None:
    registry = lora_registry()
    registry.add_version(family_version)
    with pytest.raises(NotATenantAdapterFamily, match=message):
        service(registry, adapters).plan(event(family_version))


# --- the tenant tasks ------------------------------------------------------------------------------


def test_switching_a_tenant_writes_only_that_tenant_with_its_previous_adapter_and_history() -> None:
    acme1, globex2, acme3 = version(1, "acme"), version(2, "globex"), version(3, "acme")
    adapters = seeded(serving("acme", acme1), serving("globex", globex2))
    globex_before = adapters.records[(LORA.group, "globex")]
    options = InMemoryOptions()

    result = service(lora_registry(), adapters, options).switch_tenant(task(acme3, "acme", acme1))

    acme = adapters.get(LORA.group, "acme")
    assert acme is not None
    assert (acme.live, acme.previous, acme.state) == (ref(acme3), ref(acme1), AdapterState.LIVE)
    assert acme.updated_by == "model-deployment:exec-1" and acme.updated_at.endswith("Z")
    assert result["displaced"]["live"]["package_arn"] == acme1.arn
    assert adapters.get(LORA.group, "globex") == globex_before
    assert options.get("lora") is None
    (change,) = adapters.changes
    assert (change.event, change.tenant, change.execution) == (HistoryEvent.DEPLOYED, "acme", "arn:exec-1")


def test_a_rollback_redeploy_marks_the_tenant_rolled_back_and_keeps_no_rejected_previous() -> None:
    acme1, acme3 = version(1, "acme"), version(3, "acme")
    adapters = seeded(serving("acme", acme3, previous=acme1))

    service(lora_registry(), adapters).switch_tenant(
        task(acme1, "acme", acme3, trigger="rollback_of_rejected_live_version")
    )

    acme = adapters.get(LORA.group, "acme")
    assert acme is not None
    assert (acme.live, acme.previous, acme.state) == (ref(acme1), None, AdapterState.ROLLED_BACK)


def test_a_tenant_moved_since_the_plan_is_not_overwritten() -> None:
    acme1, acme3, acme5 = version(1, "acme"), version(3, "acme"), version(5, "acme")
    adapters = seeded(serving("acme", acme5))  # someone else deployed version 5 meanwhile

    with pytest.raises(TenantAdapterMovedByAnotherDeployment, match="acme"):
        service(lora_registry(), adapters).switch_tenant(task(acme3, "acme", acme1))

    acme = adapters.get(LORA.group, "acme")
    assert acme is not None and acme.live == ref(acme5)
    assert adapters.changes == []


def test_the_first_adapter_of_a_tenant_expects_no_record() -> None:
    acme1 = version(1, "acme")
    adapters = seeded()
    result = service(lora_registry(), adapters).switch_tenant(task(acme1, "acme", None))
    assert result == {"displaced": None}
    acme = adapters.get(LORA.group, "acme")
    assert acme is not None and acme.previous is None


def test_reverting_after_an_alarm_restores_the_displaced_record_as_rolled_back() -> None:
    acme1, acme0, acme3 = version(1, "acme"), version(0, "acme"), version(3, "acme")
    adapters = seeded(serving("acme", acme1, previous=acme0))
    lifecycle = service(lora_registry(), adapters)
    displaced = lifecycle.switch_tenant(task(acme3, "acme", acme1))["displaced"]

    lifecycle.revert_tenant(
        {
            "group": LORA.group,
            "tenant": "acme",
            "expect_package_arn": acme3.arn,
            "restore": displaced,
            "updated_by": "model-deployment:exec-1",
            "execution": "arn:exec-1",
            "reason": "an alarm fired during the bake",
        }
    )

    acme = adapters.get(LORA.group, "acme")
    assert acme is not None
    assert (acme.live, acme.previous, acme.state) == (ref(acme1), ref(acme0), AdapterState.ROLLED_BACK)
    assert [c.event for c in adapters.changes] == [HistoryEvent.DEPLOYED, HistoryEvent.REVERTED_AFTER_ALARM]


def test_returning_a_tenant_to_the_base_model_clears_its_adapter() -> None:
    acme1, globex2 = version(1, "acme"), version(2, "globex")
    adapters = seeded(serving("acme", acme1), serving("globex", globex2))
    task_input = {
        "group": LORA.group,
        "tenant": "acme",
        "expect_package_arn": acme1.arn,
        "updated_by": "u",
        "execution": "e",
        "reason": "r",
    }

    result = service(lora_registry(), adapters).tenant_to_base(task_input)

    acme = adapters.get(LORA.group, "acme")
    assert acme is not None and (acme.live, acme.state) == (None, AdapterState.ROLLED_BACK)
    assert result == {"tenant": "acme", "base_component": "lora-base"}
    assert adapters.get(LORA.group, "globex") == serving("globex", globex2)
    # a second run (the record no longer names version 1) is refused, not repeated
    with pytest.raises(TenantAdapterMovedByAnotherDeployment):
        service(lora_registry(), adapters).tenant_to_base(task_input)


# --- retirement and listing ----------------------------------------------------------------------


def test_retirement_keeps_every_tenants_live_and_previous_adapter() -> None:
    registry = lora_registry()
    acme1, globex2 = registry.add_version(version(1, "acme")), registry.add_version(version(2, "globex"))
    old = registry.add_version(version(3, None))
    registry.add_version(version(4, None))
    v5 = registry.add_version(version(5, None))
    acme6 = registry.add_version(version(6, "acme"))
    for v in (acme1, globex2, acme6):
        registry.components[ref(v).component] = ("lora-ep", "InService")
    options = InMemoryOptions()
    options.put(_option(v5), expected_version=None, updated_by="t")
    adapters = seeded(serving("acme", acme6, previous=acme1), serving("globex", globex2))

    report = service(registry, adapters, options).retire({"groups": [LORA.group]})

    assert [r["version"] for r in report["families"][LORA.group]["retired"]] == [3]
    assert registry.archived.keys() == {old.arn}
    assert all(ref(v).component in registry.components for v in (acme1, globex2, acme6))


def test_a_familys_tenants_are_listed_page_by_page() -> None:
    adapters = seeded(*(serving(f"tenant-{n:03d}", version(n, f"tenant-{n:03d}")) for n in range(1, 251)))
    pages = []
    token: str | None = None
    while True:
        page = adapters.list_family(LORA.group, limit=100, next_token=token)
        pages.append(len(page.adapters))
        token = page.next_token
        if token is None:
            break
    assert pages == [100, 100, 50]
    assert len(list(all_in_family(adapters, LORA.group, page_size=7))) == 250


def test_a_change_item_keeps_what_served_and_why() -> None:
    from switchboard.lifecycle.adapter_store import change_item, record_from_item

    record = serving("acme", version(2, "acme"), previous=version(1, "acme"))
    item = change_item(
        AdapterChange(LORA.group, "acme", HistoryEvent.DEPLOYED, "2026-11-30T10:00:00Z", "e", record, "ok")
    )
    assert item["sk"] == "history#acme#2026-11-30T10:00:00Z#e" and item["pk"] == "family#support-lora"
    assert record_from_item(item) == record


def test_history_keys_keep_two_changes_within_one_second_in_order() -> None:
    from datetime import UTC, datetime, timedelta

    from switchboard.lifecycle.adapter_store import history_key, history_timestamp

    first = datetime(2026, 11, 30, 10, 0, 0, 999_998, tzinfo=UTC)
    stamps = [history_timestamp(first + timedelta(microseconds=n)) for n in range(3)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert stamps[0] == "2026-11-30T10:00:00.999998Z"
    # the execution id only breaks ties, it never reorders two changes
    assert history_key("acme", stamps[0], "zzz") < history_key("acme", stamps[1], "aaa")
