"""Helpers every command group shares: who is acting, and AWS failures as one-line errors."""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
from collections.abc import Callable


def cli_actor() -> str:
    """`cli:<login>`: recorded as `updated_by`, `forced_by` or in approval descriptions."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"cli:{user}"


def aws_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn an AWS/botocore failure into `switchboard <group>: AWS error …` and exit code 1."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        group = getattr(args, "group", None) or "switchboard"
        try:
            return func(args)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            message = f"AWS error {error.get('Code', '?')}: {error.get('Message', exc)}"
        except BotoCoreError as exc:
            message = f"AWS error: {exc}"
        print(f"switchboard {group}: {message}", file=sys.stderr)
        return 1

    return wrapper
