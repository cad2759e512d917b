"""`switchboard circuits …`: see and override the circuit breaker of each LLM option.

`list` prints every stored circuit as JSON (an option without a circuit item is CLOSED). `show`
prints the state and the transition timeline, oldest first (`--json` for JSON). `open` / `close`
force a state for a while (`--for 15m` by default) or until the next force (`--sticky`); the
workflow honours the force at once (it reads the circuit item directly), and every force is
written to the timeline with the operator as actor (`cli:<user>`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta
from typing import Any

from switchboard.circuits.policy import CircuitSnapshot
from switchboard.circuits.store import CircuitContention, CircuitStore
from switchboard.circuits.timefmt import to_iso, utcnow
from switchboard_local.cli.common import aws_errors, cli_actor
from switchboard_local.cli.target import TargetError, add_target_arguments, resolve_target

DEFAULT_DURATION = "15m"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _err(message: str) -> None:
    print(f"switchboard circuits: {message}", file=sys.stderr)


def _out(data: Any) -> None:
    print(json.dumps(data, indent=2))


def parse_duration(text: str) -> timedelta:
    """`30s`, `10m`, `2h`, `1d`, or bare seconds."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: use e.g. 30s, 10m, 2h, 1d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _store(args: argparse.Namespace) -> CircuitStore:
    target = resolve_target(args)
    table = getattr(target, "circuit_table", None)
    if not table:
        raise TargetError(
            "this target has no circuit table (circuit_table): redeploy the stack, or restart the "
            "local stack with `make local`, so its outputs include the circuit table"
        )
    return CircuitStore(str(table), client=target.client("dynamodb"), cache_ttl_s=0)


def _iso(value: datetime | None) -> str | None:
    return to_iso(value) if value is not None else None


def summary(option_id: str, snapshot: CircuitSnapshot, now: datetime | None = None) -> dict[str, Any]:
    """One circuit as JSON; `forced` only while the force is in effect (an expired one is history)."""
    forced = snapshot.forced_active(now or utcnow())
    return {
        "option_id": option_id,
        "state": snapshot.state.value,
        "open_until": _iso(snapshot.open_until),
        "forced": forced,
        "forced_until": _iso(snapshot.forced_until) if forced else None,
        "forced_by": snapshot.forced_by if forced else None,
        "last_error": snapshot.last_error,
        "consecutive_opens": snapshot.consecutive_opens,
        "updated_at": _iso(snapshot.updated_at),
    }


def timeline_line(event: dict[str, Any]) -> str:
    """`2026-11-25T12:00:01Z  CLOSED → OPEN  by workflow:req-1  (5 failures in 60s: unavailable)`."""
    line = (
        f"{event.get('at', '?')}  {event.get('from_state', '?')} → {event.get('to_state', '?')}"
        f"  by {event.get('actor', '?')}  ({event.get('reason', '')})"
    )
    if event.get("to_state") == "OPEN" and event.get("open_until"):
        line += f"  until {event['open_until']}"
    return line


@aws_errors
def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    _out([summary(option_id, snapshot) for option_id, snapshot in store.list()])
    return 0


@aws_errors
def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    snapshot = store.get(args.option_id)
    events = list(reversed(store.events(args.option_id, limit=args.limit)))
    if args.json:
        _out({**summary(args.option_id, snapshot), "events": events})
        return 0
    info = summary(args.option_id, snapshot)
    print(f"{args.option_id}: {info['state']}")
    if info["open_until"]:
        print(f"  open until   {info['open_until']}")
    if info["forced"]:
        horizon = info["forced_until"] or "sticky"
        print(f"  forced       {info['forced']} ({horizon}) by {snapshot.forced_by or '?'}")
        if snapshot.forced_reason:
            print(f"  reason       {snapshot.forced_reason}")
    if snapshot.last_error:
        print(f"  last error   {snapshot.last_error}")
    print("timeline:" if events else "timeline: (no transitions recorded)")
    for event in events:
        print(f"  {timeline_line(event)}")
    return 0


def _force(args: argparse.Namespace, state: str) -> int:
    store = _store(args)
    until = None if args.sticky else utcnow() + parse_duration(args.duration or DEFAULT_DURATION)
    try:
        transition = store.force(
            args.option_id,
            "open" if state == "open" else "closed",
            until=until,
            actor=cli_actor(),
            reason=args.reason,
        )
    except CircuitContention as exc:
        _err(str(exc))
        return 1
    _out(
        {
            "option_id": args.option_id,
            "transition": transition.kind,
            "from_state": transition.from_state.value,
            "to_state": transition.to_state.value,
            "open_until": _iso(transition.open_until),
            "forced_until": _iso(until) if until is not None else None,
            "sticky": until is None,
            "reason": transition.reason,
        }
    )
    return 0


@aws_errors
def cmd_release(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        transition = store.release(args.option_id, actor=cli_actor(), reason=args.reason)
    except CircuitContention as exc:
        _err(str(exc))
        return 1
    if transition is None:
        _err(f"circuit {args.option_id} is not forced: nothing to release")
        return 1
    _out(
        {
            "option_id": args.option_id,
            "transition": transition.kind,
            "state": transition.to_state.value,
            "open_until": _iso(transition.open_until),
            "reason": transition.reason,
        }
    )
    return 0


@aws_errors
def cmd_open(args: argparse.Namespace) -> int:
    return _force(args, "open")


@aws_errors
def cmd_close(args: argparse.Namespace) -> int:
    return _force(args, "closed")


def _duration_arg(text: str) -> str:
    parse_duration(text)
    return text


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("circuits", help="see and override circuit breakers per option")
    sub = group.add_subparsers(dest="command", required=True, metavar="{list,show,open,close,release}")

    p = sub.add_parser("list", help="every stored circuit as JSON")
    add_target_arguments(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one circuit's state and its transition timeline")
    p.add_argument("option_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON instead of the timeline")
    p.add_argument("--limit", type=int, default=50, help="newest N events (default 50)")
    add_target_arguments(p)
    p.set_defaults(func=cmd_show)

    for name, func, verb in (("open", cmd_open, "skip"), ("close", cmd_close, "use")):
        p = sub.add_parser(name, help=f"force the circuit {name} (the workflow will {verb} the option)")
        p.add_argument("option_id", metavar="ID")
        horizon = p.add_mutually_exclusive_group()
        horizon.add_argument(
            "--for",
            dest="duration",
            type=_duration_arg,
            default=None,
            metavar="DURATION",
            help=f"how long the force lasts, e.g. 30s, 10m, 2h (default {DEFAULT_DURATION})",
        )
        horizon.add_argument("--sticky", action="store_true", help="until the next open/close")
        p.add_argument("--reason", default=None, help="why (shown in the timeline)")
        add_target_arguments(p)
        p.set_defaults(func=func)

    p = sub.add_parser(
        "release",
        help="end a forced open/close now, sticky or not (an open circuit then lets a probe through)",
    )
    p.add_argument("option_id", metavar="ID")
    p.add_argument("--reason", default=None, help="why (shown in the timeline)")
    add_target_arguments(p)
    p.set_defaults(func=cmd_release)
