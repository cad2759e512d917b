"""Capacity planning (issue 15): observed peak RPM/TPM per option and route against capacity and quotas.

``switchboard capacity report`` asks, for every option of the catalogue and every route of the flag
document: how close did traffic come to what the option may take (its ``capacity``, this
deployment's share of the provider quota) and to the account's Bedrock service quota, and what
would help. No boto3 here: the readings come through three small ports, each with an adapter in
:mod:`switchboard.capacity_sources` and an in-memory fake in the tests.

Where an observed rate comes from, best first (each observation says which, never silently mixed):

1. ``capacity_windows``: the per-minute items capacity-aware routing writes in the usage table
   (``option#<id>`` / ``capacity#<id>#<minute>``, ``rpm`` and ``tpm``): exact per-minute peaks, but
   only for options that had a ``capacity`` and only while the items live (their TTL is about an
   hour). One ``Query`` per option that is not retired.
2. ``cloudwatch``: the per-option ``ProviderCalls`` metric (Sum per minute) the invoke step and the
   streaming path emit, when a deployed stack is read: per-minute request peaks for as long as
   CloudWatch keeps one-minute data (15 days); it has no token count, so never a TPM.
   (1) and (2) are both per-minute readings: the peak is the highest minute either saw.
3. ``metering``: the hourly metered usage (requests, prompt + completion tokens) per route and
   option: the busiest hour divided by 60, an **hourly average**, labelled so (a minute peak is
   higher, by how much the data cannot tell).

A route's own peak minute is derivable only when its options serve no other route (then the sum
of their per-minute readings is the route's traffic); otherwise it is the route's metered hourly
average. Service quotas are matched to a Bedrock option by name: quota names carry the model's
display name, not its id (``On-demand model inference tokens per minute for Anthropic Claude 3
Haiku``), so :func:`match_quotas` compares normalised words and says so when nothing, or more than
one quota, matches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

from switchboard.contract.workflow import format_timestamp
from switchboard.metering import UsageRecord, UsageStore, hour_of
from switchboard.options.model import LlmOption, OptionStatus, ProviderKind

__all__ = [
    "DEFAULT_HEADROOM_THRESHOLD_PCT",
    "DIMENSIONS",
    "QUOTA_BURNDOWN_NOTE",
    "CapacityReport",
    "CapacityWindows",
    "Headroom",
    "MinuteReading",
    "Observed",
    "OptionReport",
    "ProviderCallMinutes",
    "QuotaMatch",
    "QuotaReader",
    "RouteReport",
    "ServiceQuota",
    "Suggestion",
    "build_report",
    "match_quotas",
    "model_words",
    "quota_words",
]

DEFAULT_HEADROOM_THRESHOLD_PCT: Final = 20.0
"""Below this much headroom (in %) the report suggests what would help."""

Dimension = Literal["rpm", "tpm"]
DIMENSIONS: Final[tuple[Dimension, Dimension]] = ("rpm", "tpm")
Source = Literal["capacity_windows", "cloudwatch", "metering"]
Basis = Literal["peak_minute", "hourly_average"]

QUOTA_BURNDOWN_NOTE: Final = (
    "tpm against a Bedrock quota counts each prompt and completion token once; Bedrock draws some "
    "models' output tokens from the quota faster (5x for Anthropic Claude 3.7 and later, see 'How "
    "tokens are counted in Amazon Bedrock') and holds max_tokens while a call runs, so for those the "
    "real quota headroom is smaller than shown"
)

GEO_PREFIXES: Final = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
"""Prefixes of Bedrock cross-region inference profile ids (the model id follows them)."""


# --- what the ports give ------------------------------------------------------------------------


@dataclass(frozen=True)
class MinuteReading:
    """One minute of one option: requests and tokens (None: the source does not count that)."""

    minute: str
    """``YYYY-MM-DDTHH:MM``, UTC."""
    requests: int | None
    tokens: int | None


@dataclass(frozen=True)
class ServiceQuota:
    """One quota of Service Quotas (``ListServiceQuotas`` ``Quotas[]``), in one region."""

    code: str
    name: str
    value: float
    adjustable: bool
    region: str


class CapacityWindows(Protocol):
    """The usage table's per-minute capacity windows of an option (``capacity_windows``)."""

    def minutes(self, option_id: str, *, since: datetime) -> Sequence[MinuteReading]: ...


