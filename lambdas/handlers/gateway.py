"""`gateway` Lambda: the OpenAI-compatible API behind API Gateway (REST, Lambda proxy).

Wiring only: parse and validate (Powertools event handler), call `ChatService`, map the answer
or the error to HTTP. Every error leaves here as an OpenAI-style JSON body.

Streamed requests (`stream: true`) cannot go through `handler` (the workflow answers whole): an
HTTP layer that can stream (the local front door; in AWS the response-streaming entrypoint) asks
:func:`open_stream` first, which serves a valid streamed chat request through `StreamService` and
returns None for everything else, which then goes to `handler` as before (and an invalid streamed
body gets the same 400 as any invalid body there).

The wiring (the service built once per execution environment) and the stream seam live in
`handlers.gateway_wiring`, which does not import the resolver below: the streaming entrypoint
(`handlers.gateway_http`) serves a stream without loading it. They are re-exported here.
"""

import json
import os
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

# The wiring and the stream seam (re-exported: tests and the local front door call them here).
from handlers.gateway_wiring import (
    JSON,
    _accounting,
    _publish_late_metrics,
    _service,
    _unsupported_media_type,
    chat_service,
    forget_cached_state,
    open_stream,
    stream_service,
)
from switchboard import after_response
from switchboard.api_models import (
    ChatCompletion,
    ChatCompletionRequest,
    EmbeddingList,
    EmbeddingsRequest,
    ErrorBody,
    ModelCard,
    ModelList,
)
from switchboard.chat import Caller, ChatAnswer
from switchboard.contract import metrics as metric_names
from switchboard.contract.errors import ROUTES_HINT
from switchboard.contract.handlers import HANDLER_GATEWAY
from switchboard.errors import (
    ApiError,
    InternalError,
    InvalidRequest,
    PayloadTooLarge,
    Unauthorized,
    UnknownPath,
)
from switchboard.limits import MAX_REQUEST_BODY_BYTES
from switchboard.observability import keys_from_event, logger, metrics, tracer
from switchboard.request_json import UnacceptableJson, parse_request_json
from switchboard.selfcheck import is_selfcheck

__all__ = [
    "JSON",
    "_accounting",
    "_publish_late_metrics",
    "_service",
    "_unsupported_media_type",
    "app",
    "chat_service",
    "forget_cached_state",
    "handler",
    "open_stream",
    "stream_service",
]

if os.environ.get("_HANDLER") == HANDLER_GATEWAY:
    # This module is the Python runtime's handler: register the after-response extension now, during
    # init (under Lambda Web Adapter, handlers.gateway_http registers it before it listens).
    after_response.start_from_env()

# Bodies are parsed by the bounded parser, not json.loads: hostile JSON (deep nesting, huge numbers,
# NaN, repeated keys, lone surrogates) is a 400 that names the problem, never a 500.
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=parse_request_json)


def _request_id() -> str:
    return app.current_event.request_context.request_id or "local"


def _caller() -> Caller:
    """Tenant and tier as the REQUEST authorizer established them (its context values are strings)."""
    context = app.current_event.request_context.authorizer.get_context() or {}
    tenant, tier = context.get("tenant"), context.get("tier")
    if not tenant or not tier:
        raise Unauthorized("Missing or unknown API key. Send `Authorization: Bearer <key>`.")
    routes = context.get("allowed_routes") or ""
    allowed = tuple(r for r in str(routes).split(",") if r) or None
    return Caller(tenant=str(tenant), tier=str(tier), key_id=context.get("key_id"), allowed_routes=allowed)


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    merged = {"x-switchboard-request-id": _request_id(), **(headers or {})}
    return Response(status_code=status, content_type=JSON, body=body, headers=merged)


def _routed_responses(answer: str, model: type[Any]) -> dict[int, Any]:
    """The statuses of an endpoint that routes through the workflow (the OpenAPI document's)."""

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {JSON: {"model": ErrorBody}}}

    return {
        200: {"description": answer, "content": {JSON: {"model": model}}},
        400: error("Invalid request"),
        401: error("Missing or unknown API key"),
        404: error("Unknown route"),
        413: error("Body too large"),
        415: error("Body is not application/json"),
        429: error("Throttled"),
        502: error("Workflow failure"),
        503: error("No healthy option; see Retry-After"),
    }


@app.post(
    "/v1/chat/completions",
    summary="Create a chat completion",
    description="OpenAI-compatible. `model` names a Switchboard route alias; the option that answered "
    "is in the `x-switchboard-option` header.",
    responses=_routed_responses("Completion", ChatCompletion),
    tags=["chat"],
)
@tracer.capture_method
def chat_completions(body: Annotated[ChatCompletionRequest, Body()]) -> Response[ChatCompletion]:
    # Every authorized, well-formed request counts: the degraded-answer rate alarm divides by it.
    answer = _routed(
        metric_names.CHAT_COMPLETIONS, lambda caller: _service().complete(body, caller, _request_id())
    )
    return _json_response(200, answer.completion.to_json(), answer.headers)


