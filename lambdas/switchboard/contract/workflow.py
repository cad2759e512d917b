"""The request workflow's boundary: definition substitutions, input and output keys, timestamps.

``statemachines/request_workflow.asl.json`` is filled by CDK (``infra/constructs/request_workflow``)
and by the local stack with :data:`SUBSTITUTIONS`; the gateway writes :data:`INPUT_KEYS` and reads
:data:`OUTPUT_KEYS`. ``tests/unit/test_contract.py`` holds the ASL file to these names.

Stdlib only: infra (CDK), the local stack and the handlers all import this module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

# --- Definition substitutions (``${Name}`` in the ASL) -------------------------------------------
SUBST_INVOKE_FUNCTION_ARN: Final = "InvokeFunctionArn"
SUBST_CIRCUIT_FUNCTION_ARN: Final = "CircuitFunctionArn"
SUBST_CIRCUIT_TABLE: Final = "CircuitTable"
SUBST_CACHE_TABLE: Final = "CacheTable"
SUBSTITUTIONS: Final = (
    SUBST_INVOKE_FUNCTION_ARN,
    SUBST_CIRCUIT_FUNCTION_ARN,
    SUBST_CIRCUIT_TABLE,
    SUBST_CACHE_TABLE,
)

# --- Input the gateway starts each execution with -------------------------------------------------
IN_REQUEST_ID: Final = "request_id"
IN_TENANT: Final = "tenant"
IN_ROUTE: Final = "route"
IN_VARIANT: Final = "variant"
"""Carried for the execution history (the console shows which flag variant routed the request)."""
IN_CHAIN: Final = "chain"
IN_SMALLER_CHAIN: Final = "smaller_chain"
IN_DEGRADE: Final = "degrade"
IN_STATIC_ANSWER: Final = "static_answer"
IN_CONTEXT_FALLBACK: Final = "context_fallback"
IN_FORCE_DEGRADED: Final = "force_degraded"
IN_SKIP_UNSUPPORTED: Final = "skip_unsupported"
"""The variant's `skip_unsupported`: `DidCandidateAnswer?` moves past a candidate that lacks a feature."""
IN_CACHE_KEY: Final = "cache_key"
IN_CACHE_TTL_S: Final = "cache_ttl_s"
IN_CACHE_EXPIRES_AT: Final = "cache_expires_at"
IN_REQUEST: Final = "request"
IN_NOW: Final = "now"
"""The request's start as :data:`TIMESTAMP_FORMAT`: ``CheckCircuit`` compares ``open_until`` with it."""
IN_NOW_EPOCH_S: Final = "now_epoch_s"
IN_DEADLINE_MS: Final = "deadline_ms"
INPUT_KEYS: Final = frozenset(
    {
        IN_REQUEST_ID,
        IN_TENANT,
        IN_ROUTE,
        IN_VARIANT,
        IN_CHAIN,
        IN_SMALLER_CHAIN,
        IN_DEGRADE,
        IN_STATIC_ANSWER,
        IN_CONTEXT_FALLBACK,
        IN_FORCE_DEGRADED,
        IN_SKIP_UNSUPPORTED,
        IN_CACHE_KEY,
        IN_CACHE_TTL_S,
        IN_CACHE_EXPIRES_AT,
        IN_REQUEST,
        IN_NOW,
        IN_NOW_EPOCH_S,
        IN_DEADLINE_MS,
    }
)

# --- Output the gateway reads ---------------------------------------------------------------------
OUT_OUTCOME: Final = "outcome"
OUT_OPTION_ID: Final = "option_id"
OUT_PHASE: Final = "phase"
OUT_RESULT: Final = "result"
OUT_KIND: Final = "kind"
OUT_TEXT: Final = "text"
OUT_ERROR: Final = "error"
OUT_CHAIN: Final = "chain"
"""Returned with a rejection: the chain the workflow went through."""
OUT_ADAPTER: Final = "adapter"
"""Returned with an answer: the tenant adapter that served (``<family>:v<version>`` or ``base``), or
null when the option names no adapter family (issue 16); the gateway's ``x-switchboard-adapter``."""
OUTPUT_KEYS: Final = frozenset(
    {OUT_OUTCOME, OUT_OPTION_ID, OUT_PHASE, OUT_RESULT, OUT_KIND, OUT_TEXT, OUT_ERROR, OUT_CHAIN, OUT_ADAPTER}
)

# --- Timestamps -----------------------------------------------------------------------------------
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
"""``YYYY-MM-DDTHH:MM:SSZ``, UTC, whole seconds: every timestamp the project writes for a machine.

The workflow's Choice states compare ``open_until`` with the input's ``now``
(``TimestampGreaterThanPath``); moto's interpreter parses only this form (docs: FACTS.md, issue 3).
"""


def format_timestamp(moment: datetime) -> str:
    """``moment`` (timezone-aware) as :data:`TIMESTAMP_FORMAT` in UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: timestamps must be timezone-aware (UTC)")
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def timestamp_now() -> str:
    """Now as :data:`TIMESTAMP_FORMAT`."""
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


def timestamp_from_epoch(epoch_s: float) -> str:
    """Epoch seconds as :data:`TIMESTAMP_FORMAT` (fractions dropped)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime(TIMESTAMP_FORMAT)
