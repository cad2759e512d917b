"""`Content-Type` is parsed, not prefix-compared: case-insensitive type, parameters allowed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.gateway import _unsupported_media_type
from switchboard.media_type import JSON, parse_media_type

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
quoted_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12).map(
    lambda v: '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
)
ows = st.sampled_from(["", " ", "\t", "  "])
parameters = st.lists(
    st.tuples(ows, ows, tokens, st.one_of(tokens, quoted_values)).map(
        lambda p: f"{p[0]};{p[1]}{p[2]}={p[3]}"
    ),
    max_size=4,
)


def _any_case(text: str) -> Any:
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.upper() if up else c for c, up in zip(text, flips, strict=True))
    )


@given(_any_case("application"), _any_case("json"), parameters, ows)
def test_json_in_any_case_with_any_parameters_is_json(
    type_: str, subtype: str, params: list[str], end: str
) -> None:
    media = parse_media_type(f"{type_}/{subtype}{''.join(params)}{end}")
    assert media is not None and media.essence == JSON


@given(tokens)
def test_a_longer_subtype_is_not_json(suffix: str) -> None:
    media = parse_media_type(f"application/json{suffix}")
    assert media is not None and media.essence != JSON


@pytest.mark.parametrize(
    ("value", "essence", "params"),
    [
        ("application/json", "application/json", {}),
        ("Application/JSON", "application/json", {}),
        ("application/json; charset=utf-8", "application/json", {"charset": "utf-8"}),
        ('APPLICATION/JSON ; Charset="UTF-8"', "application/json", {"charset": "UTF-8"}),
        ('application/json; a="x\\"y"', "application/json", {"a": 'x"y'}),
        ("application/json;", "application/json", {}),
        ("text/plain;;format=flowed", "text/plain", {"format": "flowed"}),
        ("application/vnd.api+json", "application/vnd.api+json", {}),
    ],
)
def test_media_types_parse(value: str, essence: str, params: dict[str, str]) -> None:
    media = parse_media_type(value)
    assert media is not None
    assert media.essence == essence and media.parameters == params


@pytest.mark.parametrize(
    "value",
    [
        "",
        "json",
        "application/",
        "/json",
        "application/json charset=utf-8",  # a parameter needs its ';'
        "application/json; charset",  # and its '='
        "application/json; charset=",
        'application/json; charset="utf-8',  # unterminated quote
        "application/json, text/plain",  # a list is not a media type
        "application /json",
        "application/json\x00",
    ],
)
def test_not_media_types(value: str) -> None:
    assert parse_media_type(value) is None


def _event(content_type: str) -> dict[str, Any]:
    return {
        "httpMethod": "POST",
        "headers": {"content-type": content_type},
        "requestContext": {"requestId": "req-1"},
        "body": "{}",
    }


@pytest.mark.parametrize("content_type", ["Application/JSON", "application/json ; Charset=UTF-8"])
def test_gateway_takes_json_in_any_spelling_and_hands_powertools_the_canonical_one(content_type: str) -> None:
    event = _event(content_type)

    assert _unsupported_media_type(event) is None
    assert event["headers"]["content-type"].startswith("application/json")  # Powertools' own test


@pytest.mark.parametrize(
    "content_type", ["application/jsonx", "application/json-patch+json", "application/json; charset"]
)
def test_gateway_refuses_types_that_only_start_like_json(content_type: str) -> None:
    response = _unsupported_media_type(_event(content_type))

    assert response is not None and response["statusCode"] == 415
    assert json.loads(response["body"])["error"]["code"] == "unsupported_media_type"
