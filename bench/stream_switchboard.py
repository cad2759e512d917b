"""Streams through Switchboard's local stack: time to first token overhead, then the stream chaos.

The local stack (front door, moto server, Step Functions interpreter, AppConfig agent emulator)
runs in this process as `make local` runs it, but with real providers (no mock override): two
`openai_compatible` options point at the benchmark's streaming servers (bench/fault_server.py,
separate processes), and a route `bench-stream` chains them (primary, then fallback). The client is
the official OpenAI SDK. Prints one JSON line.

    python bench/stream_switchboard.py --primary URL --fallback URL --requests 50 --runs 5 \
        --schedule '[{"name": ..., "requests": 30, "error_rate": 1.0, "stream_fault": ...}]'

- TTFT: pairs, each a request straight to the primary server and then one through the gateway,
  both with the SDK, timed from `create()` to the first content delta (bench/streams.py
  `overhead_run`); `Stages` splits out the authorizer and `open_stream`. With `--interleave`
  (what bench/run.py uses) the pairs are measured in blocks asked on stdin, alternating with the
  LiteLLM anchor's blocks; without it, `--runs` runs of `--requests` pairs.
- Chaos: each phase sets the primary server's fault (`/control`) and sends streamed requests,
  reading the raw SSE body through the SDK's streaming response (`read_sse`): the run returns what
  the client saw of each stream; bench/run.py classifies it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.streams import StreamObservation, overhead_run, read_sse  # noqa: E402

ROUTE = "bench-stream"
PRIMARY, FALLBACK = "bench-primary", "bench-fallback"
MESSAGES: list[Any] = [{"role": "user", "content": "ping"}]
CIRCUIT_CACHE_S = 2.0  # CircuitStore's default cache_ttl_s: how long a deleted circuit may be seen


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own loopback servers
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def ttft_ms(client: Any, model: str) -> float:
    """`create(stream=True)` to the first content delta (the stream is then read to its end)."""
    started = time.perf_counter()
    first: float | None = None
    for chunk in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    if first is None:
        raise RuntimeError(f"a stream to {client.base_url} had no content")
    return (first - started) * 1000.0


def observe(client: Any) -> StreamObservation:
    """One streamed request through the gateway, as the wire carried it."""
    import openai

    try:
        with client.chat.completions.with_streaming_response.create(
            model=ROUTE, messages=MESSAGES, stream=True
        ) as response:
            return read_sse(response.iter_lines())
    except openai.APIStatusError as exc:  # an HTTP error before the first byte: the SDK raised it
        print(f"HTTP {exc.status_code} before the first byte: {exc.message}", file=sys.stderr)
        return StreamObservation(done=False, error=True, text="")
    except openai.APIConnectionError as exc:  # cut without an error event: not a clean error
        print(f"transport failure: {exc}", file=sys.stderr)
        return StreamObservation(done=False, error=False, text="")


def bench_options(primary: str, fallback: str, breaker: dict[str, Any]) -> list[dict[str, Any]]:
    def option(option_id: str, url: str) -> dict[str, Any]:
        return {
            "id": option_id,
            "provider": "openai_compatible",
            "model": "bench",
            "base_url": f"{url}/v1",
            "task": "chat",
            "description": "bench/fault_server.py: a local streaming OpenAI-compatible server",
            "timeout_ms": 5000,
            "params": {"first_token_timeout_ms": 2000, "idle_timeout_ms": 2000},
            "breaker": {"failure_threshold": 5, "window_s": 60, "half_open_probes": 1, **breaker},
        }

    return [option(PRIMARY, primary), option(FALLBACK, fallback)]


def add_route(flags: Path) -> None:
    """The `bench-stream` flag: chain primary -> fallback, `reject` when both are down."""
    document = json.loads(flags.read_text())
    document["flags"][ROUTE] = {**document["flags"]["echo"], "name": f"Route: {ROUTE}"}
    attributes = {"chain": [PRIMARY, FALLBACK], "degrade": ["reject"]}
    document["values"][ROUTE] = {
        "_variants": [{"name": "default", "enabled": True, "attributeValues": attributes}]
    }
    flags.write_text(json.dumps(document, indent=2))


def wait_for_route(client: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        observation = observe(client)
        if observation.done:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the route {ROUTE} never answered: {observation}")
        time.sleep(0.2)


class Stages:
    """Where a request's time goes in the stack, by wrapping (the code itself is unchanged).

    `authorizer.handler` (the front door caches its answer per key for the deployed TTL, as API
    Gateway does: counted, to show it is not on every request's path) and `gateway.open_stream`,
    which returns once the first candidate's first content delta arrived (so its time minus the
    server's own TTFT is the gateway's part before the first byte: plan, circuits, the provider
    connection).
    """

    def __init__(self) -> None:
        self.authorizer_ms: list[float] = []
        self.open_stream_ms: list[float] = []

    def install(self) -> None:
        from handlers import authorizer, gateway

        authorizer.handler = self._timed(authorizer.handler, self.authorizer_ms)
        gateway.open_stream = self._timed(gateway.open_stream, self.open_stream_ms)

    @staticmethod
    def _timed(function: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                into.append((time.perf_counter() - started) * 1000.0)

        return timed

    def clear(self) -> None:
        self.authorizer_ms.clear()
        self.open_stream_ms.clear()


def warm_up(gateway: Any, direct: Any) -> None:
    for _ in range(10):  # warm: connections, the options cache, lazy imports
        ttft_ms(direct, "bench")
        ttft_ms(gateway, ROUTE)
    # The emulated AWS (moto's server, the Step Functions interpreter, the SDK models) shares this
    # process's heap: a full collection walks it all, 250-400 ms a pass on the bench machine, a
    # pause no gateway Lambda (which holds none of it) ever takes. Frozen once warm, so the
    # collector still runs, over what the requests allocate.
    gc.collect()
    gc.freeze()


def measure_pairs(gateway: Any, direct: Any, pairs: int, stages: Stages) -> dict[str, Any]:
    """`pairs` pairs, each a request straight to the server then one through the gateway: their
    TTFTs, `open_stream`'s time per request, and how often the authorizer ran."""
    stages.clear()
    direct_ms, through_ms = [], []
    for _ in range(pairs):
        direct_ms.append(ttft_ms(direct, "bench"))
        through_ms.append(ttft_ms(gateway, ROUTE))
    return {
        "direct_ms": direct_ms,
        "through_ms": through_ms,
        "open_stream_ms": list(stages.open_stream_ms),
        # The front door caches the authorizer's answer per key for the deployed TTL, as API
        # Gateway does: within a run it is called once per TTL, not per request.
        "authorizer_calls": len(stages.authorizer_ms),
    }


