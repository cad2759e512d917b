"""What the request workflow asks of the circuits: take a probe, record an outcome.

`CircuitService` joins the option's `BreakerPolicy` (from the options catalogue) with the circuit
store and turns results into the flat dicts the ASL's Choice states read; every key is always
present. Transitions become metrics (`CircuitTransition` with the transition name in metadata,
plus `CircuitOpened` / `CircuitClosed`) and a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from switchboard.circuits.policy import (
    PROBE_LEASE_S,
    TRANSITION_CLOSED,
    TRANSITION_FORCED_CLOSED,
    TRANSITION_FORCED_OPEN,
    TRANSITION_OPENED,
    TRANSITION_REOPENED,
    CircuitSnapshot,
    Outcome,
    Transition,
)
from switchboard.circuits.timefmt import to_iso
from switchboard.contract import env as names
from switchboard.contract import metrics as metric_names
from switchboard.options.model import BreakerPolicy, LlmOption
from switchboard.settings import EnvSettings, bounded, env

if TYPE_CHECKING:
    from datetime import datetime

    from switchboard.circuits.store import EventHook, ProbeDecision, RecordResult

__all__ = ["TRANSITION_NONE", "CircuitLedger", "CircuitService", "CircuitSettings", "OptionSource"]

TRANSITION_NONE = "none"


def _non_empty(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    return text


@dataclass(frozen=True)
class CircuitSettings(EnvSettings):
    """Environment of the `circuit` Lambda (and of any handler recording outcomes).

    `CircuitSettings.from_env(environ=None)` reads `os.environ` (or `environ`) and raises `SettingsError`
    (a RuntimeError: "CircuitSettings: bad environment: ...") naming each bad variable.
    """

    circuit_table: str = env(names.CIRCUIT_TABLE, _non_empty)
    options_table: str = env(names.OPTIONS_TABLE, _non_empty)
    probe_lease_s: int = env(names.CIRCUIT_PROBE_LEASE_S, bounded(int, 1, 3600), default=PROBE_LEASE_S)
    cache_ttl_s: float = env(names.CIRCUIT_CACHE_TTL_S, bounded(float, 0, 60), default=2.0)


class OptionSource(Protocol):
    """Where the service finds an option's breaker policy (``OptionsStore``)."""

    def get(self, option_id: str) -> LlmOption | None: ...


class CircuitLedger(Protocol):
    """What the service asks of the circuit state: the read-decide-write steps, and the time.

    ``switchboard.circuits.store.CircuitStore`` is the DynamoDB one (conditional writes, fail-open);
    ``tests.fakes.InMemoryCircuits`` applies the same policy rules over a dict.
    """

    def acquire_probe(
        self, option_id: str, policy: BreakerPolicy, *, owner: str, actor: str
    ) -> ProbeDecision:
        """May ``owner`` call the option now (a probe lease while the circuit tests recovery)?"""

    def record_result(
        self, option_id: str, policy: BreakerPolicy, outcome: Outcome, *, actor: str
    ) -> RecordResult:
        """Apply one call's outcome; the transition it made (if any) and the resulting snapshot."""

    def get(self, option_id: str) -> CircuitSnapshot:
        """The circuit as the workflow's ``CheckCircuit`` reads it (CLOSED when unknown or unreadable)."""

    def now(self) -> datetime:
        """The ledger's clock: the ``now`` the workflow compares ``open_until`` with."""


def _iso(value: Any) -> str | None:
    return to_iso(value) if value is not None else None