@app.post(
    "/v1/embeddings",
    summary="Create embeddings",
    description="OpenAI-compatible. `model` names an embeddings route (`kind: embeddings` in "
    "GET /v1/models); `encoding_format` `base64` (the official SDKs' default) carries each vector as "
    "little-endian float32 bytes.",
    responses=_routed_responses("Embeddings", EmbeddingList),
    tags=["embeddings"],
)
@tracer.capture_method
def embeddings(body: Annotated[EmbeddingsRequest, Body()]) -> Response[EmbeddingList]:
    answer = _routed(
        metric_names.EMBEDDINGS_REQUESTS, lambda caller: _service().embed(body, caller, _request_id())
    )
    return _json_response(200, answer.completion.to_json(), answer.headers)


def _routed(counter: str, serve: Callable[[Caller], ChatAnswer]) -> ChatAnswer:
    """Authorize, count the request (the degraded-rate alarm divides by these counts), serve it."""
    caller = _caller()
    metrics.add_metric(name=counter, unit=MetricUnit.Count, value=1)
    return serve(caller)


@app.get(
    "/v1/models",
    summary="List the route aliases this key may use",
    responses={
        200: {"description": "Routes", "content": {JSON: {"model": ModelList}}},
        401: {"description": "Missing or unknown API key", "content": {JSON: {"model": ErrorBody}}},
        # The usage plan throttles every method of the API, this one too.
        429: {"description": "Throttled", "content": {JSON: {"model": ErrorBody}}},
    },
    tags=["models"],
)
@tracer.capture_method
def list_models() -> Response[ModelList]:
    routes = _service().route_kinds(_caller())
    listing = ModelList(data=[ModelCard(id=name, kind=kind) for name, kind in routes.items()])  # type: ignore[arg-type]
    return _json_response(200, listing.model_dump(mode="json"))


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response[Any]:
    if exc.status >= 500:
        logger.error("request failed", extra={"status": exc.status, "code": exc.code}, exc_info=exc.__cause__)
    return _json_response(exc.status, exc.body(), exc.headers)


@app.exception_handler(UnacceptableJson)
def _unacceptable_json(exc: UnacceptableJson) -> Response[Any]:
    return _api_error(InvalidRequest(exc.message, code=exc.code, param=exc.param))


def _describe_validation(errors: list[Any]) -> tuple[str, str | None]:
    # A union (`content`: a string or parts) reports every branch: the branch that failed for a
    # reason beats the ones that failed only because the value has another type.
    ranked = sorted(
        errors, key=lambda e: str(e.get("type", "")).endswith("_type") or e.get("type") == "union_tag_invalid"
    )
    first = ranked[0] if ranked else {}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    where = ".".join(loc)
    message = str(first.get("msg", "invalid request"))
    extra = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return (f"Invalid `{where}`: {message}{extra}" if where else f"{message}{extra}"), where or None


@app.exception_handler(RequestValidationError)
def _validation_error(exc: RequestValidationError) -> Response[Any]:
    message, param = _describe_validation(list(exc.errors()))
    return _api_error(InvalidRequest(message, param=param))


@app.not_found
def _not_found(_exc: Exception) -> Response[Any]:
    event = app.current_event
    return _api_error(UnknownPath(f"Unknown path or method {event.http_method} {event.path}. {ROUTES_HINT}"))


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unexpected error")
    metrics.add_metric(name=metric_names.UNEXPECTED_ERRORS, unit=MetricUnit.Count, value=1)
    return _api_error(InternalError(f"Internal error (request id {_request_id()}). It has been logged."))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@keys_from_event(request_id="requestContext.requestId")  # the key the workflow's steps log with
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A whole request's after-answer writes wait for the response (switchboard.after_response);
    # the block's exit releases the extension, also when the request raises.
    with after_response.invocation(getattr(context, "aws_request_id", None), defer=True):
        return _handle(event, context)


def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        return _selfcheck()
    # In AWS the WAF refuses a declared length over the limit before this function runs; this
    # catches a body that arrived without one (switchboard.limits says what is left).
    if len(str(event.get("body") or "").encode("utf-8", "surrogatepass")) > MAX_REQUEST_BODY_BYTES:
        error = PayloadTooLarge()
        return {
            "statusCode": error.status,
            "headers": {"Content-Type": JSON},
            "body": json.dumps(error.body()),
        }
    unsupported = _unsupported_media_type(event)
    if unsupported is not None:
        return unsupported
    return app.resolve(event, context)


def _selfcheck() -> dict[str, Any]:
    """`switchboard doctor`: settings, first-use objects, versions, and what the extension serves."""
    from switchboard import selfcheck
    from switchboard.settings import GatewaySettings

    def extension() -> selfcheck.ExtensionProbe:
        settings = GatewaySettings.from_env()
        return selfcheck.ExtensionProbe(
            agent_url=settings.appconfig_agent_url,
            application=settings.appconfig_application,
            environment=settings.appconfig_environment,
            profile=settings.appconfig_profile,
        )

    return selfcheck.report("gateway", settings=GatewaySettings.from_env, init=_service, extension=extension)
