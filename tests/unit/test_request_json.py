"""The bounded body parser: I-JSON in, a value out; anything else a named refusal, never a crash."""

from __future__ import annotations

import contextlib
import json
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.request_json import (
    MAX_CONTAINERS,
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    UnacceptableJson,
    parse_request_json,
)
from tests.hostile_json import hostile_bodies, nested

SIX_MB = 6 * 1024 * 1024


def refusal(text: str) -> UnacceptableJson:
    with pytest.raises(UnacceptableJson) as caught:
        parse_request_json(text)
    return caught.value


# --- the two bodies that answered 500 ---------------------------------------------------------------


def test_nesting_5000_deep_is_refused_before_parsing() -> None:
    error = refusal("[" * 5000 + "]" * 5000)
    assert error.code == "json_too_deep" and str(MAX_DEPTH) in error.message


def test_an_integer_of_5000_digits_is_refused() -> None:
    error = refusal('{"model": "chat", "seed": ' + "7" * 5000 + "}")
    assert error.code == "json_number_out_of_range" and "5000 characters" in error.message


# --- limits, at and just past the edge --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_depth_limit_is_exact(kind: str) -> None:
    assert parse_request_json(nested(MAX_DEPTH, kind)) is not None
    assert refusal(nested(MAX_DEPTH + 1, kind)).code == "json_too_deep"


def test_container_count_limit_is_exact() -> None:
    assert len(parse_request_json("[" + ",".join(["{}"] * (MAX_CONTAINERS - 1)) + "]")) == MAX_CONTAINERS - 1
    error = refusal("[" + ",".join(["[]"] * MAX_CONTAINERS) + "]")
    assert error.code == "json_too_large" and str(MAX_CONTAINERS) in error.message


def test_brackets_inside_strings_do_not_count() -> None:
    tricky = ["[[[[", '\\"[[[[', "\\\\", '\\\\\\"{{{{', "]]]]"]
    text = json.dumps({"s": "".join(tricky) * 100, "t": "{" * 1000, "u": '\\"' * 50})
    assert parse_request_json(text) == json.loads(text)


def test_escaped_quotes_and_backslashes_do_not_hide_brackets() -> None:
    """`"\\\\"` ends the string, so what follows is structure and counts."""
    depth = MAX_DEPTH + 1
    text = '["\\\\", ' + "[" * depth + "]" * depth + "]"
    assert refusal(text).code == "json_too_deep"


def test_number_literal_length_limit_is_exact() -> None:
    assert parse_request_json("9" * MAX_NUMBER_CHARS) == int("9" * MAX_NUMBER_CHARS)
    assert refusal("9" * (MAX_NUMBER_CHARS + 1)).code == "json_number_out_of_range"
    assert refusal("0." + "1" * MAX_NUMBER_CHARS).code == "json_number_out_of_range"


@pytest.mark.parametrize("literal", ["1e309", "-1e309", "1.8e308"])
def test_floats_beyond_a_double_are_refused(literal: str) -> None:
    assert refusal(f"[{literal}]").code == "json_number_out_of_range"


@pytest.mark.parametrize("literal", ["1.7e308", "-1.7e308", "5e-324", "1e-400", "-0", "0.1"])
def test_finite_floats_are_kept(literal: str) -> None:
    value = parse_request_json(f"[{literal}]")[0]
    assert math.isfinite(value) and value == float(literal)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_not_json(constant: str) -> None:
    error = refusal(f'{{"temperature": {constant}}}')
    assert error.code == "invalid_json" and constant in error.message


def test_a_repeated_key_is_refused_and_named() -> None:
    error = refusal('{"model": "chat", "messages": [{"role": "user", "role": "system"}]}')
    assert error.code == "json_duplicate_key" and '"role"' in error.message


def test_a_repeated_long_key_is_named_shortly() -> None:
    key = "k" * 10000
    error = refusal(f'{{"{key}": 1, "{key}": 2}}')
    assert error.code == "json_duplicate_key" and len(error.message) < 200


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ('{"messages": [{"content": "a\\ud800b"}]}', "messages.0.content"),
        ('{"messages": [{"content": "\\udfff"}]}', "messages.0.content"),
        ('{"stop": ["ok", "\\udc00\\ud800"]}', "stop.1"),
        ('{"meta": {"\\ud800": 1}}', "meta"),
        ('["\\ud800"]', "0"),
        ('"\\ud800"', None),
    ],
)
def test_lone_surrogates_are_refused_with_where(text: str, param: str | None) -> None:
    error = refusal(text)
    assert error.code == "invalid_unicode" and error.param == param
    error.message.encode("utf-8")  # the refusal itself is valid text


