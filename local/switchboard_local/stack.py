"""`make local`: the gateway on 127.0.0.1 with AWS emulated in-process.

moto's server runs inside this process (so its Step Functions interpreter reaches the in-process
handlers) on a free port (AWS_PORT), the AppConfig agent emulator serves `config/flags.json` and
the tenant prompt profiles `config/profiles.json` on port 2772 (AGENT_PORT) and re-reads them on
change, and the front door plays API Gateway on port 8080 (PORT); 0 for any of them picks a free
port. A busy port is one line naming the variable to set. The stack claims
`.switchboard/local.json` in the folder it starts from, where `switchboard ... --local` finds it;
a second stack from the same folder refuses to start.

Once it serves, the stack runs issue 16's adapter flow for the sample tenant `acme` on a thread
(:class:`switchboard_local.lifecycle_local.StartupAdapterFlow`): acme's sample adapter is approved
and the model-deployment workflow canaries it for ADAPTER_BAKE_SECONDS (``--adapter-bake-seconds``),
judges and promotes or rolls it back; `globex` keeps its adapter pending, so the base serves it.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
import urllib.request
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from switchboard_local.cli.target import LocalStackRecord
from switchboard_local.emulation import (
    APPCONFIG_NAMES,
    DEV_KEY,
    FLAGS_FILE,
    PROFILES_FILE,
    LocalResources,
    agent_freeform,
    bind_lambda_handlers,
    handler_environment,
    in_process_handlers,
    provision,
    reset_handler_caches,
)

if TYPE_CHECKING:
    from switchboard.routing.schema import OptionFacts
    from switchboard_local.lifecycle_local import StartupAdapterFlow

log = logging.getLogger("switchboard.local")
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The variable that moves each port: `make local PORT=… AGENT_PORT=… AWS_PORT=…` (the Makefile
# passes them on as --port, --agent-port, --aws-port; the same names work as environment variables).
PORT_VARIABLES = {"gateway": "PORT", "agent": "AGENT_PORT", "aws": "AWS_PORT"}
PORT_ROLES = {
    "gateway": "the gateway front door",
    "agent": "the AppConfig agent emulator",
    "aws": "the embedded AWS endpoint",
}
DEFAULT_PORTS = {"gateway": 8080, "agent": 2772, "aws": 0}
_UNUSABLE_PORT = (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)


class PortUnavailable(RuntimeError):
    """Ports the stack needs are taken: one line naming, for each, the variable that moves it."""

    def __init__(self, host: str, failures: Sequence[tuple[str, int, OSError]]) -> None:
        self.variables = [PORT_VARIABLES[name] for name, _, _ in failures]
        parts = []
        for name, port, exc in failures:
            reason = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc)).lower()
            parts.append(f"{host}:{port} for {PORT_ROLES[name]} is {reason}; set {PORT_VARIABLES[name]}")
        example = " ".join(f"{variable}=0" for variable in self.variables)
        super().__init__(
            f"{'; '.join(parts)} (a free port number, or 0 for any free one: `make local {example}`)"
        )


def _listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening socket, as `socketserver` would make it (address reuse, backlog)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class AwsEndpoint:
    """moto's server, on a socket this thread binds.

    moto's `ThreadedMotoServer` binds inside its own thread, where werkzeug answers a busy port with
    `sys.exit`: the thread dies quietly and `start()` waits forever. Binding here turns a busy
    port into an `OSError` the stack reports; the server is then the one moto runs (its dispatcher
    app and request handler).
    """

    def __init__(self, host: str, port: int) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        sock = _listening_socket(host, port)
        try:
            self.port = int(sock.getsockname()[1])
            # werkzeug serves a duplicate of the descriptor; ours is closed below.
            self._server = make_server(
                host,
                self.port,
                DomainDispatcherApplication(create_backend_app),
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=sock.fileno(),
            )
        finally:
            sock.close()
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-endpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


class LocalStack:
    """Start with `start()`, stop with `stop()` (or use it as a context manager).

    Ports: 0 picks a free one; the bound ports are in `url`, `agent_url` and `aws_url` once started.
    `state_file` (default: the CLI's `.switchboard/local.json`) is where `--local` finds this stack;
    only one running stack may own it (:class:`LocalStackRunning` otherwise).
    """

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORTS["gateway"],
        agent_port: int = DEFAULT_PORTS["agent"],
        aws_port: int = DEFAULT_PORTS["aws"],
        host: str = "127.0.0.1",
        dev_key: str = DEV_KEY,
        provider_override: str | None = "mock",
        poll_interval_s: float = 1.0,
        flags_file: Any = FLAGS_FILE,
        state_file: Path | None = None,
        profiles_file: Any = PROFILES_FILE,
        adapter_bake_seconds: int | None = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.agent_port = agent_port
        self.aws_port = aws_port
        self.dev_key = dev_key
        self.provider_override = provider_override
        self.poll_interval_s = poll_interval_s
        self.flags_file = flags_file
        self.profiles_file = profiles_file
        self.state_file = state_file
        self.resources: LocalResources | None = None
        self.record: LocalStackRecord | None = None  # what `--local` reads, once started
        self.agent: Any = None  # the AppConfig agent emulator, once started (tests stop it)
        # Issue 16 on start-up: acme's sample adapter approved and taken through the deployment
        # workflow (canary, bake of this many seconds, promote or roll back); None: left pending.
        self.adapter_bake_seconds = adapter_bake_seconds
        self.adapter_flow: StartupAdapterFlow | None = None
        self.lifecycle: dict[str, Any] = {}  # the model lifecycle's names, once provisioned
        self._exit = ExitStack()
        self._saved_env: dict[str, str | None] = {}
        self.url = ""
        self.agent_url = ""
        self.aws_url = ""

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _moto_api(self, path: str, body: dict[str, Any] | None) -> None:
        request = urllib.request.Request(  # noqa: S310 - our own loopback emulator
            f"{self.aws_url}/moto-api/{path}",
            data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.aws_url)

    def _option_statuses(self) -> dict[str, OptionFacts]:
        """The catalogue from the options table, read as the flags profile's Lambda validator reads it."""
        from switchboard.options.store import OptionsStore
        from switchboard.routing.document import option_catalogue

        if self.resources is None:  # the agent loads before provisioning: the catalogue to be seeded
            from switchboard.options.store import load_seed_file
            from switchboard_local.emulation import OPTIONS_FILE

            return option_catalogue(option.to_item() for option in load_seed_file(OPTIONS_FILE))
        store = OptionsStore(self.resources.options_table, client=self._client("dynamodb"), ttl_s=0)
        return option_catalogue(option.to_item() for option in store.all())

    def start(self) -> LocalStack:
        """Claim the state file, bind every port, then provision and serve.

        Raises :class:`LocalStackRunning` or :class:`PortUnavailable` before anything is
        provisioned; on any failure whatever was started is stopped again.
        """
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _bind(self) -> tuple[Any, Any, AwsEndpoint]:
        """Every listening socket first, so all busy ports are reported at once and early."""
        from switchboard_local.agent import AgentEmulator
        from switchboard_local.front_door import FrontDoor

        failures: list[tuple[str, int, OSError]] = []

        def attempt(name: str, port: int, bind: Any) -> Any:
            try:
                return bind()
            except OSError as exc:
                if exc.errno not in _UNUSABLE_PORT:
                    raise
                failures.append((name, port, exc))
                return None

        door = attempt("gateway", self.port, lambda: FrontDoor(host=self.host, port=self.port))
        if door is not None:
            self._exit.callback(door.stop)
        agent = attempt(
            "agent",
            self.agent_port,
            lambda: AgentEmulator(
                self.flags_file,
                host=self.host,
                port=self.agent_port,
                application=APPCONFIG_NAMES["application"],
                environment=APPCONFIG_NAMES["environment"],
                profile=APPCONFIG_NAMES["profile"],
                poll_interval_s=self.poll_interval_s,
                option_ids=self._option_statuses,
                freeform=agent_freeform(self.profiles_file),
            ).start(),
        )
        if agent is not None:
            self._exit.callback(agent.stop)
        aws = attempt("aws", self.aws_port, lambda: AwsEndpoint(self.host, self.aws_port))
        if aws is not None:
            self._exit.callback(aws.stop)
        if failures:
            raise PortUnavailable(self.host, failures)
        return door, agent, aws

    def _start(self) -> LocalStack:
        from switchboard_local.cli import target as cli_target

        claim = cli_target.claim_local_state(self.state_file)
        self._exit.callback(claim.release)
        door, agent, aws = self._bind()
        self.agent = agent
        self.aws_url, self.agent_url = aws.url, agent.url
        # Credentials and region for every boto3 client in this process; nothing reaches AWS.
        self._set_env(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "MOTO_PORT": str(aws.port),
            }
        )
        aws.start()
        # moto as the stack needs it, undone when the stack stops: StartSyncExecution (the gateway
        # runs the workflow as deployed, WORKFLOW_MODE=sync), parse-once ASL, the lifecycle's
        # SageMaker, DynamoDB writes as atomic as DynamoDB's (exact usage counters), item reads
        # answered without moto's slow serializer and each host routed once (its CPU is this
        # process's: the requests').
        from switchboard_local import moto_patches

        for patch_set in (
            moto_patches.SFN_START_SYNC,
            moto_patches.ASL_PARSE_CACHE,
            moto_patches.SAGEMAKER,
            moto_patches.DYNAMODB_ATOMIC_WRITES,
            moto_patches.DYNAMODB_JSON_ITEM_READS,
            moto_patches.MOTO_SERVER_HOST_ROUTING,
        ):
            self._exit.enter_context(patch_set.applied())
        # moto's backends live in this process, not in the server: a stack started earlier in the
        # same process (tests) left its resources there. Start from empty, then turn the
        # Step Functions interpreter on.
        self._moto_api("reset", None)
        self._moto_api("config", {"stepfunctions": {"execute_state_machine": True}})

        self.resources = provision(self._client, region=REGION, dev_key=self.dev_key)
        from switchboard_local.lifecycle_local import provision_model_lifecycle

        self.lifecycle = provision_model_lifecycle(self._client, self.resources)
        # The handlers reach the agent at the port it really bound (AGENT_PORT may be 0).
        self._set_env(
            handler_environment(
                self.resources,
                agent_url=agent.url,
                endpoint_url=self.aws_url,
                provider_override=self.provider_override,
            )
        )
        reset_handler_caches()
        self._exit.enter_context(bind_lambda_handlers(in_process_handlers(self.resources)))
        door.start()
        self.url = door.url
        if self.adapter_bake_seconds is not None:
            self._start_adapter_flow(self.adapter_bake_seconds)
        self.record = claim.publish(
            cli_target.Target(
                region=REGION,
                options_table=self.resources.options_table,
                keys_table=self.resources.keys_table,
                endpoint_url=self.aws_url,
                usage_plans=dict(self.resources.usage_plans),
                api_url=f"{self.url}/v1",
                circuit_table=self.resources.circuit_table,
                cache_table=self.resources.cache_table,
                usage_table=self.resources.usage_table,
                flags_file=str(Path(self.flags_file).resolve()),
            ),
            gateway_url=self.url,
            agent_url=self.agent_url,
            aws_url=self.aws_url,
        )
        return self

    def _start_adapter_flow(self, bake_seconds: int) -> None:
        """Approve acme's sample adapter and run the deployment workflow for it, while serving.

        Registered after the handlers' binding, so stopping the stack lets the flow finish first
        (its workflow's Lambda tasks are those in-process handlers).
        """
        from switchboard_local.lifecycle_local import StartupAdapterFlow

        flow = StartupAdapterFlow(self.aws_url, self.lifecycle, bake_seconds=bake_seconds)
        self._exit.callback(flow.stop)
        self.adapter_flow = flow.start()

    def stop(self) -> None:
        self._exit.close()
        reset_handler_caches()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (0-65535; 0 picks a free one)")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard-local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    for name, flag in (("gateway", "--port"), ("agent", "--agent-port"), ("aws", "--aws-port")):
        variable = PORT_VARIABLES[name]
        parser.add_argument(
            flag,
            type=_port,  # argparse also runs a string default through it: a bad $PORT is an error
            default=os.environ.get(variable, str(DEFAULT_PORTS[name])),
            help=f"port of {PORT_ROLES[name]} (default ${variable} or {DEFAULT_PORTS[name]}; 0: a free one)",
        )
    parser.add_argument(
        "--providers",
        choices=("mock", "real"),
        default="mock",
        help="mock (default): every option answers through the mock provider; real: call its provider",
    )
    parser.add_argument(
        "--adapter-bake-seconds",
        type=_bake_seconds,
        default=os.environ.get("ADAPTER_BAKE_SECONDS", str(DEFAULT_ADAPTER_BAKE_SECONDS)),
        help="start-up runs the sample adapter flow: acme's adapter canaries this long before the "
        f"workflow promotes or rolls it back (default $ADAPTER_BAKE_SECONDS or "
        f"{DEFAULT_ADAPTER_BAKE_SECONDS}; 'off' leaves it pending)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(message)s")
    else:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's per-call access log
        # Metrics are off locally (POWERTOOLS_METRICS_DISABLED); Powertools still warns on each flush.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
    dev_key = os.environ.get("SWITCHBOARD_DEV_KEY", DEV_KEY)
    stack = LocalStack(
        host=args.host,
        port=args.port,
        agent_port=args.agent_port,
        aws_port=args.aws_port,
        dev_key=dev_key,
        provider_override="mock" if args.providers == "mock" else None,
        adapter_bake_seconds=args.adapter_bake_seconds,
    )
    from switchboard.routing.document import FlagDocumentError
    from switchboard_local.cli.target import LocalStackRunning

    try:
        stack.start()
    except (PortUnavailable, LocalStackRunning, FlagDocumentError) as exc:
        print(f"switchboard-local: {exc}", file=sys.stderr, flush=True)
        return 1
    # Not before: start-up's own INFO lines (which the banner repeats) would bury a one-line error.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    state_file = Path(stack.state_file or cli_state_file())
    print(
        "\nSwitchboard local stack is up\n"
        f"  gateway       {stack.url}/v1   (OpenAI base_url; PORT)\n"
        f"  dev key       {dev_key}   (tenant dev, tier standard)\n"
        f"  AWS endpoint  {stack.aws_url}   (AWS_PORT)\n"
        f"  AppConfig     {stack.agent_url}   (AGENT_PORT) serving {FLAGS_FILE}\n"
        f"                and {PROFILES_FILE} (tenant prompt profiles)\n"
        "                (edit them: routing and profiles follow within seconds, no restart)\n"
        f"  CLI state     {state_file}   (`switchboard ... --local` from this folder uses this stack)\n"
        f"{_adapter_flow_banner(stack)}"
        "Ctrl-C stops.\n",
        flush=True,
    )
    if stack.adapter_flow is not None:
        threading.Thread(
            target=_print_adapter_flow, args=(stack,), name="adapter-flow-report", daemon=True
        ).start()
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a supervisor stopping us
        signal.signal(signum, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        stack.stop()
        print("Switchboard local stack stopped.", flush=True)
    return 0


DEFAULT_ADAPTER_BAKE_SECONDS = 5
"""`make local`'s bake of acme's sample adapter canary: long enough to see the canary in
`switchboard models list`, short enough not to keep a developer waiting (AWS bakes for 900 s)."""


def _bake_seconds(raw: str) -> int | None:
    if raw.strip().lower() in ("off", "none", "no"):
        return None
    try:
        seconds = int(raw)
    except ValueError:
        seconds = -1
    if not 0 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a bake time (0-3600 seconds, or off)")
    return seconds


def _adapter_flow_banner(stack: LocalStack) -> str:
    """The banner's lines on the tenant adapters: what start-up is doing, and how to watch it."""
    from switchboard_local.lifecycle_local import SAMPLE_TENANTS

    flow = stack.adapter_flow
    group = stack.lifecycle.get("sample_adapter_group", "")
    others = ", ".join(t for t in SAMPLE_TENANTS if flow is None or t != flow.tenant)
    if flow is None:
        return (
            f"  adapters      {group}: adapters of {others} pending approval (the base model serves them;\n"
            "                `switchboard models approve --group ... --version N --local`)\n"
        )
    return (
        f"  adapters      {group} on route tuned: approving {flow.tenant}'s adapter now (canary, "
        f"{flow.bake_seconds} s bake,\n"
        f"                then promote or roll back; watch: `switchboard models list --group {group}"
        f" --tenant {flow.tenant} --local`);\n"
        f"                {others}: adapter pending approval, the base model serves it\n"
    )


def _print_adapter_flow(stack: LocalStack) -> None:
    """One line when the start-up's adapter flow ends: tenant, version, canary share, outcome."""
    flow = stack.adapter_flow
    if flow is None:
        return
    try:
        line = flow.wait().summary()
    except Exception as exc:  # the stack keeps serving; the flow can be rerun by hand
        line = f"{flow.tenant}: the start-up adapter flow failed: {exc}"
    print(f"\nTenant adapter flow: {line}\n", flush=True)


def cli_state_file() -> Path:
    """The state file a stack without an explicit one claims (read when called: tests repoint it)."""
    from switchboard_local.cli import target as cli_target

    return cli_target.LOCAL_STATE_FILE


if __name__ == "__main__":
    sys.exit(main())
