"""A POST body that is not JSON gets a 415 OpenAI error, never a 500 (found by the schemathesis fuzz run)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handlers.gateway import _unsupported_media_type


def _event(method: str, headers: dict[str, str] | None) -> dict[str, Any]:
    return {"httpMethod": method, "headers": headers, "requestContext": {"requestId": "req-1"}, "body": "{}"}


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", "application/jsonx"],
)
def test_non_json_post_is_refused_with_415(content_type: str) -> None:
    response = _unsupported_media_type(_event("POST", {"content-type": content_type}))
    assert response is not None
    assert response["statusCode"] == 415
    assert response["headers"]["x-switchboard-request-id"] == "req-1"
    error = json.loads(response["body"])["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "unsupported_media_type"
    assert content_type in error["message"]


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("POST", {"Content-Type": "application/json"}),
        ("POST", {"Content-Type": "application/json; charset=utf-8"}),
        ("POST", {}),
        ("POST", None),
        ("GET", {"Content-Type": "text/plain"}),
    ],
)
def test_json_or_bodyless_requests_go_through(method: str, headers: dict[str, str] | None) -> None:
    assert _unsupported_media_type(_event(method, headers)) is None