def run_figures(measured: dict[str, Any]) -> dict[str, Any]:
    """One run's figures (bench/streams.py `overhead_run`), with its raw pairs kept."""
    figures: dict[str, Any] = overhead_run(measured["through_ms"], measured["direct_ms"])
    figures["authorizer_calls"] = float(measured["authorizer_calls"])
    if len(measured["open_stream_ms"]) == len(measured["direct_ms"]):
        inside = overhead_run(measured["open_stream_ms"], measured["direct_ms"])
        figures["open_stream_overhead_p50_ms"] = inside["overhead_p50_ms"]
        figures["open_stream_overhead_p99_ms"] = inside["overhead_p99_ms"]
    return {**figures, **{key: measured[key] for key in ("direct_ms", "through_ms", "open_stream_ms")}}


def measure_ttft(gateway: Any, direct: Any, requests: int, runs: int, stages: Stages) -> list[dict[str, Any]]:
    """Standalone: `runs` runs of `requests` pairs (bench/run.py interleaves with `serve_pairs`)."""
    warm_up(gateway, direct)
    return [run_figures(measure_pairs(gateway, direct, requests, stages)) for _ in range(runs)]


def serve_pairs(gateway: Any, direct: Any, stages: Stages) -> None:
    """`--interleave`: warm up, say `@pairs-ready`, then measure a block of pairs per stdin line
    `{"pairs": n}` (answered `@pairs {...}` on stdout) until `{"end": true}` or EOF. bench/run.py
    alternates blocks with the LiteLLM anchor's, so both sides see the same moments of the machine."""
    warm_up(gateway, direct)
    reply("@pairs-ready", {})
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("end"):
            return
        reply("@pairs", measure_pairs(gateway, direct, int(command["pairs"]), stages))


