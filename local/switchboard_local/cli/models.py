"""`switchboard models …`: register, approve, roll back and list versions of a model family.

Approval is the trigger. In AWS, approving a version emits `SageMaker Model Package State Change`
and the EventBridge rule starts the deployment workflow; the CLI only changes the approval status.
moto emits no such event, so against the local stack (`--local`) the CLI starts the workflow
itself with the event EventBridge would deliver (same shape, see
`switchboard_local.lifecycle_local.state_change_event`) and waits for the outcome.

`rollback` rejects the version serving traffic, with a reason: the same workflow then redeploys the
newest remaining Approved version (one rollback mechanism).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchboard.contract.tables import DEPLOYMENTS_PARTITION_KEY, DEPLOYMENTS_SORT_KEY
from switchboard_local.cli.common import aws_errors, cli_actor
from switchboard_local.cli.target import TargetError, add_target_arguments, aws_client, local_target

if TYPE_CHECKING:
    from switchboard.lifecycle.model import PackageVersion

# CloudFormation outputs of the deployed stack (infra/constructs/model_deployment.py defines them).
OUTPUT_STATE_MACHINE = "ModelDeploymentStateMachineArn"
OUTPUT_DEPLOYMENTS_TABLE = "ModelDeploymentsTableName"
OUTPUT_DEPLOYMENT_FUNCTION = "ModelDeploymentFunctionName"
OUTPUT_OPTIONS_TABLE = "OptionsTableName"
WAIT_TIMEOUT_S = 300.0


@dataclass
class ModelsTarget:
    region: str
    endpoint_url: str | None
    local: bool
    options_table: str
    state_machine_arn: str
    deployments_table: str
    families: dict[str, dict[str, Any]]

    def client(self, service: str) -> Any:
        return aws_client(service, region=self.region, endpoint_url=self.endpoint_url)

    def family(self, group: str) -> dict[str, Any]:
        try:
            return self.families[group]
        except KeyError:
            known = ", ".join(sorted(self.families)) or "none"
            raise TargetError(f"{group!r} is not a model family of this stack (known: {known})") from None


def _families_of(target: ModelsTarget, function_name: str) -> dict[str, dict[str, Any]]:
    config = target.client("lambda").get_function_configuration(FunctionName=function_name)
    raw = json.loads(config.get("Environment", {}).get("Variables", {}).get("MODEL_FAMILIES", "[]"))
    return {str(f["group"]): f for f in raw}


def resolve_models_target(args: argparse.Namespace) -> ModelsTarget:
    """The deployment workflow, tables and families of the local or deployed stack."""
    if getattr(args, "local", False):
        from switchboard_local.lifecycle_local import names_for, prefix_of

        base = local_target()
        names = names_for(prefix_of(base))
        target = ModelsTarget(
            region=base.region,
            endpoint_url=base.endpoint_url,
            local=True,
            options_table=base.options_table,
            state_machine_arn="",
            deployments_table=names["deployments_table"],
            families={},
        )
        machines = target.client("stepfunctions").list_state_machines()["stateMachines"]
        found = [m["stateMachineArn"] for m in machines if m["name"] == names["deployment_state_machine"]]
        if not found:
            raise TargetError("the local stack has no model deployment workflow (is it up to date?)")
        target.state_machine_arn = found[0]
        target.families = _families_of(target, names["deployment_function"])
        return target

    import os

    import boto3

    region = (
        args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    try:
        stack = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=args.stack)[
            "Stacks"
        ][0]
    except Exception as exc:
        raise TargetError(f"cannot read stack {args.stack!r} in {region}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    try:
        target = ModelsTarget(
            region=region,
            endpoint_url=None,
            local=False,
            options_table=outputs[OUTPUT_OPTIONS_TABLE],
            state_machine_arn=outputs[OUTPUT_STATE_MACHINE],
            deployments_table=outputs[OUTPUT_DEPLOYMENTS_TABLE],
            families={},
        )
        target.families = _families_of(target, outputs[OUTPUT_DEPLOYMENT_FUNCTION])
    except KeyError as exc:
        raise TargetError(
            f"stack {args.stack!r} has no output {exc}: does it configure model_families?"
        ) from exc
    return target


def _err(message: str) -> None:
    print(f"switchboard models: {message}", file=sys.stderr)


def _out(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _versions(target: ModelsTarget, group: str) -> list[PackageVersion]:
    """Newest first: the registry adapter the deployment workflow uses."""
    from switchboard.lifecycle.registry import SageMakerRegistry

    return SageMakerRegistry(target.client("sagemaker")).list_versions(group)


def _live_arn(target: ModelsTarget, group: str) -> str | None:
    from switchboard.options.store import OptionsStore

    option = OptionsStore(target.options_table, client=target.client("dynamodb"), ttl_s=0).get(
        str(target.family(group)["option_id"])
    )
    return option.model_package_arn if option else None


def _version_arn(target: ModelsTarget, group: str, version: int | None, *, status: str | None = None) -> str:
    versions = _versions(target, group)
    if version is not None:
        match = [v for v in versions if v.version == version]
    else:
        match = [v for v in versions if status is None or v.approval == status]
    if not match:
        what = f"version {version}" if version is not None else f"a {status or ''} version".replace("  ", " ")
        raise TargetError(f"{group}: no {what}")
    return match[0].arn


def _run_locally(target: ModelsTarget, arn: str) -> dict[str, Any]:
    """Start the workflow with the event EventBridge would deliver (moto emits none) and wait."""
    from switchboard_local.lifecycle_local import state_change_event

    described = target.client("sagemaker").describe_model_package(ModelPackageName=arn)
    event = state_change_event(described, region=target.region)
    sfn = target.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=target.state_machine_arn, name=f"cli-{uuid.uuid4().hex[:20]}", input=json.dumps(event)
    )["executionArn"]
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while True:
        described_execution: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described_execution["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    states = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return {
        "execution": execution,
        "status": described_execution["status"],
        "error": described_execution.get("error"),
        "cause": described_execution.get("cause"),
        "states": states,
    }


def _report(target: ModelsTarget, group: str, arn: str, run: dict[str, Any] | None) -> int:
    result: dict[str, Any] = {"group": group, "model_package_arn": arn, "serving": _live_arn(target, group)}
    if run is None:
        result["workflow"] = "started by the EventBridge rule; follow it in the Step Functions console"
        _out(result)
        return 0
    result["workflow"] = run
    _out(result)
    return 0 if run["status"] == "SUCCEEDED" else 1


@aws_errors
def cmd_register(args: argparse.Namespace) -> int:
    target = resolve_models_target(args)
    target.family(args.group)
    from switchboard.lifecycle.model import ADAPTER_OF_KEY

    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": args.group,
        "ModelPackageDescription": args.description or f"registered by {cli_actor()}",
        "InferenceSpecification": {
            "Containers": [{"Image": args.image, "ModelDataUrl": args.model_data}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "ModelApprovalStatus": "PendingManualApproval",
    }
    if args.adapter_of:
        kwargs["CustomerMetadataProperties"] = {ADAPTER_OF_KEY: args.adapter_of}
    arn = target.client("sagemaker").create_model_package(**kwargs)["ModelPackageArn"]
    described = target.client("sagemaker").describe_model_package(ModelPackageName=arn)
    _out(
        {
            "model_package_arn": arn,
            "version": described.get("ModelPackageVersion"),
            "status": "PendingManualApproval",
        }
    )
    return 0


@aws_errors
def cmd_approve(args: argparse.Namespace) -> int:
    target = resolve_models_target(args)
    target.family(args.group)
    arn = _version_arn(
        target, args.group, args.version, status=None if args.version else "PendingManualApproval"
    )
    target.client("sagemaker").update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus="Approved",
        ApprovalDescription=(args.reason or f"approved by {cli_actor()}")[:1024],
    )
    return _report(target, args.group, arn, _run_locally(target, arn) if target.local else None)


@aws_errors
def cmd_rollback(args: argparse.Namespace) -> int:
    target = resolve_models_target(args)
    live = _live_arn(target, args.group)
    if not live:
        _err(f"{args.group}: no version serves traffic; nothing to roll back")
        return 1
    target.client("sagemaker").update_model_package(
        ModelPackageArn=live,
        ModelApprovalStatus="Rejected",
        ApprovalDescription=f"rollback by {cli_actor()}: {args.reason}"[:1024],
    )
    return _report(target, args.group, live, _run_locally(target, live) if target.local else None)


@aws_errors
def cmd_list(args: argparse.Namespace) -> int:
    target = resolve_models_target(args)
    target.family(args.group)
    from switchboard.options.store import from_dynamodb_item

    live = _live_arn(target, args.group)
    items = target.client("dynamodb").query(
        TableName=target.deployments_table,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": DEPLOYMENTS_PARTITION_KEY},
        ExpressionAttributeValues={":pk": {"S": f"group#{args.group}"}},
    )["Items"]
    latest: dict[int, dict[str, Any]] = {}
    for item in sorted(
        (from_dynamodb_item(i) for i in items), key=lambda r: str(r.get(DEPLOYMENTS_SORT_KEY))
    ):
        latest[int(item.get("version") or 0)] = item
    rows = []
    for summary in _versions(target, args.group):
        record = latest.get(summary.version, {})
        rows.append(
            {
                "version": summary.version,
                "approval": summary.approval,
                "stage": summary.stage,
                "deployment": record.get("outcome"),
                "deployed_at": record.get("finished_at"),
                "serving": summary.arn == live,
                "model_package_arn": summary.arn,
            }
        )
    _out(rows)
    return 0


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("models", help="register, approve, roll back and list model versions")
    sub = group.add_subparsers(dest="command", required=True, metavar="{register,approve,rollback,list}")

    p = sub.add_parser("register", help="register a new version (PendingManualApproval) in a family's group")
    p.add_argument("--group", required=True)
    p.add_argument("--model-data", required=True, help="s3://… model.tar.gz (adapters: files at its root)")
    p.add_argument("--image", required=True, help="inference container image URI")
    p.add_argument("--adapter-of", default=None, help="base inference component this LoRA adapter runs on")
    p.add_argument("--description", default=None)
    add_target_arguments(p)
    p.set_defaults(func=cmd_register)

    p = sub.add_parser(
        "approve",
        help="approve a version (default: the newest pending one): this deploys it",
        description="In AWS the EventBridge rule starts the deployment workflow; with --local the CLI "
        "starts it with the same event and waits for the outcome.",
    )
    p.add_argument("--group", required=True)
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--reason", default=None)
    add_target_arguments(p)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser(
        "rollback",
        help="reject the version serving traffic: the newest remaining Approved version redeploys",
    )
    p.add_argument("--group", required=True)
    p.add_argument("--reason", default="operator rollback")
    add_target_arguments(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("list", help="versions with approval, lifecycle stage, last deployment, serving")
    p.add_argument("--group", required=True)
    add_target_arguments(p)
    p.set_defaults(func=cmd_list)
