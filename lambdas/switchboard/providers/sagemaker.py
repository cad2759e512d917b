"""SageMaker real-time endpoints (`sagemaker-runtime:InvokeEndpoint`), optionally one inference component.

Chat: the body is the OpenAI chat-completions request as the client sent it (the same body the
OpenAI-compatible adapter sends, `openai_compatible.chat_body`: messages with content parts,
`tool_calls` and `tool` messages, `tools`, `tool_choice`, `parallel_tool_calls`,
`response_format`; `cache_control` hints stripped unless `params.forward_cache_hints`), with
`model` only when the option names one, sent with `ContentType` and `Accept` `application/json`.
`InferenceComponentName` is `option.inference_component` when set (e.g. a LoRA adapter component).
For an option with an `adapter_family` the invoke step (and the streaming path) hand this provider
the option with the tenant's adapter component in `inference_component`
(`switchboard.adapter_routing`), so the provider itself never reads the tenant adapters table.

Containers that take this body on `/invocations` (from each project's documentation):

- **LMI / DJL Serving** (`djl-inference:*-lmi*`): the chat-completions schema whenever the payload
  has `messages`. Tool calling only on the vLLM backend (`OPTION_ROLLING_BATCH=vllm`,
  `OPTION_ENABLE_AUTO_TOOL_CHOICE=true`, `OPTION_TOOL_CALL_PARSER=<parser>`, a chat template that
  knows tools); images with a vision-language model on that backend.
- **vLLM** (its OpenAI server, whose `/invocations` route, or a serving wrapper's, dispatches a
  `messages` body to chat completions): tools with
  `--enable-auto-tool-choice --tool-call-parser <parser>` for `auto` (a named function, and
  `required` from 0.8.3, go through guided decoding), images with a multimodal model,
  `response_format` through guided decoding.
- **TGI** (Hugging Face LLM DLC) 1.4 or later with `MESSAGES_API_ENABLED=true`: tools from 1.4.3
  (grammar-constrained), images with its vision-language models; `response_format` is TGI's own
  grammar shape in many versions, so OpenAI's may be refused (then `unsupported`).
- **SGLang** behind a container whose `/invocations` forwards to its `/v1/chat/completions`:
  tools with `--tool-call-parser`, images with vision models, `response_format` JSON schema.

A container that speaks only TGI's `{"inputs": ...}` / `generated_text` (TGI without the Messages
API, older LMI handlers) cannot apply tools, images or a response format: a request that needs
one is `unsupported` when the container refuses the messages body ("missing field `inputs`") or
answers in the generate shape; declare such an option's `capabilities` as `[]` so the invoke step
refuses those requests without a call. A plain request it refuses is `unavailable` (the option is
misconfigured, not the caller's fault).

Streaming (`stream`): `InvokeEndpointWithResponseStream` (IAM action
`sagemaker:InvokeEndpointWithResponseStream`) with the same body plus `"stream": true` and
`stream_options.include_usage` (`params.stream_usage: false` leaves it out) and no `Accept` (the
container picks its format). `PayloadPart` bytes, cut anywhere, are the container's OpenAI chunk
stream, as SSE (vLLM, TGI Messages API, SGLang) or JSON lines (LMI), read by the OpenAI-compatible
adapter's reader (`streaming.openai_stream_deltas`). `ModelStreamError` and
`InternalStreamFailure` events are `unavailable`; errors before the stream map as below.

Accepted chat responses, anything else is `malformed`:

- OpenAI chat shape, parsed by `openai_compatible.parse_chat_completion` (tool calls, usage
  details, completions-style `text` choices too; whether the answer fits the request is judged by
  the invoke step, `switchboard.answers`);
- TGI generate shape: `[{"generated_text": "..."}]` or `{"generated_text": "...", "details":
  {"finish_reason": "length"|"eos_token"|"stop_sequence", "generated_tokens": n}}` (prompt tokens 0),
  for requests that need nothing beyond text.

Embeddings (`embed`), chosen by the option's `params.api`:

- `"tei"` (default; Hugging Face TEI and other `inputs` embedding containers): `{"inputs": [texts]}`
  answered by `[[floats], ...]`; token arrays are `unsupported` (they are token ids of the client's
  tokenizer, not the container's); no token usage is reported (prompt tokens 0).
- `"openai"` (containers with an OpenAI embeddings route, e.g. vLLM): the body of
  `openai_compatible.embeddings_body`.
Either answer shape is read whatever `api` says: a list of vectors, or OpenAI's `{"data": [...]}`.
When `dimensions` is asked for (request or `params.dimensions`) and the vectors have another length,
the answer is `unsupported` for `tei` (its body has no such field, so only the model's own size
works) and `malformed` for `openai` (the container was sent the field and ignored it).

Error mapping (InvokeEndpoint error code / condition -> `ErrorClass`):

- throttled: ThrottlingException, HTTP 429, ModelError whose OriginalStatusCode is 429.
- timeout: ModelError with OriginalStatusCode 408/504 or a "timed out" message; botocore
  read/connect timeouts.
- unavailable: ModelError with a 5xx or missing OriginalStatusCode; ModelError 401/403/404 (the
  container rejects our route or setup: the option is misconfigured); ServiceUnavailable,
  InternalFailure, InternalDependencyException, ModelNotReadyException, AccessDeniedException,
  other 5xx, connection failures, missing credentials; a ValidationError naming a missing
  endpoint or inference component ("not found", "could not find": misconfigured, not the caller);
  a container that wants TGI `inputs` for a request that needs nothing beyond text.
- context_too_long: ModelError 4xx or ValidationError whose message says the input does not fit.
- unsupported: ModelError 4xx saying a feature the request uses is not supported
  (`openai_compatible.unsupported_feature`, e.g. vLLM's `"auto" tool choice requires
  --enable-auto-tool-choice`), and the cases above.
- bad_request: other ModelError 4xx (400/413/422...), other ValidationError/ValidationException,
  other 4xx, botocore parameter validation.
- malformed: a body that is not JSON or in none of the accepted shapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption
from switchboard.providers.base import (
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    StreamDeadlines,
    StreamDelta,
)
from switchboard.providers.bedrock import (
    cached_client,
    classify_botocore_transport_error,
    classify_status,
    client_error_parts,
    iterate_event_stream,
)
from switchboard.providers.openai_compatible import (
    chat_body,
    checked_vectors,
    embedding_needs,
    embeddings_body,
    mentions_context_overflow,
    parse_chat_completion,
    parse_openai_embeddings,
    parse_vector,
    short,
    stream_body,
    token_count,
    unsupported_feature,
    wanted_dimensions,
)

EMBEDDING_API_PARAM = "api"
EMBEDDING_API_TEI = "tei"
EMBEDDING_API_OPENAI = "openai"

_THROTTLED_CODES = frozenset({"ThrottlingException", "TooManyRequestsException"})
_UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "InternalFailure",
        "InternalDependencyException",
        "ModelNotReadyException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        # exception events in a response stream: the container or SageMaker failed mid-stream
        "ModelStreamError",
        "InternalStreamFailure",
    }
)
_VALIDATION_CODES = frozenset({"ValidationError", "ValidationException"})
_MISSING_TARGET = re.compile(r"not found|could not find|does not exist", re.IGNORECASE)
# TGI without the Messages API deserialises every body as a generate request.
_WANTS_TGI_INPUTS = re.compile(r"missing field `?inputs`?", re.IGNORECASE)
_TGI_FINISH: dict[str, FinishReason] = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def _classify_model_error(exc: Any, message: str, needs: frozenset[str]) -> ProviderError:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    original = response.get("OriginalStatusCode", error.get("OriginalStatusCode"))
    original_message = str(response.get("OriginalMessage", error.get("OriginalMessage")) or "")
    try:
        status = int(original) if original is not None else 0
    except (TypeError, ValueError):
        status = 0
    text = f"{message} {original_message}"
    detail = f"SageMaker ModelError (container {status or 'n/a'}): {short(original_message or message)}"
    if status == 429:
        return ProviderError(ErrorClass.THROTTLED, detail)
    if status in (408, 504) or "timed out" in text.lower():
        return ProviderError(ErrorClass.TIMEOUT, detail)
    if status in (401, 403, 404) or status >= 500 or status < 400:
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    if mentions_context_overflow(text):
        return ProviderError(ErrorClass.CONTEXT_TOO_LONG, detail)
    if _WANTS_TGI_INPUTS.search(text):
        if needs:
            return ProviderError(
                ErrorClass.UNSUPPORTED,
                f"{', '.join(sorted(needs))} not supported: the container takes only TGI `inputs` ({detail})",
            )
        return ProviderError(
            ErrorClass.UNAVAILABLE, f"the container does not speak the messages API ({detail})"
        )
    feature = unsupported_feature(text, needs)
    if feature is not None:
        return ProviderError(ErrorClass.UNSUPPORTED, f"{feature} not supported here: {detail}")
    return ProviderError(ErrorClass.BAD_REQUEST, detail)


def _classify_client_error(exc: Exception, needs: frozenset[str] = frozenset()) -> ProviderError:
    code, message, status = client_error_parts(exc)
    if code == "ModelError":
        return _classify_model_error(exc, message, needs)
    detail = f"SageMaker {code or status}: {short(message)}"
    if code in _THROTTLED_CODES:
        return ProviderError(ErrorClass.THROTTLED, detail)
    if code in _UNAVAILABLE_CODES:
        return ProviderError(ErrorClass.UNAVAILABLE, detail)
    if (code in _VALIDATION_CODES or 400 <= status < 500) and _MISSING_TARGET.search(message):
        return ProviderError(ErrorClass.UNAVAILABLE, detail)  # endpoint/component missing: misconfigured
    if code in _VALIDATION_CODES:
        error_class = (
            ErrorClass.CONTEXT_TOO_LONG if mentions_context_overflow(message) else ErrorClass.BAD_REQUEST
        )
        return ProviderError(error_class, detail)
    return classify_status(status, message, detail)


def build_body(option: LlmOption, request: ChatRequest) -> dict[str, Any]:
    return chat_body(option, request, model=option.model)


def _count(value: Any) -> int:
    return token_count(value) or 0


def _fallback_model(option: LlmOption) -> str:
    return option.model or option.endpoint_name or ""


def _parse_tgi(data: dict[str, Any], option: LlmOption, request: ChatRequest | None) -> ChatResult:
    needs = request.needs() if request is not None else frozenset()
    if needs:
        raise ProviderError(
            ErrorClass.UNSUPPORTED,
            f"{', '.join(sorted(needs))} not supported: the container answered in TGI's generate "
            "shape, so it did not apply them",
        )
    text = data["generated_text"]
    if not isinstance(text, str):
        raise ProviderError(ErrorClass.MALFORMED, "SageMaker generated_text is not text")
    details = data["details"] if isinstance(data.get("details"), dict) else {}
    return ChatResult(
        text=text,
        finish_reason=_TGI_FINISH.get(str(details.get("finish_reason")), "stop"),
        prompt_tokens=0,
        completion_tokens=_count(details.get("generated_tokens")),
        model=_fallback_model(option),
    )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise ProviderError(ErrorClass.MALFORMED, "SageMaker response is not JSON") from exc


def parse_body(raw: bytes, option: LlmOption, request: ChatRequest | None = None) -> ChatResult:
    data = _json(raw)
    if isinstance(data, list) and len(data) >= 1 and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict) and "choices" in data:
        return parse_chat_completion(
            data,
            fallback_model=_fallback_model(option),
            what="SageMaker response",
            allow_text_choice=True,
        )
    if isinstance(data, dict) and "generated_text" in data:
        return _parse_tgi(data, option, request)
    raise ProviderError(ErrorClass.MALFORMED, "SageMaker response is neither OpenAI chat nor TGI shape")


def embedding_api(option: LlmOption) -> str:
    api = option.params.get(EMBEDDING_API_PARAM, EMBEDDING_API_TEI)
    if api not in (EMBEDDING_API_TEI, EMBEDDING_API_OPENAI):
        raise ProviderError(
            ErrorClass.UNAVAILABLE,
            f"option {option.id}: params.api must be {EMBEDDING_API_TEI!r} or {EMBEDDING_API_OPENAI!r}",
        )
    return str(api)


def build_embeddings_body(option: LlmOption, request: EmbeddingRequest) -> dict[str, Any]:
    """TEI's `{"inputs": [...]}` or the OpenAI embeddings body, per `params.api`."""
    if embedding_api(option) == EMBEDDING_API_OPENAI:
        return embeddings_body(request, model=option.model, dimensions=wanted_dimensions(option, request))
    texts = request.texts()
    if texts is None:
        raise ProviderError(
            ErrorClass.UNSUPPORTED,
            "token arrays are not supported by a TEI embedding endpoint: send the texts",
        )
    return {"inputs": texts}


