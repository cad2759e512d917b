"""Metric and event names: the Lambda code emits exactly these, the alarms and the dashboard read them.

Every name here is an EMF metric in namespace :data:`NAMESPACE` with the dimension
``service=`` :data:`SERVICE` (per-option metrics add ``option=<id>``). An *event* is a counted
occurrence (value 1) that an `EventSink` (``switchboard.events``) turns into that metric plus a log
line; the stores and clients emit them through their ``on_event`` hook.

:data:`DEGRADED_DEPENDENCY_EVENTS` lists what a component emits when a dependency fails and it
carries on anyway (fail-open): each one must be on the dashboard and behind an alarm, so the
on-call sees "serving last-known-good", not only a log line (a test on the synthesized template
holds infra to this list).

Stdlib only: infra (CDK), the local stack and the handlers all import this module.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "Switchboard"
SERVICE: Final = "switchboard"
SERVICE_DIMENSION: Final = "service"
OPTION_DIMENSION: Final = "option"
ROUTE_DIMENSION: Final = "route"
"""The route alias a request named (``model``); only routes the routing document knows, never the
caller's raw text (one dimension value per route keeps the metric count bounded)."""

# --- Traffic (gateway) -------------------------------------------------------------------------------
CHAT_COMPLETIONS: Final = "ChatCompletions"
EMBEDDINGS_REQUESTS: Final = "EmbeddingsRequests"
# Streamed chat completions (issue 14): they do not pass through the workflow, so they count here.
STREAMED_REQUESTS: Final = "StreamedRequests"
STREAM_TIME_TO_FIRST_TOKEN: Final = "StreamTimeToFirstToken"  # noqa: S105 - a metric name, not a secret
"""Milliseconds from the request to the first content byte sent to the client."""
STREAM_FAILED_MID_STREAM: Final = "StreamFailedMidStream"
"""A stream that ended with an error event after content had been sent (never a clean end)."""
STREAM_FAILED_OVER: Final = "StreamFailedOver"
"""A candidate failed before its first content byte and the next one was tried (invisible to the client)."""
STREAM_ANSWER_NOT_CACHED: Final = "StreamAnswerNotCached"
"""A streamed answer on a caching route could not be written to the answer cache (table or payload
bucket unreachable, refused): the client had its whole answer; the cache misses it (fail-open)."""
UNEXPECTED_ERRORS: Final = "UnexpectedErrors"
WORKFLOW_FAILED: Final = "WorkflowFailed"
REJECTED_NO_HEALTHY_OPTION: Final = "Rejected_NoHealthyOption"
DEGRADED_ANSWER_PREFIX: Final = "DegradedAnswer_"
DEGRADED_KINDS: Final = ("cache", "static", "smaller_model")

# --- Per-route SLIs (gateway; dimensions service + route): what the SLO alarms divide --------------
# One value per request that named a known route the caller may use and passed validation (the
# valid requests of the SLO; 4xx refusals of the caller's own making are not counted).
ROUTE_REQUESTS: Final = "RouteRequests"
"""1 per valid request of the route, whole or streamed: the SLIs' denominator."""
ROUTE_BAD_ANSWERS: Final = "RouteBadAnswers"
"""1 per valid request the gateway failed: answered 5xx (503 no healthy option or no routing, 504
deadline, 500) or a stream that ended with an error event. Degraded 200 answers and 429s (the
caller's own limits and budgets) are not bad answers: they have their own metrics."""
ROUTE_LATENCY: Final = "RouteLatency"
"""Milliseconds from the gateway receiving a valid request to its whole answer (streamed: to the
first content byte), one value per request that was not a bad answer (unit Milliseconds). The
latency SLO counts the values above the threshold with CloudWatch's ``TC(threshold:)`` statistic, so
every value must be sent (EMF sends them all; no pre-aggregation)."""

# --- Providers (invoke step; ProviderCalls and ProviderLatency carry the option dimension) --------
PROVIDER_CALLS: Final = "ProviderCalls"
PROVIDER_LATENCY: Final = "ProviderLatency"
PROVIDER_ERROR_PREFIX: Final = "ProviderError_"
PROVIDER_ERROR_CLASSES: Final = (
    "throttled",
    "timeout",
    "unavailable",
    "malformed",
    "bad_request",
    "context_too_long",
    "content_filtered",
)

# --- Capacity (switchboard.capacity: an option's rpm/tpm share of its provider quota) -------------
CANDIDATE_SATURATED: Final = "CandidateSaturated"
"""A candidate skipped because its option used its `capacity` this minute (no provider call, nothing
on its circuit); per option and per service. Not a `ProviderError_*`: no provider was asked."""
CAPACITY_STORE_UNAVAILABLE: Final = "CapacityStoreUnavailable"
"""The usage table could not take or reconcile an option's capacity: the call went ahead uncounted
(fail-open)."""

# --- Circuits (circuit service and store) ----------------------------------------------------------
CIRCUIT_TRANSITION: Final = "CircuitTransition"
CIRCUIT_OPENED: Final = "CircuitOpened"
CIRCUIT_CLOSED: Final = "CircuitClosed"
CIRCUIT_STORE_UNAVAILABLE: Final = "CircuitStoreUnavailable"
"""The circuit table could not be read or written: every circuit behaves as CLOSED (fail-open)."""
CIRCUIT_STORE_CONTENTION: Final = "CircuitStoreContention"

