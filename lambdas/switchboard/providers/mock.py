"""A deterministic, dependency-free provider for local runs, demos, smoke tests and chaos drills.

It is the tests' contract for the whole request model (issue 13, "The mock provider"), so every
answer follows from the request alone; `option.id` below is the option's id, `echo` the text of the
last user message (empty when there is none).

Chat, in this order:

1. **Tool calls.** With `tools` and `tool_choice` `required` or a named function: one call to that
   function (the first tool for `required`). With `tool_choice` `auto` or absent: one call to the
   first tool when the last message is a user message. The arguments are
   `json.dumps(switchboard.json_schema.example(parameters))`: every required property with a
   schema-valid value (string `"mock"` or the first `enum` value, numbers within their bounds,
   `true`, arrays of one item, objects recursively). The call id is `call_` + a digest of the
   conversation and the function, so the same request gets the same id and the next round a new
   one. `content` is empty (the API says `null`), `finish_reason` is `tool_calls`.
2. **`response_format`.** `json_schema`: `content = json.dumps(example(schema))`, a document valid
   against the schema; `json_object`: `{"answer": <the text answer below>}`.
3. **Text.** `"[<option.id>] <echo>"` (`"[<option.id>/<inference_component>] <echo>"` for an option
   that calls an inference component, e.g. a tenant's adapter), or `params.reply` verbatim when set.
   When the last message is a tool result (and `tool_choice` is not `none`), the text holds every
   tool result's content verbatim, one per line after the echo: `tool <function> (<call id>):
   <content>`. When the request carries images, the text ends with `(received N image(s): <media
   types>)`. So option `mock-echo` answers "hi there" with `"[mock-echo] hi there"`.

Token counts are whitespace word counts: prompt = words across all messages, completion = words of
the content (of the arguments, for a tool call). `max_tokens` (request, else `params.max_tokens`)
truncates a *text* answer to that many words and sets `finish_reason="length"`; JSON answers and
tool calls are never cut (a truncated document would not parse).

Embeddings (`embed`): one vector per input, deterministic per text: components drawn from a
`random.Random` seeded with the SHA-256 of the text (token arrays are embedded as their text form,
the ids joined by spaces), scaled to unit length. The size is `params.dimensions` (default 256)
or the request's `dimensions` when smaller (a larger one is `bad_request`, as a real model refuses
it); a smaller size is a prefix of the larger vector, renormalised (like Matryoshka models).
`prompt_tokens` = words across the inputs.

Fault injection, from `option.params` (chat and embeddings alike):

- `latency_ms` (default 0): sleep this long first; if it exceeds `timeout_s`, sleep `timeout_s`
  and raise `timeout`, like a real call cut off by its deadline.
- `error_rate` (0..1, default 0): with this probability raise `ProviderError(error_kind)`
  (drawn from the injected `random.Random`; 0 never fails, 1 always does).
- `error_kind` (an `ErrorClass` value, default `unavailable`).

Streaming (`stream`, issue 14): the same answer as `complete` for the same request, in pieces, so
the concatenated stream equals the whole answer. Text goes a word per delta (each word with the
whitespace after it); each tool call goes as a first delta with its `id` and `name`, then its
arguments in pieces of `STREAM_ARGUMENT_PIECE` characters; the last delta carries `finish_reason`
and the usage. Faults, besides `latency_ms` and `error_rate` (both before the first delta):

- `first_token_ms` (default 0): sleep this long before the first delta; beyond the first-token
  deadline, sleep the deadline and raise `timeout`, as a provider cut off by it would.
- `chunk_delay_ms` (default 0): sleep this long between deltas; beyond the idle deadline, sleep
  the deadline and raise `timeout`. The total deadline is checked before each delta.
- `fail_after_chunks: N`: raise `ProviderError(error_kind)` after N content deltas (0: before the
  first one), so a gateway sees a stream cut mid-way.

The call is counted and the faults applied when iteration starts (the call is lazy, as a real
client's is).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

from switchboard.errors import ErrorClass, ProviderError
from switchboard.json_schema import example
from switchboard.options.model import LlmOption
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    FunctionTool,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    ToolCall,
    ToolCallDelta,
    merged_params,
)

DEFAULT_DIMENSIONS = 256
MAX_DIMENSIONS = 8192
STREAM_ARGUMENT_PIECE = 8
_WORD_WITH_SPACE = re.compile(r"\s*\S+\s*|\s+")


def stream_pieces(text: str) -> list[str]:
    """`text` a word at a time, each word with the whitespace after it (leading whitespace goes with
    the first word): the pieces concatenate to `text` exactly."""
    return _WORD_WITH_SPACE.findall(text)


def _words(text: str) -> int:
    return len(text.split())


def _number(value: object) -> float:
    """A numeric param, or 0 when absent or not a number (bad fault settings never crash a call)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _chosen_tool(request: ChatRequest) -> FunctionTool | None:
    """The tool the mock calls for this request, or None for an answer without tool calls."""
    if not request.tools_enabled:
        return None
    choice = request.tool_choice
    if choice is not None and choice.mode == "function":
        return next((tool for tool in request.tools if tool.name == choice.name), request.tools[0])
    if choice is not None and choice.mode == "required":
        return request.tools[0]
    last = request.messages[-1] if request.messages else None
    return request.tools[0] if last is not None and last.role == "user" else None


