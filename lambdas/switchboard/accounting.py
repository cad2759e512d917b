"""Limits, budgets and metering around one request (issue 15): before routing, after the answer.

:class:`RequestAccounting` is what :class:`switchboard.chat.ChatService` calls, for whole and
streamed requests, chat and embeddings alike:

- **before routing** (:meth:`RequestAccounting.admit`): the tenant's quotas
  (:meth:`switchboard.quotas.service.TenantQuotas.before_call`): a 429 ``rate_limit_exceeded`` with
  ``Retry-After`` over rpm/tpm, a 429 ``insufficient_quota`` for an exhausted ``reject`` budget, both
  before any provider is called; otherwise the budget status (``ok|low|exhausted``) that goes into
  the flags' evaluation context as ``budget``, and the tokens reserved from an estimate.
- **after the answer** (:meth:`RequestAccounting.settle`): the usage the client sees in the
  answer's ``usage`` is metered (:class:`switchboard.metering.Metering`), the reservation is
  reconciled with the real total and the spend added to the budget; a request that got no answer
  gives its reservation back. Degraded answers no provider produced (the static text, a cached
  answer) are metered as the client saw them, under the option id ``static`` / ``cache``, at no
  cost; they take nothing from the tenant's tpm or budget (no provider was called).

**DynamoDB round trips** (the usage table; ``Metering``/``TenantQuotas`` hold the details). The
client waits for the first column only: in AWS the second runs after the response is returned
(below); locally it still runs before it.

=======================  ==================================  ==================================
tenant                   before the provider call (on the    after the answer (off the path in
                         request path)                       AWS; before the response locally)
=======================  ==================================  ==================================
no limits, no budget     none                                1: usage ``ADD``
limits (rpm and/or tpm)  1: the minute window's conditional  1: usage ``ADD`` ‖ reconcile
                         ``UpdateItem`` (admit or 429)       ``UpdateItem``
budget only              none                                1: usage ``ADD`` ‖ spend ``ADD``
limits and budget        1: the window's ``UpdateItem``      1: all three at once
=======================  ==================================  ==================================

plus, before the call, one ``BatchGetItem`` (a tenant's limits, budget and spend) when this Lambda
instance has not read them in the last :data:`~switchboard.quotas.service.SETTINGS_TTL_S` (the
first request of a tenant on an instance, then at most one every 5 s). A request that gets no
answer writes only the reconcile that gives its reservation back (tenants with limits). The writes
after the answer are independent items, issued concurrently (:class:`ConcurrentWrites`), so they
cost one round trip of latency however many there are (``‖`` above). A reconcile is skipped when
the estimate was exact and a spend when nothing was spent.

When they run: for a streamed request, after ``data: [DONE]`` has been sent (the client has its
whole answer, only the connection's close waits). For a whole request, the gateway's
``run_writes`` is :class:`switchboard.after_response.DeferredWrites`: in AWS an internal Lambda
extension holds the invocation open and runs them *after* the response has been returned (the
invocation ends when they are done, or at its deadline minus a margin); locally (``make local``,
tests), with ``SWITCHBOARD_AFTER_RESPONSE=inline``, or if the extension could not register, they
run before the response, as :class:`ConcurrentWrites`. So in AWS the one DynamoDB round trip
metering and limits add to the request path is the window's conditional ``UpdateItem``, for
tenants with limits; none for the others (plus the settings ``BatchGetItem`` on a cache miss).
(The invoke step's and a stream's option capacity writes, :mod:`switchboard.capacity`, are counted
there, not here.)

Everything here fails open: a usage table that cannot be read admits the request without quotas,
a write that fails is logged (metering emits ``MeteringFailed``), and the answer goes out.
No boto3 here: the quotas and the meter are small Protocols with in-memory fakes in the tests.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Protocol

from switchboard.contract import metrics as metric_names
from switchboard.events import EventSink
from switchboard.metering import Usage
from switchboard.options.model import LlmOption, Price
from switchboard.providers.base import ChatRequest, EmbeddingRequest, TextPart

if TYPE_CHECKING:  # the quotas' module loads only where quotas are wired (handlers.gateway)
    from switchboard.quotas.service import QuotaCheck

__all__ = [
    "NO_PROVIDER_KINDS",
    "Admission",
    "AnsweredUsage",
    "ConcurrentWrites",
    "QuotaGate",
    "RequestAccounting",
    "UsageMeter",
    "Write",
    "WriteRunner",
    "catalogue_prices",
    "prompt_chars",
    "run_in_turn",
]

logger = logging.getLogger(__name__)

NO_PROVIDER_KINDS: Final = frozenset({"static", "cache"})
"""Degraded answers no provider produced for the request: metered at no cost, under their kind."""
CHARS_PER_TOKEN_ID: Final = 4
"""A token id of an embeddings input given as token ids counts as this many characters."""

Write = Callable[[], None]
WriteRunner = Callable[[Sequence[Write]], None]


class QuotaGate(Protocol):
    """A tenant's limits and budget (:class:`switchboard.quotas.service.TenantQuotas`)."""

    def before_call(self, tenant: str, *, prompt_chars: int, max_tokens: int | None) -> QuotaCheck: ...

    def settlement(self, check: QuotaCheck, *, tokens: int, usd: Decimal) -> list[Write]: ...