class CircuitService:
    """Probe leases and outcome recording for the workflow, with metrics on every transition."""

    def __init__(
        self,
        store: CircuitLedger,
        options: OptionSource | None,
        *,
        on_transition: Callable[[str, Transition], None] | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self._on_transition = on_transition if on_transition is not None else _emit_metrics

    @classmethod
    def from_settings(cls, settings: CircuitSettings, *, on_event: EventHook | None = None) -> CircuitService:
        """Stores built from the environment; both report fail-open events to `on_event`.

        `on_event` defaults to the Powertools sink (`switchboard.events.powertools_sink`), the one
        every handler wires in.
        """
        from switchboard.circuits.store import CircuitStore
        from switchboard.options.store import OptionsStore

        if on_event is None:
            from switchboard.events import powertools_sink

            on_event = powertools_sink()
        return cls(
            CircuitStore(
                settings.circuit_table,
                on_event=on_event,
                lease_s=settings.probe_lease_s,
                cache_ttl_s=settings.cache_ttl_s,
            ),
            OptionsStore(settings.options_table, on_event=on_event),
        )

    def policy_for(self, option_id: str) -> BreakerPolicy:
        """The option's breaker policy; the default one when the option or the catalogue is missing."""
        if self.options is None:
            return BreakerPolicy()
        try:
            option = self.options.get(option_id)
        except Exception:  # options table down with no snapshot: keep breaking with defaults
            from switchboard.observability import logger

            logger.warning("options unavailable; default breaker policy", extra={"option_id": option_id})
            return BreakerPolicy()
        return option.breaker if option is not None else BreakerPolicy()

    def _observe(self, option_id: str, transition: Transition | None) -> None:
        if transition is None:
            return
        try:
            self._on_transition(option_id, transition)
        except Exception:  # observability must never break the request path
            from switchboard.observability import logger

            logger.exception("circuit transition hook failed", extra={"option_id": option_id})

    def snapshot(self, option_id: str) -> CircuitSnapshot:
        """The option's circuit, read as the workflow's ``CheckCircuit`` reads it before a call."""
        return self.store.get(option_id)

    def now(self) -> datetime:
        """The circuits' clock (what ``open_until`` is compared with)."""
        return self.store.now()

    def acquire_probe(
        self, option_id: str, *, request_id: str, policy: BreakerPolicy | None = None
    ) -> dict[str, Any]:
        """`{"granted", "state", "open_until", "now"}`; the probe owner is the request id."""
        decision = self.store.acquire_probe(
            option_id,
            policy or self.policy_for(option_id),
            owner=request_id,
            actor=f"workflow:{request_id}",
        )
        self._observe(option_id, decision.transition)
        return {
            "granted": decision.granted,
            "state": decision.state.value,
            "open_until": _iso(decision.open_until),
            "now": to_iso(self.store.now()),
        }

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
        """`{"transition", "state", "open_until", "now"}` after recording one call's outcome.

        `owner` defaults to the request id (the probe lease owner `acquire_probe` used), so a
        failure under a probe lease is recognised as a probe failure even without `probe=True`.
        """
        outcome = Outcome(
            success=success,
            error_class=error_class,
            latency_ms=int(latency_ms),
            probe=probe,
            owner=owner or request_id,
            message=message,
        )
        result = self.store.record_result(
            option_id,
            policy or self.policy_for(option_id),
            outcome,
            actor=f"workflow:{request_id}",
        )
        self._observe(option_id, result.transition)
        return self._shape(result.transition, result.snapshot)

    def record_failure(
        self,
        option_id: str,
        *,
        request_id: str,
        error_class: str | None = None,
        message: str | None = None,
        probe: bool = False,
    ) -> dict[str, Any]:
        return self.record(
            option_id,
            success=False,
            request_id=request_id,
            error_class=error_class,
            message=message,
            probe=probe,
        )

    def _shape(self, transition: Transition | None, snapshot: CircuitSnapshot) -> dict[str, Any]:
        return {
            "transition": transition.kind if transition is not None else TRANSITION_NONE,
            "state": snapshot.state.value,
            "open_until": _iso(snapshot.open_until),
            "now": to_iso(self.store.now()),
        }


def _emit_metrics(option_id: str, transition: Transition) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from switchboard.observability import logger, metrics

    metrics.add_metadata(key="circuit_option", value=option_id)
    metrics.add_metadata(key="circuit_transition", value=transition.kind)
    metrics.add_metric(name=metric_names.CIRCUIT_TRANSITION, unit=MetricUnit.Count, value=1)
    if transition.kind in (TRANSITION_OPENED, TRANSITION_REOPENED, TRANSITION_FORCED_OPEN):
        metrics.add_metric(name=metric_names.CIRCUIT_OPENED, unit=MetricUnit.Count, value=1)
    elif transition.kind in (TRANSITION_CLOSED, TRANSITION_FORCED_CLOSED):
        metrics.add_metric(name=metric_names.CIRCUIT_CLOSED, unit=MetricUnit.Count, value=1)
    logger.info(
        "circuit transition",
        extra={
            "option_id": option_id,
            "transition": transition.kind,
            "from_state": transition.from_state.value,
            "to_state": transition.to_state.value,
            "reason": transition.reason,
            "open_until": _iso(transition.open_until),
            "error_class": transition.error_class,
        },
    )
