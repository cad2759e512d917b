"""The gateway's wiring and its streamed-request seam, without the whole-request HTTP layer.

`handlers.gateway` (the Python runtime's handler: whole requests through Powertools'
``APIGatewayRestResolver`` with OpenAPI validation) and `handlers.gateway_http` (the Lambda Web
Adapter entrypoint, which serves streams) share what is here: the service built once per execution
environment (:func:`chat_service`, :func:`stream_service`) and :func:`open_stream`. A streamed
request never touches the resolver, so this module does not import it (about 115 ms of a cold
start: the event handler, its OpenAPI models and validation); `handlers.gateway` re-exports these
names, which remain its public seams.
"""

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from switchboard import after_response
from switchboard.api_models import ChatCompletionRequest
from switchboard.background_refresh import HeldRefreshes
from switchboard.chat import Caller, ChatService
from switchboard.contract import metrics as metric_names
from switchboard.errors import ApiError, InternalError, UnsupportedMediaType
from switchboard.media_type import parse_media_type
from switchboard.observability import invocation_keys, logger, metrics, tracer
from switchboard.request_json import UnacceptableJson, parse_request_json

if TYPE_CHECKING:  # imported on the first streamed request: whole requests never load it
    from switchboard.circuits.store import CircuitStore
    from switchboard.options.store import OptionsStore
    from switchboard.streaming import StreamAnswer, StreamService

JSON = "application/json"
FIRST_BYTE_GRACE_S = 0.02
"""How long after a stream's first byte is out the cache refreshes it asked for start: the first
chunk's way to the client (Lambda Web Adapter's proxy in AWS, on the same fraction of a vCPU)
goes first."""


@lru_cache(maxsize=1)
def _service() -> ChatService:
    """Built once per execution environment, on first use (so the cold start pays only once)."""
    from switchboard import aws
    from switchboard.events import powertools_sink
    from switchboard.http_pool import KeepAliveOpener
    from switchboard.payloads import PayloadStore
    from switchboard.routing.agent_client import RoutingFlags
    from switchboard.routing.profile_client import reader_for_gateway
    from switchboard.settings import GatewaySettings
    from switchboard.workflow import PollingRunner, SyncExpressRunner, WorkflowRunner

    settings = GatewaySettings.from_env()
    on_event = powertools_sink()  # one sink: every fail-open event is a metric the alarms read
    sfn = aws.client("stepfunctions")
    runner: WorkflowRunner
    if settings.workflow_mode == "sync":
        runner = SyncExpressRunner(sfn, settings.state_machine_arn)
    else:
        runner = PollingRunner(sfn, settings.state_machine_arn)
    options = _options_store()
    agent = KeepAliveOpener()  # flags and profiles: two agent round trips a request, one connection
    return ChatService(
        routing=RoutingFlags(
            agent_url=settings.appconfig_agent_url,
            application=settings.appconfig_application,
            environment=settings.appconfig_environment,
            profile=settings.appconfig_profile,
            default_routes=settings.default_routes,
            opener=agent,
            on_event=on_event,
        ),
        options=options,
        runner=runner,
        payloads=PayloadStore(settings.payload_bucket),
        circuits=circuit_store(),
        budget_ms=settings.request_budget_ms,
        stream_budget_ms=settings.stream_budget_ms,
        on_event=on_event,
        profiles=reader_for_gateway(settings, on_event=on_event, opener=agent),
        slis=on_event,
        **_accounting(
            settings.usage_table,
            options,
            on_event,
            quota_settings_stale_s=settings.quota_settings_stale_s,
        ),
    )


@lru_cache(maxsize=1)
def _options_store() -> "OptionsStore":
    """This environment's options catalogue, one cache for everything the gateway reads from it:
    the planner, the streaming path's breaker policies, metering's prices."""
    from switchboard.background_refresh import stale_window
    from switchboard.events import powertools_sink
    from switchboard.options.store import OptionsStore
    from switchboard.settings import GatewaySettings

    settings = GatewaySettings.from_env()
    return OptionsStore(
        settings.options_table,
        ttl_s=settings.options_cache_ttl_s,
        stale_s=stale_window(settings.options_cache_ttl_s, settings.options_cache_stale_s),
        on_event=powertools_sink(),
    )


@lru_cache(maxsize=1)
def circuit_store() -> "CircuitStore | None":
    """This environment's one circuit store, read by both services: the planner's `Retry-After`
    and the streaming path's breaker (a whole request's circuits are the workflow's tasks).

    Its reads are cached for `CIRCUIT_CACHE_TTL_S`, then served for a stale window while one
    background read per circuit refreshes them, so a stream landing on an expiry does not wait for
    DynamoDB. Its own transitions are cached at once, and every transition reads consistently. One
    store, not one per service: two caches of the same circuits would each pay the reads, and each
    see the other's transitions only once its own cache expired."""
    from switchboard.background_refresh import stale_window
    from switchboard.circuits.service import CircuitSettings
    from switchboard.circuits.store import CircuitStore
    from switchboard.events import powertools_sink
    from switchboard.settings import GatewaySettings

    settings = GatewaySettings.from_env()
    if not settings.circuit_table:
        return None
    breaker = CircuitSettings.from_env()
    return CircuitStore(
        settings.circuit_table,
        on_event=powertools_sink(),
        lease_s=breaker.probe_lease_s,
        cache_ttl_s=breaker.cache_ttl_s,
        cache_stale_s=stale_window(breaker.cache_ttl_s, settings.circuit_cache_stale_s),
    )


