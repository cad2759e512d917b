"""`switchboard models …`: register, approve, roll back and list versions of a model family.

Approval is the trigger. In AWS, approving a version emits `SageMaker Model Package State Change`
and the EventBridge rule starts the deployment workflow; the CLI only changes the approval status.
moto emits no such event, so against the local stack (`--local`) the CLI starts the workflow
itself with the event EventBridge would deliver (same shape, see
`switchboard_local.lifecycle_local.state_change_event`) and waits for the outcome.

`rollback` rejects the version serving traffic, with a reason: the same workflow then redeploys the
newest remaining Approved version (one rollback mechanism).

Tenant adapters (issue 16): `register --tenant T` (in an adapter family) keeps T in the version's
`CustomerMetadataProperties`; approving it deploys T's own adapter component and moves only T's
record in the tenant adapters table; `rollback --tenant T` rejects T's live adapter (T goes back to
its previous approved adapter, or to the base model); `list --tenant T` shows T's adapter and history.
Against the local stack, `canary-signals` and `alarm` fail a running canary (what SageMaker would
publish for the canary's component; the family's rollback alarm in ALARM, which moto never evaluates).

`retire` runs the retirement Lambda now (it also runs daily): versions beyond each family's retention
(family-wide, and per tenant for adapter versions) lose their SageMaker resources in every region
the family lists; it shows per version what went where, per region what could not be reached, and
per tenant what was kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from switchboard.contract.tables import DEPLOYMENTS_PARTITION_KEY, DEPLOYMENTS_SORT_KEY
from switchboard_local.cli.common import aws_errors, cli_actor
from switchboard_local.cli.target import TargetError, add_target_arguments, aws_client, local_target

if TYPE_CHECKING:
    from switchboard.lifecycle.adapter_store import TenantAdapterStore
    from switchboard.lifecycle.model import PackageVersion

# CloudFormation outputs of the deployed stack (infra/constructs/model_deployment.py defines them).
OUTPUT_STATE_MACHINE = "ModelDeploymentStateMachineArn"
OUTPUT_DEPLOYMENTS_TABLE = "ModelDeploymentsTableName"
OUTPUT_DEPLOYMENT_FUNCTION = "ModelDeploymentFunctionName"
OUTPUT_OPTIONS_TABLE = "OptionsTableName"
OUTPUT_ADAPTERS_TABLE = "ModelAdaptersTableName"
OUTPUT_RETIREMENT_FUNCTION = "ModelRetirementFunctionName"
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
    adapters_table: str | None = None
    retirement_function: str | None = None

    def client(self, service: str) -> Any:
        return aws_client(service, region=self.region, endpoint_url=self.endpoint_url)

    def adapters(self) -> TenantAdapterStore:
        from switchboard.lifecycle.adapter_store import DynamoTenantAdapterStore

        if not self.adapters_table:
            raise TargetError("this stack has no tenant adapters table (deploy a version with issue 16)")
        return DynamoTenantAdapterStore(self.adapters_table, client=self.client("dynamodb"))

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
            adapters_table=names["adapters_table"],
            retirement_function=names["retirement_function"],
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
            adapters_table=outputs.get(OUTPUT_ADAPTERS_TABLE),
            retirement_function=outputs.get(OUTPUT_RETIREMENT_FUNCTION),
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


def _run_locally(target: ModelsTarget, arn: str, *, bake_seconds: int | None = None) -> dict[str, Any]:
    """Start the workflow with the event EventBridge would deliver (moto emits none) and wait.

    ``bake_seconds``: the local stack bakes for 0 s; a longer bake leaves time to watch a tenant's
    canary (`models list`) and to put bad signals on it (`models canary-signals`). The local stack's
    start-up runs its sample tenant's flow through the same function."""
    from switchboard_local.lifecycle_local import run_deployment_workflow

    return run_deployment_workflow(
        target.client,
        target.state_machine_arn,
        arn,
        region=target.region,
        bake_seconds=bake_seconds,
        timeout_s=WAIT_TIMEOUT_S,
    )


