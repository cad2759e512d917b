"""`switchboard doctor`: check a deployment component by component, one table row per check.

    switchboard doctor --stack Switchboard --region us-east-1     # after `cdk deploy`
    switchboard doctor --local                                    # against `make local`
    switchboard doctor --local --json                             # for machines

Exit 0 only when every row passes (1 otherwise; 2 when the target cannot be found). In AWS it
invokes each function once, runs the request workflow once without a provider call, sends one
completion of at most 5 tokens per route with a temporary key that it deletes again, and reads a
few names, tables and registries: cents at most, and nothing left behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from switchboard_local.cli.target import (
    Target,
    add_target_arguments,
    local_target,
    resolve_target,
)
from switchboard_local.doctor.checks import CHECKS
from switchboard_local.doctor.deployment import (
    LOCAL_FLAGS_FILE,
    ClientFactory,
    Deployment,
    aws_deployment,
    local_deployment,
)
from switchboard_local.doctor.report import Check, all_passed, render_json, render_table, run_checks


def client_factory(target: Target) -> ClientFactory:
    """One boto3 client per service, for the target's region (and the local endpoint, if any).

    Against a custom endpoint botocore would prefix the host of some calls (``sync-`` for
    StartSyncExecution): the local emulator serves every operation on one host, so that is off.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 2 if target.endpoint_url else 4, "mode": "standard"},
        inject_host_prefix=not target.endpoint_url,
        read_timeout=70,
    )
    clients: dict[str, Any] = {}
    lock = threading.Lock()

    def make(service: str) -> Any:
        with lock:
            if service not in clients:
                clients[service] = boto3.client(service, config=config, **target.client_kwargs())
            return clients[service]

    return make


def resolve_deployment(args: argparse.Namespace) -> Deployment:
    if args.local:
        target = local_target()
        flags_file = Path(args.flags_file) if args.flags_file else LOCAL_FLAGS_FILE
        return local_deployment(target, client_factory(target), flags_file=flags_file)
    target = resolve_target(args)
    return aws_deployment(target, client_factory(target), stack=args.stack)


def cmd_doctor(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args)

    def crashed(check: Check[Deployment], exc: BaseException, trace: str) -> None:
        if args.verbose:
            print(f"switchboard doctor: {check.component} crashed:\n{trace}", file=sys.stderr)

    if not args.json:
        print(f"Checking {deployment.label} ...", file=sys.stderr, flush=True)
    findings = run_checks(CHECKS, deployment, on_crash=crashed)
    if args.json:
        print(render_json(findings, target=deployment.label))
    else:
        width = shutil.get_terminal_size((160, 24)).columns if sys.stdout.isatty() else None
        print(render_table(findings, width=width))
    return 0 if all_passed(findings) else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check a deployment (or the local stack) component by component",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--flags-file",
        default=os.environ.get("SWITCHBOARD_FLAGS_FILE"),
        metavar="FILE",
        help=f"with --local: the flag document the local stack serves (default {LOCAL_FLAGS_FILE.name} "
        "under config/)",
    )
    parser.add_argument("--verbose", action="store_true", help="print a crashed check's traceback")
    parser.set_defaults(func=cmd_doctor)
