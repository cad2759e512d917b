"""The model lifecycle on the local stack and in the integration tests (moto).

:func:`provision_model_lifecycle` creates what ``infra/constructs/model_deployment.py`` creates:
a sample Model Package Group, the deployments and tenant adapters tables, the SNS topic, the
rollback alarms, the deployment and retirement functions (code runs in-process:
:func:`lifecycle_handlers`) and the Standard deployment state machine from
``statemachines/model_deployment.asl.json`` with small waits.
It needs the SageMaker extension installed first (``switchboard_local.moto_patches.SAGEMAKER``).

moto emits no EventBridge event when a package is approved: ``switchboard models approve --local``
starts the workflow itself with the event EventBridge would deliver (:func:`state_change_event`,
:func:`run_deployment_workflow`), and so does the local stack's start-up for acme's sample adapter
(:func:`approve_sample_adapter`, run on a thread by :class:`StartupAdapterFlow`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.contract.model_deployment import (
    EVENT_DETAIL_TYPE,
    DeploymentSettings,
    alarm_names,
    machine_substitutions,
)
from switchboard.contract.tables import KEY_SCHEMAS
from switchboard_local.emulated_lambda import LOCAL_RUNTIME, Handler, placeholder_code_zip
from switchboard_local.moto_patches import SAGEMAKER

DEPLOYMENT_ASL = Path(__file__).resolve().parents[2] / "statemachines" / "model_deployment.asl.json"
SAMPLE_GROUP_SUFFIX = "sample-llm"
SAMPLE_ADAPTER_SUFFIX = "sample-lora"
SAMPLE_TENANTS = ("acme", "globex")
"""The tenants whose adapters `make local` registers in the sample adapter family (issue 16)."""

LOCAL_SETTINGS: dict[str, Any] = DeploymentSettings(
    traffic_type="CANARY",
    canary_percent=10,
    linear_step_percent=10,
    wait_interval_seconds=0,
    termination_wait_seconds=0,
    maximum_execution_timeout_seconds=600,
    poll_seconds=0,
    max_poll_seconds=1,
    max_polls=5,
    bake_seconds=0,
).as_input()
"""Waits small enough that a local deployment takes well under a second (moto sleeps for real)."""

ClientFactory = Callable[[str], Any]

# options table → (lifecycle names, client factory): what `lifecycle_handlers` binds to
_PROVISIONED: dict[str, tuple[dict[str, Any], ClientFactory]] = {}


def prefix_of(resources: Any) -> str:
    """The local stack's name prefix (``switchboard-local``), from its options table name."""
    return str(resources.options_table).removesuffix("-options")


def names_for(prefix: str) -> dict[str, str]:
    """Resource names by convention (the CLI's ``--local`` finds them the same way)."""
    return {
        "deployment_state_machine": f"{prefix}-model-deployment",
        "deployments_table": f"{prefix}-deployments",
        "adapters_table": f"{prefix}-adapters",
        "deployment_function": f"{prefix}-model-deployment",
        "retirement_function": f"{prefix}-model-retirement",
        "topic": f"{prefix}-model-deployments",
        "alarm_prefix": f"{prefix}-model-",
        "sample_group": f"{prefix}-{SAMPLE_GROUP_SUFFIX}",
        "sample_adapter_group": f"{prefix}-{SAMPLE_ADAPTER_SUFFIX}",
        "sample_base_endpoint": f"{prefix}-sample-base",
        "sample_base_component": f"{prefix}-sample-base-ic",
    }


def substitutions(
    *,
    function_arn: str,
    table: str,
    topic_arn: str,
    execution_role_arn: str,
    alarm_prefix: str,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The ASL's ``${…}`` placeholders, built as CDK builds them (the contract's one function),
    with the local waits: small enough to run in moto, so not checked against SageMaker's limits."""
    return machine_substitutions(
        function_arn=function_arn,
        table=table,
        topic_arn=topic_arn,
        execution_role_arn=execution_role_arn,
        alarm_prefix=alarm_prefix,
        settings=DeploymentSettings().with_overrides({**LOCAL_SETTINGS, **(settings or {})}),
        check=False,
    )


def render_definition(subs: Mapping[str, str]) -> str:
    definition = DEPLOYMENT_ASL.read_text()
    for name, value in subs.items():
        definition = definition.replace("${" + name + "}", value)
    return definition


