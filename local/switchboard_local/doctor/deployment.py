"""What the doctor checks: the parts of one deployment, found in AWS or on the local stack.

A :class:`Deployment` names the stack's tables, functions, workflows, AppConfig profile and API,
and hands out clients; slow look-ups (function configurations, self-check reports, the deployed
flag document) are made once and shared by the checks that need them. Resolving a deployment only
reads names (CloudFormation outputs and resources, or the local stack's state file and the
emulator's listings); the checks make every other call, so a broken part fails its own rows.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from switchboard.contract.dependencies import pinned_versions
from switchboard.contract.handlers import python_handler
from switchboard_local.cli.target import Target, TargetError, aws_client

ClientFactory = Callable[[str], Any]

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS_FILE = ROOT / "requirements.txt"
LOCAL_FLAGS_FILE = ROOT / "config" / "flags.json"
HANDLER_PREFIX = "handlers."

# CloudFormation outputs the doctor reads beyond those of `cli/target.py` (infra/constants.py and
# infra/constructs/model_deployment.py declare them).
OUTPUT_STATE_MACHINE_ARN = "StateMachineArn"
OUTPUT_APPCONFIG_APPLICATION = "AppConfigApplication"
OUTPUT_APPCONFIG_ENVIRONMENT = "AppConfigEnvironment"
OUTPUT_APPCONFIG_PROFILE = "AppConfigProfile"
OUTPUT_APPCONFIG_APPLICATION_ID = "AppConfigApplicationId"
OUTPUT_APPCONFIG_ENVIRONMENT_ID = "AppConfigEnvironmentId"
OUTPUT_APPCONFIG_PROFILE_ID = "AppConfigProfileId"
OUTPUT_MODEL_DEPLOYMENT_STATE_MACHINE = "ModelDeploymentStateMachineArn"
OUTPUT_MODEL_DEPLOYMENT_FUNCTION = "ModelDeploymentFunctionName"


# --------------------------------------------------------------------------------------------------
# Expected versions


@dataclass(frozen=True)
class Pins:
    """The versions the tests ran with, from ``requirements.txt``: what every function must import."""

    powertools: str | None
    pydantic: str | None
    source: str


def read_pins(path: Path = REQUIREMENTS_FILE) -> Pins:
    """``aws-lambda-powertools`` and ``pydantic`` pins; a missing file or pin reads as None."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return Pins(None, None, f"{path} (unreadable)")
    found = pinned_versions(text)
    return Pins(found.get("aws-lambda-powertools"), found.get("pydantic"), str(path))


# --------------------------------------------------------------------------------------------------
# The flag document as deployed


@dataclass(frozen=True)
class DeployedFlags:
    """The flag document that should be served, and the versions the extension may report for it."""

    document: dict[str, Any]
    source: str
    # None: the source has no versions to compare (the local agent numbers its reloads itself).
    versions: frozenset[str] | None = None


class FlagsSource(Protocol):
    def deployed(self, served_version: str | None = None) -> DeployedFlags:
        """The deployed document; ``served_version`` picks that version when it is a deployed one."""
        ...


@dataclass(frozen=True)
class FileFlags:
    """The local stack: the agent emulator serves a file (``config/flags.json`` under ``make local``)."""

    path: Path

    def deployed(self, served_version: str | None = None) -> DeployedFlags:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(
                f"{self.path} is not valid JSON ({exc}); the agent keeps serving the last valid document"
            ) from exc
        if not isinstance(document, dict):
            raise ValueError(f"{self.path} does not hold a JSON object")
        return DeployedFlags(document=document, source=str(self.path))


@dataclass(frozen=True)
class AppConfigRef:
    application: str
    environment: str
    profile: str
    application_id: str
    environment_id: str
    profile_id: str


_IN_PROGRESS = ("DEPLOYING", "BAKING", "VALIDATING")


