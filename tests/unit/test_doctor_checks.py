"""The doctor's checks against fakes: what each reports for a healthy and for a broken part."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from switchboard.selfcheck import DOCTOR_CONTEXT
from switchboard_local.cli.target import Target
from switchboard_local.doctor import checks
from switchboard_local.doctor.deployment import (
    AppConfigRef,
    Deployment,
    FileFlags,
    FunctionRef,
    HostedFlags,
    HttpAnswer,
    Pins,
    read_pins,
)
from switchboard_local.doctor.report import Finding
from switchboard_local.flag_evaluation import evaluate_document
from tests.fakes import InMemoryKeyStore

ROOT = Path(__file__).resolve().parents[2]
FLAGS = json.loads((ROOT / "config" / "flags.json").read_text())
PINS = Pins(powertools="3.37.0", pydantic="2.14.3", source="requirements.txt")


def _report(handler: str, **overrides: Any) -> dict[str, Any]:
    versions = {"python": "3.13.1", "powertools": "3.37.0", "pydantic": "2.14.3", "botocore": "1.40.1"}
    versions.update(overrides.pop("versions", {}))
    return {
        "switchboard_selfcheck": 1,
        "handler": handler,
        "settings": "ok",
        "init": "ok",
        "versions": versions,
        **overrides,
    }


class FakeLambda:
    """`invoke` answers from a table: name → report, or (FunctionError payload), or an exception."""

    def __init__(self, answers: Mapping[str, Any]) -> None:
        self.answers = dict(answers)
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        answer = self.answers[kwargs["FunctionName"]]
        if isinstance(answer, Exception):
            raise answer
        response: dict[str, Any] = {"StatusCode": 200}
        if isinstance(answer, tuple):
            answer = {"errorType": answer[0], "errorMessage": answer[1]}
            response["FunctionError"] = "Unhandled"
        response["Payload"] = io.BytesIO(json.dumps(answer).encode())
        return response


class _Unused:
    """A client the check may build but must not call (the fakes stand in for what it calls)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected {self.service}.{name} call")


def _deployment(
    *,
    functions: list[FunctionRef] | None = None,
    clients: Mapping[str, Any] | None = None,
    local: bool = False,
    flags: Any = None,
    http: Callable[..., HttpAnswer] | None = None,
    pins: Pins = PINS,
    **target: Any,
) -> Deployment:
    table = dict(clients or {})

    def client(service: str) -> Any:
        return table.get(service) or _Unused(service)

    fields: dict[str, Any] = {
        "region": "us-east-1",
        "options_table": "sb-options",
        "keys_table": "sb-keys",
        "circuit_table": "sb-circuits",
        "cache_table": "sb-cache",
        "api_url": "https://api.example/prod/",
        **target,
    }
    return Deployment(
        local=local,
        label="test",
        target=Target(**fields),
        client=client,
        functions=lambda: list(functions or []),
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:sb-request",
        flags=flags or FileFlags(ROOT / "config" / "flags.json"),
        deployment_state_machine_arn=None,
        deployment_function=None,
        pins=pins,
        http=http or (lambda *a: HttpAnswer(500, {}, b"")),
    )


def _rows(findings: list[Finding]) -> dict[str, Finding]:
    return {f.component: f for f in findings}


GATEWAY = FunctionRef("gateway", "sb-gateway", "python3.13", ("arn:layer:powertools", "arn:layer:appconfig"))
INVOKE = FunctionRef("invoke", "sb-invoke", "python3.13", ("arn:layer:powertools",))
CIRCUIT = FunctionRef("circuit", "sb-circuit", "python3.13", ("arn:layer:powertools",))


# --- functions ------------------------------------------------------------------------------------


def test_healthy_functions_pass_with_their_versions() -> None:
    fake = FakeLambda({"sb-gateway": _report("gateway"), "sb-invoke": _report("invoke")})
    d = _deployment(functions=[GATEWAY, INVOKE], clients={"lambda": fake})

    rows = _rows(list(checks.check_functions(d)))

    assert rows["function gateway"].passed
    assert rows["function gateway"].detail == (
        "python 3.13.1 (python3.13), powertools 3.37.0, pydantic 2.14.3, botocore 1.40.1, 2 layer(s)"
    )
    assert rows["function invoke"].passed
    assert json.loads(fake.calls[0]["Payload"]) == {"switchboard_selfcheck": True}


