"""Synthesize the app once per test session; tests read the templates it wrote.

`build_app().synth()` runs cdk-nag (AwsSolutions): an unacknowledged finding makes it raise, so
every infra test fails loudly when the stack stops passing the nag checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from app import build_app

# Pin what the CLI would otherwise take from the environment (CDK_DEFAULT_REGION), and skip
# bundling (there is none: Code.from_asset only copies lambdas/).
TEST_CONTEXT: dict[str, Any] = {"region": "us-east-1", "aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="session")
def cloud_assembly_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app(outdir=str(outdir), context=TEST_CONTEXT).synth()
    yield outdir


@pytest.fixture(scope="session")
def template_files(cloud_assembly_dir: Path) -> list[Path]:
    files = sorted(cloud_assembly_dir.glob("*.template.json"))
    assert files, "synthesis wrote no template"
    return files


@pytest.fixture(scope="session")
def template_json(cloud_assembly_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((cloud_assembly_dir / "Switchboard.template.json").read_text())
    return data


@pytest.fixture(scope="session")
def template(template_json: dict[str, Any]) -> Template:
    return Template.from_json(template_json)
