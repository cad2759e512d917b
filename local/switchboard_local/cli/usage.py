"""`switchboard usage`: metered tokens, requests and cost per tenant, from the usage table (issue 15).

Totals of `prompt_tokens`, `completion_tokens`, `cached_tokens`, `requests` and `cost_usd` (list
price, an exact decimal string) from the hour `--since` falls in (default: the start of the
current UTC month) until now, for one tenant (`--tenant`: one Query of its partition) or every
tenant (a Scan: operator credentials, never the functions'), one row per tenant or per tenant and
`--by` route, option, key or hour. `--json` prints them for machines; without it, a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from switchboard.metering import GroupBy, Metering, UsageTotals, hour_of
from switchboard.usage_store import DynamoUsageStore
from switchboard_local.cli.common import aws_errors
from switchboard_local.cli.target import TargetError, add_target_arguments, resolve_target

COLUMNS = ("prompt_tokens", "completion_tokens", "cached_tokens", "requests", "cost_usd")


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or date-time (`2026-11-01`, `2026-11-30T08:00Z`); without an offset, UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad --since {text!r}: use an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-30T08:00Z"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _tenant(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("--tenant needs a tenant name")
    return text


def start_of_month(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _metering(args: argparse.Namespace) -> Metering:
    target = resolve_target(args)
    table = getattr(target, "usage_table", None)
    if not table:
        raise TargetError(
            "this target has no usage table (usage_table): redeploy the stack, or restart the local "
            "stack with `make local`, so its outputs include the usage table"
        )
    return Metering(DynamoUsageStore(str(table), client=target.client("dynamodb")))


def report(metering: Metering, *, tenant: str | None, since: datetime, by: GroupBy | None) -> dict[str, Any]:
    """What `--json` prints: the query, one row per tenant (and group), and the grand total."""
    rows: list[dict[str, Any]] = []
    total = UsageTotals()
    for (row_tenant, value), totals in metering.totals(tenant=tenant, since=since, by=by).items():
        rows.append(
            {"tenant": row_tenant, **({by.value: value} if by is not None else {}), **totals.to_dict()}
        )
        total += totals
    return {
        "tenant": tenant,
        "since_hour": hour_of(since),
        "by": by.value if by is not None else None,
        "rows": rows,
        "total": total.to_dict(),
    }


def _print_table(data: dict[str, Any]) -> None:
    keys = ["tenant", *([data["by"]] if data["by"] else []), *COLUMNS]
    lines = [[str(row[key]) for key in keys] for row in data["rows"]]
    lines.append(["total", *([""] if data["by"] else []), *(str(data["total"][c]) for c in COLUMNS)])
    widths = [max(len(key), *(len(line[i]) for line in lines)) for i, key in enumerate(keys)]
    print(f"usage since {data['since_hour']}:00Z (UTC hours)")
    print("  ".join(key.ljust(widths[i]) for i, key in enumerate(keys)).rstrip())
    for line in lines:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


@aws_errors
def cmd_usage(args: argparse.Namespace) -> int:
    since = args.since or start_of_month(datetime.now(UTC))
    if since > datetime.now(UTC):
        print(f"switchboard usage: --since {since.isoformat()} is in the future", file=sys.stderr)
        return 2
    by = GroupBy(args.by) if args.by else None
    data = report(_metering(args), tenant=args.tenant, since=since, by=by)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_table(data)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("usage", help="metered tokens, requests and cost per tenant")
    p.add_argument("--tenant", type=_tenant, help="one tenant (default: every tenant)")
    p.add_argument(
        "--since",
        type=parse_since,
        help="ISO 8601 date or time, UTC unless it says otherwise; whole hours from the one it falls "
        "in (default: the start of this month)",
    )
    p.add_argument("--by", choices=[g.value for g in GroupBy], help="one row per route, option, key or hour")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_target_arguments(p)
    p.set_defaults(func=cmd_usage)
