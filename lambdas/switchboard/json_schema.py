"""JSON Schema for structured outputs and tool arguments: check a client's schema, validate answers
against it, and write an example value (the mock provider's answers).

Why our own and not a library: this runs in the invoke step Lambda on every structured answer, so
it must be small, import fast and be stdlib only; and client schemas are data we interpret, never
code we generate (validators that compile schemas to Python, such as fastjsonschema, would turn a
hostile schema into code). The dialect is the JSON Schema 2020-12 subset that OpenAI structured
outputs and pydantic's `model_json_schema()` emit:

- `type` (a name or a list of names), `enum`, `const`;
- objects: `properties`, `required`, `additionalProperties`, `patternProperties`, `propertyNames`,
  `minProperties`, `maxProperties`; arrays: `items` (a schema, or a list: the draft-7 tuple form),
  `prefixItems`, `additionalItems`, `minItems`, `maxItems`, `uniqueItems`;
- numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, as in 2020-12),
  `multipleOf` (checked in decimal, so 0.3 is a multiple of 0.1); strings: `minLength`,
  `maxLength`, `pattern` (see `switchboard.schema_patterns` for how ReDoS is kept out), `format`
  (date-time, date, time, email, uuid, ipv4 and ipv6 are checked; other formats are annotations);
- `anyOf`, `oneOf`, `allOf`, `not`; `$ref` to a JSON pointer in the same document (`#`,
  `#/$defs/X`, `#/definitions/X`, recursion included; siblings of `$ref` apply too, as in 2020-12);
- annotations, ignored: `title`, `description`, `default`, `examples`, `deprecated`, `readOnly`,
  `writeOnly`, `$comment`, `$schema`, `$id`, `discriminator` and any other unknown keyword.

Validation keywords outside this subset (`if`/`then`/`else`, `contains`, `dependentRequired`,
`unevaluatedProperties`, `$dynamicRef`, ...) make `check_schema` refuse the schema rather than
validate answers more loosely than the client expects.

Everything is bounded: schema depth (`MAX_SCHEMA_DEPTH`), the work one validation may do
(`MAX_VALIDATION_STEPS` subschema applications: `$ref` and `anyOf` can make a small schema costly),
the nesting followed, the problems reported (`MAX_PROBLEMS`), and the length of values quoted in
messages (never a whole value: answers may be large or private).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any, TypeGuard
from urllib.parse import unquote

from switchboard.schema_patterns import MAX_PATTERN_SUBJECT, pattern_example, pattern_problem, search

__all__ = ["MAX_SCHEMA_DEPTH", "check_schema", "example", "validate"]

MAX_SCHEMA_DEPTH = 64
MAX_SCHEMA_NODES = 20_000
MAX_PROBLEMS = 20
MAX_VALIDATION_STEPS = 200_000
MAX_VALIDATION_DEPTH = 256
MAX_EXAMPLE_STEPS = 20_000
MAX_EXAMPLE_STRING = 10_000
# How often one `$ref` may be re-entered on the way down while writing an example.
_MAX_REF_REENTRY = 3

TYPE_NAMES = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})

_SCHEMA_KEYWORDS = ("additionalProperties", "items", "additionalItems", "propertyNames", "not")
_SCHEMA_LIST_KEYWORDS = ("prefixItems", "allOf", "anyOf", "oneOf")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "definitions")
_NUMBER_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_COUNT_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_UNSUPPORTED = frozenset(
    {
        "if",
        "then",
        "else",
        "contains",
        "minContains",
        "maxContains",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "unevaluatedProperties",
        "unevaluatedItems",
        "$dynamicRef",
        "$recursiveRef",
    }
)


# --- small helpers ------------------------------------------------------------------------------


def _pointer(path: tuple[str | int, ...]) -> str:
    """A JSON pointer for messages (segments clipped: property names come from clients)."""
    if not path:
        return "(root)"
    parts = []
    for segment in path:
        text = str(segment).replace("~", "~0").replace("/", "~1")
        parts.append(text if len(text) <= 64 else text[:61] + "...")
    return "/" + "/".join(parts)


def _describe(value: Any) -> str:
    """A short description of a value: its text when short, else its type and size."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 32 else f"a {_type_of(value)} of {len(text)} digits"
    if isinstance(value, str):
        return repr(value) if len(value) <= 32 else f"a string of {len(value)} characters"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} properties"
    return _type_of(value)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if math.isfinite(value) and value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_type(value: Any, name: str) -> bool:
    if name == "number":
        return _is_number(value)
    if name == "integer":
        return _is_number(value) and (isinstance(value, int) or float(value).is_integer())
    return _type_of(value) == name


