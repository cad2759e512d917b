"""What a flag's values must be, in a flag document or in the agent's answer: the shared rules.

AppConfig's type reference for ``AWS.AppConfig.FeatureFlags`` ("Understanding the type reference
for AWS.AppConfig.FeatureFlags" in the AppConfig user guide) fixes flag and attribute keys and the
attribute value types; Switchboard adds its own rules for the attributes the gateway reads (a route
flag's ``chain``, ``degrade``, ... and the operator flags' lists). Both validators apply them:

* :func:`validate_evaluated` (here) checks the agent's answer before the gateway uses it: a valid
  document always evaluates to a valid answer, so an answer that fails is a broken agent (or
  extension), never an operator's choice. It is on the gateway's cold start.
* :func:`switchboard.routing.document.validate_document` checks a whole document (definitions,
  constraints, variants and their rules) with the same value rules; it backs the profile's Lambda
  validator and ``switchboard flags validate``, never the gateway.

Standard library only, and no rule parser: the gateway imports this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

from switchboard.routing.decision import (
    FORCE_DEGRADED_FLAG,
    KILL_SWITCH_FLAG,
    ROUTE_KIND_CHAT,
    ROUTE_KIND_EMBEDDINGS,
    ROUTE_KINDS,
)

__all__ = [
    "DEGRADE_WORDS",
    "KEY_RE",
    "MAX_ATTRIBUTES",
    "MAX_STRING",
    "NAME_RE",
    "OPERATOR_FLAG_ATTRIBUTES",
    "ROUTE_ATTRIBUTES",
    "OptionCatalogue",
    "OptionFacts",
    "check_attribute_values",
    "check_key",
    "check_operator_values",
    "check_route_values",
    "check_typed_value",
    "is_integer",
    "is_number",
    "json_type",
    "option_facts",
    "route_kind",
    "validate_evaluated",
]

KEY_RE = re.compile(r"^[a-z][a-zA-Z0-9_-]{0,63}$")
NAME_RE = re.compile(r"^[^\n]{1,64}$")
DEGRADE_WORDS = ("smaller_model", "cache", "static", "reject")
OPTION_ID_ATTRIBUTES = ("chain", "smaller_chain", "context_fallback")
MAX_ATTRIBUTES = 25
MAX_STRING = 1024
RETIRED = "retired"


class OptionFacts(NamedTuple):
    """What the flag rules need to know of one catalogue option.

    ``task`` is what the option answers (``chat`` or ``embeddings``); ``space`` names the vectors an
    embeddings option returns (model and dimensions; see
    :func:`switchboard.routing.document.embedding_space`). None: not known, that check is skipped.
    """

    status: str
    task: str | None = None
    space: str | None = None


# The catalogue as the validators take it: ``{option id: status}`` (what a caller that knows only
# statuses passes) or ``{option id: OptionFacts}``.
OptionCatalogue = Mapping[str, str | OptionFacts]


def option_facts(entry: str | OptionFacts) -> OptionFacts:
    """A catalogue entry as :class:`OptionFacts` (a bare status knows nothing of the task)."""
    return entry if isinstance(entry, OptionFacts) else OptionFacts(status=entry)


_STRINGS = {"type": "array", "elements": {"type": "string"}}
# What the gateway itself requires of the attributes it reads, whatever the document declares (a
# document may leave a constraint out; the gateway must still never read a string as a list of
# characters). Both validators apply these, in the constraint language of the document.
ROUTE_ATTRIBUTES: Mapping[str, Mapping[str, Any]] = {
    "chain": _STRINGS,
    "degrade": _STRINGS,
    "smaller_chain": _STRINGS,
    "static_answer": {"type": "string"},
    "context_fallback": {"type": "string"},
    "cache_ttl_s": {"type": "number"},
    "kind": {"type": "string", "enum": list(ROUTE_KINDS)},
    "skip_unsupported": {"type": "boolean"},
}
OPERATOR_FLAG_ATTRIBUTES: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    KILL_SWITCH_FLAG: {"providers": _STRINGS, "options": _STRINGS},
    FORCE_DEGRADED_FLAG: {"routes": _STRINGS},
}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_key(problems: list[str], where: str, key: Any, what: str) -> bool:
    if not isinstance(key, str) or not KEY_RE.match(key):
        problems.append(
            f"{where}: {what} key {key!r} is invalid (must match ^[a-z][a-zA-Z0-9_-]{{0,63}}$: start with a "
            "lowercase letter, then up to 63 letters, digits, '_' or '-')"
        )
        return False
    return True


def _check_generic_value(problems: list[str], where: str, value: Any) -> bool:
    """AppConfig's attributeValue: string (≤1024), number, boolean, or array of all strings / all numbers."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            problems.append(f"{where}: string longer than {MAX_STRING} characters")
            return False
        return True
    if isinstance(value, bool) or is_number(value):
        return True
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            if any(len(v) > MAX_STRING for v in value):
                problems.append(f"{where}: array element longer than {MAX_STRING} characters")
                return False
            return True
        if all(is_number(v) for v in value):
            return True
        problems.append(f"{where}: an array value must hold only strings or only numbers")
        return False
    problems.append(
        f"{where}: attribute values must be a string, number, boolean or array (got {json_type(value)})"
    )
    return False


