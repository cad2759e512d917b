"""Reads the tenant prompt profiles from the AppConfig agent (the Lambda extension on localhost:2772).

The profiles are a *freeform* configuration profile: the agent serves the deployed JSON as it is
(``GET /applications/{app}/environments/{env}/configurations/{profile}``, no ``Context`` header,
no evaluation), with a ``Configuration-Version`` header. The extension polls AppConfig and caches
(``AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS``; prefetched at init through
``AWS_APPCONFIG_EXTENSION_PREFETCH_LIST``), so the reader asks it on every call and keeps no TTL of
its own: a deployed version reaches requests as soon as the extension has it. Only the parsing is
cached (one document, keyed on its bytes), so an unchanged answer costs one local GET.

Every answer is checked with :func:`switchboard.profiles.parse_document_bytes`, the checks the
profile's Lambda validator runs. When the agent fails or answers something refused, the last good
document is served (event ``ProfilesLastKnownGood``); with none, the ``fallback`` (by default
:data:`~switchboard.profiles.PERMISSIVE`: requests pass as sent, event ``ProfilesBuiltInDefault``)
or, with ``fallback=None``, :class:`ProfilesUnavailable`. A broken extension therefore never
stops traffic by default; a deployment that must never lift a tenant's route limits passes
``fallback=None`` and answers 503 until the extension has answered once.
"""

from __future__ import annotations

import http.client
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchboard.contract import metrics as metric_names
from switchboard.profiles import (
    PERMISSIVE,
    ProfileDocumentError,
    PromptProfile,
    TenantProfiles,
    parse_document_bytes,
)
from switchboard.routing.appconfig_path import configuration_path

if TYPE_CHECKING:
    from switchboard.settings import GatewaySettings

__all__ = [
    "EVENT_ANSWER_INVALID",
    "EVENT_BUILT_IN_DEFAULT",
    "EVENT_LAST_KNOWN_GOOD",
    "ProfilesSnapshot",
    "ProfilesUnavailable",
    "PromptProfilesReader",
    "reader_for_gateway",
]

EVENT_ANSWER_INVALID = metric_names.PROFILES_ANSWER_INVALID
EVENT_LAST_KNOWN_GOOD = metric_names.PROFILES_LAST_KNOWN_GOOD
EVENT_BUILT_IN_DEFAULT = metric_names.PROFILES_BUILT_IN_DEFAULT

SOURCE_AGENT = "agent"
SOURCE_LAST_KNOWN_GOOD = "last_known_good"
SOURCE_BUILT_IN_DEFAULT = "built_in_default"


class ProfilesUnavailable(RuntimeError):
    """No profiles at all: the agent failed, nothing was ever read, and no fallback was configured."""


@dataclass(frozen=True)
class ProfilesSnapshot:
    """The profiles in force, and where they came from."""

    profiles: TenantProfiles
    source: str  # "agent" | "last_known_good" | "built_in_default"
    configuration_version: str | None = None

    def for_tenant(self, tenant: str) -> PromptProfile:
        return self.profiles.for_tenant(tenant)


class PromptProfilesReader:
    """The gateway's view of the prompt-profiles document; thread-safe, never raises by default."""

    def __init__(
        self,
        *,
        agent_url: str,
        application: str,
        environment: str,
        profile: str,
        timeout_s: float = 1.0,
        opener: Callable[..., Any] = urllib.request.urlopen,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        fallback: TenantProfiles | None = PERMISSIVE,
    ) -> None:
        self._url = agent_url.rstrip("/") + configuration_path(application, environment, profile)
        self._timeout_s = timeout_s
        self._opener = opener
        self._on_event = on_event or (lambda _name, _data: None)
        self._fallback = fallback
        self._lock = threading.Lock()  # the local front door serves requests on threads
        self._parsed: tuple[bytes, TenantProfiles] | None = None  # the last answer's bytes, parsed
        self._last_good: ProfilesSnapshot | None = None

    def current(self) -> ProfilesSnapshot:
        """The profiles to apply now (see the module docstring for the fallbacks)."""
        request = urllib.request.Request(self._url)  # noqa: S310 - the agent on localhost
        version: str | None = None
        try:
            with self._opener(request, timeout=self._timeout_s) as response:
                raw = response.read()
                version = response.headers.get("Configuration-Version")
            profiles = self._parse(raw)
        except ProfileDocumentError as exc:
            self._on_event(
                EVENT_ANSWER_INVALID, {"problems": exc.problems[:10], "configuration_version": version}
            )
            return self._fallback_snapshot(exc)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            # URLError covers the agent's own 4xx/5xx (HTTPError); HTTPException a torn response.
            return self._fallback_snapshot(exc)
        snapshot = ProfilesSnapshot(profiles, SOURCE_AGENT, version)
        with self._lock:
            self._last_good = snapshot
        return snapshot

    def for_tenant(self, tenant: str) -> PromptProfile:
        """The profile of ``tenant`` (the default profile when it has none of its own)."""
        return self.current().for_tenant(tenant)

    def _parse(self, raw: bytes) -> TenantProfiles:
        with self._lock:
            parsed = self._parsed
        if parsed is not None and parsed[0] == raw:
            return parsed[1]
        profiles = parse_document_bytes(raw)
        with self._lock:
            self._parsed = (raw, profiles)
        return profiles

    def _fallback_snapshot(self, exc: Exception) -> ProfilesSnapshot:
        reason = type(exc).__name__
        with self._lock:
            last_good = self._last_good
        if last_good is not None:
            self._on_event(EVENT_LAST_KNOWN_GOOD, {"reason": reason})
            return ProfilesSnapshot(
                last_good.profiles, SOURCE_LAST_KNOWN_GOOD, last_good.configuration_version
            )
        if self._fallback is not None:
            self._on_event(EVENT_BUILT_IN_DEFAULT, {"reason": reason})
            return ProfilesSnapshot(self._fallback, SOURCE_BUILT_IN_DEFAULT)
        raise ProfilesUnavailable(
            f"AppConfig agent gave no prompt profiles and none were read before: {exc}"
        ) from exc


def reader_for_gateway(
    settings: GatewaySettings,
    *,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    opener: Callable[..., Any] = urllib.request.urlopen,
) -> PromptProfilesReader | None:
    """The gateway's reader: the flags' agent, application and environment, the profile named by
    ``APPCONFIG_PROMPT_PROFILES``; None when the deployment has no prompt profiles."""
    if not settings.appconfig_prompt_profiles:
        return None
    return PromptProfilesReader(
        agent_url=settings.appconfig_agent_url,
        application=settings.appconfig_application,
        environment=settings.appconfig_environment,
        profile=settings.appconfig_prompt_profiles,
        opener=opener,
        on_event=on_event,
    )
