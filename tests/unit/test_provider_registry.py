"""Provider registry: singletons per kind, lazy imports, override."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from switchboard.options.model import ProviderKind
from switchboard.providers import registry
from switchboard.providers.bedrock import BedrockConverseProvider
from switchboard.providers.mock import MockProvider
from switchboard.providers.openai_compatible import OpenAICompatibleProvider
from switchboard.providers.sagemaker import SageMakerEndpointProvider
from tests.fresh_python import run_fresh


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    registry.reset()
    yield
    registry.reset()


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        (ProviderKind.BEDROCK, BedrockConverseProvider),
        (ProviderKind.SAGEMAKER, SageMakerEndpointProvider),
        (ProviderKind.OPENAI_COMPATIBLE, OpenAICompatibleProvider),
        (ProviderKind.MOCK, MockProvider),
    ],
)
def test_one_cached_instance_per_kind(kind: ProviderKind, cls: type) -> None:
    first = registry.provider_for(kind)
    assert isinstance(first, cls)
    assert registry.provider_for(kind) is first
    assert registry.provider_for(kind.value) is first


def test_override_wins() -> None:
    provider = registry.provider_for(ProviderKind.BEDROCK, override=ProviderKind.MOCK)
    assert isinstance(provider, MockProvider)
    assert provider is registry.provider_for(ProviderKind.MOCK)


def test_register_replaces_an_instance() -> None:
    fake = MockProvider()
    registry.register(ProviderKind.BEDROCK, fake)
    assert registry.provider_for(ProviderKind.BEDROCK) is fake


def test_mock_path_never_imports_boto3() -> None:
    code = (
        "import sys\n"
        "from switchboard.options.model import LlmOption, ProviderKind\n"
        "from switchboard.providers.base import ChatMessage, ChatRequest\n"
        "from switchboard.providers.registry import provider_for\n"
        "p = provider_for(ProviderKind.BEDROCK, override=ProviderKind.MOCK)\n"
        "o = LlmOption(id='m', provider=ProviderKind.MOCK)\n"
        "print(p.complete(o, ChatRequest(messages=[ChatMessage('user', 'hi')]), 1).text)\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto loaded'\n"
    )
    out = run_fresh(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[m] hi"
