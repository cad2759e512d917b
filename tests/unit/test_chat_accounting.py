"""Quotas and metering in the request path (issue 15), with in-memory stores behind the real use cases.

`TenantQuotas` over the in-memory usage counters and `Metering` over the in-memory usage store,
both on a manual clock; `ChatService` and `StreamService` as the gateway builds them, with scripted
workflow outcomes and provider streams.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from switchboard.accounting import ConcurrentWrites, prompt_chars, run_in_turn
from switchboard.api_models import ChatCompletionRequest, EmbeddingsRequest
from switchboard.chat import Caller, ChatService
from switchboard.contract import metrics as metric_names
from switchboard.errors import RouteNotFound, ServiceUnavailable
from switchboard.events import RecordingEventSink
from switchboard.metering import GroupBy, InMemoryUsageStore, Metering, UsageTotals
from switchboard.options.model import LlmOption, Price
from switchboard.providers.base import (
    ChatMessage,
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    StreamDeadlines,
    StreamDelta,
    StreamUsage,
    TextPart,
)
from switchboard.quotas.model import Budget, TenantLimits
from switchboard.quotas.service import (
    BudgetExhausted,
    QuotaSettingsStore,
    RateLimitExceeded,
    TenantQuotas,
    tenant_pk,
    window_sk,
)
from switchboard.routing.agent_client import RoutingSnapshot
from switchboard.streaming import StreamService
from switchboard.workflow import WorkflowResult
from switchboard_local.flag_evaluation import evaluate_document
from tests.fakes import InMemoryOptions, InMemoryPayloads, ManualClock, ScriptedRunner
from tests.fakes.usage_counters import InMemoryUsageCounters

NOW = datetime(2026, 11, 30, 9, 30, 20, tzinfo=UTC)
PRICE = Price(input=3.0, output=15.0, cached_input=0.3)
FLAGS = {
    "version": "1",
    "flags": {"chat": {"name": "chat"}, "embed": {"name": "embed"}},
    "values": {
        "chat": {
            "_variants": [
                {
                    "name": "budget-exhausted",
                    "enabled": True,
                    "rule": '(eq $budget "exhausted")',
                    "attributeValues": {"chain": ["cheap"], "degrade": ["reject"]},
                },
                {
                    "name": "default",
                    "enabled": True,
                    "attributeValues": {
                        "chain": ["a"],
                        "degrade": ["static", "reject"],
                        "static_answer": "busy",
                    },
                },
            ]
        },
        "embed": {"enabled": True, "kind": "embeddings", "chain": ["e"], "degrade": ["reject"]},
    },
}
ANSWERED = {
    "outcome": "answered",
    "option_id": "a",
    "phase": "primary",
    "result": {
        "text": "four words right here",
        "finish_reason": "stop",
        "prompt_tokens": 7,
        "completion_tokens": 4,
        "cached_tokens": 2,
    },
}
BODY = {"model": "chat", "messages": [{"role": "user", "content": "Say hello to everyone here"}]}


class EvaluatingRouting:
    """The flag document evaluated per request context, as the AppConfig agent does."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.contexts: list[dict[str, str]] = []

    def evaluate(self, context: Mapping[str, str]) -> RoutingSnapshot:
        self.contexts.append(dict(context))
        return RoutingSnapshot(flags=evaluate_document(self.document, context), source="agent")


def _option(oid: str, **extra: Any) -> LlmOption:
    return LlmOption.from_dict({"id": oid, "provider": "mock", "model": "m", "timeout_ms": 5000, **extra})


