"""`switchboard keys …`: issue, revoke and list tenant API keys.

`create` prints the bearer key exactly once: only its SHA-256 is stored, so it cannot be shown
again. `list` never prints keys or hashes. Revocation takes effect at the authorizer within its
cache TTL.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from switchboard.keys import TIERS, ApiKeyNotFound, ApiKeyStore
from switchboard_local.cli.common import aws_errors
from switchboard_local.cli.routes import known_routes
from switchboard_local.cli.target import add_target_arguments, resolve_target


def _err(message: str) -> None:
    print(f"switchboard keys: {message}", file=sys.stderr)


def _out(data: Any) -> None:
    print(json.dumps(data, indent=2))


@aws_errors
def cmd_create(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    if args.route:
        # A key restricted to a route the flags do not define could call nothing: say so now.
        routes = known_routes(target)
        unknown = [route for route in dict.fromkeys(args.route) if route not in routes.names]
        if unknown:
            _err(
                f"unknown route(s) {', '.join(map(repr, unknown))}; the routes are "
                f"{', '.join(routes.names) or '(none)'} (from {routes.source})"
            )
            return 1
    store = ApiKeyStore(target.keys_table, client=target.client("dynamodb"))
    usage_plan_id = target.usage_plans.get(args.tier) or None
    # Without a usage plan (e.g. a local stack that has none) there is nothing to meter against.
    apigateway = target.client("apigateway") if usage_plan_id else None
    try:
        key, record = store.create(
            args.tenant,
            args.tier,
            apigateway=apigateway,
            usage_plan_id=usage_plan_id,
            allowed_routes=args.route or None,
        )
    except ValueError as exc:
        _err(str(exc))
        return 1
    _out({"key": key, **record.to_dict()})
    print(
        "switchboard keys: store this key now; it is not stored and cannot be shown again.", file=sys.stderr
    )
    return 0


@aws_errors
def cmd_revoke(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    store = ApiKeyStore(target.keys_table, client=target.client("dynamodb"))
    try:
        record = store.revoke(args.key_id, apigateway=target.client("apigateway"))
    except (ApiKeyNotFound, ValueError) as exc:
        _err(str(exc))
        return 1
    _out(record.to_dict())
    return 0


@aws_errors
def cmd_list(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    store = ApiKeyStore(target.keys_table, client=target.client("dynamodb"))
    records = store.list()
    if args.tenant:
        records = [r for r in records if r.tenant == args.tenant]
    _out([r.to_dict() for r in records])
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("keys", help="issue, revoke and list tenant API keys")
    sub = group.add_subparsers(dest="command", required=True, metavar="{create,revoke,list}")

    p = sub.add_parser("create", help="issue a key (printed once)")
    p.add_argument("--tenant", required=True)
    p.add_argument("--tier", required=True, choices=TIERS)
    p.add_argument(
        "--route",
        action="append",
        metavar="ROUTE",
        help="restrict the key to a route the flag document defines (repeatable; default: every route)",
    )
    add_target_arguments(p)
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("revoke", help="revoke a key by its key_id")
    p.add_argument("key_id", metavar="KEY_ID")
    add_target_arguments(p)
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("list", help="list keys as JSON (never the keys themselves)")
    p.add_argument("--tenant", default=None, help="only this tenant's keys")
    add_target_arguments(p)
    p.set_defaults(func=cmd_list)