def reply(tag: str, payload: dict[str, Any]) -> None:
    """One line on stdout, in one write and starting a line of its own: the stack's threads print
    metrics lines to stdout too (a stream's are flushed when it ends, maybe while this is written),
    and `print` writes its newline separately, so a reply could otherwise land mid-line."""
    sys.stdout.write(f"\n{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def run_chaos(
    gateway: Any, primary: str, fallback: str, schedule: list[dict[str, Any]], reset: Callable[[], None]
) -> list[dict[str, Any]]:
    """Each phase starts from a closed circuit (`reset`), so each failure mode meets a healthy breaker."""
    phases = []
    for index, phase in enumerate(schedule):
        reset()
        fault: dict[str, Any] = {k: phase[k] for k in ("stream_fault", "fail_after_chunks") if k in phase}
        post_json(
            f"{primary}/control",
            {"error_rate": phase["error_rate"], "seed": 2000 + index, "reset": True, **fault},
        )
        post_json(f"{fallback}/control", {"error_rate": 0.0, "reset": True})
        started = time.perf_counter()
        observations = [observe(gateway).to_dict() for _ in range(int(phase["requests"]))]
        phases.append(
            {
                "name": phase["name"],
                "observations": observations,
                "primary_calls": get_json(f"{primary}/stats")["calls"],
                "elapsed_s": time.perf_counter() - started,
            }
        )
    return phases


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--primary", required=True)
    parser.add_argument("--fallback", required=True)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--schedule", required=True)
    parser.add_argument("--breaker", default="{}", help="breaker knobs of both options (JSON)")
    parser.add_argument(
        "--interleave", action="store_true", help="TTFT pairs in blocks asked on stdin (`serve_pairs`)"
    )
    args = parser.parse_args()

    import boto3
    import openai

    import switchboard_local.cli.target as target
    import switchboard_local.front_door as front_door
    from switchboard.circuits.store import STATE_SK
    from switchboard.contract import env as env_names
    from switchboard.contract.tables import CIRCUIT_PARTITION_KEY, CIRCUIT_SORT_KEY
    from switchboard.options.model import LlmOption
    from switchboard.options.store import OptionsStore
    from switchboard_local.emulation import DEV_KEY, FLAGS_FILE
    from switchboard_local.stack import LocalStack

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-stream-"))
    flags = workdir / "flags.json"
    shutil.copy(FLAGS_FILE, flags)
    target.LOCAL_STATE_FILE = workdir / "local.json"  # never the developer's `make local` state file
    # The usage plan's throttle (10 requests/s for the dev key's tier) would answer 429 to a paced
    # benchmark: lifted here, as a load test raises its key's plan. It is not gateway overhead.
    unthrottled = {"rateLimit": 10_000.0, "burstLimit": 10_000.0}
    front_door.usage_plan_throttles = lambda: {tier: unthrottled for tier in ("standard", "premium")}  # type: ignore[assignment]
    # provider_override None: the options' own provider (openai_compatible) is called, over HTTP.
    # adapter_bake_seconds None: no start-up adapter rollout (`make local`'s demonstration of the
    # model lifecycle): its workflow would run in this process, on the CPU the requests measured
    # here use, for the first minute or so.
    stack = LocalStack(
        port=0,
        agent_port=0,
        flags_file=flags,
        poll_interval_s=1.0,
        provider_override=None,
        adapter_bake_seconds=None,
    )
    stack.start()
    # The local stack shortens the gateway's options cache to 1 s and refreshes it synchronously
    # (option edits show at once): a request that finds it expired scans the options table on its
    # path (20-60 ms against moto). Measured as deployed: the loader's default TTL (10 s) and
    # stale-while-revalidate window (the scan runs on a background thread).
    os.environ.pop(env_names.OPTIONS_CACHE_TTL_S, None)
    os.environ.pop(env_names.OPTIONS_CACHE_STALE_S, None)  # and its stale-while-revalidate window
    os.environ.pop(env_names.CIRCUIT_CACHE_STALE_S, None)  # the circuits' too, as deployed
    os.environ.pop(env_names.QUOTA_SETTINGS_STALE_S, None)  # and the tenants' quota settings
    try:
        resources = stack.resources
        assert resources is not None
        store = OptionsStore(
            resources.options_table,
            client=boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url),
            ttl_s=0,
        )
        for item in bench_options(args.primary, args.fallback, json.loads(args.breaker)):
            store.put(LlmOption.from_dict(item), expected_version=None, updated_by="bench")
        add_route(flags)  # after the options: the agent refuses a chain naming unknown options
        gateway = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)
        direct = openai.OpenAI(base_url=f"{args.primary}/v1", api_key="x", max_retries=0, timeout=30)
        stages = Stages()
        stages.install()
        wait_for_route(gateway)
        ttft: list[dict[str, Any]] = []
        if args.interleave:
            serve_pairs(gateway, direct, stages)
        else:
            ttft = measure_ttft(gateway, direct, args.requests, args.runs, stages)
        circuits = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=stack.aws_url)

        def close_primary_circuit() -> None:
            """A missing circuit item is CLOSED: delete the primary's, wait out the gateway's cache."""
            key = {CIRCUIT_PARTITION_KEY: {"S": PRIMARY}, CIRCUIT_SORT_KEY: {"S": STATE_SK}}
            circuits.delete_item(TableName=resources.circuit_table, Key=key)
            time.sleep(CIRCUIT_CACHE_S + 0.3)

        schedule = json.loads(args.schedule)
        phases = run_chaos(gateway, args.primary, args.fallback, schedule, close_primary_circuit)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"ttft_runs": ttft, "chaos": {"phases": phases}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