class ProviderCallMinutes(Protocol):
    """Per-minute ``ProviderCalls`` of options (``cloudwatch``); requests only."""

    def minutes(
        self, option_ids: Sequence[str], *, since: datetime, until: datetime
    ) -> Mapping[str, Sequence[MinuteReading]]: ...


class QuotaReader(Protocol):
    """The Bedrock service quotas of one region (Service Quotas, ServiceCode ``bedrock``)."""

    def bedrock_quotas(self, region: str) -> Sequence[ServiceQuota]: ...


# --- the report's parts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """An observed rate per minute, and how it was observed."""

    value: float
    basis: Basis
    source: Source
    at: str
    """The peak minute (``YYYY-MM-DDTHH:MM``) or the busiest hour (``YYYY-MM-DDTHH``), UTC."""

    def to_dict(self) -> dict[str, Any]:
        return {"value": _round(self.value), "basis": self.basis, "source": self.source, "at": self.at}


@dataclass(frozen=True)
class Headroom:
    """How far ``used`` is below ``limit``: absolute and in % of the limit (negative: over it)."""

    limit: float
    used: float

    @property
    def absolute(self) -> float:
        return self.limit - self.used

    @property
    def pct(self) -> float:
        return 100.0 * self.absolute / self.limit if self.limit > 0 else -math.inf if self.used > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        pct = self.pct
        return {
            "limit": _round(self.limit),
            "used": _round(self.used),
            "headroom": _round(self.absolute),
            "headroom_pct": None if math.isinf(pct) else round(pct, 1),
        }


@dataclass(frozen=True)
class QuotaMatch:
    """The quota matched to one option and dimension, or why none was."""

    quota: ServiceQuota | None
    note: str | None = None
    shared_with: tuple[str, ...] = ()
    """Other options matched to the same quota: their traffic counts against it too."""
    used: float | None = None
    """Sum of the peaks of every option on this quota (an upper bound: peaks need not coincide)."""
    others_capacity: float = 0.0
    """Capacity the other options on this quota are assigned (what this option cannot take)."""

    def to_dict(self) -> dict[str, Any]:
        if self.quota is None:
            return {"matched": False, "note": self.note}
        out: dict[str, Any] = {
            "matched": True,
            "code": self.quota.code,
            "name": self.quota.name,
            "region": self.quota.region,
            "value": _round(self.quota.value),
            "adjustable": self.quota.adjustable,
            "shared_with": list(self.shared_with),
            "headroom": Headroom(self.quota.value, self.used).to_dict() if self.used is not None else None,
        }
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Suggestion:
    code: str
    """Stable: ``cross_region_profile``, ``second_region``, ``raise_capacity``, ``quota_increase``,
    ``capacity_above_quota``, ``set_capacity``."""
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class OptionReport:
    option: LlmOption
    region: str
    routes: list[str]
    observed: dict[Dimension, Observed | None]
    quotas: dict[Dimension, QuotaMatch] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)

    def capacity(self, dimension: Dimension) -> int | None:
        return getattr(self.option.capacity, dimension) if self.option.capacity is not None else None

    def headroom(self, dimension: Dimension) -> Headroom | None:
        limit, seen = self.capacity(dimension), self.observed[dimension]
        return Headroom(limit, seen.value if seen else 0.0) if limit is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option.id,
            "provider": self.option.provider.value,
            "model": self.option.model,
            "region": self.region,
            "status": self.option.status.value,
            "routes": self.routes,
            **{
                dimension: {
                    "capacity": self.capacity(dimension),
                    "observed": _maybe(self.observed[dimension]),
                    "headroom": _maybe(self.headroom(dimension)),
                    "quota": self.quotas[dimension].to_dict() if dimension in self.quotas else None,
                }
                for dimension in DIMENSIONS
            },
            "suggestions": [s.to_dict() for s in self.suggestions],
        }


