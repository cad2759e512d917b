"""Gateway error vocabulary.

Two families: `ProviderError` (what went wrong talking to a model, classified so the workflow can
decide retry / count / skip) and `ApiError` (what the caller sees: an OpenAI-style body and status).
They are translated to HTTP in exactly one place, the gateway handler.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorClass(StrEnum):
    """Provider failure classes; the circuit breaker and the ASL decide on these names."""

    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    BAD_REQUEST = "bad_request"
    CONTENT_FILTERED = "content_filtered"
    CONTEXT_TOO_LONG = "context_too_long"
    MALFORMED = "malformed"

    @property
    def counts_against_circuit(self) -> bool:
        """Client-side problems say nothing about the provider's health."""
        return self in (
            ErrorClass.THROTTLED,
            ErrorClass.TIMEOUT,
            ErrorClass.UNAVAILABLE,
            ErrorClass.MALFORMED,
        )

    @property
    def is_client_error(self) -> bool:
        return self in (ErrorClass.BAD_REQUEST, ErrorClass.CONTENT_FILTERED, ErrorClass.CONTEXT_TOO_LONG)


class ProviderError(Exception):
    """A provider call failed; `error_class` decides what the workflow does next."""

    def __init__(self, error_class: ErrorClass, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, Any]:
        """What the workflow state carries: the message clipped (see ``state_budget``)."""
        from switchboard.state_budget import clip_message

        return {"error_class": self.error_class.value, "message": clip_message(self.message)}


class ApiError(Exception):
    """An error the caller sees, rendered as `{"error": {"message", "type", "code"}}`."""

    status: int = 400
    type: str = "invalid_request_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(ApiError):
    status = 403
    type = "permission_error"
    code = "route_not_allowed"


class RouteNotFound(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(ApiError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"


class UpstreamFailed(ApiError):
    status = 502
    type = "api_error"
    code = "upstream_failed"


class ServiceUnavailable(ApiError):
    status = 503
    type = "api_error"
    code = "no_healthy_option"

    def __init__(self, message: str, *, retry_after_s: int = 5, **kwargs: Any) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after_s)))}
        headers.update(kwargs.pop("headers", None) or {})
        super().__init__(message, headers=headers, **kwargs)
