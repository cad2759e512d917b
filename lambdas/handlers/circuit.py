"""`circuit` Lambda: the request workflow's probe lease and failure recording for one candidate.

Event: `{"action": "acquire_probe" | "record_failure", "option_id", "request_id", "error_class"?,
"message"?, "probe"?}`. Results always carry every key, so the next Choice can read them:

- acquire_probe → `{"granted", "state", "open_until", "now"}`
- record_failure → `{"transition": "opened"|"closed"|"reopened"|"half_opened"|"none", "state",
  "open_until", "now"}`

`now` is `YYYY-MM-DDTHH:MM:SSZ`, for the workflow's `TimestampGreaterThanPath` comparisons. The
circuit table being down never fails the request: the store fails open (granted / CLOSED) and
reports `CircuitStoreUnavailable` to the one event sink. The logic lives in
`switchboard.circuits.service`; the invoke step records successes (and slow calls) in-process
through the same service (`switchboard.invoking`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.circuits.service import CircuitService, CircuitSettings
from switchboard.observability import keys_from_event, logger, metrics, tracer
from switchboard.selfcheck import is_selfcheck

ACTIONS = ("acquire_probe", "record_failure")


@lru_cache(maxsize=1)
def _service() -> CircuitService:
    from switchboard.events import powertools_sink

    return CircuitService.from_settings(CircuitSettings.from_env(), on_event=powertools_sink())


def circuit_service() -> CircuitService:
    """This execution environment's service, built on first use."""
    return _service()


def forget_cached_state() -> None:
    """Behave as a fresh execution environment: the next call builds clients and caches anew."""
    _service.cache_clear()


def dispatch(event: dict[str, Any], service: CircuitService | None = None) -> dict[str, Any]:
    svc = service or _service()
    action = event.get("action")
    option_id = str(event["option_id"])
    request_id = str(event.get("request_id") or "unknown")
    if action == "acquire_probe":
        return svc.acquire_probe(option_id, request_id=request_id)
    if action == "record_failure":
        message = event.get("message")
        return svc.record_failure(
            option_id,
            request_id=request_id,
            error_class=event.get("error_class") or None,
            message=str(message) if message is not None else None,
            probe=bool(event.get("probe", False)),
        )
    raise ValueError(f"unknown circuit action {action!r}; expected one of {ACTIONS}")


@logger.inject_lambda_context
@keys_from_event(request_id="request_id", option_id="option_id", action="action")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck

        return selfcheck.report("circuit", settings=CircuitSettings.from_env, init=_service)
    return dispatch(event)
