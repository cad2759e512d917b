"""The deployment function as ``switchboard doctor`` reads it: ``lambda:GetFunctionConfiguration``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class DeploymentFunctionConfiguration:
    """Answers with ``MODEL_FAMILIES`` (the families given) plus any other ``variables``."""

    def __init__(self, families: list[dict[str, Any]], **variables: str) -> None:
        self.families = families
        self.variables = variables

    def get_function_configuration(self, **_: Any) -> dict[str, Any]:
        variables = {"MODEL_FAMILIES": json.dumps(self.families), **self.variables}
        return {"Environment": {"Variables": variables}}


def remote_deployment(home: str, client: Any, region_client: Any) -> Any:
    """What ``switchboard doctor`` checks of a deployed stack in ``home``, its AWS calls answered
    by ``client(service)`` (the home region) and ``region_client(service, region)`` (any other)."""
    from switchboard_local.cli.target import Target
    from switchboard_local.doctor.deployment import Deployment, FileFlags, HttpAnswer, Pins

    return Deployment(
        local=False,
        label="test",
        target=Target(region=home, options_table="options", keys_table="keys"),
        client=client,
        functions=list,
        state_machine_arn=None,
        flags=FileFlags(ROOT / "config" / "flags.json"),
        deployment_state_machine_arn=f"arn:aws:states:{home}:123456789012:stateMachine:deploy",
        deployment_function="sb-model-deployment",
        pins=Pins(powertools="3.37.0", pydantic="2.14.3", source="requirements.txt"),
        http=lambda *a: HttpAnswer(500, {}, b""),
        region_client=region_client,
    )
