"""X-Ray subsegments for the streamed request path (the ``Tracing`` port of ``switchboard.streaming``).

The whole request path is traced by Lambda's active tracing and the workflow's own tracing; a
streamed request never enters the workflow, so its candidates and degrade step are subsegments the
gateway opens itself. The provider is Powertools' ``tracer.provider`` (the X-Ray SDK's recorder):
``in_subsegment(name=...)`` is a context manager whose subsegment takes ``put_annotation``. In
Lambda the recorder attaches subsegments to the invocation's segment, which it finds through
``_X_AMZN_TRACE_ID`` (``handlers.gateway_http`` sets it per request under Lambda Web Adapter).

Only when the X-Ray SDK is on (``SWITCHBOARD_XRAY_SDK``, see ``switchboard.observability``): without
it there is no provider and :func:`xray_subsegments` returns None.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class XraySubsegments:
    """``Tracing`` over an X-Ray recorder (anything with ``in_subsegment(name=...)``)."""

    def __init__(self, provider: Any) -> None:
        self._provider = provider

    @contextmanager
    def subsegment(self, name: str) -> Iterator[XrayAnnotations]:
        with self._provider.in_subsegment(name=name) as subsegment:
            yield XrayAnnotations(subsegment)


class XrayAnnotations:
    """An open subsegment's annotations (the SDK gives None when it records nothing: no trace)."""

    def __init__(self, subsegment: Any) -> None:
        self._subsegment = subsegment

    def annotate(self, key: str, value: str | int | float | bool) -> None:
        if self._subsegment is not None:
            self._subsegment.put_annotation(key, value)


def xray_subsegments(tracer: Any) -> XraySubsegments | None:
    """The port over Powertools' Tracer, or None for the no-SDK stand-in (it has no provider)."""
    provider = getattr(tracer, "provider", None)
    if provider is None or not callable(getattr(provider, "in_subsegment", None)):
        return None
    return XraySubsegments(provider)
