"""The local stack over HTTP, driven by the official `openai` client as an application would."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from switchboard_local.emulation import DEV_KEY
from switchboard_local.stack import LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(stack: LocalStack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)


def _post(stack: LocalStack, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{stack.url}/v1/chat/completions", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_openai_client_gets_a_completion_from_route_chat(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Say hello"}]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "[claude-haiku-us] Say hello"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-switchboard-route"] == "chat"
    assert raw.headers["x-switchboard-option"] == "claude-haiku-us"
    assert raw.headers["x-switchboard-request-id"]


def test_request_path_talks_to_aws_without_botocore_clients(client: openai.OpenAI) -> None:
    """As deployed: the light JSON client for DynamoDB and Step Functions, and a synchronous workflow."""
    from handlers import authorizer, gateway, invoke
    from switchboard.awsjson import AwsJsonClient
    from switchboard.workflow import SyncExpressRunner

    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])

    runner = gateway.chat_service().runner
    assert isinstance(runner, SyncExpressRunner)  # StartSyncExecution, as deployed (sfn_ext)
    assert isinstance(runner.client, AwsJsonClient)
    assert isinstance(invoke.dependencies().options.client, AwsJsonClient)
    assert isinstance(authorizer.dependencies().keys.client, AwsJsonClient)
    # the keys table is all it holds: no API Gateway client, no GetApiKey call
    assert set(vars(authorizer.dependencies())) == {"settings", "keys"}


def test_models_lists_routes(client: openai.OpenAI) -> None:
    assert {model.id for model in client.models.list()} == {"chat", "summarize", "echo", "embed", "tuned"}


def test_premium_tenant_gets_another_option_than_standard(stack: LocalStack, client: openai.OpenAI) -> None:
    import io
    from contextlib import redirect_stdout

    from switchboard_local.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["keys", "create", "--tenant", "acme", "--tier", "premium", "--local"]) == 0
    premium_key = json.loads(out.getvalue())["key"]
    premium = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=premium_key, max_retries=0)

    standard = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}]
    )
    upgraded = premium.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}]
    )

    assert standard.headers["x-switchboard-option"] == "claude-haiku-us"
    assert upgraded.headers["x-switchboard-option"] == "claude-sonnet-us"


def test_bad_key_is_401_with_openai_error(stack: LocalStack) -> None:
    bad = openai.OpenAI(base_url=f"{stack.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_unknown_route_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"


def test_bad_bodies_are_400_never_5xx(stack: LocalStack) -> None:
    headers = {"Authorization": f"Bearer {DEV_KEY}", "Content-Type": "application/json"}
    for body in (b"{", b"[]", b'{"model": "chat"}', b'{"model": "chat", "messages": "hi"}'):
        status, payload = _post(stack, body, headers)
        assert status == 400, (body, payload)
        assert payload["error"]["type"] == "invalid_request_error"


def test_body_limit_boundary_413_above_not_at(stack: LocalStack) -> None:
    """The limit the deployed WAF enforces (switchboard.limits), byte for byte at the front door."""
    from switchboard.limits import MAX_REQUEST_BODY_BYTES

    headers = {"Authorization": f"Bearer {DEV_KEY}", "Content-Type": "application/json"}
    status, payload = _post(stack, b"x" * (MAX_REQUEST_BODY_BYTES + 1), headers)
    assert status == 413
    assert payload["error"]["code"] == "request_too_large"
    prefix = b'{"model": "echo", "messages": [{"role": "user", "content": "'
    suffix = b'"}]}'
    exactly = prefix + b"y" * (MAX_REQUEST_BODY_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(exactly) == MAX_REQUEST_BODY_BYTES
    status, payload = _post(stack, exactly, headers)
    assert status == 200, payload


def test_long_prompt_travels_by_claim_check(client: openai.OpenAI) -> None:
    prompt = "lorem ipsum " * 30000  # ~360 KB: above the Step Functions 256 KiB state limit
    completion = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": prompt}])
    assert completion.choices[0].message.content == f"[mock-echo] {prompt}"


def test_editing_the_flag_file_moves_traffic_without_restart(
    stack: LocalStack, client: openai.OpenAI
) -> None:
    flags_file = Path(stack.flags_file)
    document = json.loads(flags_file.read_text())
    document["values"]["chat"]["_variants"][-1]["attributeValues"]["chain"] = [
        "nova-lite-us",
        "claude-haiku-us",
    ]
    flags_file.write_text(json.dumps(document, indent=2))

    deadline = time.monotonic() + 10
    option = None
    while time.monotonic() < deadline:
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
        option = raw.headers["x-switchboard-option"]
        if option == "nova-lite-us":
            break
        time.sleep(0.2)
    assert option == "nova-lite-us"


def test_cli_breaks_an_option_and_traffic_falls_back(
    stack: LocalStack, client: openai.OpenAI, tmp_path
) -> None:
    import io
    from contextlib import redirect_stdout

    from switchboard_local.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["options", "get", "nova-lite-us", "--local"]) == 0
    option = json.loads(out.getvalue())
    option["params"] = {**option.get("params", {}), "error_rate": 1.0, "error_kind": "unavailable"}
    edited = tmp_path / "option.json"
    edited.write_text(json.dumps(option))
    with redirect_stdout(io.StringIO()):
        assert main(["options", "put", str(edited), "--local"]) == 0

    deadline = time.monotonic() + 15
    answered_by = None
    while time.monotonic() < deadline:
        raw = client.chat.completions.with_raw_response.create(
            model="summarize", messages=[{"role": "user", "content": "hi"}], user="u-42"
        )
        answered_by = raw.headers["x-switchboard-option"]
        if answered_by != "nova-lite-us":
            break
        time.sleep(0.5)
    assert answered_by in {"claude-haiku-us", "nova-lite-eu"}
