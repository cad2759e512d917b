"""The LiteLLM anchor. Runs ONLY in bench/.venv-litellm (litellm==1.82.6, installed with hashes).

Each subcommand prints one JSON object on its last stdout line:

    overhead --calls N --runs R      Router.completion(mock_response="ok") per-call latency (µs)
    http --api-base URL              Router.completion to a healthy local server, per-call latency (ms)
    cold                             `import litellm` time (s), then its first Router.completion
                                     (mock_response, no network) time (s); peak RSS (MiB)
    chaos --primary URL --fallback URL --config default|best --schedule JSON
                                     the fault schedule against a Router with fallbacks
    stream-ttft --api-base URL       time to first token (ms) of Router.completion(stream=True), each
                                     paired with one of the OpenAI SDK straight to the same server;
                                     `--interleave`: in blocks asked on stdin (bench/run.py)
    stream-chaos --primary URL --fallback URL --config default|best --schedule JSON
                                     the stream fault schedule: what the caller saw of each stream
                                     (bench/run.py classifies it with bench/streams.py)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import urllib.request
from typing import Any

# No internet here: use the bundled cost map, never fetch it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOG", "ERROR")

MESSAGES = [{"role": "user", "content": "ping"}]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _maxrss_mib() -> float:
    """VmHWM: peak RSS since exec (ru_maxrss would carry the forking parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def cmd_cold(_args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    import litellm  # noqa: F401

    imported = time.perf_counter()
    _mock_router().completion(model="chat", messages=MESSAGES, mock_response="ok")
    return {
        "import_s": imported - started,
        "first_request_s": time.perf_counter() - imported,
        "maxrss_mib": _maxrss_mib(),
    }


def _mock_router() -> Any:
    """A primary and a fallback group; only ever called with mock_response (no network)."""
    from litellm import Router

    return Router(
        model_list=[
            {
                "model_name": "chat",
                "litellm_params": {
                    "model": "openai/primary",
                    "api_key": "x",
                    "api_base": "http://127.0.0.1:9/v1",
                },
            },
            {
                "model_name": "chat-fallback",
                "litellm_params": {
                    "model": "openai/fallback",
                    "api_key": "x",
                    "api_base": "http://127.0.0.1:9/v1",
                },
            },
        ],
        fallbacks=[{"chat": ["chat-fallback"]}],
    )


def cmd_overhead(args: argparse.Namespace) -> dict[str, Any]:
    router = _mock_router()
    for _ in range(200):  # warm: caches, lazy imports
        router.completion(model="chat", messages=MESSAGES, mock_response="ok")
    runs = []
    for _ in range(args.runs):
        samples = []
        for _ in range(args.calls):
            started = time.perf_counter_ns()
            router.completion(model="chat", messages=MESSAGES, mock_response="ok")
            samples.append((time.perf_counter_ns() - started) / 1000.0)
        runs.append({"p50_us": _percentile(samples, 50), "p99_us": _percentile(samples, 99)})
    return {"runs": runs}


def cmd_http(args: argparse.Namespace) -> dict[str, Any]:
    """Router.completion to a healthy local OpenAI-compatible server: a real request through LiteLLM."""
    from litellm import Router

    router = Router(
        model_list=[
            {
                "model_name": "chat",
                "litellm_params": {
                    "model": "openai/fallback",
                    "api_key": "x",
                    "api_base": f"{args.api_base}/v1",
                },
            }
        ]
    )
    for _ in range(20):
        router.completion(model="chat", messages=MESSAGES, timeout=10)
    runs = []
    for _ in range(args.runs):
        samples = []
        for _ in range(args.calls):
            started = time.perf_counter()
            router.completion(model="chat", messages=MESSAGES, timeout=10)
            samples.append((time.perf_counter() - started) * 1000.0)
        runs.append({"p50_ms": _percentile(samples, 50), "p99_ms": _percentile(samples, 99)})
    return {"runs": runs}


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def _router(args: argparse.Namespace) -> Any:
    from litellm import Router

    model_list = [
        {
            "model_name": "chat",
            "litellm_params": {"model": "openai/primary", "api_key": "x", "api_base": f"{args.primary}/v1"},
        },
        {
            "model_name": "chat-fallback",
            "litellm_params": {"model": "openai/fallback", "api_key": "x", "api_base": f"{args.fallback}/v1"},
        },
    ]
    fallbacks = [{"chat": ["chat-fallback"]}]
    if args.config == "default":
        return Router(model_list=model_list, fallbacks=fallbacks)
    # The best configuration found for this schedule: no retries on the dead deployment (go to the
    # fallback at once), and cooldowns as tight as its knobs allow.
    return Router(
        model_list=model_list,
        fallbacks=fallbacks,
        num_retries=0,
        allowed_fails=1,
        cooldown_time=args.cooldown_s,
        retry_after=0,
    )


def cmd_chaos(args: argparse.Namespace) -> dict[str, Any]:
    import litellm

    litellm.suppress_debug_info = True
    router = _router(args)
    schedule = json.loads(args.schedule)
    phases = []
    for index, phase in enumerate(schedule):
        _post(
            f"{args.primary}/control",
            {"error_rate": phase["error_rate"], "seed": 1000 + index, "reset": True},
        )
        _post(f"{args.fallback}/control", {"error_rate": 0.0, "reset": True})
        latencies, answered, by_fallback = [], 0, 0
        phase_started = time.perf_counter()
        for _ in range(phase["requests"]):
            started = time.perf_counter()
            try:
                response = router.completion(model="chat", messages=MESSAGES, timeout=10)
                text = response.choices[0].message.content or ""
                answered += 1
                by_fallback += int(text.startswith("[fallback]"))
            except Exception as exc:  # a lost request: counted, not raised
                print(f"lost: {type(exc).__name__}: {str(exc)[:160]}", file=sys.stderr)
            latencies.append((time.perf_counter() - started) * 1000.0)
        primary = _get(f"{args.primary}/stats")
        phases.append(
            {
                "name": phase["name"],
                "requests": phase["requests"],
                "answered": answered,
                "answered_by_fallback": by_fallback,
                "primary_calls": primary["calls"],
                "primary_failed_calls": primary["failures"],
                "latencies_ms": latencies,
                "elapsed_s": time.perf_counter() - phase_started,
            }
        )
    return {"config": args.config, "phases": phases}


def _first_content_ms(stream: Any, started: float) -> float:
    """Read `stream` to its end; the time from `started` to its first content delta (ms)."""
    first: float | None = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    if first is None:
        raise RuntimeError("a stream had no content")
    return (first - started) * 1000.0


def _reply(tag: str, payload: dict[str, Any]) -> None:
    """One line on stdout in one write, starting a line of its own (as bench/stream_switchboard.py:
    another thread's output cannot split it or run into its start)."""
    sys.stdout.write(f"\n{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def cmd_stream_ttft(args: argparse.Namespace) -> dict[str, Any]:
    """Pairs: the server straight through the OpenAI SDK, then through the Router, both streamed.

    The same client code as bench/stream_switchboard.py times the direct side, so what each run
    reports is what the Router adds to the server's own time to first token.
    """
    import openai
    from litellm import Router

    router = Router(
        model_list=[
            {
                "model_name": "chat",
                "litellm_params": {
                    "model": "openai/bench",
                    "api_key": "x",
                    "api_base": f"{args.api_base}/v1",
                },
            }
        ]
    )
    direct = openai.OpenAI(base_url=f"{args.api_base}/v1", api_key="x", max_retries=0, timeout=30)
    messages: Any = MESSAGES  # the SDK's message TypedDicts

    def through() -> float:
        started = time.perf_counter()
        return _first_content_ms(
            router.completion(model="chat", messages=MESSAGES, stream=True, timeout=30), started
        )

    def straight() -> float:
        started = time.perf_counter()
        return _first_content_ms(
            direct.chat.completions.create(model="bench", messages=messages, stream=True), started
        )

    def measure(calls: int) -> dict[str, list[float]]:
        pairs = [(straight(), through()) for _ in range(calls)]
        return {"direct_ms": [d for d, _ in pairs], "through_ms": [t for _, t in pairs]}

    for _ in range(10):  # warm: connections, lazy imports
        straight()
        through()
    if args.interleave:  # blocks asked on stdin, alternating with Switchboard's (bench/run.py)
        _reply("@pairs-ready", {})
        for line in sys.stdin:
            command = json.loads(line)
            if command.get("end"):
                break
            _reply("@pairs", measure(int(command["pairs"])))
        return {"runs": []}
    return {"runs": [measure(args.calls) for _ in range(args.runs)]}


def cmd_stream_chaos(args: argparse.Namespace) -> dict[str, Any]:
    """Each phase with a new Router (no cooldown carried over, as Switchboard's circuit is reset).

    A stream the Router's iterator ends normally is `done`; an exception at `completion()` or while
    iterating is `error` (the caller was told); the text is the content deltas concatenated.
    """
    import litellm

    litellm.suppress_debug_info = True
    schedule = json.loads(args.schedule)
    phases = []
    for index, phase in enumerate(schedule):
        router = _router(args)
        fault = {k: phase[k] for k in ("stream_fault", "fail_after_chunks") if k in phase}
        _post(
            f"{args.primary}/control",
            {"error_rate": phase["error_rate"], "seed": 2000 + index, "reset": True, **fault},
        )
        _post(f"{args.fallback}/control", {"error_rate": 0.0, "reset": True})
        observations = []
        started = time.perf_counter()
        for _ in range(phase["requests"]):
            pieces: list[str] = []
            try:
                for chunk in router.completion(model="chat", messages=MESSAGES, stream=True, timeout=10):
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
            except Exception as exc:  # the caller was told: counted, not raised
                print(f"stream error: {type(exc).__name__}: {str(exc)[:160]}", file=sys.stderr)
                observations.append({"done": False, "error": True, "text": "".join(pieces)})
                continue
            observations.append({"done": True, "error": False, "text": "".join(pieces)})
        phases.append(
            {
                "name": phase["name"],
                "observations": observations,
                "primary_calls": _get(f"{args.primary}/stats")["calls"],
                "elapsed_s": time.perf_counter() - started,
            }
        )
    return {"config": args.config, "phases": phases}


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("cold")
    overhead = sub.add_parser("overhead")
    overhead.add_argument("--calls", type=int, default=2000)
    overhead.add_argument("--runs", type=int, default=5)
    http = sub.add_parser("http")
    http.add_argument("--api-base", required=True)
    http.add_argument("--calls", type=int, default=50)
    http.add_argument("--runs", type=int, default=5)
    chaos = sub.add_parser("chaos")
    chaos.add_argument("--primary", required=True)
    chaos.add_argument("--fallback", required=True)
    chaos.add_argument("--config", choices=("default", "best"), default="default")
    chaos.add_argument("--cooldown-s", type=float, default=5.0)
    chaos.add_argument("--schedule", required=True)
    stream_ttft = sub.add_parser("stream-ttft")
    stream_ttft.add_argument("--api-base", required=True)
    stream_ttft.add_argument("--calls", type=int, default=50)
    stream_ttft.add_argument("--runs", type=int, default=5)
    stream_ttft.add_argument("--interleave", action="store_true", help="pairs in blocks asked on stdin")
    stream_chaos = sub.add_parser("stream-chaos")
    stream_chaos.add_argument("--primary", required=True)
    stream_chaos.add_argument("--fallback", required=True)
    stream_chaos.add_argument("--config", choices=("default", "best"), default="default")
    stream_chaos.add_argument("--cooldown-s", type=float, default=5.0)
    stream_chaos.add_argument("--schedule", required=True)
    args = parser.parse_args()
    commands = {
        "cold": cmd_cold,
        "overhead": cmd_overhead,
        "http": cmd_http,
        "chaos": cmd_chaos,
        "stream-ttft": cmd_stream_ttft,
        "stream-chaos": cmd_stream_chaos,
    }
    result = commands[args.command](args)
    result["litellm_version"] = _litellm_version()
    print(json.dumps(result), flush=True)
    return 0


def _litellm_version() -> str:
    from importlib.metadata import version

    return version("litellm")


if __name__ == "__main__":
    sys.exit(main())
