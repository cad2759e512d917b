"""Capacity-aware routing: an option's share of its provider quota, taken before each call.

An option's ``capacity`` (``rpm``, ``tpm``) is what this deployment may send it per minute, across
every Lambda instance. Before a provider call the caller (the invoke step, or the streaming walk)
asks :meth:`CapacityGuard.admit` for one request and an estimate of its tokens; DynamoDB's
conditional ``ADD`` (:class:`switchboard.quotas.service.CapacityCounters`) answers for the whole
fleet. A refusal is ``saturated``: the candidate is skipped like an open circuit, with no provider
call and nothing recorded against its circuit (the provider is not unhealthy, we are at our share
of it). After the call :meth:`CapacityGuard.settle` replaces the estimate with the tokens the
provider reported (0 when the call failed: a refused request used no tokens).

Why a guard around the counters rather than the counters themselves: three decisions belong
together and must be the same on both request paths. An option without a ``capacity`` costs no
DynamoDB call; the usage table being unreachable admits the call (fail-open, event
``CapacityStoreUnavailable``: losing the count must not take the fleet down); a refusal is counted
per option (``CandidateSaturated``) so the dashboard shows which option runs out.

No boto3 here: the counters arrive as :class:`CapacityPort` (:func:`capacity_counters` builds the
DynamoDB one for the handlers, importing the adapter only when called).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from switchboard.contract import metrics as metric_names
from switchboard.quotas.model import CHARS_PER_TOKEN, estimate_tokens

if TYPE_CHECKING:
    from switchboard.events import Measurements
    from switchboard.options.model import LlmOption
    from switchboard.providers.base import ChatRequest, EmbeddingRequest
    from switchboard.quotas.service import CapacityTaken

__all__ = [
    "NOT_COUNTED",
    "Admission",
    "CapacityGuard",
    "CapacityPort",
    "capacity_counters",
    "prompt_chars",
    "request_tokens",
    "saturated_message",
]


class CapacityPort(Protocol):
    """What the guard needs of :class:`switchboard.quotas.service.CapacityCounters`."""

    def take(self, option_id: str, tokens: int, *, rpm: int | None, tpm: int | None) -> CapacityTaken | None:
        """One request and ``tokens`` of the option's current minute; None when it does not fit."""
        ...

    def reconcile(self, taken: CapacityTaken, actual_tokens: int) -> None:
        """Correct the tokens taken with the call's real usage."""
        ...


@dataclass(frozen=True)
class Admission:
    """The guard's answer for one candidate: ``saturated``, or admitted with what to settle later."""

    saturated: bool = False
    taken: CapacityTaken | None = None
    """None: nothing was counted (no capacity, no store, or the store was down)."""
    limit: str | None = None
    """``rpm`` or ``tpm`` when saturated: which of the option's limits the request did not fit."""


NOT_COUNTED = Admission()


def prompt_chars(request: ChatRequest | EmbeddingRequest) -> int:
    """Characters of input the provider will tokenize: message text, tool calls and tool schemas.

    Images are left out (their token cost depends on the model); the estimate is reconciled with
    the provider's count after the call, so it only has to be the right size, not exact.
    """
    from switchboard.providers.base import EmbeddingRequest

    if isinstance(request, EmbeddingRequest):
        return sum(
            len(item) if isinstance(item, str) else len(item) * CHARS_PER_TOKEN for item in request.inputs
        )
    import json

    chars = 0
    for message in request.messages:
        chars += len(message.text)
        chars += sum(len(call.name) + len(call.arguments) for call in message.tool_calls)
    if request.tools:
        chars += len(json.dumps([tool.to_openai() for tool in request.tools], separators=(",", ":")))
    return chars


