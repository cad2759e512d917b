"""Native ``AWS.AppConfig.FeatureFlags`` documents: validation, evaluation, route decisions.

* :func:`validate_document` checks a document the way AppConfig's own schema does (see "Understanding
  the type reference for AWS.AppConfig.FeatureFlags" in the AppConfig user guide) plus Switchboard's
  route rules. It backs ``switchboard flags validate`` and the profile's Lambda validator (a
  FeatureFlags profile takes only Lambda validators).
* :func:`evaluate_document` returns what the AppConfig agent / Lambda extension returns for a
  feature-flag profile with a request context: ``{flag: {"enabled": ..., attrs..., "_variant": ...}}``.
* :func:`validate_evaluated` checks such an answer before the gateway uses it, with the same
  attribute rules: a valid document always evaluates to a valid answer, so an answer that fails is
  a broken agent (or extension), never an operator's choice.
* :func:`decide_route` turns one evaluated route flag into a :class:`RouteDecision`.

Evaluation semantics (AppConfig user guide, "Understanding multi-variant feature flag rules"):
variants are tried in order and the first whose rule matches wins, the rule-less default variant
(last) otherwise. A matching variant that is **disabled still wins** and yields
``{"enabled": false, "_variant": name}`` (the guide's own example relies on this: a disabled
default variant turns the flag off for everyone outside the rule). Attributes are returned only
when the result is enabled ("If a flag sets enabled to true, any attributes of the flag will be
present as well").

Pure Python, no dependencies beyond :mod:`switchboard.routing.rules`: it ships in Lambda.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.routing.rules import RuleSyntaxError, compile_rule

__all__ = [
    "DEGRADE_WORDS",
    "FORCE_DEGRADED_FLAG",
    "KILL_SWITCH_FLAG",
    "FlagDocumentError",
    "RouteDecision",
    "UnknownFlagError",
    "decide_route",
    "evaluate_document",
    "evaluate_flag",
    "evaluate_route",
    "load_document",
    "load_option_statuses",
    "load_valid_document",
    "option_statuses",
    "validate_document",
    "validate_evaluated",
]

KEY_RE = re.compile(r"^[a-z][a-zA-Z0-9_-]{0,63}$")
NAME_RE = re.compile(r"^[^\n]{1,64}$")
DEGRADE_WORDS = ("smaller_model", "cache", "static", "reject")
OPTION_ID_ATTRIBUTES = ("chain", "smaller_chain", "context_fallback")
MAX_ATTRIBUTES = 25
MAX_VARIANTS = 32
MAX_STRING = 1024
MAX_RULE = 16384
RETIRED = "retired"

# Operator flags: the gateway reads them on every request, whatever the route.
KILL_SWITCH_FLAG = "kill-switch"
FORCE_DEGRADED_FLAG = "force-degraded"

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
}
OPERATOR_FLAG_ATTRIBUTES: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    KILL_SWITCH_FLAG: {"providers": _STRINGS, "options": _STRINGS},
    FORCE_DEGRADED_FLAG: {"routes": _STRINGS},
}

_DOC_KEYS = {"version", "flags", "values"}
_FLAG_KEYS = {"name", "description", "attributes", "_createdAt", "_updatedAt", "_deprecation"}
_ATTRIBUTE_KEYS = {"description", "constraints"}
_VARIANT_KEYS = {"name", "enabled", "rule", "attributeValues"}
_VALUE_META_KEYS = {"_createdAt", "_updatedAt"}
_CONSTRAINT_KEYS = {
    "number": {"type", "required", "minimum", "maximum"},
    "string": {"type", "required", "pattern", "enum"},
    "array": {"type", "required", "elements"},
    "boolean": {"type", "required"},
}


class FlagDocumentError(ValueError):
    """A flag document that cannot be used; ``problems`` lists every reason."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.message = message
        self.problems = list(problems)
        lines = [message + (":" if self.problems else "")] + [f"  - {p}" for p in self.problems]
        text = "\n".join(lines)
        super().__init__(text)


