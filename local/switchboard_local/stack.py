"""`make local`: the gateway on 127.0.0.1 with AWS emulated in-process.

moto's ThreadedMotoServer runs inside this process (so its Step Functions interpreter reaches the
in-process handlers), the AppConfig agent emulator serves `config/flags.json` on port 2772 and
re-reads it on change, and the front door plays API Gateway on port 8080.
"""

from __future__ import annotations

import argparse
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
from typing import Any

from switchboard_local.emulation import (
    APPCONFIG_NAMES,
    DEV_KEY,
    FLAGS_FILE,
    LocalResources,
    bind_lambda_handlers,
    handler_environment,
    in_process_handlers,
    provision,
    reset_handler_caches,
)

log = logging.getLogger("switchboard.local")
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStack:
    """Start with `start()`, stop with `stop()` (or use it as a context manager)."""

    def __init__(
        self,
        *,
        port: int = 8080,
        agent_port: int = 2772,
        aws_port: int = 0,
        host: str = "127.0.0.1",
        dev_key: str = DEV_KEY,
        provider_override: str | None = "mock",
        poll_interval_s: float = 1.0,
        flags_file: Any = FLAGS_FILE,
    ) -> None:
        self.host = host
        self.port = port
        self.agent_port = agent_port
        self.aws_port = aws_port or free_port()
        self.dev_key = dev_key
        self.provider_override = provider_override
        self.poll_interval_s = poll_interval_s
        self.flags_file = flags_file
        self.resources: LocalResources | None = None
        self._exit = ExitStack()
        self._saved_env: dict[str, str | None] = {}
        self.url = ""
        self.aws_url = f"http://{host}:{self.aws_port}"

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

    def _option_statuses(self) -> dict[str, str]:
        """``{id: status}`` from the options table, read as the flags profile's Lambda validator reads it."""
        from switchboard.options.store import OptionsStore

        assert self.resources is not None
        store = OptionsStore(self.resources.options_table, client=self._client("dynamodb"), ttl_s=0)
        return {option.id: option.status.value for option in store.all()}

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        from switchboard_local.agent import AgentEmulator
        from switchboard_local.cli.target import Target, write_local_state
        from switchboard_local.front_door import FrontDoor

        # Credentials and region for every boto3 client in this process; nothing reaches AWS.
        self._set_env(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "MOTO_PORT": str(self.aws_port),
            }
        )
        server = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        server.start()
        self._exit.callback(server.stop)
        # StartSyncExecution, so the gateway runs the workflow as deployed (WORKFLOW_MODE=sync).
        from switchboard_local import sfn_ext

        sfn_ext.install()
        self._exit.callback(sfn_ext.uninstall)
        # moto's backends live in this process, not in the server: a stack started earlier in the
        # same process (tests) left its resources there. Start from empty, then turn the
        # Step Functions interpreter on.
        self._moto_api("reset", None)
        self._moto_api("config", {"stepfunctions": {"execute_state_machine": True}})

        self.resources = provision(self._client, region=REGION, dev_key=self.dev_key)
        from switchboard_local.lifecycle_local import provision_model_lifecycle

        self.lifecycle = provision_model_lifecycle(self._client, self.resources)
        agent = AgentEmulator(
            self.flags_file,
            host=self.host,
            port=self.agent_port,
            application=APPCONFIG_NAMES["application"],
            environment=APPCONFIG_NAMES["environment"],
            profile=APPCONFIG_NAMES["profile"],
            poll_interval_s=self.poll_interval_s,
            option_ids=self._option_statuses,
        )
        agent.start()
        self._exit.callback(agent.stop)
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
        door = FrontDoor(host=self.host, port=self.port).start()
        self._exit.callback(door.stop)
        self.url = door.url
        write_local_state(
            Target(
                region=REGION,
                options_table=self.resources.options_table,
                keys_table=self.resources.keys_table,
                endpoint_url=self.aws_url,
                usage_plans=dict(self.resources.usage_plans),
                api_url=f"{self.url}/v1",
                circuit_table=self.resources.circuit_table,
                cache_table=self.resources.cache_table,
            )
        )
        return self

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard-local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--agent-port", type=int, default=2772)
    parser.add_argument("--aws-port", type=int, default=int(os.environ.get("SWITCHBOARD_AWS_PORT", "0")))
    parser.add_argument(
        "--providers",
        choices=("mock", "real"),
        default="mock",
        help="mock (default): every option answers through the mock provider; real: call its provider",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if not args.verbose:
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
    )
    stack.start()
    print(
        "\nSwitchboard local stack is up\n"
        f"  gateway       {stack.url}/v1   (OpenAI base_url)\n"
        f"  dev key       {dev_key}   (tenant dev, tier standard)\n"
        f"  AWS endpoint  {stack.aws_url}   (switchboard ... --local uses it)\n"
        f"  AppConfig     http://{args.host}:{args.agent_port}   serving {FLAGS_FILE}\n"
        "                (edit that file: routing follows within seconds, no restart)\n"
        "Ctrl-C stops.\n",
        flush=True,
    )
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


if __name__ == "__main__":
    sys.exit(main())
