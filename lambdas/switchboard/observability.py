"""One place owns the Logger, Tracer and Metrics every handler shares.

X-Ray: every function runs with Lambda active tracing and the workflows with Step Functions
tracing, so each invocation and state is traced without any SDK. The X-Ray SDK (Powertools'
Tracer, for subsegments around our own methods and boto3 calls) costs 0.2-0.3 s of cold start,
more than the whole budget of the authorizer and invoke steps, so it is opt-in: set
`SWITCHBOARD_XRAY_SDK=true` on a function to trade that cold start for the finer trace.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = "switchboard"
NAMESPACE = "Switchboard"
XRAY_SDK_ENV = "SWITCHBOARD_XRAY_SDK"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


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
