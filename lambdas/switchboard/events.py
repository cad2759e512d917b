"""One event sink for every store and client that fails open.

A store that carries on when its dependency fails (the options catalogue serving last-known-good,
the circuit store failing open to CLOSED, the routing client falling back) reports it through an
``on_event(name, fields)`` hook. Every handler passes the same sink, :func:`powertools_sink`, so
each event becomes the metric of the same name (names in :mod:`switchboard.contract.metrics`,
which the dashboard and alarms read) plus a log line with its fields.

- :class:`EventSink`: the hook's shape (what the stores, the routing client and the chat service
  take); :class:`Measurements` adds the per-option measurements of the invoke step.
- :class:`PowertoolsEventSink`: EMF metrics through the shared Powertools ``Metrics`` and the
  shared ``Logger``.
- :class:`RecordingEventSink`: the in-memory fake for tests.

A sink never raises into the request path: a metrics failure is logged and dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from switchboard.contract import metrics as names

__all__ = [
    "EventSink",
    "Measurement",
    "Measurements",
    "PowertoolsEventSink",
    "RecordingEventSink",
    "powertools_sink",
]


class EventSink(Protocol):
    """``on_event(name, fields)``: one counted occurrence of ``name``, described by ``fields``."""

    def __call__(self, name: str, fields: dict[str, Any], /) -> None: ...


class Measurements(EventSink, Protocol):
    """An event sink that also records plain counts and per-option values (provider calls, errors,
    latency): measurements are metrics only, the caller writes its own log line."""

    def count(self, name: str) -> None:
        """``name`` += 1 (dimension ``service`` only), without a log line."""

    def option_count(self, name: str, option_id: str) -> None:
        """``name`` += 1 with the ``option`` dimension."""

    def option_latency_ms(self, name: str, option_id: str, value_ms: float) -> None:
        """A latency sample, in milliseconds, with the ``option`` dimension."""

    def latency_ms(self, name: str, value_ms: float) -> None:
        """A latency sample, in milliseconds (dimension ``service`` only: dashboards and alarms)."""

    def route_request(self, route: str, *, bad: bool, latency_ms: float | None) -> None:
        """One request of a route for its SLOs (``RouteRequests``, ``RouteBadAnswers`` 1 or 0, and
        ``RouteLatency`` when it was not bad), with the ``route`` dimension. Only for routes that
        exist (the plan found them): the dimension's values are the configured routes, not what
        clients type."""


class PowertoolsEventSink:
    """Events and measurements as EMF metrics (namespace ``Switchboard``, dimension ``service``).

    Service-level events go through the handler's shared ``Metrics`` (flushed by its
    ``log_metrics`` decorator); per-option values go out on their own (``single_metric``), so the
    service-level alarm metrics keep their one dimension.
    """

    def __call__(self, name: str, fields: dict[str, Any], /) -> None:
        from switchboard.observability import logger

        if name in names.ROUTINE_EVENTS:
            logger.debug(name, extra=fields)
        else:
            logger.warning(name, extra=fields)
        self.count(name)

    def count(self, name: str) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        from switchboard.observability import logger, metrics

        try:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        except Exception:  # a metric must never break the request it describes
            logger.exception("metric not recorded", extra={"metric": name})

    def option_count(self, name: str, option_id: str) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self._per_option(name, MetricUnit.Count, 1, option_id)

    def option_latency_ms(self, name: str, option_id: str, value_ms: float) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self._per_option(name, MetricUnit.Milliseconds, value_ms, option_id)

    def latency_ms(self, name: str, value_ms: float) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        from switchboard.observability import logger, metrics

        try:
            metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value_ms)
        except Exception:  # a metric must never break the request it describes
            logger.exception("metric not recorded", extra={"metric": name})

    def route_request(self, route: str, *, bad: bool, latency_ms: float | None) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        # A 0 for a good request too: the SLO alarms' ratio then has a bad count in every period
        # that had requests (their expressions also FILL it, for periods before this existed).
        self._dimensioned(names.ROUTE_REQUESTS, MetricUnit.Count, 1, names.ROUTE_DIMENSION, route)
        self._dimensioned(names.ROUTE_BAD_ANSWERS, MetricUnit.Count, int(bad), names.ROUTE_DIMENSION, route)
        if not bad and latency_ms is not None:
            self._dimensioned(
                names.ROUTE_LATENCY, MetricUnit.Milliseconds, latency_ms, names.ROUTE_DIMENSION, route
            )

    @classmethod
    def _per_option(cls, name: str, unit: Any, value: float, option_id: str) -> None:
        cls._dimensioned(name, unit, value, names.OPTION_DIMENSION, option_id)

    @staticmethod
    def _dimensioned(name: str, unit: Any, value: float, dimension: str, dimension_value: str) -> None:
        from aws_lambda_powertools.metrics import single_metric

        from switchboard.observability import logger

        try:
            with single_metric(name=name, unit=unit, value=value, namespace=names.NAMESPACE) as metric:
                metric.add_dimension(name=names.SERVICE_DIMENSION, value=names.SERVICE)
                metric.add_dimension(name=dimension, value=dimension_value)
        except Exception:
            logger.exception("metric not recorded", extra={"metric": name, dimension: dimension_value})


@lru_cache(maxsize=1)
def powertools_sink() -> PowertoolsEventSink:
    """The one sink every handler wires into its stores and clients."""
    return PowertoolsEventSink()


@dataclass(frozen=True)
class Measurement:
    name: str
    option_id: str | None
    value: float
    route: str | None = None


@dataclass
class RecordingEventSink:
    """In-memory sink for tests: what was emitted, in order."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)

    def __call__(self, name: str, fields: dict[str, Any], /) -> None:
        self.events.append((name, dict(fields)))

    def count(self, name: str) -> None:
        self.measurements.append(Measurement(name, None, 1))

    def option_count(self, name: str, option_id: str) -> None:
        self.measurements.append(Measurement(name, option_id, 1))

    def option_latency_ms(self, name: str, option_id: str, value_ms: float) -> None:
        self.measurements.append(Measurement(name, option_id, value_ms))

    def latency_ms(self, name: str, value_ms: float) -> None:
        self.measurements.append(Measurement(name, None, value_ms))

    def route_request(self, route: str, *, bad: bool, latency_ms: float | None) -> None:
        self.measurements.append(Measurement(names.ROUTE_REQUESTS, None, 1, route))
        self.measurements.append(Measurement(names.ROUTE_BAD_ANSWERS, None, int(bad), route))
        if not bad and latency_ms is not None:
            self.measurements.append(Measurement(names.ROUTE_LATENCY, None, latency_ms, route))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def fields_of(self, name: str) -> list[Mapping[str, Any]]:
        return [fields for emitted, fields in self.events if emitted == name]

    def measured(self, name: str) -> list[Measurement]:
        return [m for m in self.measurements if m.name == name]
