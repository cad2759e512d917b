"""`switchboard ... --local` as the end-to-end tests run it: in-process, stdout captured.

The local stack serves requests on threads of this process, so a request finishing while a command
runs (a stream closed late, say) can print its EMF metric documents into the captured stdout: lines
that are metric documents are not the command's output and are dropped.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from switchboard_local.cli.main import main as cli


def switchboard(*args: str) -> Any:
    """Run the command against the local stack; its output parsed as JSON when it is JSON."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli([*args, "--local"]) == 0, args
    lines = [line for line in out.getvalue().splitlines() if not line.startswith('{"_aws":')]
    text = "\n".join(lines).strip()
    return json.loads(text) if text.startswith(("{", "[")) else text


def put_option(tmp_path: Path, option_id: str, *, settle_s: float | None = None, **changes: Any) -> None:
    """`switchboard options put` as an operator would: get, edit, put (conditional on version).

    A dict value is merged into the option's own (``params={...}`` keeps the other params); then,
    with ``settle_s``, wait that long for the handlers' option caches.
    """
    option = switchboard("options", "get", option_id)
    for key, value in changes.items():
        option[key] = {**option.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / f"{option_id}.json"
    path.write_text(json.dumps(option))
    switchboard("options", "put", str(path))
    if settle_s:
        time.sleep(settle_s)
