"""The chat-completion use case: plan the request, run it through the workflow, shape the answer.

``ChatService.complete`` is three steps. ``prepare`` reads what routing needs (the agent's answer,
the catalogue entries) and calls ``plan``, which is pure: routing snapshot and catalogue in, the
workflow input out. ``run`` does the I/O of the request (claim check, workflow); ``_shape`` turns
the workflow's outcome into the answer or the error.

Around them, when quotas or metering are wired (:mod:`switchboard.accounting`, issue 15):
``prepare`` checks the tenant's limits and budget before routing (429s before any provider call)
and puts the budget status in the evaluation context (``$budget`` in flag rules); every request it
admitted is settled once, by :meth:`ChatService.settle`: the answer's usage metered and reconciled,
or, for a request that got no answer, its token reservation given back.

No boto3 here: routing, options, the workflow and payloads arrive as small interfaces.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from switchboard.accounting import (
    NO_PROVIDER_KINDS,
    Admission,
    AnsweredUsage,
    QuotaGate,
    RequestAccounting,
    UsageMeter,
    WriteRunner,
    run_in_turn,
)
from switchboard.adapter_routing import ADAPTER_HEADER
from switchboard.api_models import (
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    CompletionTokensDetails,
    Embedding,
    EmbeddingList,
    EmbeddingsRequest,
    EmbeddingsUsage,
    PromptTokensDetails,
    ResponseFunctionCall,
    ResponseMessage,
    ResponseToolCall,
    Usage,
)
from switchboard.contract import metrics as metric_names
from switchboard.contract.workflow import timestamp_from_epoch
from switchboard.errors import (
    ApiError,
    ErrorClass,
    Forbidden,
    InvalidRequest,
    RouteNotFound,
    ServiceUnavailable,
    UpstreamFailed,
)
from switchboard.options.model import LlmOption, OptionStatus
from switchboard.profiles import PromptProfile, apply_profile
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    EmbeddingRequest,
    EmbeddingResult,
    TextPart,
    is_embeddings,
)
from switchboard.quotas.model import seconds_left_in_minute
from switchboard.routing.agent_client import RoutingSnapshot, RoutingUnavailable
from switchboard.routing.decision import FORCE_DEGRADED_FLAG as FORCE_DEGRADED_FLAG  # re-exported
from switchboard.routing.decision import KILL_SWITCH_FLAG as KILL_SWITCH_FLAG  # re-exported
from switchboard.routing.decision import ROUTE_KIND_CHAT, ROUTE_KIND_EMBEDDINGS, RouteDecision
from switchboard.state_budget import INPUT_BUDGET_BYTES, json_size
from switchboard.tenancy import tenant_content_key
from switchboard.workflow import WorkflowError, WorkflowRunner

_KIND_PHRASES = {ROUTE_KIND_CHAT: "a chat route", ROUTE_KIND_EMBEDDINGS: "an embeddings route"}

ApiRequest = ChatCompletionRequest | EmbeddingsRequest
"""A request the gateway routes: a chat completion or an embeddings request."""

DEFAULT_RETRY_AFTER_S = 10
MAX_RETRY_AFTER_S = 3600
# The request workflow's attempt before any candidate ran (NoteNoAttemptYet in the ASL).
NO_CANDIDATE_TRIED = "no candidate was tried"
EVENT_UNKNOWN_OPTIONS = metric_names.ROUTE_NAMES_UNKNOWN_OPTIONS
NOT_IN_CATALOGUE = "not in the options catalogue"
_QUOTA_REFUSALS = {
    "rate_limit_exceeded": metric_names.RATE_LIMITED,
    "insufficient_quota": metric_names.BUDGET_EXHAUSTED,
}


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the authorizer established it."""

    tenant: str
    tier: str
    key_id: str | None = None
    allowed_routes: tuple[str, ...] | None = None
    budget: str | None = None
    """The tenant's budget status (``ok``, ``low``, ``exhausted``) once quotas were checked; it goes
    into the evaluation context as ``budget``, so flag rules such as ``(eq $budget "exhausted")``
    route on it. None when quotas are not wired (the key is then absent from the context)."""

    @classmethod
    def from_authorizer(cls, context: Mapping[str, Any]) -> Caller | None:
        """The caller the REQUEST authorizer's context names (its values are strings); None without
        a tenant and tier."""
        tenant, tier = context.get("tenant"), context.get("tier")
        if not tenant or not tier:
            return None
        routes = context.get("allowed_routes") or ""
        allowed = tuple(r for r in str(routes).split(",") if r) or None
        key_id = context.get("key_id")
        return cls(
            tenant=str(tenant), tier=str(tier), key_id=str(key_id) if key_id else None, allowed_routes=allowed
        )

    def may_use(self, route: str) -> bool:
        return self.allowed_routes is None or route in self.allowed_routes

    def context(self, route: str | None, user: str | None) -> dict[str, str]:
        ctx = {"tenant": self.tenant, "tier": self.tier, "userId": user or self.tenant}
        if self.budget:
            ctx["budget"] = self.budget
        if route:
            ctx = {"route": route, **ctx}
        return ctx


