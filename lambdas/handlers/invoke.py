"""`invoke` Lambda: one provider call for one candidate of the chain, as a workflow task.

Throttling is raised as `ProviderThrottled` so the state machine's Retry (backoff, full jitter)
handles it; every other outcome returns as data (`ok`, `result`, `error`, `latency_ms`, always
all present) so the next Choice state shows the decision in the console.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from switchboard.errors import ErrorClass, ProviderError
from switchboard.observability import logger, metrics, tracer
from switchboard.options.model import LlmOption, OptionStatus, ProviderKind
from switchboard.providers.base import ChatRequest

MIN_CALL_TIMEOUT_S = 0.05


class ProviderThrottled(Exception):
    """Named for the ASL `Retry`/`Catch` on throttling (Lambda reports it as the errorType)."""


class _Deps:
    def __init__(self) -> None:
        from switchboard.options.store import OptionsStore
        from switchboard.payloads import PayloadStore
        from switchboard.settings import InvokeSettings

        self.settings = InvokeSettings.from_env()
        self.options = OptionsStore(self.settings.options_table)
        self.payloads = PayloadStore(self.settings.payload_bucket)
        override = self.settings.provider_override
        self.override = ProviderKind(override) if override else None


@lru_cache(maxsize=1)
def _deps() -> _Deps:
    return _Deps()


def _failure(error_class: ErrorClass, message: str, started: float) -> dict[str, Any]:
    return {
        "ok": False,
        "result": None,
        "error": {"error_class": error_class.value, "message": message},
        "latency_ms": int((time.monotonic() - started) * 1000),
    }


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
    dimensions = {"option": option_id}
    try:
        result = provider.complete(option, request, timeout_s)
    except ProviderError as exc:
        metrics.add_metadata(key="option", value=option_id)
        metrics.add_metric(name=f"ProviderError_{exc.error_class.value}", unit=MetricUnit.Count, value=1)
        logger.warning(
            "candidate failed",
            extra={"option_id": option_id, "error_class": exc.error_class.value, **dimensions},
        )
        if exc.error_class is ErrorClass.THROTTLED:
            raise ProviderThrottled(f"{option_id}: {exc.message}") from exc
        return _failure(exc.error_class, exc.message, started)
    latency_ms = int((time.monotonic() - started) * 1000)
    metrics.add_metric(name="ProviderCalls", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ProviderLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    payload = result.to_dict()
    if deps.settings.log_prompts:
        logger.info("candidate answered", extra={"option_id": option_id, "answer": result.text})
    return {
        "ok": True,
        "result": deps.payloads.wrap(f"results/{event.get('request_id', 'x')}-{option_id}.json", payload),
        "error": None,
        "latency_ms": latency_ms,
    }


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(request_id=event.get("request_id"), route=event.get("route"))
    return invoke_candidate(event)