def provision_model_lifecycle(
    client: ClientFactory,
    resources_like: Any,
    *,
    families: list[dict[str, Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Create the lifecycle's emulated resources; returns their names (and the families).

    Args:
        client: ``client(service)`` → a boto3 client for the emulator.
        resources_like: the local stack's resources (``region``, ``options_table``).
        families: model families (default: a full-model sample family, and a sample adapter family
            whose base endpoint and component are deployed here, with one adapter version registered
            for each of :data:`SAMPLE_TENANTS`, pending approval).
        settings: deployment-setting overrides baked into the definition's defaults.
    """
    if not SAGEMAKER.is_installed:
        raise RuntimeError(
            "the model lifecycle runs on moto's SageMaker as extended by switchboard_local: "
            "install switchboard_local.moto_patches.SAGEMAKER first (and uninstall it after)"
        )
    prefix = prefix_of(resources_like)
    names = names_for(prefix)
    region = str(resources_like.region)
    samples = families is None
    if families is None:
        families = [
            {
                "group": names["sample_group"],
                "option_id": f"{SAMPLE_GROUP_SUFFIX}",
                "endpoint_name": names["sample_group"],
                "instance_type": "ml.g4dn.xlarge",
                "retention": 2,
                "description": "Local sample family: register and approve versions with `switchboard models`",
            },
            {
                "group": names["sample_adapter_group"],
                "option_id": f"{SAMPLE_ADAPTER_SUFFIX}",
                "endpoint_name": names["sample_base_endpoint"],
                "base_component": names["sample_base_component"],
                "instance_type": "ml.g4dn.xlarge",
                "retention": 2,
                "description": "Local sample adapter family: tenant adapters for acme and globex on one "
                "base component (`switchboard models approve --group … --version N`)",
                "canary": sample_canary_policy(),
            },
        ]

    sagemaker = client("sagemaker")
    for family in families:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=family["group"],
            ModelPackageGroupDescription=str(family.get("description") or "Switchboard model family"),
        )

    for table, contract_name in (("deployments_table", "deployments"), ("adapters_table", "adapters")):
        keys = KEY_SCHEMAS[contract_name]
        client("dynamodb").create_table(
            TableName=names[table],
            KeySchema=[
                {"AttributeName": key, "KeyType": kind}
                for key, kind in zip(keys, ("HASH", "RANGE"), strict=True)
            ],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    topic_arn = client("sns").create_topic(Name=names["topic"])["TopicArn"]

    cloudwatch = client("cloudwatch")
    all_alarms: list[str] = []
    for family in families:
        for alarm in alarm_names(names["alarm_prefix"], family["group"]):
            cloudwatch.put_metric_alarm(
                AlarmName=alarm,
                Namespace="AWS/SageMaker",
                MetricName="Invocation5XXErrors",
                Dimensions=[{"Name": "EndpointName", "Value": family["endpoint_name"]}],
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
            all_alarms.append(alarm)

    iam = client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "Service": ["lambda.amazonaws.com", "states.amazonaws.com", "sagemaker.amazonaws.com"]
                },
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = iam.create_role(
        RoleName=f"{prefix}-model-lifecycle", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    sample_adapters: dict[str, str] = {}
    if samples:
        deploy_base_component(
            sagemaker,
            endpoint=names["sample_base_endpoint"],
            component=names["sample_base_component"],
            role_arn=role_arn,
        )
        for tenant in SAMPLE_TENANTS:
            sample_adapters[tenant] = register_tenant_adapter(
                sagemaker, names["sample_adapter_group"], tenant, names["sample_base_component"]
            )
    families_json = json.dumps(families, separators=(",", ":"))
    replicas = regional_artifact_buckets(families, home_region=region, prefix=prefix)
    environment = {
        "Variables": {
            "OPTIONS_TABLE": str(resources_like.options_table),
            "MODEL_FAMILIES": families_json,
            "ADAPTERS_TABLE": names["adapters_table"],
            "REGIONAL_ARTIFACT_BUCKETS": json.dumps(replicas),
            "SAGEMAKER_EXECUTION_ROLE_ARN": role_arn,
        }
    }
    lambda_client = client("lambda")
    function_arn = ""
    for key, handler in (
        ("deployment_function", "handlers.model_deployment.handler"),
        ("retirement_function", "handlers.model_retirement.handler"),
    ):
        arn = lambda_client.create_function(
            FunctionName=names[key],
            Runtime=LOCAL_RUNTIME,
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": placeholder_code_zip()},
            Environment=environment,
        )["FunctionArn"]
        if key == "deployment_function":
            function_arn = arn

    subs = substitutions(
        function_arn=function_arn,
        table=names["deployments_table"],
        topic_arn=topic_arn,
        execution_role_arn=role_arn,
        alarm_prefix=names["alarm_prefix"],
        settings=settings,
    )
    state_machine_arn = client("stepfunctions").create_state_machine(
        name=names["deployment_state_machine"],
        definition=render_definition(subs),
        roleArn=role_arn,
        type="STANDARD",
    )["stateMachineArn"]

    result: dict[str, Any] = {
        **names,
        "region": region,
        "options_table": str(resources_like.options_table),
        "deployment_state_machine_arn": state_machine_arn,
        "deployment_function_arn": function_arn,
        "topic_arn": topic_arn,
        "execution_role_arn": role_arn,
        "alarm_names": all_alarms,
        "families": families,
        "groups": [f["group"] for f in families],
        "regional_artifact_buckets": replicas,
        "sample_adapters": sample_adapters,
    }
    _PROVISIONED[str(resources_like.options_table)] = (result, client)
    return result


def sample_canary_policy(cdk_json: Path | None = None) -> dict[str, Any]:
    """The sample adapter family canaries as `cdk.json`'s first adapter family is configured to
    (``model_families[].canary``: share, thresholds), so `make local` shows the configured share.

    One change: moto's GetMetricData computes ``Sum``, ``Average``, ``Minimum``, ``Maximum`` and
    ``SampleCount`` only (a percentile such as ``p90`` comes back without a value), so the local
    family judges ``ModelLatency`` by its ``Average``.
    """
    from infra.config import load_cdk_json_context
    from switchboard.lifecycle.model import AdapterCanaryPolicy, parse_families

    context = load_cdk_json_context(cdk_json) if cdk_json else load_cdk_json_context()
    adapters = [f for f in parse_families(context.get("model_families")).values() if f.base_component]
    policy = adapters[0].canary if adapters else AdapterCanaryPolicy()
    return policy.model_copy(update={"latency_statistic": "Average"}).model_dump()


def regional_artifact_buckets(
    families: list[dict[str, Any]], *, home_region: str, prefix: str
) -> dict[str, str]:
    """Region → the local stand-in for the artifacts replica there, for every family's other regions
    (in AWS the regional stacks' buckets; the emulator needs only the names)."""
    return {
        region: f"{prefix}-models-{region}".lower()
        for family in families
        for region in family.get("regions") or ()
        if region != home_region
    }


def deploy_base_component(sagemaker: Any, *, endpoint: str, component: str, role_arn: str) -> None:
    """What a platform engineer deploys before an adapter family's first adapter: an endpoint with
    a base inference component holding the compute (the adapters load on it)."""
    model = f"{component}-model"
    sagemaker.create_model(
        ModelName=model,
        ExecutionRoleArn=role_arn,
        PrimaryContainer={"Image": "local/llm:1", "ModelDataUrl": "s3://switchboard-local/base.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{component}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.g4dn.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{component}-config")
    sagemaker.create_inference_component(
        InferenceComponentName=component,
        EndpointName=endpoint,
        VariantName="AllTraffic",
        Specification={
            "ModelName": model,
            "ComputeResourceRequirements": {
                "MinMemoryRequiredInMb": 1024,
                "NumberOfAcceleratorDevicesRequired": 1,
            },
        },
        RuntimeConfig={"CopyCount": 1},
    )
    sagemaker.describe_inference_component(InferenceComponentName=component)  # settles it


def register_tenant_adapter(sagemaker: Any, group: str, tenant: str, base_component: str) -> str:
    """One adapter version for ``tenant`` (PendingManualApproval), as `switchboard models register
    --adapter-of BASE --tenant T` registers it."""
    from switchboard.lifecycle.model import ADAPTER_OF_KEY, TENANT_KEY

    arn: str = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"sample adapter of tenant {tenant}",
        InferenceSpecification={
            "Containers": [
                {"Image": "local/llm:1", "ModelDataUrl": f"s3://switchboard-local/adapters/{tenant}.tar.gz"}
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={ADAPTER_OF_KEY: base_component, TENANT_KEY: tenant},
    )["ModelPackageArn"]
    return arn


def lifecycle_settings(lifecycle: Mapping[str, Any]) -> Any:
    """The functions' settings, from what :func:`provision_model_lifecycle` gave them."""
    from switchboard.lifecycle.settings import LifecycleSettings

    return LifecycleSettings.model_validate(
        {
            "OPTIONS_TABLE": lifecycle["options_table"],
            "MODEL_FAMILIES": lifecycle["families"],
            "ADAPTERS_TABLE": lifecycle["adapters_table"],
            "REGIONAL_ARTIFACT_BUCKETS": lifecycle.get("regional_artifact_buckets") or {},
            "SAGEMAKER_EXECUTION_ROLE_ARN": lifecycle.get("execution_role_arn") or "",
        }
    )


def build_service(lifecycle: Mapping[str, Any], client: ClientFactory) -> Any:
    """A :class:`LifecycleService` on the emulator's clients."""
    from handlers.model_deployment import build_service as build

    return build(
        lifecycle_settings(lifecycle),
        sagemaker=client("sagemaker"),
        runtime=client("sagemaker-runtime"),
        dynamodb=client("dynamodb"),
        cloudwatch=client("cloudwatch"),
    )


def lifecycle_handlers(resources_like: Any) -> dict[str, Handler]:
    """Function name → in-process handler for the lifecycle's Lambda tasks (for ``bind_lambda_handlers``).

    Empty when :func:`provision_model_lifecycle` has not run for these resources. The service (and
    its clients) is built on the first invocation, so binding costs nothing when nothing deploys.
    """
    from handlers import model_deployment, model_retirement
    from switchboard.selfcheck import is_selfcheck

    found = _PROVISIONED.get(str(resources_like.options_table))
    if found is None:
        return {}
    lifecycle, client = found
    built: list[Any] = []

    def service() -> Any:
        if not built:
            built.append(build_service(lifecycle, client))
        return built[0]

    def self_report(name: str) -> dict[str, Any]:
        """As the deployed handlers answer `switchboard doctor` (their settings come from here)."""
        from switchboard import selfcheck

        return selfcheck.report(name, settings=lambda: lifecycle_settings(lifecycle), init=service)

    def deploy(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if is_selfcheck(event):
            return self_report("model_deployment")
        result: dict[str, Any] = model_deployment.make_handler(service())(event, context)
        return result

    def retire(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if is_selfcheck(event):
            return self_report("model_retirement")
        result: dict[str, Any] = model_retirement.make_handler(service())(event, context)
        return result

    return {lifecycle["deployment_function"]: deploy, lifecycle["retirement_function"]: retire}


def state_change_event(
    described: Mapping[str, Any], *, region: str = "us-east-1", account: str = "123456789012"
) -> dict[str, Any]:
    """The ``SageMaker Model Package State Change`` event EventBridge would deliver for a package
    (from its DescribeModelPackage response): what the CLI sends to the workflow locally."""
    import uuid
    from datetime import UTC, datetime

    from switchboard.contract.workflow import timestamp_now

    def stamp(value: Any) -> str:
        if isinstance(value, datetime):
            # milliseconds: two status changes within a second must not share an idempotency key
            return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return str(value or timestamp_now())

    arn = str(described["ModelPackageArn"])
    modified = stamp(described.get("LastModifiedTime") or described.get("CreationTime"))
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": EVENT_DETAIL_TYPE,
        "source": "aws.sagemaker",
        "account": account,
        "time": modified,
        "region": region,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": described.get("ModelPackageGroupName"),
            "ModelPackageVersion": described.get("ModelPackageVersion"),
            "ModelPackageArn": arn,
            "CreationTime": stamp(described.get("CreationTime")),
            "ModelPackageStatus": described.get("ModelPackageStatus", "Completed"),
            "ModelApprovalStatus": described.get("ModelApprovalStatus"),
            "LastModifiedTime": modified,
        },
    }


def put_component_metrics(
    cloudwatch: Any,
    component: str,
    *,
    invocations: int,
    errors: int = 0,
    latency_ms: float | None = None,
) -> None:
    """What SageMaker would publish for an inference component, into the emulator's CloudWatch.

    The local stand-in for "the adapter's alarm in ALARM" (issue 16): there is no CloudWatch alarm
    per adapter, the workflow's ``JudgeTenantCanary`` reads the canary component's own metrics
    (``switchboard.lifecycle.canary``), so an operator puts bad ones here during the bake (e.g.
    ``errors=invocations``) and the canary rolls back. moto's GetMetricData serves them back.
    """
    from switchboard.lifecycle.canary import DIMENSION, ERROR_METRICS, INVOCATIONS, LATENCY, NAMESPACE

    dimensions = [{"Name": DIMENSION, "Value": component}]
    data: list[dict[str, Any]] = [
        {"MetricName": INVOCATIONS, "Dimensions": dimensions, "Value": float(invocations), "Unit": "None"},
        {"MetricName": ERROR_METRICS[0], "Dimensions": dimensions, "Value": float(errors), "Unit": "None"},
    ]
    if latency_ms is not None:
        data.append(
            {
                "MetricName": LATENCY,
                "Dimensions": dimensions,
                "Value": latency_ms * 1000.0,  # SageMaker reports ModelLatency in microseconds
                "Unit": "Microseconds",
            }
        )
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)


# --------------------------------------------------------------------------------------------------
# Running the deployment workflow locally: `switchboard models approve|rollback --local` and the
# local stack's start-up (issue 16: `make local` runs the adapter flow) share these.

WORKFLOW_WAIT_S = 300.0
"""How long a local caller waits for one deployment workflow execution (the bake included)."""


def run_deployment_workflow(
    client: ClientFactory,
    state_machine_arn: str,
    package_arn: str,
    *,
    region: str,
    bake_seconds: int | None = None,
    name_prefix: str = "cli",
    timeout_s: float = WORKFLOW_WAIT_S,
) -> dict[str, Any]:
    """Start the deployment workflow for a package's current approval status, as the EventBridge
    rule does in AWS (moto emits no event), and wait for it.

    ``bake_seconds``: None runs with the local definition's waits (a bake of 0 s); a number bakes a
    tenant's canary that long, leaving time to watch it (`models list`) or to put bad signals on it
    (`models canary-signals`). Returns the execution, its status, error, cause and the states it
    entered, in order.
    """
    import time
    import uuid

    described = client("sagemaker").describe_model_package(ModelPackageName=package_arn)
    event: dict[str, Any] = state_change_event(described, region=region)
    if bake_seconds is not None:
        event["settings"] = {**LOCAL_SETTINGS, "bake_seconds": bake_seconds}
    sfn = client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=f"{name_prefix}-{uuid.uuid4().hex[:20]}",
        input=json.dumps(event),
    )["executionArn"]
    deadline = time.monotonic() + timeout_s
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


SAMPLE_FLOW_TENANT = SAMPLE_TENANTS[0]
"""The sample tenant whose adapter the local stack approves at start-up (``acme``); the other
(``globex``) keeps its adapter pending, so the base model serves it: issue 16's tenant A and B."""
STARTUP_APPROVER = "switchboard-local start-up"


@dataclass(frozen=True, slots=True)
class AdapterFlowReport:
    """What the start-up's adapter flow did for one tenant, for the banner and the tests."""

    group: str
    tenant: str
    version: int
    package_arn: str
    outcome: str
    """``promoted``, ``rolled back``, ``already deployed`` (nothing to do) or ``failed``."""
    reason: str = ""
    share_percent: int | None = None
    bake_seconds: int = 0
    execution: str | None = None
    states: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: tenant, version, canary share and bake, outcome and why."""
        what = f"{self.tenant}: {self.group} v{self.version}"
        if self.outcome == "already deployed":
            return f"{what} left as it was ({self.reason})"
        if self.outcome == "failed":
            return f"{what} failed: {self.reason}"
        canary = (
            f"a {self.bake_seconds} s canary on {self.share_percent}% of {self.tenant}'s requests"
            if self.share_percent
            else f"a {self.bake_seconds} s bake"
        )
        settled = "promoted to live" if self.outcome == "promoted" else "rolled back"
        return f"{what} {settled} after {canary} ({self.reason})"


def approve_sample_adapter(
    client: ClientFactory,
    lifecycle: Mapping[str, Any],
    *,
    tenant: str = SAMPLE_FLOW_TENANT,
    bake_seconds: int = 0,
) -> AdapterFlowReport:
    """Approve the sample tenant's adapter and run the whole deployment flow on the emulator.

    What ``switchboard models approve --local`` does, through the same functions: the approval
    in the registry, then the model-deployment state machine on moto's ASL interpreter with the
    event EventBridge would deliver: the adapter's inference component, its smoke test, the canary
    in the tenant adapters table at the family's share, the bake (``bake_seconds``), the judgement
    of the component's metrics and the family's alarms, then promotion or rollback. Idempotent: a
    version that is no longer pending, or a tenant that already has an adapter, is left alone.
    """
    from switchboard.lifecycle.adapter_store import DynamoTenantAdapterStore, HistoryEvent
    from switchboard.lifecycle.model import Approval, PackageVersion

    group = str(lifecycle["sample_adapter_group"])
    package_arn = str(lifecycle["sample_adapters"][tenant])
    sagemaker = client("sagemaker")
    version = PackageVersion.from_description(sagemaker.describe_model_package(ModelPackageName=package_arn))
    store = DynamoTenantAdapterStore(str(lifecycle["adapters_table"]), client=client("dynamodb"))
    record = store.get(group, tenant)
    report: dict[str, Any] = {
        "group": group,
        "tenant": tenant,
        "version": version.version,
        "package_arn": package_arn,
    }
    if version.approval != Approval.PENDING or (record is not None and (record.live or record.canary)):
        state = record.state.value if record else "no adapter record"
        return AdapterFlowReport(
            **report, outcome="already deployed", reason=f"{version.approval}, tenant state {state}"
        )

    sagemaker.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus=Approval.APPROVED,
        ApprovalDescription=f"approved by {STARTUP_APPROVER}",
    )
    run = run_deployment_workflow(
        client,
        str(lifecycle["deployment_state_machine_arn"]),
        package_arn,
        region=str(lifecycle["region"]),
        bake_seconds=bake_seconds,
        name_prefix="startup",
    )
    changes = [item for item in store.history(group, tenant) if item.get("execution") == run["execution"]]
    started = next((c for c in changes if c.get("event") == HistoryEvent.CANARY_STARTED), {})
    ended = next(
        (
            c
            for c in changes
            if c.get("event") in (HistoryEvent.CANARY_PROMOTED, HistoryEvent.CANARY_ROLLED_BACK)
        ),
        None,
    )
    if ended is None:
        outcome, reason = "failed", f"workflow {run['status']}: {run.get('error')} {run.get('cause') or ''}"
    else:
        promoted = ended["event"] == HistoryEvent.CANARY_PROMOTED
        outcome, reason = ("promoted" if promoted else "rolled back"), str(ended.get("reason") or "")
    return AdapterFlowReport(
        **report,
        outcome=outcome,
        reason=reason.strip(),
        share_percent=int(started["canary_share_percent"]) if started.get("canary_share_percent") else None,
        bake_seconds=bake_seconds,
        execution=run["execution"],
        states=tuple(run["states"]),
    )


class StartupAdapterFlow:
    """:func:`approve_sample_adapter` on its own thread: the local stack serves while it runs.

    ``wait`` returns the report (or raises what the flow raised); while the flow bakes, the tenant
    adapters table shows the canary (``switchboard models list --group G --tenant T --local``).
    The flow makes its boto3 clients on its own session: boto3's default session is not safe to
    share between threads.
    """

    def __init__(self, endpoint_url: str, lifecycle: Mapping[str, Any], *, bake_seconds: int) -> None:
        import threading
        from concurrent.futures import Future

        self.lifecycle = lifecycle
        self.bake_seconds = bake_seconds
        self.group = str(lifecycle["sample_adapter_group"])
        self.tenant = SAMPLE_FLOW_TENANT
        self._endpoint_url = endpoint_url
        self._result: Future[AdapterFlowReport] = Future()
        self._thread = threading.Thread(target=self._run, name="sample-adapter-flow", daemon=True)

    def start(self) -> StartupAdapterFlow:
        self._thread.start()
        return self

    def _run(self) -> None:
        import boto3

        if not self._result.set_running_or_notify_cancel():
            return
        session = boto3.session.Session(region_name=str(self.lifecycle["region"]))
        try:
            report = approve_sample_adapter(
                lambda service: session.client(service, endpoint_url=self._endpoint_url),
                self.lifecycle,
                tenant=self.tenant,
                bake_seconds=self.bake_seconds,
            )
        except BaseException as exc:  # reported by wait(); the stack keeps serving
            self._result.set_exception(exc)
        else:
            self._result.set_result(report)

    def wait(self, timeout: float | None = None) -> AdapterFlowReport:
        """The flow's report, once it finished (``TimeoutError`` after ``timeout`` seconds)."""
        return self._result.result(timeout)

    def done(self) -> bool:
        return self._result.done()

    def stop(self, timeout: float | None = None) -> None:
        """Let a running flow finish (its workflow calls the stack's in-process handlers, which go
        when the stack stops): at most the bake plus ``timeout`` seconds."""
        if self._thread.is_alive():
            self._thread.join(self.bake_seconds + (WORKFLOW_WAIT_S if timeout is None else timeout))
