"""`invoke` Lambda: one provider call for one candidate of the chain, as a workflow task.

Throttling is raised as `ProviderThrottled` so the state machine's Retry (backoff, full jitter)
handles it; every other outcome returns as data (`ok`, `result`, `error`, `latency_ms`, always
all present) so the next Choice state shows the decision in the console.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.contract.workflow import timestamp_now
from switchboard.errors import ErrorClass, ProviderError
from switchboard.observability import NAMESPACE, SERVICE, keys_from_event, logger, metrics, tracer
from switchboard.options.model import LlmOption, OptionStatus, ProviderKind
from switchboard.providers.base import ChatRequest
from switchboard.selfcheck import is_selfcheck
from switchboard.state_budget import ANSWER_INLINE_LIMIT_BYTES

if TYPE_CHECKING:
    from switchboard.circuits.service import CircuitService

MIN_CALL_TIMEOUT_S = 0.05


class ProviderThrottled(Exception):
    """Named for the ASL `Retry`/`Catch` on throttling (Lambda reports it as the errorType)."""


class _Deps:
    def __init__(self) -> None:
        from switchboard.options.store import OptionsStore
        from switchboard.payloads import PayloadStore
        from switchboard.settings import InvokeSettings

        self.settings = InvokeSettings.from_env()
        self.options = OptionsStore(self.settings.options_table, ttl_s=self.settings.options_cache_ttl_s)
        self.payloads = PayloadStore(self.settings.payload_bucket)
        override = self.settings.provider_override
        self.override = ProviderKind(override) if override else None
        self.circuits: CircuitService | None = None
        if self.settings.circuit_table:
            from switchboard.circuits.service import CircuitService, CircuitSettings

            # The invoke step always passes the option's own policy, so the service's options
            # source is never read on this path.
            env = {"CIRCUIT_TABLE": self.settings.circuit_table, "OPTIONS_TABLE": self.settings.options_table}
            self.circuits = CircuitService.from_settings(CircuitSettings.from_env(env))


@lru_cache(maxsize=1)
def _deps() -> _Deps:
    return _Deps()


def _now_iso() -> str:
    return timestamp_now()


def _option_metric(name: str, unit: MetricUnit, value: float, option_id: str) -> None:
    """Per-option metrics go out on their own, so the service-level alarm metrics keep one dimension."""
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        metric.add_dimension(name="option", value=option_id)


def _record(
    event: dict[str, Any], option: LlmOption, *, success: bool, error: ProviderError | None, latency_ms: int
) -> dict[str, Any]:
    """Tell the candidate's circuit how the call went; the circuit store fails open on its own."""
    circuits = _deps().circuits
    if circuits is None:
        return {"transition": "none", "now": _now_iso()}
    request_id = str(event.get("request_id") or "unknown")
    return circuits.record(
        option.id,
        success=success,
        request_id=request_id,
        error_class=error.error_class.value if error else None,
        latency_ms=latency_ms,
        probe=bool(event.get("probe", False)),
        owner=request_id,
        message=error.message if error else None,
        policy=option.breaker,
    )


def _reply(
    ok: bool,
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
    latency_ms: int,
    circuit: dict[str, Any],
) -> dict[str, Any]:
    """Every key, every time: the workflow's ResultSelector reads all of them."""
    return {
        "ok": ok,
        "result": result,
        "error": error,
        "latency_ms": latency_ms,
        "transition": circuit.get("transition", "none"),
        "now": circuit.get("now") or _now_iso(),
    }


def _failure(error_class: ErrorClass, message: str, started: float) -> dict[str, Any]:
    latency_ms = int((time.monotonic() - started) * 1000)
    return _reply(False, None, {"error_class": error_class.value, "message": message}, latency_ms, {})


def _option(option_id: str) -> LlmOption | None:
    try:
        return _deps().options.get(option_id)
    except Exception:
        logger.exception("options catalogue unavailable", extra={"option_id": option_id})
        return None


def invoke_candidate(event: dict[str, Any], now_ms: float | None = None) -> dict[str, Any]:
    from switchboard.providers.registry import provider_for

    started = time.monotonic()
    option_id = str(event["option_id"])
    option = _option(option_id)
    if option is None or option.status is OptionStatus.RETIRED:
        return _failure(
            ErrorClass.UNAVAILABLE, f"option {option_id} is not in the catalogue or retired", started
        )
    now = time.time() * 1000 if now_ms is None else now_ms
    remaining_s = (float(event["deadline_ms"]) - now) / 1000
    if remaining_s < MIN_CALL_TIMEOUT_S:
        return _failure(ErrorClass.TIMEOUT, "request time budget spent before this candidate", started)
    timeout_s = min(option.timeout_ms / 1000, remaining_s)
    deps = _deps()
    request = ChatRequest.from_dict(deps.payloads.unwrap(event["request"]))
    provider = provider_for(option.provider, override=deps.override)
    _option_metric("ProviderCalls", MetricUnit.Count, 1, option_id)
    try:
        result = provider.complete(option, request, timeout_s)
    except ProviderError as exc:
        latency_ms = int((time.monotonic() - started) * 1000)
        metrics.add_metric(name=f"ProviderError_{exc.error_class.value}", unit=MetricUnit.Count, value=1)
        _option_metric(f"ProviderError_{exc.error_class.value}", MetricUnit.Count, 1, option_id)
        logger.warning(
            "candidate failed", extra={"option_id": option_id, "error_class": exc.error_class.value}
        )
        if exc.error_class is ErrorClass.THROTTLED:
            raise ProviderThrottled(f"{option_id}: {exc.message}") from exc
        circuit = _record(event, option, success=False, error=exc, latency_ms=latency_ms)
        return _reply(False, None, exc.to_dict(), latency_ms, circuit)
    latency_ms = int((time.monotonic() - started) * 1000)
    _option_metric("ProviderLatency", MetricUnit.Milliseconds, latency_ms, option_id)
    circuit = _record(event, option, success=True, error=None, latency_ms=latency_ms)
    if deps.settings.log_prompts:
        logger.info("candidate answered", extra={"option_id": option_id, "answer": result.text})
    key = f"results/{event.get('request_id', 'x')}-{option_id}.json"
    answer = deps.payloads.wrap(key, result.to_dict(), inline_limit=ANSWER_INLINE_LIMIT_BYTES)
    return _reply(True, answer, None, latency_ms, circuit)


@logger.inject_lambda_context
@keys_from_event(request_id="request_id", route="route")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck
        from switchboard.providers.registry import provider_for
        from switchboard.settings import InvokeSettings

        def init() -> None:
            deps = _deps()
            # Every provider module a chain may need, imported as the first call would import it.
            for kind in ProviderKind:
                provider_for(kind, override=deps.override)

        return selfcheck.report("invoke", settings=InvokeSettings.from_env, init=init)
    return invoke_candidate(event)
