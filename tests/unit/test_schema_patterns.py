"""Client patterns: the shapes that backtrack badly are refused, the accepted ones match fast."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.schema_patterns import MAX_PATTERN_SUBJECT, pattern_example, pattern_problem, search

REFUSED = {
    "(a+)+$": "nested quantifiers",
    "(a*)*b": "empty string",
    "^([a-z]+\\.)*[a-z]+$": "nested quantifiers",
    "((\\d{1,3}\\.){3})+": "nested quantifiers",
    "(a?){30}": "empty string",
    "a?" * 20 + "a" * 20: "too many optional parts",
    "\\d*\\d*\\d*x": "two variable-length parts",
    "\\d+1\\d+": "two variable-length parts",
    ".*foo.*": "two variable-length parts",
    "^[+-]?\\d*\\.?\\d+$": "two variable-length parts",
    "^[a-z]{0,50}[a-z]{0,50}$": "too many optional parts",
    "(ab|a)*c": "nested quantifiers",  # `re` factors it into a(?:b|)*: conservative, refused
    "(\\w|\\d\\d)+$": "can start alike",
    "(a)\\1": "backreferences",
    "(?P<x>a)(?P=x)": "backreferences",
    "(?<name>x)": "not a regular expression",
    "[": "not a regular expression",
    "x" * 1001: "longer than 1000",
}

ACCEPTED = [
    "^[a-z]+$",
    "^\\d+-\\d+-\\d+$",
    "^-?\\d+(\\.\\d+)?$",
    "^(\\d{1,3}\\.){3}\\d{1,3}$",
    "^[A-Z]{2}-\\d{4}$",
    "^\\+?[1-9]\\d{1,14}$",
    "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9-]+\\.[a-zA-Z]{2,}$",
    "^[^@]+@[^@]+$",
    "(foo|bar)+",
    "(?i)^abc$",
    "^\\w+$",
    "^$",
    "(?=x)x+",
    "^[\\u00e0-\\u00ff]+$",
]


@pytest.mark.parametrize(("pattern", "reason"), REFUSED.items())
def test_dangerous_or_foreign_patterns_are_refused(pattern: str, reason: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_common_patterns_are_accepted_and_get_a_matching_example(pattern: str) -> None:
    assert pattern_problem(pattern) is None
    written = pattern_example(pattern, 3)
    assert written is not None and re.search(pattern, written, re.ASCII)


def test_escapes_mean_ascii_as_in_ecma_262() -> None:
    assert search("^\\d+$", "123")
    assert not search("^\\d+$", "١٢٣")  # Arabic-Indic digits are \d in Python's Unicode mode only


def test_example_reaches_a_requested_length() -> None:
    written = pattern_example("^[a-z]+$", 6)
    assert written == "aaaaaa"


PIECES = [
    "\\d+",
    "\\d*",
    "[a-z]+",
    "a?",
    "a",
    "-",
    "(foo|bar)",
    "x{1,3}",
    "(ab)*",
    "\\.",
    "[^-]+",
    ".",
    "\\w+",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=5), st.booleans(), st.booleans())
def test_accepted_patterns_match_adversarial_subjects_quickly(
    pieces: list[str], start: bool, end: bool
) -> None:
    pattern = ("^" if start else "") + "".join(pieces) + ("$" if end else "")
    if pattern_problem(pattern) is not None:
        return
    n = MAX_PATTERN_SUBJECT - 1
    for subject in ("1" * n + "!", "a" * n + "!", "ab" * (n // 2) + "!", "-" * n + "!", "x" * n + "!"):
        began = time.perf_counter()
        search(pattern, subject)
        # Generous for a loaded CI machine: a catastrophic pattern takes minutes on this subject.
        assert time.perf_counter() - began < 2.0, pattern
