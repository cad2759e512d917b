"""Pure decisions of the model lifecycle: no I/O, so every rule here has a unit test.

- :func:`plan_for_event`: what a ``SageMaker Model Package State Change`` event asks for. One
  rollback mechanism (FACTS correction 8): an Approved version deploys; rejecting the **live**
  version redeploys the newest remaining Approved one; a rejection of any other version is ignored
  (the workflow's own failure path rejects versions that never went live).
- :func:`choose_rollback_target`, :func:`select_retirements`, :func:`select_owner_retirements`
  (retention per tenant), :func:`idempotency_key`, :func:`resource_names`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from switchboard.lifecycle.model import Approval, PackageVersion

ARCHIVED_STAGE = "Archived"


class Decision(StrEnum):
    DEPLOY = "deploy"
    IGNORE_STALE_EVENT = "ignore_stale_event"
    """The package's status changed again since the event: a later event carries the new one."""
    IGNORE_ALREADY_LIVE = "ignore_already_live"
    IGNORE_REJECTION_OF_NON_LIVE_VERSION = "ignore_rejection_of_non_live_version"
    NO_APPROVED_VERSION_LEFT = "no_approved_version_left"
    ROLL_BACK_TO_BASE = "roll_back_to_base"
    """A tenant's live adapter was rejected and the tenant has no other approved adapter: the base
    model serves the tenant again (a family-wide version has no such fallback)."""


class Trigger(StrEnum):
    APPROVAL = "approval"
    ROLLBACK = "rollback_of_rejected_live_version"


@dataclass(frozen=True, slots=True)
class EventPlan:
    decision: Decision
    reason: str
    event_version_is_live: bool
    trigger: Trigger
    target: PackageVersion | None = None


def idempotency_key(package_arn: str, status: str, last_modified: str) -> str:
    """The claim key of one event (EventBridge may deliver it more than once).

    The ASL's ``ClaimEvent`` builds the same string with ``States.Format('event#{}#{}#{}', …)``.
    """
    return f"event#{package_arn}#{status}#{last_modified}"


def choose_rollback_target(versions: Iterable[PackageVersion], rejected_arn: str) -> PackageVersion | None:
    """The newest Approved version other than the rejected one, never an archived one."""
    candidates = [
        v
        for v in versions
        if v.arn != rejected_arn and v.approval == Approval.APPROVED and v.stage != ARCHIVED_STAGE
    ]
    return max(candidates, key=lambda v: v.version, default=None)


def plan_for_event(
    *,
    event_arn: str,
    event_status: str,
    current: PackageVersion,
    live_arn: str | None,
    versions: Sequence[PackageVersion],
    tenant: str | None = None,
) -> EventPlan:
    """Decide what one state-change event asks for.

    Args:
        event_arn / event_status: from the event (a snapshot, possibly stale or repeated).
        current: the package as re-read now (``DescribeModelPackage``).
        live_arn: the model package the family's gateway option serves (None before the first), or
            for a tenant's adapter version the adapter serving that tenant (None: the base model).
        versions: the rollback candidates: the group's versions, or only that tenant's.
        tenant: the tenant whose adapter the version is (None: a family-wide version).
    """
    is_live = bool(live_arn) and live_arn == event_arn
    if current.approval != event_status:
        return EventPlan(
            Decision.IGNORE_STALE_EVENT,
            f"event says {event_status} but the package is now {current.approval}",
            is_live,
            Trigger.APPROVAL,
        )
    if event_status == Approval.APPROVED:
        if is_live:
            return EventPlan(
                Decision.IGNORE_ALREADY_LIVE,
                f"version {current.version} already serves traffic",
                True,
                Trigger.APPROVAL,
            )
        return EventPlan(
            Decision.DEPLOY, f"version {current.version} approved", False, Trigger.APPROVAL, target=current
        )
    if event_status == Approval.REJECTED:
        if not is_live:
            return EventPlan(
                Decision.IGNORE_REJECTION_OF_NON_LIVE_VERSION,
                f"version {current.version} was rejected but does not serve traffic",
                False,
                Trigger.ROLLBACK,
            )
        target = choose_rollback_target(versions, event_arn)
        if target is None and tenant:
            return EventPlan(
                Decision.ROLL_BACK_TO_BASE,
                f"tenant {tenant}'s live adapter version {current.version} was rejected and the tenant "
                "has no other approved adapter: the base model serves the tenant",
                True,
                Trigger.ROLLBACK,
            )
        if target is None:
            return EventPlan(
                Decision.NO_APPROVED_VERSION_LEFT,
                f"live version {current.version} was rejected and no other version is Approved",
                True,
                Trigger.ROLLBACK,
            )
        return EventPlan(
            Decision.DEPLOY,
            f"live version {current.version} rejected: redeploying version {target.version}",
            True,
            Trigger.ROLLBACK,
            target=target,
        )
    return EventPlan(
        Decision.IGNORE_STALE_EVENT, f"status {event_status} asks for nothing", is_live, Trigger.APPROVAL
    )


