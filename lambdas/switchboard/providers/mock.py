"""A deterministic, dependency-free provider for local runs, demos, smoke tests and chaos drills.

Reply text: `"[<option.id>] <content of the last user message>"` (an empty echo when there is no user
message), or `params.reply` verbatim when set. So option `mock-echo` answers "hi there" with
`"[mock-echo] hi there"`.

Token counts are whitespace word counts: prompt = words across all messages, completion = words in
the reply. `max_tokens` (request, else `params.max_tokens`) truncates the reply to that many words
and sets `finish_reason="length"`.

Fault injection, from `option.params`:

- `latency_ms` (default 0): sleep this long first; if it exceeds `timeout_s`, sleep `timeout_s`
  and raise `timeout`, like a real call cut off by its deadline.
- `error_rate` (0..1, default 0): with this probability raise `ProviderError(error_kind)`
  (drawn from the injected `random.Random`; 0 never fails, 1 always does).
- `error_kind` (an `ErrorClass` value, default `unavailable`).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatRequest, ChatResult, FinishReason, merged_params


def _words(text: str) -> int:
    return len(text.split())


def _number(value: object) -> float:
    """A numeric param, or 0 when absent or not a number (bad fault settings never crash a call)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class MockProvider:
    """Echoes the last user message, with configurable latency and failures."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self._sleep = sleep
        self._rng = rng or random.Random()  # fault injection, not cryptography
        # Calls per option id, so chaos drills can count what reached a "dead" provider.
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
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
            kind = str(params.get("error_kind") or ErrorClass.UNAVAILABLE.value)
            try:
                error_class = ErrorClass(kind)
            except ValueError:
                error_class = ErrorClass.UNAVAILABLE
            retry_after = 1.0 if error_class is ErrorClass.THROTTLED else None
            raise ProviderError(error_class, f"mock injected {error_class.value}", retry_after_s=retry_after)

        reply = params.get("reply")
        if isinstance(reply, str):
            text = reply
        else:
            last_user = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
            text = f"[{option.id}] {last_user}"

        finish: FinishReason = "stop"
        max_tokens = merged_params(option, request).get("max_tokens")
        words = text.split()
        if isinstance(max_tokens, int) and 0 <= max_tokens < len(words):
            text = " ".join(words[:max_tokens])
            finish = "length"

        return ChatResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=sum(_words(m.text) for m in request.messages),
            completion_tokens=_words(text),
            model=option.model or "mock",
        )
