"""Writes the OpenAPI document generated from the gateway's routes (`make openapi`).

A test regenerates it and fails when `docs/openapi.json` is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from switchboard_local.emulation import ROOT

DOC_PATH = ROOT / "docs" / "openapi.json"


def render() -> str:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

    from handlers.gateway import app

    raw = app.get_openapi_json_schema(
        title="Switchboard",
        version="1",
        summary="OpenAI-compatible LLM gateway with runtime model routing",
        description="`model` names a route alias; the route's AppConfig flag picks the option chain.",
        servers=[Server(url="http://127.0.0.1:8080", description="make local")],
        security_schemes={"bearer": HTTPBearer(bearerFormat="sk-switchboard-...")},
        security=[{"bearer": []}],
    )
    return json.dumps(_without_unused_422(json.loads(raw)), indent=2, sort_keys=True) + "\n"


def _without_unused_422(document: dict[str, Any]) -> dict[str, Any]:
    """Powertools documents a 422 for request validation; the gateway answers those with an
    OpenAI-style 400 (documented on each route), so the 422 and its schemas would mislead clients."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    text = json.dumps(document.get("paths", {}))
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f"#/components/schemas/{name}" not in text:
            schemas.pop(name, None)
    return document


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else DOC_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
