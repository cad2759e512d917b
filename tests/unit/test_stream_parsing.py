"""The shared stream pieces without a network: SSE decoding under any chunking, the OpenAI chunk
reader's rules, and the deadline clock on a fake clock."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.errors import ErrorClass, ProviderError
from switchboard.providers.base import StreamDeadlines, StreamDelta
from switchboard.providers.streaming import OpenAIChunkReader, SseDecoder, StreamClock, openai_stream_deltas
from tests.fakes.clock import ManualClock
from tests.fakes.openai_http import chunk

texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(raw)]:
        pieces.append(raw[start:point])
        start = point
    return pieces


@given(
    payloads=st.lists(texts, min_size=1, max_size=6),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_sse_decoder_gives_the_same_events_however_the_bytes_are_cut(
    payloads: list[str], newline: str, cuts: list[int]
) -> None:
    raw = "".join(f": comment{newline}data: {p}{newline}{newline}" for p in payloads).encode()
    decoder = SseDecoder()
    events = [e for piece in _split(raw, cuts) for e in decoder.feed(piece)] + decoder.close()
    assert events == payloads


def test_multi_line_data_and_last_event_without_blank_line() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"event: x\ndata: a\ndata:b\n\ndata: tail") == ["a\nb"]
    assert decoder.close() == ["tail"]


@given(
    words=st.lists(texts.filter(bool), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
)
def test_concatenated_deltas_equal_the_text_however_the_stream_is_cut(
    words: list[str], cuts: list[int]
) -> None:
    events = [chunk(w) for w in words] + [chunk(finish="stop")]
    raw = ("".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n").encode()
    clock = StreamClock(StreamDeadlines(5, 5, 10))
    deltas = list(openai_stream_deltas(_split(raw, cuts), clock, what="test"))
    assert "".join(d.text for d in deltas) == "".join(words)
    assert deltas[-1].finish_reason == "stop"
    assert all(d.finish_reason is None for d in deltas[:-1])


def test_repeated_id_and_name_on_every_piece_are_passed_once() -> None:
    reader = OpenAIChunkReader(what="test")
    piece = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}
    first = reader.feed(json.dumps(chunk(tool_calls=[piece])))
    again = reader.feed(
        json.dumps(chunk(tool_calls=[{**piece, "function": {"name": "f", "arguments": "}"}}]))
    )
    assert first[0].tool_calls[0].id == "c1" and first[0].tool_calls[0].name == "f"
    assert again[0].tool_calls[0].id is None and again[0].tool_calls[0].name is None
    assert again[0].tool_calls[0].arguments == "}"


def test_tool_call_without_id_gets_one() -> None:
    reader = OpenAIChunkReader(what="test")
    [delta] = reader.feed(
        json.dumps(chunk(tool_calls=[{"index": 0, "function": {"name": "f", "arguments": "{}"}}]))
    )
    assert (delta.tool_calls[0].id or "").startswith("call_")


def test_a_chunk_of_another_shape_is_malformed() -> None:
    with pytest.raises(ProviderError) as caught:
        OpenAIChunkReader(what="test").feed('{"token": {"text": "hi"}, "generated_text": null}')
    assert caught.value.error_class is ErrorClass.MALFORMED


def test_done_without_finish_after_content_ends_as_stop() -> None:
    reader = OpenAIChunkReader(what="test")
    reader.feed(json.dumps(chunk("hi")))
    assert reader.feed("[DONE]") == [StreamDelta(finish_reason="stop")]


def test_clock_first_token_then_idle_then_total() -> None:
    fake = ManualClock()
    clock = StreamClock(StreamDeadlines(first_token_s=2, idle_s=1, total_s=5), clock=fake)
    assert clock.read_timeout() == 2
    fake.advance(0.5)
    clock.saw_event(content=False)  # a keep-alive does not count before the first token
    assert clock.read_timeout() == 1.5
    clock.saw_event(content=True)
    assert clock.read_timeout() == 1
    fake.advance(0.9)
    clock.saw_event(content=False)  # after it, any event is activity
    assert clock.read_timeout() == 1
    fake.advance(3.0)
    clock.saw_event(content=True)
    assert clock.read_timeout() == pytest.approx(0.6)  # 5 - 4.4: the total deadline is nearer
    fake.advance(0.6)
    with pytest.raises(ProviderError) as caught:
        clock.read_timeout()
    assert caught.value.error_class is ErrorClass.TIMEOUT
    assert "total" in caught.value.message
