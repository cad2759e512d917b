"""Bedrock embeddings through `InvokeModel` (authorized as `bedrock:InvokeModel`, like Converse).

The model family comes from `option.model`, a model id, an inference-profile id (`us.cohere…`) or
an ARN ending in one; `embedding_family` tells which, so option validation can use it too.

- `titan-v2` (`amazon.titan-embed-text-v2:0`): one text a call, `{"inputText", "dimensions",
  "normalize": true}` -> `embedding`, `inputTextTokenCount`.
- `titan-v1` (`amazon.titan-embed-text-v1`): one text a call, `{"inputText"}`; 1536 dimensions.
- `cohere-v3` (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`): up to 96 texts a call,
  `{"texts", "input_type", "embedding_types": ["float"]}` -> `embeddings.float`; 1024 dimensions.
- `cohere-v4` (`cohere.embed-v4:0`): as v3, plus `output_dimension`.

Dimensions: the request's `dimensions`, else `option.params["dimensions"]`, else the model's
default (not sent). Titan V2 takes 256, 512 or 1024; Cohere v4 256, 512, 1024 or 1536; Titan v1
and Cohere v3 have one size. Any other value in the request is `bad_request`, and in the option's
params the option is misconfigured (`unavailable`: the workflow moves on, an operator fixes it).
Cohere's `input_type` is `search_document` unless `option.params["input_type"]` says otherwise
(`search_query`, `classification`, `clustering`: an option per use). Titan V2 vectors are asked
for normalized (`normalize: true`), as OpenAI's are.

Token-array inputs (`[[1, 2, 3]]`) are `unsupported`: these models take text only. A model id of
no known family is `unsupported` too.

Several calls (Titan: one per text; Cohere: one per 96 texts) run on a few threads within the one
time budget; the first failure, classified as for chat (`switchboard.providers.bedrock`), is the
answer, and running out of time is `timeout`. Token counts: Titan's `inputTextTokenCount`, Cohere's
`X-Amzn-Bedrock-Input-Token-Count` response header; summed over the calls.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from switchboard.errors import ErrorClass, ProviderError
from switchboard.options.model import LlmOption
from switchboard.providers.base import EmbeddingRequest, EmbeddingResult
from switchboard.providers.bedrock import call_bedrock

TITAN_V2 = "titan-v2"
TITAN_V1 = "titan-v1"
COHERE_V3 = "cohere-v3"
COHERE_V4 = "cohere-v4"

COHERE_BATCH = 96
"""Texts per Cohere Embed call (Bedrock's limit for v3 and v4)."""
MAX_PARALLEL_CALLS = 8
TOKEN_COUNT_HEADER = "x-amzn-bedrock-input-token-count"  # noqa: S105 - a header name
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
DEFAULT_COHERE_INPUT_TYPE = "search_document"

_FAMILIES = (
    (re.compile(r"(^|\.)amazon\.titan-embed-text-v2"), TITAN_V2),
    (re.compile(r"(^|\.)amazon\.titan-embed-text-v1"), TITAN_V1),
    (re.compile(r"(^|\.)cohere\.embed-(english|multilingual)-v3"), COHERE_V3),
    (re.compile(r"(^|\.)cohere\.embed-v4"), COHERE_V4),
)

_DIMENSIONS: dict[str, tuple[int, ...]] = {
    TITAN_V2: (256, 512, 1024),
    TITAN_V1: (1536,),
    COHERE_V3: (1024,),
    COHERE_V4: (256, 512, 1024, 1536),
}


def embedding_family(model_id: str) -> str | None:
    """`titan-v2`, `titan-v1`, `cohere-v3`, `cohere-v4`, or None for a model this module cannot call."""
    name = model_id.rsplit("/", 1)[-1]  # an ARN ends in the model or profile id
    return next((family for pattern, family in _FAMILIES if pattern.search(name)), None)


@dataclass(frozen=True)
class _Call:
    """One InvokeModel call: its JSON body and how many vectors it must bring back."""

    body: dict[str, Any]
    count: int


@dataclass(frozen=True)
class _Answer:
    vectors: list[list[float]]
    tokens: int


def _dimensions(option: LlmOption, request: EmbeddingRequest, family: str) -> int | None:
    allowed = _DIMENSIONS[family]
    if request.dimensions is not None:
        if request.dimensions not in allowed:
            raise ProviderError(
                ErrorClass.BAD_REQUEST,
                f"`dimensions` {request.dimensions} is not offered by {option.model}: "
                f"it takes {', '.join(str(d) for d in allowed)}",
            )
        return request.dimensions
    configured = option.params.get("dimensions")
    if configured is None:
        return None
    if isinstance(configured, bool) or configured not in allowed:
        raise ProviderError(
            ErrorClass.UNAVAILABLE,
            f"option {option.id} is misconfigured: params.dimensions must be one of "
            f"{', '.join(str(d) for d in allowed)} for {option.model}",
        )
    return int(configured)


def _cohere_input_type(option: LlmOption) -> str:
    value = option.params.get("input_type", DEFAULT_COHERE_INPUT_TYPE)
    if value not in COHERE_INPUT_TYPES:
        raise ProviderError(
            ErrorClass.UNAVAILABLE,
            f"option {option.id} is misconfigured: params.input_type must be one of "
            f"{', '.join(COHERE_INPUT_TYPES)}",
        )
    return str(value)


def plan_calls(option: LlmOption, request: EmbeddingRequest) -> tuple[str, list[_Call]]:
    """The family and the InvokeModel bodies for `request`, in input order."""
    model = option.model or ""
    family = embedding_family(model)
    if family is None:
        raise ProviderError(
            ErrorClass.UNSUPPORTED,
            f"Bedrock model {model or '(none)'} is not an embedding model Switchboard can call "
            "(Titan Text Embeddings, Cohere Embed v3/v4)",
        )
    texts = request.texts()
    if texts is None:
        raise ProviderError(ErrorClass.UNSUPPORTED, f"{model} embeds text only, not token arrays")
    dimensions = _dimensions(option, request, family)
    if family == TITAN_V2:
        extra: dict[str, Any] = {"normalize": True}
        if dimensions is not None:
            extra["dimensions"] = dimensions
        return family, [_Call({"inputText": text, **extra}, 1) for text in texts]
    if family == TITAN_V1:
        return family, [_Call({"inputText": text}, 1) for text in texts]
    shared: dict[str, Any] = {"input_type": _cohere_input_type(option), "embedding_types": ["float"]}
    if family == COHERE_V4 and dimensions is not None:
        shared["output_dimension"] = dimensions
    batches = [texts[i : i + COHERE_BATCH] for i in range(0, len(texts), COHERE_BATCH)]
    return family, [_Call({"texts": batch, **shared}, len(batch)) for batch in batches]


def _vector(value: Any) -> list[float]:
    if not isinstance(value, list) or not value:
        raise ProviderError(ErrorClass.MALFORMED, "Bedrock embedding is not a list of numbers")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise ProviderError(ErrorClass.MALFORMED, "Bedrock embedding is not a list of numbers")
    return [float(x) for x in value]


def _read_body(response: Any) -> Any:
    try:
        body = response["body"]
        raw = body.read() if hasattr(body, "read") else body
        return json.loads(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(ErrorClass.MALFORMED, "Bedrock InvokeModel answer is not JSON") from exc


def _header_tokens(response: Any) -> int:
    headers = (
        ((response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {})
        if isinstance(response, dict)
        else {}
    )
    value = headers.get(TOKEN_COUNT_HEADER)
    try:
        return max(0, int(value)) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def parse_answer(family: str, response: Any, call: _Call) -> _Answer:
    data = _read_body(response)
    if not isinstance(data, dict):
        raise ProviderError(ErrorClass.MALFORMED, "Bedrock InvokeModel answer is not a JSON object")
    if family in (TITAN_V2, TITAN_V1):
        count = data.get("inputTextTokenCount")
        tokens = int(count) if isinstance(count, int) and count >= 0 else _header_tokens(response)
        return _Answer([_vector(data.get("embedding"))], tokens)
    embeddings = data.get("embeddings")
    if isinstance(embeddings, dict):  # `embeddings_by_type`, as `embedding_types` asks
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list) or len(embeddings) != call.count:
        raise ProviderError(
            ErrorClass.MALFORMED, f"Cohere Embed answered {type(embeddings).__name__} for {call.count} texts"
        )
    return _Answer([_vector(item) for item in embeddings], _header_tokens(response))


def _invoke(client_for: Callable[[float], Any], model: str, call: _Call, deadline: float) -> Any:
    """One InvokeModel call with the time left when it starts (a queued call may find none)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProviderError(ErrorClass.TIMEOUT, "Bedrock embeddings: out of time before the call")
    body = json.dumps(call.body, ensure_ascii=False).encode("utf-8")
    return call_bedrock(
        lambda: client_for(max(0.5, left)).invoke_model(
            modelId=model, body=body, contentType="application/json", accept="application/json"
        )
    )


def _run_all(
    client_for: Callable[[float], Any], model: str, family: str, calls: Sequence[_Call], timeout_s: float
) -> list[_Answer]:
    deadline = time.monotonic() + timeout_s
    if len(calls) == 1:
        return [parse_answer(family, _invoke(client_for, model, calls[0], deadline), calls[0])]
    pool = ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CALLS, len(calls)), thread_name_prefix="embed")
    try:
        futures: list[Future[Any]] = [
            pool.submit(_invoke, client_for, model, call, deadline) for call in calls
        ]
        done, pending = wait(
            futures, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_EXCEPTION
        )
        for future in futures:  # the first failure in input order is the answer
            error = future.exception() if future in done else None
            if error is not None:
                raise error
        if pending:
            raise ProviderError(
                ErrorClass.TIMEOUT, f"Bedrock embeddings: {len(pending)} of {len(calls)} calls out of time"
            )
        return [
            parse_answer(family, future.result(), call) for future, call in zip(futures, calls, strict=True)
        ]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def embed_with_invoke_model(
    client_for: Callable[[float], Any], option: LlmOption, request: EmbeddingRequest, timeout_s: float
) -> EmbeddingResult:
    """Embed `request` with the option's Bedrock model; `client_for(timeout_s)` gives the client."""
    if not option.model:
        raise ProviderError(ErrorClass.UNAVAILABLE, f"option {option.id} has no model id")
    family, calls = plan_calls(option, request)
    answers = _run_all(client_for, option.model, family, calls, timeout_s)
    vectors = [vector for answer in answers for vector in answer.vectors]
    if len({len(vector) for vector in vectors}) > 1:
        raise ProviderError(ErrorClass.MALFORMED, "Bedrock embeddings of one request differ in length")
    expected = request.dimensions or option.params.get("dimensions")
    if expected and vectors and len(vectors[0]) != expected:
        raise ProviderError(
            ErrorClass.MALFORMED,
            f"Bedrock embeddings have {len(vectors[0])} dimensions, {expected} were asked",
        )
    return EmbeddingResult(vectors=vectors, prompt_tokens=sum(a.tokens for a in answers), model=option.model)
