"""Retention per owner (issue 16): family-wide versions against the family's live version, each
tenant's adapter versions against that tenant's live adapter, never what serves anyone."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from switchboard.lifecycle.logic import ARCHIVED_STAGE, OwnerRetirement, TenantPins, select_owner_retirements
from switchboard.lifecycle.model import PackageVersion

GROUP = "support-lora"
OWNERS = (None, "acme", "globex", "initech")


def v(
    number: int, tenant: str | None = None, approval: str = "Approved", stage: str | None = None
) -> PackageVersion:
    return PackageVersion(
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/{number}",
        group=GROUP,
        version=number,
        approval=approval,
        tenant=tenant,
        stage=stage,
    )


def by_owner(selections: list[OwnerRetirement]) -> dict[str | None, list[int]]:
    return {s.tenant: [r.version for r in s.retired] for s in selections}


def test_a_tenants_versions_are_retained_against_its_own_live_adapter() -> None:
    family = [v(10), v(9), v(8)]  # 10 live: 9 kept by the count, 8 retired
    acme = [v(1, "acme"), v(2, "acme"), v(3, "acme"), v(5, "acme"), v(7, "acme", "PendingManualApproval")]
    globex = [v(4, "globex"), v(6, "globex")]
    selections = select_owner_retirements(
        [*family, *acme, *globex],
        family_live_arn=v(10).arn,
        tenants={
            # acme: 5 live, 1 its previous (kept however old), 7 its canary
            "acme": TenantPins(v(5).arn, frozenset({v(5).arn, v(1).arn, v(7).arn})),
            "globex": TenantPins(v(4).arn, frozenset({v(4).arn})),
        },
        retention=1,
    )
    # acme's 3 is its newest older approved version: the family's count (against 10) no longer takes it
    assert by_owner(selections) == {None: [8], "acme": [2], "globex": []}
    assert {s.tenant: [k.version for k in s.kept] for s in selections} == {
        None: [9],
        "acme": [3],
        "globex": [],
    }
    assert [s.live_arn for s in selections] == [v(10).arn, v(5).arn, v(4).arn]


def test_a_tenant_the_base_model_serves_or_unknown_to_the_table_keeps_everything() -> None:
    versions = [v(3), v(1, "acme"), v(2, "acme"), v(4, "globex"), v(5, "globex")]
    selections = select_owner_retirements(
        versions, family_live_arn=v(3).arn, tenants={"acme": TenantPins(None)}, retention=0
    )
    assert by_owner(selections) == {None: [], "acme": [], "globex": []}


def test_archived_versions_neither_retire_again_nor_hold_a_place_in_the_count() -> None:
    versions = [v(4, "acme"), v(3, "acme", stage=ARCHIVED_STAGE), v(2, "acme"), v(1, "acme")]
    selections = select_owner_retirements(
        versions,
        family_live_arn=None,
        tenants={"acme": TenantPins(v(4).arn, frozenset({v(4).arn}))},
        retention=1,
    )
    assert by_owner(selections) == {None: [], "acme": [1]}  # 2 keeps the one place 3 no longer holds


# --- properties ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    versions: list[PackageVersion]
    family_live: str | None
    tenants: dict[str, TenantPins]
    retention: int


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(min_value=0, max_value=24))
    versions = [
        v(
            number,
            draw(st.sampled_from(OWNERS)),
            draw(st.sampled_from(["Approved", "Approved", "Rejected", "PendingManualApproval"])),
            draw(st.sampled_from([None, None, None, ARCHIVED_STAGE])),
        )
        for number in range(1, count + 1)
    ]

    def pick(candidates: list[PackageVersion]) -> PackageVersion | None:
        return draw(st.one_of(st.none(), st.sampled_from(candidates))) if candidates else None

    family_live = pick([x for x in versions if x.tenant is None])
    tenants: dict[str, TenantPins] = {}
    for tenant in OWNERS[1:]:
        if not draw(st.booleans()):
            continue  # no record: never had an adapter
        owned = [x for x in versions if x.tenant == tenant]
        live = pick(owned)
        previous = pick([x for x in owned if live is None or x.version < live.version])
        canary = pick([x for x in owned if live is None or x.version > live.version])
        pinned = frozenset(x.arn for x in (live, previous, canary) if x is not None)
        tenants[tenant] = TenantPins(live.arn if live else None, pinned)
    return Scenario(versions, family_live.arn if family_live else None, tenants, draw(st.integers(0, 4)))


def _select(s: Scenario, versions: list[PackageVersion] | None = None) -> list[OwnerRetirement]:
    return select_owner_retirements(
        s.versions if versions is None else versions,
        family_live_arn=s.family_live,
        tenants=s.tenants,
        retention=s.retention,
    )


@given(scenarios())
def test_nothing_serving_anyone_is_ever_retired(s: Scenario) -> None:
    retired = {r.arn for selection in _select(s) for r in selection.retired}
    pinned = {arn for pins in s.tenants.values() for arn in pins.pinned}
    assert not retired & pinned
    assert s.family_live not in retired
    assert all(x.stage != ARCHIVED_STAGE for x in s.versions if x.arn in retired)


@given(scenarios())
def test_each_owner_retires_only_its_own_versions_older_than_its_live_one(s: Scenario) -> None:
    by_arn = {x.arn: x for x in s.versions}
    for selection in _select(s):
        live_arn = (
            s.family_live
            if selection.tenant is None
            else s.tenants.get(selection.tenant, TenantPins(None)).live_arn
        )
        assert selection.live_arn == live_arn
        for retired in selection.retired:
            assert retired.tenant == selection.tenant
            assert live_arn is not None and retired.version < by_arn[live_arn].version


@given(scenarios())
def test_each_owner_keeps_at_most_retention_older_approved_versions_besides_its_pins(s: Scenario) -> None:
    pinned = {arn for pins in s.tenants.values() for arn in pins.pinned} | {s.family_live}
    by_arn = {x.arn: x for x in s.versions if x.stage != ARCHIVED_STAGE}  # an archived live one: no live
    for selection in _select(s):
        assert len(selection.kept) <= s.retention
        if selection.live_arn is None or selection.live_arn not in by_arn:
            assert selection.retired == ()
            continue
        live = by_arn[selection.live_arn]
        older = [
            x
            for x in s.versions
            if (x.tenant or None) == selection.tenant
            and x.version < live.version
            and x.stage != ARCHIVED_STAGE
            and x.approval == "Approved"
        ]
        retired = {r.arn for r in selection.retired}
        still_there = [x for x in older if x.arn not in retired and x.arn not in pinned]
        assert sorted(still_there, key=lambda x: -x.version) == list(selection.kept)
        # as many as the count allows are kept deployable (a pin inside the window takes a place)
        assert len([x for x in older if x.arn not in retired]) >= min(s.retention, len(older))


@given(scenarios())
def test_a_tenants_retirement_does_not_depend_on_other_owners_versions(s: Scenario) -> None:
    together = by_owner(_select(s))
    for owner, retired in together.items():
        alone = [x for x in s.versions if (x.tenant or None) == owner]
        assert by_owner(_select(s, alone)).get(owner, []) == retired
