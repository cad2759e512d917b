"""Streamed chat completions (`stream: true`): failover that stays correct mid-stream.

The Express workflow cannot stream, so a streamed request walks the route's chain here, in the
gateway's process, with the same pieces the workflow uses: :meth:`ChatService.prepare` plans it
(chain, smaller chain, degrade policy, static answer, cache key per tenant, deadline), the
circuits are read as ``CheckCircuit`` reads them (an OPEN circuit is skipped until its
``open_until``, then a probe lease is taken through :class:`CircuitService`, as for a half-open
one) and every outcome is recorded through the same :class:`CircuitService` (Python owns the
transitions: one implementation).

**When the headers go out.** :meth:`StreamService.open` returns only once the stream is
committed: a candidate produced its first content delta (or finished), or the degrade policy
chose an answer. Until then every failure (a `ProviderError` of any class, a connection error,
no first token within the option's deadline, a first event that does not parse) moves on to the
next candidate invisibly (metric `StreamFailedOver`), and the errors decided before the first
byte (400, 403, 404, a 503 `reject` with Retry-After) are raised as `ApiError` for the caller to
render as JSON. So `x-switchboard-option` names the option that is answering, and
`x-switchboard-degraded` says when the degrade policy answers.

**After the first byte** a failure cannot be hidden: the client gets an error event
(`data: {"error": {...}}`, which the official SDKs raise as an exception) and no `data: [DONE]`
(metric `StreamFailedMidStream`); a provider stream that stops without a finish reason is such a
failure too, never a clean end. The outcome counts against the circuit either way; the breaker's
latency for a streamed call is its time to first token (the rest depends on the answer's length).

**No backoff before the first byte.** A throttled candidate (429, `ThrottlingException`) is a
failure like any other here: the walk moves to the next candidate at once. The workflow's invoke
step raises `ProviderThrottled` so that the state machine's Retry backs off and calls the same
option again; a streamed client is waiting for its first byte, and the next option is usually
faster than a backoff. The throttle still counts against the option's circuit.

**Reviewable.** Each streamed request leaves one structured log record (`streamed request`): the
request id, route, variant, each candidate tried with its circuit state and outcome, time to first
token, bytes sent and how the stream ended. No prompt or answer text. With a tracing port (the
gateway wires X-Ray's when the SDK is on), each candidate tried is an X-Ray subsegment
(`candidate <option id>`, annotated with the request id, route, option, outcome and circuit state)
and so is the degrade step (`degrade`), on the invocation's trace.

**Cached like whole answers.** A stream that ends cleanly (finish reason, answer checks passed) on
a route with ``cache_ttl_s`` is written to the answer cache after ``data: [DONE]``, as the
workflow's ``RememberAnswer`` writes it (same key, tenant, expiry, and a claim check when the answer
is large), so the degrade policy's ``cache`` step serves it to whole and streamed requests alike.
The write fails open: a metric (`StreamAnswerNotCached`), never a broken stream.

No boto3: routing, options, circuits, providers and the answer cache arrive as small interfaces.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain as chained
from typing import Any, Protocol

from switchboard.accounting import AnsweredUsage
from switchboard.adapter_routing import (
    ADAPTER_HEADER,
    BASE_LABEL,
    FALLBACK_ERRORS,
    NO_FAMILY,
    AdapterAttempt,
    AdapterRouter,
)
from switchboard.answers import check_chat_answer, unsupported_reason
from switchboard.api_models import ChatCompletionRequest
from switchboard.capacity import NOT_COUNTED, Admission, CapacityGuard, CapacityPort, saturated_message
from switchboard.chat import CLIENT_ERROR_CODES, Caller, ChatPlan, OptionCatalogue
from switchboard.circuits.policy import CircuitSnapshot, CircuitState
from switchboard.contract import errors as error_specs
from switchboard.contract import metrics as metric_names
from switchboard.errors import ErrorClass, InvalidRequest, ProviderError, ServiceUnavailable
from switchboard.events import Measurements
from switchboard.invoking import MIN_CALL_TIMEOUT_S, CircuitRecorder, result_key
from switchboard.options.model import BreakerPolicy, LlmOption, OptionStatus, ProviderKind
from switchboard.providers.base import (
    ChatRequest,
    ChatResult,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    ToolCall,
    ToolCallDelta,
)
from switchboard.state_budget import ANSWER_INLINE_LIMIT_BYTES

__all__ = [
    "DONE",
    "CachedAnswer",
    "CachedAnswers",
    "StreamAnswer",
    "StreamService",
    "TraceSpan",
    "Tracing",
    "sse_event",
]

DONE = b"data: [DONE]\n\n"
EVENT_STREAM = "text/event-stream"
FIRST_TOKEN_TIMEOUT_PARAM = "first_token_timeout_ms"  # noqa: S105 - a param name
IDLE_TIMEOUT_PARAM = "idle_timeout_ms"
PHASE_PRIMARY, PHASE_SMALLER, PHASE_FALLBACK = "primary", "smaller_model", "context_fallback"
# The classes that end a walk with a 400 (the workflow's ClientError_ReturnToCaller).
_CLIENT_ERRORS = frozenset(
    {ErrorClass.BAD_REQUEST, ErrorClass.CONTEXT_TOO_LONG, ErrorClass.CONTENT_FILTERED, ErrorClass.UNSUPPORTED}
)
_FALLBACK_ERRORS = frozenset({ErrorClass.CONTEXT_TOO_LONG, ErrorClass.CONTENT_FILTERED})


# -- ports


class StreamPlanner(Protocol):
    """What the stream asks of :class:`switchboard.chat.ChatService`: the plan, and the Retry-After."""

    @property
    def options(self) -> OptionCatalogue: ...

    def prepare(
        self, body: ChatCompletionRequest, caller: Caller, request_id: str, *, streaming: bool = False
    ) -> ChatPlan: ...

    def retry_after(self, chain: list[str], *, last_error_class: str | None = None) -> int: ...

    def settle(self, plan: ChatPlan, usage: AnsweredUsage | None) -> None: ...


class CircuitGate(CircuitRecorder, Protocol):
    """The circuit reads and writes of a walk (:class:`switchboard.circuits.service.CircuitService`):
    the invoke step's outcome recording, plus the reads and the probe lease the workflow's
    ``CheckCircuit`` and ``AcquireProbeLease`` states do for it."""

    def snapshot(self, option_id: str) -> CircuitSnapshot: ...

    def now(self) -> datetime: ...

    def acquire_probe(
        self, option_id: str, *, request_id: str, policy: BreakerPolicy | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CachedAnswer:
    """An answer the workflow cached: the option that gave it and its result (maybe a claim check)."""

    option_id: str
    result: dict[str, Any]


class CachedAnswers(Protocol):
    """The answer-cache table the workflow writes, read as its ``Degrade_CachedAnswer`` reads it and
    written as its ``RememberAnswer`` writes it."""

    def get(self, cache_key: str, *, tenant: str, now_epoch_s: int) -> CachedAnswer | None:
        """The fresh answer cached under the key for this tenant; None otherwise or when unreadable."""

    def put(
        self,
        cache_key: str,
        *,
        tenant: str,
        answer: dict[str, Any],
        option_id: str,
        route: str,
        expires_at: int,
    ) -> None:
        """Keep `answer` (a result, maybe a claim check) for this tenant until `expires_at` (epoch s).
        Raises when the write fails (the caller fails open)."""


class Payloads(Protocol):
    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]: ...

    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]: ...


class TraceSpan(Protocol):
    """One X-Ray subsegment, open: annotations are indexed (searchable in the X-Ray console)."""

    def annotate(self, key: str, value: str | int | float | bool) -> None: ...


class Tracing(Protocol):
    """Subsegments on the invocation's trace (``switchboard.tracing.XraySubsegments`` in the gateway)."""

    def subsegment(self, name: str) -> AbstractContextManager[TraceSpan]: ...


