"""The error catalogue: every error a client can get, once, in OpenAI's error shape.

Both renderers read this: the gateway Lambda (``switchboard.errors.ApiError`` and its subclasses)
and API Gateway's gateway responses plus the WAF's 413 body (``infra/constructs/api.py``), so a 401
or a 404 reads the same whoever answers it. Conventions follow OpenAI's API: ``type`` is
``invalid_request_error`` (4xx about the request), ``authentication_error`` (401),
``permission_error`` (403), ``rate_limit_error`` / ``insufficient_quota`` (429) or ``server_error``
(5xx); ``code`` is a stable snake_case name clients may branch on.

Stdlib only: infra (CDK), the local stack and the handlers all import this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from switchboard.limits import MAX_REQUEST_BODY_BYTES

INVALID_REQUEST_ERROR: Final = "invalid_request_error"
AUTHENTICATION_ERROR: Final = "authentication_error"
PERMISSION_ERROR: Final = "permission_error"
RATE_LIMIT_ERROR: Final = "rate_limit_error"
INSUFFICIENT_QUOTA_ERROR: Final = "insufficient_quota"
SERVER_ERROR: Final = "server_error"


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One error: its HTTP status, OpenAI ``type`` and ``code``, and the message used by default."""

    status: int
    type: str
    code: str
    message: str

    def body(self, message: str | None = None, *, param: str | None = None) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message if message is None else message,
                "type": self.type,
                "param": param,
                "code": self.code,
            }
        }

    def json(self, message: str | None = None) -> str:
        """:meth:`body` as compact JSON (the WAF's custom response body)."""
        return json.dumps(self.body(message), separators=(",", ":"))


def _spec(status: int, type_: str, code: str, message: str) -> ErrorSpec:
    return ErrorSpec(status, type_, code, message)


