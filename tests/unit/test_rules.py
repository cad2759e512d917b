"""AppConfig rule language: every operator, coercion, missing keys, split, syntax errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.routing.rules import Rule, RuleSyntaxError, compile_rule, evaluate_rule, split_bucket


def ev(rule: str, **context: str) -> bool:
    return evaluate_rule(rule, context)


# -- comparison -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "context", "expected"),
    [
        ('(eq $tier "premium")', {"tier": "premium"}, True),
        ('(eq $tier "premium")', {"tier": "Premium"}, False),
        ('(eq "premium" $tier)', {"tier": "premium"}, True),
        ("(eq $n 10)", {"n": "10"}, True),
        ("(eq $n 10)", {"n": "10.0"}, True),  # numeric on both sides
        ("(eq $n 10)", {"n": "010"}, True),
        ('(eq $n "10.0")', {"n": "10"}, True),  # two numeric strings also compare as numbers
        ("(eq $n 10)", {"n": "ten"}, False),  # not a number: text compare "ten" vs "10"
        ("(eq $flag true)", {"flag": "true"}, True),
        ("(eq $flag true)", {"flag": "TRUE"}, True),
        ("(eq $flag false)", {"flag": "true"}, False),
        ("(eq $flag true)", {"flag": "1"}, False),  # booleans are not numbers
        ("(eq $a $b)", {"a": "x", "b": "x"}, True),
    ],
)
def test_eq(rule: str, context: dict[str, str], expected: bool) -> None:
    assert evaluate_rule(rule, context) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gt", "66", True),
        ("gt", "65", False),
        ("gte", "65", True),
        ("gte", "64.9", False),
        ("lt", "64.5", True),
        ("lt", "65", False),
        ("lte", "65", True),
        ("lte", "1e3", False),
        ("gt", "100", True),  # numeric, not lexicographic ("100" < "65" as text)
        ("lt", "-7", True),
    ],
)
def test_ordering_numeric(op: str, value: str, expected: bool) -> None:
    assert ev(f"({op} $age 65)", age=value) is expected


def test_ordering_non_numeric_against_number_is_false() -> None:
    for op in ("gt", "gte", "lt", "lte"):
        assert ev(f"({op} $age 65)", age="old") is False


def test_ordering_two_strings_is_lexicographic() -> None:
    assert ev('(gte $date "2024-01-01")', date="2024-06-30") is True
    assert ev('(lt $date "2024-01-01")', date="2023-12-31") is True
    assert ev('(gt $name "m")', name="alice") is False


def test_ordering_with_boolean_is_false() -> None:
    assert ev("(gt $x true)", x="true") is False
    assert ev("(lte $x false)", x="false") is False


# -- logic ------------------------------------------------------------------------------------------


def test_and_or_not_nary() -> None:
    ctx = {"a": "1", "b": "2", "c": "3"}
    assert evaluate_rule("(and (eq $a 1) (eq $b 2) (eq $c 3))", ctx)
    assert not evaluate_rule("(and (eq $a 1) (eq $b 2) (eq $c 4))", ctx)
    assert evaluate_rule("(or (eq $a 9) (eq $b 9) (eq $c 3))", ctx)
    assert not evaluate_rule("(or (eq $a 9) (eq $b 9))", ctx)
    assert evaluate_rule("(not (eq $a 2))", ctx)
    assert evaluate_rule("(and (or (eq $a 1) false) (not (gt $c 5)))", ctx)
    assert evaluate_rule("(or true)", {})
    assert not evaluate_rule("(and false)", {})


# -- string operators -------------------------------------------------------------------------------


def test_begins_ends_contains() -> None:
    assert ev('(begins_with $state "Vir")', state="Virginia")
    assert not ev('(begins_with $state "vir")', state="Virginia")
    assert ev('(ends_with $email "amazon.com")', email="me@amazon.com")
    assert not ev('(ends_with $email "amazon.com")', email="me@amazon.co")
    assert ev('(contains $promo "WIN")', promo="BIGWIN24")
    assert not ev('(contains $promo "win")', promo="BIGWIN24")
    assert ev("(begins_with $n 12)", n="12345")  # numbers compare as their text


def test_in_array_and_string() -> None:
    assert ev('(in $tenant ["acme", "globex"])', tenant="acme")
    assert not ev('(in $tenant ["acme", "globex"])', tenant="initech")
    assert ev("(in $n [1, 2, 3])", n="2.0")  # eq's numeric coercion applies to members
    assert not ev("(in $n [])", n="1")
    assert ev('(in $sub "abcdef")', sub="cde")  # string: substring
    assert not ev('(in $sub "abcdef")', sub="xyz")


def test_matches_uses_search_semantics() -> None:
    assert ev('(matches in::$greeting pattern::"h.*y")', greeting="oh hey you")
    assert not ev('(matches in::$greeting pattern::"^h.*y$")', greeting="oh hey you")
    assert ev('(matches pattern::"^u[0-9]+$" in::$user)', user="u42")  # keyword order is free
    assert ev('(matches in::$x pattern::"a\\\\.b")', x="a.b")
    assert not ev('(matches in::$x pattern::"a\\\\.b")', x="axb")


def test_exists() -> None:
    assert ev('(exists key::"country")', country="")
    assert not ev('(exists key::"country")', tier="x")
    assert ev('(not (exists key::"country"))')


# -- missing context keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        '(eq $tier "premium")',
        "(gt $n 1)",
        "(lte $n 1)",
        '(begins_with $s "a")',
        '(ends_with $s "a")',
        '(contains $s "a")',
        '(in $s ["a"])',
        '(matches in::$s pattern::".*")',
        '(split pct::100 by::$userId seed::"s")',
        "(eq $a $b)",
    ],
)
def test_missing_key_makes_operator_false(rule: str) -> None:
    assert evaluate_rule(rule, {}) is False
    assert evaluate_rule(f"(not {rule})", {}) is True


# -- split ------------------------------------------------------------------------------------------


def test_split_bucket_is_stable_and_in_range() -> None:
    b = split_bucket("seed", "user-1")
    assert b == split_bucket("seed", "user-1")
    assert 0 <= b < 100
    assert split_bucket("seed", "user-1") != split_bucket("other", "user-1")
    # a pinned value: a change of hash scheme would silently reshuffle every user's bucket
    assert split_bucket("summarize-nova", "u1") == pytest.approx(75.1999803505532)


def test_split_distribution_is_roughly_pct() -> None:
    users = [f"user-{i}" for i in range(10_000)]
    hits = sum(evaluate_rule('(split pct::10 by::$userId seed::"d")', {"userId": u}) for u in users)
    assert 850 <= hits <= 1150
    hits = sum(evaluate_rule('(split pct::50 by::$userId seed::"d")', {"userId": u}) for u in users)
    assert 4700 <= hits <= 5300


def test_split_same_seed_is_cumulative_across_variants() -> None:
    # AppConfig's documented behaviour: with one seed, pct acts as a cumulative threshold:
    # A pct 10 covers buckets [0,10); B pct 30 matches [0,30), i.e. [10,30) after A took its share.
    a = compile_rule('(split pct::10 by::$userId seed::"s")')
    b = compile_rule('(split pct::30 by::$userId seed::"s")')
    counts = {"A": 0, "B": 0, "default": 0}
    for i in range(10_000):
        ctx = {"userId": f"u{i}"}
        bucket = split_bucket("s", f"u{i}")
        if a.evaluate(ctx):
            counts["A"] += 1
            assert bucket < 10
        elif b.evaluate(ctx):
            counts["B"] += 1
            assert 10 <= bucket < 30
        else:
            counts["default"] += 1
            assert bucket >= 30
    assert 850 <= counts["A"] <= 1150
    assert 1800 <= counts["B"] <= 2200
    assert 6700 <= counts["default"] <= 7300


def test_split_equal_pct_same_seed_leaves_second_empty() -> None:
    a = compile_rule('(split pct::20 by::$userId seed::"s")')
    b = compile_rule('(split pct::20 by::$userId seed::"s")')
    assert not any(
        b.evaluate({"userId": f"u{i}"}) and not a.evaluate({"userId": f"u{i}"}) for i in range(2000)
    )


def test_split_without_seed_uses_default_seed() -> None:
    rule = compile_rule("(split pct::50 by::$userId)")
    users = [{"userId": f"u{i}"} for i in range(200)]
    in_f1 = [rule.evaluate(u, default_seed="flag1") for u in users]
    in_f2 = [rule.evaluate(u, default_seed="flag2") for u in users]
    assert in_f1 == [rule.evaluate(u, default_seed="flag1") for u in users]
    assert in_f1 != in_f2


def test_split_pct_bounds() -> None:
    assert not ev("(split pct::0 by::$u)", u="x")
    assert ev("(split pct::100 by::$u)", u="x")
    assert ev("(split pct::99.99 by::$u)", u="x") == (split_bucket("", "x") < 99.99)


@given(user=st.text(max_size=40), seed=st.text(max_size=20), pct=st.integers(min_value=0, max_value=100))
def test_split_property_deterministic_and_monotonic(user: str, seed: str, pct: int) -> None:
    seed_lit = seed.replace("\\", "\\\\").replace('"', '\\"')
    rule = f'(split pct::{pct} by::$userId seed::"{seed_lit}")'
    first = evaluate_rule(rule, {"userId": user})
    assert first == evaluate_rule(rule, {"userId": user})
    assert first == (split_bucket(seed, user) < pct)
    assert evaluate_rule(f'(split pct::100 by::$userId seed::"{seed_lit}")', {"userId": user})
    if first and pct < 100:  # membership only grows with pct
        assert evaluate_rule(f'(split pct::{pct + 1} by::$userId seed::"{seed_lit}")', {"userId": user})


@given(value=st.text(alphabet=st.characters(blacklist_characters='"\\'), max_size=30))
def test_eq_string_literal_round_trip(value: str) -> None:
    assert evaluate_rule(f'(eq $k "{value}")', {"k": value})
    assert not evaluate_rule(f'(eq $k "{value}")', {"k": value + "x"})


# -- parsing ----------------------------------------------------------------------------------------


def test_compile_is_cached_and_rule_is_reusable() -> None:
    r1 = compile_rule('(eq $tier "premium")')
    r2 = compile_rule('(eq $tier "premium")')
    assert r1 is r2
    assert isinstance(r1, Rule)
    assert r1.evaluate({"tier": "premium"}) and not r1.evaluate({"tier": "standard"})


def test_whitespace_and_escapes() -> None:
    assert evaluate_rule(
        '\n ( and\n\t(eq $a "x y")  (eq $b "say \\"hi\\"") )  ', {"a": "x y", "b": 'say "hi"'}
    )


@pytest.mark.parametrize(
    ("rule", "message", "position"),
    [
        ("", "empty rule", 0),
        ("(eq $a", "missing ')'", 0),
        ('(eq $a "x"', "missing ')'", 0),
        ('(eq $a "x") (eq $b "y")', "after the end of the rule", 12),
        ('(equals $a "x")', "unknown operator 'equals'", 1),
        ('(eq "x)', "unterminated string", 4),
        ('(eq $a "x" "y")', "takes 2 operand(s), got 3", 0),
        ("(eq $a)", "takes 2 operand(s), got 1", 0),
        ("(not (eq $a 1) (eq $b 2))", "takes 1 operand(s)", 0),
        ("(and)", "at least 1", 0),
        ('(and "x")', "operands must be expressions", 5),
        ("(eq $a (eq $b 1))", "not a value", 7),
        ('(eq $a ["x"])', "does not take an array", 7),
        ("(in $a [$b])", "array elements must be literals", 8),
        ('(in $a ["x" "y"])', "expected ',' or ']'", 12),
        ('(matches $a "x")', "keyword operands only", 9),
        ('(matches in::$a pattern::"(")', "invalid regular expression", 25),
        ("(matches in::$a pattern::$p)", "must be a string literal", 25),
        ("(matches in::$a)", "needs pattern::", 0),
        ("(exists key::$k)", "must be a string literal", 13),
        ('(exists key::"k" other::"x")', "does not take other::", 0),
        ("(split pct::10)", "needs by::", 0),
        ("(split pct::101 by::$u)", "from 0 to 100", 12),
        ('(split pct::"10" by::$u)', "from 0 to 100", 12),
        ('(split pct::10 by::"u")', "context reference", 19),
        ("(split pct::10 by::$u seed::5)", "seed:: must be a string", 28),
        ("(split pct::10 pct::20 by::$u)", "duplicate keyword pct::", 15),
        ("(eq $a 1abc)", "unexpected character 'a'", 8),
        ("(eq $ 1)", "context key name", 4),
        ("(eq $a @)", "unexpected character '@'", 7),
        ('(eq $a "x"))', "after the end of the rule", 11),
        ("eq $a 1", "must be an expression", 0),
        ('"just a string"', "must be an expression", 0),
        ("(eq $a -)", "malformed number", 7),
        ("(1 2)", "expected an operator", 1),
    ],
)
def test_syntax_errors(rule: str, message: str, position: int) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        compile_rule(rule)
    assert message in str(info.value)
    assert info.value.position == position
    assert info.value.rule == rule
    assert isinstance(info.value, ValueError)
    assert f"position {position}" in str(info.value)