def check_typed_value(problems: list[str], where: str, value: Any, c: Mapping[str, Any]) -> None:
    kind = c["type"]
    if kind == "number":
        if not is_number(value):
            problems.append(f"{where}: must be a number (got {json_type(value)} {value!r})")
            return
        if "minimum" in c and value < c["minimum"]:
            problems.append(f"{where}: {value} is below the minimum {c['minimum']}")
        if "maximum" in c and value > c["maximum"]:
            problems.append(f"{where}: {value} is above the maximum {c['maximum']}")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{where}: must be a string (got {json_type(value)} {value!r})")
            return
        if "pattern" in c and not re.search(c["pattern"], value):
            problems.append(f"{where}: {value!r} does not match the pattern {c['pattern']!r}")
        if "enum" in c and value not in [str(e) for e in c["enum"]]:
            allowed = ", ".join(str(e) for e in c["enum"])
            problems.append(f"{where}: {value!r} is not one of: {allowed}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{where}: must be true or false (got {json_type(value)} {value!r})")
    elif kind == "array":
        if not isinstance(value, list):
            problems.append(f"{where}: must be an array (got {json_type(value)} {value!r})")
            return
        elements = c.get("elements")
        if isinstance(elements, Mapping):
            for i, item in enumerate(value):
                check_typed_value(problems, f"{where}[{i}]", item, elements)


def check_attribute_values(
    problems: list[str],
    where: str,
    attrs: Mapping[str, Any],
    definitions: Mapping[str, Mapping[str, Any] | None],
    enabled: bool = True,
) -> None:
    if len(attrs) > MAX_ATTRIBUTES:
        problems.append(f"{where}: {len(attrs)} attribute values, at most {MAX_ATTRIBUTES} allowed")
    for name, value in attrs.items():
        if name == "enabled":
            problems.append(f"{where}: 'enabled' cannot be an attribute name")
            continue
        if not check_key(problems, where, name, "attribute"):
            continue
        if name not in definitions:
            problems.append(f"{where}: attribute {name!r} is not declared in the flag's attributes")
            continue
        if not _check_generic_value(problems, f"{where}.{name}", value):
            continue
        constraint = definitions[name]
        if constraint is not None:
            check_typed_value(problems, f"{where}.{name}", value, constraint)
    if not enabled:  # a disabled value returns no attributes: nothing is required of it
        return
    for name, constraint in definitions.items():
        if constraint is not None and constraint.get("required") is True and name not in attrs:
            problems.append(f"{where}: required attribute {name!r} is missing")


def _check_builtin_types(
    problems: list[str], where: str, attrs: Mapping[str, Any], rules: Mapping[str, Mapping[str, Any]]
) -> set[str]:
    """Check the attributes the gateway reads against its own rules; return the names that failed."""
    failed: set[str] = set()
    for name, constraint in rules.items():
        if name in attrs:
            found: list[str] = []
            check_typed_value(found, f"{where}.{name}", attrs[name], constraint)
            if found:
                problems.extend(found)
                failed.add(name)
    return failed


