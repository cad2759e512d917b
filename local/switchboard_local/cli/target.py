"""Where a CLI command points: the running local stack (`--local`) or a deployed stack.

The local stack writes `.switchboard/local.json` in the directory it was started from (its
embedded AWS endpoint and resource names, plus a `stack` record: pid, URLs, flag file) and holds
an exclusive lock on `.switchboard/local.lock` for as long as it runs. One checkout runs one local
stack: a second `make local` from the same folder refuses to start while the first holds the lock
(set `SWITCHBOARD_LOCAL_STATE` to another file to run a second one, and the same variable points
the CLI at it). `--local` uses the state file of this folder only, and refuses when the stack that
wrote it is gone: the lock is free (the kernel drops it when the process dies, even on SIGKILL,
so a reused pid cannot fool it) or its front door does not answer.

A deployed stack is found through its CloudFormation outputs, with the normal AWS credential chain
and `AWS_ENDPOINT_URL` honoured by boto3 itself.
"""

from __future__ import annotations

import argparse
import fcntl
import http.client
import json
import os
import urllib.parse
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from switchboard.contract.workflow import timestamp_now

LOCAL_STATE_FILE = Path(os.environ.get("SWITCHBOARD_LOCAL_STATE", ".switchboard/local.json"))
DEFAULT_STACK = "Switchboard"
STACK_RECORD_KEY = "stack"
LIVENESS_TIMEOUT_S = 2.0

# CloudFormation output keys the stack exports (infra/constants.py holds the same names).
OUTPUT_KEYS = {
    "options_table": "OptionsTableName",
    "keys_table": "KeysTableName",
    "usage_plan_standard": "UsagePlanStandardId",
    "usage_plan_premium": "UsagePlanPremiumId",
    "api_url": "ApiUrl",
    "circuit_table": "CircuitTableName",
    "cache_table": "CacheTableName",
    "usage_table": "UsageTableName",
    "appconfig_application_id": "AppConfigApplicationId",
    "appconfig_environment_id": "AppConfigEnvironmentId",
    "appconfig_profile_id": "AppConfigProfileId",
}


class TargetError(RuntimeError):
    """The CLI cannot tell where to send its calls."""


class LocalStackRunning(TargetError):
    """Another local stack already owns this state file (`make local` started twice)."""