class Routing(Protocol):
    def evaluate(self, context: Mapping[str, str]) -> RoutingSnapshot: ...


class ProfileSource(Protocol):
    """The tenant prompt profiles (:class:`switchboard.routing.profile_client.PromptProfilesReader`)."""

    def for_tenant(self, tenant: str) -> PromptProfile: ...


class RouteSlis(Protocol):
    """Per-route SLO measurements (:meth:`switchboard.events.Measurements.route_request`)."""

    def route_request(self, route: str, *, bad: bool, latency_ms: float | None) -> None: ...


class OptionCatalogue(Protocol):
    def get_many(self, ids: Iterable[str]) -> dict[str, LlmOption]: ...


class CircuitReader(Protocol):
    def soonest_reopening(self, option_ids: Iterable[str]) -> datetime | None: ...


class Payloads(Protocol):
    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]: ...

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class ChatAnswer:
    """The answer to one request: a chat completion or an embeddings list, with its headers."""

    completion: ChatCompletion | EmbeddingList
    route: str
    option_id: str
    variant: str | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatPlan:
    """What one request will do, decided before anything runs (:meth:`ChatService.plan`).

    ``workflow_input`` carries the request inline; when ``request_by_reference`` is set, ``run``
    stores it as a claim check first. ``chain`` (the usable primary chain) and ``not_tried`` are
    for the answer: the Retry-After of a 503 and its reason when no candidate could be tried.
    """

    request_id: str
    route: str
    variant: str | None
    routing_source: str
    kind: str
    encoding_format: str
    chain: list[str]
    workflow_input: dict[str, Any]
    request_by_reference: bool = False
    not_tried: str | None = None
    unknown_option_ids: tuple[str, ...] = ()
    options: Mapping[str, LlmOption] = field(default_factory=dict, compare=False)
    """The catalogue entries read for the plan (empty when the catalogue could not be read): a
    streamed request calls the providers itself and needs them (:mod:`switchboard.streaming`)."""
    admission: Admission | None = field(default=None, compare=False)
    """What the quotas decided for this request (set by ``prepare``, not by the pure ``plan``):
    :meth:`ChatService.settle` settles it once the answer (or the failure) is known."""

    def headers(self) -> dict[str, str]:
        """The `x-switchboard-*` headers every answer to this request carries, whatever its outcome."""
        headers = {"x-switchboard-route": self.route, "x-switchboard-request-id": self.request_id}
        if self.variant:
            headers["x-switchboard-variant"] = self.variant
        if self.routing_source != "agent":
            headers["x-switchboard-routing-source"] = self.routing_source
        return headers


CLIENT_ERROR_CODES = {
    ErrorClass.BAD_REQUEST.value: "provider_rejected_request",
    ErrorClass.CONTEXT_TOO_LONG.value: "context_length_exceeded",
    ErrorClass.CONTENT_FILTERED.value: "content_filter",
    ErrorClass.UNSUPPORTED.value: "unsupported_feature",
}