@dataclass
class RouteReport:
    route: str
    kind: str
    options: list[str]
    capacity: dict[Dimension, int | None]
    """Sum over the chain's options; None when one of them is unlimited (or unknown) there."""
    observed: dict[Dimension, Observed | None]
    regions: list[str]
    note: str | None = None
    suggestions: list[Suggestion] = field(default_factory=list)

    def headroom(self, dimension: Dimension) -> Headroom | None:
        limit, seen = self.capacity[dimension], self.observed[dimension]
        return Headroom(limit, seen.value if seen else 0.0) if limit is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "kind": self.kind,
            "options": self.options,
            "regions": self.regions,
            **{
                dimension: {
                    "capacity": self.capacity[dimension],
                    "observed": _maybe(self.observed[dimension]),
                    "headroom": _maybe(self.headroom(dimension)),
                }
                for dimension in DIMENSIONS
            },
            "note": self.note,
            "suggestions": [s.to_dict() for s in self.suggestions],
        }


@dataclass
class CapacityReport:
    since: datetime
    until: datetime
    threshold_pct: float
    options: list[OptionReport]
    routes: list[RouteReport]
    sources: dict[str, str]
    """What each source said: ``read``, ``not read: <why>`` or ``failed: <why>``."""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "headroom_threshold_pct": self.threshold_pct,
            "sources": self.sources,
            "options": [o.to_dict() for o in self.options],
            "routes": [r.to_dict() for r in self.routes],
            "notes": self.notes,
        }


def _maybe(value: Observed | Headroom | None) -> dict[str, Any] | None:
    return value.to_dict() if value is not None else None


def _round(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 2)