class UnknownFlagError(LookupError):
    """Flags were asked for that the document does not define."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        super().__init__(f"unknown flag(s): {', '.join(self.keys)}")


# --------------------------------------------------------------------------------------------------
# Loading


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a flag document (JSON object). Raises :class:`FlagDocumentError` when unreadable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlagDocumentError(f"cannot read flag document {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FlagDocumentError(f"flag document {p} is not UTF-8 text: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagDocumentError(
            f"flag document {p} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(doc, dict):
        raise FlagDocumentError(f"flag document {p} must be a JSON object, not {_json_type(doc)}")
    return doc


def load_valid_document(path: str | Path, option_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:func:`load_document` then :func:`validate_document`; raises with every problem found."""
    doc = load_document(path)
    problems = validate_document(doc, option_ids)
    if problems:
        raise FlagDocumentError(f"flag document {path} is invalid", problems)
    return doc


def option_statuses(options: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{id: status}`` from option records (``status`` defaults to ``active``)."""
    out: dict[str, str] = {}
    for item in options:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            out[item["id"]] = str(item.get("status") or "active")
    return out


def load_option_statuses(path: str | Path) -> dict[str, str]:
    """``{id: status}`` from an options seed file such as ``config/options.json``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FlagDocumentError(f"cannot read options file {p}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise FlagDocumentError(
            f"options file {p} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("options"), list):
        data = data["options"]
    if not isinstance(data, list):
        raise FlagDocumentError(f"options file {p} must hold a JSON list of options")
    return option_statuses(data)


# --------------------------------------------------------------------------------------------------
# Validation


def _json_type(value: Any) -> str:
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_key(problems: list[str], where: str, key: Any, what: str) -> bool:
    if not isinstance(key, str) or not KEY_RE.match(key):
        problems.append(
            f"{where}: {what} key {key!r} is invalid (must match ^[a-z][a-zA-Z0-9_-]{{0,63}}$: start with a "
            "lowercase letter, then up to 63 letters, digits, '_' or '-')"
        )
        return False
    return True


def _check_constraints(
    problems: list[str], where: str, c: Any, element: bool = False
) -> dict[str, Any] | None:
    """Check an attribute's (or array element's) constraints; return them when usable."""
    if not isinstance(c, dict):
        problems.append(f"{where}: constraints must be an object, not {_json_type(c)}")
        return None
    kind = str(c.get("type"))
    allowed_types = ("number", "string") if element else ("number", "string", "array", "boolean")
    if kind not in allowed_types:
        problems.append(f"{where}: 'type' must be one of {', '.join(allowed_types)} (got {c.get('type')!r})")
        return None
    ok = True
    extra = sorted(set(c) - _CONSTRAINT_KEYS[kind])
    if extra:
        problems.append(f"{where}: {kind} constraints do not take {', '.join(extra)}")
        ok = False
    if "required" in c and not isinstance(c["required"], bool):
        problems.append(f"{where}: 'required' must be true or false")
        ok = False
    if kind == "number":
        for bound in ("minimum", "maximum"):
            if bound in c and not _is_integer(c[bound]):
                problems.append(f"{where}: '{bound}' must be an integer (got {c[bound]!r})")
                ok = False
        lo, hi = c.get("minimum"), c.get("maximum")
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            problems.append(f"{where}: minimum {lo} is greater than maximum {hi}")
            ok = False
    elif kind == "string":
        if "pattern" in c and "enum" in c:
            problems.append(f"{where}: a string constraint takes 'pattern' or 'enum', not both")
            ok = False
        if "pattern" in c:
            pattern = c["pattern"]
            if not isinstance(pattern, str) or len(pattern) > MAX_STRING:
                problems.append(f"{where}: 'pattern' must be a string of at most {MAX_STRING} characters")
                ok = False
            else:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    problems.append(f"{where}: 'pattern' {pattern!r} is not a valid regex ({exc})")
                    ok = False
        if "enum" in c:
            enum = c["enum"]
            if (
                not isinstance(enum, list)
                or not enum
                or len(enum) > 100
                or not all((isinstance(e, str) and len(e) <= MAX_STRING) or _is_integer(e) for e in enum)
            ):
                problems.append(f"{where}: 'enum' must be a list of 1 to 100 strings or integers")
                ok = False
    elif (
        kind == "array"
        and "elements" in c
        and _check_constraints(problems, f"{where}.elements", c["elements"], element=True) is None
    ):
        ok = False
    return c if ok else None


def _check_generic_value(problems: list[str], where: str, value: Any) -> bool:
    """AppConfig's attributeValue: string (≤1024), number, boolean, or array of all strings / all numbers."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            problems.append(f"{where}: string longer than {MAX_STRING} characters")
            return False
        return True
    if isinstance(value, bool) or _is_number(value):
        return True
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            if any(len(v) > MAX_STRING for v in value):
                problems.append(f"{where}: array element longer than {MAX_STRING} characters")
                return False
            return True
        if all(_is_number(v) for v in value):
            return True
        problems.append(f"{where}: an array value must hold only strings or only numbers")
        return False
    problems.append(
        f"{where}: attribute values must be a string, number, boolean or array (got {_json_type(value)})"
    )
    return False


def _check_typed_value(problems: list[str], where: str, value: Any, c: Mapping[str, Any]) -> None:
    kind = c["type"]
    if kind == "number":
        if not _is_number(value):
            problems.append(f"{where}: must be a number (got {_json_type(value)} {value!r})")
            return
        if "minimum" in c and value < c["minimum"]:
            problems.append(f"{where}: {value} is below the minimum {c['minimum']}")
        if "maximum" in c and value > c["maximum"]:
            problems.append(f"{where}: {value} is above the maximum {c['maximum']}")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{where}: must be a string (got {_json_type(value)} {value!r})")
            return
        if "pattern" in c and not re.search(c["pattern"], value):
            problems.append(f"{where}: {value!r} does not match the pattern {c['pattern']!r}")
        if "enum" in c and value not in [str(e) for e in c["enum"]]:
            allowed = ", ".join(str(e) for e in c["enum"])
            problems.append(f"{where}: {value!r} is not one of: {allowed}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{where}: must be true or false (got {_json_type(value)} {value!r})")
    elif kind == "array":
        if not isinstance(value, list):
            problems.append(f"{where}: must be an array (got {_json_type(value)} {value!r})")
            return
        elements = c.get("elements")
        if isinstance(elements, Mapping):
            for i, item in enumerate(value):
                _check_typed_value(problems, f"{where}[{i}]", item, elements)


def _check_attribute_values(
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
        if not _check_key(problems, where, name, "attribute"):
            continue
        if name not in definitions:
            problems.append(f"{where}: attribute {name!r} is not declared in the flag's attributes")
            continue
        if not _check_generic_value(problems, f"{where}.{name}", value):
            continue
        constraint = definitions[name]
        if constraint is not None:
            _check_typed_value(problems, f"{where}.{name}", value, constraint)
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
            _check_typed_value(found, f"{where}.{name}", attrs[name], constraint)
            if found:
                problems.extend(found)
                failed.add(name)
    return failed


def _check_route_values(
    problems: list[str],
    where: str,
    attrs: Mapping[str, Any],
    option_ids: Mapping[str, str] | None,
    enabled: bool = True,
) -> None:
    """Switchboard's own rules for route flags (those declaring a ``chain`` attribute).

    An enabled value needs a non-empty chain; a disabled one (the route is off) may omit it, but
    whatever it does carry is still checked. An attribute of the wrong type is reported once and
    then treated as absent.
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
    smaller = attrs.get("smaller_chain")
    if "smaller_model" in degrade and not smaller and "smaller_chain" not in failed:
        problems.append(f"{where}: degrade step 'smaller_model' needs a non-empty 'smaller_chain'")
    static = attrs.get("static_answer")
    if "static" in degrade and not (static or "").strip() and "static_answer" not in failed:
        problems.append(f"{where}: degrade step 'static' needs a non-empty 'static_answer'")
    if option_ids is None:
        return
    for name in OPTION_ID_ATTRIBUTES:
        value = attrs.get(name)
        for option_id in value if isinstance(value, list) else [value] if isinstance(value, str) else []:
            status = option_ids.get(option_id)
            if status is None:
                problems.append(f"{where}: {name} names unknown option {option_id!r}")
            elif status == RETIRED:
                problems.append(f"{where}: {name} names retired option {option_id!r}")


def _check_operator_values(
    problems: list[str],
    where: str,
    key: str,
    attrs: Mapping[str, Any],
    option_ids: Mapping[str, str] | None,
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


def validate_document(doc: Any, option_ids: Mapping[str, str] | None = None) -> list[str]:
    """Every problem in a flag document, as readable strings; ``[]`` means valid.

    ``option_ids`` (``{id: status}``), when given, makes every id in ``chain``, ``smaller_chain`` and
    ``context_fallback`` be checked to exist and not be ``retired``.
    """
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        return [f"the document must be a JSON object, not {_json_type(doc)}"]
    extra = sorted(set(doc) - _DOC_KEYS)
    if extra:
        problems.append(
            f"document: unknown key(s) {', '.join(map(repr, extra))} (allowed: version, flags, values)"
        )
    if doc.get("version") != "1":
        problems.append(f'document: "version" must be the string "1" (got {doc.get("version")!r})')

    flags = doc.get("flags", {})
    if not isinstance(flags, Mapping):
        problems.append(f"document: 'flags' must be an object, not {_json_type(flags)}")
        flags = {}
    values = doc.get("values", {})
    if not isinstance(values, Mapping):
        problems.append(f"document: 'values' must be an object, not {_json_type(values)}")
        values = {}

    definitions: dict[str, dict[str, dict[str, Any] | None]] = {}
    for key, fdef in flags.items():
        where = f"flags.{key}"
        if not _check_key(problems, "flags", key, "flag"):
            continue
        if not isinstance(fdef, Mapping):
            problems.append(f"{where}: must be an object, not {_json_type(fdef)}")
            continue
        extra = sorted(set(fdef) - _FLAG_KEYS)
        if extra:
            problems.append(f"{where}: unknown key(s) {', '.join(map(repr, extra))}")
        if "name" in fdef and not (isinstance(fdef["name"], str) and NAME_RE.match(fdef["name"])):
            problems.append(f"{where}: 'name' must be 1 to 64 characters on one line")
        if "description" in fdef and not (
            isinstance(fdef["description"], str) and len(fdef["description"]) <= MAX_STRING
        ):
            problems.append(f"{where}: 'description' must be a string of at most {MAX_STRING} characters")
        attributes = fdef.get("attributes", {})
        attr_defs: dict[str, dict[str, Any] | None] = {}
        if not isinstance(attributes, Mapping):
            problems.append(f"{where}: 'attributes' must be an object")
            attributes = {}
        if len(attributes) > MAX_ATTRIBUTES:
            problems.append(f"{where}: {len(attributes)} attributes, at most {MAX_ATTRIBUTES} allowed")
        for name, adef in attributes.items():
            awhere = f"{where}.attributes.{name}"
            if name == "enabled":
                problems.append(f"{where}: 'enabled' cannot be an attribute name")
                continue
            if not _check_key(problems, f"{where}.attributes", name, "attribute"):
                continue
            if not isinstance(adef, Mapping):
                problems.append(f"{awhere}: must be an object")
                continue
            extra = sorted(set(adef) - _ATTRIBUTE_KEYS)
            if extra:
                problems.append(f"{awhere}: unknown key(s) {', '.join(map(repr, extra))}")
            attr_defs[name] = (
                _check_constraints(problems, f"{awhere}.constraints", adef["constraints"])
                if "constraints" in adef
                else None
            )
        definitions[key] = attr_defs

    for key, value in values.items():
        where = f"values.{key}"
        if not _check_key(problems, "values", key, "flag"):
            continue
        if key not in flags:
            problems.append(f"{where}: there is no flag {key!r} in 'flags'")
            continue
        attr_defs = definitions.get(key, {})
        is_route = "chain" in attr_defs
        operator = key if key in OPERATOR_FLAG_ATTRIBUTES and not is_route else None
        if not isinstance(value, Mapping):
            problems.append(f"{where}: must be an object, not {_json_type(value)}")
            continue
        if "_variants" in value:
            extra = sorted(set(value) - _VALUE_META_KEYS - {"_variants"})
            if extra:
                problems.append(
                    f"{where}: a flag with _variants carries its values in the variants; "
                    f"unexpected key(s) {', '.join(map(repr, extra))}"
                )
            _check_variants(problems, where, value["_variants"], attr_defs, is_route, option_ids, operator)
        else:
            if not isinstance(value.get("enabled"), bool):
                problems.append(f"{where}: 'enabled' must be true or false")
            attrs = {k: v for k, v in value.items() if k != "enabled" and k not in _VALUE_META_KEYS}
            enabled = value.get("enabled") is not False
            _check_attribute_values(problems, where, attrs, attr_defs, enabled)
            if is_route:
                _check_route_values(problems, where, attrs, option_ids, enabled)
            elif operator is not None:
                _check_operator_values(problems, where, operator, attrs, option_ids)

    for key, attr_defs in definitions.items():
        if "chain" in attr_defs and key not in values:
            problems.append(f"values.{key}: route flag {key!r} has no value (and so no chain)")
    if isinstance(flags, Mapping) and not flags:
        # The agent would answer {}: the gateway refuses that as a broken agent (validate_evaluated).
        problems.append("document: 'flags' is empty: a routing profile needs at least one flag")
    # A declared constraint and the gateway's own rule can find the same fault: say it once.
    return list(dict.fromkeys(problems))


def _check_variants(
    problems: list[str],
    where: str,
    variants: Any,
    attr_defs: Mapping[str, dict[str, Any] | None],
    is_route: bool,
    option_ids: Mapping[str, str] | None,
    operator: str | None = None,
) -> None:
    if not isinstance(variants, list) or not variants:
        problems.append(f"{where}._variants: must be a non-empty list of variants")
        return
    if len(variants) > MAX_VARIANTS:
        problems.append(f"{where}._variants: {len(variants)} variants, at most {MAX_VARIANTS} allowed")
    seen: set[str] = set()
    defaults: list[int] = []
    for i, variant in enumerate(variants):
        vwhere = f"{where}._variants[{i}]"
        if not isinstance(variant, Mapping):
            problems.append(f"{vwhere}: must be an object")
            continue
        name = variant.get("name")
        if isinstance(name, str) and NAME_RE.match(name):
            vwhere = f"{vwhere} ({name})"
            if name in seen:
                problems.append(f"{vwhere}: variant name {name!r} is used more than once")
            seen.add(name)
        else:
            problems.append(f"{vwhere}: 'name' must be a non-empty string of at most 64 characters, one line")
        extra = sorted(set(variant) - _VARIANT_KEYS)
        if extra:
            problems.append(f"{vwhere}: unknown key(s) {', '.join(map(repr, extra))}")
        if not isinstance(variant.get("enabled"), bool):
            problems.append(f"{vwhere}: 'enabled' must be true or false")
        if "rule" in variant:
            rule = variant["rule"]
            if not isinstance(rule, str) or not rule.strip():
                problems.append(f"{vwhere}: 'rule' must be a non-empty string (the default has none)")
            elif len(rule) > MAX_RULE:
                problems.append(f"{vwhere}: rule longer than {MAX_RULE} characters")
            else:
                try:
                    compile_rule(rule)
                except RuleSyntaxError as exc:
                    problems.append(f"{vwhere}: rule does not parse: {exc}")
        else:
            defaults.append(i)
        attrs = variant.get("attributeValues", {})
        if not isinstance(attrs, Mapping):
            problems.append(f"{vwhere}: 'attributeValues' must be an object")
            continue
        enabled = variant.get("enabled") is not False
        _check_attribute_values(problems, f"{vwhere}.attributeValues", attrs, attr_defs, enabled)
        if is_route:
            _check_route_values(problems, f"{vwhere}.attributeValues", attrs, option_ids, enabled)
        elif operator is not None:
            _check_operator_values(problems, f"{vwhere}.attributeValues", operator, attrs, option_ids)
    if not defaults:
        problems.append(f"{where}._variants: needs a default variant (one without a rule), placed last")
    elif len(defaults) > 1:
        problems.append(
            f"{where}._variants: {len(defaults)} variants have no rule (positions "
            f"{', '.join(map(str, defaults))}); exactly one default variant is allowed"
        )
    elif defaults[0] != len(variants) - 1:
        problems.append(f"{where}._variants: the default variant (no rule) must be the last one")


def validate_evaluated(answer: Any, routes: Collection[str] = ()) -> list[str]:
    """Every problem in an agent's answer (``{flag: {"enabled", attrs..., "_variant"}}``); ``[]`` = usable.

    The answer is what :func:`evaluate_document` makes of a valid document, so the rules are the
    document's own: flag and attribute keys, at most 25 attribute values of AppConfig's value
    types, Switchboard's route rules for every flag carrying a ``chain`` or named in ``routes`` (the
    routes this deploy knows: enabled, such a flag must carry its chain), and the operator flags'
    types. The answer carries no attribute definitions, so constraints a document declares beyond
    these (patterns, enums, bounds) are the document validator's job alone.

    An empty answer is refused: a valid document has a route flag and the agent answers every flag
    of the profile. Keys starting with ``_`` are the agent's metadata, not attributes: ``_variant``
    must name a variant; others (none documented today) are ignored rather than refused, so a newer
    extension adding one cannot turn every answer into a failure.
    """
    if not isinstance(answer, Mapping):
        return [f"the answer must be a JSON object, not {_json_type(answer)}"]
    if not answer:
        return ["the answer names no flag at all (a routing profile has at least one route flag)"]
    problems: list[str] = []
    for key, value in answer.items():
        if not _check_key(problems, "answer", key, "flag"):
            continue
        where = f"answer.{key}"
        if not isinstance(value, Mapping):
            problems.append(f"{where}: must be an object, not {_json_type(value)}")
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
        _check_attribute_values(problems, where, attrs, dict.fromkeys(attrs), enabled=False)
        if "chain" in attrs or key in routes:
            _check_route_values(problems, where, attrs, None, enabled is True)
        elif key in OPERATOR_FLAG_ATTRIBUTES:
            _check_operator_values(problems, where, key, attrs, None)
    return list(dict.fromkeys(problems))


# --------------------------------------------------------------------------------------------------
# Evaluation


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
        result.update({k: _copy(v) for k, v in value.items() if k != "enabled" and k not in _VALUE_META_KEYS})
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


# --------------------------------------------------------------------------------------------------
# Route decisions


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """What one route flag says for one request."""

    variant: str | None
    enabled: bool
    chain: tuple[str, ...]
    degrade: tuple[str, ...] = ()
    smaller_chain: tuple[str, ...] = ()
    static_answer: str | None = None
    context_fallback: str | None = None
    cache_ttl_s: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "enabled": self.enabled,
            "chain": list(self.chain),
            "degrade": list(self.degrade),
            "smaller_chain": list(self.smaller_chain),
            "static_answer": self.static_answer,
            "context_fallback": self.context_fallback,
            "cache_ttl_s": self.cache_ttl_s,
        }


def _str_tuple(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"route attribute {name!r} must be a list of strings")
    return tuple(value)


def decide_route(evaluated_flag: Mapping[str, Any]) -> RouteDecision:
    """A :class:`RouteDecision` from one evaluated route flag (an item of evaluate_document's answer).

    A disabled result (AppConfig then sends no attributes) gives ``enabled=False`` and an empty chain:
    the caller refuses the route. An enabled result without a non-empty ``chain`` raises ValueError.
    """
    variant = evaluated_flag.get("_variant")
    variant = variant if isinstance(variant, str) else None
    if evaluated_flag.get("enabled") is not True:
        return RouteDecision(variant=variant, enabled=False, chain=())
    chain = _str_tuple(evaluated_flag.get("chain"), "chain")
    if not chain:
        raise ValueError(f"route flag (variant {variant!r}) is enabled but has no chain")
    static = evaluated_flag.get("static_answer")
    fallback = evaluated_flag.get("context_fallback")
    ttl = evaluated_flag.get("cache_ttl_s")
    return RouteDecision(
        variant=variant,
        enabled=True,
        chain=chain,
        degrade=_str_tuple(evaluated_flag.get("degrade"), "degrade"),
        smaller_chain=_str_tuple(evaluated_flag.get("smaller_chain"), "smaller_chain"),
        static_answer=static if isinstance(static, str) else None,
        context_fallback=fallback if isinstance(fallback, str) else None,
        cache_ttl_s=int(ttl) if isinstance(ttl, int | float) and _is_number(ttl) else None,
    )


def evaluate_route(doc: Mapping[str, Any], route: str, context: Mapping[str, Any]) -> RouteDecision:
    """Evaluate one route flag and decide. Raises :class:`UnknownFlagError` for an unknown route."""
    return decide_route(evaluate_document(doc, context, [route])[route])


def route_names(doc: Mapping[str, Any]) -> list[str]:
    """The routes a flag document defines: its flags that declare a ``chain`` attribute.

    Operator flags (``kill-switch``, ``force-degraded``) declare none. A route counts whether it is
    enabled or not: a key may be restricted to a route that is switched off for now.
    """
    flags = doc.get("flags")
    if not isinstance(flags, Mapping):
        return []
    return sorted(
        name
        for name, definition in flags.items()
        if isinstance(definition, Mapping)
        and isinstance(definition.get("attributes"), Mapping)
        and "chain" in definition["attributes"]
    )
