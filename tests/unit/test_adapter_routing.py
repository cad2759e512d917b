"""Tenant adapters on the request path (issue 16): resolution, canary split, cache, fail-open, and the
invoke step's and the streaming path's fallback from a failing adapter to the previous one, then
the base component."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.adapter_routing import ADAPTER_HEADER, AdapterRouter, canary_bucket
from switchboard.api_models import ChatCompletionRequest
from switchboard.chat import Caller, ChatService
from switchboard.contract import metrics as metric_names
from switchboard.errors import ErrorClass, ProviderError
from switchboard.events import RecordingEventSink
from switchboard.invoking import CandidateInvoker, ProviderThrottled
from switchboard.lifecycle.adapter_store import AdapterRef, AdapterState, TenantAdapter
from switchboard.options.errors import OptionValidationError
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatRequest, ChatResult, StreamDeadlines, StreamDelta, StreamUsage
from switchboard.streaming import StreamService
from tests.fakes import InMemoryOptions, InMemoryPayloads, ManualClock, ScriptedRunner, StaticRouting
from tests.fakes.adapters import InMemoryTenantAdapters
from tests.unit.test_candidate_invoker import NOW_MS, FakeCircuits, FakeClock, FakePayloads, event

FAMILY = "sample-lora"
BASE = "sample-base-ic"


def tuned(**overrides: Any) -> LlmOption:
    data: dict[str, Any] = {
        "id": "tuned-a",
        "provider": "sagemaker",
        "endpoint_name": "sample-base",
        "inference_component": BASE,
        "adapter_family": FAMILY,
        "timeout_ms": 5000,
    }
    data.update(overrides)
    return LlmOption.from_dict(data)


def ref(version: int) -> AdapterRef:
    return AdapterRef(
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{FAMILY}/{version}",
        version,
        f"ic-v{version}",
    )


def row(
    tenant: str = "acme",
    *,
    live: int | None = 2,
    previous: int | None = None,
    canary: int | None = None,
    share: int = 0,
) -> TenantAdapter:
    return TenantAdapter(
        family=FAMILY,
        tenant=tenant,
        state=AdapterState.CANARY if canary else AdapterState.LIVE,
        live=ref(live) if live else None,
        previous=ref(previous) if previous else None,
        canary=ref(canary) if canary else None,
        canary_share_percent=share,
    )


def table(*rows: TenantAdapter) -> InMemoryTenantAdapters:
    return InMemoryTenantAdapters(records={(r.family, r.tenant): r for r in rows})


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def components(router: AdapterRouter, tenant: str | None = "acme", user: str | None = None) -> list[Any]:
    return [(a.component, a.label) for a in router.attempts(tuned(), tenant=tenant, user=user)]


# -- the option field


def test_an_adapter_family_is_a_sagemaker_option_with_a_base_component() -> None:
    assert tuned().adapter_family == FAMILY
    with pytest.raises(OptionValidationError, match="sagemaker options only"):
        LlmOption.from_dict({"id": "x", "provider": "mock", "adapter_family": FAMILY})
    with pytest.raises(OptionValidationError, match="needs `inference_component`"):
        tuned(inference_component=None)
    with pytest.raises(OptionValidationError, match="adapter_family: must match"):
        tuned(adapter_family="not a group!")


# -- resolution


def test_without_a_family_the_option_is_called_as_it_is_and_no_adapter_is_named() -> None:
    router = AdapterRouter(table(row()))
    plain = LlmOption.from_dict({"id": "p", "provider": "sagemaker", "endpoint_name": "e"})
    (attempt,) = router.attempts(plain, tenant="acme", user=None)
    assert (attempt.component, attempt.label) == (None, None)
    assert attempt.apply(plain) is plain


def test_a_tenant_without_a_row_or_without_a_live_adapter_gets_the_base() -> None:
    router = AdapterRouter(table(row("globex", live=None)))
    assert components(router, "acme") == [(BASE, "base")]
    assert components(router, "globex") == [(BASE, "base")]
    assert components(router, None) == [(BASE, "base")]


def test_the_live_adapter_then_the_previous_then_the_base() -> None:
    router = AdapterRouter(table(row(live=3, previous=2)))
    assert components(router) == [("ic-v3", f"{FAMILY}:v3"), ("ic-v2", f"{FAMILY}:v2"), (BASE, "base")]
    attempt = router.attempts(tuned(), tenant="acme", user=None)[0]
    assert attempt.apply(tuned()).inference_component == "ic-v3"


def test_a_user_in_the_canary_share_gets_the_canary_then_the_live_version() -> None:
    users = [f"user-{i}" for i in range(400)]
    router = AdapterRouter(table(row(live=2, canary=3, share=25)))
    inside = [u for u in users if canary_bucket("acme", u, FAMILY) < 25]
    outside = [u for u in users if u not in inside]
    assert inside and outside
    assert components(router, user=inside[0])[:2] == [("ic-v3", f"{FAMILY}:v3"), ("ic-v2", f"{FAMILY}:v2")]
    assert components(router, user=outside[0])[0] == ("ic-v2", f"{FAMILY}:v2")


def test_a_row_whose_canary_ended_ignores_its_canary_ref() -> None:
    ended = TenantAdapter(
        FAMILY, "acme", AdapterState.LIVE, live=ref(2), canary=ref(3), canary_share_percent=100
    )
    assert components(AdapterRouter(table(ended)))[0] == ("ic-v2", f"{FAMILY}:v2")


@given(st.text(max_size=30), st.one_of(st.none(), st.text(max_size=30)), st.text(min_size=1, max_size=30))
def test_the_canary_bucket_is_deterministic_and_in_range(tenant: str, user: str | None, family: str) -> None:
    bucket = canary_bucket(tenant, user, family)
    assert 0 <= bucket < 100
    assert bucket == canary_bucket(tenant, user, family)
    assert canary_bucket(tenant, None, family) == canary_bucket(tenant, tenant, family)


def test_the_canary_share_is_spread_evenly_over_users() -> None:
    buckets = Counter(canary_bucket("acme", f"u{i}", FAMILY) // 10 for i in range(10_000))
    assert set(buckets) == set(range(10))
    assert all(800 <= n <= 1200 for n in buckets.values()), buckets  # 10 % each, ± 2 %
    in_share = sum(canary_bucket("acme", f"u{i}", FAMILY) < 10 for i in range(10_000))
    assert 800 <= in_share <= 1200


# -- cache and fail-open


def test_rows_are_cached_for_the_ttl_absent_ones_too() -> None:
    adapters, ticks = table(), Ticks()
    router = AdapterRouter(adapters, ttl_s=10, clock=ticks)
    assert components(router) == [(BASE, "base")]
    adapters.records[(FAMILY, "acme")] = row(live=4)
    ticks.now = 9.9
    assert components(router) == [(BASE, "base")]  # still the cached "no adapter"
    ticks.now = 10.0
    assert components(router)[0] == ("ic-v4", f"{FAMILY}:v4")


def test_a_table_error_fails_open_to_the_last_row_read_then_to_the_base_and_is_the_contract_event() -> None:
    adapters, ticks, events = table(row(live=2)), Ticks(), RecordingEventSink()
    router = AdapterRouter(adapters, ttl_s=10, clock=ticks, on_event=events)
    assert components(router, "acme")[0] == ("ic-v2", f"{FAMILY}:v2")
    adapters.unavailable = True
    ticks.now = 11
    assert components(router, "acme")[0] == ("ic-v2", f"{FAMILY}:v2")  # last row read for acme
    assert components(router, "globex") == [(BASE, "base")]  # never read: the base
    assert events.names() == [metric_names.ADAPTER_LOOKUP_FAILED] * 2
    assert [f["serving"] for _, f in events.events] == ["last_known", "base"]
    assert metric_names.ADAPTER_LOOKUP_FAILED in metric_names.DEGRADED_DEPENDENCY_EVENTS
    # The failure is cached for a ttl: no read per request while the table is down.
    assert components(router, "globex") == [(BASE, "base")]
    assert len(events.events) == 2


def test_no_table_configured_is_the_base_without_an_event() -> None:
    events = RecordingEventSink()
    assert components(AdapterRouter(None, on_event=events)) == [(BASE, "base")]
    assert events.events == []


# -- the invoke step


class ComponentProvider:
    """Answers with the component it was called with; fails for the components in `failing`."""

    def __init__(self, clock: FakeClock, failing: dict[str, ErrorClass] | None = None) -> None:
        self.clock = clock
        self.failing = failing or {}
        self.called: list[str | None] = []

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        self.called.append(option.inference_component)
        self.clock.mono += 0.1
        failure = self.failing.get(option.inference_component or "")
        if failure is not None:
            raise ProviderError(failure, f"{option.inference_component} failed")
        return ChatResult(f"from {option.inference_component}", "stop", 3, 2)


def invoker(rows: InMemoryTenantAdapters, failing: dict[str, ErrorClass] | None = None) -> tuple[Any, ...]:
    clock, events, circuits = FakeClock(), RecordingEventSink(), FakeCircuits()
    provider = ComponentProvider(clock, failing)
    options = InMemoryOptions([tuned()])
    step = CandidateInvoker(
        options=options,
        payloads=FakePayloads(),
        circuits=circuits,
        providers=lambda kind: provider,  # type: ignore[arg-type,return-value]
        events=events,
        clock=clock,
        adapters=AdapterRouter(rows, on_event=events),
    )
    return step, provider, circuits, events


def test_the_invoke_step_calls_the_tenants_adapter_and_names_it() -> None:
    step, provider, circuits, _ = invoker(table(row("acme", live=2)))
    acme = step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    globex = step.invoke(event("tuned-a", tenant="globex"), NOW_MS)
    assert (acme["ok"], acme["adapter"], acme["result"]["text"]) == (True, f"{FAMILY}:v2", "from ic-v2")
    assert (globex["ok"], globex["adapter"], globex["result"]["text"]) == (True, "base", f"from {BASE}")
    assert provider.called == ["ic-v2", BASE]
    assert [c["success"] for c in circuits.calls] == [True, True]


def test_a_failing_adapter_falls_back_to_the_previous_then_the_base_within_the_candidate() -> None:
    failing = {"ic-v3": ErrorClass.UNAVAILABLE, "ic-v2": ErrorClass.MALFORMED}
    step, provider, circuits, events = invoker(table(row(live=3, previous=2)), failing)
    out = step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    assert (out["ok"], out["adapter"]) == (True, "base")
    assert provider.called == ["ic-v3", "ic-v2", BASE]
    # One outcome on the option's circuit: one tenant's broken adapter does not open it for all.
    assert [c["success"] for c in circuits.calls] == [True]
    fallbacks = [f for name, f in events.events if name == metric_names.ADAPTER_FALLBACK]
    assert [(f["component"], f["error_class"]) for f in fallbacks] == [
        ("ic-v3", "unavailable"),
        ("ic-v2", "malformed"),
    ]


def test_the_previous_adapter_answers_when_only_the_live_one_fails() -> None:
    step, _provider, _, _ = invoker(table(row(live=3, previous=2)), {"ic-v3": ErrorClass.TIMEOUT})
    out = step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    assert (out["adapter"], out["result"]["text"]) == (f"{FAMILY}:v2", "from ic-v2")


def test_a_client_error_or_throttling_on_the_adapter_does_not_fall_back() -> None:
    step, provider, _circuits, _ = invoker(table(row(live=3)), {"ic-v3": ErrorClass.CONTEXT_TOO_LONG})
    out = step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    assert (out["ok"], out["error"]["error_class"], out["adapter"]) == (False, "context_too_long", None)
    assert provider.called == ["ic-v3"]
    step, provider, _, _ = invoker(table(row(live=3)), {"ic-v3": ErrorClass.THROTTLED})
    with pytest.raises(ProviderThrottled):
        step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    assert provider.called == ["ic-v3"]


def test_when_every_component_fails_the_candidate_fails_once_on_its_circuit() -> None:
    failing = {"ic-v3": ErrorClass.UNAVAILABLE, BASE: ErrorClass.UNAVAILABLE}
    step, provider, circuits, _ = invoker(table(row(live=3)), failing)
    out = step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    assert (out["ok"], out["error"]["error_class"]) == (False, "unavailable")
    assert provider.called == ["ic-v3", BASE]
    assert [c["success"] for c in circuits.calls] == [False]


def test_the_adapters_table_down_serves_the_base_and_the_request_still_answers() -> None:
    rows = table(row(live=3))
    rows.unavailable = True
    step, _provider, _, events = invoker(rows)
    out = step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    assert (out["ok"], out["adapter"]) == (True, "base")
    assert metric_names.ADAPTER_LOOKUP_FAILED in events.names()


# -- the streaming path


class ComponentStreams:
    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.called: list[str | None] = []

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        component = option.inference_component
        self.called.append(component)
        if component in self.failing:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"{component} failed")
        yield StreamDelta(text=f"from {component}")
        yield StreamDelta(finish_reason="stop", usage=StreamUsage(3, 2))


def adapter_streaming(
    rows: InMemoryTenantAdapters, options: list[LlmOption], provider: Any, clock: ManualClock
) -> StreamService:
    """Streams of the route `tuned` (its chain: the options, in order) through the adapter router
    over ``rows``, every candidate served by ``provider``."""
    chain = [option.id for option in options]
    route = {"enabled": True, "chain": chain, "degrade": ["reject"], "_variant": "default"}
    planner = ChatService(
        routing=StaticRouting({"tuned": route}),
        options=InMemoryOptions(options),
        runner=ScriptedRunner({}),
        payloads=InMemoryPayloads(),
        clock=clock,
    )
    return StreamService(
        planner=planner,
        circuits=None,
        providers=lambda kind: provider,
        payloads=InMemoryPayloads(),
        events=RecordingEventSink(),
        clock=clock,
        monotonic=clock,
        adapters=AdapterRouter(rows),
    )


def stream_service(rows: InMemoryTenantAdapters, failing: set[str]) -> tuple[StreamService, ComponentStreams]:
    provider = ComponentStreams(failing)
    return adapter_streaming(rows, [tuned()], provider, ManualClock()), provider


def _streamed(service: StreamService, tenant: str) -> tuple[dict[str, str], str]:
    body = ChatCompletionRequest.model_validate(
        {"model": "tuned", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    answer = service.open(body, Caller(tenant=tenant, tier="standard"), "req-1")
    text = ""
    for block in b"".join(answer.chunks).split(b"\n\n"):
        data = block.removeprefix(b"data: ")
        if data and data != b"[DONE]":
            choices = json.loads(data).get("choices") or [{}]
            text += choices[0].get("delta", {}).get("content") or ""
    return answer.headers, text


def test_a_streamed_request_names_the_adapter_before_the_first_byte() -> None:
    service, _provider = stream_service(table(row("acme", live=2)), set())
    headers, text = _streamed(service, "acme")
    assert (headers[ADAPTER_HEADER], text) == (f"{FAMILY}:v2", "from ic-v2")
    headers, text = _streamed(service, "globex")
    assert (headers[ADAPTER_HEADER], text) == ("base", f"from {BASE}")


def test_a_streamed_request_falls_back_from_a_failing_adapter_to_the_base() -> None:
    service, provider = stream_service(table(row("acme", live=2)), {"ic-v2"})
    headers, text = _streamed(service, "acme")
    assert (headers[ADAPTER_HEADER], text) == ("base", f"from {BASE}")
    assert provider.called == ["ic-v2", BASE]