def _accounting(
    usage_table: str | None,
    options: Any,
    on_event: Any,
    quota_settings_stale_s: float | None = 0.0,
    **quota_options: Any,
) -> dict[str, Any]:
    """Quotas and metering on the usage table (issue 15; `switchboard.accounting` says which round
    trips they add); nothing without the table. One DynamoDB client for both. `quota_options` go to
    `TenantQuotas` (its clock and settings cache; the end-to-end tests pin the minute with them);
    `quota_settings_stale_s` is the setting of that name (None: twice the settings cache)."""
    if not usage_table:
        return {}
    from switchboard import aws
    from switchboard.accounting import catalogue_prices
    from switchboard.background_refresh import stale_window
    from switchboard.metering import Metering
    from switchboard.quotas.dynamo import DynamoUsageCounters
    from switchboard.quotas.service import SETTINGS_TTL_S, TenantQuotas
    from switchboard.usage_store import DynamoUsageStore

    ttl_s = quota_options.get("settings_ttl_s", SETTINGS_TTL_S)
    quota_options.setdefault("settings_stale_s", stale_window(ttl_s, quota_settings_stale_s))
    dynamodb = aws.client("dynamodb")
    return {
        "quotas": TenantQuotas(DynamoUsageCounters(usage_table, client=dynamodb), **quota_options),
        "metering": Metering(
            DynamoUsageStore(usage_table, client=dynamodb),
            price_of=catalogue_prices(options, on_event),
            on_event=on_event,
        ),
        # After the response in AWS (the after-response extension), inline elsewhere.
        "run_writes": after_response.DeferredWrites(after_deferred=_publish_late_metrics),
    }


def chat_service() -> ChatService:
    """This execution environment's service, built on first use (tests inspect its wiring)."""
    return _service()


@lru_cache(maxsize=1)
def stream_service() -> "StreamService":
    """The streamed-request use case over the same planner (`ChatService`), circuit table, options
    and answer cache as the workflow; providers called here, in this process."""
    from switchboard.adapter_routing import dynamo_adapter_router
    from switchboard.answer_cache import DynamoAnswerCache
    from switchboard.capacity import capacity_counters
    from switchboard.circuits.service import CircuitService
    from switchboard.events import powertools_sink
    from switchboard.options.model import ProviderKind
    from switchboard.payloads import PayloadStore
    from switchboard.providers.registry import provider_for
    from switchboard.settings import GatewaySettings
    from switchboard.streaming import StreamService
    from switchboard.tracing import xray_subsegments

    settings = GatewaySettings.from_env()
    events = powertools_sink()
    store = circuit_store()  # the planner's: one cache and one background refresh per circuit
    circuits = CircuitService(store, _options_store()) if store is not None else None
    override = ProviderKind(settings.provider_override) if settings.provider_override else None

    def providers(kind: ProviderKind) -> object:
        return provider_for(kind, override=override)

    return StreamService(
        planner=_service(),
        circuits=circuits,
        providers=providers,
        payloads=PayloadStore(settings.payload_bucket),
        events=events,
        cache=DynamoAnswerCache(settings.answer_cache_table) if settings.answer_cache_table else None,
        capacity=capacity_counters(settings.usage_table) if settings.usage_table else None,
        tracing=xray_subsegments(tracer),  # subsegments per candidate when the X-Ray SDK is on
        adapters=dynamo_adapter_router(
            settings.adapters_table, ttl_s=settings.options_cache_ttl_s, on_event=events
        ),
    )


def forget_cached_state() -> None:
    """Behave as a fresh execution environment: the next request builds clients and caches anew."""
    _service.cache_clear()
    stream_service.cache_clear()
    circuit_store.cache_clear()
    _options_store.cache_clear()


