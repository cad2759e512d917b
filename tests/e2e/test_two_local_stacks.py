"""Two `make local` stacks on one machine, each from its own folder, as two processes.

Each takes free ports (0) and prints them; `switchboard ... --local` run in a folder talks to the
stack started from that folder, and refuses clearly once that stack is gone. A second stack from
the same folder, or one asked for a busy port, stops at once with one line and no traceback.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest

import switchboard_local.cli.target as target_mod
from switchboard_local.cli.main import main as cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 120
BANNER_URL = re.compile(r"^\s+(gateway|AWS endpoint|AppConfig)\s+(http://\S+)", re.MULTILINE)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWITCHBOARD_LOCAL_STATE", "PORT")}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / part) for part in ("", "lambdas", "local"))
    return env


def _start(folder: Path, *ports: str) -> subprocess.Popen[str]:
    folder.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "switchboard_local.stack", *ports],
        cwd=folder,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Running:
    def __init__(self, process: subprocess.Popen[str], folder: Path, banner: str) -> None:
        self.process, self.folder, self.banner = process, folder, banner
        self.urls = dict(BANNER_URL.findall(banner))


def _drain(stream: IO[str], into: list[str]) -> None:
    """Read a child's pipe as it writes, so a full pipe never blocks it."""
    for line in iter(stream.readline, ""):
        into.append(line)


def _wait_until_up(process: subprocess.Popen[str], folder: Path) -> Running:
    assert process.stdout is not None and process.stderr is not None
    out: list[str] = []
    err: list[str] = []
    for stream, lines in ((process.stdout, out), (process.stderr, err)):
        threading.Thread(target=_drain, args=(stream, lines), daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while "Ctrl-C stops." not in "".join(out):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"stack in {folder} did not start: {''.join(out)} {''.join(err)}")
        time.sleep(0.05)
    return Running(process, folder, "".join(out))


@pytest.fixture(scope="module")
def two_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    base = tmp_path_factory.mktemp("checkouts")
    free = ("--port", "0", "--agent-port", "0", "--aws-port", "0")
    processes = {name: _start(base / name, *free) for name in ("a", "b")}  # both start at once
    try:
        yield {name: _wait_until_up(process, base / name) for name, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], folder: Path, *argv: str
) -> Any:
    """`switchboard ARGV --local` run from `folder`, as a developer in that checkout would."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(target_mod, "LOCAL_STATE_FILE", Path(".switchboard/local.json"))
    capsys.readouterr()
    code = cli([*argv, "--local"])
    out, err = capsys.readouterr()
    return code, out, err


def test_each_stack_prints_its_own_free_ports(two_stacks: dict[str, Running]) -> None:
    a, b = two_stacks["a"].urls, two_stacks["b"].urls
    assert set(a) == set(b) == {"gateway", "AWS endpoint", "AppConfig"}
    assert not set(a.values()) & set(b.values())
    assert not {urlsplit(url).port for url in a.values()} & {8080, 2772}  # 0 picked free ones


def test_the_cli_talks_to_the_stack_of_its_folder(
    two_stacks: dict[str, Running], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_stacks["a"], two_stacks["b"]
    with monkeypatch.context() as mp:
        mp.chdir(a.folder)
        mp.setattr(target_mod, "LOCAL_STATE_FILE", Path(".switchboard/local.json"))
        assert target_mod.local_target().endpoint_url == a.urls["AWS endpoint"]

    code, _, err = _cli(
        monkeypatch, capsys, a.folder, "keys", "create", "--tenant", "only-a", "--tier", "standard"
    )
    assert code == 0, err

    code, out_a, _ = _cli(monkeypatch, capsys, a.folder, "keys", "list")
    assert code == 0 and '"only-a"' in out_a
    code, out_b, _ = _cli(monkeypatch, capsys, b.folder, "keys", "list")
    assert code == 0 and '"only-a"' not in out_b and '"dev"' in out_b


def test_a_second_stack_from_the_same_folder_refuses_in_one_line(two_stacks: dict[str, Running]) -> None:
    a = two_stacks["a"]
    second = _start(a.folder, "--port", "0", "--agent-port", "0", "--aws-port", "0")
    _, err = second.communicate(timeout=60)

    assert second.returncode == 1
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "already running" in err and f"pid {a.process.pid}" in err


def test_a_busy_port_is_one_line_naming_its_variable(two_stacks: dict[str, Running], tmp_path: Path) -> None:
    taken = two_stacks["a"].urls["AppConfig"].rsplit(":", 1)[1]  # stack a's agent holds it
    refused = _start(tmp_path / "c", "--port", "0", "--agent-port", taken, "--aws-port", "0")
    _, err = refused.communicate(timeout=60)

    assert refused.returncode == 1
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"127.0.0.1:{taken}" in err and "set AGENT_PORT" in err


def test_the_cli_refuses_once_its_stack_is_gone(
    two_stacks: dict[str, Running], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_stacks["a"], two_stacks["b"]
    b.process.send_signal(signal.SIGTERM)  # Ctrl-C / a supervisor: it removes its state file
    b.process.wait(timeout=30)
    a.process.kill()  # SIGKILL: the state file stays, naming a process that is gone
    a.process.wait(timeout=30)

    code, _, err = _cli(monkeypatch, capsys, b.folder, "keys", "list")
    assert code == 2 and "no local stack found" in err and "make local" in err

    code, _, err = _cli(monkeypatch, capsys, a.folder, "keys", "list")
    assert code == 2 and "is not running" in err and f"pid {a.process.pid}" in err
