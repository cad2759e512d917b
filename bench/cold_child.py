"""One cold start: import a Lambda handler module, then serve its first request (fresh interpreter).

    python bench/cold_child.py gateway '<event json>'

The environment (set by bench/run.py) points the handler at emulated AWS (moto's server and the
AppConfig agent emulator, in the parent process), as Lambda's environment points it at AWS. Only
the standard library is imported before the clock starts, so nothing is pre-loaded for the handler.
Prints one JSON line: import_s, first_request_s, total_s, maxrss_mib, ok.
"""

import json
import resource
import sys
import time


class Context:
    """The attributes Powertools reads from Lambda's context object."""

    function_name = "switchboard-cold"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:switchboard-cold"
    aws_request_id = "cold-start-0001"
    function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def peak_rss_mib() -> float:
    """VmHWM: this process's peak RSS since exec (ru_maxrss would carry the forking parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    name, event = sys.argv[1], json.loads(sys.argv[2])
    started = time.perf_counter()
    module = __import__(f"handlers.{name}", fromlist=["handler"])
    imported = time.perf_counter()
    result = module.handler(event, Context())
    done = time.perf_counter()
    ok = not (isinstance(result, dict) and int(result.get("statusCode", 200)) >= 400)
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "first_request_s": done - imported,
                "total_s": done - started,
                "maxrss_mib": peak_rss_mib(),
                "ok": ok,
                "status": result.get("statusCode") if isinstance(result, dict) else None,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
