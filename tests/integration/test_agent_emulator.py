"""The AppConfig agent emulator over real HTTP (port 0, urllib)."""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.routing.document import FlagDocumentError
from switchboard_local.agent import AgentEmulator, parse_context_headers

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "config" / "flags.json"
PATH = "/applications/switchboard/environments/local/configurations/routing"
NAMES = {"application": "switchboard", "environment": "local", "profile": "routing"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    shutil.copy(SEED, path)
    return path


@pytest.fixture
def agent(config: Path) -> Iterator[AgentEmulator]:
    with AgentEmulator(
        config,
        port=0,
        application="switchboard",
        environment="local",
        profile="routing",
        poll_interval_s=0.05,
    ) as emulator:
        yield emulator


def get(
    agent: AgentEmulator, path: str = PATH, headers: list[tuple[str, str]] | None = None
) -> tuple[int, dict[str, str], str]:
    names = [name.lower() for name, _ in headers or []]
    if len(names) != len(set(names)):
        # urllib keeps one value per header name: send repeated headers with http.client
        parts = urllib.parse.urlsplit(agent.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
        try:
            conn.putrequest("GET", path)
            for name, value in headers or []:
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, dict(response.headers), response.read().decode()
        finally:
            conn.close()
    request = urllib.request.Request(agent.url + path, headers=dict(headers or []))
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def get_json(agent: AgentEmulator, path: str = PATH, headers: list[tuple[str, str]] | None = None) -> Any:
    status, _, body = get(agent, path, headers)
    assert status == 200, body
    return json.loads(body)


def wait_for(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_ping(agent: AgentEmulator) -> None:
    status, _, body = get(agent, "/ping")
    assert (status, body) == (200, "healthy")


def test_port_zero_picks_a_real_port(agent: AgentEmulator) -> None:
    assert not agent.url.endswith(":0")
    assert agent.url.startswith("http://127.0.0.1:")


def test_all_flags_with_headers(agent: AgentEmulator) -> None:
    status, headers, body = get(agent)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Configuration-Version"] == "1"
    data = json.loads(body)
    assert set(data) == {"chat", "summarize", "echo", "embed", "tuned", "kill-switch", "force-degraded"}
    assert data["embed"]["kind"] == "embeddings"  # a route of the embeddings kind says so
    assert "kind" not in data["chat"]  # absent: chat
    assert data["kill-switch"] == {"enabled": False}  # operator flags: plain, off by default
    assert data["chat"]["_variant"] == "default"
    assert data["chat"]["enabled"] is True


def test_path_names_must_match(agent: AgentEmulator) -> None:
    for path in (
        "/applications/other/environments/local/configurations/routing",
        "/applications/switchboard/environments/prod/configurations/routing",
        "/applications/switchboard/environments/local/configurations/other",
        "/applications/switchboard/environments/local",
        "/nothing",
    ):
        status, _, body = get(agent, path)
        assert status == 404, path
        assert body


def test_any_names_when_unconfigured(config: Path) -> None:
    with AgentEmulator(config, port=0) as emulator:
        assert get(emulator, "/applications/a/environments/b/configurations/c")[0] == 200


def test_flag_filter(agent: AgentEmulator) -> None:
    data = get_json(agent, PATH + "?flag=chat&flag=echo")
    assert list(data) == ["chat", "echo"]
    status, _, body = get(agent, PATH + "?flag=chat&flag=nope")
    assert status == 400
    assert "nope" in body
    assert get(agent, PATH + "?flag=")[0] == 400


def test_context_single_header(agent: AgentEmulator) -> None:
    data = get_json(agent, PATH + "?flag=chat", [("Context", "tier=premium")])
    assert data["chat"]["_variant"] == "premium"
    assert data["chat"]["chain"][0] == "claude-sonnet-us"


def test_context_comma_separated(agent: AgentEmulator) -> None:
    data = get_json(agent, PATH + "?flag=chat", [("Context", "tenant=acme, tier=premium")])
    assert data["chat"]["_variant"] == "premium"


def test_context_repeated_headers(agent: AgentEmulator) -> None:
    data = get_json(agent, PATH + "?flag=chat", [("Context", "tenant=acme"), ("Context", "tier=premium")])
    assert data["chat"]["_variant"] == "premium"


def test_malformed_context_is_400(agent: AgentEmulator) -> None:
    for bad in ("tier", "=premium", "tier=premium,,x=1"):
        status, _, body = get(agent, PATH, [("Context", bad)])
        assert status == 400, bad
        assert "key=value" in body


def test_parse_context_headers() -> None:
    assert parse_context_headers(["a=1, b = 2", "c=x=y", "a=3"]) == {"a": "3", "b": "2", "c": "x=y"}
    assert parse_context_headers([]) == {}


def test_other_methods_refused(agent: AgentEmulator) -> None:
    request = urllib.request.Request(agent.url + PATH, method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 405


def _edit(config: Path, mutate: Any) -> None:
    doc = json.loads(config.read_text())
    mutate(doc)
    config.write_text(json.dumps(doc))


def test_edit_changes_answer_and_version(agent: AgentEmulator, config: Path) -> None:
    def swap(doc: dict[str, Any]) -> None:
        doc["values"]["chat"]["_variants"][1]["attributeValues"]["chain"] = ["nova-lite-us"]

    _edit(config, swap)
    assert wait_for(lambda: get_json(agent, PATH + "?flag=chat")["chat"]["chain"] == ["nova-lite-us"])
    assert get(agent)[1]["Configuration-Version"] == "2"


def test_invalid_edit_keeps_last_good(
    agent: AgentEmulator, config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="switchboard.agent")
    before = get_json(agent)
    config.write_text('{"version": "1", "flags": {')  # broken JSON
    assert wait_for(lambda: any("not valid JSON" in r.getMessage() for r in caplog.records))
    assert get_json(agent) == before
    assert get(agent)[1]["Configuration-Version"] == "1"

    def break_rule(doc: dict[str, Any]) -> None:
        doc["values"]["chat"]["_variants"][0]["rule"] = "(eq $tier"

    shutil.copy(SEED, config)
    _edit(config, break_rule)  # valid JSON, invalid document
    assert wait_for(lambda: any("rule does not parse" in r.getMessage() for r in caplog.records))
    assert get_json(agent) == before

    config.unlink()  # a vanished file is also survived
    time.sleep(0.2)
    assert get_json(agent) == before

    shutil.copy(SEED, config)  # the same content as served: no new version
    time.sleep(0.2)
    assert get(agent)[1]["Configuration-Version"] == "1"


def test_invalid_at_start_raises(tmp_path: Path) -> None:
    bad = tmp_path / "flags.json"
    bad.write_text("{nope")
    with pytest.raises(FlagDocumentError, match="not valid JSON"):
        AgentEmulator(bad, port=0).start()
    bad.write_text(json.dumps({"version": "2"}))
    with pytest.raises(FlagDocumentError) as info:
        AgentEmulator(bad, port=0).start()
    assert info.value.problems
    with pytest.raises(FlagDocumentError, match="cannot read"):
        AgentEmulator(tmp_path / "missing.json", port=0).start()


def test_a_document_naming_an_unknown_option_is_refused_as_the_lambda_validator_would(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Option ids are read on every load (the local stack reads its options table), so a
    document naming an option the catalogue lacks never replaces the served one."""
    from switchboard.routing.document import load_option_statuses

    caplog.set_level(logging.ERROR, logger="switchboard.agent")
    catalogue = load_option_statuses(ROOT / "config" / "options.json")
    reads: list[int] = []

    def option_ids() -> dict[str, str]:
        reads.append(1)
        return dict(catalogue)

    with AgentEmulator(config, port=0, poll_interval_s=0.05, option_ids=option_ids, **NAMES) as agent:
        before = get_json(agent)

        def ghost(doc: dict[str, Any]) -> None:
            doc["values"]["echo"]["_variants"][0]["attributeValues"]["chain"] = ["mock-echo", "ghost-model"]

        _edit(config, ghost)
        assert wait_for(lambda: any("unknown option 'ghost-model'" in r.getMessage() for r in caplog.records))
        assert get_json(agent) == before
        assert get(agent)[1]["Configuration-Version"] == "1"
        assert len(reads) == 2  # at start, then for the edit

        catalogue["ghost-model"] = "active"  # the option is created: a later edit goes through
        _edit(config, lambda doc: doc["values"]["echo"]["_variants"][0].update(name="default-v2"))
        assert wait_for(lambda: get_json(agent, PATH + "?flag=echo")["echo"]["_variant"] == "default-v2")
        assert get_json(agent, PATH + "?flag=echo")["echo"]["chain"] == ["mock-echo", "ghost-model"]


def test_a_chat_option_in_an_embeddings_chain_is_refused_as_the_lambda_validator_would(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The local stack hands the emulator the whole catalogue (tasks too), as the validator reads it."""
    from switchboard.routing.document import load_option_catalogue

    caplog.set_level(logging.ERROR, logger="switchboard.agent")
    catalogue = load_option_catalogue(ROOT / "config" / "options.json")
    with AgentEmulator(config, port=0, poll_interval_s=0.05, option_ids=lambda: catalogue, **NAMES) as agent:
        before = get_json(agent)

        def chat_in_embed(doc: dict[str, Any]) -> None:
            doc["values"]["embed"]["_variants"][0]["attributeValues"]["chain"] = ["mock-echo"]

        _edit(config, chat_in_embed)
        expected = "option 'mock-echo', which answers chat, but route 'embed' is of kind embeddings"
        assert wait_for(lambda: any(expected in r.getMessage() for r in caplog.records))
        assert get_json(agent) == before
        assert get_json(agent, PATH + "?flag=embed")["embed"]["chain"] == ["titan-embed-v2-us"]


def test_unknown_option_at_start_or_an_unreadable_catalogue_refuses_to_start(config: Path) -> None:
    def ghost(doc: dict[str, Any]) -> None:
        doc["values"]["echo"]["_variants"][0]["attributeValues"]["chain"] = ["ghost-model"]

    _edit(config, ghost)
    with pytest.raises(FlagDocumentError) as info:
        AgentEmulator(config, port=0, option_ids={"mock-echo": "active"}).start()
    assert any("unknown option 'ghost-model'" in p for p in info.value.problems)

    def catalogue_down() -> dict[str, str]:
        raise ConnectionError("options table unreachable")

    with pytest.raises(FlagDocumentError, match="cannot read the option ids"):
        AgentEmulator(config, port=0, option_ids=catalogue_down).start()


def test_stop_is_idempotent(config: Path) -> None:
    emulator = AgentEmulator(config, port=0).start()
    url = emulator.url
    emulator.stop()
    emulator.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/ping", timeout=1)