def route_kind(attrs: Mapping[str, Any]) -> str:
    """The kind a route value declares (``kind`` attribute; absent: chat), as the gateway reads it."""
    kind = attrs.get("kind", ROUTE_KIND_CHAT)
    return kind if isinstance(kind, str) else ROUTE_KIND_CHAT


def check_route_values(
    problems: list[str],
    where: str,
    attrs: Mapping[str, Any],
    option_ids: OptionCatalogue | None,
    enabled: bool = True,
    route: str | None = None,
) -> None:
    """Switchboard's own rules for route flags (those declaring a ``chain`` attribute).

    An enabled value needs a non-empty chain; a disabled one (the route is off) may omit it, but
    whatever it does carry is still checked. An attribute of the wrong type is reported once and
    then treated as absent. An embeddings route (``kind``) answers with vectors: no degrade step or
    fallback that would answer with something else. Given the catalogue, every option named exists,
    is not retired and answers the route's kind, and an embeddings chain stays in one vector space.
    """
    failed = _check_builtin_types(problems, where, attrs, ROUTE_ATTRIBUTES)
    attrs = {name: value for name, value in attrs.items() if name not in failed}
    chain = attrs.get("chain")
    if "chain" in failed:
        pass
    elif (enabled or "chain" in attrs) and (not isinstance(chain, list) or not chain):
        problems.append(f"{where}: a route needs a non-empty 'chain' of option ids")
    elif isinstance(chain, list) and len(set(chain)) != len(chain):
        problems.append(f"{where}: 'chain' names an option more than once")
    degrade = attrs.get("degrade", [])
    unknown = [d for d in degrade if d not in DEGRADE_WORDS]
    if unknown:
        problems.append(
            f"{where}: 'degrade' has unknown step(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(DEGRADE_WORDS)})"
        )
    if len(set(degrade)) != len(degrade):
        problems.append(f"{where}: 'degrade' lists a step more than once")
    if "reject" in degrade and degrade[-1] != "reject":
        problems.append(f"{where}: 'reject' must be the last degrade step (steps after it never run)")
    kind = route_kind(attrs)
    if kind == ROUTE_KIND_EMBEDDINGS:
        _check_embeddings_route(problems, where, attrs, degrade)
    else:
        smaller = attrs.get("smaller_chain")
        if "smaller_model" in degrade and not smaller and "smaller_chain" not in failed:
            problems.append(f"{where}: degrade step 'smaller_model' needs a non-empty 'smaller_chain'")
        static = attrs.get("static_answer")
        if "static" in degrade and not (static or "").strip() and "static_answer" not in failed:
            problems.append(f"{where}: degrade step 'static' needs a non-empty 'static_answer'")
    if option_ids is None:
        return
    named = f"route {route!r}" if route else "this route"
    spaces: dict[str, str] = {}
    for name in OPTION_ID_ATTRIBUTES:
        value = attrs.get(name)
        for option_id in value if isinstance(value, list) else [value] if isinstance(value, str) else []:
            entry = option_ids.get(option_id)
            if entry is None:
                problems.append(f"{where}: {name} names unknown option {option_id!r}")
                continue
            facts = option_facts(entry)
            if facts.status == RETIRED:
                problems.append(f"{where}: {name} names retired option {option_id!r}")
            if facts.task is not None and facts.task != kind:
                problems.append(
                    f"{where}: {name} names option {option_id!r}, which answers {facts.task}, but {named} "
                    f"is of kind {kind}: it calls {kind} options only"
                )
            elif kind == ROUTE_KIND_EMBEDDINGS and name == "chain" and facts.space is not None:
                spaces.setdefault(facts.space, option_id)
    if len(spaces) > 1:
        problems.append(
            f"{where}: the chain of {named} mixes embedding models or dimensions "
            f"({', '.join(map(repr, spaces.values()))}): vectors of different models do not compare, so a "
            "failover would answer with vectors the client's index cannot use; fail over across regions "
            "of one model instead"
        )