@dataclass
class HostedFlags:
    """AWS: the hosted configuration version of the latest completed deployment of the profile
    (and of a deployment still rolling out, which the extension may already serve)."""

    appconfig: Any
    ref: AppConfigRef

    def _deployments(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "ApplicationId": self.ref.application_id,
            "EnvironmentId": self.ref.environment_id,
        }
        while True:
            page = self.appconfig.list_deployments(**kwargs)
            items.extend(page.get("Items", []))
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        mine = [
            d
            for d in items
            if d.get("ConfigurationProfileId", self.ref.profile_id) == self.ref.profile_id
            and d.get("ConfigurationName", self.ref.profile) == self.ref.profile
        ]
        return sorted(mine, key=lambda d: int(d.get("DeploymentNumber", 0)), reverse=True)

    def _document(self, version: str) -> dict[str, Any]:
        answer = self.appconfig.get_hosted_configuration_version(
            ApplicationId=self.ref.application_id,
            ConfigurationProfileId=self.ref.profile_id,
            VersionNumber=int(version),
        )
        content = answer["Content"]
        raw = content.read() if hasattr(content, "read") else content
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise ValueError(f"hosted configuration version {version} is not a JSON object")
        return document

    def deployed(self, served_version: str | None = None) -> DeployedFlags:
        deployments = self._deployments()
        complete = next((d for d in deployments if d.get("State") == "COMPLETE"), None)
        if complete is None:
            raise LookupError(
                f"no completed deployment of profile {self.ref.profile!r} in environment "
                f"{self.ref.environment!r}"
            )
        newest = int(complete.get("DeploymentNumber", 0))
        versions = {str(complete["ConfigurationVersion"])}
        versions.update(
            str(d["ConfigurationVersion"])
            for d in deployments
            if d.get("State") in _IN_PROGRESS and int(d.get("DeploymentNumber", 0)) > newest
        )
        chosen = served_version if served_version in versions else str(complete["ConfigurationVersion"])
        return DeployedFlags(
            document=self._document(chosen),
            source=f"hosted configuration version {chosen} (deployment #{newest} is the latest completed)",
            versions=frozenset(versions),
        )


# --------------------------------------------------------------------------------------------------
# HTTP (the API), injectable for tests


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


HttpCall = Callable[[str, str, Mapping[str, str], bytes | None, float], HttpAnswer]


