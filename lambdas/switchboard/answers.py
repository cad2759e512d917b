"""What makes a provider's answer acceptable, and what makes an option able to answer at all.

A provider's answer is as hostile as a client's request: a model asked for JSON that matches a
schema can answer prose, a model offered two tools can call a third or send arguments that are not
JSON. The client would get a 200 it cannot use, so such an answer is a provider failure of class
`malformed`: it counts against the option's circuit and the workflow moves to the next candidate.

Before any call, an option whose declared `capabilities` lack something the request needs (tools,
images, a response format), or whose `task` is not the request's, is `unsupported`: a client-side
class that never counts against the circuit.
"""

from __future__ import annotations

import json
import math

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption, OptionTask
from switchboard.providers.base import ChatRequest, ChatResult, EmbeddingRequest, EmbeddingResult

__all__ = ["check_chat_answer", "check_embeddings_answer", "unsupported_reason"]

_MAX_PROBLEMS_SHOWN = 3


def unsupported_reason(option: LlmOption, request: ChatRequest | EmbeddingRequest) -> str | None:
    """Why `option` cannot take `request` without calling it (None: it may)."""
    wanted = OptionTask.EMBEDDINGS if isinstance(request, EmbeddingRequest) else OptionTask.CHAT
    if option.task is not wanted:
        return f"option {option.id} is a {option.task.value} option, the request is {wanted.value}"
    if isinstance(request, EmbeddingRequest) or option.capabilities is None:
        return None
    missing = sorted(request.needs() - set(option.capabilities))
    if not missing:
        return None
    has = ", ".join(option.capabilities) or "none"
    return f"option {option.id} cannot do {', '.join(missing)} (its capabilities: {has})"


def _malformed(option: LlmOption, what: str) -> ProviderError:
    return ProviderError(ErrorClass.MALFORMED, f"{option.id} answered {what}")


def check_chat_answer(option: LlmOption, request: ChatRequest, result: ChatResult) -> None:
    """Raise `malformed` when the answer breaks what the request asked for."""
    offered = {tool.name for tool in request.tools}
    if result.tool_calls:
        if not request.tools_enabled:
            raise _malformed(option, "with tool calls although no tool was offered")
        for call in result.tool_calls:
            if call.name not in offered:
                raise _malformed(option, f"a call to `{call.name[:64]}`, which is not among the tools")
            try:
                arguments = json.loads(call.arguments) if call.arguments.strip() else {}
            except ValueError:
                raise _malformed(option, f"arguments for `{call.name}` that are not JSON") from None
            if not isinstance(arguments, dict):
                raise _malformed(option, f"arguments for `{call.name}` that are not a JSON object")
        if len(result.tool_calls) > 1 and request.parallel_tool_calls is False:
            raise _malformed(option, "several tool calls although parallel_tool_calls is false")
        choice = request.tool_choice
        required = choice.name if choice is not None and choice.mode == "function" else None
        if required and any(call.name != required for call in result.tool_calls):
            raise _malformed(option, f"a call to another tool than the required `{required}`")
        return
    choice = request.tool_choice
    forced = bool(request.tools) and choice is not None and choice.mode in ("required", "function")
    if forced and result.finish_reason not in ("length", "content_filter"):
        raise _malformed(option, "no tool call although tool_choice required one")
    fmt = request.response_format
    if fmt is None or fmt.type == "text" or result.finish_reason in ("length", "content_filter"):
        # A cut-off or filtered answer is reported as such (finish_reason), not judged as JSON.
        return
    try:
        document = json.loads(result.text)
    except ValueError:
        raise _malformed(
            option, "content that is not JSON although the response format asks for it"
        ) from None
    if fmt.type == "json_object" and not isinstance(document, dict):
        raise _malformed(option, "JSON that is not an object although the response format is json_object")
    if fmt.type == "json_schema" and fmt.schema is not None:
        from switchboard.json_schema import validate

        problems = validate(document, fmt.schema)
        if problems:
            shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN])
            raise _malformed(option, f"JSON that does not match the response schema: {shown}")


def check_embeddings_answer(option: LlmOption, request: EmbeddingRequest, result: EmbeddingResult) -> None:
    """One finite vector per input, all of one length (the requested one when asked)."""
    if len(result.vectors) != len(request.inputs):
        raise _malformed(option, f"{len(result.vectors)} vectors for {len(request.inputs)} inputs")
    lengths = {len(vector) for vector in result.vectors}
    if len(lengths) != 1 or 0 in lengths:
        raise _malformed(option, "vectors of different or zero lengths")
    (length,) = lengths
    if request.dimensions is not None and length != request.dimensions:
        raise _malformed(option, f"vectors of {length} dimensions, {request.dimensions} were asked for")
    if not all(math.isfinite(x) for vector in result.vectors for x in vector):
        raise _malformed(option, "vectors with non-finite numbers")