class World:
    """The gateway's use cases over in-memory stores; `counters` and `usage` hold what was written."""

    def __init__(self, output: Any = ANSWERED, *, quotas: bool = True, metering: bool = True) -> None:
        self.clock = ManualClock(NOW)
        self.counters = InMemoryUsageCounters()
        self.usage = InMemoryUsageStore()
        self.events = RecordingEventSink()
        self.settings = QuotaSettingsStore(self.counters)
        self.quotas = TenantQuotas(self.counters, clock=self.clock.utcnow, monotonic=self.clock)
        prices = {"a": PRICE, "cheap": Price(input=0.1, output=0.2), "e": Price(input=0.02, output=0.0)}
        self.metering = Metering(self.usage, price_of=prices.get, clock=self.clock.utcnow)
        self.routing = EvaluatingRouting(FLAGS)
        self.runner = ScriptedRunner(output)
        self.streams: dict[str, list[StreamDelta | Exception]] = {}
        self.service = ChatService(
            routing=self.routing,
            options=InMemoryOptions([_option("a"), _option("cheap"), _option("e")]),
            runner=self.runner,
            payloads=InMemoryPayloads(),
            clock=self.clock,
            quotas=self.quotas if quotas else None,
            metering=self.metering if metering else None,
            on_event=self.events,
        )
        self.stream_service = StreamService(
            planner=self.service,
            circuits=None,
            providers=lambda kind: self,
            payloads=InMemoryPayloads(),
            events=self.events,
            clock=self.clock,
            monotonic=self.clock,
        )

    # the provider of streamed requests
    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        for item in self.streams.get(option.id, []):
            if isinstance(item, Exception):
                raise item
            yield item

    def complete(self, caller: Caller, **body: Any) -> Any:
        return self.service.complete(ChatCompletionRequest.model_validate({**BODY, **body}), caller, "r1")

    def open_stream(self, caller: Caller, **body: Any) -> list[bytes]:
        request = ChatCompletionRequest.model_validate({**BODY, "stream": True, **body})
        return list(self.stream_service.open(request, caller, "r2").chunks)

    def metered(self, tenant: str = "acme") -> UsageTotals:
        return self.metering.totals(tenant=tenant, since=NOW).get((tenant, ""), UsageTotals())

    def window(self, tenant: str = "acme") -> dict[str, Any]:
        return self.counters.items.get((tenant_pk(tenant), window_sk(NOW)), {})

    def spend(self, tenant: str = "acme") -> dict[str, Any]:
        return self.counters.items.get((tenant_pk(tenant), "spend#day#2026-11-30"), {})


ACME = Caller(tenant="acme", tier="standard", key_id="k1")
GLOBEX = Caller(tenant="globex", tier="standard", key_id="k2")


def test_the_answer_s_usage_is_metered_priced_and_reconciled_with_the_reservation() -> None:
    world = World()
    world.settings.set_limits("acme", TenantLimits(rpm=10, tpm=10_000), actor="t")
    world.settings.set_budget("acme", Budget(period="day", tokens=1000), actor="t")

    answer = world.complete(ACME, max_tokens=50)

    usage = answer.completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (
        7,
        4,
        2,
    )
    # metered exactly as the client sees it, under tenant, route, option and key, at list price
    totals = world.metered()
    assert (totals.prompt_tokens, totals.completion_tokens, totals.cached_tokens, totals.requests) == (
        7,
        4,
        2,
        1,
    )
    assert totals.cost_usd == (5 * Decimal("3.0") + 2 * Decimal("0.3") + 4 * Decimal("15.0")) / 1_000_000
    by_key = world.metering.totals(tenant="acme", since=NOW, by=GroupBy.KEY)
    assert set(by_key) == {("acme", "k1")}
    # the reservation (ceil(26/4) + 50 = 57 tokens) became the real total
    assert world.window()["rpm"] == 1 and world.window()["tpm"] == 11
    assert world.spend()["tokens"] == 11 and world.spend()["usd"] == totals.cost_usd


def test_over_its_tpm_a_tenant_gets_429_before_any_workflow_runs_and_others_are_unaffected() -> None:
    world = World()
    world.settings.set_limits("acme", TenantLimits(tpm=100), actor="t")
    world.complete(ACME, max_tokens=90)  # reserves 97, reconciled to 11

    with pytest.raises(RateLimitExceeded) as caught:
        world.complete(ACME, max_tokens=90)  # 11 + 97 > 100
    assert caught.value.status == 429 and caught.value.code == "rate_limit_exceeded"
    assert caught.value.headers["Retry-After"] == "40"  # 09:30:20 → the minute ends in 40 s
    assert world.events.fields_of(metric_names.RATE_LIMITED) == [{"tenant": "acme", "route": "chat"}]
    assert len(world.runner.payloads) == 1  # refused before routing: no workflow, no provider
    assert world.metered().requests == 1

    world.complete(GLOBEX, max_tokens=90)  # another tenant, no limits
    assert len(world.runner.payloads) == 2

    world.clock.advance(40)  # the next minute: a new window
    world.complete(ACME, max_tokens=90)
    assert world.metered().requests == 2


def test_the_budget_status_is_in_the_routing_context_and_a_flag_rule_routes_on_it() -> None:
    world = World(lambda payload: _answered_by(payload["chain"][0]))
    world.settings.set_budget("acme", Budget(period="day", tokens=25), actor="t")

    answers = [world.complete(ACME) for _ in range(4)]  # 11 tokens each: 0, 11, 22, 33 spent before
    other = world.complete(GLOBEX)

    assert [c.get("budget") for c in world.routing.contexts] == ["ok", "ok", "low", "exhausted", "ok"]
    assert [a.option_id for a in answers] == ["a", "a", "a", "cheap"]
    assert answers[-1].variant == "budget-exhausted"
    assert other.option_id == "a"
    by_option = world.metering.totals(tenant="acme", since=NOW, by=GroupBy.OPTION)
    assert {option for _, option in by_option} == {"a", "cheap"}