def parse_embeddings_body(raw: bytes, option: LlmOption, request: EmbeddingRequest) -> EmbeddingResult:
    data = _json(raw)
    count = len(request.inputs)
    dimensions = wanted_dimensions(option, request)
    # A TEI body carries no `dimensions`: vectors of another size mean the endpoint cannot do it.
    other_size = (
        ErrorClass.MALFORMED if embedding_api(option) == EMBEDDING_API_OPENAI else ErrorClass.UNSUPPORTED
    )
    what = "SageMaker response"
    if isinstance(data, dict) and "data" in data:
        return parse_openai_embeddings(
            data,
            count=count,
            dimensions=dimensions,
            fallback_model=_fallback_model(option),
            what=what,
            other_size=other_size,
        )
    if isinstance(data, list) and all(isinstance(vector, list) for vector in data):
        vectors = [parse_vector(vector, what) for vector in data]
        return EmbeddingResult(
            vectors=checked_vectors(
                vectors, count=count, dimensions=dimensions, what=what, other_size=other_size
            ),
            prompt_tokens=0,
            model=_fallback_model(option),
        )
    raise ProviderError(
        ErrorClass.MALFORMED, "SageMaker response is neither a list of vectors nor OpenAI shape"
    )


class SageMakerEndpointProvider:
    """InvokeEndpoint with an OpenAI messages body; `client_factory(region)` replaces cached clients."""

    def __init__(self, client_factory: Callable[[str | None], Any] | None = None) -> None:
        self._client_factory = client_factory

    def _client(self, region: str | None, timeout_s: float) -> Any:
        if self._client_factory is not None:
            return self._client_factory(region)
        return cached_client("sagemaker-runtime", region, timeout_s)

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        raw = self._invoke(option, build_body(option, request), timeout_s, request.needs())
        return parse_body(raw, option, request)

    def embed(self, option: LlmOption, request: EmbeddingRequest, timeout_s: float) -> EmbeddingResult:
        body = build_embeddings_body(option, request)
        needs = embedding_needs(request, wanted_dimensions(option, request))
        raw = self._invoke(option, body, timeout_s, needs)
        return parse_embeddings_body(raw, option, request)

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        """InvokeEndpointWithResponseStream with `complete`'s body plus `"stream": true`.

        The container's bytes arrive in `PayloadPart` events, cut anywhere; they are its OpenAI
        stream (SSE or JSON lines) and are read by the OpenAI-compatible adapter's reader.
        """
        from switchboard.providers.streaming import StreamClock, openai_stream_deltas

        clock = StreamClock(deadlines)
        needs = request.needs()
        # No Accept: the container picks its streaming format (vLLM/TGI SSE, LMI JSON lines), and
        # the reader takes both.
        kwargs = self._kwargs(option, stream_body(option, build_body(option, request)), accept=None)
        response = self._call(
            lambda: self._client(option.region, clock.read_timeout()).invoke_endpoint_with_response_stream(
                **kwargs
            ),
            needs,
        )
        event_stream = response.get("Body") if isinstance(response, dict) else None
        if event_stream is None:
            raise ProviderError(ErrorClass.MALFORMED, "SageMaker stream response has no Body")
        events = iterate_event_stream(
            event_stream, clock, lambda exc: _classify_client_error(exc, needs), "SageMaker"
        )
        try:
            payloads = (
                bytes(event["PayloadPart"].get("Bytes") or b"") for event in events if "PayloadPart" in event
            )
            yield from openai_stream_deltas(payloads, clock, what="SageMaker stream", needs=needs)
        finally:
            events.close()
            event_stream.close()

    def _kwargs(self, option: LlmOption, body: dict[str, Any], *, accept: str | None) -> dict[str, Any]:
        if not option.endpoint_name:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"option {option.id} has no endpoint_name")
        kwargs: dict[str, Any] = {
            "EndpointName": option.endpoint_name,
            "ContentType": "application/json",
            "Body": json.dumps(body).encode("utf-8"),
        }
        if accept is not None:
            kwargs["Accept"] = accept
        if option.inference_component:
            kwargs["InferenceComponentName"] = option.inference_component
        return kwargs

    @staticmethod
    def _call(call: Callable[[], Any], needs: Iterable[str]) -> Any:
        """One sagemaker-runtime call, every failure a classified `ProviderError`."""
        from botocore.exceptions import ClientError

        try:
            return call()
        except ClientError as exc:
            raise _classify_client_error(exc, frozenset(needs)) from exc
        except ProviderError:
            raise
        except Exception as exc:
            mapped = classify_botocore_transport_error(exc, "SageMaker")
            if mapped is None:
                raise ProviderError(
                    ErrorClass.UNAVAILABLE, f"SageMaker call failed: {type(exc).__name__}"
                ) from exc
            raise mapped from exc

    def _invoke(
        self, option: LlmOption, body: dict[str, Any], timeout_s: float, needs: Iterable[str]
    ) -> bytes:
        kwargs = self._kwargs(option, body, accept="application/json")

        def invoke() -> Any:
            response = self._client(option.region, timeout_s).invoke_endpoint(**kwargs)
            try:
                payload = response["Body"]
                return payload.read() if hasattr(payload, "read") else payload
            except (KeyError, TypeError) as exc:
                raise ProviderError(ErrorClass.MALFORMED, "SageMaker response has no Body") from exc

        raw = self._call(invoke, needs)
        if not isinstance(raw, bytes | bytearray):
            raise ProviderError(ErrorClass.MALFORMED, "SageMaker response body is not bytes")
        return bytes(raw)