def test_a_function_that_cannot_import_its_handler_fails_and_points_at_the_layer() -> None:
    """Issue 10 item 1: layer 27's Powertools 3.23 has no circuit_breaker module."""
    fake = FakeLambda(
        {
            "sb-circuit": (
                "Runtime.ImportModuleError",
                "Unable to import module 'handlers.circuit': No module named "
                "'aws_lambda_powertools.utilities.circuit_breaker'",
            ),
            "sb-invoke": _report("invoke"),
        }
    )
    d = _deployment(functions=[CIRCUIT, INVOKE], clients={"lambda": fake})

    rows = _rows(list(checks.check_functions(d)))

    circuit = rows["function circuit"]
    assert not circuit.passed
    assert "circuit_breaker" in circuit.detail
    assert "Powertools layer" in circuit.remedy
    assert rows["function invoke"].passed  # one broken function hides no other


def test_a_lazy_import_failing_on_first_use_is_caught_by_init() -> None:
    report = _report("gateway", init="error: ModuleNotFoundError: No module named 'x'")
    d = _deployment(functions=[GATEWAY], clients={"lambda": FakeLambda({"sb-gateway": report})})

    (row,) = checks.check_functions(d)

    assert not row.passed
    assert "init: error: ModuleNotFoundError" in row.detail
    assert "Powertools layer" in row.remedy


def test_a_settings_error_says_redeploy() -> None:
    report = _report("gateway", settings="error: SettingsError: missing STATE_MACHINE_ARN")
    d = _deployment(functions=[GATEWAY], clients={"lambda": FakeLambda({"sb-gateway": report})})

    (row,) = checks.check_functions(d)

    assert not row.passed
    assert "STATE_MACHINE_ARN" in row.detail
    assert "cdk deploy" in row.remedy


@pytest.mark.parametrize(
    ("versions", "runtime", "expected"),
    [
        ({"powertools": "3.23.0"}, "python3.13", "Powertools 3.23.0, the tests ran 3.37.0"),
        ({"powertools": None}, "python3.13", "Powertools missing, the tests ran 3.37.0"),
        ({"pydantic": "2.11.7"}, "python3.13", "pydantic 2.11.7, the tests ran 2.14.3"),
        ({"python": "3.12.9"}, "python3.13", "runs Python 3.12.9 but its runtime is python3.13"),
    ],
)
def test_versions_other_than_the_tested_ones_fail(
    versions: dict[str, Any], runtime: str, expected: str
) -> None:
    fn = FunctionRef("invoke", "sb-invoke", runtime)
    fake = FakeLambda({"sb-invoke": _report("invoke", versions=versions)})

    (row,) = checks.check_functions(_deployment(functions=[fn], clients={"lambda": fake}))

    assert not row.passed
    assert expected in row.detail


def test_a_function_without_pydantic_is_not_held_to_the_pydantic_pin() -> None:
    fake = FakeLambda({"sb-invoke": _report("invoke", versions={"pydantic": None})})

    (row,) = checks.check_functions(_deployment(functions=[INVOKE], clients={"lambda": fake}))

    assert row.passed
    assert "pydantic not imported" in row.detail


def test_code_older_than_the_cli_is_told_to_redeploy() -> None:
    fake = FakeLambda({"sb-invoke": {"ok": True}})

    (row,) = checks.check_functions(_deployment(functions=[INVOKE], clients={"lambda": fake}))

    assert not row.passed
    assert "without a self-check report" in row.detail


def test_an_invoke_denied_is_that_functions_row_only() -> None:
    from botocore.exceptions import ClientError

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Invoke")
    fake = FakeLambda({"sb-gateway": denied, "sb-invoke": _report("invoke")})

    rows = _rows(
        list(checks.check_functions(_deployment(functions=[GATEWAY, INVOKE], clients={"lambda": fake})))
    )

    assert not rows["function gateway"].passed
    assert "AccessDeniedException" in rows["function gateway"].detail
    assert "lambda:InvokeFunction" in rows["function gateway"].remedy
    assert rows["function invoke"].passed


def test_no_functions_at_all_fails() -> None:
    (row,) = checks.check_functions(_deployment(functions=[]))

    assert not row.passed
    assert "--stack" in row.remedy


