"""The deployment function as ``switchboard doctor`` reads it: ``lambda:GetFunctionConfiguration``."""

from __future__ import annotations

import json
from typing import Any


class DeploymentFunctionConfiguration:
    """Answers with ``MODEL_FAMILIES`` (the families given) plus any other ``variables``."""

    def __init__(self, families: list[dict[str, Any]], **variables: str) -> None:
        self.families = families
        self.variables = variables

    def get_function_configuration(self, **_: Any) -> dict[str, Any]:
        variables = {"MODEL_FAMILIES": json.dumps(self.families), **self.variables}
        return {"Environment": {"Variables": variables}}
