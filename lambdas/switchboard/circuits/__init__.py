"""Circuit breakers per LLM option: pure transitions (`policy`), DynamoDB store (`store`), and the
service the `circuit` Lambda and the invoke step call (`service`)."""

from switchboard.circuits.policy import (
    CircuitSnapshot,
    CircuitState,
    Outcome,
    Transition,
    force,
    on_outcome,
    on_probe_request,
)
from switchboard.circuits.timefmt import from_iso, to_iso

__all__ = [
    "CircuitSnapshot",
    "CircuitState",
    "Outcome",
    "Transition",
    "force",
    "from_iso",
    "on_outcome",
    "on_probe_request",
    "to_iso",
]
