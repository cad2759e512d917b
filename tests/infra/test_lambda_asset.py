"""The Lambda code asset ships bytecode of the runtime's Python: used by it, never stale, deterministic."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra import constants, lambda_asset, layers

TAG = "cpython-" + layers.LAMBDA_PYTHON_VERSION.replace(".", "")
HASH_BASED_CHECKED = 0b11  # PEP 552 flags: hash-based, check the source


def _code_asset(cloud_assembly_dir: Path) -> Path:
    staged = [d for d in cloud_assembly_dir.glob("asset.*") if (d / "handlers" / "gateway.py").is_file()]
    assert len(staged) == 1, staged
    return staged[0]


def _pycs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.pyc"))}


def _run(python: str, asset: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-I", "-B", "-v", "-c", f"import sys; sys.path.insert(0, {str(asset)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_every_module_has_checked_hash_bytecode_of_the_runtime_python(cloud_assembly_dir: Path) -> None:
    asset = _code_asset(cloud_assembly_dir)
    modules = sorted(p for p in asset.rglob("*.py"))
    assert len(modules) > 50
    for module in modules:
        pyc = module.parent / "__pycache__" / f"{module.stem}.{TAG}.pyc"
        assert pyc.is_file(), pyc.relative_to(asset)
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == HASH_BASED_CHECKED, pyc.relative_to(asset)
    # Nothing else: no bytecode of another interpreter, no stray files of the build.
    assert {p.name.split(".")[1] for p in asset.rglob("*.pyc")} == {TAG}
    assert not list(asset.rglob(".complete"))


def test_bytecode_names_no_build_path(cloud_assembly_dir: Path) -> None:
    for name, data in _pycs(_code_asset(cloud_assembly_dir)).items():
        for path in (str(constants.PROJECT_ROOT), str(lambda_asset.BUILD_DIR)):
            assert path.encode() not in data, name


def test_the_runtime_python_loads_the_shipped_bytecode(cloud_assembly_dir: Path, tmp_path: Path) -> None:
    python, _ = lambda_asset.python_for_lambda()
    asset = shutil.copytree(_code_asset(cloud_assembly_dir), tmp_path / "task")
    done = _run(python, asset, "import handlers.gateway_http")  # standard library only
    pyc = asset / "handlers" / "__pycache__" / f"gateway_http.{TAG}.pyc"
    assert f"code object from '{pyc}'" in done.stderr


def test_an_edited_module_runs_its_source_not_stale_bytecode(
    cloud_assembly_dir: Path, tmp_path: Path
) -> None:
    python, _ = lambda_asset.python_for_lambda()
    asset = shutil.copytree(_code_asset(cloud_assembly_dir), tmp_path / "task")
    limits = asset / "switchboard" / "limits.py"
    limits.write_text(limits.read_text() + "\nEDITED_AFTER_THE_BUILD = 1\n")
    done = _run(python, asset, "import switchboard.limits as m; print(m.EDITED_AFTER_THE_BUILD)")
    assert done.stdout.strip() == "1"
    stale = asset / "switchboard" / "__pycache__" / f"limits.{TAG}.pyc"
    assert f"code object from '{stale}'" not in done.stderr


def test_the_same_sources_build_the_same_asset_anywhere(
    cloud_assembly_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another checkout path and a fresh build directory give byte-identical bytecode."""
    checkout = tmp_path / "elsewhere" / "lambdas"
    shutil.copytree(
        constants.LAMBDA_ASSET_DIR, checkout, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    monkeypatch.setattr(lambda_asset, "BUILD_DIR", tmp_path / "build")
    rebuilt = lambda_asset.lambda_asset_dir(source=checkout)
    assert rebuilt.parent == tmp_path / "build"
    assert _pycs(rebuilt) == _pycs(_code_asset(cloud_assembly_dir))
    # A second call reuses the build instead of compiling again.
    assert lambda_asset.lambda_asset_dir(source=checkout) == rebuilt


def test_a_missing_runtime_python_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(lambda_asset.LAMBDA_PYTHON_ENV, str(tmp_path / "no-python"))
    with pytest.raises(lambda_asset.LambdaPythonMissing, match=r"no python3\.99 was found"):
        lambda_asset._find_python("3.99")