class UsageMeter(Protocol):
    """Where answered requests' usage is recorded (:class:`switchboard.metering.Metering`)."""

    def cost_of(self, usage: Usage) -> Decimal: ...

    def record(self, usage: Usage) -> bool: ...


@dataclass(frozen=True)
class AnsweredUsage:
    """The usage of one answer, as the client sees it in ``usage`` (zeros when it sees none)."""

    option_id: str
    """The option that answered, or the degrade kind (``static``, ``cache``) when none did."""
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    provider_called: bool = True


@dataclass
class Admission:
    """What :meth:`RequestAccounting.admit` decided for one request, until it is settled."""

    tenant: str
    key_id: str | None
    check: QuotaCheck | None
    settled: bool = False

    @property
    def budget(self) -> str | None:
        """The budget status for the evaluation context (None: quotas are not wired)."""
        return self.check.budget if self.check is not None else None


def prompt_chars(request: ChatRequest | EmbeddingRequest) -> int:
    """The characters a request sends the model, for the token estimate of the tpm reservation.

    Text parts, tool calls and results, and tool definitions count; images do not (their base64
    would overestimate by orders of magnitude; the reservation is reconciled with the real usage).
    """
    if isinstance(request, EmbeddingRequest):
        return sum(
            len(item) if isinstance(item, str) else CHARS_PER_TOKEN_ID * len(item) for item in request.inputs
        )
    total = 0
    for message in request.messages:
        if isinstance(message.content, str):
            total += len(message.content)
        else:
            total += sum(len(part.text) for part in message.content if isinstance(part, TextPart))
        total += sum(len(call.name) + len(call.arguments) for call in message.tool_calls)
    for tool in request.tools:
        total += len(tool.name) + len(tool.description or "") + len(str(tool.parameters))
    return total


def run_in_turn(writes: Sequence[Write]) -> None:
    """Run the writes one after the other (tests, and wherever latency does not matter)."""
    for write in writes:
        _run_quietly(write)


def _run_quietly(write: Write) -> None:
    try:
        write()
    except Exception:  # each write fails open on its own; this is the last guard
        logger.exception("an after-answer write failed")