def open_stream(event: dict[str, Any]) -> "StreamAnswer | None":
    """A streamed chat request (an API Gateway proxy event) as a stream, or None when it is not one.

    None for anything but a well-formed, authorized `POST /v1/chat/completions` with `stream: true`
    and a JSON body: `handler` answers those as before. An error decided before the first byte
    (400, 403, 404, 503 with Retry-After) comes back as a one-chunk JSON answer. Metrics are flushed
    when the stream ends (no `log_metrics` decorator wraps a generator).
    """
    from switchboard.streaming import StreamAnswer

    if event.get("httpMethod") != "POST" or event.get("path") != "/v1/chat/completions":
        return None
    if _unsupported_media_type(event) is not None:
        return None
    try:
        parsed = parse_request_json(str(event.get("body") or ""))
    except (UnacceptableJson, ValueError):
        return None
    if not isinstance(parsed, dict) or parsed.get("stream") is not True:
        return None
    try:
        body = ChatCompletionRequest.model_validate(parsed)
    except ValueError:  # pydantic's ValidationError: `handler` renders the same 400 as for any body
        return None
    context = ((event.get("requestContext") or {}).get("authorizer")) or {}
    caller = Caller.from_authorizer(context)
    if caller is None:
        return None
    request_id = str((event.get("requestContext") or {}).get("requestId") or "local")
    metrics.add_metric(name=metric_names.CHAT_COMPLETIONS, unit=MetricUnit.Count, value=1)
    # The cache refreshes this request asks for start once its first byte is out (see
    # `switchboard.background_refresh`), or now when it is refused.
    held = HeldRefreshes(grace_s=FIRST_BYTE_GRACE_S)
    try:
        with invocation_keys(request_id=request_id), held:
            answer = stream_service().open(body, caller, request_id)
    except Exception as exc:
        held.release()
        if not isinstance(exc, ApiError):
            with invocation_keys(request_id=request_id):
                logger.exception("unexpected error opening a stream")
            metrics.add_metric(name=metric_names.UNEXPECTED_ERRORS, unit=MetricUnit.Count, value=1)
            exc = InternalError(f"Internal error (request id {request_id}). It has been logged.")
        elif exc.status >= 500:
            logger.warning("stream refused", extra={"status": exc.status, "code": exc.code})
        _flush_metrics()
        headers = {"content-type": JSON, "x-switchboard-request-id": request_id, **exc.headers}
        # The same compact body the buffered path's Powertools response carries.
        error_body = json.dumps(exc.body(), separators=(",", ":")).encode()
        return StreamAnswer(exc.status, headers, iter([error_body]))
    return StreamAnswer(answer.status, answer.headers, _Flushing(answer.chunks, request_id, held.release))


class _Flushing:
    """The chunks, each produced with the request id on every log line (only while it is produced:
    between chunks the thread may serve something else); metrics flushed at the end.

    ``first_byte_out`` runs when the next chunk is asked for after the first (so the first was
    written), or when the stream ends or is closed, whichever comes first. An iterator rather than
    a generator: closing one that never started must still run it and close ``chunks``.
    """

    def __init__(self, chunks: Any, request_id: str, first_byte_out: Any) -> None:
        self._chunks = chunks
        self._request_id = request_id
        self._first_byte_out = first_byte_out
        self._sent = False
        self._closed = False

    def __iter__(self) -> "_Flushing":
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        if self._sent:
            self._release_first_byte_out()
        try:
            with invocation_keys(request_id=self._request_id):
                chunk = next(self._chunks, None)
        except BaseException:
            self.close()
            raise
        if chunk is None:
            self.close()
            raise StopIteration
        self._sent = True
        chunk_bytes: bytes = chunk
        return chunk_bytes

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._release_first_byte_out()
            self._chunks.close()
        finally:
            _flush_metrics()

    def _release_first_byte_out(self) -> None:
        """Run ``first_byte_out`` the first time only."""
        first_byte_out, self._first_byte_out = self._first_byte_out, None
        if first_byte_out is not None:
            first_byte_out()


def _flush_metrics() -> None:
    try:
        metrics.flush_metrics()
    except Exception:  # observability never breaks the request path
        logger.exception("metrics flush failed")


def _publish_late_metrics() -> None:
    """After a whole request's deferred writes (the after-response extension): what they emitted
    (e.g. ``MeteringFailed``) would otherwise wait for the next invocation's flush."""
    if metrics.metric_set:
        _flush_metrics()


def _unsupported_media_type(event: dict[str, Any]) -> dict[str, Any] | None:
    """415 for a POST whose Content-Type is set and is not JSON, before Powertools parses the body.

    The API takes JSON only. Left to Powertools' validation, a multipart type without a boundary
    raises ValueError and any type other than JSON, form or multipart raises
    RequestUnsupportedContentType: both ended as a 500. An absent type counts as JSON, as it does
    for Powertools. The type is parsed (`switchboard.media_type`): `Application/JSON;
    charset=UTF-8` is JSON, `application/jsonx` is not. Powertools then tests for JSON with a
    case-sensitive prefix, so a JSON type is handed on in its canonical spelling.
    """
    if event.get("httpMethod") != "POST":
        return None
    headers = event.get("headers") or {}
    name = next((k for k in headers if k.lower() == "content-type"), None)
    content_type = str(headers[name]) if name is not None else ""
    if not content_type.strip():
        return None
    media = parse_media_type(content_type)
    if media is not None and media.essence == JSON:
        headers[name] = str(media)
        return None
    error = UnsupportedMediaType(
        f"Unsupported Content-Type {content_type.strip()[:100]!r}: send the body as application/json."
    )
    request_id = (event.get("requestContext") or {}).get("requestId") or "local"
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": JSON, "x-switchboard-request-id": str(request_id)},
        "body": json.dumps(error.body()),
    }
