"""`invoke` Lambda: one provider call for one candidate of the chain, as a workflow task.

Wiring only: build the ports once per execution environment, hand the event to
`switchboard.invoking.CandidateInvoker` (deadline, provider choice, option capacity, circuit
recording, claim check), return its answer. Throttling leaves as `ProviderThrottled`, the error name the state
machine's Retry/Catch match; every other outcome returns as data.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.capacity import CapacityPort, capacity_counters
from switchboard.invoking import CandidateInvoker
from switchboard.invoking import ProviderThrottled as ProviderThrottled  # the ASL names it here
from switchboard.observability import keys_from_event, logger, metrics, tracer
from switchboard.options.model import ProviderKind
from switchboard.selfcheck import is_selfcheck

__all__ = [
    "Dependencies",
    "ProviderThrottled",
    "dependencies",
    "forget_cached_state",
    "handler",
    "invoke_candidate",
]


class Dependencies:
    """The invoke step's adapters, each reporting fail-open events to the one Powertools sink."""

    def __init__(self) -> None:
        from switchboard.adapter_routing import dynamo_adapter_router
        from switchboard.background_refresh import stale_window
        from switchboard.circuits.service import CircuitService, CircuitSettings
        from switchboard.events import powertools_sink
        from switchboard.options.store import OptionsStore
        from switchboard.payloads import PayloadStore
        from switchboard.providers.base import Provider
        from switchboard.providers.registry import provider_for
        from switchboard.settings import InvokeSettings

        self.settings = InvokeSettings.from_env()
        self.events = powertools_sink()
        ttl_s = self.settings.options_cache_ttl_s
        self.options = OptionsStore(
            self.settings.options_table,
            ttl_s=ttl_s,
            stale_s=stale_window(ttl_s, self.settings.options_cache_stale_s),
            on_event=self.events,
        )
        self.payloads = PayloadStore(self.settings.payload_bucket)
        override = self.settings.provider_override
        self.override = ProviderKind(override) if override else None
        self.circuits: CircuitService | None = None
        if self.settings.circuit_table:
            # The invoker always passes the option's own policy, so the service's options source
            # is never read on this path.
            env = {"CIRCUIT_TABLE": self.settings.circuit_table, "OPTIONS_TABLE": self.settings.options_table}
            self.circuits = CircuitService.from_settings(CircuitSettings.from_env(env), on_event=self.events)
        # Options' capacity counters (`option#<id>` items in the usage table); without USAGE_TABLE no
        # capacity is enforced, and an option without a capacity never reaches the table.
        self.capacity: CapacityPort | None = (
            capacity_counters(self.settings.usage_table) if self.settings.usage_table else None
        )

        def providers(kind: ProviderKind) -> Provider:
            return provider_for(kind, override=self.override)

        self.providers = providers
        # Tenant adapters (issue 16): rows cached as long as options are.
        self.adapters = dynamo_adapter_router(
            self.settings.adapters_table, ttl_s=self.settings.options_cache_ttl_s, on_event=self.events
        )
        self.invoker = CandidateInvoker(
            options=self.options,
            payloads=self.payloads,
            circuits=self.circuits,
            providers=providers,
            events=self.events,
            log_answers=self.settings.log_prompts,
            capacity=self.capacity,
            adapters=self.adapters,
        )


@lru_cache(maxsize=1)
def _deps() -> Dependencies:
    return Dependencies()


def dependencies() -> Dependencies:
    """This execution environment's adapters, built on first use (tests inspect their wiring)."""
    return _deps()


def forget_cached_state() -> None:
    """Behave as a fresh execution environment: the next call builds clients and caches anew."""
    _deps.cache_clear()


def invoke_candidate(event: dict[str, Any], now_ms: float | None = None) -> dict[str, Any]:
    return _deps().invoker.invoke(event, now_ms)


@logger.inject_lambda_context
@keys_from_event(request_id="request_id", route="route")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck
        from switchboard.settings import InvokeSettings

        def init() -> None:
            deps = _deps()
            # Every provider module a chain may need, imported as the first call would import it.
            for kind in ProviderKind:
                deps.providers(kind)

        return selfcheck.report("invoke", settings=InvokeSettings.from_env, init=init)
    return invoke_candidate(event)
