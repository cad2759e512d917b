"""Fuzz the local stack with schemathesis from docs/openapi.json (the published contract).

Every operation gets a bounded, derandomized set of generated requests (valid and invalid bodies,
undeclared content types and methods), each with the dev key. Generated ``model`` values are mostly
random strings (unknown routes): a hook swaps in the seeded route aliases too, so completions are
fuzzed past routing. Whatever is sent:

- the gateway never answers 5xx (a provider outage is not part of this run: the mock provider is up);
- every 4xx carries an OpenAI-style error body ``{"error": {"message", "type", "code"}}``;
- every response matches the document (status code documented, content type, body schema).

A second, smaller run posts hypothesis-generated hostile JSON (tests/hostile_json.py: deep nesting,
huge numbers, NaN, lone surrogates, NUL bytes, repeated keys, 2 MB strings) through the front door:
no 5xx, an OpenAI error body on every 4xx, and an answer within seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infra.config import default_routes
from switchboard_local.emulation import DEV_KEY, ROOT
from switchboard_local.openapi import DOC_PATH
from switchboard_local.stack import LocalStack
from tests.hostile_json import hostile_bodies

MAX_EXAMPLES = 25
HOSTILE_EXAMPLES = 30
AUTH = {"Authorization": f"Bearer {DEV_KEY}"}

ROUTES = sorted(default_routes(json.loads((ROOT / "config" / "flags.json").read_text())))

schema = schemathesis.openapi.from_path(DOC_PATH)
schema.config.update(headers=AUTH)
schema.config.generation.update(
    max_examples=MAX_EXAMPLES, deterministic=True, database="none", with_security_parameters=False
)
# The coverage phase also sends each path the methods it does not declare.
schema.config.phases.coverage.unexpected_methods = {
    "get",
    "post",
    "put",
    "delete",
    "patch",
    "options",
    "trace",
}


@schema.hook
def before_generate_case(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Let a string ``model`` also be one of the seeded routes (kept as generated one time in four)."""

    def with_route(case: Any) -> st.SearchStrategy[Any]:
        body = case.body
        if not (isinstance(body, dict) and isinstance(body.get("model"), str)):
            return st.just(case)

        def choose(model: str) -> Any:
            case.body = {**body, "model": model}
            return case

        return st.sampled_from([*ROUTES, body["model"]]).map(choose)

    return strategy.flatmap(with_route)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def openai_error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer is an OpenAI error object, as the OpenAI SDKs parse it."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {response.content[:200]!r}") from exc
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} body has no 'error' object: {body!r}"
    missing = {"message", "type", "code"} - set(error)
    assert not missing, f"{response.status_code} error lacks {sorted(missing)}: {body!r}"
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    openai_error_body,
]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_contract_holds_under_fuzzing(case: Any, stack: LocalStack, session: requests.Session) -> None:
    response = case.call(base_url=stack.url, session=session, headers=AUTH, timeout=30)
    case.validate_response(response, checks=CHECKS, headers=AUTH)


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE"])
def test_undeclared_methods_get_an_openai_error(
    stack: LocalStack, session: requests.Session, method: str
) -> None:
    response = session.request(method, f"{stack.url}/v1/chat/completions", headers=AUTH, timeout=10)
    assert 400 <= response.status_code < 500, response.status_code
    error = response.json()["error"]
    assert {"message", "type", "code"} <= set(error)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("[" * 5000 + "]" * 5000, "json_too_deep"),
        (
            '{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "n": ' + "1" * 5000 + "}",
            "json_number_out_of_range",
        ),
    ],
    ids=["nested-5000", "digits-5000"],
)
def test_the_two_bodies_that_answered_500_are_400s_at_the_front_door(
    stack: LocalStack, session: requests.Session, raw: str, code: str
) -> None:
    for _ in range(10):  # the fuzzing before may have used the key's throttle: wait as a client would
        response = session.post(
            f"{stack.url}/v1/chat/completions", data=raw.encode(), headers=AUTH, timeout=30
        )
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("Retry-After") or 1))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


@given(raw=hostile_bodies)
@settings(
    max_examples=HOSTILE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_hostile_json_at_the_front_door_is_never_a_5xx(
    raw: str, stack: LocalStack, session: requests.Session
) -> None:
    started = time.monotonic()
    response = session.post(
        f"{stack.url}/v1/chat/completions",
        data=raw.encode("utf-8", "surrogatepass"),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )
    assert time.monotonic() - started < 15
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert {"message", "type", "code"} <= set(error) and error["message"]