def request_tokens(request: ChatRequest | EmbeddingRequest) -> int:
    """The tokens to take before the call (:func:`switchboard.quotas.model.estimate_tokens`):
    the prompt, plus ``max_tokens`` (or the default reserve) for a chat answer; embeddings answer
    with no generated tokens."""
    from switchboard.providers.base import EmbeddingRequest

    if isinstance(request, EmbeddingRequest):
        return estimate_tokens(prompt_chars(request), 0)
    return estimate_tokens(prompt_chars(request), request.max_tokens)


def saturated_message(option_id: str, limit: str | None) -> str:
    per_minute = {"rpm": "requests", "tpm": "tokens"}.get(limit or "", "requests or tokens")
    return f"option {option_id} has used its {per_minute} per minute ({limit or 'capacity'}) this minute"


class CapacityGuard:
    """Takes and settles an option's capacity (see the module docstring)."""

    def __init__(
        self, counters: CapacityPort | None, events: Measurements, *, logger: Any | None = None
    ) -> None:
        self._counters = counters
        self._events = events
        self._logger = logger

    @property
    def counters(self) -> CapacityPort | None:
        """The fleet-wide counters it takes from (read-only: wiring checks in tests)."""
        return self._counters

    def admit(self, option: LlmOption, request: ChatRequest | EmbeddingRequest) -> Admission:
        """Take one request and the estimated tokens of ``option``'s current minute.

        Never raises: an option without capacity (or a guard without counters) is admitted without
        a round trip, a store failure is admitted with the ``CapacityStoreUnavailable`` event.
        """
        capacity = option.capacity
        if self._counters is None or capacity is None or (capacity.rpm is None and capacity.tpm is None):
            return NOT_COUNTED
        tokens = request_tokens(request)
        try:
            taken = self._counters.take(option.id, tokens, rpm=capacity.rpm, tpm=capacity.tpm)
        except Exception as exc:  # the usage table is down: call anyway, and say so
            self._store_failed(option.id, "take", exc)
            return NOT_COUNTED
        if taken is None:
            limit = _limit_hit(tokens, capacity.rpm, capacity.tpm)
            self._events.option_count(metric_names.CANDIDATE_SATURATED, option.id)
            self._events.count(metric_names.CANDIDATE_SATURATED)
            return Admission(saturated=True, limit=limit)
        return Admission(taken=taken)

    def settle(self, admission: Admission, actual_tokens: int) -> None:
        """Replace the estimate with ``actual_tokens`` (0 when the call failed). Never raises."""
        if self._counters is None or admission.taken is None:
            return
        try:
            self._counters.reconcile(admission.taken, max(0, actual_tokens))
        except Exception as exc:
            self._store_failed(admission.taken.option_id, "reconcile", exc)

    def _store_failed(self, option_id: str, step: str, exc: Exception) -> None:
        self._events(
            metric_names.CAPACITY_STORE_UNAVAILABLE,
            {"option_id": option_id, "step": step, "reason": type(exc).__name__, "detail": str(exc)[:200]},
        )


def _limit_hit(tokens: int, rpm: int | None, tpm: int | None) -> str | None:
    """Which limit most likely refused: ``tpm`` when the request alone is larger than it, else
    unknown without another read (the counters answer only fits / does not fit), reported as the
    only limit set when there is one."""
    if tpm is not None and tokens > tpm:
        return "tpm"
    if rpm is not None and tpm is None:
        return "rpm"
    if tpm is not None and rpm is None:
        return "tpm"
    return None


def capacity_counters(usage_table: str) -> CapacityPort:
    """The usage table's capacity counters for a handler. The DynamoDB client is made on the first
    count, so a function whose options have no capacity never builds it (cold start)."""
    from switchboard.quotas.dynamo import DynamoUsageCounters
    from switchboard.quotas.service import CapacityCounters

    return CapacityCounters(DynamoUsageCounters(usage_table, client=_ClientOnFirstUse("dynamodb")))


class _ClientOnFirstUse:
    """A `switchboard.aws` client, made when one of its operations is first looked up."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            from switchboard import aws

            self._client = aws.client(self._service)
        return getattr(self._client, name)