def _iso(moment: datetime) -> str:
    return format_timestamp(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


# --- routes from the flag document ----------------------------------------------------------------


@dataclass(frozen=True)
class RouteChains:
    """A route of the flag document: its kind and the options its enabled variants' chains name."""

    route: str
    kind: str
    options: tuple[str, ...]


def route_chains(document: Mapping[str, Any], kinds: Mapping[str, str]) -> list[RouteChains]:
    """Each route's options: every ``chain`` of its enabled variants, in order, without repeats.

    ``smaller_chain`` (the degrade policy's) is left out: it serves only when the chain could not,
    and counting it would overstate what the route may take in normal operation.
    """
    values = document.get("values")
    values = values if isinstance(values, Mapping) else {}
    found: list[RouteChains] = []
    for route, kind in kinds.items():
        value = values.get(route)
        entries: list[Mapping[str, Any]] = []
        if isinstance(value, Mapping):
            variants = value.get("_variants")
            if isinstance(variants, list):
                entries = [
                    v["attributeValues"]
                    for v in variants
                    if isinstance(v, Mapping)
                    and v.get("enabled") is True
                    and isinstance(v.get("attributeValues"), Mapping)
                ]
            elif value.get("enabled") is True:
                entries = [value]
        ordered: dict[str, None] = {}
        for entry in entries:
            chain = entry.get("chain")
            for option_id in chain if isinstance(chain, list) else []:
                if isinstance(option_id, str):
                    ordered.setdefault(option_id, None)
        found.append(RouteChains(route, kind, tuple(ordered)))
    return found


# --- quota matching ---------------------------------------------------------------------------------

_QUOTA_NAME = re.compile(
    r"^(?P<scope>on-demand|cross-region|global cross-region)\s+(?:model inference|invokemodel)\s+"
    r"(?P<what>requests|tokens)\s+per\s+minute\s+for\s+(?P<model>.+)$",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"[^a-z0-9]+")
_LETTERS_DIGITS = re.compile(r"[a-z]+|\d+")
_DATE = re.compile(r"^\d{8}$|^\d{4}$")
_DEFAULT_VERSION = re.compile(r"^v1$")
_CONTEXT_SUFFIX = re.compile(r":(\d+k?)$|:\d+:\d+k$")
Scope = Literal["on-demand", "cross-region", "global cross-region"]


def _words(text: str) -> list[str]:
    words: list[str] = []
    for chunk in _SPLIT.split(text.lower()):
        words.extend(_LETTERS_DIGITS.findall(chunk))
    return words


def _squeeze(words: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for word in words:
        if not out or out[-1] != word:  # mistral.mistral-large: the provider repeated in the name
            out.append(word)
    return tuple(out)


def model_words(model_id: str) -> tuple[Scope, tuple[str, ...]]:
    """The quota scope a Bedrock model id is called under and its name as comparable words.

    ``us.anthropic.claude-3-5-haiku-20241022-v1:0`` → (``cross-region``, anthropic claude 3 5
    haiku): the profile prefix sets the scope; release dates, the default ``v1`` and the ``:0``
    suffix are not part of a display name, a ``v2`` is (quota names say "V2").
    """
    scope: Scope = "on-demand"
    rest = model_id
    for prefix in GEO_PREFIXES:
        if rest.startswith(prefix):
            scope = "global cross-region" if prefix == "global." else "cross-region"
            rest = rest[len(prefix) :]
            break
    rest = _CONTEXT_SUFFIX.sub("", rest)
    kept = [
        chunk
        for chunk in re.split(r"[-._]", rest.lower())
        if chunk and not _DATE.match(chunk) and not _DEFAULT_VERSION.match(chunk)
    ]
    return scope, _squeeze(_words(" ".join(kept)))


def quota_words(quota_name: str) -> tuple[Scope, Dimension, tuple[str, ...]] | None:
    """A per-minute model quota's scope, dimension and model name as words; None for any other."""
    found = _QUOTA_NAME.match(quota_name.strip())
    if found is None:
        return None
    scope: Scope = found["scope"].lower()  # type: ignore[assignment]
    dimension: Dimension = "rpm" if found["what"].lower() == "requests" else "tpm"
    words = [w for w in _words(found["model"]) if not _DEFAULT_VERSION.match(w)]
    return scope, dimension, _squeeze(words)


def _same_model(id_words: tuple[str, ...], name_words: tuple[str, ...]) -> bool:
    """Equal word for word, or equal once the id's provider word is dropped (names may omit it)."""
    return id_words == name_words or (len(id_words) > 1 and id_words[1:] == name_words)


def match_quotas(model_id: str, quotas: Iterable[ServiceQuota]) -> dict[Dimension, QuotaMatch]:
    """The per-minute request and token quotas of ``model_id``'s scope, matched by model name."""
    scope, id_words = model_words(model_id)
    candidates: dict[Dimension, list[ServiceQuota]] = {"rpm": [], "tpm": []}
    for quota in quotas:
        parsed = quota_words(quota.name)
        if parsed is None:
            continue
        quota_scope, dimension, name_words = parsed
        if quota_scope == scope and _same_model(id_words, name_words):
            candidates[dimension].append(quota)
    result: dict[Dimension, QuotaMatch] = {}
    for dimension in DIMENSIONS:
        found = candidates[dimension]
        what = "requests" if dimension == "rpm" else "tokens"
        if len(found) == 1:
            result[dimension] = QuotaMatch(found[0])
        elif not found:
            result[dimension] = QuotaMatch(
                None,
                note=f"no {scope} {what}-per-minute quota names this model ({model_id}); quota names use "
                "the model's display name: check `aws service-quotas list-service-quotas "
                "--service-code bedrock`",
            )
        else:
            names = "; ".join(q.name for q in found)
            result[dimension] = QuotaMatch(None, note=f"more than one quota matches {model_id}: {names}")
    return result


# --- observations -----------------------------------------------------------------------------------


def _peak_minute(readings: Iterable[tuple[Source, MinuteReading]], dimension: Dimension) -> Observed | None:
    best: Observed | None = None
    for source, reading in readings:
        value = reading.requests if dimension == "rpm" else reading.tokens
        if value is None:
            continue
        if best is None or value > best.value or (value == best.value and reading.minute < best.at):
            best = Observed(float(value), "peak_minute", source, reading.minute)
    return best


def _busiest_hour(per_hour: Mapping[str, tuple[int, int]], dimension: Dimension) -> Observed | None:
    best: Observed | None = None
    for hour, (requests, tokens) in sorted(per_hour.items()):
        value = (requests if dimension == "rpm" else tokens) / 60.0
        if best is None or value > best.value:
            best = Observed(value, "hourly_average", "metering", hour)
    return best


def _hourly(records: Iterable[UsageRecord], key: str) -> dict[str, dict[str, tuple[int, int]]]:
    """``{option_id or route: {hour: (requests, prompt + completion tokens)}}`` over every tenant."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for record in records:
        name = record.group.option_id if key == "option" else record.group.route
        hours = out.setdefault(name, {})
        requests, tokens = hours.get(record.hour, (0, 0))
        totals = record.totals
        hours[record.hour] = (
            requests + totals.requests,
            tokens + totals.prompt_tokens + totals.completion_tokens,
        )
    return out


# --- suggestions ------------------------------------------------------------------------------------


def _geo_prefix(region: str) -> str:
    if region.startswith("us-gov-"):
        return "us-gov."
    for start, prefix in (("us-", "us."), ("eu-", "eu."), ("ap-", "apac."), ("ca-", "us.")):
        if region.startswith(start):
            return prefix
    return "global."


def _low(headroom: Headroom | None, threshold: float) -> bool:
    return headroom is not None and headroom.pct < threshold


def _observed_text(observed: Observed | None) -> str:
    if observed is None:
        return "nothing observed"
    if observed.basis == "hourly_average":
        return f"{_round(observed.value)}/min as an hourly average (the peak minute is higher)"
    return f"a peak of {_round(observed.value)}/min ({observed.at}, {observed.source})"


def _option_suggestions(
    report: OptionReport, chains: Mapping[str, tuple[str, ...]], regions: Mapping[str, str], threshold: float
) -> list[Suggestion]:
    option = report.option
    found: list[Suggestion] = []
    tight = [d for d in DIMENSIONS if _low(report.headroom(d), threshold)]
    quota_tight = [
        d
        for d in DIMENSIONS
        if (m := report.quotas.get(d)) is not None
        and m.quota is not None
        and m.used is not None
        and _low(Headroom(m.quota.value, m.used), threshold)
    ]
    if option.capacity is None and any(report.observed[d] for d in DIMENSIONS):
        found.append(
            Suggestion(
                "set_capacity",
                f"{option.id} has no capacity: set `capacity` (rpm/tpm, its share of the provider quota) so "
                "traffic above it goes to the next candidate instead of being throttled by the provider",
            )
        )
    for dimension in tight:
        seen = report.observed[dimension]
        limit = report.capacity(dimension)
        assert limit is not None
        wanted = math.ceil((seen.value if seen else 0) / (1 - threshold / 100.0))
        match = report.quotas.get(dimension)
        if match is not None and match.quota is not None:
            spare = match.quota.value - _shared_capacity(report, dimension, match)
            if spare > 0:
                target = int(min(max(wanted, limit + 1), limit + spare))
                found.append(
                    Suggestion(
                        "raise_capacity",
                        f"{option.id} {dimension}: {_observed_text(seen)} against a capacity of {limit}; "
                        f"the quota {match.quota.name!r} leaves {_round(spare)} unassigned: raise "
                        f"capacity.{dimension} to {target}",
                    )
                )
            else:
                found.append(
                    Suggestion(
                        "quota_increase",
                        f"{option.id} {dimension}: {_observed_text(seen)} against a capacity of {limit}, "
                        f"and the quota {match.quota.name!r} ({match.quota.code}) is fully assigned to "
                        "options' capacity: raise the quota before raising capacity",
                    )
                )
        else:
            found.append(
                Suggestion(
                    "raise_capacity",
                    f"{option.id} {dimension}: {_observed_text(seen)} against a capacity of {limit}: raise "
                    f"capacity.{dimension} to about {max(wanted, limit + 1)} if the provider quota allows "
                    "(no Bedrock quota was read for it)",
                )
            )
    for dimension in quota_tight:
        match = report.quotas[dimension]
        assert match.quota is not None and match.used is not None
        how = (
            "request an increase in Service Quotas"
            if match.quota.adjustable
            else "it is not adjustable: spread the load over another region or an inference profile"
        )
        found.append(
            Suggestion(
                "quota_increase",
                f"{option.id} {dimension}: the options on quota {match.quota.name!r} ({match.quota.code}, "
                f"{match.quota.region}) peak at {_round(match.used)} of {_round(match.quota.value)}: {how}",
            )
        )
    for dimension in DIMENSIONS:
        match = report.quotas.get(dimension)
        if match is not None and match.quota is not None:
            assigned = _shared_capacity(report, dimension, match)
            if assigned > match.quota.value:
                found.append(
                    Suggestion(
                        "capacity_above_quota",
                        f"{option.id} {dimension}: the capacity assigned on quota {match.quota.name!r} "
                        f"({_round(assigned)}) is above the quota ({_round(match.quota.value)}): the "
                        "provider throttles before capacity-aware routing steps in; lower capacity or raise "
                        "the quota",
                    )
                )
    if tight or quota_tight:
        model = option.model or ""
        in_region = not model.startswith((*GEO_PREFIXES, "arn:"))
        if option.provider is ProviderKind.BEDROCK and model and in_region:
            prefix = _geo_prefix(report.region)
            found.append(
                Suggestion(
                    "cross_region_profile",
                    f"{option.id}: call the cross-region inference profile {prefix}{model} (or "
                    f"global.{model}) instead of the in-region model: it draws on the cross-region "
                    "quota and spreads load over the profile's regions (check that the profile exists "
                    "with `aws bedrock list-inference-profiles`, and grant bedrock:InvokeModel on it)",
                )
            )
        lonely = [
            route
            for route in report.routes
            if {regions.get(other, report.region) for other in chains.get(route, ())} <= {report.region}
        ]
        if lonely:
            found.append(
                Suggestion(
                    "second_region",
                    f"{option.id}: route(s) {', '.join(lonely)} have no option outside {report.region}: add "
                    "an option of the same model in a second region to their chain",
                )
            )
    return found


def _shared_capacity(report: OptionReport, dimension: Dimension, match: QuotaMatch) -> float:
    """Capacity assigned on ``match``'s quota: this option's and the other options' on it."""
    return float(report.capacity(dimension) or 0) + match.others_capacity


def _route_suggestions(route: RouteReport, threshold: float) -> list[Suggestion]:
    found: list[Suggestion] = []
    if any(_low(route.headroom(d), threshold) for d in DIMENSIONS) and len(route.regions) <= 1:
        where = route.regions[0] if route.regions else "one region"
        found.append(
            Suggestion(
                "second_region",
                f"route {route.route}: every option of its chain is in {where}: add an option in a second "
                "region (or a cross-region inference profile) to its chain",
            )
        )
    for dimension in DIMENSIONS:
        if _low(route.headroom(dimension), threshold):
            found.append(
                Suggestion(
                    "raise_capacity",
                    f"route {route.route} {dimension}: {_observed_text(route.observed[dimension])} against "
                    f"the chain's {route.capacity[dimension]}: raise its options' capacity or add an option",
                )
            )
    return found


# --- the use case -----------------------------------------------------------------------------------


def build_report(
    *,
    options: Sequence[LlmOption],
    document: Mapping[str, Any] | None,
    route_kinds: Mapping[str, str],
    default_region: str,
    since: datetime,
    until: datetime,
    windows: CapacityWindows | None,
    usage: UsageStore | None,
    provider_calls: ProviderCallMinutes | None = None,
    quotas: QuotaReader | None = None,
    threshold_pct: float = DEFAULT_HEADROOM_THRESHOLD_PCT,
    sources: Mapping[str, str] | None = None,
) -> CapacityReport:
    """Read every source, then compute observations, headrooms and suggestions.

    A source that fails is reported in ``sources`` (``failed: …``) and the report goes on with the
    others; ``sources`` given by the caller (e.g. ``not read: --local``) are kept as they are.
    """
    status: dict[str, str] = dict(sources or {})
    live = [o for o in options if o.status is not OptionStatus.RETIRED]
    regions = {o.id: o.region or default_region for o in options}
    chains = route_chains(document, route_kinds) if document is not None else []
    chain_of = {c.route: c.options for c in chains}
    routes_of: dict[str, list[str]] = {}
    for chain in chains:
        for option_id in chain.options:
            routes_of.setdefault(option_id, []).append(chain.route)

    per_minute: dict[str, list[tuple[Source, MinuteReading]]] = {o.id: [] for o in options}
    if windows is not None:
        try:
            for option in live:  # every option: a capacity removed since has left its windows
                readings = windows.minutes(option.id, since=since)
                per_minute[option.id] += [("capacity_windows", r) for r in readings]
            status["capacity_windows"] = "read"
        except Exception as exc:
            status["capacity_windows"] = f"failed: {_why(exc)}"
    if provider_calls is not None:
        try:
            calls = provider_calls.minutes([o.id for o in live], since=since, until=until)
            for option_id, readings in calls.items():
                per_minute.setdefault(option_id, []).extend(("cloudwatch", r) for r in readings)
            status["cloudwatch"] = "read"
        except Exception as exc:
            status["cloudwatch"] = f"failed: {_why(exc)}"
    records: list[UsageRecord] = []
    if usage is not None:
        try:
            records = list(usage.hours_since(tenant=None, since_hour=hour_of(since)))
            status["metering"] = "read"
        except Exception as exc:
            status["metering"] = f"failed: {_why(exc)}"
    by_option, by_route = _hourly(records, "option"), _hourly(records, "route")

    reports: list[OptionReport] = []
    for option in live:
        observed: dict[Dimension, Observed | None] = {}
        for dimension in DIMENSIONS:
            observed[dimension] = _peak_minute(per_minute.get(option.id, []), dimension) or _busiest_hour(
                by_option.get(option.id, {}), dimension
            )
        reports.append(OptionReport(option, regions[option.id], routes_of.get(option.id, []), observed))

    _match_quotas(reports, quotas, status)
    for report in reports:
        report.suggestions = _option_suggestions(report, chain_of, regions, threshold_pct)

    capacity_of = {o.id: o.capacity for o in options}
    route_reports: list[RouteReport] = []
    for chain in chains:
        route_reports.append(
            _route_report(chain, capacity_of, regions, per_minute, by_route.get(chain.route, {}), routes_of)
        )
        route_reports[-1].suggestions = _route_suggestions(route_reports[-1], threshold_pct)

    notes = []
    if status.get("capacity_windows") == "read":
        notes.append(
            "capacity windows exist only for options with a capacity and live about an hour (their TTL): "
            "older minutes come from CloudWatch or, as hourly averages, from metering"
        )
    if any(m.quota is not None for r in reports for d, m in r.quotas.items() if d == "tpm"):
        notes.append(QUOTA_BURNDOWN_NOTE)
    return CapacityReport(since, until, threshold_pct, reports, route_reports, status, notes)


def _match_quotas(reports: list[OptionReport], quotas: QuotaReader | None, status: dict[str, str]) -> None:
    """Match each Bedrock option to its quotas, then total the peaks and capacities per quota."""
    if quotas is None:
        return
    by_region: dict[str, Sequence[ServiceQuota]] = {}
    failures: list[str] = []
    for report in reports:
        if report.option.provider is not ProviderKind.BEDROCK or not report.option.model:
            why = "not a Bedrock option: no Bedrock service quota applies"
            report.quotas = {d: QuotaMatch(None, note=why) for d in DIMENSIONS}
            continue
        if report.region not in by_region:
            try:
                by_region[report.region] = quotas.bedrock_quotas(report.region)
            except Exception as exc:
                failures.append(f"{report.region}: {_why(exc)}")
                by_region[report.region] = ()
        if not by_region[report.region] and failures:
            report.quotas = {d: QuotaMatch(None, note="service quotas could not be read") for d in DIMENSIONS}
            continue
        report.quotas = match_quotas(report.option.model, by_region[report.region])
    status["service_quotas"] = "read" if not failures else f"failed: {'; '.join(failures)}"
    on_quota: dict[tuple[str, str, Dimension], list[OptionReport]] = {}
    for report in reports:
        for dimension, match in report.quotas.items():
            if match.quota is not None:
                on_quota.setdefault((match.quota.region, match.quota.code, dimension), []).append(report)
    for (_region, _code, dimension), sharing in on_quota.items():
        used = sum(_value(r.observed[dimension]) for r in sharing)
        for report in sharing:
            old = report.quotas[dimension]
            others = [r for r in sharing if r is not report]
            report.quotas[dimension] = QuotaMatch(
                old.quota,
                old.note,
                tuple(r.option.id for r in others),
                used,
                float(sum(r.capacity(dimension) or 0 for r in others)),
            )


def _route_report(
    chain: RouteChains,
    capacity_of: Mapping[str, Any],
    regions: Mapping[str, str],
    per_minute: Mapping[str, list[tuple[Source, MinuteReading]]],
    route_hours: Mapping[str, tuple[int, int]],
    routes_of: Mapping[str, list[str]],
) -> RouteReport:
    capacity: dict[Dimension, int | None] = {}
    for dimension in DIMENSIONS:
        values = [getattr(capacity_of.get(o), dimension, None) for o in chain.options]
        capacity[dimension] = (
            sum(v for v in values if v is not None) if values and None not in values else None
        )
    shared = sorted({o for o in chain.options if len(routes_of.get(o, [])) > 1})
    observed: dict[Dimension, Observed | None] = {}
    note = None
    if chain.options and not shared:
        for dimension in DIMENSIONS:
            observed[dimension] = _route_peak_minute(chain.options, per_minute, dimension)
    else:
        if shared:
            note = (
                f"options {', '.join(shared)} also serve other routes: the route's peak minute cannot be "
                "told apart, its hourly average comes from metering"
            )
        observed = {d: None for d in DIMENSIONS}
    for dimension in DIMENSIONS:
        if observed[dimension] is None:
            observed[dimension] = _busiest_hour(route_hours, dimension)
    return RouteReport(
        chain.route,
        chain.kind,
        list(chain.options),
        capacity,
        observed,
        sorted({regions.get(o, "?") for o in chain.options if o in regions}),
        note,
    )


def _route_peak_minute(
    option_ids: Sequence[str],
    per_minute: Mapping[str, list[tuple[Source, MinuteReading]]],
    dimension: Dimension,
) -> Observed | None:
    """The busiest minute of options that serve only this route: per option and minute the highest
    reading of any source, summed over the options."""
    totals: dict[str, float] = {}
    sources: dict[str, set[Source]] = {}
    for option_id in option_ids:
        best: dict[str, tuple[float, Source]] = {}
        for source, reading in per_minute.get(option_id, []):
            value = reading.requests if dimension == "rpm" else reading.tokens
            if value is not None and (reading.minute not in best or value > best[reading.minute][0]):
                best[reading.minute] = (float(value), source)
        for minute, (amount, seen_by) in best.items():
            totals[minute] = totals.get(minute, 0.0) + amount
            sources.setdefault(minute, set()).add(seen_by)
    if not totals:
        return None
    minute = max(sorted(totals), key=lambda m: totals[m])
    label: Source = "capacity_windows" if "capacity_windows" in sources[minute] else "cloudwatch"
    return Observed(totals[minute], "peak_minute", label, minute)


def _value(observed: Observed | None) -> float:
    return observed.value if observed is not None else 0.0


def _why(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error") or {}
        if error.get("Code"):
            return f"{error['Code']}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