def _check_embeddings_route(
    problems: list[str], where: str, attrs: Mapping[str, Any], degrade: list[str]
) -> None:
    """An embeddings route answers vectors of its chain's model, or a cached one, or nothing."""
    if "static" in degrade:
        problems.append(
            f"{where}: an embeddings route cannot degrade to 'static': a static text is not an embedding "
            "(use 'cache' and 'reject')"
        )
    if "smaller_model" in degrade or "smaller_chain" in attrs:
        problems.append(
            f"{where}: an embeddings route takes no 'smaller_model' step or 'smaller_chain': vectors of "
            "another model do not compare with the chain's (use 'cache' and 'reject')"
        )
    if "context_fallback" in attrs:
        problems.append(
            f"{where}: an embeddings route takes no 'context_fallback': a longer-context model answers "
            "vectors of another model"
        )


def check_operator_values(
    problems: list[str],
    where: str,
    key: str,
    attrs: Mapping[str, Any],
    option_ids: OptionCatalogue | None,
) -> None:
    """The kill switch and force-degraded: lists of strings, and a kill switch names real options.

    A kill switch naming an option that does not exist would remove nothing, silently: refused
    like a chain naming one. Naming a retired option is fine (it is already out of every chain).
    """
    failed = _check_builtin_types(problems, where, attrs, OPERATOR_FLAG_ATTRIBUTES[key])
    if key != KILL_SWITCH_FLAG or option_ids is None or "options" in failed:
        return
    for option_id in attrs.get("options") or []:
        if option_id not in option_ids:
            problems.append(f"{where}: the kill switch names unknown option {option_id!r}")


def validate_evaluated(answer: Any, routes: Collection[str] = ()) -> list[str]:
    """Every problem in an agent's answer (``{flag: {"enabled", attrs..., "_variant"}}``); ``[]`` = usable.

    The answer is what the extension makes of a valid document (the agent emulator's
    ``evaluate_document`` reproduces it), so the rules are the document's own: flag and attribute
    keys, at most 25 attribute values of AppConfig's value types, Switchboard's route rules for
    every flag carrying a ``chain`` or named in ``routes`` (the routes this deploy knows: enabled,
    such a flag must carry its chain), and the operator flags' types. The answer carries no
    attribute definitions, so constraints a document declares beyond these (patterns, enums, bounds)
    are the document validator's job alone.

    An empty answer is refused: a valid document has a route flag and the agent answers every flag
    of the profile. Keys starting with ``_`` are the agent's metadata, not attributes: ``_variant``
    must name a variant; others (none documented today) are ignored rather than refused, so a newer
    extension adding one cannot turn every answer into a failure.
    """
    if not isinstance(answer, Mapping):
        return [f"the answer must be a JSON object, not {json_type(answer)}"]
    if not answer:
        return ["the answer names no flag at all (a routing profile has at least one route flag)"]
    problems: list[str] = []
    for key, value in answer.items():
        if not check_key(problems, "answer", key, "flag"):
            continue
        where = f"answer.{key}"
        if not isinstance(value, Mapping):
            problems.append(f"{where}: must be an object, not {json_type(value)}")
            continue
        enabled = value.get("enabled")
        if not isinstance(enabled, bool):
            problems.append(f"{where}: 'enabled' must be true or false (got {enabled!r})")
        if "_variant" in value and not (
            isinstance(value["_variant"], str) and NAME_RE.match(value["_variant"])
        ):
            problems.append(f"{where}: '_variant' must be a variant name (got {value['_variant']!r})")
        attrs = {
            name: item
            for name, item in value.items()
            if name != "enabled" and not (isinstance(name, str) and name.startswith("_"))
        }
        check_attribute_values(problems, where, attrs, dict.fromkeys(attrs), enabled=False)
        if "chain" in attrs or key in routes:
            check_route_values(problems, where, attrs, None, enabled is True, route=key)
        elif key in OPERATOR_FLAG_ATTRIBUTES:
            check_operator_values(problems, where, key, attrs, None)
    return list(dict.fromkeys(problems))