# --- 400 -----------------------------------------------------------------------------------------
INVALID_REQUEST = _spec(400, INVALID_REQUEST_ERROR, "invalid_request", "Invalid request.")
INVALID_REQUEST_BODY = _spec(
    400,
    INVALID_REQUEST_ERROR,
    "invalid_request_body",
    "Invalid request body: 'model' (a string) and 'messages' (a non-empty array) are required.",
)
INVALID_JSON = _spec(400, INVALID_REQUEST_ERROR, "invalid_json", "The body is not valid JSON.")
INVALID_UNICODE = _spec(400, INVALID_REQUEST_ERROR, "invalid_unicode", "The body is not valid Unicode text.")
JSON_TOO_LARGE = _spec(400, INVALID_REQUEST_ERROR, "json_too_large", "A JSON value in the body is too large.")
JSON_TOO_DEEP = _spec(400, INVALID_REQUEST_ERROR, "json_too_deep", "The body's JSON is nested too deeply.")
JSON_NUMBER_OUT_OF_RANGE = _spec(
    400, INVALID_REQUEST_ERROR, "json_number_out_of_range", "A number in the body is out of range."
)
JSON_DUPLICATE_KEY = _spec(400, INVALID_REQUEST_ERROR, "json_duplicate_key", "A JSON object repeats a key.")
STREAM_NOT_SUPPORTED = _spec(
    400,
    INVALID_REQUEST_ERROR,
    "stream_not_supported",
    "Streaming is not offered yet: send the request with `stream` false or absent.",
)
PROVIDER_REJECTED_REQUEST = _spec(
    400, INVALID_REQUEST_ERROR, "provider_rejected_request", "The model rejected the request."
)
CONTEXT_LENGTH_EXCEEDED = _spec(
    400, INVALID_REQUEST_ERROR, "context_length_exceeded", "The request is longer than the model's context."
)
UNSUPPORTED_FEATURE = _spec(
    400,
    INVALID_REQUEST_ERROR,
    "unsupported_feature",
    "No model behind this route can do what the request needs (tools, images or a response format).",
)
WRONG_ROUTE_KIND = _spec(
    400,
    INVALID_REQUEST_ERROR,
    "wrong_route_kind",
    "This route serves another kind of request (chat completions or embeddings).",
)
CONTENT_FILTER = _spec(400, INVALID_REQUEST_ERROR, "content_filter", "The model's content filter refused it.")
# --- 401 / 403 -----------------------------------------------------------------------------------
INVALID_API_KEY = _spec(
    401,
    AUTHENTICATION_ERROR,
    "invalid_api_key",
    "Missing or invalid API key. Send 'Authorization: Bearer <key>'.",
)
ROUTE_NOT_ALLOWED = _spec(403, PERMISSION_ERROR, "route_not_allowed", "This API key may not use this route.")
ACCESS_DENIED = _spec(403, PERMISSION_ERROR, "access_denied", "This API key may not call this route.")
USAGE_PLAN_KEY_INVALID = _spec(
    403,
    PERMISSION_ERROR,
    "usage_plan_key_invalid",
    "The API key is not valid for this API.",
)
"""API Gateway's INVALID_API_KEY: the usage-plan key the authorizer named is not on this API."""
REQUEST_BLOCKED = _spec(
    403, PERMISSION_ERROR, "request_blocked", "The request was blocked by the API's web application firewall."
)
# --- 404 / 413 / 415 / 429 -----------------------------------------------------------------------
ROUTES_HINT: Final = "The API serves POST /v1/chat/completions, POST /v1/embeddings and GET /v1/models."
UNKNOWN_PATH = _spec(404, INVALID_REQUEST_ERROR, "unknown_path", f"Unknown path or method. {ROUTES_HINT}")
MODEL_NOT_FOUND = _spec(
    404, INVALID_REQUEST_ERROR, "model_not_found", "The model does not exist or you do not have access to it."
)
REQUEST_TOO_LARGE = _spec(
    413,
    INVALID_REQUEST_ERROR,
    "request_too_large",
    f"Request body too large: the limit is {MAX_REQUEST_BODY_BYTES} bytes.",
)
"""The gateway function, the WAF rule in front of it and API Gateway's own 413 say the same."""
UNSUPPORTED_MEDIA_TYPE = _spec(
    415,
    INVALID_REQUEST_ERROR,
    "unsupported_media_type",
    "Unsupported media type: send the body as 'Content-Type: application/json'.",
)
RATE_LIMIT_EXCEEDED = _spec(
    429,
    RATE_LIMIT_ERROR,
    "rate_limit_exceeded",
    "Rate limit reached for this API key. Retry after a short wait.",
)
QUOTA_EXCEEDED = _spec(
    429, INSUFFICIENT_QUOTA_ERROR, "insufficient_quota", "Request quota exceeded for this API key."
)
# --- 5xx -----------------------------------------------------------------------------------------
INTERNAL_ERROR = _spec(500, SERVER_ERROR, "internal_error", "Internal error. It has been logged.")
AUTHORIZER_FAILURE = _spec(
    500, SERVER_ERROR, "authorizer_failure", "The key check failed. Retry the request."
)
WORKFLOW_UNAVAILABLE = _spec(502, SERVER_ERROR, "workflow_unavailable", "The request workflow could not run.")
WORKFLOW_FAILED = _spec(502, SERVER_ERROR, "workflow_failed", "The request workflow failed.")
UPSTREAM_FAILED = _spec(502, SERVER_ERROR, "upstream_failed", "The request could not be completed upstream.")
NO_HEALTHY_OPTION = _spec(
    503, SERVER_ERROR, "no_healthy_option", "No model behind the route could answer right now. Retry later."
)
ROUTING_UNAVAILABLE = _spec(
    503, SERVER_ERROR, "routing_unavailable", "Routing configuration is unavailable right now; retry shortly."
)
GATEWAY_TIMEOUT = _spec(
    504, SERVER_ERROR, "gateway_timeout", "The gateway did not answer in time. Retry the request."
)
INTEGRATION_FAILURE = _spec(
    504, SERVER_ERROR, "integration_failure", "The gateway could not be reached. Retry the request."
)

CATALOGUE: Final[Mapping[str, ErrorSpec]] = {
    spec.code: spec for spec in list(globals().values()) if isinstance(spec, ErrorSpec)
}
"""Every error by ``code``: a code names exactly one status and type."""


def by_code(code: str) -> ErrorSpec:
    """The catalogue entry for ``code``; KeyError names a code nobody declared."""
    try:
        return CATALOGUE[code]
    except KeyError:
        raise KeyError(f"error code {code!r} is not in switchboard.contract.errors") from None
