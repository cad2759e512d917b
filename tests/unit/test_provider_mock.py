"""Mock provider: deterministic echo, latency via an injected sleep, fault injection."""

from __future__ import annotations

import random
from typing import Any

import pytest

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import ChatMessage, ChatRequest
from switchboard.providers.mock import MockProvider
from tests.fakes import ManualClock


def _option(**params: Any) -> LlmOption:
    return LlmOption(id="mock-echo", provider=ProviderKind.MOCK, params=params)


def _request(*messages: tuple[str, str], **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(r, c) for r, c in messages], **kwargs)  # type: ignore[arg-type]


def test_echoes_last_user_message_with_option_id() -> None:
    clock = ManualClock()
    request = _request(("system", "be nice"), ("user", "first"), ("assistant", "ok"), ("user", "hello there"))
    result = MockProvider(sleep=clock.sleep).complete(_option(), request, timeout_s=5)
    assert result.text == "[mock-echo] hello there"
    assert result.finish_reason == "stop"
    assert result.prompt_tokens == 6  # be nice / first / ok / hello there
    assert result.completion_tokens == 3
    assert result.model == "mock"
    assert clock.slept == []


def test_is_deterministic() -> None:
    provider = MockProvider(sleep=ManualClock().sleep)
    request = _request(("user", "same"))
    assert provider.complete(_option(), request, 5) == provider.complete(_option(), request, 5)


def test_fixed_reply_and_no_user_message() -> None:
    provider = MockProvider(sleep=ManualClock().sleep)
    assert (
        provider.complete(_option(reply="canned answer"), _request(("user", "x")), 5).text == "canned answer"
    )
    assert provider.complete(_option(), _request(("system", "x")), 5).text == "[mock-echo] "


def test_max_tokens_truncates_words() -> None:
    provider = MockProvider(sleep=ManualClock().sleep)
    result = provider.complete(_option(), _request(("user", "one two three four"), max_tokens=3), 5)
    assert (result.text, result.finish_reason, result.completion_tokens) == (
        "[mock-echo] one two",
        "length",
        3,
    )
    from_params = provider.complete(_option(max_tokens=2), _request(("user", "one two three")), 5)
    assert from_params.text == "[mock-echo] one"
    assert from_params.finish_reason == "length"


def test_latency_sleeps() -> None:
    clock = ManualClock()
    MockProvider(sleep=clock.sleep).complete(_option(latency_ms=250), _request(("user", "x")), timeout_s=1)
    assert clock.slept == [0.25]


def test_latency_beyond_timeout_sleeps_the_timeout_then_times_out() -> None:
    clock = ManualClock()
    with pytest.raises(ProviderError) as info:
        provider = MockProvider(sleep=clock.sleep)
        provider.complete(_option(latency_ms=3000), _request(("user", "x")), timeout_s=0.5)
    assert info.value.error_class is ErrorClass.TIMEOUT
    assert clock.slept == [0.5]


@pytest.mark.parametrize("kind", list(ErrorClass))
def test_error_rate_one_always_raises_the_configured_class(kind: ErrorClass) -> None:
    provider = MockProvider(sleep=ManualClock().sleep, rng=random.Random(1))
    for _ in range(20):
        with pytest.raises(ProviderError) as info:
            provider.complete(_option(error_rate=1.0, error_kind=kind.value), _request(("user", "x")), 5)
        assert info.value.error_class is kind


def test_error_kind_defaults_to_unavailable() -> None:
    with pytest.raises(ProviderError) as info:
        MockProvider(sleep=ManualClock().sleep).complete(_option(error_rate=1), _request(("user", "x")), 5)
    assert info.value.error_class is ErrorClass.UNAVAILABLE


def test_error_rate_zero_never_raises() -> None:
    provider = MockProvider(sleep=ManualClock().sleep, rng=random.Random(7))
    for _ in range(200):
        provider.complete(_option(error_rate=0.0, error_kind="throttled"), _request(("user", "x")), 5)


def test_error_rate_is_roughly_respected_with_a_seeded_rng() -> None:
    provider = MockProvider(sleep=ManualClock().sleep, rng=random.Random(42))
    failures = 0
    for _ in range(1000):
        try:
            provider.complete(_option(error_rate=0.3), _request(("user", "x")), 5)
        except ProviderError:
            failures += 1
    assert 230 <= failures <= 370