def _is_count(value: Any) -> TypeGuard[int | float]:
    """A non-negative JSON integer (1.0 counts, as JSON Schema says)."""
    return _is_type(value, "integer") and value >= 0


def _object(schema: Mapping[str, Any], keyword: str) -> dict[str, Any]:
    value = schema.get(keyword)
    return value if isinstance(value, dict) else {}


def _decimal(value: int | float) -> Decimal:
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _canonical(value: Any) -> Any:
    """A hashable form in which equal JSON values are equal (1 == 1.0, but true != 1)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", _decimal(value) if _is_number(value) else repr(value))
    if isinstance(value, list):
        return ("array", tuple(_canonical(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    return ("other", repr(value))


def _json_equal(left: Any, right: Any) -> bool:
    return bool(_canonical(left) == _canonical(right))


def _resolve(root: Any, ref: str) -> Any:
    """The subschema a local `$ref` points at; KeyError when it does not resolve."""
    if not ref.startswith("#"):
        raise KeyError(ref)
    fragment = unquote(ref[1:])
    if fragment == "":
        return root
    if not fragment.startswith("/"):
        raise KeyError(ref)
    node = root
    for raw in fragment[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise KeyError(ref)
    if not isinstance(node, dict | bool):
        raise KeyError(ref)
    return node


# --- check_schema -------------------------------------------------------------------------------


def check_schema(schema: Any) -> list[str]:
    """Problems that make `schema` unusable for validating answers (empty: usable).

    The top level must be an object; subschemas may be objects or booleans. Messages name the
    place in the schema as a JSON pointer.
    """
    if not isinstance(schema, dict):
        return ["(root): a schema must be a JSON object"]
    checker = _SchemaChecker(schema)
    try:
        checker.check(schema, (), 0)
        if not checker.problems:
            checker.check_ref_cycles()
    except RecursionError:  # a chain of thousands of `$ref`s: refuse it rather than crash
        return ["(root): the schema's references chain too deeply"]
    return checker.problems[:MAX_PROBLEMS]


class _SchemaChecker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.problems: list[str] = []
        self.nodes: list[dict[str, Any]] = []

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{_pointer(path)}: {message}")

    def check(self, schema: Any, path: tuple[str | int, ...], depth: int) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            return
        if isinstance(schema, bool):
            return
        if not isinstance(schema, dict):
            self.problem(path, "a schema must be an object or a boolean")
            return
        if depth > MAX_SCHEMA_DEPTH:
            self.problem(path, f"schemas nest deeper than {MAX_SCHEMA_DEPTH} levels")
            return
        self.nodes.append(schema)
        if len(self.nodes) > MAX_SCHEMA_NODES:
            self.problem(path, f"the schema has more than {MAX_SCHEMA_NODES} subschemas")
            return
        for keyword in sorted(_UNSUPPORTED.intersection(schema)):
            self.problem(path, f"keyword `{keyword}` is not supported")
        self.check_keywords(schema, path)
        for keyword in _SCHEMA_KEYWORDS:
            if keyword in schema:
                value = schema[keyword]
                if keyword == "items" and isinstance(value, list):
                    for index, item in enumerate(value):
                        self.check(item, (*path, keyword, index), depth + 1)
                else:
                    self.check(value, (*path, keyword), depth + 1)
        for keyword in _SCHEMA_LIST_KEYWORDS:
            if keyword in schema:
                value = schema[keyword]
                if not isinstance(value, list) or not value:
                    self.problem((*path, keyword), f"`{keyword}` must be a non-empty array of schemas")
                    continue
                for index, item in enumerate(value):
                    self.check(item, (*path, keyword, index), depth + 1)
        for keyword in _SCHEMA_MAP_KEYWORDS:
            if keyword in schema:
                value = schema[keyword]
                if not isinstance(value, dict):
                    self.problem((*path, keyword), f"`{keyword}` must be an object of schemas")
                    continue
                for name, item in value.items():
                    if keyword == "patternProperties":
                        self.check_pattern((*path, keyword, name), name)
                    self.check(item, (*path, keyword, name), depth + 1)

    def check_keywords(self, schema: dict[str, Any], path: tuple[str | int, ...]) -> None:
        if "type" in schema:
            kind = schema["type"]
            names = kind if isinstance(kind, list) else [kind]
            if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
                self.problem((*path, "type"), "`type` must be a type name or an array of distinct ones")
            else:
                for name in names:
                    if name not in TYPE_NAMES:
                        self.problem((*path, "type"), f"unknown type {_describe(name)}")
        if "required" in schema:
            required = schema["required"]
            if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
                self.problem((*path, "required"), "`required` must be an array of property names")
        if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
            self.problem((*path, "enum"), "`enum` must be a non-empty array")
        for keyword in _NUMBER_KEYWORDS:
            if keyword in schema and not _is_number(schema[keyword]):
                self.problem((*path, keyword), f"`{keyword}` must be a number")
        if "multipleOf" in schema:
            step = schema["multipleOf"]
            if not _is_number(step) or step <= 0:
                self.problem((*path, "multipleOf"), "`multipleOf` must be a number greater than 0")
        for keyword in _COUNT_KEYWORDS:
            if keyword in schema and not _is_count(schema[keyword]):
                self.problem((*path, keyword), f"`{keyword}` must be a non-negative integer")
        if "uniqueItems" in schema and not isinstance(schema["uniqueItems"], bool):
            self.problem((*path, "uniqueItems"), "`uniqueItems` must be a boolean")
        if "pattern" in schema:
            self.check_pattern((*path, "pattern"), schema["pattern"])
        if "format" in schema and not isinstance(schema["format"], str):
            self.problem((*path, "format"), "`format` must be a string")
        if "$ref" in schema:
            ref = schema["$ref"]
            if not isinstance(ref, str):
                self.problem((*path, "$ref"), "`$ref` must be a string")
            else:
                try:
                    _resolve(self.root, ref)
                except KeyError:
                    self.problem(
                        (*path, "$ref"),
                        f"`$ref` {_describe(ref)} does not point at a schema in this document "
                        "(only local references such as `#/$defs/Name` are followed)",
                    )

    def check_pattern(self, path: tuple[str | int, ...], pattern: Any) -> None:
        if not isinstance(pattern, str):
            self.problem(path, "a pattern must be a string")
            return
        problem = pattern_problem(pattern)
        if problem:
            self.problem(path, f"the pattern {problem}")

    def check_ref_cycles(self) -> None:
        """Refuse `$ref` loops that consume nothing (`{"$ref": "#"}`): validation would never end."""
        state: dict[int, int] = {}  # 1: on the current path, 2: done

        def in_place(node: dict[str, Any]) -> Iterator[Any]:
            if isinstance(node.get("$ref"), str):
                yield _resolve(self.root, node["$ref"])
            for keyword in ("allOf", "anyOf", "oneOf"):
                yield from node.get(keyword) or ()
            if "not" in node:
                yield node["not"]

        def visit(node: Any) -> bool:
            if not isinstance(node, dict):
                return False
            marker = state.get(id(node))
            if marker == 1:
                return True
            if marker == 2:
                return False
            state[id(node)] = 1
            looped = any(visit(child) for child in in_place(node))
            state[id(node)] = 2
            return looped

        for node in self.nodes:
            if visit(node):
                self.problem((), "`$ref`s form a loop that never reaches a property or an item")
                return


# --- validate -----------------------------------------------------------------------------------


def validate(instance: Any, schema: Any) -> list[str]:
    """Where `instance` breaks `schema` (empty: it validates). For schemas `check_schema` accepts."""
    validator = _Validator(schema)
    try:
        return validator.errors(instance, schema, (), 0, MAX_PROBLEMS)
    except _GaveUp as gave_up:
        return [str(gave_up)]
    except RecursionError:  # comparing values nested hundreds of levels deep (`enum`, `const`)
        return ["(root): the value is nested too deeply to validate"]


class _GaveUp(Exception):
    pass


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(?:[Zz]|[+-]\d{2}:?\d{2})?", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # lenient: `user@localhost` is an address too


def _valid_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _valid_time(text: str) -> bool:
    match = _TIME.fullmatch(text)
    if not match:
        return False
    try:
        time.fromisoformat(match.group(1))
    except ValueError:
        return False
    return True


def _valid_ip(text: str, version: int) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == version


_FORMAT_CHECKS = {
    "date": _valid_date,
    "time": _valid_time,
    "date-time": lambda text: (
        len(text) > 11
        and text[10] in "Tt "
        and _valid_date(text[:10])
        and _valid_time(text[11:])
        and _datetime_parses(text)
    ),
    "uuid": lambda text: bool(_UUID.fullmatch(text)),
    "email": lambda text: len(text) <= 320 and bool(_EMAIL.fullmatch(text)),
    "ipv4": lambda text: _valid_ip(text, 4),
    "ipv6": lambda text: _valid_ip(text, 6),
}


def _datetime_parses(text: str) -> bool:
    try:
        datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError:
        return False
    return True


def _multiple_of(value: int | float, step: int | float) -> bool:
    if isinstance(value, int) and isinstance(step, int):
        return value % step == 0
    try:
        with localcontext() as context:
            context.prec = 50
            return _decimal(value) % _decimal(step) == 0
    except InvalidOperation:  # the quotient has more digits than any float can carry
        return False


class _Validator:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.steps = 0

    def errors(
        self, instance: Any, schema: Any, path: tuple[str | int, ...], depth: int, limit: int
    ) -> list[str]:
        """Up to `limit` problems of `instance` against `schema`."""
        self.steps += 1
        if self.steps > MAX_VALIDATION_STEPS:
            raise _GaveUp("validation gave up: the schema is too costly to evaluate against this value")
        where = _pointer(path)
        if schema is True:
            return []
        if schema is False:
            return [f"{where}: no value is allowed here"]
        if not isinstance(schema, dict):
            return []
        if depth > MAX_VALIDATION_DEPTH:
            return [f"{where}: nested deeper than {MAX_VALIDATION_DEPTH} levels"]
        problems: list[str] = []

        def add(message: str) -> bool:
            """Record a problem; True when enough were found."""
            problems.append(f"{where}: {message}")
            return len(problems) >= limit

        def add_all(found: list[str]) -> bool:
            problems.extend(found[: limit - len(problems)])
            return len(problems) >= limit

        if isinstance(schema.get("$ref"), str):
            try:
                target = _resolve(self.root, schema["$ref"])
            except KeyError:
                if add("`$ref` does not resolve"):
                    return problems
            else:
                if add_all(self.errors(instance, target, path, depth + 1, limit - len(problems))):
                    return problems

        if "type" in schema:
            names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_is_type(instance, str(name)) for name in names):
                expected = " or ".join(str(name) for name in names)
                if add(f"expected {expected}, got {_describe(instance)}"):
                    return problems
                return problems  # the other keywords would only repeat the type mismatch
        if (
            "const" in schema
            and not _json_equal(instance, schema["const"])
            and add(f"expected the constant {_describe(schema['const'])}, got {_describe(instance)}")
        ):
            return problems
        enum = schema.get("enum")
        if (
            isinstance(enum, list)
            and not any(_json_equal(instance, option) for option in enum)
            and add(f"{_describe(instance)} is not one of the {len(enum)} allowed values")
        ):
            return problems

        if _is_number(instance):
            for message in self.number_problems(instance, schema):
                if add(message):
                    return problems
        elif isinstance(instance, str):
            for message in self.string_problems(instance, schema):
                if add(message):
                    return problems
        elif isinstance(instance, list):
            if add_all(self.array_problems(instance, schema, path, depth, limit - len(problems))):
                return problems
        elif isinstance(instance, dict) and add_all(
            self.object_problems(instance, schema, path, depth, limit - len(problems))
        ):
            return problems

        for sub in schema.get("allOf") or ():
            if add_all(self.errors(instance, sub, path, depth + 1, limit - len(problems))):
                return problems
        if isinstance(schema.get("anyOf"), list):
            branches = schema["anyOf"]
            if not any(not self.errors(instance, sub, path, depth + 1, 1) for sub in branches) and add(
                f"{_describe(instance)} matches none of the {len(branches)} `anyOf` alternatives"
            ):
                return problems
        if isinstance(schema.get("oneOf"), list):
            branches = schema["oneOf"]
            matching = sum(1 for sub in branches if not self.errors(instance, sub, path, depth + 1, 1))
            if matching != 1:
                count = "none" if matching == 0 else f"{matching}"
                if add(f"{_describe(instance)} matches {count} of the `oneOf` alternatives, not exactly one"):
                    return problems
        if "not" in schema and not self.errors(instance, schema["not"], path, depth + 1, 1):
            add(f"{_describe(instance)} matches the schema under `not`")
        return problems

    @staticmethod
    def number_problems(value: int | float, schema: dict[str, Any]) -> Iterator[str]:
        bounds = (
            ("minimum", lambda b: value >= b, "≥"),
            ("maximum", lambda b: value <= b, "≤"),
            ("exclusiveMinimum", lambda b: value > b, ">"),
            ("exclusiveMaximum", lambda b: value < b, "<"),
        )
        for keyword, holds, sign in bounds:
            bound = schema.get(keyword)
            if _is_number(bound) and not holds(bound):
                yield f"{_describe(value)} is not {sign} {_describe(bound)}"
        step = schema.get("multipleOf")
        if _is_number(step) and step > 0 and not _multiple_of(value, step):
            yield f"{_describe(value)} is not a multiple of {_describe(step)}"

    @staticmethod
    def string_problems(value: str, schema: dict[str, Any]) -> Iterator[str]:
        length = len(value)
        low, high = schema.get("minLength"), schema.get("maxLength")
        if _is_count(low) and length < low:
            yield f"a string of {length} characters is shorter than {int(low)}"
        if _is_count(high) and length > high:
            yield f"a string of {length} characters is longer than {int(high)}"
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            if length > MAX_PATTERN_SUBJECT:
                yield f"a string of {length} characters is too long to match against `pattern` safely"
            elif pattern_problem(pattern) is not None:
                yield "`pattern` is not usable"
            elif not search(pattern, value):
                yield f"{_describe(value)} does not match the pattern"
        kind = schema.get("format")
        check = _FORMAT_CHECKS.get(kind) if isinstance(kind, str) else None
        if check is not None and not check(value):
            yield f"{_describe(value)} is not a valid {kind}"

    def array_problems(
        self, items: list[Any], schema: dict[str, Any], path: tuple[str | int, ...], depth: int, limit: int
    ) -> list[str]:
        problems: list[str] = []
        where = _pointer(path)
        low, high = schema.get("minItems"), schema.get("maxItems")
        if _is_count(low) and len(items) < low:
            problems.append(f"{where}: {len(items)} items, fewer than {int(low)}")
        if _is_count(high) and len(items) > high:
            problems.append(f"{where}: {len(items)} items, more than {int(high)}")
        if schema.get("uniqueItems") is True and len({_canonical(item) for item in items}) != len(items):
            problems.append(f"{where}: the items are not unique")
        if isinstance(schema.get("prefixItems"), list):
            prefix: list[Any] = schema["prefixItems"]
            rest = schema.get("items", True)
        elif isinstance(schema.get("items"), list):
            prefix = schema["items"]
            rest = schema.get("additionalItems", True)
        else:
            prefix, rest = [], schema.get("items", True)
        for index, item in enumerate(items):
            if len(problems) >= limit:
                break
            sub = prefix[index] if index < len(prefix) else rest
            problems.extend(self.errors(item, sub, (*path, index), depth + 1, limit - len(problems)))
        return problems[:limit]

    def object_problems(
        self,
        value: dict[str, Any],
        schema: dict[str, Any],
        path: tuple[str | int, ...],
        depth: int,
        limit: int,
    ) -> list[str]:
        problems: list[str] = []
        where = _pointer(path)
        required = schema.get("required")
        if isinstance(required, list):
            missing = [name for name in required if isinstance(name, str) and name not in value]
            for name in missing[:limit]:
                problems.append(f"{where}: the required property {_describe(name)} is missing")
        low, high = schema.get("minProperties"), schema.get("maxProperties")
        if _is_count(low) and len(value) < low:
            problems.append(f"{where}: {len(value)} properties, fewer than {int(low)}")
        if _is_count(high) and len(value) > high:
            problems.append(f"{where}: {len(value)} properties, more than {int(high)}")
        properties = _object(schema, "properties")
        patterns = _object(schema, "patternProperties")
        additional = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, item in value.items():
            if len(problems) >= limit:
                break
            child = (*path, key)
            if names is not None:
                problems.extend(self.errors(key, names, child, depth + 1, limit - len(problems)))
            matched = False
            if key in properties:
                matched = True
                problems.extend(self.errors(item, properties[key], child, depth + 1, limit - len(problems)))
            for pattern, sub in patterns.items():
                if len(key) > MAX_PATTERN_SUBJECT:
                    problems.append(f"{_pointer(child)}: the property name is too long to match patterns")
                    matched = True
                    break
                if pattern_problem(pattern) is None and search(pattern, key):
                    matched = True
                    problems.extend(self.errors(item, sub, child, depth + 1, limit - len(problems)))
            if not matched:
                if additional is False:
                    problems.append(f"{_pointer(child)}: property not allowed (`additionalProperties`)")
                else:
                    problems.extend(self.errors(item, additional, child, depth + 1, limit - len(problems)))
        return problems[:limit]


# --- example ------------------------------------------------------------------------------------


class _Nothing:
    """No value found (a required part that cannot be written, such as `false` or a loop)."""


_NOTHING: Any = _Nothing()

_FORMAT_EXAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com/mock",
    "iri": "https://example.com/mock",
    "uri-reference": "https://example.com/mock",
    "iri-reference": "https://example.com/mock",
    "uri-template": "https://example.com/{mock}",
    "json-pointer": "/mock",
    "relative-json-pointer": "0",
    "regex": "mock",
}


def example(schema: Any) -> Any:
    """A deterministic value valid against `schema`, as the mock provider answers.

    Objects get every required property (and declared ones up to `minProperties`); strings are
    `"mock"` (or a value of their `format`, or one their `pattern` matches, fitted to the length
    bounds); numbers are 0 or the nearest value the bounds and `multipleOf` allow; booleans `true`;
    arrays one item (or `minItems`); `enum`/`const` their first fitting value; `anyOf`/`oneOf` the
    first alternative that works; `$ref`s are followed, and a recursive one is cut short (empty
    arrays, the `null` alternative). When no value is found (contradictory or unsatisfiable
    schemas) the best attempt is returned, which `validate` then refuses.
    """
    try:
        found = _Writer(schema).value(schema, ("#",))  # the root counts as entered through `#`
    except RecursionError:
        return None
    return None if found is _NOTHING else found


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """One schema with the constraints of both (a best effort: used only to write examples)."""
    merged = dict(base)
    for key, value in extra.items():
        if key not in merged:
            merged[key] = value
        elif key == "properties" and isinstance(value, dict) and isinstance(merged[key], dict):
            properties = dict(merged[key])
            for name, sub in value.items():
                previous = properties.get(name)
                both = isinstance(previous, dict) and isinstance(sub, dict)
                properties[name] = _merge(previous, sub) if both else sub  # type: ignore[arg-type]
            merged[key] = properties
        elif key == "required" and isinstance(value, list) and isinstance(merged[key], list):
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        elif key == "type":
            left = merged[key] if isinstance(merged[key], list) else [merged[key]]
            right = value if isinstance(value, list) else [value]
            common = [name for name in left if name in right]
            if "number" in left and "integer" in right and "integer" not in common:
                common.append("integer")
            merged[key] = common or right
        elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
            merged[key] = max(merged[key], value) if _is_number(value) else merged[key]
        elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
            merged[key] = min(merged[key], value) if _is_number(value) else merged[key]
        elif key == "enum" and isinstance(value, list) and isinstance(merged[key], list):
            kept = [item for item in merged[key] if any(_json_equal(item, other) for other in value)]
            merged[key] = kept or merged[key]
        elif key == "allOf" and isinstance(value, list) and isinstance(merged[key], list):
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


class _Writer:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.steps = 0
        self.validator = _Validator(root)

    def valid(self, value: Any, schema: Any) -> bool:
        if value is _NOTHING:
            return False
        try:  # one validation budget for the whole example: past it, first attempts are kept
            return not self.validator.errors(value, schema, (), 0, 1)
        except _GaveUp:
            return False

    def flatten(self, schema: dict[str, Any], refs: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
        """Follow `$ref` and fold `allOf` into one schema; `_NOTHING` past the recursion limit."""
        for _ in range(MAX_SCHEMA_DEPTH):
            if isinstance(schema.get("$ref"), str):
                ref = schema["$ref"]
                if refs.count(ref) >= _MAX_REF_REENTRY:
                    return _NOTHING, refs
                try:
                    target = _resolve(self.root, ref)
                except KeyError:
                    return _NOTHING, refs
                if target is False:
                    return _NOTHING, refs
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                schema = _merge(target, rest) if isinstance(target, dict) else rest
                refs = (*refs, ref)
                continue
            if isinstance(schema.get("allOf"), list):
                merged = {k: v for k, v in schema.items() if k != "allOf"}
                for sub in schema["allOf"]:
                    if sub is False:
                        return _NOTHING, refs
                    if isinstance(sub, dict):
                        sub_flat, refs = self.flatten(sub, refs)
                        if sub_flat is _NOTHING:
                            return _NOTHING, refs
                        merged = _merge(merged, sub_flat)
                schema = merged
                continue
            return schema, refs
        return _NOTHING, refs

    def value(self, schema: Any, refs: tuple[str, ...]) -> Any:
        self.steps += 1
        if self.steps > MAX_EXAMPLE_STEPS or len(refs) > MAX_SCHEMA_DEPTH:
            return _NOTHING
        if schema is False:
            return _NOTHING
        if not isinstance(schema, dict):
            return "mock"
        original = schema
        schema, refs = self.flatten(schema, refs)
        if schema is _NOTHING:
            return _NOTHING
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return next((v for v in schema["enum"] if self.valid(v, original)), schema["enum"][0])
        for keyword in ("anyOf", "oneOf"):
            branches = schema.get(keyword)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != keyword}
                first_try: Any = _NOTHING
                for branch in branches:
                    candidate = self.value(_merge(rest, branch) if isinstance(branch, dict) else branch, refs)
                    if first_try is _NOTHING:
                        first_try = candidate
                    if self.valid(candidate, original):
                        return candidate
                return first_try
        first_try = _NOTHING
        for name in self.types(schema):
            candidate = self.typed(name, schema, refs)
            if self.valid(candidate, original):
                return candidate
            if first_try is _NOTHING:
                first_try = candidate
        return first_try

    @staticmethod
    def types(schema: dict[str, Any]) -> list[str]:
        kind = schema.get("type")
        if isinstance(kind, str):
            return [kind]
        if isinstance(kind, list) and kind:
            return [str(name) for name in kind]
        if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
            return ["object"]
        if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
            return ["array"]
        if any(k in schema for k in (*_NUMBER_KEYWORDS, "multipleOf")):
            return ["number"]
        return ["string"]

    def typed(self, name: str, schema: dict[str, Any], refs: tuple[str, ...]) -> Any:
        if name == "null":
            return None
        if name == "boolean":
            return True
        if name in ("integer", "number"):
            return _number_example(schema, integer=name == "integer")
        if name == "string":
            return _string_example(schema)
        if name == "array":
            return self.array(schema, refs)
        if name == "object":
            return self.object(schema, refs)
        return _NOTHING

    def array(self, schema: dict[str, Any], refs: tuple[str, ...]) -> Any:
        low = int(schema["minItems"]) if _is_count(schema.get("minItems")) else 0
        count = low if len(refs) != len(set(refs)) else max(low, 1)  # recursion: as few as allowed
        if _is_count(schema.get("maxItems")):
            count = min(count, int(schema["maxItems"]))
        if isinstance(schema.get("prefixItems"), list):
            prefix: list[Any] = schema["prefixItems"]
            rest = schema.get("items", True)
        elif isinstance(schema.get("items"), list):
            prefix, rest = schema["items"], schema.get("additionalItems", True)
        else:
            prefix, rest = [], schema.get("items", True)
        unique = schema.get("uniqueItems") is True
        items: list[Any] = []
        seen: set[Any] = set()
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else rest
            item = self.value(sub, refs)
            if item is _NOTHING:
                return items if index >= low else _NOTHING
            if unique and _canonical(item) in seen:
                item = self.distinct(item, sub, seen, refs)
            seen.add(_canonical(item))
            items.append(item)
        return items

    def distinct(self, item: Any, sub: Any, seen: set[Any], refs: tuple[str, ...]) -> Any:
        """Another valid value for an item of a `uniqueItems` array (the item itself if none is found)."""
        flat = self.flatten(sub, refs)[0] if isinstance(sub, dict) else sub
        flat = flat if isinstance(flat, dict) else {}
        candidates: list[Any] = list(flat.get("enum") or ()) if isinstance(flat.get("enum"), list) else []
        tries = range(1, len(seen) + 2)
        if isinstance(item, bool):
            candidates.append(not item)
        elif _is_number(item):
            raw_step = flat.get("multipleOf")
            step = _decimal(raw_step) if _is_number(raw_step) else Decimal(1)
            candidates += [_plain(_decimal(item) + k * step) for k in tries]
            candidates += [_plain(_decimal(item) - k * step) for k in tries]
        elif isinstance(item, str):
            candidates += [f"{item}{k}" for k in tries]
            candidates += [item[: max(0, len(item) - len(str(k)))] + str(k) for k in tries]
        for candidate in candidates:
            if _canonical(candidate) not in seen and self.valid(candidate, sub):
                return candidate
        return item

    def object(self, schema: dict[str, Any], refs: tuple[str, ...]) -> Any:
        properties = _object(schema, "properties")
        required = [n for n in schema.get("required") or () if isinstance(n, str)]
        wanted = list(dict.fromkeys(required))
        if _is_count(schema.get("minProperties")):
            optional = [name for name in properties if name not in wanted]
            wanted.extend(optional[: max(0, int(schema["minProperties"]) - len(wanted))])
        result: dict[str, Any] = {}
        for name in wanted:
            if name in properties:
                sub = properties[name]
            else:
                patterns = schema.get("patternProperties")
                matching = [
                    s
                    for p, s in (patterns.items() if isinstance(patterns, dict) else ())
                    if pattern_problem(p) is None and search(p, name)
                ]
                sub = matching[0] if matching else schema.get("additionalProperties", True)
            item = self.value(sub, refs)
            if item is _NOTHING:
                return _NOTHING
            result[name] = item
        return result


def _string_example(schema: dict[str, Any]) -> str:
    low = int(schema["minLength"]) if _is_count(schema.get("minLength")) else 0
    high = int(schema["maxLength"]) if _is_count(schema.get("maxLength")) else None
    kind = schema.get("format")
    base = _FORMAT_EXAMPLES.get(kind, "mock") if isinstance(kind, str) else "mock"
    pattern = schema.get("pattern")
    fits = low <= len(base) <= (high if high is not None else len(base))
    if isinstance(pattern, str) and pattern_problem(pattern) is None and not (fits and search(pattern, base)):
        base = pattern_example(pattern, low) or base
    if low > MAX_EXAMPLE_STRING:
        return base  # not worth writing: validate() will say it is too short
    if len(base) < low:
        filler = base or "mock"
        base = (filler * (low // len(filler) + 1))[:low] if not isinstance(pattern, str) else base
    if high is not None and len(base) > high:
        base = base[:high]
    return base


def _number_example(schema: dict[str, Any], *, integer: bool) -> int | float:
    low, low_strict = _bound(schema, "minimum", "exclusiveMinimum", lower=True)
    high, high_strict = _bound(schema, "maximum", "exclusiveMaximum", lower=False)

    def fits(value: Decimal) -> bool:
        if low is not None and (value < low or (low_strict and value == low)):
            return False
        if high is not None and (value > high or (high_strict and value == high)):
            return False
        return not integer or value == value.to_integral_value()

    step_raw = schema.get("multipleOf")
    step = _decimal(step_raw) if _is_number(step_raw) and step_raw > 0 else None
    with localcontext() as context:
        context.prec = 50
        zero = Decimal(0)
        if fits(zero):
            return 0
        if step is not None:
            if low is not None:
                k = (low / step).to_integral_value(rounding=ROUND_CEILING)
                direction = 1
            else:
                k = ((high or zero) / step).to_integral_value(rounding=ROUND_FLOOR)
                direction = -1
            for _ in range(100):
                if fits(k * step):
                    return _plain(k * step)
                k += direction
            return _plain(k * step)
        if low is not None:
            candidate = low
            if integer:
                candidate = low.to_integral_value(rounding=ROUND_CEILING)
            if not fits(candidate):
                candidate += 1
                if not fits(candidate) and high is not None and not integer:
                    candidate = (low + high) / 2
            return _plain(candidate)
        assert high is not None  # fits(0) failed, so some bound excludes 0
        candidate = high.to_integral_value(rounding=ROUND_FLOOR) if integer else high
        if not fits(candidate):
            candidate -= 1
        return _plain(candidate)


def _bound(
    schema: dict[str, Any], inclusive: str, exclusive: str, *, lower: bool
) -> tuple[Decimal | None, bool]:
    """The tighter of an inclusive and an exclusive bound, and whether it is exclusive."""
    found: tuple[Decimal | None, bool] = (None, False)
    for keyword, strict in ((inclusive, False), (exclusive, True)):
        raw = schema.get(keyword)
        if not _is_number(raw):
            continue
        value = _decimal(raw)
        current = found[0]
        tighter = current is None or (value > current if lower else value < current)
        if tighter or (value == current and strict):
            found = (value, strict)
    return found


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
