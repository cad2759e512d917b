"""How the benchmark judges a stream: the raw SSE read, answered / clean error / lost, summaries.

Pure functions (no clock, no network), shared by the Switchboard driver (bench/stream_switchboard.py)
and bench/run.py, which also classifies what the LiteLLM anchor observed (the anchor returns raw
observations, so one classifier judges both).

A stream is judged by what reached the client:

- **answered**: it ended as a stream should (`data: [DONE]` on the wire; for LiteLLM's Router, a
  library with no wire to its caller, the iterator ending without an exception) and the text is
  one of the servers' whole answers;
- **clean error**: the client was told: an HTTP error before the first byte, or an error event
  (`data: {"error": ...}`, which the official SDKs raise); for LiteLLM, an exception raised;
- **lost**: anything else: a stream that ends without `[DONE]` and without an error event, or one
  that ends "cleanly" with a truncated answer (a lie).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["answered", "clean_error", "lost"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "clean_error", "lost")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank on the sorted values (index round(q/100 * (n-1))), as the other bench figures."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True)
class StreamObservation:
    """What a client saw of one streamed request."""

    done: bool
    """The stream ended as a stream should: `[DONE]` seen (LiteLLM: the iterator ended normally)."""
    error: bool
    """The client was told it failed: HTTP error status, an error event (LiteLLM: an exception)."""
    text: str
    """The content deltas, concatenated."""

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "error": self.error, "text": self.text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamObservation:
        return cls(done=bool(data["done"]), error=bool(data["error"]), text=str(data["text"]))


def read_sse(lines: Iterable[str]) -> StreamObservation:
    """The lines of an OpenAI chat-completions SSE body -> what the client saw.

    Only `data:` lines carry events (comments, `event:` and blank lines are skipped). Anything
    after `[DONE]` or after an error event is not part of the stream and is ignored.
    """
    text: list[str] = []
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return StreamObservation(done=True, error=False, text="".join(text))
        try:
            event = json.loads(data)
        except ValueError:
            continue  # not an event a client could read: it neither answers nor tells
        if not isinstance(event, dict):
            continue
        if event.get("error") is not None:
            return StreamObservation(done=False, error=True, text="".join(text))
        for choice in event.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                content = (choice.get("delta") or {}).get("content")
                if isinstance(content, str):
                    text.append(content)
    return StreamObservation(done=False, error=False, text="".join(text))


def classify(observation: StreamObservation, complete: Collection[str]) -> Outcome:
    """answered / clean_error / lost (see the module docstring); `complete`: the whole answers."""
    if observation.error:
        return "clean_error"
    if observation.done and observation.text in complete:
        return "answered"
    return "lost"


def count_outcomes(observations: Iterable[StreamObservation], complete: Collection[str]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for observation in observations:
        counts[classify(observation, complete)] += 1
    return counts


def overhead_run(through_ms: Sequence[float], direct_ms: Sequence[float]) -> dict[str, float]:
    """One run of paired requests: p50/p99 of (through - direct) per pair, and of each side.

    Each request through a gateway is paired with a direct request to the same server made just
    before it, so a slow moment of the machine lands on both sides of the difference.
    """
    if len(through_ms) != len(direct_ms) or not through_ms:
        raise ValueError("overhead needs as many direct requests as requests through the gateway")
    added = [t - d for t, d in zip(through_ms, direct_ms, strict=True)]
    return {
        "overhead_p50_ms": percentile(added, 50),
        "overhead_p99_ms": percentile(added, 99),
        "through_p50_ms": percentile(through_ms, 50),
        "through_p99_ms": percentile(through_ms, 99),
        "direct_p50_ms": percentile(direct_ms, 50),
        "direct_p99_ms": percentile(direct_ms, 99),
    }


def summarize_stream_chaos(result: Mapping[str, Any], complete: Collection[str]) -> dict[str, Any]:
    """Per phase and in total: answered / clean_error / lost, and calls that reached the primary."""
    phases = []
    totals: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for phase in result["phases"]:
        observations = [StreamObservation.from_dict(o) for o in phase["observations"]]
        counts = count_outcomes(observations, complete)
        for outcome in OUTCOMES:
            totals[outcome] += counts[outcome]
        phases.append(
            {
                "name": phase["name"],
                "requests": len(observations),
                **counts,
                "primary_calls": phase.get("primary_calls"),
                "elapsed_s": phase.get("elapsed_s"),
            }
        )
    return {**totals, "total": sum(totals.values()), "phases": phases}
