"""Capacity report logic with in-memory sources: peaks, headroom, quota matching, suggestions, routes.

Given options, a flag document and readings from fakes of the three ports (capacity windows,
ProviderCalls minutes, Service Quotas) and the in-memory metering store, the report says which
source each observation came from, computes headroom against capacity and the matched quota, and
suggests only what applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.capacity_report import (
    QUOTA_BURNDOWN_NOTE,
    CapacityReport,
    Headroom,
    MinuteReading,
    ServiceQuota,
    build_report,
    match_quotas,
    model_words,
    quota_words,
)
from switchboard.metering import InMemoryUsageStore, UsageGroup, UsageTotals
from switchboard.options.model import LlmOption

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


class FakeWindows:
    def __init__(self, readings: Mapping[str, Sequence[MinuteReading]]) -> None:
        self.readings = readings
        self.asked: list[str] = []

    def minutes(self, option_id: str, *, since: datetime) -> Sequence[MinuteReading]:
        self.asked.append(option_id)
        return self.readings.get(option_id, [])


class FakeCalls:
    def __init__(self, readings: Mapping[str, Sequence[MinuteReading]]) -> None:
        self.readings = readings

    def minutes(
        self, option_ids: Sequence[str], *, since: datetime, until: datetime
    ) -> Mapping[str, Sequence[MinuteReading]]:
        return {o: self.readings.get(o, []) for o in option_ids}


class FakeQuotas:
    def __init__(
        self, by_region: Mapping[str, Sequence[ServiceQuota]], *, fail: Exception | None = None
    ) -> None:
        self.by_region = by_region
        self.fail = fail
        self.asked: list[str] = []

    def bedrock_quotas(self, region: str) -> Sequence[ServiceQuota]:
        self.asked.append(region)
        if self.fail is not None:
            raise self.fail
        return self.by_region.get(region, [])


class AccessDenied(Exception):
    """Shaped as botocore's ClientError is read: an error ``response``."""

    response: ClassVar[dict[str, Any]] = {
        "Error": {"Code": "AccessDeniedException", "Message": "no servicequotas:ListServiceQuotas"}
    }