class StructuredLog(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


# -- the answer


@dataclass
class StreamAnswer:
    """What the HTTP layer sends: the status and headers first, then `chunks` as they come.

    `chunks` is a generator: iterate it to the end, or `close()` it when the client went away (the
    provider's connection is released and the outcome recorded).
    """

    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes]


def sse_event(data: Mapping[str, Any]) -> bytes:
    """One server-sent event carrying `data` as compact JSON."""
    return b"data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


@dataclass
class CandidateTried:
    option_id: str
    phase: str
    circuit: str
    outcome: str
    probe: bool = False
    error_class: str | None = None

    def to_log(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "option_id": self.option_id,
            "phase": self.phase,
            "circuit": self.circuit,
            "outcome": self.outcome,
        }
        if self.probe:
            entry["probe"] = True
        if self.error_class:
            entry["error_class"] = self.error_class
        return entry


@dataclass
class StreamRecord:
    """The one log record of a streamed request (no prompt or answer text)."""

    request_id: str
    route: str | None = None
    variant: str | None = None
    tenant: str | None = None
    candidates: list[CandidateTried] = field(default_factory=list)
    option_id: str | None = None
    degraded: str | None = None
    time_to_first_token_ms: int | None = None
    bytes_sent: int = 0
    chunks_sent: int = 0
    ended: str = "open"
    error_class: str | None = None

    def to_log(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "route": self.route,
            "variant": self.variant,
            "tenant": self.tenant,
            "candidates": [c.to_log() for c in self.candidates],
            "option_id": self.option_id,
            "degraded": self.degraded,
            "time_to_first_token_ms": self.time_to_first_token_ms,
            "bytes_sent": self.bytes_sent,
            "chunks_sent": self.chunks_sent,
            "ended": self.ended,
            "error_class": self.error_class,
        }


@dataclass
class _Live:
    """A committed provider stream: the deltas read so far and the rest of the iterator."""

    option: LlmOption
    phase: str
    probe: bool
    read: list[StreamDelta]
    rest: Iterator[StreamDelta]
    ttft_ms: int
    capacity: Admission = NOT_COUNTED
    """The option's capacity taken for this call, settled with the stream's final usage."""
    adapter: str | None = None
    """The tenant adapter answering (`x-switchboard-adapter`), None when the option has no family."""


@dataclass
class _Walk:
    """Where a walk over candidates ended without a live stream."""

    last_error: dict[str, Any] | None = None
    fallback: bool = False


