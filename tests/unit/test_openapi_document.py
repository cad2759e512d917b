"""docs/openapi.json is generated from the gateway's routes; a stale copy fails here."""

from __future__ import annotations

import json

from switchboard_local.openapi import DOC_PATH, render


def test_openapi_document_is_current() -> None:
    assert DOC_PATH.read_text() == render(), "docs/openapi.json is stale: run `make openapi`"


def test_openapi_document_describes_both_routes_and_errors() -> None:
    document = json.loads(render())
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert {"200", "400", "401", "404", "413", "429", "502", "503"} <= set(chat["responses"])
    assert "/v1/models" in document["paths"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
