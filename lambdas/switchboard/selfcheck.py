"""What a function reports about itself when `switchboard doctor` invokes it directly.

The event is exactly ``{"switchboard_selfcheck": true}``: API Gateway proxy and authorizer events,
the workflows' task payloads, AppConfig validator and CloudFormation custom-resource events all
carry other keys, so no caller of the deployed API can reach this branch. Only a principal allowed
``lambda:InvokeFunction`` on the function can (the doctor's operator).

The report says whether the function *initialises*: its settings load from its environment, the
objects it builds on first use (clients, stores, the circuit service...) can be built, i.e. every
module it imports lazily is on its layers, and which versions of Python, Powertools, pydantic and
botocore it runs with. The doctor compares those with the function's configured runtime and the
pins in ``requirements.txt``. The gateway also reports what the AppConfig extension serves it.
Building those objects makes no AWS call; the extension probe is one local HTTP GET.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Every other import is inside the functions: handlers import this module for `is_selfcheck`, and
# their cold start must not pay for what only the self-check uses.

__all__ = [
    "DOCTOR_CONTEXT",
    "SELFCHECK_EVENT",
    "SELFCHECK_KEY",
    "ExtensionProbe",
    "is_selfcheck",
    "probe_extension",
    "report",
]

SELFCHECK_KEY = "switchboard_selfcheck"
SELFCHECK_EVENT: Mapping[str, Any] = {SELFCHECK_KEY: True}
REPORT_VERSION = 1

DOCTOR_CONTEXT: Mapping[str, str] = {
    "tenant": "switchboard-doctor",
    "tier": "standard",
    "userId": "switchboard-doctor",
}
"""The evaluation context of the gateway's extension probe: every context key the gateway itself
sends except ``route``, so rules see the values they expect (the doctor evaluates the deployed
document with the same context and compares)."""


def is_selfcheck(event: Any) -> bool:
    """True only for exactly ``{"switchboard_selfcheck": true}``."""
    return isinstance(event, dict) and len(event) == 1 and event.get(SELFCHECK_KEY) is True


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _versions() -> dict[str, str | None]:
    """Versions of what the function imports (pydantic only when the function has imported it)."""
    import importlib.metadata
    import platform
    import sys

    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "powertools": None,
        "pydantic": None,
        "botocore": None,
        "boto3": None,
    }
    try:
        from aws_lambda_powertools.shared.version import VERSION

        versions["powertools"] = VERSION
    except Exception:  # reported as missing; the doctor says which layer to check
        versions["powertools"] = None
    if "pydantic" in sys.modules:
        versions["pydantic"] = str(getattr(sys.modules["pydantic"], "VERSION", None) or "") or None
    try:
        import botocore

        versions["botocore"] = str(botocore.__version__)
    except Exception:
        versions["botocore"] = None
    try:  # the distribution's metadata only: importing boto3 would cost the cold start 0.13 s
        versions["boto3"] = importlib.metadata.version("boto3")
    except importlib.metadata.PackageNotFoundError:
        versions["boto3"] = None
    return versions


@dataclass(frozen=True)
class ExtensionProbe:
    """Where the AppConfig agent (the Lambda extension, or the local emulator) serves the flags."""

    agent_url: str
    application: str
    environment: str
    profile: str

    @property
    def configuration_url(self) -> str:
        from switchboard.routing.appconfig_path import configuration_path

        return self.agent_url.rstrip("/") + configuration_path(
            self.application, self.environment, self.profile
        )


def probe_extension(
    probe: ExtensionProbe,
    *,
    context: Mapping[str, str] = DOCTOR_CONTEXT,
    timeout_s: float = 5.0,
    opener: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """``/ping``, then the evaluated flags for ``context``: what the gateway would be served now."""
    import json
    import time
    import urllib.request

    opener = opener or urllib.request.urlopen
    result: dict[str, Any] = {
        "url": probe.configuration_url,
        "context": dict(context),
        "ping": False,
        "status": None,
        "configuration_version": None,
        "flags": None,
        "error": None,
        "latency_ms": None,
    }
    started = time.monotonic()
    try:
        ping = urllib.request.Request(probe.agent_url.rstrip("/") + "/ping")  # noqa: S310 - localhost
        with opener(ping, timeout=timeout_s) as response:
            result["ping"] = 200 <= int(response.status) < 300
        header = ",".join(f"{k}={v}" for k, v in context.items())
        request = urllib.request.Request(probe.configuration_url, headers={"Context": header})  # noqa: S310
        with opener(request, timeout=timeout_s) as response:
            result["status"] = int(response.status)
            result["configuration_version"] = response.headers.get("Configuration-Version")
            body = json.loads(response.read())
        if not isinstance(body, dict):
            raise ValueError("the agent answered with a non-object document")
        result["flags"] = body
    except Exception as exc:  # unreachable, HTTP error, bad JSON: all reported, never raised
        status = getattr(exc, "code", None)
        if isinstance(status, int):
            result["status"] = status
        result["error"] = _describe(exc)
    result["latency_ms"] = int((time.monotonic() - started) * 1000)
    return result


def report(
    handler: str,
    *,
    settings: Callable[[], object] | None = None,
    init: Callable[[], object] | None = None,
    extension: Callable[[], ExtensionProbe] | None = None,
) -> dict[str, Any]:
    """The self-check answer. Never raises: every failure is a field the doctor reads.

    Args:
        handler: the handler module's name (``gateway``, ``invoke``...).
        settings: loads the function's settings from its environment (``XSettings.from_env``).
        init: builds what the function builds on first use (its cached ``_service()``/``_deps()``).
        extension: where the AppConfig agent serves this function's flags (the gateway only).
    """
    out: dict[str, Any] = {"switchboard_selfcheck": REPORT_VERSION, "handler": handler}
    for name, step in (("settings", settings), ("init", init)):
        if step is None:
            out[name] = "not applicable"
            continue
        try:
            step()
            out[name] = "ok"
        except Exception as exc:  # ImportError, SettingsError, anything: that is the finding
            out[name] = f"error: {_describe(exc)}"
    if extension is not None:
        try:
            out["extension"] = probe_extension(extension())
        except Exception as exc:
            out["extension"] = {"ping": False, "flags": None, "error": _describe(exc)}
    out["versions"] = _versions()  # after init, so pydantic shows when the function uses it
    return out
