"""The chat-completion use case: route, run the chain through the workflow, shape the answer.

No boto3 here: routing, options, the workflow and payloads arrive as small interfaces.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.api_models import ChatCompletion, ChatCompletionRequest, Choice, ResponseMessage, Usage
from switchboard.errors import (
    ErrorClass,
    Forbidden,
    InvalidRequest,
    RouteNotFound,
    ServiceUnavailable,
    UpstreamFailed,
)
from switchboard.options.model import LlmOption, OptionStatus
from switchboard.providers.base import ChatResult
from switchboard.routing.agent_client import RoutingSnapshot
from switchboard.workflow import WorkflowError, WorkflowRunner

DEFAULT_RETRY_AFTER_S = 10


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the authorizer established it."""

    tenant: str
    tier: str
    key_id: str | None = None
    allowed_routes: tuple[str, ...] | None = None

    def may_use(self, route: str) -> bool:
        return self.allowed_routes is None or route in self.allowed_routes

    def context(self, route: str | None, user: str | None) -> dict[str, str]:
        ctx = {"tenant": self.tenant, "tier": self.tier, "userId": user or self.tenant}
        if route:
            ctx = {"route": route, **ctx}
        return ctx


class Routing(Protocol):
    def evaluate(self, context: Mapping[str, str]) -> RoutingSnapshot: ...


class OptionCatalogue(Protocol):
    def get_many(self, ids: Iterable[str]) -> dict[str, LlmOption]: ...


class Payloads(Protocol):
    def wrap(self, key: str, value: dict[str, Any]) -> dict[str, Any]: ...

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class ChatAnswer:
    completion: ChatCompletion
    route: str
    option_id: str
    variant: str | None
    headers: dict[str, str] = field(default_factory=dict)


_CLIENT_ERROR_CODES = {
    ErrorClass.BAD_REQUEST.value: "provider_rejected_request",
    ErrorClass.CONTEXT_TOO_LONG.value: "context_length_exceeded",
    ErrorClass.CONTENT_FILTERED.value: "content_filter",
}


class ChatService:
    def __init__(
        self,
        *,
        routing: Routing,
        options: OptionCatalogue,
        runner: WorkflowRunner,
        payloads: Payloads,
        budget_ms: int = 25000,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._routing = routing
        self._options = options
        self._runner = runner
        self._payloads = payloads
        self._budget_ms = budget_ms
        self._clock = clock
        self._on_event = on_event or (lambda _name, _data: None)

    def list_routes(self, caller: Caller) -> list[str]:
        snapshot = self._routing.evaluate(caller.context(None, None))
        return [
            name
            for name in snapshot.route_names()
            if caller.may_use(name) and snapshot.flags[name].get("enabled", True)
        ]

    def _usable_chain(self, chain: tuple[str, ...]) -> list[str]:
        """Drop retired or unknown options when the catalogue can tell; otherwise keep the chain."""
        try:
            known = self._options.get_many(chain)
        except Exception:  # catalogue down and never loaded: let the invoke step decide per option
            self._on_event("OptionsCatalogueUnavailable", {})
            return list(chain)
        return [oid for oid in chain if oid in known and known[oid].status is not OptionStatus.RETIRED]

    def complete(self, body: ChatCompletionRequest, caller: Caller, request_id: str) -> ChatAnswer:
        if body.stream:
            raise InvalidRequest(
                "Streaming is not offered yet: send the request with `stream` false or absent.",
                code="stream_not_supported",
                param="stream",
            )
        route = body.model
        if not caller.may_use(route):
            raise Forbidden(f"This API key may not use the route `{route}`.", param="model")
        snapshot = self._routing.evaluate(caller.context(route, body.user))
        decision = snapshot.decision(route)
        if decision is None or not decision.enabled:
            raise RouteNotFound(
                f"The model `{route}` does not exist or you do not have access to it. "
                "`model` names a Switchboard route; GET /v1/models lists yours.",
                param="model",
            )
        chain = self._usable_chain(decision.chain)
        now_ms = int(self._clock() * 1000)
        request = self._payloads.wrap(f"requests/{request_id}.json", body.to_chat_request().to_dict())
        payload = {
            "request_id": request_id,
            "route": route,
            "variant": decision.variant,
            "chain": chain,
            "request": request,
            "deadline_ms": now_ms + self._budget_ms,
        }
        try:
            result = self._runner.run(payload, name=f"{route}-{request_id}"[:80])
        except WorkflowError as exc:
            raise UpstreamFailed(
                f"The request workflow could not run (request id {request_id}). Try again.",
                code="workflow_unavailable",
            ) from exc
        if not result.succeeded or result.output is None:
            self._on_event("WorkflowFailed", {"status": result.status, "error": result.error})
            raise UpstreamFailed(
                f"The request workflow ended with {result.status} (request id {request_id}).",
                code="workflow_failed",
            )
        return self._shape(result.output, route, decision.variant, request_id, snapshot.source)

    def _shape(
        self, output: dict[str, Any], route: str, variant: str | None, request_id: str, source: str
    ) -> ChatAnswer:
        outcome = output.get("outcome")
        headers = {"x-switchboard-route": route, "x-switchboard-request-id": request_id}
        if variant:
            headers["x-switchboard-variant"] = variant
        if source != "agent":
            headers["x-switchboard-routing-source"] = source
        if outcome == "answered":
            raw = self._payloads.unwrap(output["result"])
            result = ChatResult.from_dict(raw)
            option_id = str(output["option_id"])
            headers["x-switchboard-option"] = option_id
            completion = ChatCompletion(
                id=f"chatcmpl-{request_id}",
                created=int(self._clock()),
                model=route,
                choices=[
                    Choice(message=ResponseMessage(content=result.text), finish_reason=result.finish_reason)
                ],
                usage=Usage(
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    total_tokens=result.prompt_tokens + result.completion_tokens,
                ),
                system_fingerprint=f"switchboard:{option_id}",
            )
            return ChatAnswer(completion, route, option_id, variant, headers)
        error = output.get("error") or {}
        error_class = str(error.get("error_class", "unavailable"))
        if outcome == "client_error":
            headers["x-switchboard-option"] = str(output.get("option_id", ""))
            raise InvalidRequest(
                f"The model rejected the request ({error_class}): {error.get('message', '')}".strip(),
                code=_CLIENT_ERROR_CODES.get(error_class, "provider_rejected_request"),
                headers=headers,
            )
        raise ServiceUnavailable(
            f"No model behind route `{route}` could answer right now (last error: {error_class}). "
            f"Retry later; request id {request_id}.",
            retry_after_s=DEFAULT_RETRY_AFTER_S,
            headers=headers,
        )


def new_request_id() -> str:
    return uuid.uuid4().hex
