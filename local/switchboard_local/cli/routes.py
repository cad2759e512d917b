"""The routes a target serves: the route flags of the flag document it runs on.

Locally, the document the stack's AppConfig agent emulator serves (its path is in the state file;
the checkout's `config/flags.json` for a state file without one). Deployed, the hosted
configuration version last deployed to the stack's AppConfig environment and not rolled back: the
document the extension serves, which may differ from this checkout's copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.routing.document import FlagDocumentError, load_document, route_names
from switchboard_local.cli.target import Target, TargetError
from switchboard_local.emulation import FLAGS_FILE

# Deployments in these states never served (or no longer serve) their version.
_NOT_SERVED = {"ROLLING_BACK", "ROLLED_BACK", "REVERTED"}


@dataclass(frozen=True)
class KnownRoutes:
    names: list[str]
    source: str
    """Where they were read, for messages: a file path or an AppConfig deployment."""


def known_routes(target: Target) -> KnownRoutes:
    """The target's routes; raises :class:`TargetError` when its flag document cannot be read."""
    if target.appconfig:
        return deployed_routes(target.client("appconfig"), target.appconfig)
    path = Path(target.flags_file) if target.flags_file else FLAGS_FILE
    try:
        document = load_document(path)
    except FlagDocumentError as exc:
        raise TargetError(f"cannot read the routes: {exc}") from exc
    return KnownRoutes(route_names(document), str(path))


def deployed_routes(appconfig: Any, ids: dict[str, str]) -> KnownRoutes:
    """Routes of the flag version the stack's environment serves (AppConfig control plane)."""
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
    return KnownRoutes(route_names(document), source)
