"""`switchboard models retire --local` runs the retirement function of the local stack's emulation
(in-process moto), dry run first, then for real, and prints the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

REGION = "us-east-1"


@pytest.fixture
def local(emulated_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from switchboard_local.cli import target as target_mod
    from switchboard_local.emulation import bind_lambda_handlers, provision
    from switchboard_local.lifecycle_local import lifecycle_handlers, provision_model_lifecycle
    from switchboard_local.moto_patches import SAGEMAKER

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    with SAGEMAKER.applied():
        resources = provision(client, region=REGION, seed=False)
        names = provision_model_lifecycle(client, resources)
        state = tmp_path / "local.json"
        target_mod.write_local_state(
            target_mod.Target(
                region=REGION, options_table=resources.options_table, keys_table=resources.keys_table
            ),
            state,
        )
        monkeypatch.setattr(target_mod, "LOCAL_STATE_FILE", state)
        monkeypatch.setattr("getpass.getuser", lambda: "tester")
        with bind_lambda_handlers(lifecycle_handlers(resources)):
            yield names


def models(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    from switchboard_local.cli.main import main

    code = main(["models", *argv, "--local"])
    return code, capsys.readouterr().out


def test_retire_shows_what_goes_then_retires_it(
    local: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    group = local["sample_group"]
    for n in (1, 2, 3):
        code, _ = models(
            capsys, "register", "--group", group, "--image", "llm:1", "--model-data", f"s3://m/{n}.tar.gz"
        )
        assert code == 0
        code, out = models(capsys, "approve", "--group", group)
        assert code == 0, out

    code, out = models(capsys, "retire", "--group", group, "--retention", "1", "--dry-run", "--json")
    assert code == 0
    dry = json.loads(out)
    assert dry["dry_run"] is True
    assert [(r["version"], r["archived"]) for r in dry["families"][group]["retired"]] == [(1, False)]

    code, out = models(capsys, "retire", "--group", group, "--retention", "1")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"{group}: retention 1"
    assert lines[1].split() == ["version", "tenant", "archived", "home"]
    assert lines[2].split()[:3] == ["1", "-", "yes"] and "1 config, 1 model" in lines[2]

    code, out = models(capsys, "retire", "--group", group, "--retention", "1")
    assert code == 0 and "nothing to retire" in out


def test_retire_refuses_an_unknown_group(local: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard_local.cli.main import main

    assert main(["models", "retire", "--group", "no-such-family", "--local"]) != 0
    assert "not a model family" in capsys.readouterr().err
