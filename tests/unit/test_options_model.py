"""LlmOption validation and the seed-file loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from switchboard.options.errors import InvalidOptions, describe_validation_error
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.options.store import load_seed_file, parse_options

SEED_FILE = Path(__file__).resolve().parents[2] / "config" / "options.json"
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
    option = LlmOption.model_validate(
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
    with pytest.raises(ValidationError) as info:
        LlmOption.model_validate({"id": "x", "provider": "nope", "base_url": SECRET})
    lines = describe_validation_error(info.value)
    assert any(line.startswith("provider:") for line in lines)
    assert all(SECRET not in line for line in lines)
