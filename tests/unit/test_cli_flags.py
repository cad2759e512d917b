"""`switchboard flags validate|evaluate` and `switchboard agent` argument handling."""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from switchboard_local.cli import agent as agent_cli
from switchboard_local.cli import flags as flags_cli

ROOT = Path(__file__).resolve().parents[2]
FLAGS = str(ROOT / "config" / "flags.json")
OPTIONS = str(ROOT / "config" / "options.json")


def run(argv: Sequence[str]) -> int:
    """Through `switchboard_local.cli.main.main` when every command group exists, else our own parser."""
    try:
        from switchboard_local.cli.main import main
    except ImportError:
        parser = argparse.ArgumentParser(prog="switchboard")
        sub = parser.add_subparsers(dest="group", required=True)
        flags_cli.register(sub)
        agent_cli.register(sub)
        args = parser.parse_args(list(argv))
        result: int = args.func(args)
        return result
    return main(list(argv))


def test_validate_seed_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["flags", "validate", FLAGS, "--options", OPTIONS]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK:")
    assert "7 flag(s)" in out


def test_validate_accepts_local_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["flags", "validate", FLAGS, "--local"]) == 0


def test_validate_reports_each_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(Path(FLAGS).read_text())
    doc["version"] = "2"
    doc["values"]["chat"]["_variants"][0]["attributeValues"]["chain"] = ["claude-sonnet-us", "gpt-9"]
    bad = tmp_path / "flags.json"
    bad.write_text(json.dumps(doc))
    assert run(["flags", "validate", str(bad), "--options", OPTIONS]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "2 problem(s)" in out
    assert '"version" must be the string "1"' in out
    assert "chain names unknown option 'gpt-9'" in out


def test_validate_bad_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "flags.json"
    bad.write_text("{")
    assert run(["flags", "validate", str(bad)]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def _evaluate(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert run(["flags", "evaluate", "--config", FLAGS, *argv]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_evaluate_premium_vs_standard(capsys: pytest.CaptureFixture[str]) -> None:
    premium = _evaluate(["--route", "chat", "--tenant", "acme", "--tier", "premium"], capsys)
    assert premium["route"] == "chat"
    assert premium["variant"] == "premium"
    assert premium["enabled"] is True
    assert premium["chain"][0] == "claude-sonnet-us"
    assert premium["degrade"] == ["smaller_model", "cache", "static", "reject"]
    assert premium["context"] == {"tenant": "acme", "tier": "premium"}
    standard = _evaluate(["--route", "chat", "--tier", "standard"], capsys)
    assert standard["variant"] == "default"
    assert standard["chain"][0] == "claude-haiku-us"


def test_evaluate_user_and_extra_context(capsys: pytest.CaptureFixture[str]) -> None:
    result = _evaluate(["--route", "summarize", "--user", "u1", "--context", "region=eu", "x=1"], capsys)
    assert result["context"] == {"userId": "u1", "region": "eu", "x": "1"}
    assert result["variant"] in ("nova-canary", "default")


def test_evaluate_sees_the_context_as_the_gateway_sends_it(capsys: pytest.CaptureFixture[str]) -> None:
    """A `user` that is not plain reaches the agent as its opaque form: the CLI shows and uses it."""
    from switchboard.routing.agent_client import context_value

    result = _evaluate(["--route", "chat", "--user", "用户", "--tier", "x,tier=premium"], capsys)
    assert result["context"] == {"tier": context_value("x,tier=premium"), "userId": context_value("用户")}
    assert result["context"]["userId"].startswith("~")
    assert result["variant"] == "default"


def test_evaluate_unknown_route(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["flags", "evaluate", "--config", FLAGS, "--route", "nope"]) == 1
    err = capsys.readouterr().err
    assert "unknown route 'nope'" in err and "chat" in err


def test_evaluate_bad_context(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["flags", "evaluate", "--config", FLAGS, "--route", "chat", "--context", "novalue"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err


def test_evaluate_invalid_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "flags.json"
    bad.write_text(json.dumps({"version": "1", "flags": {"chat": {"attributes": {"chain": {}}}}}))
    assert run(["flags", "evaluate", "--config", str(bad), "--route", "chat"]) == 1
    assert "has no value" in capsys.readouterr().err


def test_agent_refuses_invalid_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "flags.json"
    bad.write_text("[]")
    assert run(["agent", "--config", str(bad), "--port", "0"]) == 1
    assert "invalid" in capsys.readouterr().err


def test_agent_serves_until_stopped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Any] = []
    real_start = agent_cli.AgentEmulator.start

    def start(self: Any) -> Any:
        started.append(self)
        return real_start(self)

    monkeypatch.setattr(agent_cli.AgentEmulator, "start", start)
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            run(["agent", "--config", FLAGS, "--port", "0", "--poll-interval", "0.05"])
        )
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not started or not started[0].serving:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    emulator = started[0]
    with urllib.request.urlopen(emulator.url + "/ping", timeout=5) as response:
        assert response.read() == b"healthy"
    emulator.request_stop()  # what Ctrl-C amounts to
    thread.join(timeout=5)
    assert result == [0]
    assert "AppConfig agent emulator on http://127.0.0.1:" in capsys.readouterr().out


def test_validate_covers_route_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(Path(FLAGS).read_text())
    embed = doc["values"]["embed"]["_variants"]
    embed[0]["attributeValues"]["chain"] = ["titan-embed-v2-us", "claude-haiku-us"]
    embed.insert(0, {**embed[0], "name": "chatty", "rule": '(eq $tier "premium")'})
    embed[0] = {**embed[0], "attributeValues": {**embed[0]["attributeValues"], "kind": "chat"}}
    bad = tmp_path / "flags.json"
    bad.write_text(json.dumps(doc))

    assert run(["flags", "validate", str(bad), "--options", OPTIONS]) == 1
    out = capsys.readouterr().out
    assert "every variant of route 'embed' must have the same kind" in out
    assert "clients call a route on one endpoint" in out
    assert "chain names option 'claude-haiku-us', which answers chat, but route 'embed' is of kind" in out
    # Without the catalogue the kinds of options are not known; the variants still are.
    assert run(["flags", "validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "must have the same kind" in out and "which answers chat" not in out


def test_validate_refuses_a_static_embedding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(Path(FLAGS).read_text())
    doc["flags"]["embed"]["attributes"]["degrade"] = {}
    doc["values"]["embed"]["_variants"][0]["attributeValues"]["degrade"] = ["static", "reject"]
    bad = tmp_path / "flags.json"
    bad.write_text(json.dumps(doc))
    assert run(["flags", "validate", str(bad)]) == 1
    assert "a static text is not an embedding" in capsys.readouterr().out


def test_evaluate_shows_the_route_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert _evaluate(["--route", "embed"], capsys)["kind"] == "embeddings"
    assert _evaluate(["--route", "chat"], capsys)["kind"] == "chat"
