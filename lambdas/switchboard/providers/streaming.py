"""What the three real providers' `stream` share: the deadline clock, the SSE decoder and the
reader of OpenAI `chat.completion.chunk` streams (standard library only, like `openai_compatible`,
which imports this module only when it streams).

Deadlines (`StreamDeadlines`). `StreamClock.read_timeout()` is asked before every blocking read
and returns the seconds left until the nearest deadline: to the first content delta
(`first_token_s`) until one arrived, then since the last upstream event (`idle_s`), and always
the whole call (`total_s`). The provider sets it as the socket timeout of that read, so a stalled
upstream is noticed when the deadline passes, not at some fixed client timeout; a read that times
out, or a deadline found passed, is `ProviderError(TIMEOUT)` naming the deadline. Before the first
content delta only content counts (keep-alive comments and role-only chunks do not stop the
first-token clock); after it any upstream event is activity.

SSE (`SseDecoder`): bytes in, one `data` string out per event, whatever the chunking (a line, a
UTF-8 character or a CRLF split across reads): `data:` lines of one event are joined with `\\n`,
comments (`:`) and other fields are ignored, an event ends at a blank line. A line that starts with
`{` outside an event is an event of its own: some SageMaker containers (LMI) stream JSON lines
rather than SSE.

OpenAI chunks (`OpenAIChunkReader`): `choices[0].delta.content` -> text, `delta.tool_calls`
pieces -> `ToolCallDelta` (calls numbered 0, 1, ... in the order they start; a piece whose `id`
differs from the call already at its upstream `index` starts a new call, since some servers number
every call 0; `id` and `name` are passed once, on a call's first piece, and a call without an id
gets a fresh `call_…` one), the legacy `delta.function_call` as call 0, `finish_reason` and
`usage` (with `stream_options.include_usage` it comes in a last chunk with empty `choices`). The
finish is held until `[DONE]` (or the end of the body) so that it leaves in one last delta with the
usage. Failures:

- an event `{"error": {...}}` (OpenAI, most servers) or `{"object": "error", ...}` (vLLM): the
  error classified like an HTTP error of its `code` (or, without a numeric code, of its `type`:
  rate limit 429, invalid request 400, timeout 504, anything else 500);
- data that is not JSON, or JSON that is no chunk: `malformed`;
- a body that ends with neither `[DONE]` nor a finish: `unavailable` (a cut stream must never
  look like a clean end); `[DONE]` with no finish ends as `stop`;
- a stream that ends with no text and no tool call (and no `content_filter` finish): `malformed`,
  as for whole answers.
"""

from __future__ import annotations

import codecs
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from switchboard.errors import ErrorClass, ProviderError
from switchboard.providers.base import (
    ChatResult,
    FinishReason,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    ToolCallDelta,
)
from switchboard.providers.openai_compatible import classify_http_error, token_count

DONE = "[DONE]"


class StreamClock:
    """The three deadlines of one streamed call, measured from its creation."""

    def __init__(self, deadlines: StreamDeadlines, clock: Callable[[], float] = time.monotonic) -> None:
        self._deadlines = deadlines
        self._clock = clock
        self._started = clock()
        self._last_event = self._started
        self._first_content: float | None = None

    @property
    def has_content(self) -> bool:
        return self._first_content is not None

    def _left(self, now: float) -> tuple[float, str]:
        total = self._started + self._deadlines.total_s - now
        if self._first_content is None:
            step = self._started + self._deadlines.first_token_s - now
            which = "first token"
        else:
            step = self._last_event + self._deadlines.idle_s - now
            which = "idle"
        return (total, "total") if total <= step else (step, which)

    def time_left(self) -> float:
        """Seconds until the nearest deadline (may be negative)."""
        return self._left(self._clock())[0]

    def read_timeout(self) -> float:
        """Seconds the next read may block; `ProviderError(TIMEOUT)` when a deadline already passed."""
        left, _ = self._left(self._clock())
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> ProviderError:
        """The TIMEOUT error for the deadline that ran out (or is the nearest)."""
        _, which = self._left(self._clock())
        seconds = {
            "first token": self._deadlines.first_token_s,
            "idle": self._deadlines.idle_s,
            "total": self._deadlines.total_s,
        }[which]
        what = {
            "first token": f"no first token within {seconds:.2f}s",
            "idle": f"no stream event for {seconds:.2f}s",
            "total": f"stream not finished within {seconds:.2f}s",
        }[which]
        return ProviderError(ErrorClass.TIMEOUT, f"{what} ({which} deadline)")

    def saw_event(self, content: bool) -> None:
        """An upstream event arrived; `content` when it carried text or a tool-call piece."""
        now = self._clock()
        if content and self._first_content is None:
            self._first_content = now
        if self._first_content is not None:
            self._last_event = now


