"""`switchboard` entry point: each command group lives in its own module with a `register()`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from switchboard_local.cli import (
    agent,
    capacity,
    circuits,
    doctor,
    flags,
    keys,
    models,
    options,
    quotas,
    routes,
    usage,
)
from switchboard_local.cli.target import TargetError

GROUPS = (keys, options, routes, flags, circuits, models, usage, quotas, capacity, agent, doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Operate a Switchboard LLM gateway.")
    sub = parser.add_subparsers(
        dest="group",
        required=True,
        metavar="{keys,options,routes,flags,circuits,models,usage,limits,budgets,capacity,agent,doctor}",
    )
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except TargetError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
