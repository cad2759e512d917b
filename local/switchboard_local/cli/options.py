"""`switchboard options …`: read and edit the LLM options catalogue (JSON in, JSON out).

Writes are conditional: to update an option, send it back with the `version` you read (as `get`
prints it); an object without `version` (or with 0) only creates. A stale version is refused
with the current one, so two operators never overwrite each other silently.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from switchboard.options.errors import (
    InvalidOptions,
    OptionNotFound,
    OptionsUnavailable,
    VersionConflict,
)
from switchboard.options.model import LlmOption, OptionTask
from switchboard.options.store import OptionsStore, parse_options
from switchboard_local.cli.common import aws_errors, cli_actor
from switchboard_local.cli.target import add_target_arguments, resolve_target


def _err(message: str) -> None:
    print(f"switchboard options: {message}", file=sys.stderr)


def _out(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def _store(args: argparse.Namespace) -> OptionsStore:
    target = resolve_target(args)
    # ttl 0: every CLI read goes to the table.
    return OptionsStore(target.options_table, client=target.client("dynamodb"), ttl_s=0)


@aws_errors
def cmd_list(args: argparse.Namespace) -> int:
    try:
        options = _store(args).all()
    except OptionsUnavailable as exc:
        _err(str(exc))
        return 1
    # Every item shows its `task` (chat or embeddings) and, when declared, its `capabilities`.
    _out([o.to_item() for o in options if args.task is None or o.task.value == args.task])
    return 0


@aws_errors
def cmd_get(args: argparse.Namespace) -> int:
    try:
        option = _store(args).get(args.id)
    except OptionsUnavailable as exc:
        _err(str(exc))
        return 1
    if option is None:
        _err(f"option {args.id!r} not found (or stored invalid: see `switchboard options list`)")
        return 1
    _out(option.to_item())
    return 0


def _read_input(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    return json.loads(text)


def _validate(entries: list[Any]) -> tuple[list[tuple[LlmOption, int | None]], list[str]]:
    """Validate every entry (as the seed loader does); (option, expected_version) pairs or the problems."""
    try:
        options = parse_options(entries, source="input")
    except InvalidOptions as exc:
        return [], list(exc.problems)
    # An absent `version` (or 0) means "create"; the store treats both the same.
    return [
        (option, option.version if "version" in entry and option.version else None)
        for option, entry in zip(options, entries, strict=True)
    ], []


@aws_errors
def cmd_put(args: argparse.Namespace) -> int:
    try:
        raw = _read_input(args.file)
    except OSError as exc:
        _err(f"cannot read {args.file}: {exc}")
        return 1
    except json.JSONDecodeError as exc:
        _err(f"{args.file} is not valid JSON: {exc}")
        return 1
    single = isinstance(raw, dict)
    entries = [raw] if single else raw
    if not isinstance(entries, list) or not entries:
        _err("expected a JSON object or a non-empty array of objects")
        return 1
    parsed, problems = _validate(entries)
    if problems:
        _err(f"{len(problems)} validation error(s); nothing was written:")
        for line in problems:
            print(f"  - {line}", file=sys.stderr)
        return 1

    store = _store(args)
    who = cli_actor()
    stored: list[dict[str, Any]] = []
    failed = 0
    for option, expected in parsed:
        try:
            stored.append(store.put(option, expected_version=expected, updated_by=who).to_item())
        except VersionConflict as exc:
            failed += 1
            if expected is None:
                _err(
                    f"option {option.id!r} already exists at version {exc.current_version}: to update it, "
                    f'include "version": {exc.current_version} (see `switchboard options get {option.id}`)'
                )
            elif exc.current_version is None:
                _err(f"option {option.id!r} does not exist: omit `version` to create it")
            else:
                _err(
                    f"option {option.id!r} is at version {exc.current_version}, not {expected}: someone else "
                    f"changed it; re-read it with `switchboard options get {option.id}` and retry"
                )
    if stored:
        _out(stored[0] if single else stored)
    return 1 if failed else 0


@aws_errors
def cmd_delete(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        store.delete(args.id, expected_version=args.version)
    except OptionNotFound as exc:
        _err(str(exc))
        return 1
    except VersionConflict as exc:
        _err(f"{exc}: re-read it with `switchboard options get {args.id}`")
        return 1
    _out({"deleted": args.id})
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("options", help="read and edit the LLM options catalogue")
    sub = group.add_subparsers(dest="command", required=True, metavar="{list,get,put,delete}")

    p = sub.add_parser("list", help="print every valid option as a JSON array")
    p.add_argument(
        "--task",
        choices=[task.value for task in OptionTask],
        help="only the options that answer this (a route of that kind may name them)",
    )
    add_target_arguments(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("get", help="print one option as a JSON object")
    p.add_argument("id")
    add_target_arguments(p)
    p.set_defaults(func=cmd_get)

    p = sub.add_parser(
        "put",
        help="create or update options from a JSON object or array (FILE or - for stdin)",
        description="Validates every entry first. An entry with `version` updates that version only; "
        "without it, the option must not exist yet.",
    )
    p.add_argument("file", metavar="FILE", help="JSON file, or - for stdin")
    add_target_arguments(p)
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("delete", help="delete an option")
    p.add_argument("id")
    p.add_argument("--version", type=int, default=None, help="only if the stored version is N")
    add_target_arguments(p)
    p.set_defaults(func=cmd_delete)
