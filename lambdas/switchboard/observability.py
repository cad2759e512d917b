"""One place owns the Logger, Tracer and Metrics every handler shares.

Keys that belong to one invocation (`request_id`, `route`, …) go through :func:`keys_from_event`
or :func:`invocation_keys`, never `logger.append_keys`: Powertools keeps appended keys on the
Logger for the life of the execution environment, so the next invocation's lines carried the
previous request's `request_id` until something overwrote it (and in the local stack, where every
handler shares one Logger in one process, the gateway's lines carried the invoke step's keys).

X-Ray: every function runs with Lambda active tracing and the workflows with Step Functions
tracing, so each invocation and state is traced without any SDK. The X-Ray SDK (Powertools'
Tracer, for subsegments around our own methods and boto3 calls) costs 0.2-0.3 s of cold start,
more than the whole budget of the authorizer and invoke steps, so it is opt-in: set
`SWITCHBOARD_XRAY_SDK=true` on a function to trade that cold start for the finer trace.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

from switchboard.contract import metrics as metric_names

SERVICE = metric_names.SERVICE
NAMESPACE = metric_names.NAMESPACE
XRAY_SDK_ENV = "SWITCHBOARD_XRAY_SDK"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


@contextmanager
def invocation_keys(**keys: object) -> Iterator[None]:
    """Add `keys` to every log line written inside the block, and only there.

    Thread-safe keys (a context variable) keep concurrent requests apart; on exit the keys that
    were there before come back, so a nested call (a local workflow step running inside the
    gateway's request) neither loses nor leaks anything. Keys whose value is None are left out.
    """
    before = dict(logger.thread_safe_get_current_keys())
    logger.thread_safe_append_keys(**{name: value for name, value in keys.items() if value is not None})
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
        if before:
            logger.thread_safe_append_keys(**before)


_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def _lookup(event: Any, path: str) -> object:
    value = event
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def keys_from_event(**paths: str) -> Callable[[_Handler], _Handler]:
    """Handler decorator: log each key with the value at its dotted path in the event, per invocation.

    ``@keys_from_event(request_id="requestContext.requestId")`` is to these keys what Powertools'
    ``correlation_id_path`` is to the correlation id, scoped by :func:`invocation_keys`.
    """

    def decorate(handler: _Handler) -> _Handler:
        @functools.wraps(handler)
        def wrapper(event: Any, *args: Any, **kwargs: Any) -> Any:
            with invocation_keys(**{name: _lookup(event, path) for name, path in paths.items()}):
                return handler(event, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


class _NoSdkTracer:
    """Tracer's decorator surface, doing nothing: the handlers are written once for both."""

    def capture_method(self, method: Callable[..., Any] | None = None, **_: Any) -> Any:
        return method if method is not None else (lambda inner: inner)

    def capture_lambda_handler(self, handler: Callable[..., Any] | None = None, **_: Any) -> Any:
        return handler if handler is not None else (lambda inner: inner)


def _tracer() -> Any:
    # Read here, at cold start, because the decorators are applied when handler modules import.
    if os.environ.get(XRAY_SDK_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        from aws_lambda_powertools import Tracer

        return Tracer(service=SERVICE)
    return _NoSdkTracer()


tracer = _tracer()
