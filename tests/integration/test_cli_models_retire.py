"""`switchboard models retire --local` runs the retirement function of the local stack's emulation
(in-process moto), dry run first, then for real, and prints the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_lifecycle import local_model_lifecycle


@pytest.fixture
def local(emulated_aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with local_model_lifecycle(tmp_path, monkeypatch) as names:
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
