"""Gateway error vocabulary.

Two families: `ProviderError` (what went wrong talking to a model, classified so the workflow can
decide retry / count / skip) and `ApiError` (what the caller sees: an OpenAI-style body and status).
They are translated to HTTP in exactly one place, the gateway handler.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from switchboard.contract import errors as catalogue
from switchboard.contract.errors import ErrorSpec


class ErrorClass(StrEnum):
    """Provider failure classes; the circuit breaker and the ASL decide on these names."""

    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    BAD_REQUEST = "bad_request"
    CONTENT_FILTERED = "content_filtered"
    CONTEXT_TOO_LONG = "context_too_long"
    MALFORMED = "malformed"
    UNSUPPORTED = "unsupported"
    """The option cannot do what the request needs (tools, images, a JSON schema, token input):
    a client error that moves to the next candidate only when the route's variant says
    `skip_unsupported`, and never counts against the circuit."""
    SATURATED = "saturated"
    """The option has used its `capacity` (rpm/tpm share of the provider quota) this minute: no
    call was made; the candidate is skipped like an open circuit (workflow state `Saturated_Skip`)
    and nothing counts against its circuit. Not a client error: the next candidate may answer."""

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
        return self in (
            ErrorClass.BAD_REQUEST,
            ErrorClass.CONTENT_FILTERED,
            ErrorClass.CONTEXT_TOO_LONG,
            ErrorClass.UNSUPPORTED,
        )


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
    """An error the caller sees, rendered as `{"error": {"message", "type", "param", "code"}}`.

    Status, type and code come from one entry of the catalogue (`switchboard.contract.errors`),
    the same one API Gateway's gateway responses render: a subclass names its default entry and
    `code=` picks another one (a code nobody declared is a KeyError, caught by the tests).
    """

    spec: ErrorSpec = catalogue.INVALID_REQUEST

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code is not None:
            self.spec = catalogue.by_code(code)
        self.message = self.spec.message if message is None else message
        super().__init__(self.message)
        self.param = param
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.spec.status

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def code(self) -> str:
        return self.spec.code

    def body(self) -> dict[str, Any]:
        return self.spec.body(self.message, param=self.param)


class InvalidRequest(ApiError):
    spec = catalogue.INVALID_REQUEST


class Unauthorized(ApiError):
    spec = catalogue.INVALID_API_KEY


class Forbidden(ApiError):
    spec = catalogue.ROUTE_NOT_ALLOWED


class UnknownPath(ApiError):
    spec = catalogue.UNKNOWN_PATH


class RouteNotFound(ApiError):
    spec = catalogue.MODEL_NOT_FOUND


class PayloadTooLarge(ApiError):
    spec = catalogue.REQUEST_TOO_LARGE


class UnsupportedMediaType(ApiError):
    spec = catalogue.UNSUPPORTED_MEDIA_TYPE


class InternalError(ApiError):
    spec = catalogue.INTERNAL_ERROR


class UpstreamFailed(ApiError):
    spec = catalogue.UPSTREAM_FAILED


class ServiceUnavailable(ApiError):
    spec = catalogue.NO_HEALTHY_OPTION

    def __init__(self, message: str | None = None, *, retry_after_s: int = 5, **kwargs: Any) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after_s)))}
        headers.update(kwargs.pop("headers", None) or {})
        super().__init__(message, headers=headers, **kwargs)
