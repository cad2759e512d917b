"""Every moto patch in one place: canaries against the installed moto, the version guard, exact undo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from switchboard_local import moto_patches
from switchboard_local.moto_patches import (
    ASL_PARSE_CACHE,
    DYNAMODB_ATOMIC_WRITES,
    DYNAMODB_JSON_ITEM_READS,
    MOTO_SERVER_HOST_ROUTING,
    SAGEMAKER,
    SFN_START_SYNC,
    TARGETS,
    MotoPatchError,
    Patch,
    PatchSet,
    Target,
)
from tests.fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]
MODULE_PATCH_SETS = (
    ASL_PARSE_CACHE,
    SFN_START_SYNC,
    SAGEMAKER,
    DYNAMODB_ATOMIC_WRITES,
    DYNAMODB_JSON_ITEM_READS,
    MOTO_SERVER_HOST_ROUTING,
)


@pytest.mark.parametrize("key", sorted(TARGETS))
def test_canary_moto_still_has_what_the_patch_expects(key: str) -> None:
    """One test per patched attribute: moto's own attribute exists with the parameters the
    replacement was written for, or, for an added one, moto still lacks it (a moto that gained it
    would be hidden by the patch). A moto upgrade that moves any of them fails here, by name."""
    assert TARGETS[key].problem() is None


def test_every_target_is_patched_by_some_patch_set() -> None:
    used = {patch.target for patch_set in MODULE_PATCH_SETS for patch in patch_set.patches}
    used |= {patch.target for patch in moto_patches.lambda_handlers({}).patches}
    assert used == set(TARGETS.values())


def test_the_tested_version_is_the_pinned_one() -> None:
    pins = re.findall(r"^moto\[[^\]]*\]==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert pins == [moto_patches.TESTED_MOTO_VERSION]
    moto_patches.check_moto_version()  # and the installed moto is that one


def test_another_moto_version_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MotoPatchError, match=r"moto 9\.9\.9.*requirements-dev\.txt"):
        moto_patches.check_moto_version("9.9.9")

    monkeypatch.setattr(moto_patches, "installed_moto_version", lambda: "5.3.0")
    patch_set = PatchSet("probe", [Patch(TARGETS["stepfunctions.start_sync_execution"], lambda _: None)])
    with pytest.raises(MotoPatchError, match=r"moto 5\.3\.0"):
        patch_set.install()
    assert not patch_set.is_installed


_ABSENT = object()


def _class_dict_values() -> dict[str, Any]:
    return {t.name: t.owner_class().__dict__.get(t.attribute, _ABSENT) for t in TARGETS.values()}


@pytest.mark.parametrize("shared", MODULE_PATCH_SETS, ids=lambda p: p.name)
def test_install_is_idempotent_and_uninstall_restores_moto_exactly(shared: PatchSet) -> None:
    # A fresh set with the same patches: it layers over the shared one if a fixture holds that
    # installed, and its undo must then restore exactly that layer.
    patch_set = PatchSet(shared.name, shared.patches)
    before = _class_dict_values()
    with patch_set.applied():
        patch_set.install()  # again: no-op
        during = _class_dict_values()
        for patch in patch_set.patches:
            assert during[patch.target.name] is not before[patch.target.name]
            assert patch.target.name in moto_patches.patched_targets()
            assert patch.target.problem() is None  # judged on moto's own attribute, not the patch
    assert _class_dict_values() == before
    assert not patch_set.is_installed


def test_nested_lambda_bindings_unwind_in_order() -> None:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.__dict__["_invoke_lambda"]
    outer = moto_patches.lambda_handlers({"a": lambda event, context: "outer"})
    inner = moto_patches.lambda_handlers({"a": lambda event, context: "inner"})
    with outer.applied():
        outer_invoke = LambdaFunction.__dict__["_invoke_lambda"]
        with inner.applied():
            assert LambdaFunction.__dict__["_invoke_lambda"] is not outer_invoke
            assert TARGETS["lambda.invoke"].problem() is None  # judged on moto's own method
        assert LambdaFunction.__dict__["_invoke_lambda"] is outer_invoke
    assert LambdaFunction.__dict__["_invoke_lambda"] is original


def test_a_moved_attribute_refuses_the_whole_set_and_patches_nothing() -> None:
    gone = Target("moto.stepfunctions.responses", "StepFunctionResponse", "no_such_method", ("self",))
    renamed = Target("moto.sagemaker.responses", "SageMakerResponse", "describe_endpoint", ("self", "extra"))
    patch_set = PatchSet(
        "probe",
        [
            Patch(TARGETS["sagemaker.update_endpoint"], lambda _: None),
            Patch(gone, lambda original: original),
            Patch(renamed, lambda original: original),
        ],
    )
    before = _class_dict_values()
    with pytest.raises(MotoPatchError) as refused:
        patch_set.install()
    assert "no longer has this attribute" in str(refused.value)
    assert "takes ('self',), the patch was written for ('self', 'extra')" in str(refused.value)
    assert _class_dict_values() == before and not patch_set.is_installed


def test_importing_the_local_modules_patches_nothing() -> None:
    """No patch as an import side effect: a fresh interpreter imports every module of the local
    stack and finds moto's classes untouched."""

    code = (
        "import importlib, pkgutil, switchboard_local\n"
        "from switchboard_local import moto_patches\n"
        "targets = moto_patches.TARGETS.values()\n"
        "before = {t.name: t.owner_class().__dict__.get(t.attribute) for t in targets}\n"
        "for m in pkgutil.walk_packages(switchboard_local.__path__, 'switchboard_local.'):\n"
        "    importlib.import_module(m.name)\n"
        "after = {t.name: t.owner_class().__dict__.get(t.attribute) for t in targets}\n"
        "assert before == after, [k for k in before if before[k] is not after[k]]\n"
        "assert not moto_patches.patched_targets()\n"
    )
    done = run_fresh(code)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_local_package_has_no_import_cycle() -> None:
    """Imports inside `switchboard_local`, deferred ones included, form no cycle (emulation and
    lifecycle_local used to import each other: one at load, the other inside a function)."""
    import ast

    package = ROOT / "local" / "switchboard_local"
    graph: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        name = "switchboard_local." + ".".join(path.relative_to(package).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("switchboard_local")
            ):
                edges.add(node.module)
                edges |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("switchboard_local")}
        graph[name] = edges
    graph = {name: {e for e in edges if e in graph} for name, edges in graph.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, nxt]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [c for name in sorted(graph) if (c := cycle_from(name))]
    assert not cycles, cycles


def test_provisioning_the_lifecycle_patches_nothing_and_asks_for_the_extension() -> None:
    from switchboard_local.lifecycle_local import provision_model_lifecycle

    if SAGEMAKER.is_installed:
        pytest.skip("a local stack of this session holds the SageMaker extension installed")
    before = _class_dict_values()
    with pytest.raises(RuntimeError, match=r"moto_patches\.SAGEMAKER"):
        provision_model_lifecycle(lambda _service: None, object())
    assert _class_dict_values() == before