def test_a_raw_lone_surrogate_is_refused_too() -> None:
    assert refusal('{"content": "a\ud800"}').code == "invalid_unicode"


def test_surrogate_pairs_are_text() -> None:
    assert parse_request_json('{"content": "\\ud83d\\ude00 \\uD83D\\uDE00"}') == {
        "content": "\U0001f600 \U0001f600"
    }


def test_escaped_nul_is_text_and_raw_nul_is_not_json() -> None:
    assert parse_request_json('{"content": "a\\u0000b"}') == {"content": "a\x00b"}
    assert refusal('{"content": "a\x00b"}').code == "invalid_json"


@pytest.mark.parametrize("text", ["", "{", '{"a" 1}', "[1,]", "{'a': 1}", "01", '"\\x"'])
def test_syntax_errors_say_where(text: str) -> None:
    error = refusal(text)
    assert error.code == "invalid_json" and "line 1, column" in error.message


# --- properties ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=40,
)


@given(value=json_values, ascii_only=st.booleans())
@settings(max_examples=400, deadline=None)
def test_any_json_value_within_the_limits_parses_as_json_loads_would(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert parse_request_json(text) == json.loads(text)


@given(depth=st.integers(1, 3 * MAX_DEPTH), kind=st.sampled_from(["array", "object", "mixed"]))
@settings(max_examples=100, deadline=None)
def test_the_depth_check_matches_the_real_depth(depth: int, kind: str) -> None:
    text = nested(depth, kind)
    if depth <= MAX_DEPTH:
        assert parse_request_json(text) == json.loads(text)
    else:
        assert refusal(text).code == "json_too_deep"


@given(body=hostile_bodies)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
def test_hostile_bodies_give_a_value_or_a_named_refusal_never_another_error(body: str) -> None:
    started = time.monotonic()
    try:
        parse_request_json(body)
    except UnacceptableJson as exc:
        assert exc.code in {
            "invalid_json",
            "json_too_deep",
            "json_too_large",
            "json_number_out_of_range",
            "json_duplicate_key",
            "invalid_unicode",
        }
        exc.message.encode("utf-8")
    assert time.monotonic() - started < 2


@given(text=st.text(alphabet=st.sampled_from('[]{}",:\\0123456789-.eE tfnNaI\x00\ud800u'), max_size=300))
@settings(max_examples=500, deadline=None)
def test_arbitrary_json_shaped_noise_never_escapes_as_another_error(text: str) -> None:
    with contextlib.suppress(UnacceptableJson):
        parse_request_json(text)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("[" * SIX_MB, "json_too_large"),
        ("[" * 5000 + "{}," * (SIX_MB // 3), "json_too_large"),
        ("[" + "{}," * (SIX_MB // 3 - 1) + "{}]", "json_too_large"),
        ("[" * 60 + "[" * 5000 + '"' + "]" * (SIX_MB - 5100), "json_too_deep"),
        ('{"a": "' + '\\"' * (SIX_MB // 2 - 8) + '"}', None),
        ('{"a": "' + "[{" * (SIX_MB // 2 - 8) + '"}', None),
        ("[" + "1," * (SIX_MB // 2 - 1) + "1]", None),
        ("[" + "1.5," * (SIX_MB // 4 - 1) + "1]", None),
        ("[}" * (SIX_MB // 2), "json_too_large"),
    ],
    ids=[
        "open-brackets",
        "deep-then-wide",
        "two-million-dicts",
        "deep-unterminated",
        "escaped-quotes",
        "brackets-in-a-string",
        "many-ints",
        "many-floats",
        "mismatched",
    ],
)
def test_six_megabytes_of_the_worst_shapes_take_seconds_at_most(body: str, code: str | None) -> None:
    started = time.monotonic()
    try:
        parse_request_json(body)
        outcome = None
    except UnacceptableJson as exc:
        outcome = exc.code
    elapsed = time.monotonic() - started
    assert outcome == code
    assert elapsed < 5, f"{elapsed:.1f}s"