class Broken:
    def minutes(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("table gone")


def quota(
    name: str, value: float, *, code: str = "L-1", adjustable: bool = True, region: str = "us-east-1"
) -> ServiceQuota:
    return ServiceQuota(code=code, name=name, value=value, adjustable=adjustable, region=region)


def bedrock(option_id: str, model: str = HAIKU, *, region: str | None = None, **capacity: int) -> LlmOption:
    return LlmOption.from_dict(
        {
            "id": option_id,
            "provider": "bedrock",
            "model": model,
            **({"region": region} if region else {}),
            **({"capacity": capacity} if capacity else {}),
        }
    )


def flags(routes: Mapping[str, Sequence[Sequence[str]]]) -> dict[str, Any]:
    """A flag document whose routes have one enabled variant per chain (the last is the default)."""
    return {
        "version": "1",
        "flags": {name: {"attributes": {"chain": {}}} for name in routes},
        "values": {
            name: {
                "_variants": [
                    {"name": f"v{i}", "enabled": True, "attributeValues": {"chain": list(chain)}}
                    for i, chain in enumerate(chains)
                ]
            }
            for name, chains in routes.items()
        },
    }


def report(
    options: Sequence[LlmOption],
    *,
    routes: Mapping[str, Sequence[Sequence[str]]] | None = None,
    windows: Mapping[str, Sequence[MinuteReading]] | None = None,
    calls: Mapping[str, Sequence[MinuteReading]] | None = None,
    usage: InMemoryUsageStore | None = None,
    quotas: FakeQuotas | None = None,
    **kwargs: Any,
) -> CapacityReport:
    document = flags(routes or {})
    return build_report(
        options=options,
        document=document,
        route_kinds={name: "chat" for name in routes or {}},
        default_region="us-east-1",
        since=SINCE,
        until=NOW,
        windows=FakeWindows(windows or {}),
        usage=usage if usage is not None else InMemoryUsageStore(),
        provider_calls=FakeCalls(calls) if calls is not None else None,
        quotas=quotas,
        **kwargs,
    )


def metered(
    store: InMemoryUsageStore, hour: str, route: str, option: str, requests: int, tokens: int
) -> None:
    store.add(
        tenant="acme",
        hour=hour,
        group=UsageGroup(route=route, option_id=option, key_id="k"),
        totals=UsageTotals(
            prompt_tokens=tokens // 2, completion_tokens=tokens - tokens // 2, requests=requests
        ),
        expires_at=0,
    )


def codes(report_: CapacityReport) -> dict[str, list[str]]:
    out = {o.option.id: [s.code for s in o.suggestions] for o in report_.options}
    out.update({f"route:{r.route}": [s.code for s in r.suggestions] for r in report_.routes})
    return out


# --- peaks ------------------------------------------------------------------------------------------


def test_the_peak_minute_comes_from_the_capacity_windows_when_they_exist() -> None:
    # Given an option with capacity and three minutes of windows
    readings = [MinuteReading("2026-11-30T09:10", 40, 9000), MinuteReading("2026-11-30T09:11", 55, 8000)]
    readings.append(MinuteReading("2026-11-30T09:12", 12, 20000))
    # When the report is built
    built = report([bedrock("haiku", rpm=100, tpm=40000)], windows={"haiku": readings})
    # Then rpm and tpm peaks are the busiest minute of each, from the windows
    option = built.to_dict()["options"][0]
    assert option["rpm"]["observed"] == {
        "value": 55,
        "basis": "peak_minute",
        "source": "capacity_windows",
        "at": "2026-11-30T09:11",
    }
    assert (
        option["tpm"]["observed"]["value"] == 20000 and option["tpm"]["observed"]["at"] == "2026-11-30T09:12"
    )
    assert option["rpm"]["headroom"] == {"limit": 100, "used": 55, "headroom": 45, "headroom_pct": 45.0}
    assert option["tpm"]["headroom"]["headroom_pct"] == 50.0
    assert built.sources["capacity_windows"] == "read"


def test_cloudwatch_minutes_count_for_requests_and_the_higher_minute_wins() -> None:
    windows = {"haiku": [MinuteReading("2026-11-30T09:50", 30, 5000)]}
    calls = {
        "haiku": [MinuteReading("2026-11-29T14:02", 80, None), MinuteReading("2026-11-30T09:50", 31, None)]
    }
    built = report([bedrock("haiku", rpm=100, tpm=40000)], windows=windows, calls=calls)
    option = built.options[0]
    assert option.observed["rpm"] is not None
    assert (option.observed["rpm"].value, option.observed["rpm"].source) == (80, "cloudwatch")
    # CloudWatch has no token count: the tpm peak is still the window's
    assert option.observed["tpm"] is not None and option.observed["tpm"].source == "capacity_windows"


def test_without_minute_readings_the_busiest_metered_hour_is_an_hourly_average() -> None:
    store = InMemoryUsageStore()
    metered(store, "2026-11-30T08", "chat", "haiku", 600, 120000)
    metered(store, "2026-11-30T09", "chat", "haiku", 1200, 60000)
    metered(store, "2026-11-30T09", "chat", "other", 6000, 6000)  # another option's traffic
    built = report([bedrock("haiku")], usage=store)
    rpm, tpm = built.options[0].observed["rpm"], built.options[0].observed["tpm"]
    assert rpm is not None and tpm is not None
    assert (rpm.value, rpm.basis, rpm.source, rpm.at) == (20.0, "hourly_average", "metering", "2026-11-30T09")
    assert (tpm.value, tpm.at) == (2000.0, "2026-11-30T08")


def test_windows_count_for_an_option_whose_capacity_was_removed_but_no_capacity_headroom() -> None:
    windows = FakeWindows({"free": [MinuteReading("2026-11-30T09:10", 7, 70)]})
    built = build_report(
        options=[bedrock("free")],
        document=None,
        route_kinds={},
        default_region="us-east-1",
        since=SINCE,
        until=NOW,
        windows=windows,
        usage=InMemoryUsageStore(),
    )
    assert windows.asked == ["free"]
    assert built.options[0].headroom("rpm") is None
    assert built.to_dict()["options"][0]["rpm"] == {
        "capacity": None,
        "observed": {
            "value": 7,
            "basis": "peak_minute",
            "source": "capacity_windows",
            "at": "2026-11-30T09:10",
        },
        "headroom": None,
        "quota": None,
    }


def test_retired_options_are_left_out() -> None:
    retired = LlmOption.from_dict({"id": "old", "provider": "mock", "status": "retired"})
    assert [o.option.id for o in report([retired, bedrock("haiku")]).options] == ["haiku"]


def test_a_failing_source_is_named_and_the_others_still_count() -> None:
    store = InMemoryUsageStore()
    metered(store, "2026-11-30T09", "chat", "haiku", 60, 600)
    built = build_report(
        options=[bedrock("haiku", rpm=10)],
        document=None,
        route_kinds={},
        default_region="us-east-1",
        since=SINCE,
        until=NOW,
        windows=Broken(),
        usage=store,
        provider_calls=Broken(),
    )
    assert built.sources["capacity_windows"].startswith("failed: RuntimeError: table gone")
    assert built.sources["cloudwatch"].startswith("failed:")
    observed = built.options[0].observed["rpm"]
    assert observed is not None and observed.source == "metering"


@given(
    st.lists(
        st.tuples(st.integers(0, 59), st.integers(0, 10**6), st.integers(0, 10**8)), min_size=1, max_size=30
    )
)
def test_the_peak_is_the_largest_reading_of_some_minute(rows: list[tuple[int, int, int]]) -> None:
    readings = [MinuteReading(f"2026-11-30T09:{m:02d}", r, t) for m, r, t in rows]
    built = report([bedrock("haiku", rpm=1, tpm=1)], windows={"haiku": readings})
    rpm, tpm = built.options[0].observed["rpm"], built.options[0].observed["tpm"]
    assert rpm is not None and tpm is not None
    assert rpm.value == max(r for _, r, _ in rows) and tpm.value == max(t for _, _, t in rows)
    assert any(reading.minute == rpm.at and reading.requests == rpm.value for reading in readings)


@pytest.mark.parametrize(
    ("limit", "used", "absolute", "pct"),
    [(100, 55, 45, 45.0), (100, 100, 0, 0.0), (100, 130, -30, -30.0), (40000, 0, 40000, 100.0)],
)
def test_headroom_is_absolute_and_in_percent_of_the_limit(
    limit: int, used: int, absolute: int, pct: float
) -> None:
    headroom = Headroom(limit, used)
    assert (headroom.absolute, headroom.pct) == (absolute, pct)


# --- quota matching ---------------------------------------------------------------------------------

QUOTAS = [
    quota("On-demand model inference requests per minute for Anthropic Claude 3 Haiku", 1000, code="L-RH3"),
    quota(
        "On-demand model inference tokens per minute for Anthropic Claude 3 Haiku", 2_000_000, code="L-TH3"
    ),
    quota(
        "On-demand model inference tokens per minute for Anthropic Claude 3.5 Haiku", 400_000, code="L-TH35"
    ),
    quota(
        "Cross-region model inference tokens per minute for Anthropic Claude 3 Haiku", 4_000_000, code="L-XH3"
    ),
    quota(
        "Cross-Region InvokeModel tokens per minute for Anthropic Claude 3.5 Sonnet V2", 800_000, code="L-XS2"
    ),
    quota(
        "Cross-Region InvokeModel tokens per minute for Anthropic Claude 3.5 Sonnet", 800_000, code="L-XS1"
    ),
    quota(
        "Global cross-region model inference tokens per minute for Anthropic Claude Sonnet 4.5",
        5e6,
        code="L-GS45",
    ),
    quota("On-demand model inference tokens per minute for Amazon Nova Pro", 400_000, code="L-NP"),
    quota(
        "On-demand model inference tokens per minute for Meta Llama 3.1 70B Instruct", 300_000, code="L-L70"
    ),
    quota("Model invocation max tokens per day for Anthropic Claude 3 Haiku", 2.88e9, code="L-DAY"),
    quota("Batch inference job size (in GB)", 5, code="L-B"),
]


@pytest.mark.parametrize(
    ("model", "rpm_code", "tpm_code"),
    [
        (HAIKU, "L-RH3", "L-TH3"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", None, "L-TH35"),  # not Claude 3 Haiku's
        ("us.anthropic.claude-3-haiku-20240307-v1:0", None, "L-XH3"),  # a profile: the cross-region quota
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", None, "L-XS2"),  # V2 is part of the name
        ("eu.anthropic.claude-3-5-sonnet-20240620-v1:0", None, "L-XS1"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", None, "L-GS45"),
        ("amazon.nova-pro-v1:0", None, "L-NP"),
        ("meta.llama3-1-70b-instruct-v1:0", None, "L-L70"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", None, None),  # only cross-region quotas listed
        ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc", None, None),
    ],
)
def test_quotas_are_matched_by_scope_dimension_and_model_name(
    model: str, rpm_code: str | None, tpm_code: str | None
) -> None:
    matched = match_quotas(model, QUOTAS)
    assert (matched["rpm"].quota.code if matched["rpm"].quota else None) == rpm_code
    assert (matched["tpm"].quota.code if matched["tpm"].quota else None) == tpm_code
    for match in matched.values():
        if match.quota is None:
            assert "list-service-quotas" in (match.note or "")


def test_two_quotas_naming_the_same_model_are_not_guessed_between() -> None:
    twins = [
        QUOTAS[1],
        quota("On-demand InvokeModel tokens per minute for Anthropic Claude 3 Haiku", 1, code="L-NEW"),
    ]
    matched = match_quotas(HAIKU, twins)
    assert matched["tpm"].quota is None
    assert matched["tpm"].note is not None and "more than one quota" in matched["tpm"].note


def test_model_and_quota_names_normalise_to_the_same_words() -> None:
    assert model_words("us.anthropic.claude-3-5-haiku-20241022-v1:0") == (
        "cross-region",
        ("anthropic", "claude", "3", "5", "haiku"),
    )
    assert model_words("mistral.mistral-large-2402-v1:0") == ("on-demand", ("mistral", "large"))
    assert quota_words("Cross-Region InvokeModel tokens per minute for Anthropic Claude 3.5 Sonnet V2") == (
        "cross-region",
        "tpm",
        ("anthropic", "claude", "3", "5", "sonnet", "v", "2"),
    )
    assert quota_words("Model invocation max tokens per day for Anthropic Claude 3 Haiku") is None


def test_options_on_one_quota_share_it_and_their_peaks_add_up() -> None:
    windows = {
        "haiku-a": [MinuteReading("2026-11-30T09:10", 500, 900_000)],
        "haiku-b": [MinuteReading("2026-11-30T09:20", 450, 1_000_000)],
    }
    quotas = FakeQuotas({"us-east-1": QUOTAS})
    built = report(
        [bedrock("haiku-a", rpm=600, tpm=1_000_000), bedrock("haiku-b", rpm=600, tpm=1_200_000)],
        windows=windows,
        quotas=quotas,
    )
    a = built.to_dict()["options"][0]
    assert a["rpm"]["quota"]["shared_with"] == ["haiku-b"]
    assert a["rpm"]["quota"]["headroom"] == {"limit": 1000, "used": 950, "headroom": 50, "headroom_pct": 5.0}
    assert quotas.asked == ["us-east-1"]  # one listing per region
    # 600 + 600 rpm assigned on a quota of 1000: capacity-aware routing cannot prevent throttles
    assert "capacity_above_quota" in codes(built)["haiku-a"]
    assert "quota_increase" in codes(built)["haiku-a"]
    assert QUOTA_BURNDOWN_NOTE in built.notes  # a tpm quota was matched: its caveat is said


def test_quotas_are_read_in_each_options_region_and_non_bedrock_options_say_why_none_applies() -> None:
    quotas = FakeQuotas({"eu-west-1": [quota(QUOTAS[1].name, 10, region="eu-west-1")]})
    mock = LlmOption.from_dict({"id": "mock", "provider": "mock"})
    built = report([bedrock("haiku-eu", region="eu-west-1"), mock], quotas=quotas)
    eu, other = built.to_dict()["options"]
    assert eu["tpm"]["quota"]["region"] == "eu-west-1" and eu["tpm"]["quota"]["value"] == 10
    assert other["tpm"]["quota"] == {
        "matched": False,
        "note": "not a Bedrock option: no Bedrock service quota applies",
    }
    assert quotas.asked == ["eu-west-1"]


def test_unreadable_quotas_are_reported_not_fatal() -> None:
    denied = AccessDenied("denied")
    built = report([bedrock("haiku")], quotas=FakeQuotas({}, fail=denied))
    assert built.sources["service_quotas"].startswith("failed: us-east-1: AccessDeniedException")
    assert built.options[0].quotas["rpm"].note == "service quotas could not be read"


# --- suggestions ------------------------------------------------------------------------------------


def test_plenty_of_headroom_suggests_nothing() -> None:
    windows = {"haiku": [MinuteReading("2026-11-30T09:10", 10, 1000)]}
    built = report([bedrock("haiku", rpm=100, tpm=40000)], routes={"chat": [["haiku"]]}, windows=windows)
    assert codes(built) == {"haiku": [], "route:chat": []}
    assert QUOTA_BURNDOWN_NOTE not in built.notes  # no quota read


def test_tight_in_region_bedrock_option_gets_a_profile_a_second_region_and_more_capacity() -> None:
    windows = {"haiku": [MinuteReading("2026-11-30T09:10", 90, 1000)]}
    built = report(
        [bedrock("haiku", rpm=100, tpm=40000)],
        routes={"chat": [["haiku"]]},
        windows=windows,
        quotas=FakeQuotas({"us-east-1": QUOTAS}),
    )
    found = {s.code: s.message for s in built.options[0].suggestions}
    assert set(found) == {"cross_region_profile", "second_region", "raise_capacity"}
    assert f"us.{HAIKU}" in found["cross_region_profile"]
    # 90/min at an 80 % target is 113; the quota (1000) leaves 900 unassigned
    assert "raise capacity.rpm to 113" in found["raise_capacity"]
    assert [s.code for s in built.routes[0].suggestions] == ["second_region", "raise_capacity"]


def test_a_profile_or_a_chain_in_two_regions_is_not_suggested_again() -> None:
    windows = {"xr": [MinuteReading("2026-11-30T09:10", 95, 0)]}
    options = [
        bedrock("xr", "us.anthropic.claude-3-haiku-20240307-v1:0", rpm=100),
        bedrock("west", region="us-west-2", rpm=100),
    ]
    built = report(options, routes={"chat": [["xr", "west"]]}, windows=windows)
    assert codes(built)["xr"] == ["raise_capacity"]
    assert codes(built)["route:chat"] == []  # 95 of 200 over the chain


def test_quota_tight_but_not_adjustable_says_so() -> None:
    fixed = [quota(QUOTAS[0].name, 100, adjustable=False)]
    windows = {"haiku": [MinuteReading("2026-11-30T09:10", 95, 0)]}
    built = report([bedrock("haiku", rpm=1000)], windows=windows, quotas=FakeQuotas({"us-east-1": fixed}))
    message = next(s.message for s in built.options[0].suggestions if s.code == "quota_increase")
    assert "not adjustable" in message


def test_tight_capacity_on_a_fully_assigned_quota_asks_for_the_quota_first() -> None:
    windows = {"haiku": [MinuteReading("2026-11-30T09:10", 95, 0)]}
    full = [quota(QUOTAS[0].name, 100, code="L-RH3")]
    built = report(
        [bedrock("haiku", "us.anthropic.claude-3-haiku-20240307-v1:0", rpm=100)],
        windows=windows,
        quotas=FakeQuotas(
            {"us-east-1": [quota(q.name.replace("On-demand", "Cross-region"), 100) for q in full]}
        ),
    )
    (suggestion,) = [s for s in built.options[0].suggestions if "fully assigned" in s.message]
    assert suggestion.code == "quota_increase"
    assert "raise_capacity" not in codes(built)["haiku"]


def test_traffic_on_an_option_without_capacity_suggests_setting_one() -> None:
    store = InMemoryUsageStore()
    metered(store, "2026-11-30T09", "chat", "haiku", 60, 600)
    assert codes(report([bedrock("haiku")], usage=store))["haiku"] == ["set_capacity"]


# --- routes -----------------------------------------------------------------------------------------


def test_a_route_sums_its_chains_capacity_and_its_options_minutes() -> None:
    windows = {
        "a": [MinuteReading("2026-11-30T09:10", 30, 100), MinuteReading("2026-11-30T09:11", 5, 50)],
        "b": [MinuteReading("2026-11-30T09:10", 20, 10), MinuteReading("2026-11-30T09:11", 40, 700)],
    }
    options = [bedrock("a", rpm=60, tpm=1000), bedrock("b", region="us-west-2", rpm=60, tpm=1000)]
    built = report(options, routes={"chat": [["a"], ["a", "b"]]}, windows=windows)
    route = built.to_dict()["routes"][0]
    assert route["options"] == ["a", "b"] and route["regions"] == ["us-east-1", "us-west-2"]
    assert route["rpm"]["capacity"] == 120 and route["tpm"]["capacity"] == 2000
    assert route["rpm"]["observed"] == {
        "value": 50,
        "basis": "peak_minute",
        "source": "capacity_windows",
        "at": "2026-11-30T09:10",
    }
    assert route["tpm"]["observed"]["value"] == 750
    assert route["rpm"]["headroom"]["headroom_pct"] == 58.3


def test_a_route_sharing_an_option_falls_back_to_its_metered_hourly_average() -> None:
    store = InMemoryUsageStore()
    metered(store, "2026-11-30T09", "chat", "a", 120, 1200)
    metered(store, "2026-11-30T09", "summarize", "a", 600, 600)
    windows = {"a": [MinuteReading("2026-11-30T09:10", 30, 100)]}
    built = report(
        [bedrock("a", rpm=60), bedrock("b")],
        routes={"chat": [["a", "b"]], "summarize": [["a"]]},
        windows=windows,
        usage=store,
    )
    chat = built.to_dict()["routes"][0]
    assert chat["rpm"]["capacity"] is None  # b is unlimited
    assert chat["rpm"]["observed"] == {
        "value": 2,
        "basis": "hourly_average",
        "source": "metering",
        "at": "2026-11-30T09",
    }
    assert "also serve other routes" in chat["note"]


def test_disabled_variants_do_not_add_options_to_a_route() -> None:
    document = flags({"chat": [["a"]]})
    document["values"]["chat"]["_variants"].insert(
        0, {"name": "off", "enabled": False, "rule": '(eq $tier "x")', "attributeValues": {"chain": ["b"]}}
    )
    built = build_report(
        options=[bedrock("a"), bedrock("b")],
        document=document,
        route_kinds={"chat": "chat"},
        default_region="us-east-1",
        since=SINCE,
        until=NOW,
        windows=None,
        usage=None,
    )
    assert built.routes[0].options == ["a"]
    assert built.options[1].routes == []
