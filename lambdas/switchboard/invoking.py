"""One provider call for one candidate of a chain: the request workflow's invoke step, as a use case.

`CandidateInvoker.invoke(event)` decides everything the step decides, with no boto3 and no
Powertools in its contract (each dependency is a small Protocol with an in-memory fake in the
tests):

- the option, from the catalogue: missing, retired or unreadable is `unavailable` (the catalogue
  being down is a fail-open event, `OptionsCatalogueUnavailable`: the chain moves on);
- the time budget: the gateway puts an absolute `deadline_ms` in the input (ASL has no time
  arithmetic), so the provider gets min(option `timeout_ms`, time left) and a spent budget is a
  `timeout` without a call;
- the provider for the option's kind (or the deployment's override), the request read through the
  claim check (`PayloadRefs.unwrap`) and a large answer written back by reference, under
  `results/<request_id>-<option_id>.json`;
- the option's `capacity` (`switchboard.capacity`): one request and the estimated tokens taken
  from its current minute before the call, reconciled with the reported usage after it; an option
  at its capacity is `saturated` without a call and without a circuit record (a probe lease taken
  for it is handed back, see `_release_probe`), and the workflow skips it in `Saturated_Skip`;
- the outcome recorded on the option's circuit, with the option's own breaker policy (successes
  and slow calls in-process; the circuit store fails open on its own);
- per-option measurements (`ProviderCalls`, `ProviderError_<class>`, `ProviderLatency`);
- the tenant's adapter when the option names an adapter family (issue 16,
  `switchboard.adapter_routing`): the components to call in order (canary or live adapter, the
  tenant's previous adapter, the base component); a failure that is the component's fault moves to
  the next one within this candidate, and the option's circuit records the candidate's outcome
  once. The reply's `adapter` says which served (`<family>:v<version>`, `base`, or None without a
  family), for `x-switchboard-adapter`.

Throttling raises `ProviderThrottled` so the state machine's Retry (backoff, full jitter) handles
it; every other outcome returns as data with every key present (`ok`, `result`, `error`,
`latency_ms`, `transition`, `now`, `adapter`), which the workflow's ResultSelector and Choice states read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from switchboard.adapter_routing import BASE_LABEL, FALLBACK_ERRORS, NO_FAMILY, AdapterAttempt, AdapterRouter
from switchboard.answers import check_chat_answer, check_embeddings_answer, unsupported_reason
from switchboard.capacity import Admission, CapacityGuard, CapacityPort, saturated_message
from switchboard.contract import metrics as metric_names
from switchboard.contract.workflow import timestamp_from_epoch
from switchboard.errors import ErrorClass, ProviderError
from switchboard.events import Measurements
from switchboard.options.model import BreakerPolicy, LlmOption, OptionStatus, ProviderKind
from switchboard.providers.base import (
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    Provider,
    is_embeddings,
)
from switchboard.state_budget import ANSWER_INLINE_LIMIT_BYTES

__all__ = [
    "MIN_CALL_TIMEOUT_S",
    "CandidateInvoker",
    "CircuitRecorder",
    "Clock",
    "OptionSource",
    "PayloadRefs",
    "ProviderThrottled",
    "SystemClock",
    "result_key",
]

MIN_CALL_TIMEOUT_S = 0.05
"""Less time left than this and the candidate is a `timeout` without a provider call."""

TRANSITION_NONE = "none"


class ProviderThrottled(Exception):
    """Named for the ASL `Retry`/`Catch` on throttling (Lambda reports it as the errorType)."""


class OptionSource(Protocol):
    def get(self, option_id: str) -> LlmOption | None:
        """The option, None if unknown; raises when the catalogue cannot be read at all."""


class PayloadRefs(Protocol):
    """The claim check: large request and answer bodies travel by reference."""

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]: ...

    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]: ...


class CircuitRecorder(Protocol):
    def record(
        self,
        option_id: str,
        *,
        success: bool,
        request_id: str,
        error_class: str | None = None,
        latency_ms: int = 0,
        probe: bool = False,
        owner: str | None = None,
        message: str | None = None,
        policy: BreakerPolicy | None = None,
    ) -> dict[str, Any]:
        """`{"transition", "now", ...}` after recording one call's outcome."""