def test_pins_come_from_requirements_txt(tmp_path: Path) -> None:
    file = tmp_path / "requirements.txt"
    file.write_text(
        "# comment\naws-cdk-lib==2.275.0\naws-lambda-powertools[tracer,validation]==3.37.0\n"
        "pydantic==2.14.3  # the layer's\nboto3==1.44.5\n"
    )

    assert read_pins(file) == Pins("3.37.0", "2.14.3", str(file))
    assert read_pins(tmp_path / "missing.txt").powertools is None
    real = read_pins()
    assert real.powertools and real.pydantic  # the repository's own pins are found


# --- AppConfig ------------------------------------------------------------------------------------


def _served(document: Mapping[str, Any] = FLAGS, **extension: Any) -> dict[str, Any]:
    return {
        "ping": True,
        "status": 200,
        "configuration_version": "1",
        "flags": evaluate_document(document, dict(DOCTOR_CONTEXT)),
        "error": None,
        "latency_ms": 3,
        "url": "http://localhost:2772/applications/a/environments/e/configurations/p",
        **extension,
    }


def _gateway_deployment(extension: dict[str, Any], **kwargs: Any) -> Deployment:
    fake = FakeLambda({"sb-gateway": _report("gateway", extension=extension)})
    return _deployment(functions=[GATEWAY], clients={"lambda": fake, **kwargs.pop("clients", {})}, **kwargs)


def test_the_extension_serving_the_deployed_document_passes() -> None:
    (row,) = checks.check_appconfig(_gateway_deployment(_served(), local=True))

    assert row.passed, row
    assert row.component == "appconfig extension"


def test_a_stopped_agent_fails_the_appconfig_row_with_what_to_do() -> None:
    extension = _served(ping=False, flags=None, error="URLError: Connection refused")

    (row,) = checks.check_appconfig(_gateway_deployment(extension, local=True))

    assert not row.passed
    assert row.component == "appconfig extension"
    assert "Connection refused" in row.detail
    assert "agent emulator is down" in row.remedy


def test_a_served_document_that_differs_names_the_flags(tmp_path: Path) -> None:
    edited = json.loads(json.dumps(FLAGS))
    edited["values"]["echo"] = {"enabled": False}
    file = tmp_path / "flags.json"
    file.write_text(json.dumps(edited))

    (row,) = checks.check_appconfig(_gateway_deployment(_served(), local=True, flags=FileFlags(file)))

    assert not row.passed
    assert "echo: variant 'default', deployed None" in row.detail
    assert "switchboard flags validate" in row.remedy


