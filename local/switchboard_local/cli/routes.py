"""`switchboard routes …`: the routes a target serves, the route flags of the flag document it runs on.

    switchboard routes list [--local | --stack NAME | --file FLAGS.json]
    switchboard routes show embed

Locally, the document the stack's AppConfig agent emulator serves (its path is in the state file;
the checkout's `config/flags.json` for a state file without one). Deployed, the hosted
configuration version last deployed to the stack's AppConfig environment and not rolled back: the
document the extension serves, which may differ from this checkout's copy. `--file` reads a flag
document offline. Each route shows its kind: `chat` routes answer `/v1/chat/completions`,
`embeddings` routes `/v1/embeddings`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.routing.decision import ROUTE_KIND_EMBEDDINGS
from switchboard.routing.document import FlagDocumentError, load_document, route_kinds, route_names
from switchboard_local.cli.common import aws_errors
from switchboard_local.cli.target import Target, TargetError, add_target_arguments, resolve_target
from switchboard_local.emulation import FLAGS_FILE

# Deployments in these states never served (or no longer serve) their version.
_NOT_SERVED = {"ROLLING_BACK", "ROLLED_BACK", "REVERTED"}


@dataclass(frozen=True)
class KnownRoutes:
    names: list[str]
    source: str
    """Where they were read, for messages: a file path or an AppConfig deployment."""


@dataclass(frozen=True)
class ServedDocument:
    document: dict[str, Any]
    source: str
    """Where it was read, for messages: a file path or an AppConfig deployment."""


def known_routes(target: Target) -> KnownRoutes:
    """The target's routes; raises :class:`TargetError` when its flag document cannot be read."""
    served = served_document(target)
    return KnownRoutes(route_names(served.document), served.source)


def served_document(target: Target) -> ServedDocument:
    """The flag document the target serves; raises :class:`TargetError` when it cannot be read."""
    if target.appconfig:
        return deployed_document(target.client("appconfig"), target.appconfig)
    return _file_document(Path(target.flags_file) if target.flags_file else FLAGS_FILE)


def _file_document(path: Path) -> ServedDocument:
    try:
        document = load_document(path)
    except FlagDocumentError as exc:
        raise TargetError(f"cannot read the routes: {exc}") from exc
    return ServedDocument(document, str(path))


def deployed_routes(appconfig: Any, ids: dict[str, str]) -> KnownRoutes:
    """Routes of the flag version the stack's environment serves (AppConfig control plane)."""
    served = deployed_document(appconfig, ids)
    return KnownRoutes(route_names(served.document), served.source)


def deployed_document(appconfig: Any, ids: dict[str, str]) -> ServedDocument:
    """The flag version the stack's environment serves (AppConfig control plane)."""
    try:
        application, environment, profile = ids["application_id"], ids["environment_id"], ids["profile_id"]
    except KeyError as exc:
        raise TargetError(f"the stack does not name its AppConfig {exc.args[0]}: redeploy it") from exc
    paginator = appconfig.get_paginator("list_deployments")
    newest: dict[str, Any] | None = None
    for page in paginator.paginate(ApplicationId=application, EnvironmentId=environment):
        for deployment in page.get("Items", []):
            if deployment.get("ConfigurationProfileId") != profile or deployment.get("State") in _NOT_SERVED:
                continue
            if newest is None or deployment["DeploymentNumber"] > newest["DeploymentNumber"]:
                newest = deployment
    if newest is None:
        raise TargetError("no routing flag document has been deployed to the stack's AppConfig environment")
    version = newest["ConfigurationVersion"]
    hosted = appconfig.get_hosted_configuration_version(
        ApplicationId=application, ConfigurationProfileId=profile, VersionNumber=int(version)
    )
    try:
        document = json.loads(hosted["Content"].read())
    except ValueError as exc:
        raise TargetError(f"the deployed flag document (version {version}) is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise TargetError(f"the deployed flag document (version {version}) is not a JSON object")
    source = f"AppConfig deployment {newest['DeploymentNumber']} (flags version {version})"
    return ServedDocument(document, source)


# --------------------------------------------------------------------------------------------------
# The command group


def route_variants(document: Mapping[str, Any], route: str) -> list[dict[str, Any]]:
    """A route's values in evaluation order: name, rule (the default has none), enabled, attributes."""
    values = document.get("values")
    value = values.get(route) if isinstance(values, Mapping) else None
    if not isinstance(value, Mapping):
        return []
    variants = value.get("_variants")
    if not isinstance(variants, list):  # a plain value: one unconditional "variant"
        attributes = {k: v for k, v in value.items() if k != "enabled" and not str(k).startswith("_")}
        return [{"name": None, "enabled": value.get("enabled") is True, **attributes}]
    out: list[dict[str, Any]] = []
    for variant in variants:
        if not isinstance(variant, Mapping):
            continue
        row: dict[str, Any] = {"name": variant.get("name")}
        if "rule" in variant:
            row["rule"] = variant["rule"]
        row["enabled"] = variant.get("enabled") is True
        values = variant.get("attributeValues")
        row.update(values if isinstance(values, Mapping) else {})
        out.append(row)
    return out


def route_summary(document: Mapping[str, Any], route: str, kind: str) -> dict[str, Any]:
    """What `routes list` prints of one route: its kind and the endpoint that serves it first."""
    flags = document.get("flags")
    definition = flags.get(route) if isinstance(flags, Mapping) else None
    description = definition.get("description") if isinstance(definition, Mapping) else None
    variants = route_variants(document, route)
    default = variants[-1] if variants else {}
    return {
        "route": route,
        "kind": kind,
        "endpoint": "/v1/embeddings" if kind == ROUTE_KIND_EMBEDDINGS else "/v1/chat/completions",
        "default_enabled": default.get("enabled") is True,
        "variants": [v["name"] for v in variants],
        "description": description,
    }


def _served(args: argparse.Namespace) -> ServedDocument:
    if args.file:
        return _file_document(Path(args.file))
    return served_document(resolve_target(args))


def _out(data: Any) -> None:
    print(json.dumps(data, indent=2))


@aws_errors
def cmd_list(args: argparse.Namespace) -> int:
    served = _served(args)
    kinds = route_kinds(served.document)
    _out(
        {
            "source": served.source,
            "routes": [route_summary(served.document, route, kind) for route, kind in kinds.items()],
        }
    )
    return 0


@aws_errors
def cmd_show(args: argparse.Namespace) -> int:
    served = _served(args)
    kinds = route_kinds(served.document)
    if args.route not in kinds:
        known = ", ".join(kinds) or "none"
        print(
            f"switchboard routes: unknown route {args.route!r} (routes in {served.source}: {known})",
            file=sys.stderr,
        )
        return 1
    summary = route_summary(served.document, args.route, kinds[args.route])
    summary["variants"] = route_variants(served.document, args.route)
    _out({"source": served.source, **summary})
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("routes", help="the routes a gateway serves: kind, variants, chains")
    sub = group.add_subparsers(dest="command", required=True, metavar="{list,show}")

    p = sub.add_parser("list", help="every route with its kind (chat or embeddings) and variants")
    p.add_argument("--file", metavar="FLAGS", help="read this flag document instead of the target's")
    add_target_arguments(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one route: kind, endpoint and each variant's rule, chain and degrade")
    p.add_argument("route")
    p.add_argument("--file", metavar="FLAGS", help="read this flag document instead of the target's")
    add_target_arguments(p)
    p.set_defaults(func=cmd_show)
