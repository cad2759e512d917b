"""`switchboard flags`: check and try out the AppConfig feature-flag document, offline.

    switchboard flags validate config/flags.json --options config/options.json
    switchboard flags evaluate --route chat --tier premium --user u1 --context region=eu

Both work on files only: the same checks as the profile's Lambda validator, and the evaluation of
the local agent emulator (the stand-in for the AppConfig extension, which evaluates in AWS).
`--local`/`--stack`/`--region` are accepted for symmetry with the other groups and ignored.
`evaluate` passes each context value through the gateway's encoding and prints the context as the
agent sees it: a value that is not plain (e.g. a `user` in another script) shows its `~…` form, the
one a rule must name to match it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from switchboard.routing.agent_client import context_value
from switchboard.routing.document import (
    FlagDocumentError,
    load_document,
    load_option_catalogue,
    validate_document,
)
from switchboard_local.cli.target import add_target_arguments
from switchboard_local.flag_evaluation import UnknownFlagError, evaluate_route

DEFAULT_CONFIG = "config/flags.json"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("flags", help="validate or evaluate the routing feature-flag document")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{validate,evaluate}")

    validate = sub.add_parser("validate", help="check a flag document; exit 1 listing every problem")
    validate.add_argument("file", help="AWS.AppConfig.FeatureFlags JSON document")
    validate.add_argument(
        "--options",
        metavar="FILE",
        help="options seed (JSON list of options): also check every chain names a live option of the "
        "route's kind (chat or embeddings), and an embeddings chain one model",
    )
    add_target_arguments(validate)
    validate.set_defaults(func=cmd_validate)

    evaluate = sub.add_parser("evaluate", help="show which variant and chain a request would get")
    evaluate.add_argument(
        "--config", default=DEFAULT_CONFIG, metavar="FILE", help=f"default {DEFAULT_CONFIG}"
    )
    evaluate.add_argument("--route", required=True, help="route alias (a flag key), e.g. chat")
    evaluate.add_argument("--tenant", help="context key tenant")
    evaluate.add_argument("--tier", help="context key tier (standard, premium)")
    evaluate.add_argument("--user", help="context key userId (used by split rules)")
    evaluate.add_argument(
        "--context",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra context entries",
    )
    add_target_arguments(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        doc = load_document(args.file)
        option_ids = load_option_catalogue(args.options) if args.options else None
    except FlagDocumentError as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    problems = validate_document(doc, option_ids)
    if problems:
        print(f"INVALID: {args.file}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    checked = " (option ids and kinds checked)" if option_ids is not None else ""
    print(f"OK: {args.file}: {len(doc.get('flags') or {})} flag(s){checked}")
    return 0


def _context(args: argparse.Namespace) -> dict[str, str] | str:
    context: dict[str, str] = {}
    for key, value in (("tenant", args.tenant), ("tier", args.tier), ("userId", args.user)):
        if value:
            context[key] = context_value(value)
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return f"--context expects KEY=VALUE, got {item!r}"
        if value:  # the gateway leaves empty values out of the Context header
            context[key.strip()] = context_value(value)
    return context


def cmd_evaluate(args: argparse.Namespace) -> int:
    context = _context(args)
    if isinstance(context, str):
        print(f"switchboard: {context}", file=sys.stderr)
        return 1
    try:
        doc = load_document(args.config)
    except FlagDocumentError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    problems = validate_document(doc)
    if problems:
        print(f"switchboard: {args.config} is invalid (run `switchboard flags validate`):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    try:
        decision = evaluate_route(doc, args.route, context)
    except UnknownFlagError:
        known = ", ".join(doc.get("flags") or {}) or "none"
        print(
            f"switchboard: unknown route {args.route!r} (routes in {args.config}: {known})", file=sys.stderr
        )
        return 1
    except ValueError as exc:
        print(f"switchboard: route {args.route!r}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"route": args.route, **decision.to_dict(), "context": context}, indent=2))
    return 0