def _stubbed_appconfig(deployments: list[dict[str, Any]], versions: Mapping[int, Mapping[str, Any]]) -> Any:
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    client = boto3.client(
        "appconfig", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_response(
        "list_deployments", {"Items": deployments}, {"ApplicationId": "app1", "EnvironmentId": "env1"}
    )
    for number, document in versions.items():
        raw = json.dumps(document).encode()
        stub.add_response(
            "get_hosted_configuration_version",
            {"Content": StreamingBody(io.BytesIO(raw), len(raw)), "VersionNumber": number},
            {"ApplicationId": "app1", "ConfigurationProfileId": "prof1", "VersionNumber": number},
        )
    stub.activate()
    return client


REF = AppConfigRef("switchboard", "prod", "routing", "app1", "env1", "prof1")


def _deployment_item(number: int, version: str, state: str) -> dict[str, Any]:
    return {
        "DeploymentNumber": number,
        "ConfigurationName": "routing",
        "ConfigurationProfileId": "prof1",
        "ConfigurationVersion": version,
        "State": state,
    }


def test_in_aws_the_served_version_may_be_the_one_rolling_out() -> None:
    client = _stubbed_appconfig(
        [_deployment_item(4, "4", "DEPLOYING"), _deployment_item(3, "3", "COMPLETE")], {4: FLAGS}
    )
    d = _gateway_deployment(_served(configuration_version="4"), flags=HostedFlags(client, REF))

    (row,) = checks.check_appconfig(d)

    assert row.passed, row
    assert row.detail.startswith("version 4, 7 flags as in hosted configuration version 4")


def test_in_aws_an_older_version_than_deployed_fails() -> None:
    client = _stubbed_appconfig(
        [_deployment_item(3, "3", "COMPLETE"), _deployment_item(2, "2", "COMPLETE")], {3: FLAGS}
    )
    d = _gateway_deployment(_served(configuration_version="2"), flags=HostedFlags(client, REF))

    (row,) = checks.check_appconfig(d)

    assert not row.passed
    assert row.detail == "serves configuration version 2; deployed: 3"
    assert "polls every 30 s" in row.remedy


def test_in_aws_a_profile_never_deployed_fails_the_row() -> None:
    from switchboard_local.doctor.report import run_checks

    client = _stubbed_appconfig([_deployment_item(1, "1", "ROLLED_BACK")], {})
    d = _gateway_deployment(_served(), flags=HostedFlags(client, REF))

    (row,) = run_checks([c for c in checks.CHECKS if c.component == "appconfig extension"], d)

    assert not row.passed
    assert "no completed deployment of profile 'routing'" in row.detail


def test_without_a_gateway_the_appconfig_row_fails() -> None:
    (row,) = checks.check_appconfig(_deployment(functions=[INVOKE], clients={"lambda": FakeLambda({})}))

    assert not row.passed
    assert "no gateway function" in row.detail


# --- the request workflow ------------------------------------------------------------------------


class FakeStepFunctions:
    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.answer = answer
        self.inputs: list[dict[str, Any]] = []

    def start_sync_execution(self, **kwargs: Any) -> dict[str, Any]:
        payload = json.loads(kwargs["input"])
        self.inputs.append(payload)
        return self.answer(payload)


def test_the_workflow_answering_the_static_probe_passes() -> None:
    def succeed(payload: dict[str, Any]) -> dict[str, Any]:
        output = {"outcome": "degraded", "kind": "static", "text": payload["static_answer"]}
        return {"status": "SUCCEEDED", "output": json.dumps(output)}

    fake = FakeStepFunctions(succeed)

    (row,) = checks.check_workflow(_deployment(clients={"stepfunctions": fake}))

    assert row.passed
    sent = fake.inputs[0]
    assert sent["chain"] == [] and sent["degrade"] == ["static"]  # no provider can be called


def test_a_failed_workflow_run_fails_with_its_error() -> None:
    fake = FakeStepFunctions(lambda _: {"status": "FAILED", "error": "States.Runtime", "cause": "boom"})

    (row,) = checks.check_workflow(_deployment(clients={"stepfunctions": fake}))

    assert not row.passed
    assert row.detail == "status FAILED: States.Runtime: boom"


def test_a_workflow_that_answers_something_else_is_an_outdated_definition() -> None:
    output = json.dumps({"outcome": "rejected"})
    fake = FakeStepFunctions(lambda _: {"status": "SUCCEEDED", "output": output})

    (row,) = checks.check_workflow(_deployment(clients={"stepfunctions": fake}))

    assert not row.passed
    assert "request_workflow.asl.json" in row.remedy


# --- completions (HTTP faked; keys in the fake's memory) ------------------------------------------


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> InMemoryKeyStore:
    """The keys table in memory, where the completions check builds its ``ApiKeyStore``."""
    store = InMemoryKeyStore()
    monkeypatch.setattr("switchboard.keys.ApiKeyStore", store.as_factory())
    return store


def _api(
    keys: InMemoryKeyStore, routes: list[str], answer: Callable[[str, dict[str, Any]], HttpAnswer]
) -> Callable[..., HttpAnswer]:
    def call(
        method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpAnswer:
        caller = keys.lookup(headers["Authorization"].removeprefix("Bearer "))
        assert caller is not None and caller.active and caller.tenant == checks.DOCTOR_TENANT
        if method == "GET" and url == "https://api.example/prod/v1/models":
            data = {"object": "list", "data": [{"id": r, "object": "model"} for r in routes]}
            return HttpAnswer(200, {}, json.dumps(data).encode())
        assert method == "POST" and url == "https://api.example/prod/v1/chat/completions"
        request = json.loads(body or b"{}")
        assert request["max_tokens"] == 5
        return answer(request["model"], request)

    return call


def _answered(option: str, variant: str = "default", **headers: str) -> HttpAnswer:
    return HttpAnswer(
        200,
        {"x-switchboard-option": option, "x-switchboard-variant": variant, **headers},
        json.dumps({"choices": [{"message": {"content": "OK"}}]}).encode(),
    )


FIRST = {"chat": "claude-haiku-us", "summarize": "nova-micro-us", "echo": "mock-echo"}


def test_every_route_answering_from_its_first_option_passes_and_the_key_is_gone(
    keys: InMemoryKeyStore,
) -> None:
    api = _api(keys, ["chat", "echo"], lambda route, _: _answered(FIRST[route]))
    d = _deployment(http=api, usage_plans={})

    rows = _rows(list(checks.check_completions(d)))

    assert rows["api"].passed
    assert rows["route chat"].passed and rows["route echo"].passed
    assert rows["api keys"].passed
    assert keys.records == {}


def test_a_route_that_no_option_answers_fails_alone(keys: InMemoryKeyStore) -> None:

    def answer(route: str, _: dict[str, Any]) -> HttpAnswer:
        if route == "chat":
            body = {"error": {"code": "no_healthy_option", "message": "No model behind route `chat`"}}
            return HttpAnswer(503, {"Retry-After": "10"}, json.dumps(body).encode())
        return _answered(FIRST[route])

    rows = _rows(list(checks.check_completions(_deployment(http=_api(keys, ["chat", "echo"], answer)))))

    assert not rows["route chat"].passed
    assert rows["route chat"].detail.startswith("HTTP 503 no_healthy_option")
    assert "Bedrock model access" in rows["route chat"].remedy
    assert rows["route echo"].passed
    assert rows["api keys"].passed


@pytest.mark.parametrize(
    ("headers", "option", "expected"),
    [
        ({"x-switchboard-routing-source": "last_known_good"}, "mock-echo", "from last-known-good routing"),
        ({"x-switchboard-degraded": "static"}, "static", "degraded answer (static)"),
        ({}, "claude-sonnet-eu", "not by the first option of variant 'default' (mock-echo)"),
    ],
)
def test_fallbacks_are_failures_that_say_which(
    keys: InMemoryKeyStore, headers: dict[str, str], option: str, expected: str
) -> None:
    d = _deployment(http=_api(keys, ["echo"], lambda route, _: _answered(option, **headers)))

    rows = _rows(list(checks.check_completions(d)))

    assert not rows["route echo"].passed
    assert expected in rows["route echo"].detail


def test_the_key_is_removed_even_when_the_api_cannot_be_reached(keys: InMemoryKeyStore) -> None:

    def unreachable(*_: Any) -> HttpAnswer:
        raise ConnectionRefusedError("refused")

    rows = _rows(list(checks.check_completions(_deployment(http=unreachable))))

    assert not rows["api"].passed
    assert "refused" in rows["api"].detail
    assert rows["api keys"].passed
    assert keys.records == {}


def test_keys_left_by_an_interrupted_run_are_removed(keys: InMemoryKeyStore) -> None:
    from switchboard.keys import ApiKeyRecord

    old = ApiKeyRecord(
        "key_00000000aa", "switchboard-doctor", "standard", "active", None, "2020-01-01T00:00:00Z", "x"
    )
    someone_else = ApiKeyRecord(
        "key_00000000bb", "acme", "standard", "active", None, "2020-01-01T00:00:00Z", "y"
    )
    keys.records.update({old.key_id: old, someone_else.key_id: someone_else})

    rows = _rows(list(checks.check_completions(_deployment(http=_api(keys, [], lambda *_: _answered("x"))))))

    assert set(keys.records) == {"key_00000000bb"}
    assert rows["api keys"].detail.endswith("removed 1 left by an interrupted run")
    assert not rows["routes"].passed  # and no route listed is itself a failure


def test_without_an_api_url_the_api_row_fails() -> None:
    (row,) = checks.check_completions(_deployment(api_url=None))

    assert not row.passed
    assert row.component == "api"


def test_an_unparsable_local_flags_file_fails_the_appconfig_and_chain_rows(tmp_path: Path) -> None:
    from switchboard_local.doctor.report import run_checks

    file = tmp_path / "flags.json"
    file.write_text('{"version": "1", "flags": {')
    d = _gateway_deployment(_served(), local=True, flags=FileFlags(file))
    wanted = [c for c in checks.CHECKS if c.component in ("appconfig extension", "chains")]

    rows = _rows(run_checks(wanted, d))

    assert not rows["appconfig extension"].passed
    assert "is not valid JSON" in rows["appconfig extension"].detail
    assert "switchboard flags validate" in rows["appconfig extension"].remedy
    assert not rows["chains"].passed
