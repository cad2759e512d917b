"""Pure decisions of the model lifecycle: what an event asks for, rollback target, retirement."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.lifecycle.logic import (
    Decision,
    Trigger,
    choose_rollback_target,
    idempotency_key,
    plan_for_event,
    resource_names,
    select_retirements,
    version_option_id,
    version_prefix,
)
from switchboard.lifecycle.model import FamilyKind, ModelFamily, PackageVersion, parse_families

GROUP = "support-llm"


def v(number: int, approval: str = "Approved", stage: str | None = None) -> PackageVersion:
    return PackageVersion(
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/{number}",
        group=GROUP,
        version=number,
        approval=approval,
        stage=stage,
    )


# --- plan_for_event ----------------------------------------------------------------------------------


def test_an_approved_version_deploys() -> None:
    plan = plan_for_event(
        event_arn=v(2).arn, event_status="Approved", current=v(2), live_arn=v(1).arn, versions=[]
    )
    assert plan.decision is Decision.DEPLOY and plan.target == v(2) and plan.trigger is Trigger.APPROVAL


def test_the_first_approved_version_deploys_with_nothing_live() -> None:
    plan = plan_for_event(
        event_arn=v(1).arn, event_status="Approved", current=v(1), live_arn=None, versions=[]
    )
    assert plan.decision is Decision.DEPLOY and not plan.event_version_is_live


def test_approving_the_live_version_again_does_nothing() -> None:
    plan = plan_for_event(
        event_arn=v(2).arn, event_status="Approved", current=v(2), live_arn=v(2).arn, versions=[]
    )
    assert plan.decision is Decision.IGNORE_ALREADY_LIVE


def test_a_stale_event_is_ignored() -> None:
    plan = plan_for_event(
        event_arn=v(2).arn, event_status="Approved", current=v(2, "Rejected"), live_arn=v(1).arn, versions=[]
    )
    assert plan.decision is Decision.IGNORE_STALE_EVENT


def test_rejecting_a_version_that_is_not_live_is_ignored() -> None:
    plan = plan_for_event(
        event_arn=v(3).arn,
        event_status="Rejected",
        current=v(3, "Rejected"),
        live_arn=v(2).arn,
        versions=[v(3, "Rejected"), v(2), v(1)],
    )
    assert plan.decision is Decision.IGNORE_REJECTION_OF_NON_LIVE_VERSION
    assert plan.target is None


def test_rejecting_the_live_version_redeploys_the_newest_remaining_approved() -> None:
    versions = [v(4, "PendingManualApproval"), v(3, "Rejected"), v(2), v(1)]
    plan = plan_for_event(
        event_arn=v(3).arn,
        event_status="Rejected",
        current=v(3, "Rejected"),
        live_arn=v(3).arn,
        versions=versions,
    )
    assert plan.decision is Decision.DEPLOY
    assert plan.trigger is Trigger.ROLLBACK
    assert plan.target == v(2)


def test_rejecting_the_only_version_leaves_nothing_to_roll_back_to() -> None:
    plan = plan_for_event(
        event_arn=v(1).arn,
        event_status="Rejected",
        current=v(1, "Rejected"),
        live_arn=v(1).arn,
        versions=[v(1, "Rejected")],
    )
    assert plan.decision is Decision.NO_APPROVED_VERSION_LEFT


def test_rejecting_a_tenants_only_adapter_returns_the_tenant_to_the_base_model() -> None:
    plan = plan_for_event(
        event_arn=v(1).arn,
        event_status="Rejected",
        current=v(1, "Rejected"),
        live_arn=v(1).arn,
        versions=[],
        tenant="acme",
    )
    assert (plan.decision, plan.trigger, plan.target) == (Decision.ROLL_BACK_TO_BASE, Trigger.ROLLBACK, None)
    assert "acme" in plan.reason and "base model" in plan.reason


def test_a_tenants_rejection_of_a_version_that_is_not_live_is_still_ignored() -> None:
    plan = plan_for_event(
        event_arn=v(2).arn,
        event_status="Rejected",
        current=v(2, "Rejected"),
        live_arn=v(1).arn,
        versions=[v(1)],
        tenant="acme",
    )
    assert plan.decision is Decision.IGNORE_REJECTION_OF_NON_LIVE_VERSION


# --- choose_rollback_target ----------------------------------------------------------------------------


def test_rollback_target_skips_rejected_pending_and_archived_versions() -> None:
    versions = [v(5, "Rejected"), v(4, "PendingManualApproval"), v(3, stage="Archived"), v(2), v(1)]
    assert choose_rollback_target(versions, v(5).arn) == v(2)


def test_rollback_target_is_by_version_number_not_list_order() -> None:
    assert choose_rollback_target([v(1), v(3), v(2)], v(9).arn) == v(3)


def test_no_rollback_target_without_another_approved_version() -> None:
    assert choose_rollback_target([v(1)], v(1).arn) is None


# --- idempotency and names ------------------------------------------------------------------------------


def test_idempotency_key_is_arn_status_and_last_modified() -> None:
    key = idempotency_key(v(1).arn, "Approved", "2021-02-24T17:00:14Z")
    assert key == f"event#{v(1).arn}#Approved#2021-02-24T17:00:14Z"
    assert key != idempotency_key(v(1).arn, "Rejected", "2021-02-24T17:00:14Z")
    assert key != idempotency_key(v(1).arn, "Approved", "2021-02-24T17:00:15Z")


def test_the_asl_builds_the_same_idempotency_key() -> None:
    import json
    from pathlib import Path

    asl = json.loads(
        (Path(__file__).resolve().parents[2] / "statemachines" / "model_deployment.asl.json").read_text()
    )
    fmt = asl["States"]["ClaimEvent"]["Parameters"]["Item"]["pk"]["S.$"]
    assert fmt == "States.Format('event#{}#{}#{}', $.event.arn, $.event.status, $.event.last_modified)"


@given(
    group=st.from_regex(r"[a-z0-9](-?[a-z0-9]){0,62}", fullmatch=True),
    version=st.integers(min_value=1, max_value=99999),
    execution=st.text(min_size=1, max_size=80),
)
def test_resource_names_fit_sagemaker_rules_and_carry_the_version_prefix(
    group: str, version: int, execution: str
) -> None:
    names = resource_names(group, version, execution)
    for name in names.values():
        assert len(name) <= 63
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", name), name
        assert name.startswith(version_prefix(group, version))


def test_a_version_redeployed_gets_new_names() -> None:
    assert resource_names(GROUP, 2, "exec-a") != resource_names(GROUP, 2, "exec-b")
    assert version_option_id("support-llm", 7) == "support-llm-v7"


# --- select_retirements ---------------------------------------------------------------------------------


def test_retires_versions_older_than_the_retention_count() -> None:
    versions = [v(6), v(5), v(4), v(3, "Rejected"), v(2), v(1)]
    retired = select_retirements(versions, live_arn=v(5).arn, retention=2)
    # kept: live 5, newer 6, the 2 newest Approved older than live (4, 2); retired: 3 (rejected) and 1
    assert [r.version for r in retired] == [3, 1]


def test_nothing_is_retired_when_nothing_is_live() -> None:
    assert select_retirements([v(3), v(2), v(1)], live_arn=None, retention=1) == []


def test_archived_versions_are_not_retired_twice() -> None:
    retired = select_retirements([v(3), v(2), v(1, stage="Archived")], live_arn=v(3).arn, retention=0)
    assert [r.version for r in retired] == [2]


@given(
    approvals=st.lists(
        st.sampled_from(["Approved", "Rejected", "PendingManualApproval"]), min_size=1, max_size=12
    ),
    live_index=st.integers(min_value=0, max_value=11),
    retention=st.integers(min_value=0, max_value=5),
)
def test_retirement_never_touches_the_live_version_or_anything_newer(
    approvals: list[str], live_index: int, retention: int
) -> None:
    versions = [v(i + 1, a) for i, a in enumerate(approvals)]
    live = versions[live_index % len(versions)]
    retired = select_retirements(versions, live_arn=live.arn, retention=retention)
    assert live not in retired
    assert all(r.version < live.version for r in retired)
    kept_approved = [
        x for x in versions if x.version < live.version and x.approval == "Approved" and x not in retired
    ]
    assert len(kept_approved) == min(
        retention, len([x for x in versions if x.version < live.version and x.approval == "Approved"])
    )


# --- families -------------------------------------------------------------------------------------------


def test_families_parse_and_know_their_kind() -> None:
    families = parse_families(
        [
            {"group": "a-llm", "option_id": "a", "endpoint_name": "a-ep"},
            {"group": "b-lora", "option_id": "b", "endpoint_name": "base-ep", "base_component": "base-ic"},
        ]
    )
    assert families["a-llm"].kind is FamilyKind.FULL
    assert families["b-lora"].kind is FamilyKind.ADAPTER
    assert families["b-lora"].as_state()["base_component"] == "base-ic"


@pytest.mark.parametrize(
    "entries",
    [
        [
            {"group": "a", "option_id": "a", "endpoint_name": "e"},
            {"group": "a", "option_id": "b", "endpoint_name": "e"},
        ],
        [{"group": "bad_name!", "option_id": "a", "endpoint_name": "e"}],
        [{"group": "a", "option_id": "a", "endpoint_name": "e", "surprise": 1}],
    ],
)
def test_bad_families_are_refused(entries: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError):
        parse_families(entries)


def test_cdk_json_families_are_valid_for_the_lambdas() -> None:
    import json
    from pathlib import Path

    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    families = parse_families(context["model_families"])
    assert families and all(isinstance(f, ModelFamily) for f in families.values())