class Clock(Protocol):
    def wall_ms(self) -> float:
        """Epoch milliseconds, compared with the gateway's absolute `deadline_ms`."""

    def monotonic(self) -> float:
        """Seconds, for latencies."""


class SystemClock:
    def wall_ms(self) -> float:
        return time.time() * 1000

    def monotonic(self) -> float:
        return time.monotonic()


def utc_now_iso(clock: Clock) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: the form the workflow's `TimestampGreaterThanPath` compares."""
    return timestamp_from_epoch(clock.wall_ms() / 1000)


def _tokens_used(result: ChatResult | EmbeddingResult) -> int:
    """What the provider reported the call used (the capacity's tpm counts input and output)."""
    if isinstance(result, EmbeddingResult):
        return result.prompt_tokens
    return result.prompt_tokens + result.completion_tokens


def result_key(request_id: str, option_id: str) -> str:
    """Where a large answer is parked (the payload bucket's lifecycle rule expires it)."""
    return f"results/{request_id}-{option_id}.json"


@dataclass(frozen=True)
class CandidateCall:
    """The invoke step's input, parsed: what the workflow passes for one candidate."""

    option_id: str
    deadline_ms: float
    request: dict[str, Any]
    request_id: str | None
    probe: bool
    tenant: str | None = None
    """The caller's tenant (the workflow input's `tenant`): whose adapter an adapter family serves."""

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> CandidateCall:
        request_id = event.get("request_id")
        tenant = event.get("tenant")
        return cls(
            option_id=str(event["option_id"]),
            deadline_ms=float(event["deadline_ms"]),
            request=event["request"],
            request_id=str(request_id) if request_id else None,
            probe=bool(event.get("probe", False)),
            tenant=str(tenant) if isinstance(tenant, str) and tenant else None,
        )


