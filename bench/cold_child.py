"""One cold start: import a Lambda handler module, then serve its first request (fresh interpreter).

    python bench/cold_child.py gateway '<event json>'
    python bench/cold_child.py seed_options            # import only

The environment (set by bench/run.py) points the handler at emulated AWS (moto's server and the
AppConfig agent emulator, in the parent process), as Lambda's environment points it at AWS. Only
the standard library is imported before the clock starts, so nothing is pre-loaded for the handler.

The first request is split three ways, measured by wrapping (after the import, so the import is
untouched): building AWS clients (`switchboard.aws.client`: botocore's import and service models),
waiting on AWS (HTTP responses from the emulated services and the AppConfig agent, and the whole
workflow run for the gateway, which in AWS is Step Functions running the step Lambdas), and the
rest, which is our own code.

Prints one JSON line: import_s, own_modules and own_source_bytes (the project modules the import
loaded, which a cold start compiles from source), first_request_s, clients_s, aws_wait_s, own_s,
total_s, maxrss_mib, ok, status.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Context:
    """The attributes Powertools reads from Lambda's context object."""

    function_name = "switchboard-cold"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:switchboard-cold"
    aws_request_id = "cold-start-0001"
    function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class Stopwatch:
    """Wall time spent inside wrapped callables; nested calls are counted once, by the outermost."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.total = 0.0
        self._depth = 0
        self._clock = clock

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            started = self._clock()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.total += self._clock() - started

        return timed


def peak_rss_mib() -> float:
    """VmHWM: this process's peak RSS since exec (ru_maxrss would carry the forking parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def instrument(clients: Stopwatch, waiting: Stopwatch) -> None:
    """Wrap client construction, HTTP responses and the workflow runners.

    Runs on the first request's clock: the modules it imports would be imported by that request.
    """
    import http.client

    import switchboard.aws as aws
    import switchboard.workflow as workflow

    aws.client = clients.wrap(aws.client)
    connection = http.client.HTTPConnection
    connection.getresponse = waiting.wrap(connection.getresponse)  # type: ignore[method-assign]
    for runner in (workflow.SyncExpressRunner, workflow.PollingRunner):
        runner.run = waiting.wrap(runner.run)  # type: ignore[method-assign]


def main() -> int:
    name = sys.argv[1]
    event = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
    started = time.perf_counter()
    module = __import__(f"handlers.{name}", fromlist=["handler"])
    imported = time.perf_counter()
    # The project's own modules the import loaded (before any request): the import closure the
    # cold start compiles from source, e.g. the gateway's routing is decision + schema only.
    own = sorted(m for m in sys.modules if m.split(".")[0] in ("handlers", "switchboard"))
    files = [getattr(sys.modules[m], "__file__", None) for m in own]
    source_bytes = sum(os.path.getsize(f) for f in files if f)
    report: dict[str, Any] = {
        "import_s": imported - started,
        "own_modules": own,
        "own_source_bytes": source_bytes,
    }
    if event is not None:
        clients, waiting = Stopwatch(), Stopwatch()
        began = time.perf_counter()
        instrument(clients, waiting)
        result = module.handler(event, Context())
        first = time.perf_counter() - began
        ok = not (isinstance(result, dict) and int(result.get("statusCode", 200)) >= 400)
        report.update(
            {
                "first_request_s": first,
                "clients_s": clients.total,
                "aws_wait_s": waiting.total,
                "own_s": max(first - clients.total - waiting.total, 0.0),
                "total_s": imported - started + first,
                "ok": ok,
                "status": result.get("statusCode") if isinstance(result, dict) else None,
            }
        )
    report["maxrss_mib"] = peak_rss_mib()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