def _tenant_arg(text: str) -> str:
    """A tenant as API keys spell it (``switchboard.keys.validate_tenant``)."""
    from switchboard.keys import validate_tenant

    try:
        return validate_tenant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _retention_arg(text: str) -> int:
    """A retention count as ``ModelFamily.retention`` takes it (0 would keep only the live version)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= 50:
        raise argparse.ArgumentTypeError("retention must be between 1 and 50")
    return value


def _tenant_of(target: ModelsTarget, arn: str) -> str | None:
    from switchboard.lifecycle.model import PackageVersion

    described = target.client("sagemaker").describe_model_package(ModelPackageName=arn)
    return PackageVersion.from_description(described).tenant


def _tenant_live_arn(target: ModelsTarget, group: str, tenant: str) -> str | None:
    record = target.adapters().get(group, tenant)
    return record.live.package_arn if record and record.live else None


def _report(
    target: ModelsTarget, group: str, arn: str, run: dict[str, Any] | None, *, tenant: str | None = None
) -> int:
    result: dict[str, Any] = {"group": group, "model_package_arn": arn, "serving": _live_arn(target, group)}
    if tenant:
        # what serves the tenant now (None: the base model)
        result["tenant"] = tenant
        result["tenant_serving"] = _tenant_live_arn(target, group, tenant)
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
    family = target.family(args.group)
    from switchboard.lifecycle.model import ADAPTER_OF_KEY, TENANT_KEY

    base = family.get("base_component")
    if args.tenant and not base:
        raise TargetError(f"{args.group} is a full-model family: --tenant needs an adapter family")
    if args.adapter_of and base and args.adapter_of != base:
        raise TargetError(f"{args.group}'s adapters run on base component {base!r}, not {args.adapter_of!r}")
    adapter_of = args.adapter_of or (base if args.tenant else None)

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
    metadata = {ADAPTER_OF_KEY: adapter_of, TENANT_KEY: args.tenant}
    if adapter_of:
        kwargs["CustomerMetadataProperties"] = {k: v for k, v in metadata.items() if v}
    arn = target.client("sagemaker").create_model_package(**kwargs)["ModelPackageArn"]
    described = target.client("sagemaker").describe_model_package(ModelPackageName=arn)
    _out(
        {
            "model_package_arn": arn,
            "version": described.get("ModelPackageVersion"),
            "status": "PendingManualApproval",
            "tenant": args.tenant,
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
    if args.bake_seconds is not None and not target.local:
        raise TargetError("--bake-seconds is for the local stack (a deployed stack bakes as cdk.json says)")
    run = _run_locally(target, arn, bake_seconds=args.bake_seconds) if target.local else None
    return _report(target, args.group, arn, run, tenant=_tenant_of(target, arn))


@aws_errors
def cmd_canary_signals(args: argparse.Namespace) -> int:
    """Local stack only: what SageMaker would publish for a tenant's running canary component.

    The local stand-in for "the adapter's alarm in ALARM": no alarm exists per adapter, the workflow
    judges the canary component's own metrics after the bake. CloudWatch refuses PutMetricData into
    ``AWS/`` namespaces, so against a deployed stack real traffic is the only source.
    """
    from switchboard_local.lifecycle_local import put_component_metrics

    target = resolve_models_target(args)
    target.family(args.group)
    if not target.local:
        raise TargetError("canary-signals emulates SageMaker's metrics: --local only")
    record = target.adapters().get(args.group, args.tenant)
    if record is None or record.canary is None:
        _err(f"{args.group}: tenant {args.tenant} has no canary running")
        return 1
    put_component_metrics(
        target.client("cloudwatch"),
        record.canary.component,
        invocations=args.invocations,
        errors=args.errors,
        latency_ms=args.latency_ms,
    )
    _out(
        {
            "group": args.group,
            "tenant": args.tenant,
            "canary_version": record.canary.version,
            "component": record.canary.component,
            "invocations": args.invocations,
            "errors": args.errors,
            "latency_ms": args.latency_ms,
        }
    )
    return 0


@aws_errors
def cmd_alarm(args: argparse.Namespace) -> int:
    """Local stack only: put one of a family's rollback alarms in ALARM (or back to OK).

    moto never evaluates alarms, so nothing else moves them locally. With the alarm in ALARM, a
    deployment of the family rolls back: a tenant's adapter canary when the workflow judges it after
    the bake, a full version during its blue/green update. The alarm stays as set until set again
    (in AWS, ``SetAlarmState`` lasts until the alarm's next evaluation).
    """
    from switchboard.contract.model_deployment import alarm_names
    from switchboard_local.lifecycle_local import names_for, prefix_of

    target = resolve_models_target(args)
    target.family(args.group)
    if not target.local:
        raise TargetError("alarm sets an emulated alarm's state: --local only")
    prefix = names_for(prefix_of(local_target()))["alarm_prefix"]
    name = next(n for n in alarm_names(prefix, args.group) if n.endswith(f"-{args.alarm}"))
    target.client("cloudwatch").set_alarm_state(
        AlarmName=name, StateValue=args.state, StateReason=f"set by {cli_actor()} (switchboard models alarm)"
    )
    _out({"group": args.group, "alarm": name, "state": args.state})
    return 0


@aws_errors
def cmd_rollback(args: argparse.Namespace) -> int:
    target = resolve_models_target(args)
    target.family(args.group)
    live = _tenant_live_arn(target, args.group, args.tenant) if args.tenant else _live_arn(target, args.group)
    if not live:
        whom = f" tenant {args.tenant}" if args.tenant else ""
        _err(f"{args.group}: no version serves{whom}; nothing to roll back")
        return 1
    target.client("sagemaker").update_model_package(
        ModelPackageArn=live,
        ModelApprovalStatus="Rejected",
        ApprovalDescription=f"rollback by {cli_actor()}: {args.reason}"[:1024],
    )
    run = _run_locally(target, live) if target.local else None
    return _report(target, args.group, live, run, tenant=args.tenant)


@aws_errors
def cmd_list(args: argparse.Namespace) -> int:
    target = resolve_models_target(args)
    target.family(args.group)
    from switchboard.options.store import from_dynamodb_item

    live = _live_arn(target, args.group)
    items = [
        item
        for page in target.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=target.deployments_table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": DEPLOYMENTS_PARTITION_KEY},
            ExpressionAttributeValues={":pk": {"S": f"group#{args.group}"}},
        )
        for item in page.get("Items", [])
    ]
    latest: dict[int, dict[str, Any]] = {}
    for item in sorted(
        (from_dynamodb_item(i) for i in items), key=lambda r: str(r.get(DEPLOYMENTS_SORT_KEY))
    ):
        latest[int(item.get("version") or 0)] = item
    if args.tenant:
        store = target.adapters()
        serving = store.get(args.group, args.tenant)
        tenant_view = {
            "group": args.group,
            "tenant": args.tenant,
            "adapter": _tenant_row(serving) if serving else None,
            "history": [_history_row(h) for h in store.history(args.group, args.tenant)],
        }
        if args.json:
            _out(tenant_view)
        else:
            _print_tenant(tenant_view)
        return 0
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
    tenants: list[dict[str, Any]] = []
    if target.adapters_table and target.family(args.group).get("base_component"):
        from switchboard.lifecycle.adapter_store import all_in_family

        tenants = [_tenant_row(r) for r in all_in_family(target.adapters(), args.group)]
    listing = {"group": args.group, "serving": live, "versions": rows, "tenants": tenants}
    if args.json:
        _out(listing)
    else:
        _print_listing(listing)
    return 0


@aws_errors
def cmd_retire(args: argparse.Namespace) -> int:
    target = resolve_models_target(args)
    for group in args.group or []:
        target.family(group)
    if not target.retirement_function:
        raise TargetError("this stack has no retirement function output (deploy a version with issue 16)")
    event: dict[str, Any] = {"dry_run": bool(args.dry_run)}
    if args.group:
        event["groups"] = list(args.group)
    if args.retention is not None:
        event["retention"] = args.retention
    response = target.client("lambda").invoke(
        FunctionName=target.retirement_function, Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError") or not isinstance(payload, dict):
        _err(f"the retirement function failed: {json.dumps(payload)[:500]}")
        return 1
    if args.json:
        _out(payload)
    else:
        print_retirement(payload)
    left = [
        r
        for family in payload.get("families", {}).values()
        for r in family.get("retired", [])
        if not r["archived"]
    ]
    return 1 if left and not payload.get("dry_run") else 0


def _deleted(part: dict[str, Any]) -> str:
    """What one region of a retired version lost, in a table cell."""
    if part.get("error"):
        return f"not done: {part['error'][:60]}"
    counts = [
        (len(part.get("inference_components") or []), "component"),
        (len(part.get("endpoint_configs") or []), "config"),
        (len(part.get("models") or []), "model"),
    ]
    return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in counts if n) or "nothing left"


def print_retirement(report: dict[str, Any]) -> None:
    """The retirement report as tables: per family its retired versions (one column per region),
    the regions it could not reach, and per tenant the versions kept and retired."""
    dry = report.get("dry_run")
    for group, family in report.get("families", {}).items():
        print(f"{group}: retention {family.get('retention')}{' (dry run: nothing changed)' if dry else ''}")
        for region, state in (family.get("regions") or {}).items():
            if not state.get("reachable"):
                print(f"  region {region} unreachable: {state.get('error')} (the next run retries)")
        regions = [str(r) for r in family.get("regions") or {}]
        rows = []
        for retired in family.get("retired", []):
            by_region = {r["region"]: r for r in retired.get("regions") or []}
            row = {
                "version": retired["version"],
                "tenant": retired.get("tenant") or None,
                "archived": "yes" if retired.get("archived") else "no",
                "home": _deleted(retired),
            }
            row.update({region: _deleted(by_region.get(region, {})) for region in regions})
            rows.append(row)
        if rows:
            _table(rows, ["version", "tenant", "archived", "home", *regions])
        else:
            print("  nothing to retire")
        tenants = family.get("tenants") or {}
        if tenants:
            print(f"{group}: retention per tenant")
            _table(
                [
                    {
                        "tenant": tenant,
                        "live": (view.get("live") or "base model").rsplit("/", 1)[-1],
                        "kept": ", ".join(str(v) for v in view.get("kept") or []) or None,
                        "retired": ", ".join(str(v) for v in view.get("retired") or []) or None,
                    }
                    for tenant, view in sorted(tenants.items())
                ],
                ["tenant", "live", "kept", "retired"],
            )


def _tenant_row(record: Any) -> dict[str, Any]:
    """One tenant's serving adapter as `list` shows it (version None: the base model serves).

    During a canary ``canary_version`` serves ``canary_share_percent`` of the tenant's requests
    and ``version`` (or the base model) the rest; ``share`` says it in one column."""
    live, previous, canary = record.live, record.previous, record.canary
    share = record.canary_share_percent if canary else 0
    serving = live.component if live else "base model"
    return {
        "tenant": record.tenant,
        "version": live.version if live else None,
        "state": record.state.value,
        "serving": serving,
        "model_package_arn": live.package_arn if live else None,
        "canary_version": canary.version if canary else None,
        "canary_component": canary.component if canary else None,
        "canary_share_percent": share if canary else None,
        "share": f"{100 - share}% {f'v{live.version}' if live else 'base'} / {share}% v{canary.version}"
        if canary
        else "100%",
        "previous_version": previous.version if previous else None,
        "updated_at": record.updated_at,
    }


def _history_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": item.get("at"),
        "event": item.get("event"),
        "version": item.get("live_version"),
        "canary_version": item.get("canary_version"),
        "state": item.get("state"),
        "execution": item.get("execution"),
        "reason": item.get("reason") or None,
    }


def _table(rows: list[dict[str, Any]], keys: list[str]) -> None:
    cells = [["-" if row.get(k) is None else str(row.get(k)) for k in keys] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.ljust(widths[i]) for i, k in enumerate(keys)).rstrip())
    for line in cells:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(line)).rstrip())


def _print_listing(listing: dict[str, Any]) -> None:
    print(f"{listing['group']}: versions")
    _table(listing["versions"], ["version", "approval", "stage", "deployment", "deployed_at", "serving"])
    if listing["tenants"]:
        print(f"\n{listing['group']}: tenant adapters")
        _table(
            listing["tenants"],
            ["tenant", "version", "state", "share", "serving", "previous_version", "updated_at"],
        )


def _print_tenant(view: dict[str, Any]) -> None:
    adapter = view["adapter"]
    if adapter is None:
        print(f"{view['group']}: tenant {view['tenant']} has no adapter (the base model serves it)")
        return
    print(f"{view['group']}: tenant {view['tenant']}")
    _table([adapter], ["version", "state", "share", "serving", "previous_version", "updated_at"])
    print("\nhistory (newest first)")
    _table(view["history"], ["at", "event", "version", "canary_version", "state", "reason"])


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("models", help="register, approve, roll back and list model versions")
    sub = group.add_subparsers(
        dest="command", required=True, metavar="{register,approve,rollback,list,retire,canary-signals,alarm}"
    )

    p = sub.add_parser("register", help="register a new version (PendingManualApproval) in a family's group")
    p.add_argument("--group", required=True)
    p.add_argument("--model-data", required=True, help="s3://… model.tar.gz (adapters: files at its root)")
    p.add_argument("--image", required=True, help="inference container image URI")
    p.add_argument("--adapter-of", default=None, help="base inference component this LoRA adapter runs on")
    p.add_argument(
        "--tenant",
        type=_tenant_arg,
        default=None,
        help="the tenant this adapter serves (adapter families only; other tenants are never touched)",
    )
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
    p.add_argument(
        "--bake-seconds",
        type=int,
        default=None,
        help="--local: bake a tenant's canary this long (default 0) to watch or fail it meanwhile",
    )
    add_target_arguments(p)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser(
        "rollback",
        help="reject the version serving traffic: the newest remaining Approved version redeploys",
    )
    p.add_argument("--group", required=True)
    p.add_argument(
        "--tenant",
        type=_tenant_arg,
        default=None,
        help="reject this tenant's live adapter: the tenant goes back to its previous approved adapter, "
        "or to the base model",
    )
    p.add_argument("--reason", default="operator rollback")
    add_target_arguments(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser(
        "list",
        help="versions with approval, lifecycle stage, last deployment, serving; and which adapter "
        "version serves each tenant, in which state",
    )
    p.add_argument("--group", required=True)
    p.add_argument("--tenant", type=_tenant_arg, default=None, help="one tenant's adapter and its history")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_target_arguments(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "retire",
        help="retire versions beyond each family's retention now (every region; per tenant for adapters)",
        description="Invokes the retirement Lambda (it also runs daily). Exit status 1 when a version "
        "was left unarchived because a region could not be reached (the next run retries).",
    )
    p.add_argument("--group", action="append", help="a family's group (repeatable; default: every family)")
    p.add_argument(
        "--retention", type=_retention_arg, default=None, help="override the families' retention count (1-50)"
    )
    p.add_argument("--dry-run", action="store_true", help="show what would go, change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_target_arguments(p)
    p.set_defaults(func=cmd_retire)

    p = sub.add_parser(
        "canary-signals",
        help="--local: put SageMaker metrics on a tenant's running canary (e.g. errors, to roll it back)",
    )
    p.add_argument("--group", required=True)
    p.add_argument("--tenant", type=_tenant_arg, required=True)
    p.add_argument("--invocations", type=int, required=True)
    p.add_argument("--errors", type=int, default=0, help="Invocation5XXErrors among them")
    p.add_argument("--latency-ms", type=float, default=None, help="ModelLatency of each, in ms")
    add_target_arguments(p)
    p.set_defaults(func=cmd_canary_signals)

    from switchboard.contract.model_deployment import ALARM_SUFFIXES

    p = sub.add_parser(
        "alarm",
        help="--local: put a family's rollback alarm in ALARM (a running canary or update rolls back) "
        "or back to OK",
    )
    p.add_argument("--group", required=True)
    p.add_argument("--state", choices=("ALARM", "OK"), required=True)
    p.add_argument(
        "--alarm", choices=ALARM_SUFFIXES, default=ALARM_SUFFIXES[0], help="which of the family's alarms"
    )
    add_target_arguments(p)
    p.set_defaults(func=cmd_alarm)
