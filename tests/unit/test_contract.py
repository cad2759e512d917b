"""switchboard.contract: each name declared once, and both sides of each boundary use it."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from switchboard import errors as api_errors
from switchboard.contract import env, handlers, workflow
from switchboard.contract import errors as catalogue
from switchboard.contract.handlers import environment_problems, load_class, variables_read
from switchboard.settings import GatewaySettings
from tests.fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIR = ROOT / "lambdas" / "switchboard" / "contract"
ASL = ROOT / "statemachines" / "request_workflow.asl.json"


# --- the package itself ------------------------------------------------------------------------


def test_the_contract_imports_nothing_but_the_standard_library_and_itself() -> None:
    # Given a fresh interpreter, when every contract module is imported, then no third-party
    # package (pydantic, boto3, Powertools, CDK) is loaded: infra, the authorizer and the local
    # stack import it at no cost.
    modules = sorted(p.stem for p in CONTRACT_DIR.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        + "".join(f"import switchboard.contract.{m}\n" for m in modules)
        + "bad = sorted(m for m in ('pydantic', 'boto3', 'botocore', 'aws_lambda_powertools', 'aws_cdk') "
        "if m in sys.modules)\nprint(','.join(bad))\n"
    )
    done = run_fresh(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_no_module_outside_the_contract_spells_the_timestamp_format() -> None:
    spelled = "%Y-%m-%dT%H:%M:%SZ"
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("lambdas", "infra", "local")
        for path in (ROOT / folder).rglob("*.py")
        if spelled in path.read_text() and path.parent != CONTRACT_DIR
    ]
    assert offenders == []


# --- timestamps ---------------------------------------------------------------------------------


def test_timestamps_are_utc_whole_seconds_with_a_z() -> None:
    moment = datetime(2026, 11, 30, 6, 7, 8, 900_000, tzinfo=timezone(timedelta(hours=2)))
    assert workflow.format_timestamp(moment) == "2026-11-30T04:07:08Z"
    assert workflow.timestamp_from_epoch(moment.timestamp()) == "2026-11-30T04:07:08Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", workflow.timestamp_now())
    with pytest.raises(ValueError, match="naive"):
        workflow.format_timestamp(datetime(2026, 1, 1))


def test_the_circuit_store_writes_the_contracts_form() -> None:
    from switchboard.circuits.timefmt import to_iso

    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert to_iso(moment) == workflow.format_timestamp(moment)


# --- workflow substitutions and keys ------------------------------------------------------------


def _asl_text() -> str:
    return ASL.read_text()


def test_the_asl_uses_exactly_the_declared_substitutions() -> None:
    used = set(re.findall(r"\$\{([A-Za-z]+)\}", _asl_text()))
    assert used == set(workflow.SUBSTITUTIONS)


def test_every_input_key_but_the_variant_is_read_by_the_workflow() -> None:
    referenced = set(re.findall(r"\$\.([a-z_]+)", _asl_text()))
    assert workflow.INPUT_KEYS - referenced == {workflow.IN_VARIANT}


def _end_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        if state.get("End") and state["Type"] == "Pass":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_end_states(branch["States"]))
    return found


def test_the_workflow_answers_only_with_declared_output_keys() -> None:
    ends = _end_states(json.loads(_asl_text())["States"])
    assert ends, "the workflow has no answering Pass states"
    returned = {key.removesuffix(".$") for state in ends.values() for key in state.get("Parameters", {})}
    assert returned == set(workflow.OUTPUT_KEYS)


def test_the_gateway_starts_the_workflow_with_exactly_the_input_keys() -> None:
    from tests.unit.test_chat_service import BODY, CALLER, ROUTE, _service

    service, runner = _service({"chat": ROUTE}, {"outcome": "rejected", "error": {}})
    with pytest.raises(api_errors.ServiceUnavailable):
        service.complete(BODY, CALLER, "r1")
    assert set(runner.payloads[0]) == workflow.INPUT_KEYS


# --- environments -------------------------------------------------------------------------------


def _gateway_env() -> dict[str, str]:
    return {
        env.STATE_MACHINE_ARN: "arn:aws:states:us-east-1:123456789012:stateMachine:x",
        env.POWERTOOLS_SERVICE_NAME: "switchboard",
        **env.gateway_environment(
            options_table="options",
            circuit_table="circuits",
            usage_table="usage",
            payload_bucket="payloads",
            appconfig_application="app",
            appconfig_environment="env",
            appconfig_profile="profile",
            appconfig_agent_url=env.APPCONFIG_AGENT_URL_DEFAULT,
            default_routes={"chat": {"chain": ["a"]}},
            log_prompts=False,
        ),
    }


def test_the_built_gateway_environment_satisfies_its_loader() -> None:
    assert environment_problems(handlers.HANDLER_GATEWAY, _gateway_env()) == []
    settings = GatewaySettings.from_env(_gateway_env())
    assert settings.default_routes == {"chat": {"chain": ["a"]}}


def test_a_variable_renamed_in_a_copy_of_the_environment_is_named() -> None:
    renamed = _gateway_env()
    renamed["APPCONFIG_APP"] = renamed.pop(env.APPCONFIG_APPLICATION)
    problems = environment_problems(handlers.HANDLER_GATEWAY, renamed)
    assert any("GatewaySettings refuses" in p and "APPCONFIG_APPLICATION" in p for p in problems)
    assert any("APPCONFIG_APP is set but no settings loader" in p for p in problems)


def test_an_undeclared_handler_is_a_problem() -> None:
    assert environment_problems("handlers.nobody.handler", {}) == [
        "handlers.nobody.handler: no settings loaders declared in switchboard.contract.handlers"
    ]


def test_every_loader_named_exists_and_reads_only_contract_names() -> None:
    declared = {
        value
        for name, value in vars(env).items()
        if name.isupper() and isinstance(value, str) and name != "APPCONFIG_AGENT_URL_DEFAULT"
    }
    for specs in handlers.SETTINGS_LOADERS.values():
        for spec in specs:
            read = variables_read(load_class(spec))
            assert read, spec
            assert set(read) <= declared, f"{spec} reads {sorted(set(read) - declared)} not in the contract"


def test_the_handler_paths_name_real_functions() -> None:
    for handler in handlers.SETTINGS_LOADERS:
        module, _, function = handler.rpartition(".")
        source = (ROOT / "lambdas" / Path(*module.split("."))).with_suffix(".py").read_text()
        defined = {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
        assert function in defined, handler


# --- the error catalogue ------------------------------------------------------------------------


def test_a_code_names_exactly_one_error() -> None:
    specs = [v for v in vars(catalogue).values() if isinstance(v, catalogue.ErrorSpec)]
    assert len({s.code for s in specs}) == len(specs) == len(catalogue.CATALOGUE)


def test_types_follow_openais_conventions() -> None:
    for spec in catalogue.CATALOGUE.values():
        if spec.status >= 500:
            assert spec.type == catalogue.SERVER_ERROR, spec
        elif spec.status == 401:
            assert spec.type == catalogue.AUTHENTICATION_ERROR, spec
        elif spec.status == 403:
            assert spec.type == catalogue.PERMISSION_ERROR, spec
        elif spec.status == 429:
            assert spec.type in (catalogue.RATE_LIMIT_ERROR, catalogue.INSUFFICIENT_QUOTA_ERROR), spec
        else:
            assert spec.type == catalogue.INVALID_REQUEST_ERROR, spec


@pytest.mark.parametrize(
    ("error", "spec"),
    [
        (api_errors.Unauthorized("x"), catalogue.INVALID_API_KEY),
        (api_errors.UnknownPath("x"), catalogue.UNKNOWN_PATH),
        (api_errors.PayloadTooLarge(), catalogue.REQUEST_TOO_LARGE),
        (api_errors.UnsupportedMediaType("x"), catalogue.UNSUPPORTED_MEDIA_TYPE),
        (api_errors.ServiceUnavailable("x"), catalogue.NO_HEALTHY_OPTION),
        (api_errors.InvalidRequest("x", code="json_too_deep"), catalogue.JSON_TOO_DEEP),
        (api_errors.UpstreamFailed("x", code="workflow_failed"), catalogue.WORKFLOW_FAILED),
    ],
)
def test_api_errors_render_their_catalogue_entry(
    error: api_errors.ApiError, spec: catalogue.ErrorSpec
) -> None:
    assert (error.status, error.type, error.code) == (spec.status, spec.type, spec.code)
    assert error.body()["error"]["code"] == spec.code


def test_an_undeclared_code_fails_at_the_raise_site() -> None:
    with pytest.raises(KeyError, match=r"not in switchboard\.contract\.errors"):
        api_errors.InvalidRequest("x", code="made_up")


def test_every_code_the_lambda_code_raises_is_in_the_catalogue() -> None:
    # Codes passed as literals (`code="..."`) and the request_json / chat code tables.
    sources = [*(ROOT / "lambdas").rglob("*.py")]
    literal = re.compile(r"""code=["']([a-z_]+)["']""")
    found = {m for path in sources if path.parent != CONTRACT_DIR for m in literal.findall(path.read_text())}
    from switchboard import chat

    found |= set(chat.CLIENT_ERROR_CODES.values())
    json_codes = re.findall(
        r'UnacceptableJson\(\s*"([a-z_]+)"', (ROOT / "lambdas/switchboard/request_json.py").read_text()
    )
    assert json_codes, "request_json raises no coded errors any more?"
    found |= set(json_codes)
    assert found - set(catalogue.CATALOGUE) == set()


def test_the_dead_rate_limited_class_is_gone() -> None:
    assert not hasattr(api_errors, "RateLimited")


def test_the_deployment_asl_uses_exactly_the_contracts_placeholders() -> None:
    """CDK and the local stack both fill the deployment machine through `machine_substitutions`."""
    import re

    from switchboard.contract.model_deployment import DeploymentSettings, machine_substitutions

    text = (ROOT / "statemachines" / "model_deployment.asl.json").read_text()
    used = set(re.findall(r"\$\{([A-Za-z]+)\}", text))
    declared = machine_substitutions(
        function_arn="f",
        table="t",
        topic_arn="n",
        execution_role_arn="r",
        alarm_prefix="p",
        settings=DeploymentSettings(),
    )
    assert used == set(declared)


def test_the_deployment_asl_formats_the_contracts_alarm_names() -> None:
    from switchboard.contract.model_deployment import ALARM_SUFFIXES

    text = (ROOT / "statemachines" / "model_deployment.asl.json").read_text()
    for suffix in ALARM_SUFFIXES:
        assert f"{{}}-{suffix}'" in text, suffix