class ChatService:
    def __init__(
        self,
        *,
        routing: Routing,
        options: OptionCatalogue,
        runner: WorkflowRunner,
        payloads: Payloads,
        circuits: CircuitReader | None = None,
        budget_ms: int = 25000,
        stream_budget_ms: int = 840000,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        quotas: QuotaGate | None = None,
        metering: UsageMeter | None = None,
        run_writes: WriteRunner = run_in_turn,
        profiles: ProfileSource | None = None,
        slis: RouteSlis | None = None,
    ) -> None:
        """``quotas`` and ``metering`` are optional (issue 15): without them nothing is limited or
        metered; ``run_writes`` runs the after-answer writes (concurrently in the gateway).
        ``profiles`` (tenant prompt profiles, issue 16) are optional too: without them every tenant
        may use every route and requests go as sent. ``slis`` receives each planned request's route
        SLO measurements (the gateway passes its metrics sink)."""
        self._routing = routing
        self._options = options
        self._runner = runner
        self._payloads = payloads
        self._circuits = circuits
        self._budget_ms = budget_ms
        self._stream_budget_ms = stream_budget_ms
        self._clock = clock
        self._on_event = on_event or (lambda _name, _data: None)
        self._profiles = profiles
        self._slis = slis
        self._accounting = (
            RequestAccounting(quotas=quotas, meter=metering, run_writes=run_writes)
            if quotas is not None or metering is not None
            else None
        )

    @property
    def runner(self) -> WorkflowRunner:
        """How this service runs the request workflow (read-only: wiring checks in tests)."""
        return self._runner

    @property
    def options(self) -> OptionCatalogue:
        """The options catalogue it reads (read-only: wiring checks in tests)."""
        return self._options

    def list_routes(self, caller: Caller) -> list[str]:
        return list(self.route_kinds(caller))

    def route_kinds(self, caller: Caller) -> dict[str, str]:
        """The routes this caller may use, each with its kind (`chat` or `embeddings`)."""
        snapshot = self._routes(caller.context(None, None))
        profile = self._profile(caller)
        return {
            name: str(snapshot.flags[name].get("kind") or ROUTE_KIND_CHAT)
            for name in snapshot.route_names()
            if caller.may_use(name)
            and (profile is None or profile.may_use(name))
            and snapshot.flags[name].get("enabled", True)
        }

    def _profile(self, caller: Caller) -> PromptProfile | None:
        """The caller's prompt profile (the reader falls back on its own: last-known-good, or the
        built-in permissive default when it never read one); None without profiles."""
        return self._profiles.for_tenant(caller.tenant) if self._profiles is not None else None

    def _routes(self, context: Mapping[str, str]) -> RoutingSnapshot:
        """The evaluated flags; a 503 (not a 500) when routing is unknowable for now."""
        try:
            return self._routing.evaluate(context)
        except RoutingUnavailable as exc:
            self._on_event(metric_names.ROUTING_UNAVAILABLE, {})
            raise ServiceUnavailable(
                "Routing configuration is unavailable right now; retry shortly.",
                code="routing_unavailable",
                retry_after_s=DEFAULT_RETRY_AFTER_S,
            ) from exc

    def _catalogue(self, option_ids: Iterable[str]) -> Mapping[str, LlmOption] | None:
        """The catalogue entries of these options; ``None`` when the catalogue cannot be read."""
        try:
            return self._options.get_many(option_ids)
        except Exception:
            self._on_event(metric_names.OPTIONS_CATALOGUE_UNAVAILABLE, {})
            return None

    def complete(self, body: ChatCompletionRequest, caller: Caller, request_id: str) -> ChatAnswer:
        """Plan the request (after reading what the plan needs), run it, shape the outcome."""
        started = self._clock()
        return self._answered(self.prepare(body, caller, request_id), started)

    def embed(self, body: EmbeddingsRequest, caller: Caller, request_id: str) -> ChatAnswer:
        """The same for `POST /v1/embeddings`: same routing, workflow, breaker and degrade policy."""
        started = self._clock()
        return self._answered(self.prepare(body, caller, request_id), started)

    def _answered(self, plan: ChatPlan, started: float) -> ChatAnswer:
        """Run and shape the plan, then settle it: the answer's usage, or nothing on an error.

        The route's SLO measurements count every planned request: bad when it ends in a 5xx (or
        anything unexpected), with its latency when it was not; a 4xx is the request's own and good.
        """
        try:
            answer = self._shape(self.run(plan), plan)
        except BaseException as exc:
            self.settle(plan, None)
            status = getattr(exc, "status", 500)
            self._route_sli(plan.route, bad=not (isinstance(status, int) and status < 500), latency_ms=None)
            raise
        self.settle(plan, answered_usage(answer))
        self._route_sli(plan.route, bad=False, latency_ms=(self._clock() - started) * 1000)
        return answer

    def _route_sli(self, route: str, *, bad: bool, latency_ms: float | None) -> None:
        if self._slis is None:
            return
        with suppress(Exception):  # observability never breaks the request path
            self._slis.route_request(route, bad=bad, latency_ms=latency_ms)

    def settle(self, plan: ChatPlan, usage: AnsweredUsage | None) -> None:
        """Meter the answer's usage and reconcile the tenant's reservation (``usage`` None: the
        request got no answer, its reservation is given back). Once per plan; never raises."""
        if self._accounting is not None and plan.admission is not None:
            self._accounting.settle(plan.admission, route=plan.route, usage=usage)

    def prepare(
        self, body: ApiRequest, caller: Caller, request_id: str, *, streaming: bool = False
    ) -> ChatPlan:
        """Read what :meth:`plan` needs, then plan: what the gateway does before the workflow runs.

        The reads are the agent's answer for this caller (in AWS a round trip to the AppConfig
        extension on localhost; locally, to the agent emulator) and the catalogue entries of the
        options the route names (the options store's cache, DynamoDB when it is stale). A request
        refused for itself (streaming, a route the key may not use) is refused before any read;
        ``streaming`` says the caller serves `stream: true` itself (:mod:`switchboard.streaming`):
        the workflow cannot stream, so without it a streamed request is refused.
        """
        _admit(body, caller, streaming=streaming)
        admission = self._admission(body, caller)
        if admission is not None and admission.budget is not None:
            caller = replace(caller, budget=admission.budget)
        try:
            snapshot = self._routes(caller.context(body.model, body.user))
            decision = snapshot.decision(body.model)
            wanted = decision.option_ids() if decision is not None and decision.enabled else ()
            catalogue = self._catalogue(wanted) if wanted else {}
            plan = self.plan(
                body,
                caller,
                request_id,
                snapshot=snapshot,
                catalogue=catalogue,
                now=self._clock(),
                streaming=streaming,
                profile=self._profile(caller),
            )
        except BaseException:
            if self._accounting is not None and admission is not None:
                self._accounting.settle(admission, route=body.model, usage=None)
            raise
        if plan.unknown_option_ids:
            self._on_event(
                EVENT_UNKNOWN_OPTIONS, {"route": plan.route, "option_ids": list(plan.unknown_option_ids)}
            )
        return replace(plan, admission=admission)

    def _admission(self, body: ApiRequest, caller: Caller) -> Admission | None:
        """The tenant's quotas, checked before routing: raises the 429s (rate limit, a ``reject``
        budget exhausted) before any provider is called; None when quotas and metering are off."""
        if self._accounting is None:
            return None
        request = (
            body.to_embedding_request() if isinstance(body, EmbeddingsRequest) else body.to_chat_request()
        )
        try:
            return self._accounting.admit(tenant=caller.tenant, key_id=caller.key_id, request=request)
        except ApiError as exc:  # the quotas' 429s, counted for the dashboard's limits row
            refused = _QUOTA_REFUSALS.get(exc.code or "")
            if refused is not None:
                self._on_event(refused, {"tenant": caller.tenant, "route": body.model[:64]})
            raise

    def plan(
        self,
        body: ApiRequest,
        caller: Caller,
        request_id: str,
        *,
        snapshot: RoutingSnapshot,
        catalogue: Mapping[str, LlmOption] | None,
        now: float,
        streaming: bool = False,
        profile: PromptProfile | None = None,
    ) -> ChatPlan:
        """The workflow input for this request, from the routing snapshot and the catalogue: pure.

        No I/O, no clock, no events: everything arrives as arguments (``catalogue`` is ``None`` when
        it could not be read), so the same inputs always give the same plan. Raises the request's
        own errors: streaming (400), a route the key may not use (403), a route that does not exist
        or is switched off (404), a route of the other kind (400: a chat route on /v1/embeddings),
        a route the tenant's prompt profile does not allow (403). ``profile`` (the tenant's prompt
        profile) is applied to a chat request: its system prompt prefix and default parameters,
        never overriding what the client sent (:func:`switchboard.profiles.apply_profile`).
        """
        _admit(body, caller, streaming=streaming)
        route = body.model
        decision = snapshot.decision(route)
        if decision is None or not decision.enabled:
            raise RouteNotFound(
                f"The model `{route}` does not exist or you do not have access to it. "
                "`model` names a Switchboard route; GET /v1/models lists yours.",
                param="model",
            )
        kind = ROUTE_KIND_EMBEDDINGS if isinstance(body, EmbeddingsRequest) else ROUTE_KIND_CHAT
        if decision.kind != kind:
            endpoint = "/v1/embeddings" if decision.kind == ROUTE_KIND_EMBEDDINGS else "/v1/chat/completions"
            raise InvalidRequest(
                f"The route `{route}` is {_KIND_PHRASES[decision.kind]}: call it on POST {endpoint}.",
                code="wrong_route_kind",
                param="model",
            )
        if profile is not None and not profile.may_use(route):
            raise Forbidden(
                f"Your tenant's profile does not allow the route `{route}`. GET /v1/models lists yours.",
                param="model",
            )
        killed = _operator_flag(snapshot, KILL_SWITCH_FLAG)
        forced = route in (_operator_flag(snapshot, FORCE_DEGRADED_FLAG).get("routes") or ())
        fallback_ids = (
            (decision.context_fallback,) if decision.context_fallback and kind == ROUTE_KIND_CHAT else ()
        )
        (chain, smaller_chain, fallback), dropped = _usable(
            (decision.chain, decision.smaller_chain, fallback_ids), killed, catalogue
        )
        payload = self._workflow_input(
            request_id,
            route,
            decision,
            tenant=caller.tenant,
            chains=(chain, smaller_chain, fallback),
            request=body.to_embedding_request()
            if isinstance(body, EmbeddingsRequest)
            else _profiled(profile, body.to_chat_request()),
            forced_degraded=forced,
            now=now,
            budget_ms=self._stream_budget_ms if streaming else self._budget_ms,
        )
        return ChatPlan(
            request_id=request_id,
            route=route,
            variant=decision.variant,
            routing_source=snapshot.source,
            kind=kind,
            encoding_format=body.encoding_format if isinstance(body, EmbeddingsRequest) else "float",
            chain=chain,
            workflow_input=payload,
            # The whole input must fit its share of the workflow state (state_budget), not the
            # request alone: over it, the request travels by claim check (see run).
            request_by_reference=json_size(payload) > INPUT_BUDGET_BYTES,
            not_tried=_why_nothing_was_tried(decision.chain, chain, dropped, forced),
            unknown_option_ids=tuple(sorted(oid for oid, why in dropped.items() if why == NOT_IN_CATALOGUE)),
            options=dict(catalogue or {}),
        )

    def run(self, plan: ChatPlan) -> dict[str, Any]:
        """Run the plan through the request workflow; its output (the outcome to shape).

        A request too large for the workflow state is stored first and passed by reference.
        """
        payload = plan.workflow_input
        if plan.request_by_reference:
            reference = self._payloads.wrap(
                f"requests/{plan.request_id}.json", payload["request"], inline_limit=0
            )
            payload = {**payload, "request": reference}
        try:
            result = self._runner.run(payload, name=f"{plan.route}-{plan.request_id}"[:80])
        except WorkflowError as exc:
            raise UpstreamFailed(
                f"The request workflow could not run (request id {plan.request_id}). Try again.",
                code="workflow_unavailable",
            ) from exc
        if not result.succeeded or result.output is None:
            self._on_event(metric_names.WORKFLOW_FAILED, {"status": result.status, "error": result.error})
            raise UpstreamFailed(
                f"The request workflow ended with {result.status} (request id {plan.request_id}).",
                code="workflow_failed",
            )
        return result.output

    def _workflow_input(
        self,
        request_id: str,
        route: str,
        decision: RouteDecision,
        *,
        tenant: str,
        chains: tuple[list[str], list[str], list[str]],
        request: ChatRequest | EmbeddingRequest,
        forced_degraded: bool,
        now: float,
        budget_ms: int,
    ) -> dict[str, Any]:
        chain, smaller_chain, fallback = chains
        cache_ttl_s = int(decision.cache_ttl_s or 0)
        degrade = list(decision.degrade) or ["reject"]
        if isinstance(request, EmbeddingRequest):
            # A static text is no embedding: the step is skipped (the flag validators refuse it).
            degrade = [step for step in degrade if step != "static"] or ["reject"]
        return {
            "request_id": request_id,
            "tenant": tenant,
            "route": route,
            "variant": decision.variant,
            "chain": chain,
            "smaller_chain": smaller_chain,
            "degrade": degrade,
            "static_answer": decision.static_answer,
            "context_fallback": fallback[0] if fallback else None,
            "force_degraded": forced_degraded,
            "skip_unsupported": decision.skip_unsupported,
            "cache_key": (
                embeddings_cache_key(tenant=tenant, route=route, request=request)
                if isinstance(request, EmbeddingRequest)
                else cache_key(tenant=tenant, route=route, request=request)
            ),
            "cache_ttl_s": cache_ttl_s,
            "cache_expires_at": str(int(now) + cache_ttl_s),
            "request": request.to_dict(),
            "now": iso_seconds(now),
            "now_epoch_s": int(now),
            "deadline_ms": int(now * 1000) + budget_ms,
        }

    def _shape(self, output: dict[str, Any], plan: ChatPlan) -> ChatAnswer:
        """The workflow's outcome as the client's answer, or as the error it gets (with headers)."""
        route, request_id = plan.route, plan.request_id
        outcome = output.get("outcome")
        headers = plan.headers()
        if outcome == "answered":
            option_id = str(output["option_id"])
            phase = output.get("phase", "primary")
            if phase == "smaller_model":
                headers["x-switchboard-degraded"] = "smaller_model"
                self._on_event(f"{metric_names.DEGRADED_ANSWER_PREFIX}smaller_model", {"route": route})
            elif phase == "context_fallback":
                headers["x-switchboard-fallback"] = "context"
            adapter = output.get("adapter")
            if isinstance(adapter, str) and adapter:  # issue 16: which tenant adapter served
                headers[ADAPTER_HEADER] = adapter
            result = self._result(self._payloads.unwrap(output["result"]))
            return self._answer(result, plan, option_id, headers)
        if outcome == "degraded":
            kind = str(output.get("kind"))
            headers["x-switchboard-degraded"] = kind
            self._on_event(f"{metric_names.DEGRADED_ANSWER_PREFIX}{kind}", {"route": route})
            if kind == "cache":
                # An answer too large for the state was cached as its claim check (the object
                # outlives the cache entry: the bucket keeps objects a day, the TTL is at most a day).
                result = self._result(self._payloads.unwrap(output["result"]))
                option_id = str(output.get("option_id") or "cache")
            else:
                result = ChatResult(
                    text=str(output.get("text", "")),
                    finish_reason="stop",
                    prompt_tokens=0,
                    completion_tokens=0,
                )
                option_id = kind
            return self._answer(result, plan, option_id, headers)
        error = output.get("error") or {}
        error_class = str(error.get("error_class", "unavailable"))
        if outcome == "client_error":
            headers["x-switchboard-option"] = str(output.get("option_id", ""))
            raise InvalidRequest(
                f"The model rejected the request ({error_class}): {error.get('message', '')}".strip(),
                code=CLIENT_ERROR_CODES.get(error_class, "provider_rejected_request"),
                headers=headers,
            )
        if error_class == ErrorClass.UNSUPPORTED.value:
            # Every candidate tried lacked what the request needs: the request, not the fleet.
            raise InvalidRequest(
                f"No model behind route `{route}` can do what this request needs: "
                f"{error.get('message', '')}".strip(),
                code="unsupported_feature",
                headers=headers,
            )
        self._on_event(metric_names.REJECTED_NO_HEALTHY_OPTION, {"route": route, "error_class": error_class})
        if error.get("message") == NO_CANDIDATE_TRIED:
            why = plan.not_tried or "every option's circuit is open"
            message = f"No model behind route `{route}` could be tried: {why}."
        else:
            message = f"No model behind route `{route}` could answer right now (last error: {error_class})."
        raise ServiceUnavailable(
            f"{message} Retry later; request id {request_id}.",
            retry_after_s=self.retry_after(plan.chain, last_error_class=error_class),
            headers=headers,
        )

    @staticmethod
    def _result(data: dict[str, Any]) -> ChatResult | EmbeddingResult:
        return EmbeddingResult.from_dict(data) if is_embeddings(data) else ChatResult.from_dict(data)

    def _answer(
        self, result: ChatResult | EmbeddingResult, plan: ChatPlan, option_id: str, headers: dict[str, str]
    ) -> ChatAnswer:
        route, variant, request_id = plan.route, plan.variant, plan.request_id
        headers["x-switchboard-option"] = option_id
        if isinstance(result, EmbeddingResult):
            listing = embedding_list(result, route, plan.encoding_format)
            return ChatAnswer(listing, route, option_id, variant, headers)
        completion = ChatCompletion(
            id=f"chatcmpl-{request_id}",
            created=int(self._clock()),
            model=route,
            choices=[Choice(message=response_message(result), finish_reason=result.finish_reason)],
            usage=usage_of(result),
            system_fingerprint=f"switchboard:{option_id}",
        )
        return ChatAnswer(completion, route, option_id, variant, headers)

    def retry_after(self, chain: list[str], *, last_error_class: str | None = None) -> int:
        """Seconds until the soonest circuit of the chain reopens for probing (a default without one).

        When the last candidate was skipped as saturated (its `capacity` used up this minute), the
        seconds left in the minute instead: that is when its capacity comes back.
        """
        if last_error_class == ErrorClass.SATURATED.value:
            return seconds_left_in_minute(datetime.fromtimestamp(self._clock(), UTC))
        if self._circuits is None or not chain:
            return DEFAULT_RETRY_AFTER_S
        try:
            soonest = self._circuits.soonest_reopening(chain)
        except Exception:
            return DEFAULT_RETRY_AFTER_S
        if soonest is None:
            return DEFAULT_RETRY_AFTER_S
        seconds = int((soonest.timestamp() - self._clock()) + 0.999)
        return max(1, min(seconds, MAX_RETRY_AFTER_S))