class _ChunkWriter:
    """OpenAI's `chat.completion.chunk` objects for one answer, as SSE bytes."""

    def __init__(
        self, *, request_id: str, route: str, option_id: str, created: int, include_usage: bool
    ) -> None:
        self._base = {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": route,
            "system_fingerprint": f"switchboard:{option_id}",
        }
        self._include_usage = include_usage
        self._announced: set[int] = set()

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {**self._base, "choices": choices}
        if self._include_usage:
            body["usage"] = usage  # null on every chunk but the last, as OpenAI sends it
        return sse_event(body)

    def _choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    def role(self) -> bytes:
        return self._chunk(self._choice({"role": "assistant", "content": ""}))

    def content(self, delta: StreamDelta) -> bytes | None:
        piece: dict[str, Any] = {}
        if delta.text:
            piece["content"] = delta.text
        if delta.tool_calls:
            piece["tool_calls"] = [self._tool_call(call) for call in delta.tool_calls]
        return self._chunk(self._choice(piece)) if piece else None

    def _tool_call(self, call: ToolCallDelta) -> dict[str, Any]:
        entry: dict[str, Any] = {"index": call.index}
        function: dict[str, Any] = {}
        if call.index not in self._announced or call.id is not None:
            self._announced.add(call.index)
            entry["id"] = call.id or f"call_{call.index}"
            entry["type"] = "function"
            function["name"] = call.name or ""
        elif call.name:
            function["name"] = call.name
        function["arguments"] = call.arguments
        entry["function"] = function
        return entry

    def finish(self, finish_reason: str) -> bytes:
        return self._chunk(self._choice({}, finish_reason))

    def usage(self, usage: StreamUsage | None) -> bytes | None:
        if not self._include_usage:
            return None
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        counts: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if usage is not None and usage.cached_tokens is not None:
            counts["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
        if usage is not None and usage.reasoning_tokens is not None:
            counts["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
        return self._chunk([], counts)


def error_event(message: str, request_id: str) -> bytes:
    """The event that ends a stream cut after its first byte (the SDKs raise it as `APIError`)."""
    spec = error_specs.UPSTREAM_FAILED
    error = {
        "message": message,
        "type": spec.type,
        "param": None,
        "code": spec.code,
        "request_id": request_id,
    }
    return sse_event({"error": error})


class StreamService:
    """Serves `stream: true` chat completions (see the module docstring)."""

    def __init__(
        self,
        *,
        planner: StreamPlanner,
        circuits: CircuitGate | None,
        providers: Callable[[ProviderKind], object],
        payloads: Payloads,
        events: Measurements,
        cache: CachedAnswers | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        logger: StructuredLog | None = None,
        capacity: CapacityPort | None = None,
        tracing: Tracing | None = None,
        adapters: AdapterRouter | None = None,
    ) -> None:
        self._planner = planner
        self._adapters = adapters
        self._tracing = tracing
        self._circuits = circuits
        self._providers = providers
        self._payloads = payloads
        self._events = events
        self._cache = cache
        self._clock = clock
        self._monotonic = monotonic
        if logger is None:
            from switchboard.observability import logger as shared_logger

            logger = shared_logger
        self._logger = logger
        self._capacity = CapacityGuard(capacity, events)

    @property
    def capacity(self) -> CapacityGuard:
        """How candidates' capacity is taken (read-only: wiring checks in tests)."""
        return self._capacity

    def open(self, body: ChatCompletionRequest, caller: Caller, request_id: str) -> StreamAnswer:
        """Plan, walk the chain until a candidate's first content delta (or degrade), then stream.

        Raises the `ApiError` of an answer decided before the first byte: 400 (the request, or a
        model rejecting it), 403, 404, 503 (`reject`, with Retry-After).
        """
        started = self._monotonic()
        record = StreamRecord(request_id=request_id, tenant=caller.tenant)
        plan: ChatPlan | None = None
        try:
            plan = self._planner.prepare(body, caller, request_id, streaming=True)
            record.route, record.variant = plan.route, plan.variant
            self._events.count(metric_names.STREAMED_REQUESTS)
            answer = self._open(plan, body, record, started)
        except BaseException as exc:
            record.ended = f"refused:{getattr(exc, 'status', type(exc).__name__)}"
            self._log(record)
            if plan is not None:  # refused after planning: the reservation goes back
                self._planner.settle(plan, None)
            raise
        return answer

    # -- the walk

    def _open(
        self, plan: ChatPlan, body: ChatCompletionRequest, record: StreamRecord, started: float
    ) -> StreamAnswer:
        wf = plan.workflow_input
        request = ChatRequest.from_dict(wf["request"])
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        headers = {**plan.headers(), "content-type": EVENT_STREAM, "cache-control": "no-cache"}
        last_error: dict[str, Any] | None = None
        if not wf.get("force_degraded"):
            live, last_error = self._walk_with_fallback(
                plan, request, plan.chain, PHASE_PRIMARY, record, started
            )
            if live is not None:
                return self._stream(plan, live, headers, include_usage, record, started)
        return self._traced_degrade(plan, request, headers, include_usage, record, started, last_error)

    def _degrade(
        self,
        plan: ChatPlan,
        request: ChatRequest,
        headers: dict[str, str],
        include_usage: bool,
        record: StreamRecord,
        started: float,
        last_error: dict[str, Any] | None,
    ) -> StreamAnswer:
        """The variant's degrade policy, step by step, once the chain is exhausted (or forced)."""
        wf = plan.workflow_input
        for step in wf.get("degrade") or ["reject"]:
            if step == "smaller_model":
                chain = list(wf.get("smaller_chain") or [])
                live, error = self._walk_with_fallback(plan, request, chain, PHASE_SMALLER, record, started)
                last_error = error or last_error
                if live is not None:
                    headers["x-switchboard-degraded"] = "smaller_model"
                    self._events(f"{metric_names.DEGRADED_ANSWER_PREFIX}smaller_model", {"route": plan.route})
                    return self._stream(plan, live, headers, include_usage, record, started)
            elif step == "cache":
                cached = self._cached(plan)
                if cached is not None:
                    return self._short(
                        plan, "cache", cached[0], cached[1], headers, include_usage, record, started
                    )
            elif step == "static":
                text = wf.get("static_answer")
                if isinstance(text, str):
                    result = ChatResult(text=text, finish_reason="stop", prompt_tokens=0, completion_tokens=0)
                    return self._short(
                        plan, "static", "static", result, headers, include_usage, record, started
                    )
            elif step == "reject":
                break
        raise self._rejection(plan, last_error, headers)

    def _walk_with_fallback(
        self,
        plan: ChatPlan,
        request: ChatRequest,
        chain: list[str],
        phase: str,
        record: StreamRecord,
        started: float,
    ) -> tuple[_Live | None, dict[str, Any] | None]:
        """One chain, then the route's context fallback when a candidate asked for it."""
        live, walk = self._walk(plan, request, chain, phase, record, started)
        fallback = plan.workflow_input.get("context_fallback")
        if live is None and walk.fallback and isinstance(fallback, str):
            live, walk = self._walk(plan, request, [fallback], PHASE_FALLBACK, record, started)
        return live, walk.last_error

    def _walk(
        self,
        plan: ChatPlan,
        request: ChatRequest,
        chain: list[str],
        phase: str,
        record: StreamRecord,
        started: float,
    ) -> tuple[_Live | None, _Walk]:
        walk = _Walk()
        for option_id in chain:
            outcome = self._traced_try(plan, request, option_id, phase, record, started)
            if isinstance(outcome, _Live):
                return outcome, walk
            if outcome is None:  # skipped by its circuit
                continue
            walk.last_error = outcome.to_dict()
            error_class = outcome.error_class
            if (
                error_class in _FALLBACK_ERRORS
                and plan.workflow_input.get("context_fallback")
                and phase != PHASE_FALLBACK
            ):
                walk.fallback = True
                return None, walk
            if error_class is ErrorClass.UNSUPPORTED and plan.workflow_input.get("skip_unsupported"):
                continue
            if error_class in _CLIENT_ERRORS:
                raise self._client_error(plan, option_id, outcome)
        return None, walk

    def _try(
        self,
        plan: ChatPlan,
        request: ChatRequest,
        option_id: str,
        phase: str,
        record: StreamRecord,
        started: float,
    ) -> _Live | ProviderError | None:
        """One candidate: its circuit, then its stream up to the first content delta.

        Returns the live stream, the failure (already recorded on the circuit when it counts), or
        None when the circuit said to skip the candidate.
        """
        tried = CandidateTried(option_id=option_id, phase=phase, circuit="unknown", outcome="")
        record.candidates.append(tried)
        option = self._option(plan, option_id)
        if option is None or option.status is OptionStatus.RETIRED:
            tried.outcome = "not_in_catalogue"
            return self._failed(
                tried, ErrorClass.UNAVAILABLE, f"option {option_id} is not in the catalogue or retired"
            )
        tried.circuit, action = self._circuit(option, plan.request_id)
        tried.probe = action == "probe"
        if action.startswith("skipped"):
            tried.outcome = action
            return None
        why_not = unsupported_reason(option, request)
        if why_not is not None:
            self._events.option_count(metric_names.provider_error(ErrorClass.UNSUPPORTED.value), option.id)
            tried.outcome = "unsupported"
            return self._failed(tried, ErrorClass.UNSUPPORTED, why_not)
        remaining_s = (float(plan.workflow_input["deadline_ms"]) - self._clock() * 1000) / 1000
        if remaining_s < MIN_CALL_TIMEOUT_S:
            tried.outcome = "budget_spent"
            return self._failed(tried, ErrorClass.TIMEOUT, "request time budget spent before this candidate")
        stream = getattr(self._providers(option.provider), "stream", None)
        if stream is None:
            tried.outcome = "cannot_stream"
            return self._failed(
                tried, ErrorClass.UNAVAILABLE, f"{option.provider.value} options cannot stream yet"
            )
        deadlines = stream_deadlines(option, remaining_s)
        admission = self._capacity.admit(option, request)
        if admission.saturated:
            return self._saturated(tried, option, plan.request_id, admission)
        attempts = self._adapter_attempts(option, plan, request)
        call_started = self._monotonic()
        for index, attempt in enumerate(attempts):
            self._events.option_count(metric_names.PROVIDER_CALLS, option.id)
            iterator: Iterator[StreamDelta] | None = None
            read: list[StreamDelta] = []
            try:
                iterator = iter(stream(attempt.apply(option), request, deadlines))
                for delta in iterator:
                    if not isinstance(delta, StreamDelta):
                        raise ProviderError(
                            ErrorClass.MALFORMED, f"stream event of type {type(delta).__name__}"
                        )
                    read.append(delta)
                    if delta.has_content or delta.finish_reason is not None:
                        tried.outcome = "answered"
                        ttft_ms = int((self._monotonic() - started) * 1000)
                        return _Live(
                            option, phase, tried.probe, read, iterator, ttft_ms, admission, attempt.label
                        )
                raise ProviderError(
                    ErrorClass.MALFORMED, "the stream ended before any content or finish reason"
                )
            except Exception as exc:
                _close(iterator)
                error = _as_provider_error(exc)
                left_s = (float(plan.workflow_input["deadline_ms"]) - self._clock() * 1000) / 1000
                if (
                    index + 1 < len(attempts)
                    and error.error_class in FALLBACK_ERRORS
                    and left_s >= MIN_CALL_TIMEOUT_S
                ):
                    # The tenant's adapter failed before its first byte: its previous adapter, then the
                    # base, within this candidate (switchboard.adapter_routing).
                    self._events.option_count(metric_names.provider_error(error.error_class.value), option.id)
                    if self._adapters is not None:
                        self._adapters.fell_back(
                            option, plan.workflow_input.get("tenant"), attempt, error.error_class
                        )
                    deadlines = stream_deadlines(option, left_s)
                    continue
                return self._failed_before_first_token(plan, option, tried, admission, error, call_started)
        raise AssertionError("unreachable: there is always one attempt")  # pragma: no cover

    def _adapter_attempts(
        self, option: LlmOption, plan: ChatPlan, request: ChatRequest
    ) -> list[AdapterAttempt]:
        """The components to stream from for this candidate (`switchboard.adapter_routing`)."""
        if self._adapters is None:
            return [AdapterAttempt(None, BASE_LABEL) if option.adapter_family else NO_FAMILY]
        tenant = plan.workflow_input.get("tenant")
        return self._adapters.attempts(
            option, tenant=tenant if isinstance(tenant, str) else None, user=request.user
        )

    def _failed_before_first_token(
        self,
        plan: ChatPlan,
        option: LlmOption,
        tried: CandidateTried,
        admission: Admission,
        error: ProviderError,
        call_started: float,
    ) -> ProviderError:
        """The candidate failed before its first content byte: counted, recorded, the next one tried."""
        self._capacity.settle(admission, 0)
        latency_ms = int((self._monotonic() - call_started) * 1000)
        self._events.option_count(metric_names.provider_error(error.error_class.value), option.id)
        # Per option for the drill-down, per service for the dashboard's row.
        self._events.option_count(metric_names.STREAM_FAILED_OVER, option.id)
        self._events.count(metric_names.STREAM_FAILED_OVER)
        self._record(option, plan.request_id, tried.probe, error, latency_ms)
        tried.outcome, tried.error_class = "failed_before_first_token", error.error_class.value
        return error

    def _saturated(
        self, tried: CandidateTried, option: LlmOption, request_id: str, admission: Admission
    ) -> ProviderError:
        """The option used its capacity this minute: skipped without a call, like the workflow's
        `Saturated_Skip`; nothing counts on its circuit, but a probe lease this request took is
        handed back (an ignored outcome frees it, as the invoke step does)."""
        tried.outcome = ErrorClass.SATURATED.value
        error = self._failed(tried, ErrorClass.SATURATED, saturated_message(option.id, admission.limit))
        if tried.probe:
            self._record(option, request_id, True, error, 0)
        return error

    def _failed(self, tried: CandidateTried, error_class: ErrorClass, message: str) -> ProviderError:
        """A candidate that failed without a provider call (nothing recorded on its circuit)."""
        tried.error_class = error_class.value
        return ProviderError(error_class, message)

    def _option(self, plan: ChatPlan, option_id: str) -> LlmOption | None:
        option = plan.options.get(option_id)
        if option is not None:
            return option
        try:  # the catalogue was unreadable when planning: ask again, as the invoke step would
            return self._planner.options.get_many([option_id]).get(option_id)
        except Exception:
            self._events(metric_names.OPTIONS_CATALOGUE_UNAVAILABLE, {"option_id": option_id})
            return None

    def _circuit(self, option: LlmOption, request_id: str) -> tuple[str, str]:
        """The workflow's `CheckCircuit` / `CircuitState?` / `AcquireProbeLease`: (state, action).

        The state is the circuit's as read (`CLOSED`, `OPEN`, `HALF_OPEN`); the action is `call`,
        `probe` (a probe lease was granted), `skipped_open` (open until later) or
        `skipped_probe_busy` (another request holds the probe lease).
        """
        if self._circuits is None:
            return CircuitState.CLOSED.value, "call"
        snapshot = self._circuits.snapshot(option.id)  # CLOSED when unreadable (the store fails open)
        state, open_until = snapshot.state, snapshot.open_until
        if state is CircuitState.OPEN and open_until is not None and open_until > self._circuits.now():
            return state.value, "skipped_open"
        if state in (CircuitState.OPEN, CircuitState.HALF_OPEN):
            decision = self._circuits.acquire_probe(option.id, request_id=request_id, policy=option.breaker)
            return state.value, "probe" if decision.get("granted") else "skipped_probe_busy"
        return state.value, "call"

    def _record(
        self, option: LlmOption, request_id: str, probe: bool, error: ProviderError | None, latency_ms: int
    ) -> None:
        if self._circuits is None:
            return
        try:
            self._circuits.record(
                option.id,
                success=error is None,
                request_id=request_id,
                error_class=error.error_class.value if error else None,
                latency_ms=latency_ms,
                probe=probe,
                owner=request_id,
                message=error.message[:500] if error else None,
                policy=option.breaker,
            )
        except Exception:  # the store fails open on its own; a bug here must not break the stream
            self._logger.info(
                "circuit record failed", extra={"option_id": option.id, "request_id": request_id}
            )

    def _cached(self, plan: ChatPlan) -> tuple[str, ChatResult] | None:
        if self._cache is None:
            return None
        wf = plan.workflow_input
        try:
            hit = self._cache.get(
                str(wf["cache_key"]), tenant=str(wf["tenant"]), now_epoch_s=int(wf["now_epoch_s"])
            )
            if hit is None:
                return None
            return hit.option_id, ChatResult.from_dict(self._payloads.unwrap(hit.result))
        except Exception:  # an unreadable or foreign entry is a miss, as the workflow's Catch makes it
            return None

    def _remember(
        self, plan: ChatPlan, option: LlmOption, streamed: ChatResult, usage: StreamUsage | None
    ) -> None:
        """The workflow's ``ShouldCacheAnswer?`` / ``RememberAnswer`` for a stream that ended cleanly:
        the answer (its claim check when larger than the workflow keeps inline, under the invoke
        step's key) under the request's cache key, for its tenant, until ``cache_expires_at``.
        Called after ``[DONE]``; a failure is a metric, never an error event."""
        wf = plan.workflow_input
        tenant = wf.get("tenant")
        if self._cache is None or int(wf.get("cache_ttl_s") or 0) <= 0 or not isinstance(tenant, str):
            return
        if usage is not None:
            streamed = replace(
                streamed,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
        try:
            result = replace(streamed, model=option.model or "")
            answer = self._payloads.wrap(
                result_key(plan.request_id, option.id),
                result.to_dict(),
                inline_limit=ANSWER_INLINE_LIMIT_BYTES,
            )
            self._cache.put(
                str(wf["cache_key"]),
                tenant=tenant,
                answer=answer,
                option_id=option.id,
                route=plan.route,
                expires_at=int(wf["cache_expires_at"]),
            )
        except Exception as exc:  # the client has its answer: the cache only misses this one
            self._events(
                metric_names.STREAM_ANSWER_NOT_CACHED,
                {"route": plan.route, "option_id": option.id, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )

    # -- errors before the first byte

    def _client_error(self, plan: ChatPlan, option_id: str, error: ProviderError) -> InvalidRequest:
        headers = plan.headers()
        if error.error_class is ErrorClass.UNSUPPORTED:
            return InvalidRequest(
                f"No model behind route `{plan.route}` can do what this request needs: {error.message}",
                code="unsupported_feature",
                headers=headers,
            )
        headers["x-switchboard-option"] = option_id
        return InvalidRequest(
            f"The model rejected the request ({error.error_class.value}): {error.message}".strip(),
            code=CLIENT_ERROR_CODES.get(error.error_class.value, "provider_rejected_request"),
            headers=headers,
        )

    def _rejection(
        self, plan: ChatPlan, last_error: dict[str, Any] | None, headers: dict[str, str]
    ) -> ServiceUnavailable | InvalidRequest:
        json_headers = {k: v for k, v in headers.items() if k.startswith("x-switchboard-")}
        error_class = str((last_error or {}).get("error_class", "unavailable"))
        if error_class == ErrorClass.UNSUPPORTED.value:
            return InvalidRequest(
                f"No model behind route `{plan.route}` can do what this request needs: "
                f"{(last_error or {}).get('message', '')}".strip(),
                code="unsupported_feature",
                headers=json_headers,
            )
        self._events(
            metric_names.REJECTED_NO_HEALTHY_OPTION, {"route": plan.route, "error_class": error_class}
        )
        if last_error is None:
            why = plan.not_tried or "every option's circuit is open"
            message = f"No model behind route `{plan.route}` could be tried: {why}."
        else:
            message = (
                f"No model behind route `{plan.route}` could answer right now (last error: {error_class})."
            )
        return ServiceUnavailable(
            f"{message} Retry later; request id {plan.request_id}.",
            retry_after_s=self._planner.retry_after(plan.chain, last_error_class=error_class),
            headers=json_headers,
        )

    # -- the bytes

    def _stream(
        self,
        plan: ChatPlan,
        live: _Live,
        headers: dict[str, str],
        include_usage: bool,
        record: StreamRecord,
        started: float,
    ) -> StreamAnswer:
        option = live.option
        headers["x-switchboard-option"] = option.id
        if live.adapter:
            headers[ADAPTER_HEADER] = live.adapter
        if live.phase == PHASE_FALLBACK:
            headers["x-switchboard-fallback"] = "context"
        record.option_id, record.degraded = option.id, headers.get("x-switchboard-degraded")
        record.time_to_first_token_ms = live.ttft_ms
        self._events.option_latency_ms(metric_names.STREAM_TIME_TO_FIRST_TOKEN, option.id, live.ttft_ms)
        self._events.latency_ms(metric_names.STREAM_TIME_TO_FIRST_TOKEN, live.ttft_ms)
        writer = self._writer(plan, option.id, include_usage)
        return StreamAnswer(200, headers, self._live_chunks(plan, live, writer, record))

    def _writer(self, plan: ChatPlan, option_id: str, include_usage: bool) -> _ChunkWriter:
        return _ChunkWriter(
            request_id=plan.request_id,
            route=plan.route,
            option_id=option_id,
            created=int(self._clock()),
            include_usage=include_usage,
        )

    def _live_chunks(
        self, plan: ChatPlan, live: _Live, writer: _ChunkWriter, record: StreamRecord
    ) -> Iterator[bytes]:
        finish_reason: str | None = None
        usage: StreamUsage | None = None
        ended = False
        answer = _AnswerSoFar()

        def sent(data: bytes) -> bytes:
            record.bytes_sent += len(data)
            record.chunks_sent += 1
            return data

        try:
            yield sent(writer.role())
            try:
                for delta in chained(live.read, live.rest):
                    if not isinstance(delta, StreamDelta):
                        raise ProviderError(
                            ErrorClass.MALFORMED, f"stream event of type {type(delta).__name__}"
                        )
                    piece = writer.content(delta) if finish_reason is None else None
                    if piece is not None:
                        answer.add(delta)
                        yield sent(piece)
                    finish_reason = delta.finish_reason or finish_reason
                    usage = delta.usage or usage
                if finish_reason is None:
                    raise ProviderError(ErrorClass.MALFORMED, "the stream stopped without a finish reason")
                # The same checks as a whole answer's (tools offered, arguments, schema), which a
                # stream can only make at its end: a failure there is an error event, no [DONE].
                request = ChatRequest.from_dict(plan.workflow_input["request"])
                if request.tools or request.response_format is not None:
                    check_chat_answer(live.option, request, answer.result(finish_reason))
            except Exception as exc:
                ended = True
                error = _as_provider_error(exc)
                self._events.option_count(
                    metric_names.provider_error(error.error_class.value), live.option.id
                )
                self._events.option_count(metric_names.STREAM_FAILED_MID_STREAM, live.option.id)
                self._events.count(metric_names.STREAM_FAILED_MID_STREAM)
                self._record(live.option, plan.request_id, live.probe, error, live.ttft_ms)
                record.ended, record.error_class = "error_event", error.error_class.value
                message = (
                    f"The model's stream failed after it started ({error.error_class.value}); the answer "
                    f"is incomplete (request id {plan.request_id})."
                )
                yield sent(error_event(message, plan.request_id))
                return
            ended = True
            self._record(live.option, plan.request_id, live.probe, None, live.ttft_ms)
            yield sent(writer.finish(finish_reason))
            usage_chunk = writer.usage(usage)
            if usage_chunk is not None:
                yield sent(usage_chunk)
            yield sent(DONE)
            record.ended = "done"
            self._remember(plan, live.option, answer.result(finish_reason), usage)
        finally:
            _close(live.rest)
            self._settle_capacity(live, usage)
            if not ended:  # the client went away: the provider was answering, so that is a success
                self._record(live.option, plan.request_id, live.probe, None, live.ttft_ms)
                record.ended = "client_closed"
            self._log(record)
            settle_stream(self._planner, plan, live.option.id, usage, provider_called=True)

    def _short(
        self,
        plan: ChatPlan,
        kind: str,
        option_id: str,
        result: ChatResult,
        headers: dict[str, str],
        include_usage: bool,
        record: StreamRecord,
        started: float,
    ) -> StreamAnswer:
        """A degraded answer (cache, static) as a short stream: role, content, finish, usage, done."""
        headers["x-switchboard-degraded"] = kind
        headers["x-switchboard-option"] = option_id
        self._events(f"{metric_names.DEGRADED_ANSWER_PREFIX}{kind}", {"route": plan.route})
        record.option_id, record.degraded = option_id, kind
        record.time_to_first_token_ms = int((self._monotonic() - started) * 1000)
        writer = self._writer(plan, option_id, include_usage)
        calls = tuple(
            ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
            for index, call in enumerate(result.tool_calls)
        )
        usage = StreamUsage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cached_tokens=result.cached_tokens,
            reasoning_tokens=result.reasoning_tokens,
        )

        def chunks() -> Iterator[bytes]:
            pieces = [writer.role(), writer.content(StreamDelta(text=result.text, tool_calls=calls))]
            pieces += [writer.finish(result.finish_reason), writer.usage(usage), DONE]
            try:
                for piece in pieces:
                    if piece is not None:
                        record.bytes_sent += len(piece)
                        record.chunks_sent += 1
                        yield piece
                record.ended = "done"
            finally:
                if record.ended != "done":
                    record.ended = "client_closed"
                self._log(record)
                settle_stream(self._planner, plan, kind, usage, provider_called=False)

        return StreamAnswer(200, headers, chunks())

    def _settle_capacity(self, live: _Live, usage: StreamUsage | None) -> None:
        """The option's capacity, corrected with the tokens the stream reported; without a usage
        event (a failure, a client gone) the estimate taken before the call stands."""
        if usage is not None:
            self._capacity.settle(live.capacity, usage.prompt_tokens + usage.completion_tokens)

    # -- tracing (X-Ray subsegments; every tracing failure is swallowed: traces never break a request)

    def _traced_try(
        self,
        plan: ChatPlan,
        request: ChatRequest,
        option_id: str,
        phase: str,
        record: StreamRecord,
        started: float,
    ) -> _Live | ProviderError | None:
        """:meth:`_try` in a ``candidate <option id>`` subsegment: up to the first token or the failure."""
        with self._span(f"candidate {option_id}", plan) as span:
            outcome = self._try(plan, request, option_id, phase, record, started)
            tried = record.candidates[-1] if record.candidates else None
            span.annotate("option", option_id)
            span.annotate("phase", phase)
            if tried is not None:
                span.annotate("outcome", tried.outcome or "unknown")
                span.annotate("circuit", tried.circuit)
                span.annotate("probe", tried.probe)
                if tried.error_class:
                    span.annotate("error_class", tried.error_class)
            return outcome

    def _traced_degrade(
        self,
        plan: ChatPlan,
        request: ChatRequest,
        headers: dict[str, str],
        include_usage: bool,
        record: StreamRecord,
        started: float,
        last_error: dict[str, Any] | None,
    ) -> StreamAnswer:
        """:meth:`_degrade` in a ``degrade`` subsegment (the smaller chain's candidates nest in it)."""
        with self._span("degrade", plan) as span:
            span.annotate("steps", ",".join(str(step) for step in plan.workflow_input.get("degrade") or []))
            try:
                answer = self._degrade(plan, request, headers, include_usage, record, started, last_error)
            except Exception as exc:
                span.annotate("outcome", f"refused:{getattr(exc, 'status', type(exc).__name__)}")
                raise
            span.annotate("outcome", answer.headers.get("x-switchboard-degraded") or "answered")
            span.annotate("option", answer.headers.get("x-switchboard-option") or "")
            return answer

    @contextmanager
    def _span(self, name: str, plan: ChatPlan) -> Iterator[TraceSpan]:
        """A subsegment of the tracing port, annotated with the request id and route; a no-op span
        when there is no port or it fails. Exceptions of the block pass through unchanged."""
        if self._tracing is None:
            yield _NO_SPAN
            return
        try:
            manager = self._tracing.subsegment(name)
            span: TraceSpan = _SafeSpan(manager.__enter__())
        except Exception:
            yield _NO_SPAN
            return
        span.annotate("request_id", plan.request_id)
        span.annotate("route", plan.route)
        failure: BaseException | None = None
        try:
            yield span
        except BaseException as exc:
            failure = exc
            raise
        finally:
            with suppress(Exception):  # a tracer that cannot close its subsegment: nothing to do
                if failure is None:
                    manager.__exit__(None, None, None)
                else:
                    manager.__exit__(type(failure), failure, failure.__traceback__)

    def _log(self, record: StreamRecord) -> None:
        """The one record of a streamed request, and its route's SLO measurements: once it ended."""
        with suppress(Exception):  # observability never breaks the request path
            self._logger.info("streamed request", extra={"stream": record.to_log()})
        if record.route is None:  # refused before planning (no such route, 403, 429): no route SLI
            return
        refused = record.ended.startswith("refused:")
        # A refusal is bad unless the request's own (4xx); an exception's name is bad too.
        bad = record.ended == "error_event" or (refused and not record.ended.startswith("refused:4"))
        with suppress(Exception):
            # Latency of a stream is its time to first byte: the rest depends on the answer's length.
            self._events.route_request(record.route, bad=bad, latency_ms=record.time_to_first_token_ms)


def settle_stream(
    planner: StreamPlanner,
    plan: ChatPlan,
    option_id: str,
    usage: StreamUsage | None,
    *,
    provider_called: bool,
) -> None:
    """End-of-stream metering (issue 15), after `data: [DONE]` or however the stream ended.

    Meters the usage the provider reported, which is what the client's final usage chunk carries
    (zeros when the provider reported none). A stream cut mid-way (an error event, the client
    gone) meters whatever usage the provider had reported by then, usually none: the tokens a
    provider spent on an answer it never finished reporting cannot be known here, and metering
    an estimate would make the totals differ from what clients were told. Degraded short streams
    (static, cache: ``option_id`` is the kind) are metered at no cost.
    """
    reported = usage or StreamUsage(prompt_tokens=0, completion_tokens=0)
    planner.settle(
        plan,
        AnsweredUsage(
            option_id=option_id,
            prompt_tokens=reported.prompt_tokens,
            completion_tokens=reported.completion_tokens,
            cached_tokens=reported.cached_tokens or 0,
            provider_called=provider_called,
        ),
    )


def stream_deadlines(option: LlmOption, remaining_s: float) -> StreamDeadlines:
    """First-token and idle deadlines from the option (`params.first_token_timeout_ms`,
    `params.idle_timeout_ms`, each defaulting to its `timeout_ms`), the total from the budget left."""
    default_s = option.timeout_ms / 1000

    def param_s(name: str) -> float:
        value = option.params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value) / 1000
        return default_s

    total_s = max(0.0, remaining_s)
    return StreamDeadlines(
        first_token_s=min(param_s(FIRST_TOKEN_TIMEOUT_PARAM), total_s),
        idle_s=param_s(IDLE_TIMEOUT_PARAM),
        total_s=total_s,
    )


def _as_provider_error(exc: BaseException) -> ProviderError:
    """Any failure of a provider stream as a classified one (a connection error is `unavailable`)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):
        return ProviderError(ErrorClass.TIMEOUT, f"{type(exc).__name__}: {exc}"[:300])
    return ProviderError(ErrorClass.UNAVAILABLE, f"{type(exc).__name__}: {exc}"[:300])


def _close(iterator: Iterator[Any] | None) -> None:
    """Release a provider stream's connection (generators and clients expose `close`)."""
    close = getattr(iterator, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # closing a broken stream may fail again: nothing more to release
        return


class _NoSpan:
    def annotate(self, key: str, value: str | int | float | bool) -> None:
        return None


_NO_SPAN = _NoSpan()


class _SafeSpan:
    """A span whose annotations never raise (a tracer refusing a key or a value is not the request's
    problem)."""

    def __init__(self, span: TraceSpan) -> None:
        self._span = span

    def annotate(self, key: str, value: str | int | float | bool) -> None:
        try:
            self._span.annotate(key, value)
        except Exception:
            return


class _AnswerSoFar:
    """What a stream has sent, reassembled, for the end-of-stream answer checks (`answers`)."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[str]] = {}

    def add(self, delta: StreamDelta) -> None:
        self._text.append(delta.text)
        for piece in delta.tool_calls:
            call = self._calls.setdefault(piece.index, ["", "", ""])
            call[0] = piece.id or call[0]
            call[1] = piece.name or call[1]
            call[2] += piece.arguments

    def result(self, finish_reason: str) -> ChatResult:
        calls = tuple(
            ToolCall(id=i, name=n, arguments=a) for i, n, a in (self._calls[k] for k in sorted(self._calls))
        )
        finish: Any = finish_reason
        return ChatResult(
            text="".join(self._text),
            finish_reason=finish,
            prompt_tokens=0,
            completion_tokens=0,
            tool_calls=calls,
        )
