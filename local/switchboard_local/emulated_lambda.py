"""How the emulated Lambda functions run: in this interpreter, behind moto's Lambda backend.

Shared by the request stack (:mod:`switchboard_local.emulation`) and the model lifecycle
(:mod:`switchboard_local.lifecycle_local`), which both register functions with moto and hand moto's
invocations to in-process handlers. It sits below both, so neither imports the other to get it.
The moto patch that routes the invocations is declared in :mod:`switchboard_local.moto_patches`.
"""

from __future__ import annotations

import io
import json
import sys
import traceback
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]

LOCAL_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
"""The runtime the emulated functions declare: their code runs in this interpreter, in-process."""


@dataclass
class FakeLambdaContext:
    """What Powertools' `inject_lambda_context` reads from a real context."""

    function_name: str = "switchboard-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:switchboard-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def placeholder_code_zip() -> bytes:
    """The code package the emulated functions are created with (moto wants one; it never runs)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "# code runs in-process; see bind_lambda_handlers\n")
    return buffer.getvalue()


def in_process_invoke(handlers: Mapping[str, Handler]) -> Callable[[Any], Any]:
    """A replacement for moto's ``LambdaFunction._invoke_lambda`` that runs ``handlers`` in-process.

    Given moto's original method, returns the method to install: a function named in ``handlers``
    runs here; any other goes to moto as before. A handler's exception is reported the way Lambda
    reports it (``errorType``, ``errorMessage``), so the ASL's Retry/Catch on our own error names
    behave locally as they do in AWS.
    """

    def build(original: Any) -> Any:
        def invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
            handler = handlers.get(self.function_name)
            if handler is None:
                return original(self, event)
            try:
                # moto hands over the request body already parsed (a dict), or a JSON string
                payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
                result = handler(payload, FakeLambdaContext(function_name=self.function_name))
                return json.dumps(result), False, ""
            except Exception as exc:
                error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                return json.dumps(error), True, traceback.format_exc()

        return invoke

    return build