def embedding_list(result: EmbeddingResult, route: str, encoding_format: str) -> EmbeddingList:
    """OpenAI's embeddings answer; `base64` is the vector as little-endian float32 bytes (what the
    official SDKs decode, and ask for by default)."""
    data = [
        Embedding(index=index, embedding=_base64_floats(vector) if encoding_format == "base64" else vector)
        for index, vector in enumerate(result.vectors)
    ]
    usage = EmbeddingsUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens)
    return EmbeddingList(data=data, model=route, usage=usage)


def _base64_floats(vector: list[float]) -> str:
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def response_message(result: ChatResult) -> ResponseMessage:
    """The answer's message: `content` null when the model only called tools (as OpenAI sends it)."""
    calls = [
        ResponseToolCall(id=call.id, function=ResponseFunctionCall(name=call.name, arguments=call.arguments))
        for call in result.tool_calls
    ]
    content = None if calls and not result.text else result.text
    return ResponseMessage(content=content, tool_calls=calls or None)


def answered_usage(answer: ChatAnswer) -> AnsweredUsage:
    """The usage the client sees in this answer, for metering; a static or cached answer is
    metered under its degrade kind, as no provider was called for it."""
    degraded = answer.headers.get("x-switchboard-degraded")
    no_provider = degraded in NO_PROVIDER_KINDS
    option_id = str(degraded) if no_provider else answer.option_id
    usage = answer.completion.usage
    if isinstance(usage, EmbeddingsUsage):
        return AnsweredUsage(option_id, usage.prompt_tokens, 0, 0, provider_called=not no_provider)
    details = usage.prompt_tokens_details
    return AnsweredUsage(
        option_id,
        usage.prompt_tokens,
        usage.completion_tokens,
        details.cached_tokens if details is not None else 0,
        provider_called=not no_provider,
    )


