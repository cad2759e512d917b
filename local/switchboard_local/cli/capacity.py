"""`switchboard capacity report`: observed peak RPM/TPM per option and route, headroom, what would help.

The report logic is :mod:`switchboard.capacity_report`; this module picks the sources for the
target and prints. Locally (`--local`) it reads the usage table and the options table of the local
stack's emulated AWS; CloudWatch and Service Quotas are not read there (the local stack emits no
CloudWatch metrics and has no account quotas). Against a deployed stack it also reads CloudWatch
(`cloudwatch:GetMetricData`, the per-option `ProviderCalls` metric) and Service Quotas
(`servicequotas:ListServiceQuotas`, ServiceCode `bedrock`, in each option's region); a source it
may not read is named in the output, and the report goes on without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from switchboard.capacity_report import (
    DEFAULT_HEADROOM_THRESHOLD_PCT,
    DIMENSIONS,
    CapacityReport,
    Headroom,
    Observed,
    build_report,
)
from switchboard.capacity_sources import CloudWatchProviderCalls, DynamoCapacityWindows, ServiceQuotasBedrock
from switchboard.options.store import OptionsStore
from switchboard.routing.document import route_kinds
from switchboard.usage_store import DynamoUsageStore
from switchboard_local.cli import routes as routes_cli
from switchboard_local.cli.common import aws_errors
from switchboard_local.cli.target import TargetError, add_target_arguments, aws_client, resolve_target
from switchboard_local.cli.usage import parse_since

DEFAULT_HOURS = 24.0

JSON_HELP = """\
--json prints one object with these keys (stable; new keys may be added):
  since, until                  the period read (UTC, ISO 8601)
  headroom_threshold_pct        below this headroom a suggestion is made
  sources                       {capacity_windows|cloudwatch|metering|service_quotas: "read" |
                                 "not read: <why>" | "failed: <why>"}
  options[]                     one per option not retired:
    option, provider, model, region, status, routes[]
    rpm, tpm                    each {capacity (int|null),
                                      observed {value, basis: peak_minute|hourly_average,
                                                source: capacity_windows|cloudwatch|metering, at} | null,
                                      headroom {limit, used, headroom, headroom_pct} | null,
                                      quota {matched: true, code, name, region, value, adjustable,
                                             shared_with[], headroom{...}} |
                                            {matched: false, note} | null (quotas not read)}
    suggestions[]               {code, message}; code is one of cross_region_profile,
                                 second_region, raise_capacity, quota_increase,
                                 capacity_above_quota, set_capacity
  routes[]                      one per route of the flag document:
    route, kind, options[] (its enabled variants' chains), regions[]
    rpm, tpm                    each {capacity (sum over the options; null if one is unlimited),
                                      observed, headroom} as above
    note, suggestions[]
  notes[]
"""


def _positive_hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hours must be a number of hours, got {text!r}") from None
    if not 0 < value <= 24 * 455:
        raise argparse.ArgumentTypeError("--hours must be above 0 and at most 10920 (455 days)")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--headroom-below must be a percentage, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("--headroom-below must be between 0 and 100")
    return value


def collect(args: argparse.Namespace, *, now: datetime) -> CapacityReport:
    """Read the target's options, routes and every source it allows, then build the report."""
    target = resolve_target(args)
    since = args.since if args.since is not None else now - timedelta(hours=args.hours or DEFAULT_HOURS)
    options = OptionsStore(target.options_table, client=target.client("dynamodb"), ttl_s=0).all()
    sources: dict[str, str] = {}
    notes: list[str] = []
    document: dict[str, Any] | None = None
    kinds: dict[str, str] = {}
    try:
        served = routes_cli.served_document(target)
        document, kinds = served.document, route_kinds(served.document)
    except (TargetError, ClientError, BotoCoreError) as exc:  # options still report without routes
        notes.append(f"routes not read: {exc}")
    usage_table = getattr(target, "usage_table", None)
    windows = usage = None
    if usage_table:
        dynamodb = target.client("dynamodb")
        windows = DynamoCapacityWindows(usage_table, client=dynamodb)
        usage = DynamoUsageStore(usage_table, client=dynamodb)
    else:
        sources["capacity_windows"] = sources["metering"] = "not read: the target has no usage table"
    provider_calls = quotas = None
    if args.local:
        sources["cloudwatch"] = "not read: --local (the local stack emits no CloudWatch metrics)"
        sources["service_quotas"] = "not read: --local (no account quotas)"
    else:
        provider_calls = CloudWatchProviderCalls(target.client("cloudwatch"))
        quotas = ServiceQuotasBedrock(
            lambda region: aws_client("service-quotas", region=region, endpoint_url=target.endpoint_url)
        )
    report = build_report(
        options=options,
        document=document,
        route_kinds=kinds,
        default_region=target.region,
        since=since,
        until=now,
        windows=windows,
        usage=usage,
        provider_calls=provider_calls,
        quotas=quotas,
        threshold_pct=args.headroom_below,
        sources=sources,
    )
    report.notes[:0] = notes
    return report


# --------------------------------------------------------------------------------------------------
# Human output


def _observed(observed: Observed | None) -> str:
    if observed is None:
        return "-"
    value = f"{observed.value:,.0f}" if observed.value >= 10 else f"{observed.value:.2g}"
    return f"{value}{'~h' if observed.basis == 'hourly_average' else ''}"


def _limit(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _headroom(headroom: Headroom | None) -> str:
    if headroom is None:
        return "-"
    pct = headroom.pct
    return f"{headroom.absolute:,.0f} ({pct:.0f}%)" if pct != float("-inf") else f"{headroom.absolute:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(header[i]), *(len(row[i]) for row in rows)) if rows else len(header[i])
        for i in range(len(header))
    ]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in [header, *rows]
    ]


