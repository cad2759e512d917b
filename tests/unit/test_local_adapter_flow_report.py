"""What `make local` says about its start-up adapter flow, and how its bake is set."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from switchboard_local.lifecycle_local import AdapterFlowReport
from switchboard_local.stack import _bake_seconds

REPORT = AdapterFlowReport(group="fam", tenant="acme", version=1, package_arn="arn:pkg/1", outcome="promoted")


@pytest.mark.parametrize(
    ("raw", "seconds"), [("0", 0), ("5", 5), ("3600", 3600), ("off", None), ("OFF", None)]
)
def test_the_bake_is_seconds_or_off(raw: str, seconds: int | None) -> None:
    assert _bake_seconds(raw) == seconds


@pytest.mark.parametrize("raw", ["-1", "3601", "soon", ""])
def test_a_bad_bake_is_refused(raw: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="bake time"):
        _bake_seconds(raw)


def test_the_summary_names_tenant_version_share_bake_and_outcome() -> None:
    promoted = replace(REPORT, share_percent=10, bake_seconds=5, reason="healthy")
    assert (
        promoted.summary()
        == "acme: fam v1 promoted to live after a 5 s canary on 10% of acme's requests (healthy)"
    )
    rolled = replace(promoted, outcome="rolled back", reason="alarm x in ALARM")
    assert rolled.summary().endswith(
        "rolled back after a 5 s canary on 10% of acme's requests (alarm x in ALARM)"
    )
    assert replace(REPORT, outcome="already deployed", reason="Approved").summary() == (
        "acme: fam v1 left as it was (Approved)"
    )
    assert (
        replace(REPORT, outcome="failed", reason="workflow FAILED").summary()
        == "acme: fam v1 failed: workflow FAILED"
    )
