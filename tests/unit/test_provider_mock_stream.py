"""The mock provider's streaming contract (issue 14): the whole answer in pieces, faults on cue."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, ProviderKind
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    FunctionTool,
    StreamDeadlines,
    StreamDelta,
    ToolChoice,
)
from switchboard.providers.mock import MockProvider, stream_pieces
from tests.fakes import ManualClock

ROOMY = StreamDeadlines(first_token_s=5, idle_s=5, total_s=30)


def _option(**params: Any) -> LlmOption:
    return LlmOption(id="mock-echo", provider=ProviderKind.MOCK, params=params)


def _request(text: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", text)], **kwargs)


def _drain(deltas: Any) -> list[StreamDelta]:
    return list(deltas)


@settings(max_examples=80, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab \n\tç"), max_size=40), max_tokens=st.none() | st.integers(0, 6)
)
def test_the_concatenated_stream_equals_the_whole_answer(text: str, max_tokens: int | None) -> None:
    provider = MockProvider(sleep=ManualClock().sleep)
    request = _request(text, max_tokens=max_tokens)
    whole = provider.complete(_option(), request, 5)
    deltas = _drain(provider.stream(_option(), request, ROOMY))
    assert "".join(d.text for d in deltas) == whole.text
    assert all(d.finish_reason is None for d in deltas[:-1])
    last = deltas[-1]
    assert last.finish_reason == whole.finish_reason and not last.has_content
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        whole.prompt_tokens,
        whole.completion_tokens,
    )


def test_text_goes_a_word_per_delta() -> None:
    deltas = _drain(
        MockProvider(sleep=ManualClock().sleep).stream(_option(), _request("one two  three"), ROOMY)
    )
    assert [d.text for d in deltas[:-1]] == ["[mock-echo] ", "one ", "two  ", "three"]
    assert stream_pieces("  lead") == ["  lead"]


def test_tool_calls_stream_as_id_and_name_then_argument_pieces() -> None:
    tool = FunctionTool(
        name="lookup",
        parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    )
    request = _request("find it", tools=[tool], tool_choice=ToolChoice(mode="required"))
    provider = MockProvider(sleep=ManualClock().sleep)
    whole = provider.complete(_option(), request, 5)
    deltas = _drain(provider.stream(_option(), request, ROOMY))
    pieces = [call for d in deltas for call in d.tool_calls]
    assert pieces[0].id == whole.tool_calls[0].id and pieces[0].name == "lookup" and pieces[0].arguments == ""
    assert all(p.index == 0 and p.id is None for p in pieces[1:]) and len(pieces) > 2
    arguments = "".join(p.arguments for p in pieces)
    assert arguments == whole.tool_calls[0].arguments and json.loads(arguments)["query"]
    assert deltas[-1].finish_reason == "tool_calls"


def test_fail_after_chunks_cuts_the_stream_with_the_error_kind() -> None:
    provider = MockProvider(sleep=ManualClock().sleep)
    stream = provider.stream(_option(fail_after_chunks=2, error_kind="timeout"), _request("a b c d"), ROOMY)
    got = [next(stream).text, next(stream).text]
    with pytest.raises(ProviderError) as raised:
        next(stream)
    assert got == ["[mock-echo] ", "a "] and raised.value.error_class is ErrorClass.TIMEOUT


def test_fail_after_zero_chunks_fails_before_the_first_token_and_counts_the_call() -> None:
    provider = MockProvider(sleep=ManualClock().sleep)
    stream = provider.stream(_option(fail_after_chunks=0), _request("x"), ROOMY)
    assert provider.calls["mock-echo"] == 0  # lazy: nothing happens before the first next()
    with pytest.raises(ProviderError) as raised:
        next(stream)
    assert raised.value.error_class is ErrorClass.UNAVAILABLE and provider.calls["mock-echo"] == 1


def test_first_token_and_chunk_delays_sleep_and_respect_the_deadlines() -> None:
    clock = ManualClock()
    provider = MockProvider(sleep=clock.sleep)
    _drain(provider.stream(_option(first_token_ms=300, chunk_delay_ms=20), _request("a b"), ROOMY))
    assert clock.slept == [0.3, 0.02, 0.02]  # before the first, between the three text deltas

    tight = StreamDeadlines(first_token_s=0.1, idle_s=5, total_s=30)
    with pytest.raises(ProviderError) as raised:
        next(provider.stream(_option(first_token_ms=300), _request("a"), tight))
    assert raised.value.error_class is ErrorClass.TIMEOUT and clock.slept[-1] == 0.1

    idle = StreamDeadlines(first_token_s=5, idle_s=0.05, total_s=30)
    stream = provider.stream(_option(chunk_delay_ms=200), _request("a b"), idle)
    next(stream)
    with pytest.raises(ProviderError) as raised:
        next(stream)
    assert raised.value.error_class is ErrorClass.TIMEOUT and clock.slept[-1] == 0.05