class SseDecoder:
    """Incremental `text/event-stream` decoder: feed bytes, get the `data` of complete events."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += self._text.decode(chunk)
        return self._lines(final=False)

    def close(self) -> list[str]:
        """The events left when the body ends (a last event without its blank line counts)."""
        self._buffer += self._text.decode(b"", final=True)
        events = self._lines(final=True)
        if self._buffer:
            events += self._line(self._buffer)
            self._buffer = ""
        if self._data:
            events.append("\n".join(self._data))
            self._data = []
        return events

    def _lines(self, *, final: bool) -> list[str]:
        events: list[str] = []
        while True:
            cut = _line_end(self._buffer, final=final)
            if cut is None:
                return events
            end, rest = cut
            line, self._buffer = self._buffer[:end], self._buffer[rest:]
            events += self._line(line)

    def _line(self, line: str) -> list[str]:
        if not line:
            if not self._data:
                return []
            event, self._data = "\n".join(self._data), []
            return [event]
        if line.startswith(":"):
            return []
        if line.startswith("{") and not self._data:
            return [line]  # JSON lines
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []


def _line_end(buffer: str, *, final: bool) -> tuple[int, int] | None:
    """(end of the first line, start of the next) or None when no full line is buffered yet."""
    for index, char in enumerate(buffer):
        if char == "\n":
            return index, index + 1
        if char == "\r":
            if index + 1 < len(buffer):
                return index, index + (2 if buffer[index + 1] == "\n" else 1)
            return (index, index + 1) if final else None  # a CRLF may be split across reads
    return None


def _usage(data: Mapping[str, Any]) -> StreamUsage | None:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return None

    def detail(section: str, key: str) -> int | None:
        details = usage.get(section)
        return token_count(details.get(key)) if isinstance(details, dict) else None

    return StreamUsage(
        prompt_tokens=token_count(usage.get("prompt_tokens")) or 0,
        completion_tokens=token_count(usage.get("completion_tokens")) or 0,
        cached_tokens=detail("prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=detail("completion_tokens_details", "reasoning_tokens"),
    )


_STATUS_BY_TYPE = (
    ("rate_limit", 429),
    ("throttl", 429),
    ("timeout", 504),
    ("context_length", 400),
    ("invalid_request", 400),
    ("badrequest", 400),
    ("content_filter", 400),
)


def stream_error(error: Mapping[str, Any], needs: Iterable[str]) -> ProviderError:
    """An error event met in a stream, classified like the HTTP error it stands for."""
    code = error.get("code")
    status = 0
    if isinstance(code, int) and not isinstance(code, bool):
        status = code
    elif isinstance(code, str) and code.isdigit():
        status = int(code)
    if not 400 <= status <= 599:
        words = f"{error.get('type') or ''} {code or ''}".lower().replace("_", "")
        status = next((s for word, s in _STATUS_BY_TYPE if word.replace("_", "") in words), 500)
    body = json.dumps({"error": dict(error)}).encode("utf-8")
    failure = classify_http_error(status, body, None, needs)
    return ProviderError(failure.error_class, f"error event in the stream: {failure.message}")


class OpenAIChunkReader:
    """`chat.completion.chunk` events (as `SseDecoder` gives them) -> `StreamDelta`s."""

    def __init__(self, *, what: str, needs: Iterable[str] = ()) -> None:
        self._what = what
        self._needs = frozenset(needs)
        self._calls: dict[int, tuple[int, str]] = {}  # upstream index -> (our index, id)
        self._started_calls = 0
        self._finish: FinishReason | None = None
        self._usage: StreamUsage | None = None
        self._content = False
        self.done = False
        """`[DONE]` arrived: nothing more to read."""

    @property
    def finished(self) -> bool:
        """A finish reason arrived (the answer is complete even if `[DONE]` never comes)."""
        return self._finish is not None

    def feed(self, data: str) -> list[StreamDelta]:
        if data.strip() == DONE:
            self.done = True
            return [self._last()]
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: a stream event is not JSON") from exc
        if not isinstance(chunk, dict):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: a stream event is not an object")
        if isinstance(chunk.get("error"), dict):
            raise stream_error(chunk["error"], self._needs)
        if isinstance(chunk.get("error"), str):
            raise stream_error({"message": chunk["error"]}, self._needs)
        if chunk.get("object") == "error":
            raise stream_error(chunk, self._needs)
        if "choices" not in chunk and "usage" not in chunk:
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: a stream event is not a chunk")
        usage = _usage(chunk)
        if usage is not None:
            self._usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return []
        choice = choices[0]
        if not isinstance(choice, dict):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: choices[0] is not an object")
        deltas = self._delta(choice.get("delta"))
        reason = choice.get("finish_reason")
        if reason is not None:
            self._finish = _finish_reason(reason, bool(self._calls))
        return deltas

    def end(self) -> list[StreamDelta]:
        """The body ended: the held finish, or why the stream is not a whole answer."""
        if self.done:
            return []
        if self._finish is None:
            raise ProviderError(
                ErrorClass.UNAVAILABLE, f"{self._what}: the stream ended without [DONE] or a finish reason"
            )
        self.done = True
        return [self._last()]

    def _last(self) -> StreamDelta:
        finish = self._finish or ("tool_calls" if self._calls else "stop")
        if not self._content and finish != "content_filter":
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: the stream had no text or tool call")
        return StreamDelta(finish_reason=finish, usage=self._usage)

    def _delta(self, delta: Any) -> list[StreamDelta]:
        if delta is None:
            return []
        if not isinstance(delta, dict):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: choices[0].delta is not an object")
        text = delta.get("content")
        if isinstance(text, list):  # content parts
            text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
        if text is not None and not isinstance(text, str):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: delta.content is not text")
        raw_calls = delta.get("tool_calls")
        if raw_calls is None and isinstance(delta.get("function_call"), dict):
            raw_calls = [{"index": 0, "function": delta["function_call"]}]
        if raw_calls is not None and not isinstance(raw_calls, list):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: delta.tool_calls is not a list")
        calls = tuple(self._call_piece(position, raw) for position, raw in enumerate(raw_calls or ()))
        out = StreamDelta(text=text or "", tool_calls=tuple(c for c in calls if c is not None))
        if not out.has_content:
            return []
        self._content = True
        return [out]

    def _call_piece(self, position: int, raw: Any) -> ToolCallDelta | None:
        if not isinstance(raw, dict) or raw.get("type", "function") != "function":
            raise ProviderError(
                ErrorClass.MALFORMED, f"{self._what}: a tool-call piece is not a function call"
            )
        function = raw.get("function") or {}
        if not isinstance(function, dict):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: a tool-call piece has no function")
        upstream = raw.get("index", position)
        if not isinstance(upstream, int) or isinstance(upstream, bool):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: a tool-call piece has a bad index")
        call_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # TGI (some versions) sends the arguments as an object
            arguments = json.dumps(arguments, ensure_ascii=False)
        if arguments is not None and not isinstance(arguments, str):
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: tool-call arguments are not text")
        known = self._calls.get(upstream)
        if known is not None and (call_id is None or call_id == known[1]):
            return ToolCallDelta(index=known[0], arguments=arguments or "") if arguments else None
        name = function.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ProviderError(ErrorClass.MALFORMED, f"{self._what}: a tool call starts without a name")
        ours = self._started_calls
        self._started_calls += 1
        call_id = call_id or f"call_{os.urandom(12).hex()}"
        self._calls[upstream] = (ours, call_id)
        return ToolCallDelta(index=ours, id=call_id, name=name, arguments=arguments or "")


def _finish_reason(value: Any, has_tool_calls: bool) -> FinishReason:
    if value == "length":
        return "length"
    if value == "content_filter":
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def openai_stream_deltas(
    chunks: Iterable[bytes], clock: StreamClock, *, what: str, needs: Iterable[str] = ()
) -> Iterator[StreamDelta]:
    """Bytes of an OpenAI chat-completions stream -> deltas, ending where the stream ends.

    `chunks` raises `ProviderError` itself for transport failures and read timeouts; a timeout
    after the finish arrived (the server never sent `[DONE]`) ends the stream with that finish.
    """
    decoder = SseDecoder()
    reader = OpenAIChunkReader(what=what, needs=needs)
    iterator = iter(chunks)
    while not reader.done:
        try:
            chunk = next(iterator)
        except StopIteration:
            break
        except ProviderError as error:
            if error.error_class is ErrorClass.TIMEOUT and reader.finished:
                yield from reader.end()
                return
            raise
        for data in decoder.feed(chunk):
            deltas = reader.feed(data)
            clock.saw_event(any(delta.has_content for delta in deltas))
            yield from deltas
            if reader.done:
                return
    for data in decoder.close():
        if reader.done:
            return
        yield from reader.feed(data)
    yield from reader.end()


def result_deltas(result: ChatResult) -> Iterator[StreamDelta]:
    """A whole answer as a short stream: its content in one delta, then the finish with usage."""
    calls = tuple(
        ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
        for index, call in enumerate(result.tool_calls)
    )
    content = StreamDelta(text=result.text, tool_calls=calls)
    if content.has_content:
        yield content
    yield StreamDelta(
        finish_reason=result.finish_reason,
        usage=StreamUsage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cached_tokens=result.cached_tokens,
            reasoning_tokens=result.reasoning_tokens,
        ),
    )