def usage_of(result: ChatResult) -> Usage:
    """Token counts, with the cached and reasoning details when the provider reported them."""
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
        prompt_tokens_details=(
            PromptTokensDetails(cached_tokens=result.cached_tokens)
            if result.cached_tokens is not None
            else None
        ),
        completion_tokens_details=(
            CompletionTokensDetails(reasoning_tokens=result.reasoning_tokens)
            if result.reasoning_tokens is not None
            else None
        ),
    )


def _admit(body: ApiRequest, caller: Caller, *, streaming: bool = False) -> None:
    """Refuse what the request asks for itself, before routing: streaming where the caller does not
    serve it (the workflow answers whole), a route the key may not use."""
    if isinstance(body, ChatCompletionRequest) and body.stream and not streaming:
        raise InvalidRequest(
            "Streaming is not offered yet: send the request with `stream` false or absent.",
            code="stream_not_supported",
            param="stream",
        )
    if not caller.may_use(body.model):
        raise Forbidden(f"This API key may not use the route `{body.model}`.", param="model")


def _profiled(profile: PromptProfile | None, request: ChatRequest) -> ChatRequest:
    return apply_profile(profile, request) if profile is not None else request


def _operator_flag(snapshot: RoutingSnapshot, name: str) -> Mapping[str, Any]:
    value = snapshot.flags.get(name) or {}
    return value if value.get("enabled") else {}


