"""Run a snippet in a fresh interpreter with the project's code on the path.

Import-closure tests (what a handler's cold start loads, that a module patches nothing on import)
need an interpreter the test session has not already filled: one helper for all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(code: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c code`` from the repository root, with ``.``, ``lambdas`` and ``local`` importable."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in (".", "lambdas", "local")),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
