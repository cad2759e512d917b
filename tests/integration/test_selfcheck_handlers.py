"""Every handler answers `{"switchboard_selfcheck": true}` with its report (the doctor's first check).

The request-path functions are invoked through moto's Lambda Invoke API, bound to the in-process
handlers as the local stack binds them, so this is the path `switchboard doctor --local` takes.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from switchboard.selfcheck import SELFCHECK_EVENT
from tests.conftest import GatewayHarness

# The self-check runs under the handlers' decorators and publishes no metric of its own.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def _invoke(function: str) -> tuple[dict[str, Any], str | None]:
    answer = boto3.client("lambda", region_name="us-east-1").invoke(
        FunctionName=function, Payload=json.dumps(dict(SELFCHECK_EVENT)).encode()
    )
    return json.loads(answer["Payload"].read()), answer.get("FunctionError")


@pytest.mark.parametrize("role", ["gateway", "authorizer", "invoke", "circuit"])
def test_request_path_functions_report_settings_init_and_versions(gateway: GatewayHarness, role: str) -> None:
    function = getattr(gateway.resources, f"{role}_function")

    report, error = _invoke(function)

    assert error is None
    assert report["handler"] == role
    assert report["settings"] == "ok"
    assert report["init"] == "ok"
    from aws_lambda_powertools.shared.version import VERSION

    assert report["versions"]["powertools"] == VERSION


def test_the_gateway_reports_what_the_extension_serves(gateway: GatewayHarness) -> None:
    from switchboard.selfcheck import DOCTOR_CONTEXT
    from switchboard_local.flag_evaluation import evaluate_document

    report, _ = _invoke(gateway.resources.gateway_function)

    extension = report["extension"]
    document = json.loads(gateway.flags_file.read_text())
    assert extension["ping"] is True
    assert extension["configuration_version"] == gateway.agent.configuration_version
    assert extension["flags"] == evaluate_document(document, dict(DOCTOR_CONTEXT))


def test_the_gateway_reports_an_agent_that_stopped(gateway: GatewayHarness) -> None:
    gateway.agent.stop()

    report, error = _invoke(gateway.resources.gateway_function)

    assert error is None  # the self-check reports; it does not fail the invocation
    assert report["extension"]["ping"] is False
    assert report["extension"]["flags"] is None
    assert "Connection refused" in report["extension"]["error"]


def test_a_missing_setting_is_reported_not_raised(
    gateway: GatewayHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchboard_local.emulation import reset_handler_caches

    monkeypatch.delenv("STATE_MACHINE_ARN")
    reset_handler_caches()

    report, error = _invoke(gateway.resources.gateway_function)

    assert error is None
    assert "STATE_MACHINE_ARN" in report["settings"]
    assert report["init"].startswith("error: SettingsError")


def test_the_validator_seed_and_lifecycle_handlers_answer_too(
    gateway: GatewayHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import flags_validator, model_deployment, model_retirement, seed_options
    from switchboard_local.emulation import FakeLambdaContext

    families = [{"group": "switchboard-x", "option_id": "x", "endpoint_name": "switchboard-x"}]
    monkeypatch.setenv("MODEL_FAMILIES", json.dumps(families))
    for handler_module in (flags_validator, model_deployment, model_retirement):
        handler_module.forget_cached_state()
    context: Any = FakeLambdaContext()
    try:
        reports = {
            "flags_validator": flags_validator.handler(dict(SELFCHECK_EVENT), context),
            "seed_options": seed_options.handler(dict(SELFCHECK_EVENT), context),
            "model_deployment": model_deployment.handler(dict(SELFCHECK_EVENT), context),
            "model_retirement": model_retirement.handler(dict(SELFCHECK_EVENT), context),
        }
    finally:
        for handler_module in (flags_validator, model_deployment, model_retirement):
            handler_module.forget_cached_state()

    for name, report in reports.items():
        assert report is not None
        assert report["handler"] == name
        assert report["init"] == "ok", report
        assert report["settings"] in ("ok", "not applicable"), report
    assert reports["seed_options"]["settings"] == "not applicable"  # its table comes with each event


def test_lifecycle_settings_errors_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import model_deployment
    from switchboard_local.emulation import FakeLambdaContext

    monkeypatch.delenv("MODEL_FAMILIES", raising=False)
    monkeypatch.setenv("OPTIONS_TABLE", "t")
    model_deployment.forget_cached_state()
    try:
        report = model_deployment.handler(dict(SELFCHECK_EVENT), FakeLambdaContext())  # type: ignore[arg-type]
    finally:
        model_deployment.forget_cached_state()

    assert report["settings"].startswith("error: LifecycleSettingsError")
    assert report["init"].startswith("error: LifecycleSettingsError")
