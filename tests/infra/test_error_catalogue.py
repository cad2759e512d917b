"""API Gateway, the WAF and the gateway Lambda answer one error the same way (the catalogue's).

Given the synthesized template, when a gateway response or the WAF's 413 body is read, then its
status, type, code and message are the catalogue entry the gateway Lambda renders for that code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.api import GATEWAY_ERRORS
from switchboard import errors as api_errors
from switchboard.contract import errors as catalogue
from switchboard.contract import workflow
from tests.infra.template_queries import of_type, only


def _responses(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in of_type(template_json, "AWS::ApiGateway::GatewayResponse").values()
    }


def test_every_gateway_response_with_a_status_is_a_catalogue_entry(template_json: dict[str, Any]) -> None:
    responses = _responses(template_json)
    checked = 0
    for error in GATEWAY_ERRORS:
        name = error.response_type.response_type
        rendered = responses[name]
        if error.status is None:  # DEFAULT_4XX / DEFAULT_5XX: API Gateway's own status and message
            assert "StatusCode" not in rendered
            continue
        spec = catalogue.by_code(error.code)
        body = json.loads(rendered["ResponseTemplates"]["application/json"])["error"]
        assert rendered["StatusCode"] == str(spec.status), name
        assert (body["type"], body["code"], body["message"]) == (spec.type, spec.code, spec.message), name
        checked += 1
    assert checked == len(GATEWAY_ERRORS) - 2


@pytest.mark.parametrize(
    ("response_type", "lambda_error"),
    [
        # The authorizer's 401 and the gateway's own check of the caller context.
        ("UNAUTHORIZED", api_errors.Unauthorized("x")),
        # An unknown path: API Gateway answers it in AWS, the gateway Lambda behind the front door.
        ("MISSING_AUTHENTICATION_TOKEN", api_errors.UnknownPath("x")),
        ("REQUEST_TOO_LARGE", api_errors.PayloadTooLarge()),
        ("UNSUPPORTED_MEDIA_TYPE", api_errors.UnsupportedMediaType("x")),
    ],
)
def test_api_gateway_and_the_lambda_agree(
    template_json: dict[str, Any], response_type: str, lambda_error: api_errors.ApiError
) -> None:
    rendered = _responses(template_json)[response_type]
    body = json.loads(rendered["ResponseTemplates"]["application/json"])["error"]
    assert int(rendered["StatusCode"]) == lambda_error.status
    assert (body["type"], body["code"]) == (lambda_error.type, lambda_error.code)


def test_401_is_an_authentication_error_and_404_an_unknown_path(template_json: dict[str, Any]) -> None:
    responses = _responses(template_json)
    unauthorized = json.loads(responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"])["error"]
    missing = json.loads(responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"])[
        "error"
    ]
    assert (unauthorized["type"], unauthorized["code"]) == ("authentication_error", "invalid_api_key")
    assert (missing["type"], missing["code"]) == ("invalid_request_error", "unknown_path")


def test_the_waf_413_body_is_the_catalogues(template_json: dict[str, Any]) -> None:
    _, acl = only(template_json, "AWS::WAFv2::WebACL")
    (content,) = [b["Content"] for b in acl["Properties"]["CustomResponseBodies"].values()]
    assert json.loads(content) == catalogue.REQUEST_TOO_LARGE.body()
    assert json.loads(content) == api_errors.PayloadTooLarge().body()


def test_the_request_workflow_is_given_exactly_the_contracts_substitutions(
    template_json: dict[str, Any],
) -> None:
    _, machine = only(template_json, "AWS::StepFunctions::StateMachine")
    assert set(machine["Properties"]["DefinitionSubstitutions"]) == set(workflow.SUBSTITUTIONS)
