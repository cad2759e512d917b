"""`switchboard limits …` and `switchboard budgets …`: a tenant's rpm/tpm limits and its budget.

Both live in the usage table (``switchboard.quotas``). Every value is checked by the same model
the gateway reads them with, so what the CLI accepts the gateway can use, and a refusal names the
flag and why. ``limits set`` changes only the limits it is given (``off`` removes one); ``budgets
set`` replaces the whole budget. Gateways pick a change up within a few seconds (their settings
cache, ``switchboard.quotas.service.SETTINGS_TTL_S``).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any

from switchboard.circuits.timefmt import utcnow
from switchboard.contract.workflow import format_timestamp
from switchboard.quotas.dynamo import DynamoUsageCounters
from switchboard.quotas.model import (
    DEFAULT_LOW_AT,
    ON_EXHAUSTED,
    PERIODS,
    Budget,
    QuotaSettingError,
    TenantLimits,
    budget_status,
    check_tenant,
    parse_usd,
    period_end,
    share,
    whole_number,
)
from switchboard.quotas.service import BudgetBook, QuotaSettingsStore, RateLimiter
from switchboard_local.cli.common import aws_errors, cli_actor
from switchboard_local.cli.target import TargetError, add_target_arguments, resolve_target

OFF = "off"


def _err(args: argparse.Namespace, message: str) -> int:
    print(f"switchboard {args.group}: {message}", file=sys.stderr)
    return 1


def _counters(args: argparse.Namespace) -> DynamoUsageCounters:
    target = resolve_target(args)
    table = getattr(target, "usage_table", None)
    if not table:
        raise TargetError(
            "this stack has no usage table (output UsageTableName): deploy a Switchboard with "
            "limits and budgets, or restart `make local`"
        )
    return DynamoUsageCounters(table, client=target.client("dynamodb"))


def _whole(flag: str, text: str) -> int:
    """A flag's whole number, in range (1 to ``MAX_LIMIT``), or an error naming the flag."""
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise QuotaSettingError(f"{flag} must be a whole number, got {text!r}") from None
    whole_number(flag, value)
    return value