class ConcurrentWrites:
    """Runs a request's after-answer writes at once on a small pool, and waits for all of them.

    One write runs inline (no thread hop). Each runs in a copy of the caller's context, so the
    request's log keys (and the test suite's IAM attribution) follow it into the pool's thread.
    Both the botocore and the project's light DynamoDB client are safe to share between threads.
    """

    def __init__(self, max_workers: int = 3) -> None:
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="settle")
            return self._pool

    def __call__(self, writes: Sequence[Write]) -> None:
        if len(writes) <= 1:
            run_in_turn(writes)
            return
        pool = self._executor()
        futures = [pool.submit(contextvars.copy_context().run, _run_quietly, write) for write in writes]
        wait(futures)

    def run_within(self, writes: Sequence[Write], timeout_s: float) -> bool:
        """Run the writes on the pool (even one) and wait at most ``timeout_s``: False when some were
        still running then (they go on in the pool; :mod:`switchboard.after_response` cuts its wait
        at the invocation's deadline margin with this)."""
        if not writes:
            return True
        pool = self._executor()
        futures = [pool.submit(contextvars.copy_context().run, _run_quietly, write) for write in writes]
        _, running = wait(futures, timeout=max(0.0, timeout_s))
        return not running


class _Catalogue(Protocol):
    def get_many(self, ids: Iterable[str]) -> dict[str, LlmOption]: ...


def catalogue_prices(options: _Catalogue, on_event: EventSink) -> Callable[[str], Price | None]:
    """``price_of`` for :class:`~switchboard.metering.Metering`: the option's price in the options
    catalogue (its per-instance cache). Never raises: an unreadable catalogue prices the request at
    0 (the ``OptionsCatalogueUnavailable`` event says so) and its tokens are still metered."""

    def price_of(option_id: str) -> Price | None:
        try:
            option = options.get_many([option_id]).get(option_id)
        except Exception:
            on_event(metric_names.OPTIONS_CATALOGUE_UNAVAILABLE, {"option_id": option_id})
            return None
        return option.price if option is not None else None

    return price_of


class RequestAccounting:
    """Quotas before a request, metering and reconciliation after it (see the module docstring).

    ``quotas`` or ``meter`` may be None (not wired): that half is skipped.
    """

    def __init__(
        self,
        *,
        quotas: QuotaGate | None = None,
        meter: UsageMeter | None = None,
        run_writes: WriteRunner = run_in_turn,
    ) -> None:
        self._quotas = quotas
        self._meter = meter
        self._run_writes = run_writes

    def admit(self, *, tenant: str, key_id: str | None, request: ChatRequest | EmbeddingRequest) -> Admission:
        """Check the tenant's quotas and reserve tokens; raises the 429s (nothing to settle then)."""
        if self._quotas is None:
            return Admission(tenant, key_id, None)
        max_tokens = request.max_tokens if isinstance(request, ChatRequest) else 0
        check = self._quotas.before_call(tenant, prompt_chars=prompt_chars(request), max_tokens=max_tokens)
        return Admission(tenant, key_id, check)

    def settle(self, admission: Admission, *, route: str, usage: AnsweredUsage | None) -> None:
        """After the answer (``usage``) or the failure (None); once per admission; never raises."""
        if admission.settled:
            return
        admission.settled = True
        try:
            writes = self._writes(admission, route, usage)
        except Exception:  # a bug here must not turn an answer into an error
            logger.exception("settling a request's usage failed")
            return
        self._run_writes(writes)

    def _writes(self, admission: Admission, route: str, usage: AnsweredUsage | None) -> list[Write]:
        writes: list[Write] = []
        tokens, usd = 0, Decimal(0)
        if usage is not None:
            metered = Usage(
                tenant=admission.tenant,
                route=route,
                option_id=usage.option_id,
                key_id=admission.key_id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                provider_called=usage.provider_called,
            )
            if usage.provider_called:
                tokens = usage.prompt_tokens + usage.completion_tokens
            meter = self._meter
            if meter is not None:
                usd = self._cost(meter, metered)

                def record() -> None:
                    meter.record(metered)  # fails open itself: False and a MeteringFailed event

                writes.append(record)
        if self._quotas is not None and admission.check is not None:
            writes += self._quotas.settlement(admission.check, tokens=tokens, usd=usd)
        return writes

    @staticmethod
    def _cost(meter: UsageMeter, usage: Usage) -> Decimal:
        try:
            return meter.cost_of(usage)
        except Exception:  # the price could not be read: the budget misses this cost, the tokens count
            logger.exception("pricing a request failed", extra={"option_id": usage.option_id})
            return Decimal(0)