def render(report: CapacityReport) -> str:
    since = report.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    until = report.until.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    lines = [f"capacity from {since} to {until} (per minute; ~h = an hourly average, not a peak)"]
    header = ["option", "region"]
    for dimension in DIMENSIONS:
        header += [f"{dimension} peak", "capacity", "headroom", "quota", "quota headroom"]
    rows: list[list[str]] = []
    for option in report.options:
        row = [option.option.id, option.region]
        for dimension in DIMENSIONS:
            match = option.quotas.get(dimension)
            quota = match.quota if match is not None else None
            quota_headroom = (
                Headroom(quota.value, match.used) if quota and match and match.used is not None else None
            )
            row += [
                _observed(option.observed[dimension]),
                _limit(option.capacity(dimension)),
                _headroom(option.headroom(dimension)),
                _limit(quota.value) if quota else ("?" if match is not None else "-"),
                _headroom(quota_headroom),
            ]
        rows.append(row)
    lines += ["", *_table(header, rows)]
    route_header = ["route", "options", "regions"]
    for dimension in DIMENSIONS:
        route_header += [f"{dimension} peak", "capacity", "headroom"]
    route_rows = [
        [
            route.route,
            ",".join(route.options),
            ",".join(route.regions),
            *(
                cell
                for dimension in DIMENSIONS
                for cell in (
                    _observed(route.observed[dimension]),
                    _limit(route.capacity[dimension]),
                    _headroom(route.headroom(dimension)),
                )
            ),
        ]
        for route in report.routes
    ]
    if route_rows:
        lines += ["", *_table(route_header, route_rows)]
    unmatched = [
        f"  {option.option.id} {dimension}: {match.note}"
        for option in report.options
        for dimension, match in option.quotas.items()
        if match.quota is None and match.note
    ]
    if unmatched:
        lines += ["", "quotas not matched:", *unmatched]
    advice = [f"  - [{s.code}] {s.message}" for o in report.options for s in o.suggestions]
    advice += [f"  - [{s.code}] {s.message}" for r in report.routes for s in r.suggestions]
    lines += ["", f"what would help (headroom below {report.threshold_pct:g} %):", *(advice or ["  nothing"])]
    lines += ["", "sources:", *(f"  {name}: {state}" for name, state in sorted(report.sources.items()))]
    route_notes = [f"  {r.route}: {r.note}" for r in report.routes if r.note]
    if report.notes or route_notes:
        lines += ["", "notes:", *(f"  {note}" for note in report.notes), *route_notes]
    return "\n".join(lines)


@aws_errors
def cmd_report(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.since is not None and args.since >= now:
        print(f"switchboard capacity: --since {args.since.isoformat()} is in the future", file=sys.stderr)
        return 2
    report = collect(args, now=now)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "capacity", help="capacity planning: observed peaks against capacity and quotas"
    )
    sub = group.add_subparsers(dest="command", required=True, metavar="{report}")
    p = sub.add_parser(
        "report",
        help="per option and route: observed peak RPM/TPM, capacity, quotas, headroom, what would help",
        description=__doc__,
        epilog=JSON_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    period = p.add_mutually_exclusive_group()
    period.add_argument(
        "--since", type=parse_since, help="ISO 8601 date or time (UTC unless it says otherwise)"
    )
    period.add_argument(
        "--hours", type=_positive_hours, help=f"the last N hours (default: {DEFAULT_HOURS:g})"
    )
    p.add_argument(
        "--headroom-below",
        type=_threshold,
        default=DEFAULT_HEADROOM_THRESHOLD_PCT,
        metavar="PCT",
        help=f"suggest what would help below this headroom (default: {DEFAULT_HEADROOM_THRESHOLD_PCT:g})",
    )
    p.add_argument("--json", action="store_true", help="print JSON (keys below)")
    add_target_arguments(p)
    p.set_defaults(func=cmd_report)
