"""`switchboard agent`: run the AppConfig agent emulator on a flag document until Ctrl-C.

    switchboard agent --config config/flags.json --port 2772
    curl -H 'Context: tier=premium' \\
        localhost:2772/applications/switchboard/environments/local/configurations/routing

Names given with --application/--environment/--profile must match; without them any names are
served. Edits to the file are picked up within `--poll-interval` seconds; an invalid edit is logged
and the last good document keeps being served. `--profiles config/profiles.json` also serves the
tenant prompt profiles, as the freeform profile `prompt-profiles` (checked the same way).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from switchboard.routing.document import FlagDocumentError, load_option_catalogue
from switchboard_local.agent import DEFAULT_PORT, AgentEmulator

DEFAULT_CONFIG = "config/flags.json"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("agent", help="serve flags like the AppConfig agent (localhost:2772)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE", help=f"default {DEFAULT_CONFIG}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free port"
    )
    parser.add_argument("--application", help="only serve this application name (default: any)")
    parser.add_argument("--environment", help="only serve this environment name (default: any)")
    parser.add_argument("--profile", help="only serve this configuration profile name (default: any)")
    parser.add_argument("--poll-interval", type=float, default=1.0, metavar="S", help="file poll period (s)")
    parser.add_argument(
        "--options", metavar="FILE", help="also refuse unknown/retired options and options of the wrong kind"
    )
    parser.add_argument(
        "--profiles",
        metavar="FILE",
        help="also serve these tenant prompt profiles as the freeform profile `prompt-profiles`",
    )
    parser.set_defaults(func=cmd_agent)


def cmd_agent(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        option_ids = load_option_catalogue(args.options) if args.options else None
        freeform = None
        if args.profiles:
            from switchboard_local.emulation import agent_freeform  # imports moto: only when asked

            freeform = agent_freeform(Path(args.profiles))
        emulator = AgentEmulator(
            args.config,
            host=args.host,
            port=args.port,
            application=args.application,
            environment=args.environment,
            profile=args.profile,
            poll_interval_s=args.poll_interval,
            option_ids=option_ids,
            freeform=freeform,
        )
        emulator.start()
    except FlagDocumentError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"switchboard: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    served = f"{args.config} and {args.profiles}" if args.profiles else args.config
    print(f"AppConfig agent emulator on {emulator.url} serving {served} (Ctrl-C to stop)", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