def test_an_exhausted_reject_budget_is_429_insufficient_quota_before_routing() -> None:
    world = World()
    world.settings.set_budget("acme", Budget(period="day", tokens=5, on_exhausted="reject"), actor="t")
    world.complete(ACME)

    with pytest.raises(BudgetExhausted) as caught:
        world.complete(ACME)
    with pytest.raises(BudgetExhausted):
        world.open_stream(ACME)
    assert caught.value.status == 429 and caught.value.code == "insufficient_quota"
    assert len(world.events.fields_of(metric_names.BUDGET_EXHAUSTED)) == 2  # whole and streamed
    assert len(world.routing.contexts) == 1 and len(world.runner.payloads) == 1


def test_a_request_without_an_answer_gives_its_reservation_back_and_is_not_metered() -> None:
    world = World({"outcome": "rejected", "error": {"error_class": "unavailable", "message": "down"}})
    world.settings.set_limits("acme", TenantLimits(tpm=1000), actor="t")
    with pytest.raises(ServiceUnavailable):
        world.complete(ACME, max_tokens=90)
    with pytest.raises(RouteNotFound):  # refused after the quotas were checked: given back too
        world.complete(ACME, model="nope", max_tokens=90)

    assert world.window() == {"rpm": 2, "tpm": 0, "expires_at": world.window()["expires_at"]}
    assert world.metered() == UsageTotals()


def test_a_static_answer_is_metered_at_no_cost_under_its_kind_and_takes_nothing_from_the_budget() -> None:
    world = World({"outcome": "degraded", "kind": "static", "text": "busy"})
    world.settings.set_budget("acme", Budget(period="day", tokens=1000), actor="t")
    world.complete(ACME)

    by_option = world.metering.totals(tenant="acme", since=NOW, by=GroupBy.OPTION)
    assert by_option == {("acme", "static"): UsageTotals(requests=1)}
    assert world.spend() == {}


def test_embeddings_are_limited_and_metered_like_chat() -> None:
    answer = {
        "outcome": "answered",
        "option_id": "e",
        "result": {"operation": "embeddings", "vectors": [[0.1, 0.2]], "prompt_tokens": 3},
    }
    world = World(answer)
    world.settings.set_limits("acme", TenantLimits(tpm=100), actor="t")
    body = EmbeddingsRequest.model_validate({"model": "embed", "input": ["one two three"]})
    listing = world.service.embed(body, ACME, "r3")

    assert listing.completion.usage.prompt_tokens == 3
    totals = world.metered()
    assert (totals.prompt_tokens, totals.completion_tokens, totals.requests) == (3, 0, 1)
    assert totals.cost_usd == 3 * Decimal("0.02") / 1_000_000
    assert world.window()["tpm"] == 3


