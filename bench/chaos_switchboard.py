"""The chaos schedule replayed against Switchboard's local stack, over HTTP.

The local stack (moto server + Step Functions interpreter + AppConfig agent emulator + front door)
runs in this process, like `make local`. Faults go in through the primary option's params
(`error_rate`, `error_kind`), written to the options table as an operator would; the mock
provider counts the calls that reach each option. Prints one JSON line.

    python bench/chaos_switchboard.py --schedule '[{"name": "down", "requests": 30, "error_rate": 1.0}, ...]'
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRIMARY, FALLBACK = "claude-haiku-us", "nova-lite-us"  # route `chat`, default variant
OPTIONS_TTL_S = 1.0  # handler_environment's OPTIONS_CACHE_TTL_S for the local stack


def ask(url: str, key: str) -> tuple[int, str]:
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "ping"}]}).encode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback stack
        f"{url}/v1/chat/completions",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.headers.get("x-switchboard-option") or ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("x-switchboard-option") or ""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schedule", required=True)
    parser.add_argument("--breaker", default="{}", help="breaker knobs for the primary (JSON)")
    args = parser.parse_args()
    schedule = json.loads(args.schedule)
    breaker = json.loads(args.breaker)

    import boto3

    import switchboard_local.cli.target as target
    from switchboard.options.model import LlmOption, ProviderKind
    from switchboard.options.store import OptionsStore
    from switchboard.providers.registry import provider_for
    from switchboard_local.emulation import DEV_KEY, FLAGS_FILE
    from switchboard_local.stack import LocalStack

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-chaos-"))
    flags = workdir / "flags.json"
    shutil.copy(FLAGS_FILE, flags)
    # Never overwrite the developer's `make local` state file.
    target.LOCAL_STATE_FILE = workdir / "local.json"
    phases: list[dict[str, Any]] = []
    stack = LocalStack(
        port=0, agent_port=0, flags_file=flags, poll_interval_s=0.2, adapter_bake_seconds=None
    )  # no start-up adapter rollout (bench/stream_switchboard.py)
    stack.start()
    try:
        assert stack.resources is not None
        store = OptionsStore(
            stack.resources.options_table,
            client=boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url),
            ttl_s=0,
        )
        calls = provider_for(ProviderKind.MOCK).calls  # type: ignore[attr-defined]

        def set_primary(error_rate: float) -> None:
            option = store.get(PRIMARY)
            assert option is not None
            fields: dict[str, Any] = {
                "params": {**option.params, "error_rate": error_rate, "error_kind": "unavailable"}
            }
            if breaker:
                fields["breaker"] = {**(option.breaker.to_dict() if option.breaker else {}), **breaker}
            changed = LlmOption.from_dict({**option.to_item(), **fields})
            store.put(changed, expected_version=option.version, updated_by="bench")
            time.sleep(OPTIONS_TTL_S + 0.3)  # the handlers' option cache

        for _ in range(5):  # warm the stack: first requests pay imports and client set-up
            ask(stack.url, DEV_KEY)
        for phase in schedule:
            set_primary(float(phase["error_rate"]))
            before = calls[PRIMARY]
            latencies: list[float] = []
            answered, by_fallback, by_primary = 0, 0, 0
            statuses: dict[str, int] = {}
            started_phase = time.perf_counter()
            for _ in range(int(phase["requests"])):
                started = time.perf_counter()
                status, option = ask(stack.url, DEV_KEY)
                latencies.append((time.perf_counter() - started) * 1000.0)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 200:
                    answered += 1
                    by_fallback += int(option != PRIMARY)
                    by_primary += int(option == PRIMARY)
            primary_calls = calls[PRIMARY] - before
            phases.append(
                {
                    "name": phase["name"],
                    "requests": phase["requests"],
                    "answered": answered,
                    "answered_by_fallback": by_fallback,
                    "primary_calls": primary_calls,
                    # A primary call that did not answer failed (error kind `unavailable`: no retries).
                    "primary_failed_calls": primary_calls - by_primary,
                    "latencies_ms": latencies,
                    "statuses": statuses,
                    "elapsed_s": time.perf_counter() - started_phase,
                }
            )
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"config": "switchboard", "breaker": breaker, "phases": phases}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
