"""JSON Schema subset: check_schema refuses what it cannot honour, validate agrees with the
reference implementation (`jsonschema`, Draft 2020-12) on the subset, example() always validates."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from switchboard.json_schema import MAX_VALIDATION_STEPS, check_schema, example, validate

# --- hand cases: check_schema -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ([], "must be a JSON object"),
        ("string", "must be a JSON object"),
        ({"type": "strnig"}, "unknown type 'strnig'"),
        ({"type": ["string", "string"]}, "distinct"),
        ({"type": []}, "distinct"),
        ({"required": "name"}, "`required` must be an array"),
        ({"required": [1]}, "`required` must be an array"),
        ({"properties": []}, "`properties` must be an object"),
        ({"properties": {"a": 3}}, "/properties/a: a schema must be an object or a boolean"),
        ({"items": "x"}, "/items: a schema must be"),
        ({"anyOf": []}, "non-empty array"),
        ({"enum": []}, "`enum` must be a non-empty array"),
        ({"minimum": "3"}, "`minimum` must be a number"),
        ({"exclusiveMinimum": True}, "`exclusiveMinimum` must be a number"),
        ({"multipleOf": 0}, "greater than 0"),
        ({"minLength": -1}, "non-negative integer"),
        ({"maxItems": 1.5}, "non-negative integer"),
        ({"uniqueItems": "yes"}, "must be a boolean"),
        ({"pattern": 5}, "must be a string"),
        ({"pattern": "(unclosed"}, "not a regular expression"),
        ({"pattern": "(a+)+$"}, "backtrack"),
        ({"pattern": "x" * 1001}, "longer than 1000"),
        ({"$ref": "#/$defs/Missing"}, "does not point at a schema"),
        ({"$ref": "https://example.com/schema.json"}, "only local references"),
        ({"$ref": "#/$defs/A", "$defs": {"A": 3}}, "/$defs/A: a schema must be"),
        ({"$ref": "#"}, "loop"),
        (
            {"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/B"}]}, "B": {"allOf": [{"$ref": "#/$defs/A"}]}}},
            "loop",
        ),
        ({"if": {"type": "string"}, "then": {"minLength": 1}}, "keyword `if` is not supported"),
        ({"type": "array", "contains": {"type": "string"}}, "keyword `contains` is not supported"),
        ({"unevaluatedProperties": False}, "not supported"),
        ({"patternProperties": {"(a*)*": {}}}, "backtrack"),
    ],
)
def test_check_schema_refuses(schema: Any, fragment: str) -> None:
    problems = check_schema(schema)
    assert problems, schema
    assert any(fragment in problem for problem in problems), problems


def test_check_schema_bounds_depth_and_reports_few_problems() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(100):
        deep = {"type": "array", "items": deep}
    assert any("deeper than" in p for p in check_schema(deep))
    many = {"properties": {f"p{i}": {"type": "nope"} for i in range(100)}}
    assert len(check_schema(many)) == 20


def test_check_schema_accepts_recursion_through_properties_and_annotations() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Tree",
        "description": "a tree",
        "type": "object",
        "properties": {
            "label": {"type": "string", "examples": ["x"], "default": "x", "x-vendor": 1},
            "children": {"type": "array", "items": {"$ref": "#"}},
            "legacy": {"$ref": "#/definitions/Leaf"},
            "pointer": {"$ref": "#/properties/label"},
        },
        "required": ["label", "children"],
        "additionalProperties": False,
        "definitions": {"Leaf": {"type": ["string", "null"], "format": "date", "discriminator": {}}},
    }
    assert check_schema(schema) == []
    value = example(schema)
    assert value == {"label": "mock", "children": [{"label": "mock", "children": []}]}
    assert validate(value, schema) == []


# --- hand cases: validate -----------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5},
        "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": True},
        "kind": {"enum": ["a", "b"]},
        "version": {"const": 1},
        "score": {"type": "number", "multipleOf": 0.1},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_valid_instance_has_no_problems() -> None:
    good = {
        "name": "Ann",
        "age": 30,
        "email": "ann@example.com",
        "tags": ["x", "y"],
        "kind": "b",
        "version": 1.0,
        "score": 0.3,
        "code": "AB-123",
    }
    assert validate(good, PERSON) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": ""}, "/name: a string of 0 characters is shorter than 1"),
        ({"name": "toolongname"}, "/name: a string of 11 characters is longer than 5"),
        ({"age": 150}, "/age: 150 is not < 150"),
        ({"age": -1}, "/age: -1 is not ≥ 0"),
        ({"age": 1.5}, "/age: expected integer, got 1.5"),
        ({"age": True}, "/age: expected integer, got true"),
        ({"email": "nope"}, "/email: 'nope' is not a valid email"),
        ({"tags": ["x", "x"]}, "/tags: the items are not unique"),
        ({"tags": ["x", "y", "z"]}, "/tags: 3 items, more than 2"),
        ({"tags": [1]}, "/tags/0: expected string, got 1"),
        ({"kind": "c"}, "/kind: 'c' is not one of the 2 allowed values"),
        ({"version": True}, "/version: expected the constant 1, got true"),
        ({"score": 0.35}, "/score: 0.35 is not a multiple of 0.1"),
        ({"code": "ab-123"}, "/code: 'ab-123' does not match the pattern"),
        ({"extra": 1}, "/extra: property not allowed (`additionalProperties`)"),
    ],
)
def test_invalid_instances_are_caught_with_a_path(change: dict[str, Any], expected: str) -> None:
    instance = {"name": "Ann", "age": 30, **change}
    assert expected in validate(instance, PERSON)


def test_missing_required_and_wrong_root_type() -> None:
    assert validate({}, PERSON) == [
        "(root): the required property 'name' is missing",
        "(root): the required property 'age' is missing",
    ]
    assert validate([], PERSON) == ["(root): expected object, got an array of 0 items"]


def test_messages_never_echo_large_values() -> None:
    secret = "s" * 10_000
    problems = validate({"name": secret, "age": 1}, PERSON)
    assert problems == ["/name: a string of 10000 characters is longer than 5"]
    problems = validate({"name": "x", "age": 1, "k" * 500: 1}, PERSON)
    assert len(problems[0]) < 120


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "string", "format": "date-time"}, "2024-02-29T23:59:59.5+01:00", "2024-02-30T00:00:00Z"),
        ({"type": "string", "format": "date"}, "2024-01-31", "2024-13-01"),
        ({"type": "string", "format": "time"}, "12:30:00Z", "25:00:00"),
        ({"type": "string", "format": "uuid"}, "123e4567-e89b-12d3-a456-426614174000", "123e4567"),
        ({"type": "string", "format": "ipv4"}, "192.0.2.1", "2001:db8::1"),
        ({"type": "string", "format": "ipv6"}, "2001:db8::1", "192.0.2.1"),
        ({"type": "string", "format": "made-up"}, "anything", 3),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, 3, 3.5),
        ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, 3.5, 3),
        ({"not": {"type": "null"}}, 0, None),
        ({"type": "array", "prefixItems": [{"type": "integer"}], "items": False}, [1], [1, 2]),
        ({"type": "array", "items": [{"type": "integer"}], "additionalItems": False}, [1], [1, "x"]),
        ({"type": "object", "patternProperties": {"^x-": {"type": "integer"}}}, {"x-a": 1}, {"x-a": "1"}),
        ({"type": "object", "propertyNames": {"maxLength": 2}}, {"ab": 1}, {"abc": 1}),
        ({"type": "object", "minProperties": 1, "maxProperties": 1}, {"a": 1}, {}),
        ({"type": ["integer", "null"]}, None, "x"),
        ({"enum": [1, "1", None]}, 1.0, True),
        ({"const": {"a": [1, 2]}}, {"a": [1.0, 2]}, {"a": [2, 1]}),
        ({"type": "number"}, 1e300, float("nan")),
    ],
)
def test_keyword_semantics(schema: dict[str, Any], good: Any, bad: Any) -> None:
    assert check_schema(schema) == []
    assert validate(good, schema) == []
    assert validate(bad, schema) != []


def test_pattern_subject_is_capped() -> None:
    schema = {"type": "string", "pattern": "^\\d+x"}
    assert validate("1" * 1999 + "x", schema) == []
    assert "too long to match against `pattern` safely" in validate("1" * 2001, schema)[0]


def test_costly_schema_gives_up_instead_of_running_forever() -> None:
    # Each level offers two alternatives that both lead to the next: 2**40 paths to a mismatch.
    defs = {
        f"L{i}": {"anyOf": [{"$ref": f"#/$defs/L{i + 1}"}, {"$ref": f"#/$defs/L{i + 1}"}]} for i in range(40)
    }
    defs["L40"] = {"type": "string"}
    schema = {"$ref": "#/$defs/L0", "$defs": defs}
    assert check_schema(schema) == []
    assert validate("ok", schema) == []
    problems = validate(1, schema)
    assert problems and ("gave up" in problems[0] or "none of" in problems[0])
    assert MAX_VALIDATION_STEPS >= 100_000


# --- pydantic: the schemas real applications send -------------------------------------------------


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    zip_code: str = Field(pattern=r"^\d{5}$")


class Node(BaseModel):
    name: str
    children: list[Node] = []
    parent: Node | None = None


class Link(BaseModel):
    value: int
    next: Link | None


class Person(BaseModel):
    name: str = Field(min_length=2, max_length=3)
    age: int = Field(ge=18, le=130)
    score: float = Field(gt=0.5, multiple_of=0.25)
    colour: Colour
    kind: Literal["a", "b"]
    addresses: list[Address] = Field(min_length=2)
    born: datetime
    day: date
    id: UUID
    tree: Node
    chain: Link
    tags: set[str]
    pair: tuple[int, str]
    extra: dict[str, int]
    maybe: int | None
    nickname: str | None = None


def test_pydantic_schema_with_nested_models_and_defs() -> None:
    schema = Person.model_json_schema()
    assert "$defs" in schema
    assert check_schema(schema) == []
    value = example(schema)
    assert validate(value, schema) == []
    Person.model_validate(value)  # the application's own model accepts the mock's answer
    assert value["chain"]["next"]["next"]["next"] is None  # recursion is cut short, validly
    assert json.loads(json.dumps(value)) == value


def test_pydantic_schema_catches_invalid_instances() -> None:
    schema = Person.model_json_schema()
    value = example(schema)
    bad = {**value, "age": 5, "colour": "green", "addresses": [{"street": 1}], "born": "yesterday"}
    problems = validate(bad, schema)
    assert "/age: 5 is not ≥ 18" in problems
    assert "/colour: 'green' is not one of the 2 allowed values" in problems
    assert "/addresses: 1 items, fewer than 2" in problems
    assert "/addresses/0: the required property 'zip_code' is missing" in problems
    assert "/born: 'yesterday' is not a valid date-time" in problems
    assert validate({**value, "chain": {"value": 1, "next": {"value": "x", "next": None}}}, schema) == [
        "/chain/next: an object with 2 properties matches none of the 2 `anyOf` alternatives"
    ]


def test_openai_strict_style_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"explanation": {"type": "string"}, "output": {"type": "string"}},
                    "required": ["explanation", "output"],
                    "additionalProperties": False,
                },
            },
            "final_answer": {"type": ["string", "null"]},
            "unit": {"type": "string", "enum": ["F", "C"]},
        },
        "required": ["steps", "final_answer", "unit"],
        "additionalProperties": False,
    }
    assert check_schema(schema) == []
    assert example(schema) == {
        "steps": [{"explanation": "mock", "output": "mock"}],
        "final_answer": "mock",
        "unit": "F",
    }


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "integer", "minimum": 10, "multipleOf": 7}, 14),
        ({"type": "integer", "exclusiveMinimum": 3}, 4),
        ({"type": "integer", "maximum": -3}, -3),
        ({"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1.5}, 1.25),
        ({"type": "number", "minimum": 0.25, "multipleOf": 0.1}, 0.3),
        ({"type": "string", "minLength": 6}, "mockmo"),
        ({"type": "string", "maxLength": 2}, "mo"),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z"),
        ({"type": "string", "pattern": "^[A-Z]{2}-\\d{4}$"}, "AA-0000"),
        ({"enum": ["x", "y"]}, "x"),
        ({"type": "string", "enum": [1, "y"]}, "y"),
        ({"const": [1]}, [1]),
        ({"type": "boolean"}, True),
        ({"type": "null"}, None),
        ({"type": "array", "minItems": 2, "items": {"type": "integer"}}, [0, 0]),
        ({"type": "array", "maxItems": 0}, []),
        ({"anyOf": [{"type": "integer", "minimum": 5}, {"type": "null"}]}, 5),
        (
            {"allOf": [{"type": "object", "required": ["a"]}, {"properties": {"a": {"type": "integer"}}}]},
            {"a": 0},
        ),
        ({"type": "object", "minProperties": 1, "properties": {"b": {"type": "boolean"}}}, {"b": True}),
        ({}, "mock"),
    ],
)
def test_example_values(schema: dict[str, Any], expected: Any) -> None:
    value = example(schema)
    assert value == expected
    assert type(value) is type(expected)
    assert validate(value, schema) == []


def test_example_of_an_impossible_schema_is_refused_by_validate() -> None:
    for schema in (
        {"type": "integer", "minimum": 3, "maximum": 2},
        {"type": "object", "properties": {"a": False}, "required": ["a"]},
        {
            "$defs": {"A": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "required": ["a"]}},
            "$ref": "#/$defs/A",
        },
    ):
        assert validate(example(schema), schema) != []


# --- properties: generated schemas ----------------------------------------------------------------

NAMES = st.text(alphabet="abcxyz_", min_size=1, max_size=5)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.5, -1.25]), st.text("abc", max_size=3)
)
SAFE_PATTERNS = ["^[a-z]+$", "^\\d{3}-\\d{2}$", "^(foo|bar)+$", "x", "^[A-Z][a-z]*$", "^-?\\d+(\\.\\d+)?$"]
FORMATS = ["date-time", "date", "time", "email", "uuid", "ipv4", "ipv6", "uri", "hostname"]


@st.composite
def _bounds(draw: st.DrawFn, *, step: int | float, integer: bool) -> dict[str, Any]:
    """Numeric bounds with room for at least one multiple of `step` strictly inside."""
    schema: dict[str, Any] = {}
    low = draw(st.integers(-50, 50))
    high = low + draw(st.integers(0, 20)) + 3 * (step if isinstance(step, int) else 1)
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = high
    if step != 1 and draw(st.booleans()):
        schema["multipleOf"] = step
    if not integer and draw(st.booleans()) and "minimum" in schema:
        schema["minimum"] = low + 0.5
    return schema


def _leaf(*, differential: bool) -> st.SearchStrategy[dict[str, Any]]:
    lengths = st.tuples(st.integers(0, 4), st.integers(0, 6)).map(
        lambda t: {"type": "string", "minLength": t[0], "maxLength": t[0] + t[1]}
    )
    strings = st.one_of(
        st.just({"type": "string"}),
        lengths,
        st.sampled_from(SAFE_PATTERNS).map(lambda p: {"type": "string", "pattern": p}),
        *([] if differential else [st.sampled_from(FORMATS).map(lambda f: {"type": "string", "format": f})]),
    )
    integer_steps = st.sampled_from([1, 2, 3, 7])
    integers = integer_steps.flatmap(lambda s: _bounds(step=s, integer=True)).map(
        lambda b: {"type": "integer", **b}
    )
    number_steps = st.sampled_from([1, 2] if differential else [1, 2, 0.5, 0.25])
    numbers = number_steps.flatmap(lambda s: _bounds(step=s, integer=False)).map(
        lambda b: {"type": "number", **b}
    )
    return st.one_of(
        strings,
        integers,
        numbers,
        st.just({"type": "boolean"}),
        st.just({"type": "null"}),
        SCALARS.map(lambda v: {"const": v}),
        st.lists(SCALARS, min_size=1, max_size=3, unique_by=lambda v: json.dumps(v)).map(
            lambda v: {"enum": v}
        ),
        st.sampled_from([["string", "null"], ["integer", "string"], ["null", "boolean"]]).map(
            lambda t: {"type": t}
        ),
    )


def _by_type(kind: str, children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return {
        "string": st.just({"type": "string"}),
        "boolean": st.just({"type": "boolean"}),
        "null": st.just({"type": "null"}),
        "array": children.map(lambda c: {"type": "array", "items": c}),
        "object": st.just({"type": "object"}),
    }[kind]


def _compound(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(NAMES, children, max_size=4))
        required = [name for name in properties if draw(st.booleans())]
        schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
        extra = draw(st.sampled_from(["absent", "false", "schema"]))
        if extra == "false":
            schema["additionalProperties"] = False
        elif extra == "schema":
            schema["additionalProperties"] = draw(children)
        return schema

    @st.composite
    def arrays(draw: st.DrawFn) -> dict[str, Any]:
        low = draw(st.integers(0, 3))
        schema: dict[str, Any] = {"type": "array", "items": draw(children), "minItems": low}
        if draw(st.booleans()):
            schema["maxItems"] = low + draw(st.integers(0, 2))
        return schema

    @st.composite
    def tuples(draw: st.DrawFn) -> dict[str, Any]:
        prefix = draw(st.lists(children, min_size=1, max_size=3))
        return {"type": "array", "prefixItems": prefix, "minItems": len(prefix), "items": False}

    @st.composite
    def one_of(draw: st.DrawFn) -> dict[str, Any]:
        kinds = draw(
            st.lists(
                st.sampled_from(["string", "boolean", "null", "array", "object"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        return {"oneOf": [draw(_by_type(kind, children)) for kind in kinds]}

    return st.one_of(
        objects(),
        arrays(),
        tuples(),
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"anyOf": c}),
        one_of(),
        children.map(lambda c: {"allOf": [c], "description": "wrapped, as older pydantic did"}),
    )


@st.composite
def schemas(draw: st.DrawFn, *, differential: bool = False) -> dict[str, Any]:
    """A satisfiable schema of the supported subset, with `$defs` (one of them recursive)."""
    leaves = _leaf(differential=differential)
    defs: dict[str, Any] = draw(
        st.dictionaries(
            st.sampled_from(["A", "B", "C"]), st.recursive(leaves, _compound, max_leaves=4), max_size=2
        )
    )
    refs = [st.just({"$ref": f"#/$defs/{name}"}) for name in defs]
    if draw(st.booleans()):
        defs["Tree"] = {
            "type": "object",
            "properties": {
                "kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
                "label": {"type": "string"},
            },
            "required": ["kids", "label"],
        }
        refs.append(st.just({"$ref": "#/definitions/Tree"}))
    base = st.one_of(leaves, *refs)
    main = draw(st.recursive(base, _compound, max_leaves=8))
    root = {**main, "$defs": defs, "definitions": {"Tree": defs["Tree"]} if "Tree" in defs else {}}
    return root


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas())
def test_example_validates_against_generated_schemas(schema: dict[str, Any]) -> None:
    assert check_schema(schema) == []
    value = example(schema)
    assert validate(value, schema) == []
    assert example(schema) == value  # deterministic
    json.dumps(value, allow_nan=False)


JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-10, 10),
        st.floats(-10, 10, allow_nan=False),
        st.text("abcxyz_-0123456789.", max_size=6),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3)),
    max_leaves=10,
)


@st.composite
def _mutated(draw: st.DrawFn, value: Any) -> Any:
    if draw(st.integers(0, 3)) == 0:
        return draw(JSON)
    if isinstance(value, dict):
        return {key: draw(_mutated(item)) for key, item in value.items() if draw(st.integers(0, 5))}
    if isinstance(value, list):
        return [draw(_mutated(item)) for item in value]
    return value


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_validate_agrees_with_the_reference_implementation(data: st.DataObject) -> None:
    schema = data.draw(schemas(differential=True))
    instance = data.draw(st.one_of(_mutated(example(schema)), JSON))
    expected = jsonschema.Draft202012Validator(schema).is_valid(instance)
    assert (validate(instance, schema) == []) is expected, (schema, instance, validate(instance, schema))


_KEYWORDS = st.sampled_from(
    [
        "type",
        "properties",
        "required",
        "items",
        "prefixItems",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "$ref",
        "enum",
        "const",
        "minimum",
        "maxLength",
        "pattern",
        "format",
        "additionalProperties",
        "$defs",
        "multipleOf",
    ]
)
FUZZ = st.recursive(
    st.one_of(JSON, st.sampled_from(["#", "#/$defs/a", "string", "object", "(a|b)*", "^x+$"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(_KEYWORDS, NAMES), inner, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(FUZZ, JSON)
def test_never_raises_on_hostile_input(schema: Any, instance: Any) -> None:
    problems = check_schema(schema)
    assert all(isinstance(p, str) for p in problems)
    if not problems:
        validate(instance, schema)
        validate(example(schema), schema)


def test_huge_counts_and_long_reference_chains_stay_bounded() -> None:
    assert validate(example({"type": "string", "minLength": 10**9}), {"type": "string", "minLength": 10**9})
    assert validate(example({"type": "array", "minItems": 10**9}), {"type": "array", "minItems": 10**9})
    chain = {f"A{i}": {"$ref": f"#/$defs/A{i + 1}"} for i in range(5000)}
    chain["A5000"] = {"type": "string"}
    problems = check_schema({"$ref": "#/$defs/A0", "$defs": chain})
    assert problems and "deeply" in problems[0]
    deep: Any = "x"
    for _ in range(900):
        deep = [deep]
    assert validate(deep, {"enum": [deep[0]]}) != []


def test_pattern_and_length_together() -> None:
    schema = {"type": "string", "pattern": "^[a-z]+$", "minLength": 6}
    assert example(schema) == "aaaaaa"
    assert validate("aaaaaa", schema) == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "uniqueItems": True, "minItems": 3, "items": {"type": "string", "maxLength": 4}},
        {
            "type": "array",
            "uniqueItems": True,
            "minItems": 3,
            "items": {"type": "integer", "minimum": 5, "multipleOf": 5},
        },
        {"type": "array", "uniqueItems": True, "minItems": 2, "items": {"enum": ["a", "b"]}},
        {"type": "array", "uniqueItems": True, "minItems": 2, "items": {"type": "boolean"}},
        {"type": "array", "uniqueItems": True, "minItems": 2, "items": {"type": "number", "maximum": -1}},
    ],
)
def test_unique_items_get_distinct_examples(schema: dict[str, Any]) -> None:
    value = example(schema)
    assert validate(value, schema) == []


class Tagged(BaseModel):
    tags: set[str] = Field(min_length=2)
    codes: frozenset[int] = Field(min_length=3)


def test_pydantic_sets_with_a_minimum_size() -> None:
    schema = Tagged.model_json_schema()
    Tagged.model_validate(example(schema))