def test_a_streamed_answer_is_metered_after_done_with_the_usage_of_its_last_chunk() -> None:
    world = World()
    world.settings.set_limits("acme", TenantLimits(tpm=10_000), actor="t")
    world.streams["a"] = [
        StreamDelta(text="hi there"),
        StreamDelta(finish_reason="stop", usage=StreamUsage(6, 2, 1)),
    ]
    request = ChatCompletionRequest.model_validate(
        {**BODY, "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 50}
    )
    answer = world.stream_service.open(request, ACME, "r4")
    chunks = []
    for chunk in answer.chunks:
        if chunk.startswith(b"data: [DONE]"):
            assert world.metered().requests == 0  # not before [DONE] went out
        chunks.append(chunk)

    last = json.loads(chunks[-2][len(b"data: ") :])
    totals = world.metered()
    assert last["usage"]["prompt_tokens"] == totals.prompt_tokens == 6
    assert last["usage"]["completion_tokens"] == totals.completion_tokens == 2
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == totals.cached_tokens == 1
    assert world.window()["tpm"] == 8


def test_a_stream_cut_mid_way_meters_what_the_provider_reported_and_returns_the_rest() -> None:
    world = World()
    world.settings.set_limits("acme", TenantLimits(tpm=10_000), actor="t")
    world.streams["a"] = [StreamDelta(text="hi"), ConnectionResetError("gone")]
    chunks = world.open_stream(ACME, max_tokens=50)

    assert b"error" in chunks[-1]
    totals = world.metered()
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (1, 0, 0)
    assert world.window()["tpm"] == 0  # nothing reported: the reservation went back


def test_a_stream_answered_by_the_static_text_is_free_and_gives_its_reservation_back() -> None:
    world = World()
    world.settings.set_limits("acme", TenantLimits(tpm=10_000), actor="t")
    world.streams["a"] = [ConnectionResetError("down")]  # then static: a short stream at no cost
    world.open_stream(ACME, max_tokens=50)

    assert world.metering.totals(tenant="acme", since=NOW, by=GroupBy.OPTION) == {
        ("acme", "static"): UsageTotals(requests=1)
    }
    assert world.window()["tpm"] == 0


def test_without_quotas_and_metering_the_context_has_no_budget() -> None:
    world = World(quotas=False, metering=False)
    world.complete(ACME)
    assert "budget" not in world.routing.contexts[0]


def test_a_usage_table_that_fails_never_fails_the_request() -> None:
    world = World()

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("usage table down")

    world.counters.read = broken  # type: ignore[method-assign]
    world.usage.add = broken  # type: ignore[method-assign]

    answer = world.complete(ACME)

    assert answer.option_id == "a"
    assert world.routing.contexts[0]["budget"] == "ok"


def test_after_answer_writes_run_at_once_in_the_caller_s_context() -> None:
    """Three writes that each wait for the other two: only concurrent runs get past the barrier."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    request_id.set("r9")
    barrier = threading.Barrier(3, timeout=5)
    seen: list[str] = []

    def write() -> None:
        barrier.wait()
        seen.append(request_id.get())

    ConcurrentWrites()([write, write, write])
    assert seen == ["r9", "r9", "r9"]


def test_a_failing_write_is_logged_and_the_others_still_run() -> None:
    done: list[str] = []

    def failing() -> None:
        raise OSError("usage table down")

    run_in_turn([failing, lambda: done.append("second")])
    ConcurrentWrites()([failing, lambda: done.append("third")])
    assert done == ["second", "third"]


def test_prompt_chars_counts_text_and_tools_never_image_bytes() -> None:
    image = ImagePart(media_type="image/png", data_base64="A" * 4000)
    request = ChatRequest(messages=[ChatMessage(role="user", content=(TextPart("abcd"), image))])
    assert prompt_chars(request) == 4
    assert prompt_chars(EmbeddingRequest(inputs=("abc", (1, 2)))) == 3 + 2 * 4


def _answered_by(option_id: str) -> WorkflowResult:
    return WorkflowResult(status="SUCCEEDED", output={**ANSWERED, "option_id": option_id})


def test_the_flag_validator_and_the_agent_s_evaluation_accept_a_budget_rule_in_the_sample_document() -> None:
    """What an operator adds to config/flags.json: validated as AWS's Lambda validator does, then
    evaluated as the local agent does (the extension does in AWS)."""
    from pathlib import Path

    from switchboard.routing.document import load_option_catalogue, validate_document

    root = Path(__file__).resolve().parents[2]
    document = json.loads((root / "config" / "flags.json").read_text())
    rule = {
        "name": "budget-exhausted",
        "enabled": True,
        "rule": '(eq $budget "exhausted")',
        "attributeValues": {"chain": ["nova-micro-us"], "degrade": ["reject"]},
    }
    document["values"]["chat"]["_variants"].insert(0, rule)

    assert validate_document(document, load_option_catalogue(root / "config" / "options.json")) == []
    context = {"route": "chat", "tenant": "acme", "tier": "premium", "userId": "acme"}
    exhausted = evaluate_document(document, {**context, "budget": "exhausted"}, ["chat"])["chat"]
    low = evaluate_document(document, {**context, "budget": "low"}, ["chat"])["chat"]
    assert (exhausted["_variant"], exhausted["chain"]) == ("budget-exhausted", ["nova-micro-us"])
    assert low["_variant"] == "premium"


def test_prices_come_from_the_catalogue_and_an_unreadable_one_prices_at_zero_with_an_event() -> None:
    from switchboard.accounting import catalogue_prices

    class Unreadable:
        def get_many(self, ids: Any) -> dict[str, LlmOption]:
            raise OSError("options table down")

    events = RecordingEventSink()
    priced = _option("a", price={"input": 3.0, "output": 15.0})
    assert catalogue_prices(InMemoryOptions([priced]), events)("a") == Price(input=3.0, output=15.0)
    assert catalogue_prices(InMemoryOptions([priced]), events)("gone") is None
    assert catalogue_prices(Unreadable(), events)("a") is None
    assert [name for name, _ in events.events] == ["OptionsCatalogueUnavailable"]


def test_the_gateway_wires_quotas_and_metering_only_with_a_usage_table(aws_credentials: None) -> None:
    from handlers import gateway
    from switchboard.after_response import DeferredWrites

    assert gateway._accounting(None, InMemoryOptions([]), RecordingEventSink()) == {}
    wired = gateway._accounting(
        "usage", InMemoryOptions([]), RecordingEventSink(), clock=ManualClock(NOW).utcnow
    )
    assert isinstance(wired["quotas"], TenantQuotas) and isinstance(wired["metering"], Metering)
    # After the response where the after-response extension is registered (AWS), inline elsewhere.
    assert isinstance(wired["run_writes"], DeferredWrites)
