"""Feature-flag evaluation: what the AppConfig agent answers for a document and a request context.

In AWS only the AppConfig Lambda extension evaluates multi-variant flags; the gateway sends the
context and reads the answer (:mod:`switchboard.routing.agent_client`), so none of this ships in a
Lambda. It serves the stand-ins for the extension: the agent emulator (:mod:`switchboard_local.agent`,
which the local stack and the benchmark put where the extension would be), ``switchboard flags
evaluate`` and ``switchboard doctor``.

:func:`evaluate_document` returns what the agent returns for a feature-flag profile with a request
context: ``{flag: {"enabled": ..., attrs..., "_variant": ...}}``. Semantics (AppConfig user guide,
"Understanding multi-variant feature flag rules"): variants are tried in order and the first whose
rule matches wins, the rule-less default variant (last) otherwise. A matching variant that is
**disabled still wins** and yields ``{"enabled": false, "_variant": name}`` (the guide's own example
relies on this: a disabled default variant turns the flag off for everyone outside the rule).
Attributes are returned only when the result is enabled ("If a flag sets enabled to true, any
attributes of the flag will be present as well").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from switchboard.routing.decision import RouteDecision, decide_route
from switchboard.routing.document import VALUE_META_KEYS
from switchboard.routing.rules import compile_rule

__all__ = ["UnknownFlagError", "evaluate_document", "evaluate_flag", "evaluate_route"]


class UnknownFlagError(LookupError):
    """Flags were asked for that the document does not define."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        super().__init__(f"unknown flag(s): {', '.join(self.keys)}")


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def evaluate_flag(key: str, value: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one flag's value entry (plain or with ``_variants``) against ``context``."""
    if not isinstance(value, Mapping):
        return {"enabled": False}
    variants = value.get("_variants")
    if isinstance(variants, list):
        for variant in variants:
            if not isinstance(variant, Mapping):
                continue
            rule = variant.get("rule")
            if rule is not None and not compile_rule(rule).evaluate(context, default_seed=key):
                continue
            enabled = variant.get("enabled") is True
            out: dict[str, Any] = {"enabled": enabled}
            if enabled:
                attrs = variant.get("attributeValues") or {}
                out.update({k: _copy(v) for k, v in attrs.items()})
            out["_variant"] = variant.get("name")
            return out
        return {"enabled": False}
    enabled = value.get("enabled") is True
    result: dict[str, Any] = {"enabled": enabled}
    if enabled:
        result.update({k: _copy(v) for k, v in value.items() if k != "enabled" and k not in VALUE_META_KEYS})
    return result


def evaluate_document(
    doc: Mapping[str, Any], context: Mapping[str, Any], flag_keys: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """What the AppConfig agent returns for this document and request context.

    ``flag_keys`` (the agent's repeated ``?flag=``) limits and orders the answer; a key the document
    does not define raises :class:`UnknownFlagError`. The document is assumed valid.
    """
    flags = doc.get("flags") or {}
    values = doc.get("values") or {}
    keys = list(flags) if flag_keys is None else list(dict.fromkeys(flag_keys))
    unknown = [k for k in keys if k not in flags]
    if unknown:
        raise UnknownFlagError(unknown)
    return {key: evaluate_flag(key, values.get(key), context) for key in keys}


def evaluate_route(doc: Mapping[str, Any], route: str, context: Mapping[str, Any]) -> RouteDecision:
    """Evaluate one route flag and decide. Raises :class:`UnknownFlagError` for an unknown route."""
    return decide_route(evaluate_document(doc, context, [route])[route])
