"""The functions' self-check: reachable only by its exact event, and it never raises."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchboard import selfcheck
from switchboard.settings import GatewaySettings


@pytest.mark.parametrize(
    "event",
    [
        {"switchboard_selfcheck": True},
    ],
)
def test_the_selfcheck_event_is_recognised(event: dict[str, Any]) -> None:
    assert selfcheck.is_selfcheck(event)


@pytest.mark.parametrize(
    "event",
    [
        {"switchboard_selfcheck": "true"},
        {"switchboard_selfcheck": 1},
        {"switchboard_selfcheck": True, "httpMethod": "POST"},
        {"switchboard_selfcheck": True, "body": "{}"},
        {"body": json.dumps({"switchboard_selfcheck": True}), "httpMethod": "POST"},
        {"type": "REQUEST", "headers": {"switchboard_selfcheck": "true"}},
        {"action": "acquire_probe", "option_id": "x"},
        {"RequestType": "Create"},
        [],
        None,
        "switchboard_selfcheck",
    ],
)
def test_nothing_an_api_or_workflow_sends_looks_like_it(event: Any) -> None:
    assert not selfcheck.is_selfcheck(event)


def test_report_names_versions_and_a_failing_init_without_raising() -> None:
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'aws_lambda_powertools.utilities.circuit_breaker'")

    report = selfcheck.report("circuit", settings=lambda: None, init=broken)

    assert report["handler"] == "circuit"
    assert report["settings"] == "ok"
    assert report["init"] == (
        "error: ModuleNotFoundError: No module named 'aws_lambda_powertools.utilities.circuit_breaker'"
    )
    from aws_lambda_powertools.shared.version import VERSION

    assert report["versions"]["powertools"] == VERSION
    assert report["versions"]["python"].count(".") == 2
    json.dumps(report)  # a Lambda answer must serialise


def test_report_says_when_settings_do_not_load() -> None:
    report = selfcheck.report("gateway", settings=lambda: GatewaySettings.from_env({}))

    assert report["settings"].startswith("error: SettingsError: GatewaySettings: bad environment: missing")
    assert report["init"] == "not applicable"


class _Response:
    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status = status
        self._body = body
        self.headers = headers or {}

    def read(self) -> bytes:
        return self._body

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_extension_probe_sends_the_doctor_context_and_reads_version_and_flags() -> None:
    seen: list[Any] = []

    def opener(request: Any, timeout: float) -> _Response:
        seen.append(request)
        if request.full_url.endswith("/ping"):
            return _Response(200, b"healthy")
        body = json.dumps({"chat": {"enabled": True, "chain": ["a"], "_variant": "default"}}).encode()
        return _Response(200, body, {"Configuration-Version": "7"})

    probe = selfcheck.ExtensionProbe("http://localhost:2772", "switchboard", "prod", "routing")

    result = selfcheck.probe_extension(probe, opener=opener)

    assert result["ping"] is True
    assert result["configuration_version"] == "7"
    assert result["flags"] == {"chat": {"enabled": True, "chain": ["a"], "_variant": "default"}}
    assert result["error"] is None
    assert seen[1].full_url == (
        "http://localhost:2772/applications/switchboard/environments/prod/configurations/routing"
    )
    assert (
        seen[1].get_header("Context") == "tenant=switchboard-doctor,tier=standard,userId=switchboard-doctor"
    )


def test_extension_probe_reports_an_unreachable_agent() -> None:
    def opener(request: Any, timeout: float) -> _Response:
        raise ConnectionRefusedError(111, "Connection refused")

    probe = selfcheck.ExtensionProbe("http://localhost:2772", "a", "b", "c")

    result = selfcheck.probe_extension(probe, opener=opener)

    assert result["ping"] is False
    assert result["flags"] is None
    assert "Connection refused" in result["error"]


def test_extension_probe_reports_an_http_error_status() -> None:
    import urllib.error

    def opener(request: Any, timeout: float) -> _Response:
        if request.full_url.endswith("/ping"):
            return _Response(200)
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)  # type: ignore[arg-type]

    result = selfcheck.probe_extension(selfcheck.ExtensionProbe("http://x", "a", "b", "c"), opener=opener)

    assert result["ping"] is True
    assert result["status"] == 404
    assert result["flags"] is None
