"""`--local` uses the state file of the stack started from this folder, and only while it runs."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from switchboard_local.cli.target import (
    LocalStackRunning,
    LocalStateClaim,
    Target,
    TargetError,
    claim_local_state,
    local_target,
    lock_file,
    write_local_state,
)

TARGET = Target(region="us-east-1", options_table="o", keys_table="k", endpoint_url="http://127.0.0.1:1")


class _Answer404(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def front_door() -> Iterator[str]:
    """Something answering HTTP, as the stack's front door does (404 to `GET /`)."""
    server = HTTPServer(("127.0.0.1", 0), _Answer404)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".switchboard" / "local.json"


def _publish(state: Path, gateway_url: str) -> LocalStateClaim:
    claim = claim_local_state(state)
    claim.publish(TARGET, gateway_url=gateway_url, agent_url="http://a", aws_url="http://b")
    return claim


def test_the_running_stack_is_used(state: Path, front_door: str) -> None:
    claim = _publish(state, front_door)

    target = local_target(state)

    assert target.endpoint_url == TARGET.endpoint_url and target.options_table == "o"
    claim.release()


def test_a_second_stack_for_the_same_state_file_is_refused(state: Path, front_door: str) -> None:
    first = _publish(state, front_door)

    with pytest.raises(LocalStackRunning) as caught:
        claim_local_state(state, attempts=1)

    assert "already running" in str(caught.value) and "SWITCHBOARD_LOCAL_STATE" in str(caught.value)
    assert front_door in str(caught.value)  # it says which stack holds the folder
    assert local_target(state).endpoint_url == TARGET.endpoint_url  # the first keeps its file
    first.release()


def test_a_stack_that_died_without_cleaning_up_is_refused_by_the_cli(state: Path, front_door: str) -> None:
    claim = _publish(state, front_door)
    saved = state.read_text()
    claim.release()
    state.write_text(saved)  # as a SIGKILL leaves it: file there, lock free (the kernel dropped it)

    with pytest.raises(TargetError) as caught:
        local_target(state)

    message = str(caught.value)
    assert "is not running" in message and "make local" in message
    assert str(json.loads(saved)["stack"]["pid"]) in message


def test_a_stack_whose_front_door_is_gone_is_refused(state: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on once this socket closes
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    claim = _publish(state, f"http://127.0.0.1:{port}")

    with pytest.raises(TargetError) as caught:
        local_target(state)

    assert "does not answer" in str(caught.value)
    claim.release()


def test_no_state_file_is_refused(state: Path) -> None:
    with pytest.raises(TargetError) as caught:
        local_target(state)
    assert "no local stack found" in str(caught.value)


def test_a_dead_stacks_state_file_does_not_block_the_next_start(state: Path, front_door: str) -> None:
    dead = _publish(state, front_door)
    leftover = state.read_text()
    dead.release()
    state.write_text(leftover)

    claim = _publish(state, front_door)

    assert json.loads(state.read_text())["stack"]["token"] != json.loads(leftover)["stack"]["token"]
    claim.release()


def test_release_removes_only_its_own_file(state: Path, front_door: str) -> None:
    claim = _publish(state, front_door)
    claim.release()
    assert not state.exists() and lock_file(state).exists()

    claim = claim_local_state(state)
    write_local_state(TARGET, state)  # someone else's file (no record of this claim)
    claim.release()
    assert state.exists()


def test_a_fixed_target_without_a_stack_record_is_used_as_written(state: Path) -> None:
    write_local_state(TARGET, state)
    assert local_target(state) == TARGET


def test_state_file_written_whole(state: Path) -> None:
    write_local_state(TARGET, state)
    assert [p.name for p in state.parent.iterdir()] == ["local.json"]
