"""The benchmark's own measuring parts: the first-request split and the staged-asset guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cold_child, run
from tests.fakes import ManualClock


def test_stopwatch_counts_nested_calls_once() -> None:
    clock = ManualClock(100.0)
    watch = cold_child.Stopwatch(clock)

    @watch.wrap
    def inner() -> None:
        clock.sleep(0.02)

    @watch.wrap
    def outer() -> None:
        inner()
        clock.sleep(0.02)

    outer()
    inner()
    # 0.06 s of wrapped time; counting the nested call twice would give 0.08 s.
    assert watch.total == pytest.approx(0.06)


def test_a_call_that_raises_is_counted_and_does_not_hide_later_calls() -> None:
    clock = ManualClock(100.0)
    watch = cold_child.Stopwatch(clock)

    @watch.wrap
    def failing() -> None:
        clock.sleep(0.01)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    assert watch.total == pytest.approx(0.01)
    # Had the raise left the nesting depth at 1, this call would count as nested and be lost.
    watch.wrap(clock.sleep)(0.01)
    assert watch.total == pytest.approx(0.02)


def _fake_checkout(root: Path, source: str) -> Path:
    lambdas = root / "lambdas" / "handlers"
    lambdas.mkdir(parents=True)
    (lambdas / "gateway.py").write_text(source)
    asset = root / "cdk.out" / "asset.abc" / "handlers"
    asset.mkdir(parents=True)
    (asset / "gateway.py").write_text("handler = 1\n")
    (asset / "__pycache__").mkdir()
    (asset / "__pycache__" / "gateway.cpython-311.pyc").write_bytes(b"stale bytecode")
    return root


def test_staged_package_is_a_bytecode_free_copy_of_the_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra import constants

    root = _fake_checkout(tmp_path / "repo", "handler = 1\n")
    monkeypatch.setattr(run, "ROOT", root)
    monkeypatch.setattr(constants, "LAMBDA_ASSET_DIR", root / "lambdas")
    package = run.staged_lambda_package(tmp_path / "work")
    assert (package / "handlers" / "gateway.py").read_text() == "handler = 1\n"
    assert not list(package.rglob("*.pyc")) and not list(package.rglob("__pycache__"))


def test_a_stale_cdk_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from infra import constants

    root = _fake_checkout(tmp_path / "repo", "handler = 2  # edited after the last synth\n")
    monkeypatch.setattr(run, "ROOT", root)
    monkeypatch.setattr(constants, "LAMBDA_ASSET_DIR", root / "lambdas")
    with pytest.raises(RuntimeError, match=r"cdk\.out is older than lambdas/handlers/gateway\.py"):
        run.staged_lambda_package(tmp_path / "work")


def test_routing_times_prepare_through_the_agent_emulator_and_plan_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a tiny benchmark (the real code path: RoutingFlags -> agent emulator over loopback HTTP)
    monkeypatch.setattr(run, "RUNS", 2)
    monkeypatch.setattr(run, "ROUTING_CALLS", 30)
    # When the routing section runs (it asserts the emulator answered and the chain is not empty)
    result = run.routing_overhead()
    # Then both figures come back per run, and the round trip costs more than the pure plan
    assert len(result["runs"]) == len(result["plan_runs"]) == 2
    for figures in (*result["runs"], *result["plan_runs"]):
        assert 0 < figures["p50_us"] <= figures["p99_us"]
    assert run.median_of(result["runs"], "p50_us") > run.median_of(result["plan_runs"], "p50_us")
