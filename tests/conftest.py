"""Shared fixtures: emulated AWS (moto, Step Functions interpreter on), the AppConfig agent
emulator, and builders for API Gateway proxy events."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import moto  # noqa: F401 - registers moto's botocore hook before any client (and the shared session) exists
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """IAM as AWS would judge it: every AWS call a handler makes in this session, and every Task,
    is checked against the synthesized policy of its role at the end (tests/iam)."""
    from iam.plugin import IamPlugin

    if not config.pluginmanager.has_plugin("switchboard-iam"):
        config.pluginmanager.register(IamPlugin(), "switchboard-iam")


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials: nothing in the test suite may reach AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def stubber(client: Any) -> Iterator[Any]:
    """botocore's Stubber on the module's `client` fixture: every request is checked against the
    real service model, and every queued response must be used."""
    from botocore.stub import Stubber

    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture(scope="session")
def asl_parse_cache() -> Iterator[None]:
    """moto parses each state machine definition once for the session, not at every execution
    (`switchboard_local.moto_patches.ASL_PARSE_CACHE`, undone at the end; left as it was if a
    local stack already applied it)."""
    from switchboard_local.moto_patches import ASL_PARSE_CACHE

    with ASL_PARSE_CACHE.applied():
        yield


@pytest.fixture
def emulated_aws(aws_credentials: None, asl_parse_cache: None) -> Iterator[None]:
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    """A private copy of the seed flag document that a test may edit."""
    target = tmp_path / "flags.json"
    shutil.copy(ROOT / "config" / "flags.json", target)
    return target


class GatewayHarness:
    """The deployed request path in-process: authorizer → gateway → Express workflow → invoke."""

    def __init__(self, resources: Any, agent: Any, flags_file: Path) -> None:
        self.resources = resources
        self.agent = agent
        self.flags_file = flags_file

    def authorize(self, key: str | None) -> dict[str, Any]:
        from handlers import authorizer
        from switchboard_local.emulation import FakeLambdaContext

        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        event = {
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/v1/chat/completions",
            "headers": headers,
        }
        return dict(authorizer.handler(event, FakeLambdaContext()))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "sk-switchboard-local-dev",
        raw_body: str | None = None,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        from handlers import gateway
        from switchboard_local.emulation import FakeLambdaContext

        policy = self.authorize(key)
        event = api_event(method, path, body, raw_body=raw_body, authorizer=policy["context"])
        response = gateway.handler(event, FakeLambdaContext())
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ",".join(values)
        return int(response["statusCode"]), headers, json.loads(response["body"])

    def set_option_params(self, option_id: str, **params: Any) -> None:
        from switchboard.options.store import OptionsStore

        store = OptionsStore(self.resources.options_table, client=boto3.client("dynamodb"), ttl_s=0)
        option = store.get(option_id)
        assert option is not None
        self.set_option(option_id, params={**option.params, **params})

    def set_option(self, option_id: str, **fields: Any) -> None:
        """Change an option as an operator would (conditional write), e.g. its params or breaker."""
        from switchboard.options.model import LlmOption
        from switchboard.options.store import OptionsStore

        store = OptionsStore(self.resources.options_table, client=boto3.client("dynamodb"), ttl_s=0)
        option = store.get(option_id)
        assert option is not None
        changed = LlmOption.from_dict({**option.to_item(), **fields})
        store.put(changed, expected_version=option.version, updated_by="test")
        self.refresh_caches()

    @staticmethod
    def refresh_caches() -> None:
        """Make the gateway's and the invoke step's option caches due, as their short TTL would after a
        few seconds: the next read refreshes, and the snapshot stays as last-known-good."""
        from handlers import gateway, invoke
        from switchboard.options.store import OptionsStore

        for store in (gateway.chat_service().options, invoke.dependencies().options):
            assert isinstance(store, OptionsStore)
            store.invalidate()

    def last_states(self) -> list[str]:
        """Names of the states the most recent request workflow execution entered, in order."""
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        executions = sfn.list_executions(stateMachineArn=self.resources.state_machine_arn)["executions"]
        latest = max(executions, key=lambda e: e["startDate"])
        events = sfn.get_execution_history(executionArn=latest["executionArn"], maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw_body: str | None = None,
    authorizer: dict[str, Any] | None = None,
    request_id: str = "req-0001",
) -> dict[str, Any]:
    """An API Gateway REST proxy event as the deployed API sends it after the authorizer."""
    from switchboard_local.emulation import proxy_event

    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return proxy_event(
        method,
        path,
        text,
        headers={"Content-Type": "application/json"},
        authorizer=authorizer or {},
        request_id=request_id,
    )


@pytest.fixture
def gateway(
    emulated_aws: None, flags_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GatewayHarness]:
    """Provisioned emulated resources, seeded catalogue and dev key, agent emulator on a free port."""
    from switchboard_local.agent import AgentEmulator
    from switchboard_local.emulation import (
        APPCONFIG_NAMES,
        agent_freeform,
        bind_lambda_handlers,
        handler_environment,
        in_process_handlers,
        provision,
        reset_handler_caches,
    )

    resources = provision(lambda service: boto3.client(service, region_name="us-east-1"))
    agent = AgentEmulator(
        flags_file, port=0, poll_interval_s=0.1, freeform=agent_freeform(), **APPCONFIG_NAMES
    )
    agent.start()
    try:
        env = handler_environment(resources, agent_url=agent.url, endpoint_url=None)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_handler_caches()
        with bind_lambda_handlers(in_process_handlers(resources)):
            yield GatewayHarness(resources, agent, flags_file)
    finally:
        agent.stop()
        reset_handler_caches()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The local stack (`make local`) on free ports, one per test module, with a private copy of
    the flag document and its own CLI state file (so `switchboard ... --local` targets it)."""
    from switchboard_local.stack import LocalStack

    flags = tmp_path_factory.mktemp("config") / "flags.json"
    shutil.copy(ROOT / "config" / "flags.json", flags)
    state = tmp_path_factory.mktemp("state") / "local.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("switchboard_local.cli.target.LOCAL_STATE_FILE", state)
        with LocalStack(port=0, agent_port=0, flags_file=flags, poll_interval_s=0.2) as local:
            yield local