def _usable(
    chains: Iterable[tuple[str, ...]],
    killed: Mapping[str, Any],
    catalogue: Mapping[str, LlmOption] | None,
) -> tuple[list[list[str]], dict[str, str]]:
    """Drop retired, unknown and operator-killed options when the catalogue can tell.

    Returns the usable chains and, for each dropped id, why it was dropped (the 503 says it).
    Unknown ids mean the flag document names an option the catalogue lacks (AWS validates documents
    against the catalogue at deployment, but an option can be deleted after): the caller reports
    them. With the catalogue unreadable (``None``) only the kill switch applies: the invoke step
    checks each option itself, so a catalogue outage never stops traffic.
    """
    chains = [tuple(chain) for chain in chains]
    killed_ids = set(killed.get("options") or ())
    killed_providers = set(killed.get("providers") or ())
    dropped: dict[str, str] = {}
    for oid in (oid for chain in chains for oid in chain):
        option = catalogue.get(oid) if catalogue is not None else None
        if oid in killed_ids:
            dropped[oid] = "switched off by the kill switch"
        elif catalogue is None:
            continue
        elif option is None:
            dropped[oid] = NOT_IN_CATALOGUE
        elif option.status is OptionStatus.RETIRED:
            dropped[oid] = "retired"
        elif option.provider.value in killed_providers:
            dropped[oid] = f"provider {option.provider.value} switched off by the kill switch"
    return [[oid for oid in chain if oid not in dropped] for chain in chains], dropped


