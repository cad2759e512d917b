"""Bad input and bad keys: the right status, an OpenAI-style body, never a 5xx."""

from __future__ import annotations

import pytest

from handlers import gateway as gateway_module

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def _assert_openai_error(body: dict, status: int, expected_status: int) -> None:
    assert status == expected_status, body
    error = body["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["message"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "chat"}, "messages"),
        ({"model": "chat", "messages": []}, "messages"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"model": "chat", "messages": [{"role": "system", "content": "only system"}]}, "user"),
        ({**CHAT, "temperature": 3}, "temperature"),
        ({**CHAT, "max_tokens": 0}, "max_tokens"),
        ({**CHAT, "n": 2}, "n"),
        (
            {
                "model": "chat",
                "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
            },
            "text",
        ),
    ],
)
def test_invalid_bodies_are_400(gateway, payload: dict, fragment: str) -> None:
    status, headers, body = gateway.call("POST", "/v1/chat/completions", payload)

    _assert_openai_error(body, status, 400)
    assert fragment in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    assert headers["x-switchboard-request-id"]


def test_malformed_json_is_400(gateway) -> None:
    status, _, body = gateway.call("POST", "/v1/chat/completions", raw_body="{not json")

    _assert_openai_error(body, status, 400)
    assert "JSON" in body["error"]["message"]


def test_stream_true_is_a_clear_400(gateway) -> None:
    status, _, body = gateway.call("POST", "/v1/chat/completions", {**CHAT, "stream": True})

    _assert_openai_error(body, status, 400)
    assert "Streaming is not offered yet" in body["error"]["message"]
    assert body["error"]["code"] == "stream_not_supported"


def test_unknown_route_is_404(gateway) -> None:
    status, _, body = gateway.call("POST", "/v1/chat/completions", {**CHAT, "model": "gpt-4o"})

    _assert_openai_error(body, status, 404)
    assert body["error"]["code"] == "model_not_found"


def test_unknown_path_is_404(gateway) -> None:
    status, _, body = gateway.call("GET", "/v1/engines")

    _assert_openai_error(body, status, 404)


def test_text_parts_are_accepted(gateway) -> None:
    payload = {
        "model": "chat",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "part one "}, {"type": "text", "text": "two"}],
            },
        ],
        "max_completion_tokens": 50,
        "stop": "\n\n",
        "user": "u-1",
    }
    status, _, body = gateway.call("POST", "/v1/chat/completions", payload)

    assert status == 200, body
    assert "part one two" in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize("key", [None, "sk-nope", ""])
def test_missing_or_unknown_key_is_refused_by_the_authorizer(gateway, key) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        gateway.authorize(key)


def test_revoked_key_is_refused(gateway) -> None:
    import boto3

    from switchboard.keys import ApiKeyStore

    keys = ApiKeyStore(gateway.resources.keys_table, client=boto3.client("dynamodb"))
    key, record = keys.create("acme", "standard", apigateway=None, usage_plan_id=None)
    assert gateway.authorize(key)["context"]["tenant"] == "acme"

    keys.revoke(record.key_id)

    with pytest.raises(Exception, match=r"^Unauthorized$"):
        gateway.authorize(key)


def test_authorizer_returns_usage_identifier_and_wildcard_policy(gateway) -> None:
    policy = gateway.authorize("sk-switchboard-local-dev")

    assert policy["context"] == {
        "tenant": "dev",
        "tier": "standard",
        "key_id": policy["context"]["key_id"],
        "allowed_routes": "",
    }
    assert policy["usageIdentifierKey"]
    assert policy["policyDocument"]["Statement"][0]["Resource"].endswith("/prod/*/*")


def test_usage_identifier_comes_from_the_key_row_without_api_gateway(gateway) -> None:
    import boto3

    from handlers import authorizer
    from switchboard.keys import ApiKeyStore

    keys = ApiKeyStore(gateway.resources.keys_table, client=boto3.client("dynamodb"))
    apigw = boto3.client("apigateway")
    key, record = keys.create("acme", "standard", apigateway=apigw, usage_plan_id=None)
    assert record.usage_identifier and record.usage_identifier not in repr(record)
    assert "usage_identifier" not in record.to_dict()  # never printed by `keys list`

    policy = gateway.authorize(key)

    expected = apigw.get_api_key(apiKey=record.api_key_id, includeValue=True)["value"]
    assert policy["usageIdentifierKey"] == expected
    # the keys table is all it holds: no API Gateway client, no GetApiKey call
    assert set(vars(authorizer.dependencies())) == {"settings", "keys"}


def test_key_rows_without_a_stored_identifier_are_refused_not_looked_up(gateway) -> None:
    """The authorizer may not read API key values (issue 10 item 8): such a row is refused (401)."""
    import boto3

    from switchboard.keys import ApiKeyStore, hash_key

    dynamodb, apigw = boto3.client("dynamodb"), boto3.client("apigateway")
    keys = ApiKeyStore(gateway.resources.keys_table, client=dynamodb)
    key, _ = keys.create("legacy", "standard", apigateway=apigw, usage_plan_id=None)
    dynamodb.update_item(
        TableName=gateway.resources.keys_table,
        Key={"key_hash": {"S": hash_key(key)}},
        UpdateExpression="REMOVE usage_identifier",
    )

    with pytest.raises(Exception, match="Unauthorized"):
        gateway.authorize(key)


def test_key_without_an_api_gateway_key_gets_no_usage_identifier(gateway) -> None:
    import boto3

    from switchboard.keys import ApiKeyStore

    keys = ApiKeyStore(gateway.resources.keys_table, client=boto3.client("dynamodb"))
    key, _ = keys.create("nometer", "standard", apigateway=None, usage_plan_id=None)

    assert "usageIdentifierKey" not in gateway.authorize(key)


def test_gateway_without_authorizer_context_is_401() -> None:
    from switchboard_local.emulation import FakeLambdaContext
    from tests.conftest import api_event

    response = gateway_module.handler(api_event("POST", "/v1/chat/completions", CHAT), FakeLambdaContext())

    assert response["statusCode"] == 401


def test_a_body_over_the_limit_that_reaches_the_function_is_413() -> None:
    """Without a Content-Length (chunked), the WAF cannot refuse it: the function does."""
    from switchboard.limits import MAX_REQUEST_BODY_BYTES
    from switchboard_local.emulation import FakeLambdaContext
    from tests.conftest import api_event

    event = api_event("POST", "/v1/chat/completions", raw_body="x" * (MAX_REQUEST_BODY_BYTES + 1))
    response = gateway_module.handler(event, FakeLambdaContext())

    assert response["statusCode"] == 413
    assert '"request_too_large"' in response["body"]
    # Multi-byte characters count as the bytes they are.
    event = api_event("POST", "/v1/chat/completions", raw_body="é" * (MAX_REQUEST_BODY_BYTES // 2 + 1))
    assert gateway_module.handler(event, FakeLambdaContext())["statusCode"] == 413


def test_workflow_failure_is_502_with_body(gateway, monkeypatch) -> None:
    from switchboard.workflow import WorkflowResult

    monkeypatch.setattr(
        gateway_module.chat_service().runner,
        "run",
        lambda payload, name: WorkflowResult(status="FAILED", output=None, error="Boom"),
    )

    status, _, body = gateway.call("POST", "/v1/chat/completions", CHAT)

    _assert_openai_error(body, status, 502)
    assert "req-0001" in body["error"]["message"]