def urllib_call(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout_s: float
) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - the stack's own API
            return HttpAnswer(int(response.status), dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(int(exc.code), dict(exc.headers.items()), exc.read())


# --------------------------------------------------------------------------------------------------
# The deployment


@dataclass(frozen=True)
class FunctionRef:
    """One of the stack's own functions (its handler lives in ``lambdas/handlers/``)."""

    role: str  # the handler module: gateway, authorizer, invoke...
    name: str  # the function's physical name
    runtime: str | None = None
    layers: tuple[str, ...] = ()


class _Memo:
    """Values (or the exception raised making them) computed once per key, thread-safe."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bool, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            known = self._values.get(key)
        if known is None:
            try:
                known = (True, make())
            except Exception as exc:
                known = (False, exc)
            with self._lock:
                self._values[key] = known
        ok, value = known
        if not ok:
            raise value
        return value


@dataclass
class Deployment:
    """What the checks look at. ``local`` picks the remedies (``make local`` or ``cdk deploy``)."""

    local: bool
    label: str
    target: Target
    client: ClientFactory
    functions: Callable[[], list[FunctionRef]]
    state_machine_arn: str | None
    flags: FlagsSource
    deployment_state_machine_arn: str | None
    deployment_function: str | None
    pins: Pins
    http: HttpCall = urllib_call
    region_client: Callable[[str, str], Any] | None = None
    """(service, region) → a client in a model family's other region; None: boto3 with the target's
    credentials and endpoint (the local emulator answers for every region)."""
    _memo: _Memo = field(default_factory=_Memo)

    def client_in(self, service: str, region: str) -> Any:
        """A client for ``service`` in ``region``: the target's own client in the target's region."""
        if region == self.target.region:
            return self.client(service)
        if self.region_client is not None:
            return self.region_client(service, region)
        return aws_client(service, region=region, endpoint_url=self.target.endpoint_url)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        return self._memo.get(key, make)

    def our_functions(self) -> list[FunctionRef]:
        result: list[FunctionRef] = self.cached("functions", self.functions)
        return result

    def function(self, role: str) -> FunctionRef | None:
        return next((f for f in self.our_functions() if f.role == role), None)

    def selfcheck(self, function: FunctionRef) -> dict[str, Any]:
        result: dict[str, Any] = self.cached(
            f"selfcheck:{function.name}", lambda: invoke_selfcheck(self.client, function)
        )
        return result

    def deployed_flags(self, served_version: str | None = None) -> DeployedFlags:
        result: DeployedFlags = self.cached(
            f"flags:{served_version}", lambda: self.flags.deployed(served_version)
        )
        return result

    @property
    def api_base(self) -> str | None:
        """``…/v1`` of the API (the stack output is the stage URL; the local state names ``/v1``)."""
        url = (self.target.api_url or "").rstrip("/")
        if not url:
            return None
        return url if url.endswith("/v1") else f"{url}/v1"


class SelfcheckFailed(RuntimeError):
    """The function raised (Lambda's FunctionError): e.g. a module missing from its layers."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


STREAM_PRELUDE_DELIMITER = b"\x00" * 8


def without_stream_prelude(raw: bytes) -> bytes:
    """The body of a payload written in Lambda's HTTP streaming format, else ``raw`` as it is.

    The gateway runs under Lambda Web Adapter in ``response_stream`` mode, which answers every
    invocation, a direct ``Invoke`` included, as a JSON prelude (status code, headers), eight NUL
    bytes, then the body (``handlers.gateway_http``, whose failure body is Lambda's
    ``errorType``/``errorMessage`` shape).
    """
    head, delimiter, body = raw.partition(STREAM_PRELUDE_DELIMITER)
    if not delimiter or not head.lstrip().startswith(b"{"):
        return raw
    try:
        prelude = json.loads(head)
    except ValueError:
        return raw
    if not isinstance(prelude, dict) or "statusCode" not in prelude:
        return raw
    return body


def invoke_selfcheck(client: ClientFactory, function: FunctionRef) -> dict[str, Any]:
    """Invoke the function with ``{"switchboard_selfcheck": true}`` and return its report."""
    from switchboard.selfcheck import SELFCHECK_EVENT, SELFCHECK_KEY

    answer = client("lambda").invoke(
        FunctionName=function.name,
        InvocationType="RequestResponse",
        Payload=json.dumps(dict(SELFCHECK_EVENT)).encode(),
    )
    raw = without_stream_prelude(answer["Payload"].read())
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = {"errorType": "InvalidResponse", "errorMessage": raw[:200].decode(errors="replace")}
    failed_in_server = isinstance(payload, dict) and "errorType" in payload and SELFCHECK_KEY not in payload
    if answer.get("FunctionError") or failed_in_server:
        payload = payload if isinstance(payload, dict) else {}
        raise SelfcheckFailed(
            str(payload.get("errorType") or answer.get("FunctionError")),
            str(payload.get("errorMessage") or "the function failed"),
        )
    if not isinstance(payload, dict) or SELFCHECK_KEY not in payload:
        raise SelfcheckFailed(
            "NoSelfcheck",
            "the function answered without a self-check report: it runs code older than this CLI (redeploy)",
        )
    return payload


# --------------------------------------------------------------------------------------------------
# Resolving


def _function_refs(lambda_client: Any, names: list[str]) -> list[FunctionRef]:
    refs = []
    for name in names:
        config = lambda_client.get_function_configuration(FunctionName=name)
        handler = python_handler(str(config.get("Handler") or ""))
        if not handler.startswith(HANDLER_PREFIX):
            continue  # CDK's own helpers (custom-resource provider framework...) are not ours
        refs.append(
            FunctionRef(
                role=handler[len(HANDLER_PREFIX) :].split(".", 1)[0],
                name=str(config.get("FunctionName") or name),
                runtime=config.get("Runtime"),
                layers=tuple(str(layer.get("Arn")) for layer in config.get("Layers") or ()),
            )
        )
    return sorted(refs, key=lambda f: (f.role, f.name))


def local_deployment(
    target: Target,
    client: ClientFactory,
    *,
    flags_file: Path = LOCAL_FLAGS_FILE,
    pins: Pins | None = None,
    http: HttpCall = urllib_call,
) -> Deployment:
    """The running local stack (its state file gave ``target``); names follow its conventions."""
    from switchboard_local.lifecycle_local import names_for, prefix_of

    prefix = prefix_of(target)
    names = names_for(prefix)

    def functions() -> list[FunctionRef]:
        lam = client("lambda")
        listed: list[str] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = lam.list_functions(**kwargs)
            listed.extend(f["FunctionName"] for f in page.get("Functions", []))
            if not page.get("NextMarker"):
                break
            kwargs["Marker"] = page["NextMarker"]
        return _function_refs(lam, [n for n in listed if n.startswith(f"{prefix}-")])

    def machine(name: str) -> str | None:
        machines = client("stepfunctions").list_state_machines().get("stateMachines", [])
        return next((m["stateMachineArn"] for m in machines if m["name"] == name), None)

    try:
        request_workflow = machine(f"{prefix}-request")
        deployment_workflow = machine(names["deployment_state_machine"])
    except Exception as exc:
        raise TargetError(
            f"the local stack's AWS endpoint {target.endpoint_url} does not answer ({exc}): "
            "is `make local` running?"
        ) from exc
    return Deployment(
        local=True,
        label=f"local stack (AWS endpoint {target.endpoint_url}, API {target.api_url})",
        target=target,
        client=client,
        functions=functions,
        state_machine_arn=request_workflow,
        flags=FileFlags(flags_file),
        deployment_state_machine_arn=deployment_workflow,
        deployment_function=names["deployment_function"],
        pins=pins or read_pins(),
        http=http,
    )


def aws_deployment(
    target: Target,
    client: ClientFactory,
    *,
    stack: str,
    pins: Pins | None = None,
    http: HttpCall = urllib_call,
) -> Deployment:
    """A deployed stack: its outputs name the parts, its resources list the functions."""
    cfn = client("cloudformation")
    try:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as exc:
        raise TargetError(f"cannot read stack {stack!r} in {target.region}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    def need(key: str) -> str:
        try:
            return outputs[key]
        except KeyError:
            raise TargetError(f"stack {stack!r} has no output {key!r}: is it a Switchboard stack?") from None

    ref = AppConfigRef(
        application=need(OUTPUT_APPCONFIG_APPLICATION),
        environment=need(OUTPUT_APPCONFIG_ENVIRONMENT),
        profile=need(OUTPUT_APPCONFIG_PROFILE),
        application_id=need(OUTPUT_APPCONFIG_APPLICATION_ID),
        environment_id=need(OUTPUT_APPCONFIG_ENVIRONMENT_ID),
        profile_id=need(OUTPUT_APPCONFIG_PROFILE_ID),
    )

    def functions() -> list[FunctionRef]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"StackName": stack}
        while True:
            page = cfn.list_stack_resources(**kwargs)
            names.extend(
                r["PhysicalResourceId"]
                for r in page.get("StackResourceSummaries", [])
                if r.get("ResourceType") == "AWS::Lambda::Function" and r.get("PhysicalResourceId")
            )
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return _function_refs(client("lambda"), names)

    return Deployment(
        local=False,
        label=f"stack {stack} in {target.region}",
        target=target,
        client=client,
        functions=functions,
        state_machine_arn=need(OUTPUT_STATE_MACHINE_ARN),
        flags=HostedFlags(client("appconfig"), ref),
        deployment_state_machine_arn=outputs.get(OUTPUT_MODEL_DEPLOYMENT_STATE_MACHINE),
        deployment_function=outputs.get(OUTPUT_MODEL_DEPLOYMENT_FUNCTION),
        pins=pins or read_pins(),
        http=http,
    )
