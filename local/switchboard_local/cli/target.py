"""Where a CLI command points: the running local stack (`--local`) or a deployed stack.

The local stack writes `.switchboard/local.json` (its embedded AWS endpoint and resource names).
A deployed stack is found through its CloudFormation outputs, with the normal AWS credential chain
and `AWS_ENDPOINT_URL` honoured by boto3 itself.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOCAL_STATE_FILE = Path(os.environ.get("SWITCHBOARD_LOCAL_STATE", ".switchboard/local.json"))
DEFAULT_STACK = "Switchboard"

# CloudFormation output keys the stack exports (infra/constants.py holds the same names).
OUTPUT_KEYS = {
    "options_table": "OptionsTableName",
    "keys_table": "KeysTableName",
    "usage_plan_standard": "UsagePlanStandardId",
    "usage_plan_premium": "UsagePlanPremiumId",
    "api_url": "ApiUrl",
    "circuit_table": "CircuitTableName",
    "cache_table": "CacheTableName",
}


class TargetError(RuntimeError):
    """The CLI cannot tell where to send its calls."""


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

    def client(self, service: str) -> Any:
        return aws_client(service, region=self.region, endpoint_url=self.endpoint_url)

    def resource(self, service: str) -> Any:
        import boto3

        return boto3.resource(service, **_client_kwargs(self.region, self.endpoint_url))


def _client_kwargs(region: str, endpoint_url: str | None) -> dict[str, Any]:
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

    return boto3.client(service, **_client_kwargs(region, endpoint_url))


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Every command takes these: `--local`, or a deployed stack name and region."""
    parser.add_argument(
        "--local",
        action="store_true",
        help="target the running local stack (`make local`) and its embedded AWS endpoint",
    )
    parser.add_argument("--stack", default=os.environ.get("SWITCHBOARD_STACK", DEFAULT_STACK))
    parser.add_argument("--region", default=None)


def write_local_state(target: Target, path: Path | None = None) -> None:
    path = path if path is not None else LOCAL_STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(target), indent=2))


def local_target(path: Path | None = None) -> Target:
    # Read the module-level default at call time, so tests (and tools) can repoint it.
    path = path if path is not None else LOCAL_STATE_FILE
    if not path.exists():
        raise TargetError(f"no local stack found ({path} missing): start it with `make local`")
    data = json.loads(path.read_text())
    return Target(**data)


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
        )
    except KeyError as exc:
        raise TargetError(f"stack {args.stack!r} has no output {exc}: is it a Switchboard stack?") from exc
