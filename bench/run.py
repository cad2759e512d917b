"""`make bench`: Switchboard measured side by side with LiteLLM 1.82.6 (the anchor), one table.

Every timing is the median over several runs (BENCH_RUNS, default 5) of that run's p50/p99, and
the anchor is measured in the same invocation. LiteLLM runs only in bench/.venv-litellm (installed
from bench/requirements-litellm.txt with hashes); it is never imported here.

Sections: (1) routing: `ChatService.prepare`, the agent round trip through the gateway's own client
(the agent emulator standing in for the AppConfig extension) plus the pure `plan`, and `plan` alone,
(2) gateway handler end to end in-process with AWS emulated, (3) cold starts in fresh interpreters:
the import of every Lambda handler module, and for the four request-path handlers import + first
request (FACTS correction 9), split into AWS clients, waiting on AWS and our own code, with peak
RSS, (4) zipped Lambda assets from cdk.out, (5) a chaos schedule (primary down, flapping, healed)
replayed against the local stack and against LiteLLM's Router with fallbacks, (6) streams (issue
14): time to first token through the local stack minus the streaming server's own, beside
LiteLLM's Router streaming from the same server, and a stream chaos schedule (primary failing
before its first token, then mid-stream) judged answered / clean error / lost; the streaming
entrypoint's cold start (`handlers.gateway_http`, import + first streamed request) is in (3).

Budgets print PASS/FAIL; any FAIL makes the exit status 1. Results: bench/results.json.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

LITELLM_PYTHON = BENCH / ".venv-litellm" / "bin" / "python"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
ROUTING_CALLS = int(os.environ.get("BENCH_ROUTING_CALLS", "2000"))
GATEWAY_REQUESTS = int(os.environ.get("BENCH_GATEWAY_REQUESTS", "50"))
CHAOS_REQUESTS = int(os.environ.get("BENCH_CHAOS_REQUESTS", "30"))
CHAOS_COOLDOWN_S = 2  # the same cooldown for our breaker and LiteLLM's best configuration
STREAM_REQUESTS = int(os.environ.get("BENCH_STREAM_REQUESTS", "100"))  # TTFT pairs per run and side
STREAM_BLOCK = 10  # pairs a side measures before the other side's turn (the two interleave)
STREAM_CHAOS_REQUESTS = int(os.environ.get("BENCH_STREAM_CHAOS_REQUESTS", "30"))  # per phase
DYNAMO_REQUESTS = int(os.environ.get("BENCH_DYNAMO_REQUESTS", "20"))  # per tenant and kind
# The streaming servers' shape: a first token after 20 ms, eight one-word chunks 1 ms apart.
STREAM_SERVER = {"first_token_ms": 20, "chunks": 8, "chunk_delay_ms": 1}
STREAM_CUT_AFTER_CHUNKS = 2  # the mid-stream fault: two content chunks, then the stream ends
# On every request's path: also a first request. `gateway_http`: the gateway function's entrypoint
# under Lambda Web Adapter, whose first request is a streamed one.
HANDLERS = ("gateway", "gateway_http", "authorizer", "invoke", "circuit")
IMPORT_ONLY = ("flags_validator", "seed_options", "model_deployment", "model_retirement")
MIB = 1024 * 1024

# FACTS correction 9: the cold figure of a request-path handler is import + first request with AWS
# emulated (a deferred import moves its cost, it does not remove it).
COLD_START_BUDGETS_S: dict[str, float] = {
    "gateway": 0.5,
    "gateway_http": 0.5,  # the same function as `gateway`: the gateway's budget
    "authorizer": 0.3,
    "invoke": 0.3,
    "circuit": 0.3,
}

BUDGETS: dict[str, float] = {
    # `ChatService.plan`, our routing code (the agent round trip is the extension's, here the
    # emulator's: printed beside it, not budgeted).
    "plan_p99_ms": 0.5,
    "cold_import_s": 0.3,  # the issue's: every Lambda handler module, in a fresh interpreter
    "zip_mib": 5.0,
    "chaos_lost": 0,
    "stream_ttft_overhead_p99_ms": 25.0,  # and below LiteLLM's
    "stream_lost": 0,
    # Issue 15: metering and limits add at most one DynamoDB round trip to the request path (the
    # usage table's; the median request: a tenant's settings are re-read at most every 5 s).
    "usage_calls_on_path": 1,
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median_of(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and not value.get("_aws"):
                return value
    raise RuntimeError(f"no JSON result in output: {text[-2000:]}")


def run_json(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own scripts, fixed argv
        argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return last_json(done.stdout)


def litellm_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"})
    return env


def litellm(*args: str, timeout: float = 900) -> dict[str, Any]:
    return run_json(
        [str(LITELLM_PYTHON), str(BENCH / "litellm_anchor.py"), *args], env=litellm_env(), timeout=timeout
    )


# --------------------------------------------------------------------------------------------------
# Machine


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------------------------------
# 1. Routing decision overhead


class _StubDynamo:
    """A scan that returns the seed catalogue: OptionsStore's real cache code, no network."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = items

    def scan(self, **_kwargs: Any) -> dict[str, Any]:
        return {"Items": self._items}


class _InlinePayloads:
    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        return value

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


class _NoWorkflow:
    """Routing ends where the workflow starts: nothing here may run one."""

    def run(self, payload: dict[str, Any], *, name: str) -> Any:
        raise AssertionError("the routing benchmark ran the workflow")


