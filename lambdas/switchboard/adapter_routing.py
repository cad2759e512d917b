"""Which inference component answers a tenant on an option that names an adapter family (issue 16).

An option with ``adapter_family`` (:class:`switchboard.options.model.LlmOption`) serves every tenant
of that family: the tenant's row in the tenant adapters table (written only by the
model-deployment workflow, :mod:`switchboard.lifecycle.adapter_store`) says which LoRA adapter, an
inference component on the option's base component, serves it. :class:`AdapterRouter` reads that
row at request time and turns it into the components to try, in order
(:meth:`AdapterRouter.attempts`):

1. the **canary** version when the row is in state ``canary`` and the user falls in its share:
   :func:`canary_bucket` hashes (tenant, user or tenant, family) into 0..99, deterministic per
   user as AppConfig's multi-variant splits are, so one user keeps one version for the whole bake
   and the share is spread evenly over users; else the **live** version;
2. then the tenant's **previous** adapter (for a canary user: the live version) and last the
   option's **base** component: the circuit breaker's "an adapter is a candidate like any other"
   within one candidate. The invoke step (and the streaming path) moves to the next attempt on a
   failure that is not the request's fault (``unavailable``, ``malformed``, ``timeout`` with time
   left); a client error or throttling ends the candidate as before. The option's circuit records
   the candidate's outcome once (one tenant's broken adapter must not open the circuit every
   other tenant uses); each fallback is the ``AdapterFallback`` event naming the component, and
   SageMaker's own per-component metrics (``AWS/SageMaker``, dimension ``InferenceComponentName``)
   are what the workflow's canary alarms watch.

Rows are cached per execution environment for ``ttl_s`` seconds (absent rows too: most tenants
have no adapter), like the options catalogue. A table error fails open: the last row read for that
tenant if there is one, else the base component, with the ``AdapterLookupFailed`` event (on the
dashboard and behind an alarm), and the next read waits another ``ttl_s``.

Regions: an adapter family that lists regions has one option per region (``<option_id>-<region>``,
``region`` set, that region's base as ``inference_component``, the same ``adapter_family``). The
deployment workflow makes each adapter version under the same component name in every region, so
the tenant's one row resolves, on any of those options, to a component of the option's own region
(the provider calls the option's region), and a chain listing them fails over across regions to the
same version (``tests/unit/test_adapter_routing_regions.py``).

The answer names what served in ``x-switchboard-adapter``: ``<family>:v<version>`` or ``base``
(:attr:`AdapterAttempt.label`); absent when the option has no adapter family.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from switchboard.contract import metrics as metric_names
from switchboard.errors import ErrorClass

if TYPE_CHECKING:
    from switchboard.lifecycle.adapter_store import AdapterRef, TenantAdapter
    from switchboard.options.model import LlmOption

__all__ = [
    "ADAPTER_HEADER",
    "BASE_LABEL",
    "FALLBACK_ERRORS",
    "AdapterAttempt",
    "AdapterRouter",
    "TenantAdapterSource",
    "canary_bucket",
    "dynamo_adapter_router",
]

ADAPTER_HEADER = "x-switchboard-adapter"
BASE_LABEL = "base"
DEFAULT_TTL_S = 10.0

FALLBACK_ERRORS = frozenset({ErrorClass.UNAVAILABLE, ErrorClass.MALFORMED, ErrorClass.TIMEOUT})
"""Failures after which the next attempt (previous adapter, then base) is tried within the same
candidate: the component's fault, not the request's (client errors) nor the endpoint's load
(throttling goes to the workflow's Retry as before)."""


class TenantAdapterSource(Protocol):
    """The read the request path needs (``TenantAdapterStore.get``)."""

    def get(self, family: str, tenant: str) -> TenantAdapter | None: ...


@dataclass(frozen=True, slots=True)
class AdapterAttempt:
    """One component to call for a candidate, and what ``x-switchboard-adapter`` says if it answers."""

    component: str | None
    """The ``InferenceComponentName``; None: the option's own (no adapter family)."""
    label: str | None
    """``<family>:v<version>``, ``base``, or None when the option names no adapter family."""

    def apply(self, option: LlmOption) -> LlmOption:
        """The option as the provider must call it for this attempt."""
        if self.component is None or self.component == option.inference_component:
            return option
        from dataclasses import replace

        return replace(option, inference_component=self.component)


NO_FAMILY = AdapterAttempt(component=None, label=None)


def canary_bucket(tenant: str, user: str | None, family: str) -> int:
    """0..99, the same for one (tenant, user, family) everywhere: a user is in a canary share of
    ``p`` percent when this is below ``p``. A request without ``user`` counts as its tenant."""
    key = "\x1f".join((tenant, user or tenant, family)).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 100


def _label(family: str, ref: AdapterRef) -> str:
    return f"{family}:v{ref.version}"


@dataclass
class _Cached:
    record: TenantAdapter | None
    read_at: float


class AdapterRouter:
    """Tenant adapter rows behind a short cache, turned into attempts (see the module docstring)."""

    def __init__(
        self,
        source: TenantAdapterSource | None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._source = source
        self.ttl_s = ttl_s
        self._clock = clock
        self._on_event = on_event
        self._cache: dict[tuple[str, str], _Cached] = {}

    def attempts(self, option: LlmOption, *, tenant: str | None, user: str | None) -> list[AdapterAttempt]:
        """The components to try for this candidate, best first (one, without a family)."""
        family = option.adapter_family
        if not family:
            return [NO_FAMILY]
        base = AdapterAttempt(component=option.inference_component, label=BASE_LABEL)
        record = self.record(family, tenant) if tenant else None
        if record is None:
            return [base]
        chosen: list[AdapterRef] = []
        canary = record.canary
        if (
            record.state.value == "canary"
            and canary is not None
            and canary_bucket(tenant or "", user, family) < record.canary_share_percent
        ):
            chosen.append(canary)
        for ref in (record.live, record.previous):
            if ref is not None:
                chosen.append(ref)
        attempts: list[AdapterAttempt] = []
        seen: set[str] = set()
        for ref in chosen:
            if not ref.component or ref.component in seen or ref.component == option.inference_component:
                continue
            seen.add(ref.component)
            attempts.append(AdapterAttempt(component=ref.component, label=_label(family, ref)))
        return [*attempts, base]

    def record(self, family: str, tenant: str) -> TenantAdapter | None:
        """The tenant's row (None: no adapter), cached; last-known or None when the table fails."""
        key = (family, tenant)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached.read_at < self.ttl_s:
            return cached.record
        if self._source is None:
            return None
        try:
            record = self._source.get(family, tenant)
        except Exception as exc:
            kept = cached.record if cached is not None else None
            self._emit(
                metric_names.ADAPTER_LOOKUP_FAILED,
                {
                    "family": family,
                    "tenant": tenant,
                    "serving": "last_known" if kept is not None else BASE_LABEL,
                    "reason": f"{type(exc).__name__}: {exc}"[:300],
                },
            )
            self._cache[key] = _Cached(kept, now)  # the next read waits another ttl
            return kept
        self._cache[key] = _Cached(record, now)
        return record

    def invalidate(self) -> None:
        """Forget every row (the next read of each goes to the table)."""
        for cached in self._cache.values():
            cached.read_at = -math.inf

    def fell_back(
        self, option: LlmOption, tenant: str | None, failed: AdapterAttempt, error: ErrorClass
    ) -> None:
        """One attempt failed and the next is tried (``AdapterFallback``)."""
        self._emit(
            metric_names.ADAPTER_FALLBACK,
            {
                "option_id": option.id,
                "family": option.adapter_family,
                "tenant": tenant,
                "component": failed.component,
                "adapter": failed.label,
                "error_class": error.value,
            },
        )

    def _emit(self, name: str, fields: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(name, fields)
        except Exception:  # a metrics hook never breaks a request
            return


def dynamo_adapter_router(
    table_name: str | None,
    *,
    ttl_s: float = DEFAULT_TTL_S,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> AdapterRouter:
    """The router on the tenant adapters table (None: no table, every tenant gets the base)."""
    if not table_name:
        return AdapterRouter(None, ttl_s=ttl_s, on_event=on_event)
    return AdapterRouter(_LazyDynamoSource(table_name), ttl_s=ttl_s, on_event=on_event)


class _LazyDynamoSource:
    """The DynamoDB store, built on the first lookup: a request path without adapter families
    never imports the lifecycle package nor makes the client."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self._store: Any = None

    def get(self, family: str, tenant: str) -> TenantAdapter | None:
        if self._store is None:
            from switchboard import aws
            from switchboard.lifecycle.adapter_store import DynamoTenantAdapterStore

            self._store = DynamoTenantAdapterStore(self.table_name, client=aws.client("dynamodb"))
        found: TenantAdapter | None = self._store.get(family, tenant)
        return found
