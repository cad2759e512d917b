"""A chain that lists an adapter family's option in two regions fails over across regions to the same
tenant adapter (issue 16): the regional option (``<option_id>-<region>``, ``region`` set, the
region's base component) resolves the tenant's one row in the adapters table to the same component
name, which the deployment workflow made in every region. Whole requests (the invoke step, candidate
by candidate as the request workflow walks the chain) and streamed ones (the chain in-process)."""

from __future__ import annotations

from collections.abc import Iterator

from switchboard.adapter_routing import ADAPTER_HEADER, AdapterRouter
from switchboard.errors import ErrorClass, ProviderError
from switchboard.events import RecordingEventSink
from switchboard.invoking import CandidateInvoker
from switchboard.options.model import LlmOption
from switchboard.providers.base import ChatRequest, ChatResult, StreamDeadlines, StreamDelta, StreamUsage
from switchboard.streaming import StreamService
from tests.fakes import InMemoryOptions, ManualClock
from tests.fakes.adapters import InMemoryTenantAdapters
from tests.unit.test_adapter_routing import BASE, FAMILY, _streamed, adapter_streaming, row, table, tuned
from tests.unit.test_candidate_invoker import NOW_MS, FakeCircuits, FakeClock, FakePayloads, event

HOME, IRELAND = "us-east-1", "eu-west-1"
HOME_OPTION = tuned(id="tuned-a", region=HOME)
IRELAND_OPTION = tuned(id=f"tuned-a-{IRELAND}", region=IRELAND)


class RegionalComponents:
    """SageMaker in two regions: every call in a region listed in ``down`` fails (a regional outage);
    elsewhere the component answers, naming its region."""

    def __init__(self, clock: FakeClock | ManualClock, down: set[str]) -> None:
        self.clock = clock
        self.down = down
        self.called: list[tuple[str | None, str | None]] = []

    def _call(self, option: LlmOption) -> str:
        self.called.append((option.region, option.inference_component))
        if option.region in self.down:
            raise ProviderError(ErrorClass.UNAVAILABLE, f"{option.region} is down")
        return f"from {option.region}/{option.inference_component}"

    def complete(self, option: LlmOption, request: ChatRequest, timeout_s: float) -> ChatResult:
        return ChatResult(self._call(option), "stop", 3, 2)

    def stream(
        self, option: LlmOption, request: ChatRequest, deadlines: StreamDeadlines
    ) -> Iterator[StreamDelta]:
        text = self._call(option)
        yield StreamDelta(text=text)
        yield StreamDelta(finish_reason="stop", usage=StreamUsage(3, 2))


def test_a_regional_adapter_option_is_valid_and_names_the_same_family() -> None:
    assert (IRELAND_OPTION.adapter_family, IRELAND_OPTION.region) == (FAMILY, IRELAND)
    assert IRELAND_OPTION.inference_component == BASE


def test_the_home_candidate_fails_and_the_regional_one_answers_with_the_tenants_adapter() -> None:
    clock = FakeClock()
    provider = RegionalComponents(clock, down={HOME})
    circuits = FakeCircuits()
    step = CandidateInvoker(
        options=InMemoryOptions([HOME_OPTION, IRELAND_OPTION]),
        payloads=FakePayloads(),
        circuits=circuits,
        providers=lambda kind: provider,
        events=RecordingEventSink(),
        clock=clock,
        adapters=AdapterRouter(table(row("acme", live=2))),
    )

    # the request workflow walks the chain: the home candidate first ...
    home = step.invoke(event("tuned-a", tenant="acme"), NOW_MS)
    assert (home["ok"], home["error"]["error_class"]) == (False, "unavailable")
    # ... then the same family in Ireland, where acme's adapter (same name) answers
    ireland = step.invoke(event(f"tuned-a-{IRELAND}", tenant="acme"), NOW_MS)
    assert (ireland["ok"], ireland["adapter"]) == (True, f"{FAMILY}:v2")
    assert ireland["result"]["text"] == f"from {IRELAND}/ic-v2"
    # home tried acme's adapter, then the base; Ireland answered with the adapter at once
    assert provider.called == [(HOME, "ic-v2"), (HOME, BASE), (IRELAND, "ic-v2")]
    assert [c["success"] for c in circuits.calls] == [False, True]


def test_a_tenant_without_an_adapter_gets_the_regions_base() -> None:
    clock = FakeClock()
    provider = RegionalComponents(clock, down={HOME})
    step = CandidateInvoker(
        options=InMemoryOptions([HOME_OPTION, IRELAND_OPTION]),
        payloads=FakePayloads(),
        circuits=FakeCircuits(),
        providers=lambda kind: provider,
        events=RecordingEventSink(),
        clock=clock,
        adapters=AdapterRouter(table(row("acme", live=2))),
    )
    out = step.invoke(event(f"tuned-a-{IRELAND}", tenant="globex"), NOW_MS)
    assert (out["ok"], out["adapter"], out["result"]["text"]) == (True, "base", f"from {IRELAND}/{BASE}")


def _stream_service(rows: InMemoryTenantAdapters, down: set[str]) -> tuple[StreamService, RegionalComponents]:
    clock = ManualClock()
    provider = RegionalComponents(clock, down)
    return adapter_streaming(rows, [HOME_OPTION, IRELAND_OPTION], provider, clock), provider


def test_a_streamed_request_fails_over_to_the_regional_option_and_its_tenant_adapter() -> None:
    service, provider = _stream_service(table(row("acme", live=2)), down={HOME})
    headers, text = _streamed(service, "acme")
    assert (headers[ADAPTER_HEADER], text) == (f"{FAMILY}:v2", f"from {IRELAND}/ic-v2")
    assert headers["x-switchboard-option"] == f"tuned-a-{IRELAND}"
    assert provider.called == [(HOME, "ic-v2"), (HOME, BASE), (IRELAND, "ic-v2")]
