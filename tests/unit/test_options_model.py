"""LlmOption validation and the seed-file loader."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from switchboard.options.errors import InvalidOptions, OptionValidationError, describe_validation_error
from switchboard.options.model import OPTION_ID_PATTERN, BreakerPolicy, LlmOption, OptionStatus, ProviderKind
from switchboard.options.store import load_seed_file, parse_options
from tests.fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]
SEED_FILE = ROOT / "config" / "options.json"
SECRET = "sk-live-DO-NOT-LEAK-123456"


def _problems(entry: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidOptions) as info:
        parse_options([entry], source="test")
    return info.value.problems


def test_seed_file_validates() -> None:
    # Given the shipped seed file / When it is loaded
    options = load_seed_file(SEED_FILE)
    # Then every entry is valid, ids are unique and the mock option is present
    ids = [o.id for o in options]
    assert len(ids) == len(set(ids)) == len(json.loads(SEED_FILE.read_text()))
    assert "mock-echo" in ids
    assert all(o.version == 0 for o in options)
    assert {o.provider for o in options} >= {ProviderKind.BEDROCK, ProviderKind.MOCK}


def test_bedrock_without_model_is_rejected() -> None:
    problems = _problems({"id": "b", "provider": "bedrock"})
    assert len(problems) == 1
    assert "entry 0 (id 'b')" in problems[0]
    assert "bedrock options need `model`" in problems[0]


def test_secret_in_params_is_rejected_without_echoing_it() -> None:
    problems = _problems({"id": "o", "provider": "mock", "params": {"api_key": SECRET}})
    assert any("params" in p and "Secrets Manager" in p for p in problems)
    # The message never carries the offending value.
    assert all(SECRET not in p for p in problems)


def test_bad_secret_arn_is_rejected() -> None:
    problems = _problems(
        {
            "id": "oa",
            "provider": "openai_compatible",
            "base_url": "https://api.example.com/v1",
            "model": "gpt-x",
            "secret_arn": SECRET,
        }
    )
    assert any(p.startswith("entry 0 (id 'oa'): secret_arn:") and "Secrets Manager" in p for p in problems)
    assert all(SECRET not in p for p in problems)


def test_good_secret_arn_is_accepted() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-AbCdEf"
    option = LlmOption.from_dict(
        {
            "id": "oa",
            "provider": "openai_compatible",
            "base_url": "https://api.example.com/v1",
            "model": "gpt-x",
            "secret_arn": arn,
        }
    )
    assert option.secret_arn == arn


@pytest.mark.parametrize("rate", [1.5, -0.1, "high"])
def test_mock_error_rate_out_of_range_is_rejected(rate: Any) -> None:
    problems = _problems({"id": "m", "provider": "mock", "params": {"error_rate": rate}})
    assert any("error_rate must be a number in 0..1" in p for p in problems)


def test_every_bad_entry_is_listed() -> None:
    # Given a file with two bad entries, a duplicate and a good one
    entries = [
        {"id": "ok", "provider": "mock"},
        {"id": "Bad Id", "provider": "mock"},
        {"id": "s", "provider": "sagemaker"},
        {"id": "ok", "provider": "mock"},
        "not-an-object",
    ]
    with pytest.raises(InvalidOptions) as info:
        parse_options(entries, source="options.json")
    problems = info.value.problems
    # Then each problem is reported with its entry index
    assert any(p.startswith("entry 1 (id 'Bad Id'): id:") for p in problems)
    assert any(p.startswith("entry 2 (id 's')") and "endpoint_name" in p for p in problems)
    assert any(p.startswith("entry 3 (id 'ok'): duplicate id") for p in problems)
    assert any(p.startswith("entry 4: expected an object") for p in problems)
    assert "options.json: 4 problem(s)" in str(info.value)


def test_seed_file_must_be_an_array(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    path.write_text(json.dumps({"id": "x", "provider": "mock"}))
    with pytest.raises(InvalidOptions, match="expected a JSON array"):
        load_seed_file(path)
    path.write_text("[{")
    with pytest.raises(InvalidOptions, match="not valid JSON"):
        load_seed_file(path)


def test_describe_validation_error_has_no_input_values() -> None:
    with pytest.raises(OptionValidationError) as info:
        LlmOption.from_dict({"id": "x", "provider": "nope", "base_url": SECRET})
    lines = describe_validation_error(info.value)
    assert any(line.startswith("provider:") for line in lines)
    assert all(SECRET not in line for line in lines)


# --- the hand-written validation (no pydantic) ---------------------------------------------------------


def _invalid(data: Any) -> list[str]:
    with pytest.raises(OptionValidationError) as info:
        LlmOption.from_dict(data)
    assert SECRET not in str(info.value)
    return info.value.problems


def test_integral_floats_become_ints_and_ints_become_floats() -> None:
    # Given numbers as JSON or DynamoDB may hand them over (5.0 for 5, 1 for 1.0)
    option = LlmOption.from_dict(
        {
            "id": "m",
            "provider": "mock",
            "timeout_ms": 5000.0,
            "version": 3.0,
            "breaker": {"cooldown_s": 5.0, "failure_rate": 1},
        }
    )
    # Then int fields hold ints and float fields floats
    assert option.timeout_ms == 5000 and type(option.timeout_ms) is int
    assert option.version == 3 and type(option.version) is int
    assert option.breaker.cooldown_s == 5 and type(option.breaker.cooldown_s) is int
    assert option.breaker.failure_rate == 1.0 and type(option.breaker.failure_rate) is float
    # But a fraction is not an integer
    assert _invalid({"id": "m", "provider": "mock", "timeout_ms": 5000.5}) == [
        "timeout_ms: must be an integer"
    ]


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_a_number(value: bool) -> None:
    problems = _invalid(
        {"id": "m", "provider": "mock", "timeout_ms": value, "breaker": {"failure_rate": value}}
    )
    assert problems == ["timeout_ms: must be an integer", "breaker.failure_rate: must be a number"]


def test_numeric_strings_are_rejected() -> None:
    problems = _invalid(
        {"id": "m", "provider": "mock", "version": "1", "breaker": {"failure_rate": "0.5", "window_s": "60"}}
    )
    assert problems == [
        "breaker.failure_rate: must be a number",
        "breaker.window_s: must be an integer",
        "version: must be an integer",
    ]


def test_unknown_and_missing_fields_are_reported_with_the_rest() -> None:
    assert _invalid({"id": "Bad Id", "provider": "mock", "api_secret": SECRET}) == [
        "api_secret: unknown field",
        f"id: must match {OPTION_ID_PATTERN}",
    ]
    assert _invalid({}) == ["id: field required", "provider: field required"]
    assert _invalid(["not", "a", "mapping"]) == ["<item>: expected an object, got list"]


def test_every_field_problem_is_listed_at_once() -> None:
    problems = _invalid(
        {
            "id": SECRET,
            "provider": "nope",
            "model": "",
            "region": SECRET,
            "base_url": SECRET,
            "secret_arn": SECRET,
            "params": {"api_key": SECRET, "x_token_key": SECRET},
            "timeout_ms": 99,
            "status": SECRET,
            "description": "d" * 1025,
            "version": -1,
            "updated_by": 7,
        }
    )
    assert [p.split(":", 1)[0] for p in problems] == [
        "id",
        "provider",
        "model",
        "region",
        "base_url",
        "secret_arn",
        "params.api_key",
        "params.x_token_key",
        "timeout_ms",
        "status",
        "description",
        "version",
        "updated_by",
    ]
    assert "provider: must be one of bedrock, sagemaker, openai_compatible, mock" in problems
    assert "timeout_ms: must be ≥ 100" in problems
    assert "params.api_key: credentials belong in Secrets Manager (secret_arn)" in problems
    assert all(SECRET not in p for p in problems)


def test_anchored_patterns_do_not_accept_a_trailing_newline() -> None:
    assert _invalid({"id": "m\n", "provider": "mock"})[0].startswith("id: must match")
    assert _invalid({"id": "m", "provider": "mock", "region": "us-east-1\n"})[0].startswith("region:")
    assert LlmOption.from_dict({"id": "m", "provider": "mock", "region": "us-east-1"}).region == "us-east-1"


def test_nested_breaker_problems_carry_the_breaker_prefix() -> None:
    problems = _invalid(
        {"id": "m", "provider": "mock", "breaker": {"cooldown_s": 3601, "failure_rate": 0, "extra": 1}}
    )
    assert problems == [
        "breaker.extra: unknown field",
        "breaker.failure_rate: must be > 0",
        "breaker.cooldown_s: must be ≤ 3600",
    ]
    assert _invalid({"id": "m", "provider": "mock", "breaker": None}) == ["breaker: must be an object"]
    with pytest.raises(OptionValidationError) as info:
        BreakerPolicy.from_dict({"window_s": 0})
    assert info.value.problems == ["window_s: must be ≥ 1"]


def test_whole_object_rules_run_once_fields_are_valid() -> None:
    assert _invalid({"id": "b", "provider": "bedrock"}) == [
        "<item>: bedrock options need `model` (a model id or inference-profile id)"
    ]
    # A field problem is reported alone: the cross-field rules need valid fields.
    assert _invalid({"id": "b", "provider": "bedrock", "model": ""}) == [
        "model: must be at least 1 character(s) long"
    ]


def test_constructor_coerces_and_validates() -> None:
    option = LlmOption(id="m", provider="mock", status="draining", breaker={"failure_threshold": 2})  # type: ignore[arg-type]
    assert option.provider is ProviderKind.MOCK and option.status is OptionStatus.DRAINING
    assert option.breaker == BreakerPolicy(failure_threshold=2)
    with pytest.raises(OptionValidationError, match="failure_threshold: must be ≤ 1000"):
        BreakerPolicy(failure_threshold=1001)


def test_replace_revalidates() -> None:
    option = LlmOption(id="s", provider=ProviderKind.SAGEMAKER, endpoint_name="ep")
    assert dataclasses.replace(option, status="retired").status is OptionStatus.RETIRED  # type: ignore[arg-type]
    with pytest.raises(OptionValidationError) as info:
        dataclasses.replace(option, timeout_ms=1)
    assert info.value.problems == ["timeout_ms: must be ≥ 100"]
    with pytest.raises(OptionValidationError) as info:
        dataclasses.replace(option, endpoint_name=None)
    assert info.value.problems == ["<item>: sagemaker options need `endpoint_name`"]
    # Options are values: a replace never changes the original.
    assert option.timeout_ms == 20000 and option.endpoint_name == "ep"
    with pytest.raises(dataclasses.FrozenInstanceError):
        option.timeout_ms = 1  # type: ignore[misc]


def test_to_item_drops_none_and_serializes_enums() -> None:
    option = LlmOption.from_dict(
        {
            "id": "oa",
            "provider": "openai_compatible",
            "base_url": "https://api.example.com/v1",
            "model": "gpt-x",
            "status": "draining",
            "params": {"temperature": 0.2, "stop": None},
            "breaker": {"slow_call_ms": 900},
        }
    )
    item = option.to_item()
    assert item == {
        "id": "oa",
        "provider": "openai_compatible",
        "base_url": "https://api.example.com/v1",
        "model": "gpt-x",
        "params": {"temperature": 0.2, "stop": None},  # None inside params is kept, as stored
        "task": "chat",
        "timeout_ms": 20000,
        "breaker": {
            "failure_threshold": 5,
            "minimum_calls": 10,
            "window_s": 60,
            "cooldown_s": 30,
            "max_cooldown_s": 600,
            "half_open_probes": 1,
            "slow_call_ms": 900,
        },
        "status": "draining",
        "version": 0,
    }
    assert type(item["provider"]) is str and type(item["status"]) is str
    assert json.loads(json.dumps(item)) == item
    assert LlmOption.from_dict(item) == option
    # to_dict keeps every field (None included) and is JSON-safe as well
    full = option.to_dict()
    assert full["region"] is None and full["breaker"]["failure_rate"] is None
    assert list(full) == [f.name for f in dataclasses.fields(LlmOption)]
    assert json.loads(json.dumps(full)) == full
    assert LlmOption.from_dict(full) == option
    tupled = LlmOption(id="m", provider=ProviderKind.MOCK, params={"pair": (1, 2)})
    assert tupled.to_item()["params"] == tupled.to_dict()["params"] == {"pair": [1, 2]}


def test_describe_validation_error_passes_problems_through() -> None:
    with pytest.raises(OptionValidationError) as info:
        LlmOption.from_dict({"id": "m", "provider": "mock", "foo": 1})
    assert describe_validation_error(info.value) == ["foo: unknown field"]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("module", ["switchboard.options.model", "handlers.invoke", "handlers.circuit"])
def test_step_lambdas_do_not_import_pydantic(module: str) -> None:
    # Given a fresh interpreter with the path pytest uses (pyproject `pythonpath`)
    code = (
        "import sys\n"
        f"import {module}\n"
        "loaded = sorted(m for m in sys.modules if m == 'pydantic' or m.startswith('pydantic.'))\n"
        "print(','.join(loaded))\n"
    )
    done = run_fresh(code, timeout=60)
    # Then the import works and pydantic stays out (it costs the cold start ~0.1 s)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_circuit_settings_read_and_check_the_environment() -> None:
    from switchboard.circuits.policy import PROBE_LEASE_S
    from switchboard.circuits.service import CircuitSettings

    base = {"CIRCUIT_TABLE": "circuits", "OPTIONS_TABLE": "options", "UNRELATED": "ignored"}
    settings = CircuitSettings.from_env(base)
    assert (settings.circuit_table, settings.options_table) == ("circuits", "options")
    assert (settings.probe_lease_s, settings.cache_ttl_s) == (PROBE_LEASE_S, 2.0)
    tuned = CircuitSettings.from_env({**base, "CIRCUIT_PROBE_LEASE_S": "90", "CIRCUIT_CACHE_TTL_S": "0"})
    assert (tuned.probe_lease_s, tuned.cache_ttl_s) == (90, 0.0)
    for bad, name in [
        ({**base, "CIRCUIT_TABLE": ""}, "CIRCUIT_TABLE"),
        ({"CIRCUIT_TABLE": "circuits"}, "OPTIONS_TABLE"),
        ({**base, "CIRCUIT_PROBE_LEASE_S": "0"}, "CIRCUIT_PROBE_LEASE_S"),
        ({**base, "CIRCUIT_PROBE_LEASE_S": "1.5"}, "CIRCUIT_PROBE_LEASE_S"),
        ({**base, "CIRCUIT_CACHE_TTL_S": "61"}, "CIRCUIT_CACHE_TTL_S"),
    ]:
        with pytest.raises(RuntimeError, match=rf"^CircuitSettings: bad environment: .*{name}"):
            CircuitSettings.from_env(bad)


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"structured_output": "grammar"}, "params.structured_output must be one of native, tool"),
        ({"max_tokens_key": "max_new_tokens"}, "params.max_tokens_key must be one of"),
        ({"api": "tgi"}, "params.api must be one of tei, openai"),
        ({"prompt_caching": "yes"}, "params.prompt_caching must be true or false"),
        ({"stream_usage": "no"}, "params.stream_usage must be true or false"),
        ({"dimensions": 0}, "params.dimensions must be a positive integer"),
        ({"dimensions": True}, "params.dimensions must be a positive integer"),
    ],
)
def test_provider_params_with_a_fixed_meaning_are_checked_on_write(
    params: dict[str, Any], problem: str
) -> None:
    with pytest.raises(OptionValidationError) as info:
        LlmOption.from_dict({"id": "o", "provider": "mock", "params": params})
    assert any(problem in line for line in info.value.problems), info.value.problems


def test_task_and_capabilities_are_checked() -> None:
    option = LlmOption.from_dict(
        {"id": "o", "provider": "mock", "task": "embeddings", "capabilities": ["tools"]}
    )
    assert option.task.value == "embeddings" and option.capabilities == ("tools",)
    with pytest.raises(OptionValidationError) as info:
        LlmOption.from_dict({"id": "o", "provider": "mock", "task": "rerank", "capabilities": ["telepathy"]})
    assert {line.split(":")[0] for line in info.value.problems} == {"task", "capabilities"}
