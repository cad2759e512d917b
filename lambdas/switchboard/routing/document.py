"""Native ``AWS.AppConfig.FeatureFlags`` documents: reading and validating them.

:func:`validate_document` checks a document the way AppConfig's own schema does (see "Understanding
the type reference for AWS.AppConfig.FeatureFlags" in the AppConfig user guide) plus Switchboard's
route rules (:mod:`switchboard.routing.schema`, shared with the check of the agent's answers) and,
given the options catalogue, that every chain names a live option. It backs the profile's Lambda
validator (``handlers/flags_validator.py``: a FeatureFlags profile takes only Lambda validators),
``switchboard flags validate`` and the local agent emulator, which refuses an invalid document as
the validator refuses a deployment. The gateway never reads a document (the AppConfig extension
evaluates it), so it never imports this module or the rule parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from switchboard.routing.decision import ROUTE_KIND_CHAT, ROUTE_KIND_EMBEDDINGS, ROUTE_KINDS
from switchboard.routing.rules import RuleSyntaxError, compile_rule
from switchboard.routing.schema import (
    MAX_ATTRIBUTES,
    MAX_STRING,
    NAME_RE,
    OPERATOR_FLAG_ATTRIBUTES,
    OptionCatalogue,
    OptionFacts,
    check_attribute_values,
    check_key,
    check_operator_values,
    check_route_values,
    is_integer,
    json_type,
    route_kind,
)

__all__ = [
    "VALUE_META_KEYS",
    "FlagDocumentError",
    "embedding_space",
    "load_document",
    "load_option_catalogue",
    "load_option_statuses",
    "load_valid_document",
    "option_catalogue",
    "option_statuses",
    "route_kinds",
    "route_names",
    "validate_document",
]

MAX_VARIANTS = 32
MAX_RULE = 16384

_DOC_KEYS = {"version", "flags", "values"}
_FLAG_KEYS = {"name", "description", "attributes", "_createdAt", "_updatedAt", "_deprecation"}
_ATTRIBUTE_KEYS = {"description", "constraints"}
_VARIANT_KEYS = {"name", "enabled", "rule", "attributeValues"}
# AppConfig's bookkeeping in a flag's value entry: never attributes (the evaluation drops them too).
VALUE_META_KEYS = {"_createdAt", "_updatedAt"}
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
        raise FlagDocumentError(f"flag document {p} must be a JSON object, not {json_type(doc)}")
    return doc


def load_valid_document(path: str | Path, option_ids: OptionCatalogue | None = None) -> dict[str, Any]:
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


def option_catalogue(options: Iterable[Mapping[str, Any]]) -> dict[str, OptionFacts]:
    """``{id: OptionFacts}`` from option records (``status`` defaults to ``active``, ``task`` to chat).

    Everything the flag rules check comes from the records the caller already holds (the Lambda
    validator's one scan of the options table, or the seed file): no further read.
    """
    out: dict[str, OptionFacts] = {}
    for item in options:
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            task = item.get("task") or ROUTE_KIND_CHAT
            out[item["id"]] = OptionFacts(
                status=str(item.get("status") or "active"),
                task=str(task),
                space=embedding_space(item),
            )
    return out


# Geography prefixes of Bedrock's cross-region inference profiles: `us.cohere.embed-v4:0` is the
# model `cohere.embed-v4:0` served from several regions, so the same vectors.
_PROFILE_PREFIX = re.compile(r"^(?:us|eu|apac|global|us-gov|jp|au|ca)\.")


def embedding_space(item: Mapping[str, Any]) -> str | None:
    """Which vectors an embeddings option returns: provider, model and dimensions; None for chat.

    Two options with the same space answer interchangeable vectors (one model in two regions, or
    through its cross-region profile); options of different spaces never do, whatever their
    dimensions, so an embeddings chain must stay in one (``check_route_values``).
    """
    if item.get("task") != ROUTE_KIND_EMBEDDINGS:
        return None
    provider = str(item.get("provider"))
    if provider == "sagemaker":
        model = f"{item.get('endpoint_name')}/{item.get('inference_component') or ''}"
    elif provider == "openai_compatible":
        model = f"{item.get('base_url')}#{item.get('model')}"
    else:
        model = _PROFILE_PREFIX.sub("", str(item.get("model") or ""))
    params = item.get("params")
    dimensions = params.get("dimensions") if isinstance(params, Mapping) else None
    return f"{provider}:{model}:{dimensions}"


def _read_options_file(path: str | Path) -> list[Any]:
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
    return data


def load_option_statuses(path: str | Path) -> dict[str, str]:
    """``{id: status}`` from an options seed file such as ``config/options.json``."""
    return option_statuses(_read_options_file(path))


def load_option_catalogue(path: str | Path) -> dict[str, OptionFacts]:
    """``{id: OptionFacts}`` from an options seed file: statuses, tasks and embedding spaces."""
    return option_catalogue(_read_options_file(path))


# --------------------------------------------------------------------------------------------------
# Validation (the value rules themselves are in switchboard.routing.schema)


def _check_constraints(
    problems: list[str], where: str, c: Any, element: bool = False
) -> dict[str, Any] | None:
    """Check an attribute's (or array element's) constraints; return them when usable."""
    if not isinstance(c, dict):
        problems.append(f"{where}: constraints must be an object, not {json_type(c)}")
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
            if bound in c and not is_integer(c[bound]):
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
                or not all((isinstance(e, str) and len(e) <= MAX_STRING) or is_integer(e) for e in enum)
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


def validate_document(doc: Any, option_ids: OptionCatalogue | None = None) -> list[str]:
    """Every problem in a flag document, as readable strings; ``[]`` means valid.

    ``option_ids`` (``{id: status}`` or ``{id: OptionFacts}``), when given, makes every id in
    ``chain``, ``smaller_chain`` and ``context_fallback`` be checked to exist and not be ``retired``;
    with :class:`OptionFacts`, also to answer the route's kind (chat or embeddings).
    """
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        return [f"the document must be a JSON object, not {json_type(doc)}"]
    extra = sorted(set(doc) - _DOC_KEYS)
    if extra:
        problems.append(
            f"document: unknown key(s) {', '.join(map(repr, extra))} (allowed: version, flags, values)"
        )
    if doc.get("version") != "1":
        problems.append(f'document: "version" must be the string "1" (got {doc.get("version")!r})')

    flags = doc.get("flags", {})
    if not isinstance(flags, Mapping):
        problems.append(f"document: 'flags' must be an object, not {json_type(flags)}")
        flags = {}
    values = doc.get("values", {})
    if not isinstance(values, Mapping):
        problems.append(f"document: 'values' must be an object, not {json_type(values)}")
        values = {}

    definitions: dict[str, dict[str, dict[str, Any] | None]] = {}
    for key, fdef in flags.items():
        where = f"flags.{key}"
        if not check_key(problems, "flags", key, "flag"):
            continue
        if not isinstance(fdef, Mapping):
            problems.append(f"{where}: must be an object, not {json_type(fdef)}")
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
            if not check_key(problems, f"{where}.attributes", name, "attribute"):
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
        if not check_key(problems, "values", key, "flag"):
            continue
        if key not in flags:
            problems.append(f"{where}: there is no flag {key!r} in 'flags'")
            continue
        attr_defs = definitions.get(key, {})
        is_route = "chain" in attr_defs
        operator = key if key in OPERATOR_FLAG_ATTRIBUTES and not is_route else None
        if not isinstance(value, Mapping):
            problems.append(f"{where}: must be an object, not {json_type(value)}")
            continue
        if "_variants" in value:
            extra = sorted(set(value) - VALUE_META_KEYS - {"_variants"})
            if extra:
                problems.append(
                    f"{where}: a flag with _variants carries its values in the variants; "
                    f"unexpected key(s) {', '.join(map(repr, extra))}"
                )
            _check_variants(
                problems, where, value["_variants"], attr_defs, is_route, option_ids, operator, route=key
            )
        else:
            if not isinstance(value.get("enabled"), bool):
                problems.append(f"{where}: 'enabled' must be true or false")
            attrs = {k: v for k, v in value.items() if k != "enabled" and k not in VALUE_META_KEYS}
            enabled = value.get("enabled") is not False
            check_attribute_values(problems, where, attrs, attr_defs, enabled)
            if is_route:
                check_route_values(problems, where, attrs, option_ids, enabled, route=key)
            elif operator is not None:
                check_operator_values(problems, where, operator, attrs, option_ids)

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
    option_ids: OptionCatalogue | None,
    operator: str | None = None,
    route: str | None = None,
) -> None:
    if not isinstance(variants, list) or not variants:
        problems.append(f"{where}._variants: must be a non-empty list of variants")
        return
    if len(variants) > MAX_VARIANTS:
        problems.append(f"{where}._variants: {len(variants)} variants, at most {MAX_VARIANTS} allowed")
    seen: set[str] = set()
    defaults: list[int] = []
    kinds: dict[str, str] = {}  # kind -> the first variant declaring it, for the message
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
        check_attribute_values(problems, f"{vwhere}.attributeValues", attrs, attr_defs, enabled)
        if is_route:
            check_route_values(problems, f"{vwhere}.attributeValues", attrs, option_ids, enabled, route=route)
            # A disabled variant returns no attributes: only a kind it states counts.
            if (enabled or "kind" in attrs) and attrs.get("kind", ROUTE_KIND_CHAT) in ROUTE_KINDS:
                kinds.setdefault(route_kind(attrs), str(variant.get("name")))
        elif operator is not None:
            check_operator_values(problems, f"{vwhere}.attributeValues", operator, attrs, option_ids)
    if len(kinds) > 1:
        stated = ", ".join(f"{kind} (variant {name!r})" for kind, name in kinds.items())
        problems.append(
            f"{where}._variants: every variant of route {route!r} must have the same kind, not {stated}: "
            "clients call a route on one endpoint (/v1/chat/completions or /v1/embeddings), so a variant "
            "cannot change what the route answers (absent kind = chat; make a new route instead)"
        )
    if not defaults:
        problems.append(f"{where}._variants: needs a default variant (one without a rule), placed last")
    elif len(defaults) > 1:
        problems.append(
            f"{where}._variants: {len(defaults)} variants have no rule (positions "
            f"{', '.join(map(str, defaults))}); exactly one default variant is allowed"
        )
    elif defaults[0] != len(variants) - 1:
        problems.append(f"{where}._variants: the default variant (no rule) must be the last one")


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


def route_kinds(doc: Mapping[str, Any]) -> dict[str, str]:
    """``{route: kind}`` for every route of a document (:func:`route_names`), chat when unstated.

    A valid document gives every variant of a route the same kind, so the first variant that states
    one (or the plain value) says it; a disabled route keeps the kind its variants state.
    """
    values = doc.get("values")
    values = values if isinstance(values, Mapping) else {}
    kinds: dict[str, str] = {}
    for name in route_names(doc):
        value = values.get(name)
        entries: list[Any] = []
        if isinstance(value, Mapping):
            variants = value.get("_variants")
            if isinstance(variants, list):
                entries = [v.get("attributeValues") for v in variants if isinstance(v, Mapping)]
            else:
                entries = [value]
        stated = [e["kind"] for e in entries if isinstance(e, Mapping) and e.get("kind") in ROUTE_KINDS]
        kinds[name] = stated[0] if stated else ROUTE_KIND_CHAT
    return kinds
