"""The body limit and the regular expression the WAF compares Content-Length with."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from switchboard.limits import (
    LAMBDA_EVENT_LIMIT_BYTES,
    MAX_ESCAPE_GROWTH,
    MAX_REQUEST_BODY_BYTES,
    larger_than_pattern,
)


@given(limit=st.integers(min_value=1, max_value=10**9), value=st.integers(min_value=0, max_value=10**11))
def test_pattern_matches_exactly_the_integers_above_the_limit(limit: int, value: int) -> None:
    pattern = larger_than_pattern(limit)
    assert bool(re.fullmatch(pattern, str(value))) is (value > limit)


@given(value=st.integers(min_value=0, max_value=10**8), zeros=st.integers(min_value=0, max_value=5))
def test_leading_zeros_do_not_hide_a_large_length(value: int, zeros: int) -> None:
    pattern = larger_than_pattern(MAX_REQUEST_BODY_BYTES)
    assert bool(re.fullmatch(pattern, "0" * zeros + str(value))) is (value > MAX_REQUEST_BODY_BYTES)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50))
def test_non_numbers_never_match(text: str) -> None:
    if not text.isdigit():
        assert re.fullmatch(larger_than_pattern(MAX_REQUEST_BODY_BYTES), text) is None


def test_the_worst_escaped_body_fits_lambdas_event_with_room_for_headers() -> None:
    assert MAX_REQUEST_BODY_BYTES * MAX_ESCAPE_GROWTH + 256 * 1024 < LAMBDA_EVENT_LIMIT_BYTES