@dataclass
class Target:
    region: str
    options_table: str
    keys_table: str
    endpoint_url: str | None = None
    usage_plans: dict[str, str] = field(default_factory=dict)
    api_url: str | None = None
    circuit_table: str | None = None
    cache_table: str | None = None
    usage_table: str | None = None
    """The usage table (issue 15): metered usage, tenant limits and budgets, option capacity."""
    flags_file: str | None = None
    """Local stack: the flag document its AppConfig agent emulator serves."""
    appconfig: dict[str, str] = field(default_factory=dict)
    """Deployed stack: AppConfig `application_id`, `environment_id`, `profile_id` of the routing flags."""

    def client(self, service: str) -> Any:
        return aws_client(service, region=self.region, endpoint_url=self.endpoint_url)

    def resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(service, **self.client_kwargs())

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client``/``resource`` (or a client with its own ``Config``)."""
        return client_kwargs(self.region, self.endpoint_url)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class LocalStackRecord:
    """The running `make local` that wrote a state file: what `--local` checks before using it."""

    pid: int
    gateway_url: str
    agent_url: str
    aws_url: str
    started_at: str
    token: str
    """Unique per start: a stopping stack removes the state file only if it is still its own."""

    @classmethod
    def from_dict(cls, data: Any) -> LocalStackRecord | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid}, gateway {self.gateway_url}, started {self.started_at}"


def client_kwargs(region: str, endpoint_url: str | None) -> dict[str, Any]:
    """Region, endpoint and, for the local emulator only, placeholder credentials for a boto3 client."""
    kwargs: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        host = endpoint_url.split("://", 1)[-1].split(":", 1)[0].split("/", 1)[0]
        if host in ("127.0.0.1", "localhost"):
            # The embedded emulator accepts any credentials; a laptop may have none configured.
            kwargs["aws_access_key_id"] = "local"
            kwargs["aws_secret_access_key"] = "local"  # noqa: S105
    return kwargs


def aws_client(service: str, *, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client for the target: the normal credential chain, or the local emulator."""
    import boto3

    return boto3.client(service, **client_kwargs(region, endpoint_url))


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Every command takes these: `--local`, or a deployed stack name and region."""
    parser.add_argument(
        "--local",
        action="store_true",
        help="target the local stack started from this folder (`make local`; its "
        "state file is .switchboard/local.json, or $SWITCHBOARD_LOCAL_STATE)",
    )
    parser.add_argument("--stack", default=os.environ.get("SWITCHBOARD_STACK", DEFAULT_STACK))
    parser.add_argument("--region", default=None)


# --------------------------------------------------------------------------------------------------
# The local stack's state file and lock


def lock_file(state_file: Path) -> Path:
    """The lock the running stack holds: `.switchboard/local.lock` next to `local.json`."""
    return state_file.with_suffix(".lock")


def write_local_state(
    target: Target, path: Path | None = None, *, stack: LocalStackRecord | None = None
) -> None:
    """Write the state file atomically (the CLI never reads half of one).

    Without `stack` the file is a fixed target (tests, a pointer to another emulator): `--local`
    then uses it without a liveness check, as there is no process to check.
    """
    path = path if path is not None else LOCAL_STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = asdict(target)
    if stack is not None:
        data[STACK_RECORD_KEY] = asdict(stack)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, path)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TargetError(f"no local stack found ({path} missing): start it with `make local`") from None
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TargetError(f"{path} is not a local stack state file: delete it and run `make local`")
    return data


class LocalStateClaim:
    """A starting stack's exclusive hold on its state file, for as long as it runs.

    The hold is an `flock` on the lock file: the kernel releases it when the process exits, however
    it exits, so a stack killed with SIGKILL never blocks the next `make local`.
    """

    def __init__(self, path: Path, lock_fd: int) -> None:
        import uuid

        self.path = path
        self.token = uuid.uuid4().hex
        self._lock_fd: int | None = lock_fd

    def publish(self, target: Target, *, gateway_url: str, agent_url: str, aws_url: str) -> LocalStackRecord:
        """Write the state file, once every server listens: from now on `--local` reaches us."""

        record = LocalStackRecord(
            pid=os.getpid(),
            gateway_url=gateway_url,
            agent_url=agent_url,
            aws_url=aws_url,
            started_at=timestamp_now(),
            token=self.token,
        )
        write_local_state(target, self.path, stack=record)
        return record

    def release(self) -> None:
        """Remove the state file if it is still ours, then drop the lock; safe to call twice."""
        if self._lock_fd is None:
            return
        try:
            record = LocalStackRecord.from_dict(_read_state(self.path).get(STACK_RECORD_KEY))
        except TargetError:
            record = None
        if record is not None and record.token == self.token:
            self.path.unlink(missing_ok=True)
        os.close(self._lock_fd)  # closing the descriptor drops the flock
        self._lock_fd = None


def claim_local_state(path: Path | None = None, *, attempts: int = 5) -> LocalStateClaim:
    """Take the lock of `path` for a starting stack, or raise :class:`LocalStackRunning`.

    A `--local` liveness probe holds a shared lock for microseconds: a few short retries keep such a
    probe from passing for a running stack.
    """
    import time

    path = path if path is not None else LOCAL_STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file(path), os.O_RDWR | os.O_CREAT, 0o600)
    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt == attempts - 1:
                os.close(fd)
                try:
                    record = LocalStackRecord.from_dict(_read_state(path).get(STACK_RECORD_KEY))
                except TargetError:
                    record = None  # still starting: it writes the file once it listens
                who = f" ({record.describe()})" if record is not None else ""
                raise LocalStackRunning(
                    f"a local stack started from this folder is already running{who}; stop it first, "
                    f"or give this one its own state file: SWITCHBOARD_LOCAL_STATE=<file> (the CLI "
                    f"follows the same variable)"
                ) from None
            time.sleep(0.05)
    path.unlink(missing_ok=True)  # left by a stack that died: it named a process that is gone
    return LocalStateClaim(path, fd)


def _lock_held(state_file: Path) -> bool:
    try:
        fd = os.open(lock_file(state_file), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _answers(url: str, timeout_s: float) -> bool:
    """Any HTTP answer at all (the front door says 404 to `GET /`) means it serves."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def running_local_stack(path: Path | None = None) -> LocalStackRecord | None:
    """The record of the live stack that wrote `path` (None for a fixed target); raises when gone."""
    path = path if path is not None else LOCAL_STATE_FILE
    raw = _read_state(path).get(STACK_RECORD_KEY)
    if raw is None:
        return None
    record = LocalStackRecord.from_dict(raw)
    if record is None:
        raise TargetError(f"{path} has an unreadable stack record: delete it and run `make local`")
    if not _lock_held(path):
        raise TargetError(
            f"the local stack recorded in {path} ({record.describe()}) is not running: "
            "start it with `make local`"
        )
    if not _answers(record.gateway_url, LIVENESS_TIMEOUT_S):
        raise TargetError(
            f"the local stack recorded in {path} ({record.describe()}) is running but its front door "
            "does not answer: it may be stopping; restart `make local`"
        )
    return record


def local_target(path: Path | None = None) -> Target:
    # Read the module-level default at call time, so tests (and tools) can repoint it.
    path = path if path is not None else LOCAL_STATE_FILE
    running_local_stack(path)
    return Target.from_dict(_read_state(path))


def resolve_target(args: argparse.Namespace) -> Target:
    if getattr(args, "local", False):
        return local_target()
    import boto3

    region = (
        args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    cfn = boto3.client("cloudformation", region_name=region)
    try:
        stacks = cfn.describe_stacks(StackName=args.stack)["Stacks"]
    except Exception as exc:
        raise TargetError(f"cannot read stack {args.stack!r} in {region}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    appconfig = {
        name: outputs[OUTPUT_KEYS[f"appconfig_{name}"]]
        for name in ("application_id", "environment_id", "profile_id")
        if OUTPUT_KEYS[f"appconfig_{name}"] in outputs
    }
    try:
        return Target(
            region=region,
            options_table=outputs[OUTPUT_KEYS["options_table"]],
            keys_table=outputs[OUTPUT_KEYS["keys_table"]],
            usage_plans={
                "standard": outputs.get(OUTPUT_KEYS["usage_plan_standard"], ""),
                "premium": outputs.get(OUTPUT_KEYS["usage_plan_premium"], ""),
            },
            api_url=outputs.get(OUTPUT_KEYS["api_url"]),
            circuit_table=outputs.get(OUTPUT_KEYS["circuit_table"]),
            cache_table=outputs.get(OUTPUT_KEYS["cache_table"]),
            usage_table=outputs.get(OUTPUT_KEYS["usage_table"]),
            appconfig=appconfig,
        )
    except KeyError as exc:
        raise TargetError(f"stack {args.stack!r} has no output {exc}: is it a Switchboard stack?") from exc