# --- Routing configuration (AppConfig agent client, chat service) -----------------------------------
ROUTING_ANSWER_INVALID: Final = "RoutingAnswerInvalid"
"""The AppConfig extension answered flags the gateway refused (then one of the two below follows)."""
ROUTING_LAST_KNOWN_GOOD: Final = "RoutingLastKnownGood"
"""The extension failed: routing served from the last good answer for this caller's context."""
ROUTING_ENVIRONMENT_DEFAULT: Final = "RoutingEnvironmentDefault"
"""The extension failed and nothing was known for this context: the deploy-time default routes."""
ROUTING_UNAVAILABLE: Final = "RoutingUnavailable"
"""Neither the extension nor any fallback: the request was answered 503."""
ROUTE_NAMES_UNKNOWN_OPTIONS: Final = "RouteNamesUnknownOptions"

# --- Tenant prompt profiles (switchboard.routing.profile_client) ------------------------------------
PROFILES_ANSWER_INVALID: Final = "ProfilesAnswerInvalid"
"""The AppConfig extension answered a prompt-profiles document the gateway refused (then one of the
two below follows)."""
PROFILES_LAST_KNOWN_GOOD: Final = "ProfilesLastKnownGood"
"""The extension failed: prompt profiles served from the last good document."""
PROFILES_BUILT_IN_DEFAULT: Final = "ProfilesBuiltInDefault"
"""The extension failed and no document was ever read: no prefix, no defaults, every route."""

# --- Options catalogue (options store, chat service) ------------------------------------------------
OPTIONS_REFRESHED: Final = "OptionsRefreshed"
OPTIONS_REFRESH_FAILED: Final = "OptionsRefreshFailed"
OPTIONS_LAST_KNOWN_GOOD: Final = "OptionsLastKnownGood"
"""A refresh failed and the store kept serving its last-known-good snapshot."""
OPTIONS_CATALOGUE_UNAVAILABLE: Final = "OptionsCatalogueUnavailable"
"""The catalogue was unreadable with no snapshot: chains pass through unchecked (gateway) or the
candidate is skipped as unavailable (invoke step)."""
INVALID_OPTION_SKIPPED: Final = "InvalidOptionSkipped"

# --- Tenant adapters on the request path (switchboard.adapter_routing, issue 16) ------------------
ADAPTER_LOOKUP_FAILED: Final = "AdapterLookupFailed"
"""The tenant adapters table could not be read for an option with an adapter family: the tenant was
served by its last row read, or by the option's base component (fail-open)."""
ADAPTER_FALLBACK: Final = "AdapterFallback"
"""A tenant's adapter (or its previous one) failed and the next component (previous adapter, then
the base) was tried within the same candidate; the event names the component."""

# --- Metering (switchboard.metering) ---------------------------------------------------------------
METERING_FAILED: Final = "MeteringFailed"
"""An answered request's usage could not be recorded (usage table unreachable, throttled, refused):
the answer went out anyway (metering fails open) and the metered totals are short by that request.
To join :data:`DEGRADED_DEPENDENCY_EVENTS` (dashboard and alarm) when metering is on the request path."""

# --- Limits and budgets (switchboard.quotas) -----------------------------------------------------
RATE_LIMITED: Final = "RateLimited"
"""A request refused with 429 ``rate_limit_exceeded``: the tenant is over its rpm or tpm."""
BUDGET_EXHAUSTED: Final = "BudgetExhausted"
"""A request refused with 429 ``insufficient_quota``: the tenant's budget is used up and set to reject."""

DEGRADED_DEPENDENCY_EVENTS: Final = (
    ROUTING_ANSWER_INVALID,
    ROUTING_LAST_KNOWN_GOOD,
    ROUTING_ENVIRONMENT_DEFAULT,
    ROUTING_UNAVAILABLE,
    OPTIONS_REFRESH_FAILED,
    OPTIONS_LAST_KNOWN_GOOD,
    OPTIONS_CATALOGUE_UNAVAILABLE,
    CIRCUIT_STORE_UNAVAILABLE,
    CAPACITY_STORE_UNAVAILABLE,
    PROFILES_ANSWER_INVALID,
    PROFILES_LAST_KNOWN_GOOD,
    PROFILES_BUILT_IN_DEFAULT,
    ADAPTER_LOOKUP_FAILED,
)
"""Fail-open events: a dependency failed and the request carried on (or, for RoutingUnavailable,
was refused with a 503). Each is on the dashboard and behind an alarm."""

LAST_KNOWN_GOOD_EVENTS: Final = (
    ROUTING_LAST_KNOWN_GOOD,
    ROUTING_ENVIRONMENT_DEFAULT,
    OPTIONS_LAST_KNOWN_GOOD,
    OPTIONS_CATALOGUE_UNAVAILABLE,
    PROFILES_LAST_KNOWN_GOOD,
    PROFILES_BUILT_IN_DEFAULT,
)
"""Serving something other than the current configuration; sustained, this is the
"serving last-known-good for N minutes" alarm."""

ROUTINE_EVENTS: Final = (OPTIONS_REFRESHED,)
"""Events that are not news (counted, logged at debug only)."""


def degraded_answer(kind: str) -> str:
    """``DegradedAnswer_<kind>``, the metric of one ``x-switchboard-degraded`` value."""
    return f"{DEGRADED_ANSWER_PREFIX}{kind}"


def provider_error(error_class: str) -> str:
    """``ProviderError_<class>``, the metric of one provider error class."""
    return f"{PROVIDER_ERROR_PREFIX}{error_class}"
