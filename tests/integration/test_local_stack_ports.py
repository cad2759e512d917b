"""`make local`'s ports: a busy one is refused before anything starts, naming the variable to set."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard_local.cli.target import claim_local_state
from switchboard_local.stack import LocalStack, PortUnavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("which", "variable"), [("port", "PORT"), ("agent_port", "AGENT_PORT"), ("aws_port", "AWS_PORT")]
)
def test_a_busy_port_names_its_variable(busy_port: int, tmp_path: Path, which: str, variable: str) -> None:
    ports = {"port": 0, "agent_port": 0, "aws_port": 0, which: busy_port}
    stack = LocalStack(**ports, state_file=tmp_path / "local.json")

    with pytest.raises(PortUnavailable) as caught:
        stack.start()

    message = str(caught.value)
    assert caught.value.variables == [variable]
    assert f"127.0.0.1:{busy_port}" in message and "in use" in message and f"set {variable}" in message
    assert "\n" not in message
    assert stack.resources is None  # refused before anything was provisioned
    claim_local_state(tmp_path / "local.json", attempts=1).release()  # and the folder is free again


def test_every_busy_port_is_named_at_once(tmp_path: Path) -> None:
    with socket.socket() as a, socket.socket() as b, socket.socket() as c:
        for sock in (a, b, c):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        port, agent_port, aws_port = (int(s.getsockname()[1]) for s in (a, b, c))
        stack = LocalStack(
            port=port, agent_port=agent_port, aws_port=aws_port, state_file=tmp_path / "s.json"
        )

        with pytest.raises(PortUnavailable) as caught:
            stack.start()

    assert caught.value.variables == ["PORT", "AGENT_PORT", "AWS_PORT"]
    assert "make local PORT=0 AGENT_PORT=0 AWS_PORT=0" in str(caught.value)


def test_make_local_passes_the_three_ports() -> None:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "local", "PORT=9101", "AGENT_PORT=9102", "AWS_PORT=9103"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--port 9101 --agent-port 9102 --aws-port 9103" in done.stdout