def select_retirements(
    versions: Iterable[PackageVersion], *, live_arn: str | None, retention: int
) -> list[PackageVersion]:
    """The versions to retire: older than the live one and beyond the ``retention`` newest Approved.

    Never the live version, never one newer than it (in flight, pending or just rejected by a
    rollback: a later run retires those once something newer is live), never anything when no
    version is live. Already archived versions are not returned again.
    """
    by_arn = {v.arn: v for v in versions}
    live = by_arn.get(live_arn or "")
    if live is None:
        return []
    older = sorted((v for v in by_arn.values() if v.version < live.version), key=lambda v: -v.version)
    kept = {v.arn for v in [v for v in older if v.approval == Approval.APPROVED][:retention]}
    return [v for v in older if v.arn not in kept and v.arn != live.arn and v.stage != ARCHIVED_STAGE]


@dataclass(frozen=True, slots=True)
class TenantPins:
    """What serves one tenant of an adapter family (from the tenant adapters table)."""

    live_arn: str | None
    """The tenant's live adapter version (None: the base model serves the tenant)."""
    pinned: frozenset[str] = frozenset()
    """The tenant's live, previous and canary versions: never retired, whatever their age."""


@dataclass(frozen=True, slots=True)
class OwnerRetirement:
    """Retention of one owner's versions: the family-wide ones (``tenant`` None) or one tenant's."""

    tenant: str | None
    live_arn: str | None
    kept: tuple[PackageVersion, ...]
    """Approved versions older than the owner's live one kept by the retention count (newest first)."""
    retired: tuple[PackageVersion, ...]
    """Newest first."""


def select_owner_retirements(
    versions: Iterable[PackageVersion],
    *,
    family_live_arn: str | None,
    tenants: Mapping[str, TenantPins],
    retention: int,
) -> list[OwnerRetirement]:
    """Retention per owner: family-wide versions against the family's live version, each tenant's
    versions against that tenant's live adapter, each with the same ``retention`` count.

    ``versions`` carry their ``tenant`` (described, not ListModelPackages summaries) and are not
    archived (an archived version is already retired and holds no place in a retention count). A
    tenant's versions never count against another tenant's or the family's. Never retired: the
    family's live version, any tenant's live, previous or canary version, anything newer than its
    owner's live version, anything of an owner with nothing live (a tenant the base model serves,
    or one unknown to the adapters table). Family-wide first, then tenants in name order.
    """
    by_owner: dict[str | None, list[PackageVersion]] = {}
    for version in versions:
        if version.stage != ARCHIVED_STAGE:
            by_owner.setdefault(version.tenant or None, []).append(version)
    protected = {arn for pins in tenants.values() for arn in pins.pinned}
    if family_live_arn:
        protected.add(family_live_arn)
    owners: list[str | None] = [None, *sorted(t for t in by_owner if t is not None)]
    selected: list[OwnerRetirement] = []
    for owner in owners:
        owned = by_owner.get(owner, [])
        if owner is None:
            live_arn = family_live_arn
        else:
            pins = tenants.get(owner)
            live_arn = pins.live_arn if pins else None
        retired = [
            v
            for v in select_retirements(owned, live_arn=live_arn, retention=retention)
            if v.arn not in protected
        ]
        live = next((v for v in owned if v.arn == live_arn), None)
        retired_arns = {v.arn for v in retired}
        kept = sorted(
            (
                v
                for v in owned
                if live is not None
                and v.version < live.version
                and v.approval == Approval.APPROVED
                and v.arn not in retired_arns
                and v.arn not in protected
            ),
            key=lambda v: -v.version,
        )
        if owned or owner is None:
            selected.append(OwnerRetirement(owner, live_arn, tuple(kept), tuple(retired)))
    return selected


def deployment_id(execution_id: str) -> str:
    """A short stable id for one workflow execution (part of the names it creates)."""
    return hashlib.sha256(execution_id.encode()).hexdigest()[:8]


def family_name_prefix(group: str) -> str:
    """The prefix of every SageMaker model, endpoint config and inference component the workflow
    makes for a family: the lifecycle roles may create and delete only names that start with it."""
    return f"{group[:44].rstrip('-')}-v"


def version_prefix(group: str, version: int) -> str:
    """The name prefix of everything made for one version (retirement finds them by it)."""
    return f"{family_name_prefix(group)}{version}-"


def resource_names(group: str, version: int, execution_id: str) -> dict[str, str]:
    """SageMaker names for one deployment: unique per execution (a version may deploy again after a
    rollback), ≤ 63 characters, and prefixed with :func:`version_prefix`."""
    name = f"{version_prefix(group, version)}{deployment_id(execution_id)}"
    return {"model": name, "endpoint_config": name, "component": name}


def version_option_id(option_id: str, version: int) -> str:
    """The option pinned to one version (the family's option follows the live version)."""
    return f"{option_id}-v{version}"