def _timed(call: Callable[[int], object], calls: int) -> dict[str, float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter_ns()
        call(i)
        samples.append((time.perf_counter_ns() - started) / 1000.0)
    return {"p50_us": percentile(samples, 50), "p99_us": percentile(samples, 99)}


def routing_overhead() -> dict[str, Any]:
    """What the gateway does before the workflow runs: `ChatService.prepare`, the real code path.

    That is the round trip to the AppConfig agent through the gateway's own client (`RoutingFlags`:
    `Context` header, answer checked by `validate_evaluated`), the catalogue read (the options
    store's warm cache: its real code over a scan stub, as in a warm Lambda) and the pure `plan`.
    In AWS the agent is the AppConfig Lambda extension on localhost:2772, which evaluates the flags;
    here the agent emulator (`switchboard_local.agent`) stands in for it, over loopback HTTP in a
    thread of this process, so its evaluation and HTTP serving are inside the figure as the
    extension's would be. `plan` alone (pure: snapshot and catalogue in, workflow input out) is
    timed too (`plan_runs`).
    """
    from switchboard.api_models import ChatCompletionRequest
    from switchboard.chat import Caller, ChatService
    from switchboard.options.store import OptionsStore, load_seed_file, to_dynamodb_item
    from switchboard.routing.agent_client import RoutingFlags
    from switchboard_local.agent import AgentEmulator
    from switchboard_local.emulation import APPCONFIG_NAMES

    items = [to_dynamodb_item(o.to_item()) for o in load_seed_file(ROOT / "config" / "options.json")]
    options = OptionsStore("bench-options", client=_StubDynamo(items), ttl_s=3600.0)
    options.get_many(["warm"])  # fill the cache: the per-request path is the warm one
    callers = [Caller(tenant=f"t{i}", tier="premium" if i % 4 == 0 else "standard") for i in range(16)]
    bodies = [
        ChatCompletionRequest.model_validate(
            {"model": route, "user": f"user-{u}", "messages": [{"role": "user", "content": "ping"}]}
        )
        for u in range(97)
        for route in ("chat", "summarize")
    ]

    def request(i: int) -> tuple[ChatCompletionRequest, Caller, str]:
        return bodies[i % len(bodies)], callers[i % len(callers)], f"req-{i}"

    app, env, profile = (APPCONFIG_NAMES[key] for key in ("application", "environment", "profile"))
    emulator = AgentEmulator(
        ROOT / "config" / "flags.json", port=0, application=app, environment=env, profile=profile
    )
    with emulator as agent:
        routing = RoutingFlags(agent_url=agent.url, application=app, environment=env, profile=profile)
        service = ChatService(
            routing=routing, options=options, runner=_NoWorkflow(), payloads=_InlinePayloads()
        )

        def prepare(i: int) -> object:
            return service.prepare(*request(i))

        first = service.prepare(*request(0))
        assert first.routing_source == "agent", f"the agent emulator did not answer ({first.routing_source})"
        assert first.chain, "routing produced an empty chain"
        inputs = []
        for i in range(len(bodies) * len(callers) // 8):
            body, caller, request_id = request(i)
            snapshot = routing.evaluate(caller.context(body.model, body.user))
            decision = snapshot.decision(body.model)
            assert decision is not None
            inputs.append((body, caller, request_id, snapshot, options.get_many(decision.option_ids())))

        def plan(i: int) -> object:
            body, caller, request_id, snapshot, catalogue = inputs[i % len(inputs)]
            return service.plan(body, caller, request_id, snapshot=snapshot, catalogue=catalogue, now=1.8e9)

        for i in range(min(500, ROUTING_CALLS)):  # warm up
            prepare(i)
            plan(i)
        runs, plan_runs = [], []
        for _ in range(RUNS):
            runs.append(_timed(prepare, ROUTING_CALLS))
            plan_runs.append(_timed(plan, ROUTING_CALLS))
    return {
        "runs": runs,
        "plan_runs": plan_runs,
        "measures": "ChatService.prepare: agent round trip (emulator standing in for the AppConfig "
        "extension) + warm catalogue + plan",
    }


# --------------------------------------------------------------------------------------------------
# Local stack (for cold starts), fault servers (for the anchor's chaos run)


@contextmanager
def local_stack() -> Iterator[tuple[Any, dict[str, Any]]]:
    """The local stack in this process; yields it and the first events the step handlers received."""
    import switchboard_local.cli.target as target
    import switchboard_local.stack as stack_module
    from switchboard_local.emulation import FLAGS_FILE

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    flags = workdir / "flags.json"
    shutil.copy(FLAGS_FILE, flags)
    target.LOCAL_STATE_FILE = workdir / "local.json"
    seen: dict[str, Any] = {}
    original = stack_module.in_process_handlers

    def recording(resources: Any) -> dict[str, Callable[..., Any]]:
        handlers = original(resources)
        names = {resources.invoke_function: "invoke", resources.circuit_function: "circuit"}

        def wrap(name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
            def call(event: Any, context: Any) -> Any:
                seen.setdefault(name, json.loads(json.dumps(event)))
                return handler(event, context)

            return call

        return {fn: (wrap(names[fn], h) if fn in names else h) for fn, h in handlers.items()}

    stack_module.in_process_handlers = recording
    stack = stack_module.LocalStack(
        port=0, agent_port=0, flags_file=flags, poll_interval_s=1.0, adapter_bake_seconds=None
    )  # no start-up adapter rollout (bench/stream_switchboard.py)
    try:
        stack.start()
        yield stack, seen
    finally:
        stack.stop()
        stack_module.in_process_handlers = original
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def fault_servers(*options: str) -> Iterator[tuple[str, str]]:
    """The primary and fallback servers (bench/fault_server.py), each in its own process."""
    processes = []
    urls = []
    try:
        for name in ("primary", "fallback"):
            process = subprocess.Popen(  # noqa: S603 - our own stdlib server on loopback
                [sys.executable, str(BENCH / "fault_server.py"), "--name", name, *options],
                stdout=subprocess.PIPE,
                text=True,
            )
            processes.append(process)
            assert process.stdout is not None
            port = json.loads(process.stdout.readline())["port"]
            urls.append(f"http://127.0.0.1:{port}")
        yield urls[0], urls[1]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


# --------------------------------------------------------------------------------------------------
# 3. Cold starts


def cold_events(invoke_event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    from bench.gateway_e2e import METHOD_ARN, api_event
    from switchboard_local.emulation import DEV_KEY

    body = {"model": "chat", "messages": [{"role": "user", "content": "ping"}]}
    caller = {"tenant": "dev", "tier": "standard", "key_id": "cold"}
    return {
        "gateway": api_event(body, caller, "cold-0001"),
        "gateway_http": api_event({**body, "stream": True}, caller, "cold-0002"),
        "authorizer": {
            "type": "REQUEST",
            "methodArn": METHOD_ARN,
            "headers": {"Authorization": f"Bearer {DEV_KEY}"},
        },
        "invoke": {**invoke_event, "deadline_ms": int(time.time() * 1000) + 60_000},
        "circuit": {"action": "acquire_probe", "option_id": "nova-micro-us", "request_id": "cold-0001"},
    }


def staged_lambda_package(workdir: Path) -> Path:
    """A copy of the Lambda code asset CDK staged in cdk.out, as shipped: what a deployed function imports.

    The asset ships checked-hash bytecode compiled by the runtime's Python (`infra.lambda_asset`),
    and /var/task is read-only; the children get the same: this copy, bytecode included, under
    PYTHONDONTWRITEBYTECODE. On the runtime's Python (`cold_python`) our modules load from that
    bytecode, as in Lambda; on another version they compile from source on every cold start. A
    stale cdk.out is refused rather than measured.
    """
    from infra import constants

    out = ROOT / "cdk.out"
    staged = [d for d in out.glob("asset.*") if (d / "handlers" / "gateway.py").is_file()]
    if len(staged) != 1:
        raise RuntimeError(f"expected one Lambda code asset in {out}, found {len(staged)}: run `make synth`")
    ignore = shutil.ignore_patterns(".pytest_cache", ".mypy_cache")
    source = constants.LAMBDA_ASSET_DIR
    for path in source.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        copy = staged[0] / path.relative_to(source)
        if not copy.is_file() or copy.read_bytes() != path.read_bytes():
            raise RuntimeError(f"cdk.out is older than {path.relative_to(ROOT)}: run `make synth`")
    package = workdir / "lambda-package"
    shutil.copytree(staged[0], package, ignore=ignore)
    return package


def cold_python() -> tuple[str, str]:
    """The interpreter of the cold starts: the Lambda runtime's Python (`make test`'s `.venv-lambda`,
    the pinned requirements on `infra.layers.LAMBDA_PYTHON_VERSION`) when present, as Lambda runs
    the asset and its bytecode; else this one (our modules then compile from source: slower).
    Returns the interpreter and its version."""
    from infra import layers

    runtime = ROOT / ".venv-lambda" / "bin" / "python"
    if runtime.exists():
        done = subprocess.run(  # noqa: S603
            [str(runtime), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        )
        version = done.stdout.strip()
        if version.startswith(f"{layers.LAMBDA_PYTHON_VERSION}."):
            return str(runtime), version
    log(
        f"cold starts: no .venv-lambda on Python {layers.LAMBDA_PYTHON_VERSION} (`make test` builds it): "
        f"running them on {platform.python_version()}, which compiles our modules from source"
    )
    return sys.executable, platform.python_version()


def cold_env(stack: Any, package: Path) -> dict[str, str]:
    from switchboard_local.emulation import handler_environment

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env["PYTHONPATH"] = str(package)  # ahead of the editable install: the staged asset is imported
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    # LocalStack put the handler environment (agent URL included) in this process's environment.
    agent_url = os.environ["APPCONFIG_AGENT_URL"]
    env.update(handler_environment(stack.resources, agent_url=agent_url, endpoint_url=stack.aws_url))
    return env


def import_costs(name: str, env: dict[str, str], python: str, top: int = 12) -> list[dict[str, Any]]:
    """`python -X importtime`: the costliest imports (cumulative µs) of a handler module.

    `gateway_http` imports `handlers.gateway_wiring` (the stream seam) on its warm-up thread before
    its first request (the whole-request resolver only once idle): both are imported here.
    """
    modules = f"handlers.{name}, handlers.gateway_wiring" if name == "gateway_http" else f"handlers.{name}"
    done = subprocess.run(  # noqa: S603
        [python, "-X", "importtime", "-c", f"import {modules}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    rows: list[dict[str, Any]] = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            depth = (len(match.group(3)) - 1) // 2
            rows.append({"module": match.group(4), "cumulative_us": int(match.group(2)), "depth": depth})
    own = ("handlers", "switchboard", "__editable__", "site", "encodings")
    shallow = [r for r in rows if r["depth"] <= 3 and not r["module"].startswith(own)]
    return sorted(shallow, key=lambda r: -r["cumulative_us"])[:top]


def cold_start(name: str, event: dict[str, Any] | None, env: dict[str, str], python: str) -> dict[str, Any]:
    """RUNS fresh interpreters importing one handler (and serving `event`, when given)."""

    def argv() -> list[str]:
        args = [python, str(BENCH / "cold_child.py"), name]
        if event is not None:
            if "requestContext" in event:  # each run is a new API request, as in API Gateway
                event["requestContext"]["requestId"] = f"cold-{uuid.uuid4().hex[:12]}"
            args.append(json.dumps(event))
        return args

    run_json(argv(), env=env)  # discarded: warms the OS file cache
    runs = [run_json(argv(), env=env) for _ in range(RUNS)]
    if not all(r.get("ok", True) for r in runs):
        raise RuntimeError(f"cold {name}: first request failed: {runs}")
    result: dict[str, Any] = {"runs": runs}
    for key in ("import_s", "first_request_s", "clients_s", "aws_wait_s", "own_s", "total_s", "wiring_s"):
        if key in runs[0]:
            result[key] = median_of(runs, key)
    result["maxrss_mib"] = median_of(runs, "maxrss_mib")
    result["own_modules"] = runs[0].get("own_modules", [])
    result["own_source_bytes"] = runs[0].get("own_source_bytes", 0)
    over_start = result.get("total_s", 0.0) > COLD_START_BUDGETS_S.get(name, float("inf"))
    if over_start or result["import_s"] > BUDGETS["cold_import_s"]:
        result["top_imports"] = import_costs(name, env, python)
    return result


def cold_starts() -> dict[str, Any]:
    from bench.chaos_switchboard import ask
    from switchboard_local.emulation import DEV_KEY

    results: dict[str, Any] = {}
    with local_stack() as (stack, seen):
        for _ in range(3):  # warm the stack's own handlers; capture a real invoke event
            status, _ = ask(stack.url, DEV_KEY)
            if status != 200:
                raise RuntimeError(f"local stack answered {status} while warming up")
        events = cold_events(seen["invoke"])
        python, results["python"] = cold_python()
        with tempfile.TemporaryDirectory(prefix="switchboard-cold-") as workdir:
            env = cold_env(stack, staged_lambda_package(Path(workdir)))
            for name in (*HANDLERS, *IMPORT_ONLY):
                results[name] = cold_start(name, events.get(name), env, python)
    litellm("cold")  # discarded: .pyc
    anchor = [litellm("cold") for _ in range(RUNS)]
    results["litellm"] = {
        "runs": anchor,
        "import_s": median_of(anchor, "import_s"),
        "first_request_s": median_of(anchor, "first_request_s"),
        "maxrss_mib": median_of(anchor, "maxrss_mib"),
    }
    return results


# --------------------------------------------------------------------------------------------------
# 4. Lambda zips


def zipped_size(directory: Path, skip_top: frozenset[str] = frozenset(), *, bytecode: bool = False) -> int:
    """Deflate-zipped size of a directory, built in memory (bytecode caches left out unless
    `bytecode`: the Lambda asset ships its own, `infra.lambda_asset`)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if relative.parts[0].split("-")[0] in skip_top or (
                not bytecode and "__pycache__" in relative.parts
            ):
                continue
            if path.is_file():
                archive.write(path, relative.as_posix())
    return len(buffer.getvalue())


def lambda_zips() -> dict[str, Any]:
    out = ROOT / "cdk.out"
    if not any(out.glob("*.template.json")):
        log("cdk.out missing: running `make synth`")
        subprocess.run(["make", "--no-print-directory", "synth"], cwd=ROOT, check=True)  # noqa: S607
    assets: dict[str, dict[str, Any]] = {}
    for template in out.glob("*.template.json"):
        resources = json.loads(template.read_text()).get("Resources", {})
        for logical_id, resource in resources.items():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            asset = (resource.get("Metadata") or {}).get("aws:asset:path")
            if not asset or not (out / asset).is_dir():
                continue
            entry = assets.setdefault(asset, {"functions": []})
            entry["functions"].append(resource["Properties"].get("Handler") or logical_id)
    for asset, entry in assets.items():
        entry["zip_bytes"] = zipped_size(out / asset, bytecode=True)
    # The anchor: what a Lambda bundling litellm would ship, its installed closure without pip.
    found = sorted((BENCH / ".venv-litellm" / "lib").glob("python*/site-packages"))
    skip = frozenset({"pip", "setuptools", "_distutils_hack", "distutils"})
    anchor = zipped_size(found[0], skip) if found else None
    return {"assets": assets, "litellm_site_packages_zip_bytes": anchor}


# --------------------------------------------------------------------------------------------------
# 5. Chaos


def chaos_schedule() -> list[dict[str, Any]]:
    return [
        {"name": "down", "requests": CHAOS_REQUESTS, "error_rate": 1.0},
        {"name": "flapping", "requests": CHAOS_REQUESTS, "error_rate": 0.5},
        {"name": "healed", "requests": CHAOS_REQUESTS, "error_rate": 0.0},
    ]


def summarize_chaos(result: dict[str, Any]) -> dict[str, Any]:
    phases = result["phases"]
    outage = next(p for p in phases if p["name"] == "down")
    total = sum(p["requests"] for p in phases)
    answered = sum(p["answered"] for p in phases)
    return {
        "answered": answered,
        "total": total,
        "lost": total - answered,
        "outage_p50_ms": percentile(outage["latencies_ms"], 50),
        "outage_p99_ms": percentile(outage["latencies_ms"], 99),
        "wasted_primary_calls": sum(p["primary_failed_calls"] for p in phases),
        "wasted_during_outage": outage["primary_failed_calls"],
        "elapsed_s": sum(p["elapsed_s"] for p in phases),
        "phases": [{k: v for k, v in p.items() if k != "latencies_ms"} for p in phases],
    }


def chaos() -> dict[str, Any]:
    schedule = json.dumps(chaos_schedule())
    breaker = json.dumps({"cooldown_s": CHAOS_COOLDOWN_S, "max_cooldown_s": CHAOS_COOLDOWN_S})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    log("chaos: Switchboard local stack")
    ours = run_json(
        [sys.executable, str(BENCH / "chaos_switchboard.py"), "--schedule", schedule, "--breaker", breaker],
        env=env,
    )
    results = {"switchboard": summarize_chaos(ours)}
    with fault_servers() as (primary, fallback):
        for config in ("best", "default"):
            log(f"chaos: LiteLLM Router, {config} configuration")
            anchor = litellm(
                "chaos",
                "--primary",
                primary,
                "--fallback",
                fallback,
                "--config",
                config,
                "--cooldown-s",
                str(CHAOS_COOLDOWN_S),
                "--schedule",
                schedule,
            )
            results[f"litellm_{config}"] = summarize_chaos(anchor)
    return results


def gateway_anchor() -> dict[str, Any]:
    with fault_servers() as (_primary, fallback):
        return litellm("http", "--api-base", fallback, "--calls", str(GATEWAY_REQUESTS), "--runs", str(RUNS))


# --------------------------------------------------------------------------------------------------
# 6. Streams


def stream_chaos_schedule() -> list[dict[str, Any]]:
    """Each phase starts from a healthy breaker (ours: circuit item deleted; LiteLLM: new Router)."""
    return [
        {
            "name": "before_first_token",
            "requests": STREAM_CHAOS_REQUESTS,
            "error_rate": 1.0,
            "stream_fault": "before_first_token",
        },
        {
            "name": "mid_stream",
            "requests": STREAM_CHAOS_REQUESTS,
            "error_rate": 1.0,
            "stream_fault": "mid_stream",
            "fail_after_chunks": STREAM_CUT_AFTER_CHUNKS,
        },
        {"name": "healed", "requests": STREAM_CHAOS_REQUESTS, "error_rate": 0.0},
    ]


def complete_stream_answers() -> frozenset[str]:
    """The whole answers a stream may carry: the primary's or the fallback's."""
    from bench.fault_server import stream_text

    return frozenset(stream_text(name, STREAM_SERVER["chunks"]) for name in ("primary", "fallback"))


def ttft_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of each run's figures, and the p50/p99 of all runs' pairs pooled.

    A p99 over one run's 100 pairs is its second-slowest pair: one stall of the shared machine
    moves it. Pooled over all runs (500 pairs by default) it is the sixth-slowest, measured the same
    way for both sides; the runs' own p99s are kept to show the spread.
    """
    from bench.streams import overhead_run

    keys = [
        "overhead_p50_ms",
        "overhead_p99_ms",
        "direct_p50_ms",
        "through_p50_ms",
        "through_p99_ms",
        "authorizer_calls",
        "open_stream_overhead_p50_ms",
        "open_stream_overhead_p99_ms",
    ]
    summary: dict[str, Any] = {
        "runs": runs,
        **{key: median_of(runs, key) for key in keys if all(key in run for run in runs)},
    }
    if all("through_ms" in run for run in runs):
        pooled = overhead_run(
            [t for run in runs for t in run["through_ms"]], [d for run in runs for d in run["direct_ms"]]
        )
        summary["pairs"] = sum(len(run["through_ms"]) for run in runs)
        summary["pooled_overhead_p50_ms"] = pooled["overhead_p50_ms"]
        summary["pooled_overhead_p99_ms"] = pooled["overhead_p99_ms"]
        summary["run_overhead_p99_ms"] = [run["overhead_p99_ms"] for run in runs]
    return summary


class PairWorker:
    """One side's TTFT pairs, measured in its own process one block at a time (`--interleave`):
    Switchboard's local stack (bench/stream_switchboard.py) or LiteLLM's Router (its venv)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen(  # noqa: S603 - our own scripts
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self._reply("@pairs-ready")

    def pairs(self, count: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"pairs": count}) + "\n")
        self.process.stdin.flush()
        return self._reply("@pairs")

    def finish(self, timeout: float = 900) -> dict[str, Any]:
        """End the pairs; the worker goes on (ours: the stream chaos) and prints its last JSON line."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"end": True}) + "\n")
        self.process.stdin.close()
        rest = self.process.stdout.read()
        code = self.process.wait(timeout=timeout)
        self._stderr.seek(0)
        errors = self._stderr.read()
        self._stderr.close()
        if code != 0:
            raise RuntimeError(f"{self.name} pairs worker failed ({code}):\n{errors[-3000:]}")
        return last_json(rest)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def _reply(self, tag: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(tag + " "):
                return dict(json.loads(line[len(tag) + 1 :]))
        self._stderr.seek(0)
        raise RuntimeError(f"{self.name} pairs worker ended early:\n{self._stderr.read()[-3000:]}")


def interleaved_ttft(
    ours: PairWorker, anchor: PairWorker
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """RUNS runs of STREAM_REQUESTS pairs a side, in blocks of STREAM_BLOCK that alternate between
    the sides (and which side goes first), so a busy moment of the machine falls on both alike."""
    from bench.stream_switchboard import run_figures
    from bench.streams import overhead_run

    ours_runs, anchor_runs = [], []
    for run in range(RUNS):
        measured: dict[str, dict[str, Any]] = {
            side.name: {"direct_ms": [], "through_ms": [], "open_stream_ms": [], "authorizer_calls": 0}
            for side in (ours, anchor)
        }
        blocks = -(-STREAM_REQUESTS // STREAM_BLOCK)
        log(f"streams: TTFT run {run + 1} of {RUNS}")
        for block in range(blocks):
            count = min(STREAM_BLOCK, STREAM_REQUESTS - block * STREAM_BLOCK)
            for side in (ours, anchor) if (run + block) % 2 == 0 else (anchor, ours):
                reply = side.pairs(count)
                into = measured[side.name]
                for key in ("direct_ms", "through_ms", "open_stream_ms"):
                    into[key].extend(reply.get(key, []))
                into["authorizer_calls"] += int(reply.get("authorizer_calls", 0))
        ours_runs.append(run_figures(measured[ours.name]))
        anchor_run = overhead_run(measured[anchor.name]["through_ms"], measured[anchor.name]["direct_ms"])
        anchor_runs.append(
            {**anchor_run, **{k: measured[anchor.name][k] for k in ("direct_ms", "through_ms")}}
        )
    return ours_runs, anchor_runs


def streaming() -> dict[str, Any]:
    """TTFT overhead and stream chaos, Switchboard's local stack and LiteLLM's Router, same servers.

    Both gateways stream from the same two bench/fault_server.py processes; each side's overhead is
    its time to first token minus the server's, timed with the OpenAI SDK in the same process. The
    two sides' pairs interleave (`interleaved_ttft`): the same number for both, at the same times.
    """
    from bench.streams import summarize_stream_chaos

    server = [f"--{key.replace('_', '-')}={value}" for key, value in STREAM_SERVER.items()]
    schedule = json.dumps(stream_chaos_schedule())
    complete = complete_stream_answers()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    results: dict[str, Any] = {
        "server": STREAM_SERVER,
        "cut_after_chunks": STREAM_CUT_AFTER_CHUNKS,
        "pairs_per_run": STREAM_REQUESTS,
        "block": STREAM_BLOCK,
    }
    with fault_servers(*server) as (primary, fallback):
        log("streams: time to first token, Switchboard's local stack and LiteLLM's Router interleaved")
        breaker = {"cooldown_s": CHAOS_COOLDOWN_S, "max_cooldown_s": CHAOS_COOLDOWN_S}
        anchor_argv = [str(LITELLM_PYTHON), str(BENCH / "litellm_anchor.py"), "stream-ttft", "--interleave"]
        anchor = PairWorker("LiteLLM", [*anchor_argv, "--api-base", primary], litellm_env())
        ours = None
        try:
            ours = PairWorker(
                "Switchboard",
                [
                    sys.executable,
                    str(BENCH / "stream_switchboard.py"),
                    *("--primary", primary, "--fallback", fallback, "--interleave"),
                    *("--schedule", schedule, "--breaker", json.dumps(breaker)),
                ],
                env,
            )
            ours_runs, anchor_runs = interleaved_ttft(ours, anchor)
            anchor.finish()
            log("streams: Switchboard local stack stream chaos")
            ours_final = ours.finish()
        finally:
            for worker in (anchor, ours):
                if worker is not None:
                    worker.stop()
        results["litellm_ttft"] = ttft_summary(anchor_runs)
        results["switchboard_ttft"] = ttft_summary(ours_runs)
        results["switchboard_chaos"] = summarize_stream_chaos(ours_final["chaos"], complete)
        for config in ("best", "default"):
            log(f"streams: LiteLLM Router stream chaos, {config} configuration")
            chaos_run = litellm(
                "stream-chaos",
                *("--primary", primary, "--fallback", fallback, "--config", config),
                *("--cooldown-s", str(CHAOS_COOLDOWN_S), "--schedule", schedule),
            )
            results[f"litellm_{config}_chaos"] = summarize_stream_chaos(chaos_run, complete)
    return results


def _ttft_cell(side: dict[str, Any], key: str, *, spread: bool) -> str:
    text = f"{side[key]:.1f} ms"
    if spread:  # the runs' own p99s: how far one run's figure can move
        runs = side["run_overhead_p99_ms"]
        text += f" (runs {min(runs):.1f}-{max(runs):.1f})"
    return text


def stream_rows(s: dict[str, Any]) -> tuple[list[list[str]], list[bool]]:
    rows: list[list[str]] = []
    checks: list[bool] = []
    ours, anchor = s["switchboard_ttft"], s["litellm_ttft"]
    pooled = "pooled_overhead_p99_ms" in ours and "pooled_overhead_p99_ms" in anchor
    for q in ("p50", "p99"):
        # All runs' pairs pooled (the same count for both sides, interleaved); else median of runs.
        key = f"pooled_overhead_{q}_ms" if pooled else f"overhead_{q}_ms"
        budget, status = "", ""
        if q == "p99":
            limit = BUDGETS["stream_ttft_overhead_p99_ms"]
            ok = ours[key] <= limit and ours[key] < anchor[key]
            checks.append(ok)
            budget, status = f"≤ {limit:.0f} ms and < LiteLLM", verdict(ok)
        cells = [_ttft_cell(side, key, spread=pooled and q == "p99") for side in (ours, anchor)]
        label = f"stream TTFT minus server's TTFT {q}"
        if pooled:
            label += f", {ours['pairs']} pairs a side"
        rows.append([label, *cells, ratio(ours[key], anchor[key]), budget, status])
    if "open_stream_overhead_p50_ms" in ours:
        rows.append(
            [
                "  … of which open_stream p50 · p99; authorizer calls a run (cached per key)",
                f"{ours['open_stream_overhead_p50_ms']:.1f} · {ours['open_stream_overhead_p99_ms']:.1f} ms; "
                f"{ours.get('authorizer_calls', float('nan')):.0f} of {STREAM_REQUESTS} (median of runs)",
                "—",
                "",
                "",
                "",
            ]
        )
    ours_chaos, best, default = s["switchboard_chaos"], s["litellm_best_chaos"], s["litellm_default_chaos"]

    def acl(counts: dict[str, Any]) -> str:
        return f"{counts['answered']}/{counts['clean_error']}/{counts['lost']}"

    lost_ok = ours_chaos["lost"] <= BUDGETS["stream_lost"]
    checks.append(lost_ok)
    rows.append(
        [
            "stream chaos answered/clean error/lost",
            f"{acl(ours_chaos)} of {ours_chaos['total']}",
            f"best {acl(best)}, default {acl(default)}",
            "",
            "0 lost",
            verdict(lost_ok),
        ]
    )
    for index, phase in enumerate(ours_chaos["phases"]):
        rows.append(
            [
                f"  … {phase['name'].replace('_', ' ')} ({phase['requests']} streams)",
                acl(phase),
                f"best {acl(best['phases'][index])}, default {acl(default['phases'][index])}",
                "",
                "",
                "",
            ]
        )
    return rows, checks


# --------------------------------------------------------------------------------------------------
# Table


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def ratio(ours: float, anchor: float | None) -> str:
    if not anchor:
        return "—"
    value = ours / anchor
    return f"{value:.2f}x" if value >= 0.01 else f"{value:.4f}x"


def build_rows(results: dict[str, Any]) -> tuple[list[list[str]], list[bool]]:
    rows: list[list[str]] = []
    checks: list[bool] = []
    r, a = results["routing"], results["routing_anchor"]
    for q in ("p50", "p99"):
        ours, anchor = median_of(r["runs"], f"{q}_us"), median_of(a["runs"], f"{q}_us")
        rows.append(
            [
                f"routing: agent round trip (emulator) + plan {q}",
                f"{ours:.1f} µs",
                f"{anchor:.1f} µs",
                ratio(ours, anchor),
                "",
                "",
            ]
        )
    for q in ("p50", "p99"):
        ours = median_of(r["plan_runs"], f"{q}_us")
        budget, status = "", ""
        if q == "p99":
            ok = ours / 1000.0 <= BUDGETS["plan_p99_ms"]
            checks.append(ok)
            budget, status = f"≤ {BUDGETS['plan_p99_ms']} ms", verdict(ok)
        rows.append([f"routing: plan alone (pure) {q}", f"{ours:.1f} µs", "—", "", budget, status])
    g, ga = results["gateway"], results["gateway_anchor"]
    for q in ("p50", "p99"):
        ours, anchor = median_of(g["runs"], f"{q}_ms"), median_of(ga["runs"], f"{q}_ms")
        rows.append(
            [f"gateway end to end {q}", f"{ours:.1f} ms", f"{anchor:.1f} ms", ratio(ours, anchor), "", ""]
        )
    c = results["cold"]
    anchor_s, anchor_mib = c["litellm"]["import_s"], c["litellm"]["maxrss_mib"]
    anchor_first = c["litellm"]["first_request_s"]
    limit = BUDGETS["cold_import_s"]
    for name in (*HANDLERS, *IMPORT_ONLY):
        ours, mib = c[name]["import_s"], c[name]["maxrss_mib"]
        modules, source_kib = len(c[name].get("own_modules", [])), c[name].get("own_source_bytes", 0) / 1024
        ok = ours <= limit
        checks.append(ok)
        rows.append(
            [
                f"cold import {name} · peak RSS · own modules (source size)",
                f"{ours * 1000:.0f} ms · {mib:.0f} MiB · {modules} ({source_kib:.0f} KiB)",
                f"{anchor_s * 1000:.0f} ms · {anchor_mib:.0f} MiB",
                f"{ratio(ours, anchor_s)} · {ratio(mib, anchor_mib)}",
                f"≤ {limit * 1000:.0f} ms",
                verdict(ok),
            ]
        )
    anchor_start = anchor_s + anchor_first
    for name in HANDLERS:
        entry, start_limit = c[name], COLD_START_BUDGETS_S[name]
        ok = entry["total_s"] <= start_limit
        checks.append(ok)
        first = "1st streamed request (LWA entrypoint)" if name == "gateway_http" else "1st request"
        rows.append(
            [
                f"cold start {name}: import + {first}",
                f"{entry['total_s'] * 1000:.0f} ms = import {entry['import_s'] * 1000:.0f}"
                f" + clients {entry['clients_s'] * 1000:.0f} + AWS {entry['aws_wait_s'] * 1000:.0f}"
                f" + ours {entry['own_s'] * 1000:.0f}"
                + (f" (gateway wired at {entry['wiring_s'] * 1000:.0f})" if "wiring_s" in entry else ""),
                f"{anchor_start * 1000:.0f} ms (+ 1st mock completion)",
                ratio(entry["total_s"], anchor_start),
                f"≤ {start_limit * 1000:.0f} ms",
                verdict(ok),
            ]
        )
    z = results["zips"]
    anchor_zip = z["litellm_site_packages_zip_bytes"]
    for _asset, entry in sorted(z["assets"].items()):
        ok = entry["zip_bytes"] <= BUDGETS["zip_mib"] * MIB
        checks.append(ok)
        names = sorted({f.split(".")[1] if f.count(".") == 2 else f for f in entry["functions"]})
        label = "zip " + ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "")
        rows.append(
            [
                label,
                f"{entry['zip_bytes'] / MIB:.2f} MiB",
                f"{anchor_zip / MIB:.1f} MiB (litellm closure)" if anchor_zip else "—",
                ratio(entry["zip_bytes"], anchor_zip),
                f"≤ {BUDGETS['zip_mib']:.0f} MiB",
                verdict(ok),
            ]
        )
    ch = results["chaos"]
    ours, best, default = ch["switchboard"], ch["litellm_best"], ch["litellm_default"]
    lost_ok = ours["lost"] <= BUDGETS["chaos_lost"]
    checks.append(lost_ok)
    rows.append(
        [
            "chaos answered / total",
            f"{ours['answered']}/{ours['total']}",
            f"best {best['answered']}/{best['total']}, default {default['answered']}/{default['total']}",
            "",
            "0 lost",
            verdict(lost_ok),
        ]
    )
    for q in ("p50", "p99"):
        key = f"outage_{q}_ms"
        rows.append(
            [
                f"chaos latency in outage {q}",
                f"{ours[key]:.0f} ms",
                f"best {best[key]:.0f} ms, default {default[key]:.0f} ms",
                ratio(ours[key], best[key]),
                "",
                "",
            ]
        )
    rows.append(
        [
            "chaos calls wasted on dead primary",
            f"{ours['wasted_primary_calls']} (outage {ours['wasted_during_outage']})",
            f"best {best['wasted_primary_calls']} ({best['wasted_during_outage']}), "
            f"default {default['wasted_primary_calls']} ({default['wasted_during_outage']})",
            "",
            "",
            "",
        ]
    )
    more_rows, more_checks = stream_rows(results["streaming"])
    dynamo_rows_, dynamo_checks = dynamo_rows(results["dynamo_calls"])
    return rows + more_rows + dynamo_rows_, checks + more_checks + dynamo_checks


DYNAMO_ROW_NAMES = {
    "no_limits_whole": "tenant without limits, whole",
    "no_limits_stream": "tenant without limits, streamed",
    "limits_whole": "tenant with rpm+tpm limits, whole",
    "limits_stream": "tenant with rpm+tpm limits, streamed",
}


def usage_calls_ok(row: dict[str, Any]) -> bool:
    """The budget: the median request makes at most one usage-table call before its response in AWS."""
    return bool(row["usage_on_path_in_aws_median"] <= BUDGETS["usage_calls_on_path"])


def dynamo_rows(d: dict[str, Any]) -> tuple[list[list[str]], list[bool]]:
    """DynamoDB calls a request makes, by when they run (bench/dynamo_calls.py)."""
    rows: list[list[str]] = []
    checks: list[bool] = []
    for key, label in DYNAMO_ROW_NAMES.items():
        row = d["rows"][key]
        ok = usage_calls_ok(row)
        checks.append(ok)
        rows.append(
            [
                f"DynamoDB calls, {label}",
                f"usage table on the path (AWS): {row['usage_on_path_in_aws_median']:g} "
                f"(max {row['usage_on_path_in_aws_max']}); locally before the response "
                f"{row['before_median']:g} (settle {row['settle_before_median']:g}), after "
                f"{row['after_median']:g}",
                "—",
                "",
                f"≤ {BUDGETS['usage_calls_on_path']} usage call on the path",
                verdict(ok),
            ]
        )
    return rows, checks


def render(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]
    )


def main() -> int:
    if not LITELLM_PYTHON.exists():
        log("bench/.venv-litellm is missing: run `make bench` (it installs litellm==1.82.6 with hashes)")
        return 2
    started = time.time()
    results: dict[str, Any] = {"machine": machine(), "runs_per_figure": RUNS}
    log(f"machine: {results['machine']}")
    log("1/7 routing (agent round trip to the emulator + plan; plan alone) and LiteLLM Router.completion")
    results["routing"] = routing_overhead()
    results["routing_anchor"] = litellm("overhead", "--calls", str(ROUTING_CALLS), "--runs", str(RUNS))
    log("2/7 gateway handler end to end (in-process, AWS emulated) and LiteLLM over loopback HTTP")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    results["gateway"] = run_json(
        [
            sys.executable,
            str(BENCH / "gateway_e2e.py"),
            "--requests",
            str(GATEWAY_REQUESTS),
            "--runs",
            str(RUNS),
        ],
        env=env,
    )
    results["gateway_anchor"] = gateway_anchor()
    log("3/7 cold import of each handler, first request of the request path (fresh interpreters)")
    with contextlib.redirect_stdout(sys.stderr):  # the in-process stack's metric lines
        results["cold"] = cold_starts()
    log("4/7 zipped Lambda assets in cdk.out")
    results["zips"] = lambda_zips()
    log("5/7 chaos schedule: Switchboard local stack, LiteLLM Router (best, default)")
    results["chaos"] = chaos()
    log("6/7 streams: time to first token overhead and stream chaos, Switchboard and LiteLLM Router")
    results["streaming"] = streaming()
    log("7/7 DynamoDB calls a request makes (whole, streamed; tenant with and without limits)")
    results["dynamo_calls"] = run_json(
        [sys.executable, str(BENCH / "dynamo_calls.py"), "--requests", str(DYNAMO_REQUESTS)], env=env
    )
    results["elapsed_s"] = round(time.time() - started, 1)

    rows, checks = build_rows(results)
    header = ["measure", "Switchboard", "LiteLLM 1.82.6 (anchor)", "ratio", "budget", "result"]
    m = results["machine"]
    cold_on = results["cold"].get("python", m["python"])
    machine_line = (
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']} (cold starts on {cold_on}), "
        f"load average at start {m['load_average_at_start'][0]}; median of {RUNS} runs per figure; chaos: "
        f"{CHAOS_REQUESTS} requests per phase (down, flapping 50 %, healed), one replay each; streams: "
        f"{STREAM_REQUESTS} TTFT pairs per run against a server with a {STREAM_SERVER['first_token_ms']} ms "
        f"first token, stream chaos {STREAM_CHAOS_REQUESTS} streams per phase (cut after "
        f"{STREAM_CUT_AFTER_CHUNKS} chunks mid-stream)."
    )
    table = render(rows, header)
    results["table"] = table
    results["machine_line"] = machine_line
    results["budgets"] = {**BUDGETS, "cold_start_s": COLD_START_BUDGETS_S}
    results["passed"] = all(checks)
    for name in (*HANDLERS, *IMPORT_ONLY):
        if "top_imports" in results["cold"][name]:
            results.setdefault("over_budget_import_costs", {})[name] = results["cold"][name]["top_imports"]
    (BENCH / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(machine_line)
    print(table)
    routing = [
        m for m in results["cold"]["gateway"].get("own_modules", []) if m.startswith("switchboard.routing.")
    ]
    print(f"\nThe gateway's import loads these routing modules: {', '.join(routing)}")
    for name, costs in (results.get("over_budget_import_costs") or {}).items():
        print(f"\n{name} is over a cold budget; costliest imports (python -X importtime, cumulative):")
        for row in costs:
            print(f"  {row['cumulative_us'] / 1000:8.1f} ms  {'  ' * row['depth']}{row['module']}")
    summary = "ALL BUDGETS PASS" if all(checks) else "SOME BUDGETS FAIL"
    print(f"\n{summary}: bench/results.json ({results['elapsed_s']} s)")
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