class CandidateInvoker:
    """The invoke step's decisions, over injected ports (see the module docstring)."""

    def __init__(
        self,
        *,
        options: OptionSource,
        payloads: PayloadRefs,
        circuits: CircuitRecorder | None,
        providers: Callable[[ProviderKind], Provider],
        events: Measurements,
        clock: Clock | None = None,
        log_answers: bool = False,
        logger: Any | None = None,
        capacity: CapacityPort | None = None,
        adapters: AdapterRouter | None = None,
    ) -> None:
        self._options = options
        self._adapters = adapters
        self._payloads = payloads
        self._circuits = circuits
        self._providers = providers
        self._events = events
        self._clock = clock or SystemClock()
        self._log_answers = log_answers
        if logger is None:
            from switchboard.observability import logger as shared_logger

            logger = shared_logger
        self._logger = logger
        self._capacity = CapacityGuard(capacity, events)

    def invoke(self, event: Mapping[str, Any], now_ms: float | None = None) -> dict[str, Any]:
        """One candidate's outcome as the workflow reads it; raises `ProviderThrottled` on throttling."""
        started = self._clock.monotonic()
        call = CandidateCall.from_event(event)
        option = self._option(call.option_id)
        if option is None or option.status is OptionStatus.RETIRED:
            return self._failure(
                ErrorClass.UNAVAILABLE, f"option {call.option_id} is not in the catalogue or retired", started
            )
        now = self._clock.wall_ms() if now_ms is None else now_ms
        remaining_s = (call.deadline_ms - now) / 1000
        if remaining_s < MIN_CALL_TIMEOUT_S:
            spent = "request time budget spent before this candidate"
            return self._failure(ErrorClass.TIMEOUT, spent, started)
        timeout_s = min(option.timeout_ms / 1000, remaining_s)
        raw_request = self._payloads.unwrap(call.request)
        request: ChatRequest | EmbeddingRequest = (
            EmbeddingRequest.from_dict(raw_request)
            if is_embeddings(raw_request)
            else ChatRequest.from_dict(raw_request)
        )
        why_not = unsupported_reason(option, request)
        if why_not is not None:
            self._events.option_count(metric_names.provider_error(ErrorClass.UNSUPPORTED.value), option.id)
            return self._failure(ErrorClass.UNSUPPORTED, why_not, started)
        provider = self._providers(option.provider)
        admission = self._capacity.admit(option, request)
        if admission.saturated:
            return self._saturated(call, option, admission, started)
        attempts = self._attempts(option, call, request)
        for index, attempt in enumerate(attempts):
            self._events.option_count(metric_names.PROVIDER_CALLS, option.id)
            try:
                result = self._call(provider, attempt.apply(option), request, timeout_s)
            except ProviderError as exc:
                error_metric = metric_names.provider_error(exc.error_class.value)
                self._events.count(error_metric)
                self._events.option_count(error_metric, option.id)
                self._logger.warning(
                    "candidate failed",
                    extra={
                        "option_id": option.id,
                        "error_class": exc.error_class.value,
                        "component": attempt.component,
                    },
                )
                left_s = remaining_s - (self._clock.monotonic() - started)
                if (
                    index + 1 < len(attempts)
                    and exc.error_class in FALLBACK_ERRORS
                    and left_s >= MIN_CALL_TIMEOUT_S
                ):
                    if self._adapters is not None:
                        self._adapters.fell_back(option, call.tenant, attempt, exc.error_class)
                    timeout_s = min(option.timeout_ms / 1000, left_s)
                    continue
                latency_ms = self._elapsed_ms(started)
                self._capacity.settle(admission, 0)
                if exc.error_class is ErrorClass.THROTTLED:
                    raise ProviderThrottled(f"{option.id}: {exc.message}") from exc
                circuit = self._record(call, option, error=exc, latency_ms=latency_ms)
                return self._reply(False, None, exc.to_dict(), latency_ms, circuit)
            except BaseException:
                self._capacity.settle(admission, 0)
                raise
            return self._answered(call, option, result, attempt, admission, started)
        raise AssertionError("unreachable: there is always one attempt")  # pragma: no cover

    def _attempts(
        self, option: LlmOption, call: CandidateCall, request: ChatRequest | EmbeddingRequest
    ) -> list[AdapterAttempt]:
        """The components to call for this candidate (`switchboard.adapter_routing`)."""
        if self._adapters is None:
            return [AdapterAttempt(None, BASE_LABEL) if option.adapter_family else NO_FAMILY]
        return self._adapters.attempts(option, tenant=call.tenant, user=request.user)

    def _answered(
        self,
        call: CandidateCall,
        option: LlmOption,
        result: ChatResult | EmbeddingResult,
        attempt: AdapterAttempt,
        admission: Admission,
        started: float,
    ) -> dict[str, Any]:
        latency_ms = self._elapsed_ms(started)  # before settling: the breaker's slow-call measure
        self._capacity.settle(admission, _tokens_used(result))
        self._events.option_latency_ms(metric_names.PROVIDER_LATENCY, option.id, latency_ms)
        circuit = self._record(call, option, error=None, latency_ms=latency_ms)
        if self._log_answers and isinstance(result, ChatResult):
            self._logger.info("candidate answered", extra={"option_id": option.id, "answer": result.text})
        key = result_key(call.request_id or "x", option.id)
        answer = self._payloads.wrap(key, result.to_dict(), inline_limit=ANSWER_INLINE_LIMIT_BYTES)
        return self._reply(True, answer, None, latency_ms, circuit, adapter=attempt.label)

    # -- steps

    @staticmethod
    def _call(
        provider: Provider, option: LlmOption, request: ChatRequest | EmbeddingRequest, timeout_s: float
    ) -> ChatResult | EmbeddingResult:
        """The provider call, and the answer checked against what the request asked for (`answers`)."""
        if isinstance(request, EmbeddingRequest):
            embed = getattr(provider, "embed", None)
            if embed is None:
                raise ProviderError(ErrorClass.UNSUPPORTED, f"{option.provider.value} options cannot embed")
            embedded: EmbeddingResult = embed(option, request, timeout_s)
            check_embeddings_answer(option, request, embedded)
            return embedded
        answered = provider.complete(option, request, timeout_s)
        check_chat_answer(option, request, answered)
        return answered

    def _saturated(
        self, call: CandidateCall, option: LlmOption, admission: Admission, started: float
    ) -> dict[str, Any]:
        """The option is at its capacity this minute: no call, nothing counted on its circuit."""
        self._logger.info(
            "candidate saturated", extra={"option_id": option.id, "capacity_limit": admission.limit}
        )
        # Only the clock: recording an ignored outcome makes no transition, and none may reach
        # `CircuitChanged?` for a candidate that was never called.
        circuit = {"now": self._release_probe(call, option).get("now")}
        error = {
            "error_class": ErrorClass.SATURATED.value,
            "message": saturated_message(option.id, admission.limit),
        }
        return self._reply(False, None, error, self._elapsed_ms(started), circuit)

    def _release_probe(self, call: CandidateCall, option: LlmOption) -> dict[str, Any]:
        """Hand back the half-open probe lease this request holds for the option, if any.

        Recorded as an outcome of class `saturated`, which the breaker ignores (it says nothing about
        the provider's health) except to free the lease: another request may probe at once instead
        of waiting for the lease to expire (`PROBE_LEASE_S`), which with `half_open_probes` = 1
        would keep every other request off a recovering option for that long. No transition can
        come of it, so `CircuitChanged?` sees `none`. A request without a lease records nothing.
        """
        if not call.probe or self._circuits is None:
            return {}
        request_id = call.request_id or "unknown"
        try:
            return self._circuits.record(
                option.id,
                success=False,
                request_id=request_id,
                error_class=ErrorClass.SATURATED.value,
                probe=True,
                owner=request_id,
                message="saturated: probe lease handed back without a call",
                policy=option.breaker,
            )
        except Exception:  # the lease then expires on its own
            self._logger.warning("probe lease not handed back", extra={"option_id": option.id})
            return {}

    def _option(self, option_id: str) -> LlmOption | None:
        try:
            return self._options.get(option_id)
        except Exception as exc:  # the catalogue is down and never loaded: skip this candidate
            self._events(
                metric_names.OPTIONS_CATALOGUE_UNAVAILABLE,
                {"option_id": option_id, "reason": type(exc).__name__, "detail": str(exc)[:200]},
            )
            return None

    def _record(
        self, call: CandidateCall, option: LlmOption, *, error: ProviderError | None, latency_ms: int
    ) -> dict[str, Any]:
        """Tell the candidate's circuit how the call went; the circuit store fails open on its own."""
        if self._circuits is None:
            return {"transition": TRANSITION_NONE, "now": utc_now_iso(self._clock)}
        request_id = call.request_id or "unknown"
        return self._circuits.record(
            option.id,
            success=error is None,
            request_id=request_id,
            error_class=error.error_class.value if error else None,
            latency_ms=latency_ms,
            probe=call.probe,
            owner=request_id,
            message=error.message if error else None,
            policy=option.breaker,
        )

    # -- shapes

    def _elapsed_ms(self, started: float) -> int:
        return int((self._clock.monotonic() - started) * 1000)

    def _reply(
        self,
        ok: bool,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
        latency_ms: int,
        circuit: Mapping[str, Any],
        *,
        adapter: str | None = None,
    ) -> dict[str, Any]:
        """Every key, every time: the workflow's ResultSelector reads all of them."""
        return {
            "adapter": adapter,
            "ok": ok,
            "result": result,
            "error": error,
            "latency_ms": latency_ms,
            "transition": circuit.get("transition", TRANSITION_NONE),
            "now": circuit.get("now") or utc_now_iso(self._clock),
        }

    def _failure(self, error_class: ErrorClass, message: str, started: float) -> dict[str, Any]:
        error = {"error_class": error_class.value, "message": message}
        return self._reply(False, None, error, self._elapsed_ms(started), {})
