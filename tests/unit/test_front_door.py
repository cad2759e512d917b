"""The local front door's request framing, methods, socket timeout and throttle limits."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard_local.emulation import usage_plan_throttles
from switchboard_local.front_door import FrontDoor, RequestFramingError, allowed_methods, body_length

ROOT = Path(__file__).resolve().parents[2]


# -- Content-Length, as a pure function ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "lengths", "expected"),
    [
        ("POST", ["12"], 12),
        ("POST", ["0"], 0),
        ("GET", [], 0),
        ("POST", ["7, 7"], 7),
        ("POST", ["7", "7"], 7),
    ],
)
def test_readable_lengths(method: str, lengths: list[str], expected: int) -> None:
    assert body_length(method, lengths, None) == expected


@pytest.mark.parametrize(
    "lengths", [["-1"], ["abc"], ["1e3"], ["+5"], [" "], ["0x10"], ["5", "6"], ["5, 6"], ["9" * 19], ["١٢"]]
)
def test_unreadable_lengths_are_400(lengths: list[str]) -> None:
    with pytest.raises(RequestFramingError) as caught:
        body_length("POST", lengths, None)
    assert caught.value.status == 400 and caught.value.code == "invalid_content_length"


def test_post_without_length_is_411_and_chunked_too() -> None:
    for transfer_encoding in (None, "chunked"):
        with pytest.raises(RequestFramingError) as caught:
            body_length("POST", [], transfer_encoding)
        assert caught.value.status == 411


def test_length_and_transfer_encoding_together_are_400() -> None:
    with pytest.raises(RequestFramingError) as caught:
        body_length("POST", ["5"], "chunked")
    assert caught.value.status == 400


@given(st.text(max_size=30))
def test_any_header_value_gives_a_length_or_a_4xx(value: str) -> None:
    try:
        length = body_length("POST", [value], None)
    except RequestFramingError as exc:
        assert exc.status in (400, 411)
    else:
        assert length >= 0


def test_allowed_methods_per_path() -> None:
    assert allowed_methods("/v1/models") == ["GET"]
    assert allowed_methods("/v1/chat/completions") == ["POST"]
    assert allowed_methods("/v1/nothing") == []


# -- Over a socket -----------------------------------------------------------------------------

TIERS = {"standard": {"rateLimit": 10.0, "burstLimit": 20}}


def _door(socket_timeout_s: float) -> Iterator[FrontDoor]:
    front = FrontDoor(port=0, tiers=TIERS, socket_timeout_s=socket_timeout_s).start()
    try:
        yield front
    finally:
        front.stop()


@pytest.fixture
def door() -> Iterator[FrontDoor]:
    """Its socket timeout is longer than the client's: a connection it closes, it closed on purpose."""
    yield from _door(socket_timeout_s=10)


@pytest.fixture
def impatient_door() -> Iterator[FrontDoor]:
    yield from _door(socket_timeout_s=0.3)


def _connect(door: FrontDoor, timeout_s: float = 2) -> socket.socket:
    host, port = door.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout_s)


def _exchange(door: FrontDoor, request: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Send `request`, read one response; also report whether the server closed the connection."""
    with _connect(door) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without a response: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            body += sock.recv(65536)
        sock.settimeout(0.5)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False  # still open half a second later (the door's own timeout is 10 s)
        return int(lines[0].split()[1]), headers, body, closed


@pytest.mark.parametrize("length", [b"-1", b"abc"])
def test_unreadable_content_length_is_400_and_the_connection_closes(door: FrontDoor, length: bytes) -> None:
    started = time.monotonic()
    status, headers, body, closed = _exchange(
        door, b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: " + length + b"\r\n\r\n{}"
    )

    assert status == 400 and closed
    assert json.loads(body)["error"]["code"] == "invalid_content_length"
    assert headers["x-switchboard-request-id"]
    assert time.monotonic() - started < 2  # answered at once, not when a timeout fired


def test_post_without_content_length_is_411(door: FrontDoor) -> None:
    status, _, body, closed = _exchange(door, b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n\r\n")

    assert status == 411 and closed
    assert json.loads(body)["error"]["code"] == "length_required"


@pytest.mark.parametrize(
    ("request_line", "allow"),
    [(b"POST /v1/models", "GET"), (b"GET /v1/chat/completions", "POST"), (b"DELETE /v1/models/", "GET")],
)
def test_wrong_method_is_405_with_allow(door: FrontDoor, request_line: bytes, allow: str) -> None:
    status, headers, body, closed = _exchange(
        door, request_line + b" HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
    )

    assert status == 405 and headers["allow"] == allow
    assert not closed  # a well-framed request keeps its connection
    assert json.loads(body)["error"]["code"] == "method_not_allowed"


def test_unknown_path_is_404_without_allow(door: FrontDoor) -> None:
    status, headers, _, _ = _exchange(door, b"GET /v2/anything HTTP/1.1\r\nHost: t\r\n\r\n")

    assert status == 404 and "allow" not in headers


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connected, silent
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent",  # headers never finish
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{",  # body stops
    ],
)
def test_a_client_that_stops_sending_is_dropped_after_the_socket_timeout(
    impatient_door: FrontDoor, sent: bytes
) -> None:
    with _connect(impatient_door, timeout_s=5) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        while sock.recv(65536):  # whatever comes, the server must then close
            pass
        assert time.monotonic() - started < 3  # the door's timeout is 0.3 s; the client's is 5 s


# -- Throttling: the numbers cdk.json deploys ---------------------------------------------------


def test_local_throttling_is_the_deployed_throttling() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]["throttling"]

    throttles = usage_plan_throttles()

    assert set(throttles) == set(context)
    for tier, limits in context.items():
        assert throttles[tier] == {"rateLimit": limits["rate_limit"], "burstLimit": limits["burst_limit"]}


def test_throttling_follows_an_edit_of_cdk_json(tmp_path: Path) -> None:
    document = json.loads((ROOT / "cdk.json").read_text())
    document["context"]["throttling"]["standard"] = {"rate_limit": 3, "burst_limit": 4, "quota_per_day": None}
    edited = tmp_path / "cdk.json"
    edited.write_text(json.dumps(document))

    assert usage_plan_throttles(edited)["standard"] == {"rateLimit": 3.0, "burstLimit": 4}


def test_the_front_door_throttles_with_cdk_json_by_default() -> None:
    front = FrontDoor(port=0)
    try:
        burst = int(usage_plan_throttles()["standard"]["burstLimit"])
        bucket = front.bucket_for("key-1", "standard")
        assert [bucket.take() for _ in range(burst + 1)].count(True) == burst
    finally:
        front.stop()