def _why_nothing_was_tried(
    configured: tuple[str, ...], usable: list[str], dropped: Mapping[str, str], forced: bool
) -> str | None:
    """Why the workflow had no candidate to try, in words for the 503 (None: it had some)."""
    if forced:
        return "an operator forced the route into degraded mode (force-degraded)"
    if usable:
        return None
    return "; ".join(f"`{oid}` {dropped.get(oid, 'unusable')}" for oid in configured)


def iso_seconds(epoch_s: float) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: the one timestamp form both AWS and moto compare in Choice states."""
    return timestamp_from_epoch(epoch_s)


def cache_key(*, tenant: str, route: str, request: ChatRequest) -> str:
    """Same tenant + same route + same normalized conversation + same knobs → same cached answer.

    The conversation is every message's role, text (whitespace collapsed), images (their bytes),
    tool calls and tool results; the knobs are sampling, tools, tool choice and response format:
    an answer cached for one tool set or schema is never served to a request with another.
    An answer is tenant data: tenant B sending tenant A's messages never gets A's key (and the
    workflow also checks the `tenant` stored with the item before serving it).
    """
    wire = request.to_dict()
    normalized = {
        "messages": [_normalized_message(m) for m in request.messages],
        "params": [request.max_tokens, request.temperature, request.top_p, request.stop],
        "tools": [
            wire.get(key) for key in ("tools", "tool_choice", "parallel_tool_calls", "response_format")
        ],
    }
    return tenant_content_key(tenant=tenant, scope=route, content=normalized)


def _normalized_message(message: ChatMessage) -> list[Any]:
    parts: list[Any] = [
        " ".join(part.text.split()) if isinstance(part, TextPart) else [part.media_type, part.data_base64]
        for part in message.parts
    ]
    calls = [[call.name, call.arguments] for call in message.tool_calls]
    return [message.role, parts, calls, message.tool_call_id]


def embeddings_cache_key(*, tenant: str, route: str, request: EmbeddingRequest) -> str:
    """Same tenant + route + inputs + dimensions → same cached vectors (exact text: no collapsing,
    whitespace can change an embedding)."""
    content = {"embeddings": request.to_dict()["input"], "dimensions": request.dimensions}
    return tenant_content_key(tenant=tenant, scope=route, content=content)
