"""One cached provider instance per kind, imported lazily so the mock path never loads boto3.

`override` lets a caller run every option through one provider (the local stack passes
`ProviderKind.MOCK`); this module reads no environment variables itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from switchboard.options.model import ProviderKind
from switchboard.providers.base import Provider

_INSTANCES: dict[ProviderKind, Provider] = {}
_LOCK = threading.Lock()


def _make_bedrock() -> Provider:
    from switchboard.providers.bedrock import BedrockConverseProvider

    return BedrockConverseProvider()


def _make_sagemaker() -> Provider:
    from switchboard.providers.sagemaker import SageMakerEndpointProvider

    return SageMakerEndpointProvider()


def _make_openai_compatible() -> Provider:
    from switchboard.providers.openai_compatible import OpenAICompatibleProvider

    return OpenAICompatibleProvider()


def _make_mock() -> Provider:
    from switchboard.providers.mock import MockProvider

    return MockProvider()


_FACTORIES: dict[ProviderKind, Callable[[], Provider]] = {
    ProviderKind.BEDROCK: _make_bedrock,
    ProviderKind.SAGEMAKER: _make_sagemaker,
    ProviderKind.OPENAI_COMPATIBLE: _make_openai_compatible,
    ProviderKind.MOCK: _make_mock,
}


def provider_for(kind: ProviderKind | str, override: ProviderKind | str | None = None) -> Provider:
    """The singleton provider for `kind`, or for `override` when one is given."""
    chosen = ProviderKind(override if override is not None else kind)
    instance = _INSTANCES.get(chosen)
    if instance is not None:
        return instance
    with _LOCK:
        instance = _INSTANCES.get(chosen)
        if instance is None:
            instance = _FACTORIES[chosen]()
            _INSTANCES[chosen] = instance
    return instance


def register(kind: ProviderKind, provider: Provider) -> None:
    """Replace the instance for `kind` (tests, or a caller injecting a configured provider)."""
    with _LOCK:
        _INSTANCES[kind] = provider


def reset() -> None:
    """Forget every cached instance (tests)."""
    with _LOCK:
        _INSTANCES.clear()