def _share(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise QuotaSettingError(
            f"{flag} must be a share above 0 and at most 1 (e.g. 0.8), got {text!r}"
        ) from None
    return share(flag, value)


def _print(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    print(json.dumps(data, indent=2) if args.json else "\n".join(lines))


def _limit_text(value: int | None, unit: str) -> str:
    return f"{value} {unit} per minute" if value is not None else "no limit"


@aws_errors
def cmd_limits_set(args: argparse.Namespace) -> int:
    if args.rpm is None and args.tpm is None:
        return _err(args, "give --rpm and/or --tpm (a whole number, or 'off' to remove that limit)")
    try:
        tenant = check_tenant(args.tenant)
        changes = {
            name: None if text.strip().lower() == OFF else _whole(f"--{name}", text)
            for name, text in (("rpm", args.rpm), ("tpm", args.tpm))
            if text is not None
        }
    except QuotaSettingError as exc:
        return _err(args, str(exc))
    store = QuotaSettingsStore(_counters(args))
    current = store.get(tenant).limits
    candidate = {"rpm": current.rpm, "tpm": current.tpm, **changes}
    limits = store.set_limits(tenant, TenantLimits(**candidate), actor=cli_actor())
    _print(
        args,
        {"tenant": tenant, "limits": limits.to_dict()},
        [
            f"tenant {tenant}: rpm {_limit_text(limits.rpm, 'requests')}, "
            f"tpm {_limit_text(limits.tpm, 'tokens')}"
        ],
    )
    return 0


@aws_errors
def cmd_limits_show(args: argparse.Namespace) -> int:
    try:
        tenant = check_tenant(args.tenant)
    except QuotaSettingError as exc:
        return _err(args, str(exc))
    counters = _counters(args)
    limits = QuotaSettingsStore(counters).get(tenant).limits
    usage = RateLimiter(counters).current(tenant)
    data = {
        "tenant": tenant,
        "limits": limits.to_dict(),
        "current_minute": {
            "window": usage.window,
            "requests": usage.rpm,
            "tokens": usage.tpm,
            "resets_in_s": usage.retry_after_s,
        },
    }
    _print(
        args,
        data,
        [
            f"tenant {tenant}",
            f"  rpm: {_limit_text(limits.rpm, 'requests')} (used {usage.rpm} in {usage.window} UTC)",
            f"  tpm: {_limit_text(limits.tpm, 'tokens')} (used {usage.tpm})",
            f"  the minute ends in {usage.retry_after_s} s",
        ],
    )
    return 0


@aws_errors
def cmd_budgets_set(args: argparse.Namespace) -> int:
    try:
        tenant = check_tenant(args.tenant)
        budget = Budget(
            period=args.period,
            tokens=None if args.tokens is None else _whole("--tokens", args.tokens),
            usd=None if args.usd is None else parse_usd("--usd", args.usd),
            on_exhausted=args.on_exhausted,
            low_at=DEFAULT_LOW_AT if args.low_at is None else _share("--low-at", args.low_at),
        )
    except QuotaSettingError as exc:
        return _err(
            args,
            str(exc).replace("a budget needs tokens, usd or both", "a budget needs --tokens, --usd or both"),
        )
    store = QuotaSettingsStore(_counters(args))
    store.set_budget(tenant, budget, actor=cli_actor())
    _print(args, {"tenant": tenant, "budget": budget.to_dict()}, [f"tenant {tenant}: {_budget_text(budget)}"])
    return 0


def _amounts(budget: Budget, tokens: int | None, usd: Decimal | None) -> str:
    """The amounts the budget counts in (tokens, USD or both), with the given values."""
    parts = []
    if budget.tokens is not None:
        parts.append(f"{tokens} tokens")
    if budget.usd is not None:
        parts.append(f"{usd} USD")
    return " and ".join(parts)


def _budget_text(budget: Budget) -> str:
    return (
        f"{_amounts(budget, budget.tokens, budget.usd)} per {budget.period}, low at {budget.low_at:.0%}, "
        f"{'rejected' if budget.on_exhausted == 'reject' else 'routed by $budget'} when exhausted"
    )


@aws_errors
def cmd_budgets_show(args: argparse.Namespace) -> int:
    try:
        tenant = check_tenant(args.tenant)
    except QuotaSettingError as exc:
        return _err(args, str(exc))
    counters = _counters(args)
    budget = QuotaSettingsStore(counters).get(tenant).budget
    if budget is None:
        _print(
            args,
            {"tenant": tenant, "budget": None, "status": "ok"},
            [f"tenant {tenant}: no budget (status ok)"],
        )
        return 0
    book = BudgetBook(counters)
    spend = book.spend(tenant, budget.period)
    status = budget_status(budget, spend)
    resets = period_end(budget.period, utcnow())
    data = {
        "tenant": tenant,
        "budget": budget.to_dict(),
        "spend": spend.to_dict(),
        "status": status,
        "resets_at": format_timestamp(resets),
    }
    _print(
        args,
        data,
        [
            f"tenant {tenant}: {_budget_text(budget)}",
            f"  spent this {budget.period}: {_amounts(budget, spend.tokens, spend.usd)}",
            f"  status: {status} (resets {data['resets_at']})",
        ],
    )
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_target_arguments(parser)


def register(subparsers: Any) -> None:
    limits = subparsers.add_parser("limits", help="a tenant's requests and tokens per minute, fleet-wide")
    sub = limits.add_subparsers(dest="command", required=True, metavar="{set,show}")
    p = sub.add_parser("set", help="set rpm and/or tpm (the others stay as they are; 'off' removes one)")
    p.add_argument("--rpm", metavar="N|off", help="requests per minute")
    p.add_argument("--tpm", metavar="N|off", help="tokens per minute (prompt and completion)")
    _common(p)
    p.set_defaults(func=cmd_limits_set)
    p = sub.add_parser("show", help="the limits and what the current minute has used")
    _common(p)
    p.set_defaults(func=cmd_limits_show)

    budgets = subparsers.add_parser("budgets", help="a tenant's token and USD budget per day or month")
    sub = budgets.add_subparsers(dest="command", required=True, metavar="{set,show}")
    p = sub.add_parser("set", help="set the tenant's budget (replaces the one it had)")
    p.add_argument("--tokens", metavar="N", help="tokens per period")
    p.add_argument("--usd", metavar="X", help="US dollars per period, e.g. 25 or 12.50")
    p.add_argument("--period", required=True, choices=PERIODS)
    p.add_argument(
        "--on-exhausted",
        choices=ON_EXHAUSTED,
        default="route",
        help="route: only the flags see $budget = exhausted (default); reject: 429 insufficient_quota",
    )
    p.add_argument(
        "--low-at", metavar="SHARE", help=f"$budget is 'low' past this share (default {DEFAULT_LOW_AT})"
    )
    _common(p)
    p.set_defaults(func=cmd_budgets_set)
    p = sub.add_parser("show", help="the budget, this period's spend and the status the flags see")
    _common(p)
    p.set_defaults(func=cmd_budgets_show)
