"""The Lambda code asset: ``lambdas/`` as is, plus bytecode compiled by the Lambda runtime's Python.

Why bytecode: ``/var/task`` is read-only, so a module the zip ships without bytecode is compiled
from source on every cold start (the interpreter cannot write its ``__pycache__``). Measured here
(``bench/cold_child.py``): the gateway's first streamed request loads 66 of our modules, 685 KB of
source; compiling them took about 100 ms on Python 3.11 and 130 ms on 3.13, a third of that cold
start, and every other function pays the same for its own modules.

Why it stays deterministic (one asset hash for one source tree, on any machine with the same
interpreter release):

- **Checked-hash pycs** (PEP 552): the header carries a hash of the source, not its mtime (a zip
  restores whatever mtime it recorded; a timestamp pyc would be rejected or, worse, trusted when
  stale). At import the interpreter hashes the source it finds and uses the pyc only if it
  matches, so an edited module is compiled from source, never run from stale bytecode.
- **Paths**: each code object records the module's path relative to the asset root (``dfile``),
  not the build machine's checkout; the import system replaces it with the real path on load.
- **The runtime's own minor version** (``layers.LAMBDA_PYTHON_VERSION``): pycs are looked up by
  interpreter tag (``__pycache__/x.cpython-313.pyc``), so bytecode from another version would be
  shipped and ignored. The compiler runs isolated (``-I``: no PYTHON* variables, no user site).

The copy and its bytecode are built once per source fingerprint under ``build/lambda-asset/`` (git
ignores ``build/``) and reused by later syntheses; CDK then stages the directory as before.
Synthesis needs that Python (``make test`` needs it already): ``SWITCHBOARD_LAMBDA_PYTHON``
names it, else ``python3.13`` on PATH, else pyenv's newest 3.13.x (as the Makefile finds it).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from infra import constants, layers

LAMBDA_PYTHON_ENV: Final = "SWITCHBOARD_LAMBDA_PYTHON"
BUILD_DIR: Final = constants.PROJECT_ROOT / "build" / "lambda-asset"
FORMAT: Final = "checked-hash-pyc/1"
"""Part of the cache key: bump when what is built here changes."""
KEEP_BUILDS: Final = 3

# Runs in the Lambda runtime's Python: compiles every module under the directory given.
_COMPILE = """
import importlib.util, py_compile, sys
from pathlib import Path
root = Path(sys.argv[1])
for source in sorted(root.rglob("*.py")):
    py_compile.compile(
        str(source),
        cfile=importlib.util.cache_from_source(str(source)),
        dfile=source.relative_to(root).as_posix(),
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
print(sys.version)
"""


class LambdaPythonMissing(RuntimeError):
    """No interpreter of the Lambda runtime's Python version to compile the asset's bytecode."""


def lambda_asset_dir(source: Path | None = None, python: str | None = None) -> Path:
    """The directory to stage as the functions' code: ``source`` (``lambdas/``) plus its bytecode."""
    root = source or constants.LAMBDA_ASSET_DIR
    interpreter, version = python_for_lambda() if python is None else (python, _version_of(python))
    files = list(_source_files(root))
    key = _fingerprint(root, files, version)
    target = BUILD_DIR / key
    if target.is_dir():  # complete: a build appears only by the rename below
        os.utime(target)  # in use: the newest for `_prune`
        return target
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    staging = BUILD_DIR / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    for relative in files:
        copy = staging / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / relative, copy)
        shutil.copymode(root / relative, copy)  # the LWA start script must stay executable
    subprocess.run(  # noqa: S603 - the Lambda runtime's interpreter on our own sources
        [interpreter, "-I", "-c", _COMPILE, str(staging)], check=True, capture_output=True, text=True
    )
    try:
        staging.rename(target)
    except OSError:  # another synthesis built the same fingerprint first: use that one
        shutil.rmtree(staging, ignore_errors=True)
    _prune(keep=target)
    return target


def python_for_lambda() -> tuple[str, str]:
    """The interpreter that compiles the asset's bytecode, and its ``sys.version``."""
    return _find_python(layers.LAMBDA_PYTHON_VERSION)


@functools.lru_cache(maxsize=4)
def _find_python(minor: str) -> tuple[str, str]:
    candidates: list[str] = []
    if os.environ.get(LAMBDA_PYTHON_ENV):
        candidates.append(os.environ[LAMBDA_PYTHON_ENV])
    on_path = shutil.which(f"python{minor}")
    if on_path:
        candidates.append(on_path)
    if sys.version.startswith(f"{minor}."):
        candidates.append(sys.executable)
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installed = sorted(pyenv.glob(f"{minor}.*/bin/python{minor}"), key=_release, reverse=True)
    candidates.extend(str(path) for path in installed)
    for candidate in candidates:
        try:
            version = _version_of(candidate)
        except (OSError, subprocess.CalledProcessError):
            continue  # e.g. a pyenv shim whose version is not selected
        if version.startswith(f"{minor}."):
            return candidate, version
    raise LambdaPythonMissing(
        f"the Lambda code asset ships bytecode compiled by the runtime's Python {minor}, and no "
        f"python{minor} was found (tried {candidates or 'none'}): install it (e.g. `pyenv install "
        f"{minor}`) or set {LAMBDA_PYTHON_ENV} to its path"
    )


def _version_of(interpreter: str) -> str:
    done = subprocess.run(  # noqa: S603
        [interpreter, "-I", "-c", "import sys; print(sys.version)"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip()


def _release(path: Path) -> tuple[int, ...]:
    parts = path.parent.parent.name.split(".")
    return tuple(int(p) if p.isdigit() else -1 for p in parts)


def _excluded(relative: Path) -> bool:
    """``LAMBDA_ASSET_EXCLUDE`` (``**/name`` patterns): any part of the path matching one."""
    patterns = [pattern.removeprefix("**/") for pattern in constants.LAMBDA_ASSET_EXCLUDE]
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in patterns)


def _source_files(root: Path) -> Iterator[Path]:
    """The files CDK staged before (``LAMBDA_ASSET_EXCLUDE`` applied), relative, sorted."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not _excluded(relative):
            yield relative


def _fingerprint(root: Path, files: Sequence[Path], version: str) -> str:
    digest = hashlib.sha256(f"{FORMAT}\0{version}\0".encode())
    for relative in files:
        path = root / relative
        executable = os.access(path, os.X_OK)
        digest.update(f"{relative.as_posix()}\0{int(executable)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def _prune(keep: Path) -> None:
    """Keep the newest few builds (a synthesis running at the same time may still stage one)."""
    builds = sorted(
        (d for d in BUILD_DIR.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for old in builds[KEEP_BUILDS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
