"""Hostile JSON bodies through the gateway handler (authorizer context, emulated AWS, the real
workflow for what gets past parsing): each is a 4xx with an OpenAI error body, or an answer; never a
5xx, never a hang. The two reproductions from issue 11 answered 500 before the bounded parser."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, event, given, settings

from switchboard.request_json import MAX_DEPTH
from tests.hostile_json import TWO_MB, hostile_bodies

PARSER_CODES = {
    "invalid_json",
    "json_too_deep",
    "json_too_large",
    "json_number_out_of_range",
    "json_duplicate_key",
    "invalid_unicode",
}


def assert_no_server_error(status: int, body: dict) -> None:
    assert status < 500, body
    if status >= 400:
        error = body["error"]
        assert {"message", "type", "code"} <= set(error) and error["message"], body
        json.dumps(body, ensure_ascii=False).encode("utf-8")  # the answer itself is valid text


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("[" * 5000 + "]" * 5000, "json_too_deep"),
        (
            '{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "seed": ' + "9" * 5000 + "}",
            "json_number_out_of_range",
        ),
        (
            '{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
            "invalid_json",
        ),
        (
            '{"model": "chat", "model": "echo", "messages": [{"role": "user", "content": "hi"}]}',
            "json_duplicate_key",
        ),
        ('{"model": "chat", "messages": [{"role": "user", "content": "a\\udc00"}]}', "invalid_unicode"),
    ],
    ids=["nested-5000", "digits-5000", "nan", "duplicate-model", "lone-surrogate"],
)
def test_the_hostile_bodies_of_issue_11_are_named_400s(gateway, raw: str, code: str) -> None:
    status, headers, body = gateway.call("POST", "/v1/chat/completions", raw_body=raw)

    assert status == 400, body
    assert body["error"]["code"] == code and body["error"]["type"] == "invalid_request_error"
    assert headers["x-switchboard-request-id"]


def test_nesting_at_the_limit_in_an_ignored_field_is_answered(gateway) -> None:
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    raw = '{"model": "echo", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + deep + "}"

    status, _, body = gateway.call("POST", "/v1/chat/completions", raw_body=raw)

    assert status == 200, body


def test_escaped_nul_and_a_string_as_long_as_the_body_limit_allows_are_answered(gateway) -> None:
    from switchboard.limits import MAX_REQUEST_BODY_BYTES

    content = "a\x00b " + "x" * (MAX_REQUEST_BODY_BYTES - 200)
    status, _, body = gateway.call(
        "POST", "/v1/chat/completions", {"model": "echo", "messages": [{"role": "user", "content": content}]}
    )

    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == f"[mock-echo] {content}"


def test_a_two_megabyte_string_over_the_body_limit_is_413_not_5xx(gateway) -> None:
    content = "x" * TWO_MB
    status, _, body = gateway.call(
        "POST", "/v1/chat/completions", {"model": "echo", "messages": [{"role": "user", "content": content}]}
    )

    assert status == 413, body
    assert body["error"]["code"] == "request_too_large"


@given(raw=hostile_bodies)
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
def test_hostile_bodies_never_get_a_5xx(gateway, raw: str) -> None:
    started = time.monotonic()
    status, _, body = gateway.call("POST", "/v1/chat/completions", raw_body=raw)

    event(f"{status} {body['error']['code'] if status >= 400 else 'answered'}")
    assert_no_server_error(status, body)
    assert time.monotonic() - started < 10
    if status == 400 and body["error"]["code"] in PARSER_CODES:
        assert body["error"]["type"] == "invalid_request_error"
