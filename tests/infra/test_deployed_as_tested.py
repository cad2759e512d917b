"""The template ships the Python and the Powertools release the tests ran, nothing else.

Issue 10 item 1: a hand-pinned layer *number* (27, Powertools 3.23.0) shipped beside tests that ran
3.37.0, so every function would have failed to import `circuit_breaker` in AWS. These tests read the
synthesized template, not the infra code, and compare it with what this test process runs.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from infra import constants, layers

ROOT = Path(__file__).resolve().parents[2]
DYNAMIC_REF = re.compile(
    r"^\{\{resolve:ssm:/aws/service/powertools/python/(?P<arch>[a-z0-9_]+)/python(?P<py>\d+\.\d+)/"
    r"(?P<version>[0-9][0-9A-Za-z.]*)\}\}$"
)

# What a function may import besides the standard library and our own packages, and who provides it
# in Lambda: the runtime (boto3/botocore) or the Powertools layer (Powertools and its extras).
PROVIDED_IN_LAMBDA = {
    "boto3": "runtime",
    "botocore": "runtime",
    "aws_lambda_powertools": "Powertools layer",
    "pydantic": "Powertools layer (extra)",
    "aws_xray_sdk": "Powertools layer (extra)",
    "fastjsonschema": "Powertools layer (extra)",
    "typing_extensions": "Powertools layer (pydantic dependency)",
}
FIRST_PARTY = {"switchboard", "handlers"}


def _functions(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and str(resource["Properties"].get("Handler", "")).startswith("handlers.")
    }


def _powertools_refs(props: dict[str, Any]) -> list[re.Match[str]]:
    layers_ = [layer for layer in props.get("Layers", []) if isinstance(layer, str)]
    return [m for layer in layers_ if (m := DYNAMIC_REF.match(layer))]


def test_every_function_runs_the_powertools_release_this_suite_runs(template_json: dict[str, Any]) -> None:
    installed = metadata.version("aws-lambda-powertools")
    functions = _functions(template_json)
    assert functions
    for logical_id, props in functions.items():
        refs = _powertools_refs(props)
        assert len(refs) == 1, f"{logical_id}: expected one Powertools layer, got {props.get('Layers')}"
        (ref,) = refs
        assert ref["version"] == installed, (
            f"{logical_id} would run Powertools {ref['version']} in Lambda; the tests ran {installed}"
        )
        assert ref["py"] == props["Runtime"].removeprefix("python"), logical_id
        assert ref["arch"] == "arm64" and props["Architectures"] == ["arm64"], logical_id


def test_no_function_names_a_powertools_layer_by_number(template_json: dict[str, Any]) -> None:
    for logical_id, props in _functions(template_json).items():
        for layer in props.get("Layers", []):
            assert "AWSLambdaPowertools" not in str(layer), f"{logical_id}: hand-pinned layer {layer}"


def test_the_layer_follows_the_requirements_pin(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3==1.0.0\naws-lambda-powertools[tracer]==9.8.7  # pinned\n")
    assert layers.powertools_version(requirements) == "9.8.7"
    assert layers.powertools_layer_arn("9.8.7") == (
        f"{{{{resolve:ssm:/aws/service/powertools/python/arm64/python{layers.LAMBDA_PYTHON_VERSION}/9.8.7}}}}"
    )
    requirements.write_text("aws-lambda-powertools>=3\n")
    with pytest.raises(ValueError, match="exactly"):
        layers.powertools_version(requirements)


def test_requirements_pin_is_what_this_suite_installed() -> None:
    for name, version in layers.pinned_versions().items():
        if name in {"aws-lambda-powertools", "pydantic", "boto3", "botocore"}:
            assert metadata.version(name) == version, name


def test_the_makefile_runs_the_lambda_tests_on_the_runtime_python() -> None:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^LAMBDA_PYTHON_VERSION\s*:?=\s*(\S+)\s*$", makefile, re.MULTILINE)
    assert match, "Makefile must set LAMBDA_PYTHON_VERSION"
    assert match.group(1) == layers.LAMBDA_PYTHON_VERSION


def test_runtime_in_template_is_the_lambda_python(template_json: dict[str, Any]) -> None:
    for logical_id, props in _functions(template_json).items():
        assert props["Runtime"] == f"python{layers.LAMBDA_PYTHON_VERSION}", logical_id


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(constants.LAMBDA_ASSET_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in FIRST_PARTY:
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_lambda_code_imports_only_what_the_runtime_or_the_layer_provides() -> None:
    imports = _third_party_imports()
    unexpected = {name: files for name, files in imports.items() if name not in PROVIDED_IN_LAMBDA}
    assert not unexpected, f"imported by Lambda code but shipped by nothing in the template: {unexpected}"


def test_this_run_uses_the_python_it_was_asked_for() -> None:
    """`make test` runs the Lambda code's tests a second time on the runtime's Python minor version
    and says so through SWITCHBOARD_EXPECT_PYTHON; that run must really be on it."""
    expected = os.environ.get("SWITCHBOARD_EXPECT_PYTHON")
    if not expected:
        pytest.skip("not the Lambda-runtime run")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == expected == layers.LAMBDA_PYTHON_VERSION