def _call_id(request: ChatRequest, tool: FunctionTool) -> str:
    conversation = json.dumps([m.to_openai() for m in request.messages], sort_keys=True)
    digest = hashlib.sha256(f"{conversation}\n{tool.name}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def _tool_results(messages: list[ChatMessage]) -> list[str]:
    """Every tool result, with the function it answers when an earlier assistant call names it."""
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    return [
        f"tool {names.get(m.tool_call_id or '', 'unknown')} ({m.tool_call_id}): {m.text}"
        for m in messages
        if m.role == "tool"
    ]


def _caller_name(option: LlmOption) -> str:
    """`<option id>`, or `<option id>/<inference component>` when the option calls one: a tenant's
    adapter (issue 16) answers visibly differently from the base component it is deployed on."""
    component = option.inference_component
    return f"{option.id}/{component}" if component else option.id


def _text_answer(option: LlmOption, request: ChatRequest) -> str:
    reply = option.params.get("reply")
    if isinstance(reply, str):
        text = reply
    else:
        last_user = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
        text = f"[{_caller_name(option)}] {last_user}"
    last = request.messages[-1] if request.messages else None
    answering_tools = request.tool_choice is None or request.tool_choice.mode != "none"
    if last is not None and last.role == "tool" and answering_tools:
        text = "\n".join([text, *_tool_results(request.messages)])
    images = [image for m in request.messages for image in m.images]
    if images:
        kinds = ", ".join(image.media_type for image in images)
        text += f" (received {len(images)} image{'s' if len(images) != 1 else ''}: {kinds})"
    return text


def _injected(option: LlmOption) -> ProviderError:
    """The failure `params.error_kind` names (`unavailable` when absent or unknown)."""
    kind = str(option.params.get("error_kind") or ErrorClass.UNAVAILABLE.value)
    try:
        error_class = ErrorClass(kind)
    except ValueError:
        error_class = ErrorClass.UNAVAILABLE
    retry_after = 1.0 if error_class is ErrorClass.THROTTLED else None
    return ProviderError(error_class, f"mock injected {error_class.value}", retry_after_s=retry_after)


def _unit_vector(text: str, dimensions: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    rng = random.Random(seed)  # deterministic test data, not cryptography
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class MockProvider:
    """Echoes the last user message, calls tools, writes JSON, embeds: deterministically, with
    configurable latency and failures."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self._sleep = sleep
        self._rng = rng or random.Random()  # fault injection, not cryptography
        # Calls per option id, so chaos drills can count what reached a "dead" provider.
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    def _enter(self, option: LlmOption, timeout_s: float) -> None:
        """Count the call, then apply the option's latency and injected failures."""
        with self._calls_lock:
            self.calls[option.id] += 1
        params = option.params
        latency_s = max(0.0, _number(params.get("latency_ms")) / 1000.0)
        if latency_s > timeout_s:
            self._sleep(max(0.0, timeout_s))
            raise ProviderError(ErrorClass.TIMEOUT, f"mock latency {latency_s:.3f}s exceeds {timeout_s:.3f}s")
        if latency_s:
            self._sleep(latency_s)

        rate = _number(params.get("error_rate"))
        if rate > 0 and self._rng.random() < rate:
            raise _injected(option)

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        self._enter(option, timeout_s)
        return self._answer(option, request)

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        """The answer of :meth:`complete` as deltas (see the module docstring), faults applied."""
        started = time.monotonic()
        self._enter(option, min(deadlines.first_token_s, deadlines.total_s))
        result = self._answer(option, request)
        params = option.params
        fail_after = params.get("fail_after_chunks")
        fail_at = fail_after if isinstance(fail_after, int) and not isinstance(fail_after, bool) else None
        deltas = [StreamDelta(text=piece) for piece in stream_pieces(result.text)]
        for index, call in enumerate(result.tool_calls):
            deltas.append(StreamDelta(tool_calls=(ToolCallDelta(index=index, id=call.id, name=call.name),)))
            arguments = call.arguments
            for at in range(0, len(arguments), STREAM_ARGUMENT_PIECE):
                piece = arguments[at : at + STREAM_ARGUMENT_PIECE]
                deltas.append(StreamDelta(tool_calls=(ToolCallDelta(index=index, arguments=piece),)))
        self._wait(_number(params.get("first_token_ms")) / 1000, deadlines.first_token_s, "first token")
        for sent, delta in enumerate(deltas):
            if fail_at is not None and sent >= fail_at:
                raise _injected(option)
            if sent:
                self._wait(_number(params.get("chunk_delay_ms")) / 1000, deadlines.idle_s, "next chunk")
            if time.monotonic() - started > deadlines.total_s:
                raise ProviderError(ErrorClass.TIMEOUT, f"mock stream exceeded {deadlines.total_s:.3f}s")
            yield delta
        if fail_at is not None and fail_at >= len(deltas):
            raise _injected(option)
        usage = StreamUsage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
        yield StreamDelta(finish_reason=result.finish_reason, usage=usage)

    def _wait(self, seconds: float, deadline_s: float, what: str) -> None:
        """Sleep `seconds`, or the deadline and a `timeout` when it is shorter."""
        if seconds <= 0:
            return
        if seconds > deadline_s:
            self._sleep(max(0.0, deadline_s))
            raise ProviderError(
                ErrorClass.TIMEOUT, f"mock {what} after {seconds:.3f}s exceeds {deadline_s:.3f}s"
            )
        self._sleep(seconds)

    def _answer(self, option: LlmOption, request: ChatRequest) -> ChatResult:
        """The deterministic answer to `request` (the module docstring's rules), without faults."""
        prompt_tokens = sum(_words(m.text) for m in request.messages)
        model = option.model or "mock"

        tool = _chosen_tool(request)
        if tool is not None:
            values = example(dict(tool.parameters))
            arguments = json.dumps(values if isinstance(values, dict) else {})
            call = ToolCall(id=_call_id(request, tool), name=tool.name, arguments=arguments)
            return ChatResult(
                text="",
                finish_reason="tool_calls",
                prompt_tokens=prompt_tokens,
                completion_tokens=_words(arguments),
                model=model,
                tool_calls=(call,),
            )

        response_format = request.response_format
        if response_format is not None and response_format.type == "json_schema":
            schema = response_format.schema
            content = json.dumps(example(dict(schema)) if schema is not None else {})
            return ChatResult(content, "stop", prompt_tokens, _words(content), model=model)
        if response_format is not None and response_format.type == "json_object":
            content = json.dumps({"answer": _text_answer(option, request)})
            return ChatResult(content, "stop", prompt_tokens, _words(content), model=model)

        text = _text_answer(option, request)
        finish: FinishReason = "stop"
        max_tokens = merged_params(option, request).get("max_tokens")
        words = text.split()
        if isinstance(max_tokens, int) and 0 <= max_tokens < len(words):
            text = " ".join(words[:max_tokens])
            finish = "length"
        return ChatResult(text, finish, prompt_tokens, _words(text), model=model)

    def embed(self, option: LlmOption, request: EmbeddingRequest, timeout_s: float) -> EmbeddingResult:
        self._enter(option, timeout_s)
        configured = option.params.get("dimensions", DEFAULT_DIMENSIONS)
        usable = isinstance(configured, int) and not isinstance(configured, bool)
        if not usable or not 1 <= configured <= MAX_DIMENSIONS:
            configured = DEFAULT_DIMENSIONS
        dimensions = configured
        if request.dimensions is not None:
            if not 1 <= request.dimensions <= configured:
                raise ProviderError(
                    ErrorClass.BAD_REQUEST,
                    f"`dimensions` must be between 1 and {configured} for this model",
                )
            dimensions = request.dimensions
        texts = [item if isinstance(item, str) else " ".join(str(t) for t in item) for item in request.inputs]
        vectors = []
        for text in texts:
            full = _unit_vector(text, configured)
            if dimensions == configured:
                vectors.append(full)
                continue
            head = full[:dimensions]
            norm = math.sqrt(sum(x * x for x in head)) or 1.0
            vectors.append([x / norm for x in head])
        return EmbeddingResult(
            vectors=vectors,
            prompt_tokens=sum(_words(text) for text in texts),
            model=option.model or "mock",
        )
