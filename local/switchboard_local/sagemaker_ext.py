"""What moto 5.2's SageMaker lacks for the model-deployment workflow, added the way AWS behaves.

moto has no ``UpdateEndpoint``, no inference components, drops ``ModelLifeCycle`` and, on
``UpdateModelPackage``, wipes every field the request leaves out (approval status included). The
deployment state machine calls these through direct SDK integrations, so the Step Functions
interpreter must find them on ``moto.sagemaker.responses.SageMakerResponse`` (FACTS correction 7).
This module holds the operations; :data:`switchboard_local.moto_patches.SAGEMAKER` puts them on
moto and takes them off again (importing this module patches nothing).

Behaviour, after AWS (UpdateEndpoint, blue/green deployments with auto-rollback):

- ``UpdateEndpoint`` on an ``InService`` endpoint sets it ``Updating``. It settles on a later
  ``DescribeEndpoint`` (after :attr:`ExtControl.settle_after_describes` of them): when an alarm named
  in ``DeploymentConfig.AutoRollbackConfiguration.Alarms`` is in ``ALARM`` (set with CloudWatch
  ``set_alarm_state``: moto never evaluates alarms), the endpoint goes back to ``InService`` on the
  **old** ``EndpointConfigName`` (an alarm rollback is not ``RollingBack``); otherwise it is
  ``InService`` on the new config. Endpoints in :attr:`ExtControl.held` stay ``Updating`` (a
  deployment that never settles, for timeout paths); endpoints in :attr:`ExtControl.failing_updates`
  settle ``UpdateRollbackFailed`` (the new fleet failed and so did the way back).
- Inference components: create (``Creating``, settling like an update; ``Failed`` when their
  ``Container.ArtifactUrl`` is in :attr:`ExtControl.broken_artifacts`), describe, list, delete
  (deleting a base component deletes its adapters).
- ``UpdateModelPackage`` changes only what the request names, and keeps ``ModelLifeCycle``;
  ``DescribeModelPackage`` and ``ListModelPackages`` return it.
- ``InvokeEndpoint`` (sagemaker-runtime) answers a ``ModelError`` (HTTP 424, the container's
  status 500) for an endpoint or inference component named in
  :attr:`ExtControl.failing_invocations`: a model that deploys but cannot answer, for the smoke-test
  failure paths. On an endpoint with inference components, a component it does not have is a
  ``ValidationError`` (as in AWS) and a chat-completions body is answered in the OpenAI shape naming
  the component that answered (tenant adapters, issue 16). Otherwise moto answers as it does.

Every request to these operations is validated against botocore's service model first (the
interpreter's own clients skip client-side validation), so a malformed request fails here as it
would in AWS, with ``ValidationException``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

__all__ = [
    "CONTROL",
    "ExtControl",
    "create_inference_component",
    "delete_inference_component",
    "describe_inference_component",
    "list_inference_components",
    "update_endpoint",
    "update_model_package",
    "wrap_describe_endpoint",
    "wrap_describe_model_package",
    "wrap_invoke_endpoint",
    "wrap_list_model_packages",
]

_STATE_ATTR = "_switchboard_ext_state"


@dataclass
class ExtControl:
    """Knobs for tests and the local stack (module-global: the local moto server is in-process)."""

    settle_after_describes: int = 1
    """How many DescribeEndpoint / DescribeInferenceComponent calls an update or creation lasts."""
    held: set[str] = field(default_factory=set)
    """Endpoint or inference-component names that never settle (a held endpoint also holds the
    inference components created on it, whose names the workflow makes up)."""
    failing_updates: set[str] = field(default_factory=set)
    """Endpoint names whose updates settle ``UpdateRollbackFailed`` instead of ``InService``."""
    broken_artifacts: set[str] = field(default_factory=set)
    """Artifact URLs SageMaker cannot load: an inference component made from one settles ``Failed``."""
    update_requests: list[dict[str, Any]] = field(default_factory=list)
    """Every accepted UpdateEndpoint request, as sent (for assertions on the deployment config)."""
    failing_invocations: set[str] = field(default_factory=set)
    """Endpoint or inference-component names whose InvokeEndpoint answers a ModelError."""

    def reset(self) -> None:
        self.settle_after_describes = 1
        self.held.clear()
        self.failing_updates.clear()
        self.broken_artifacts.clear()
        self.update_requests.clear()
        self.failing_invocations.clear()


CONTROL = ExtControl()


@dataclass
class _PendingUpdate:
    new_config: str
    old_config: str
    alarms: list[str]
    describes_left: int


@dataclass
class _Component:
    name: str
    arn: str
    endpoint_name: str
    endpoint_arn: str
    variant_name: str | None
    specification: dict[str, Any]
    runtime_config: dict[str, Any] | None
    status: str
    describes_left: int
    created: datetime
    modified: datetime

    def describe(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "InferenceComponentName": self.name,
            "InferenceComponentArn": self.arn,
            "EndpointName": self.endpoint_name,
            "EndpointArn": self.endpoint_arn,
            "Specification": self.specification,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "InferenceComponentStatus": self.status,
        }
        if self.variant_name:
            result["VariantName"] = self.variant_name
        if self.runtime_config:
            copies = self.runtime_config.get("CopyCount", 1)
            result["RuntimeConfig"] = {"DesiredCopyCount": copies, "CurrentCopyCount": copies}
        return result

    def summary(self) -> dict[str, Any]:
        result = {
            "InferenceComponentName": self.name,
            "InferenceComponentArn": self.arn,
            "EndpointName": self.endpoint_name,
            "EndpointArn": self.endpoint_arn,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "InferenceComponentStatus": self.status,
        }
        if self.variant_name:
            result["VariantName"] = self.variant_name
        return result


@dataclass
class _State:
    updates: dict[str, _PendingUpdate] = field(default_factory=dict)
    components: dict[str, _Component] = field(default_factory=dict)
    life_cycles: dict[str, dict[str, Any]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# helpers


@lru_cache(maxsize=1)
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def _validated(response: Any, operation: str) -> dict[str, Any]:
    """The request body, checked against the operation's input shape (ValidationException if not)."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import validate_parameters
    from moto.sagemaker.exceptions import ValidationError

    raw = response.body
    text = raw.decode() if isinstance(raw, bytes) else (raw or "{}")
    params = json.loads(text or "{}")
    shape = _service_model().operation_model(operation).input_shape
    try:
        validate_parameters(params, shape)
    except ParamValidationError as exc:
        raise ValidationError(message=f"{operation}: {exc}") from exc
    if not isinstance(params, dict):
        raise ValidationError(message=f"{operation}: request body must be an object")
    problems = list(_enum_problems(params, shape, operation))
    if problems:
        raise ValidationError(message="; ".join(problems))
    return params


def _enum_problems(value: Any, shape: Any, path: str) -> Iterator[str]:
    """botocore's client-side validation skips enums; AWS does not (its message form, roughly)."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                yield from _enum_problems(value[name], member, f"{path}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _enum_problems(item, shape.member, f"{path}[{index}]")
    elif shape.type_name == "string" and shape.enum and value not in shape.enum:
        yield (
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
        )


def _backend(response: Any) -> Any:
    return response.sagemaker_backend


def _state(backend: Any) -> _State:
    state = getattr(backend, _STATE_ATTR, None)
    if state is None:
        state = _State()
        setattr(backend, _STATE_ATTR, state)
    return state


def _alarms_in_alarm(account: str, region: str, names: list[str]) -> list[str]:
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[account][region].alarms
    return [name for name in names if name in alarms and alarms[name].state_value == "ALARM"]


def _arn(kind: str, name: str, account: str, region: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"


def _settle_endpoint(response: Any, name: str) -> None:
    backend = _backend(response)
    state = _state(backend)
    pending = state.updates.get(name)
    endpoint = backend.endpoints.get(name)
    if pending is None or endpoint is None or name in CONTROL.held:
        return
    pending.describes_left -= 1
    if pending.describes_left > 0:
        return
    del state.updates[name]
    endpoint.last_modified_time = datetime.now(UTC)
    if name in CONTROL.failing_updates:
        endpoint.endpoint_status = "UpdateRollbackFailed"
        return
    firing = _alarms_in_alarm(response.current_account, response.region, pending.alarms)
    if not firing:
        config = backend.endpoint_configs[pending.new_config].response_object
        endpoint.endpoint_config_name = pending.new_config
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    # an alarm rollback: back InService on the old config, not RollingBack (which is for capacity)
    endpoint.endpoint_status = "InService"


def _settle_component(component: _Component) -> None:
    if component.status != "Creating" or CONTROL.held & {component.name, component.endpoint_name}:
        return
    component.describes_left -= 1
    if component.describes_left <= 0:
        artifact = (component.specification.get("Container") or {}).get("ArtifactUrl")
        component.status = "Failed" if artifact in CONTROL.broken_artifacts else "InService"
        component.modified = datetime.now(UTC)


# --------------------------------------------------------------------------------------------------
# the operations (bound as methods of SageMakerResponse)


def update_endpoint(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    params = _validated(self, "UpdateEndpoint")
    backend = _backend(self)
    name = params["EndpointName"]
    config_name = params["EndpointConfigName"]
    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        raise ValidationError(
            message=f'Could not find endpoint "{_arn("endpoint", name, self.current_account, self.region)}".'
        )
    if config_name not in backend.endpoint_configs:
        raise ValidationError(
            message=f"Could not find endpoint configuration "
            f'"{_arn("endpoint-config", config_name, self.current_account, self.region)}".'
        )
    if endpoint.endpoint_status != "InService":
        raise ValidationError(
            message=f'Cannot update in-progress endpoint "{endpoint.arn}" ({endpoint.endpoint_status}).'
        )
    deployment = params.get("DeploymentConfig") or {}
    if deployment.get("BlueGreenUpdatePolicy") or deployment.get("RollingUpdatePolicy"):
        old_variants = {v["VariantName"] for v in endpoint.production_variants}
        new_variants = {
            v["VariantName"]
            for v in backend.endpoint_configs[config_name].response_object["ProductionVariants"]
        }
        if old_variants != new_variants:
            raise ValidationError(
                message="A deployment-guarded update needs the new endpoint config to keep the variant names "
                f"of the current one ({sorted(old_variants)}), got {sorted(new_variants)}."
            )
    alarms = [a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    CONTROL.update_requests.append(params)
    _state(backend).updates[name] = _PendingUpdate(
        new_config=config_name,
        old_config=endpoint.endpoint_config_name,
        alarms=alarms,
        describes_left=max(1, CONTROL.settle_after_describes),
    )
    endpoint.endpoint_status = "Updating"
    endpoint.last_modified_time = datetime.now(UTC)
    return ActionResult({"EndpointArn": endpoint.arn})


def wrap_describe_endpoint(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def describe_endpoint(self: Any) -> Any:
        name = self._get_param("EndpointName")
        if isinstance(name, str):
            _settle_endpoint(self, name)
        return original(self)

    return describe_endpoint


def create_inference_component(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    params = _validated(self, "CreateInferenceComponent")
    backend = _backend(self)
    state = _state(backend)
    name = params["InferenceComponentName"]
    endpoint = backend.endpoints.get(params["EndpointName"])
    if endpoint is None:
        raise ValidationError(message=f'Could not find endpoint "{params["EndpointName"]}".')
    if name in state.components:
        raise ValidationError(message=f'Cannot create already existing inference component "{name}".')
    spec = params["Specification"]
    base = spec.get("BaseInferenceComponentName")
    if base is not None:
        if base not in state.components:
            raise ValidationError(message=f'Could not find base inference component "{base}".')
        if "ComputeResourceRequirements" in spec:
            raise ValidationError(
                message="An adapter inference component takes no ComputeResourceRequirements: "
                "it runs on its base component's compute."
            )
        if "Container" not in spec or "ArtifactUrl" not in spec["Container"]:
            raise ValidationError(message="An adapter inference component needs Container.ArtifactUrl.")
    elif "ComputeResourceRequirements" not in spec:
        raise ValidationError(message="A base inference component needs ComputeResourceRequirements.")
    now = datetime.now(UTC)
    arn = _arn("inference-component", name, self.current_account, self.region)
    state.components[name] = _Component(
        name=name,
        arn=arn,
        endpoint_name=endpoint.endpoint_name,
        endpoint_arn=endpoint.arn,
        variant_name=params.get("VariantName"),
        specification=spec,
        runtime_config=params.get("RuntimeConfig"),
        status="Creating",
        describes_left=max(1, CONTROL.settle_after_describes),
        created=now,
        modified=now,
    )
    return ActionResult({"InferenceComponentArn": arn})


def _find_component(self: Any, operation: str) -> _Component:
    from moto.sagemaker.exceptions import ValidationError

    params = _validated(self, operation)
    name = params["InferenceComponentName"]
    component = _state(_backend(self)).components.get(name)
    if component is None:
        arn = _arn("inference-component", name, self.current_account, self.region)
        raise ValidationError(message=f'Could not find inference component "{arn}".')
    return component


def describe_inference_component(self: Any) -> Any:
    from moto.core.responses import ActionResult

    component = _find_component(self, "DescribeInferenceComponent")
    _settle_component(component)
    return ActionResult(component.describe())


def delete_inference_component(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    component = _find_component(self, "DeleteInferenceComponent")
    components = _state(_backend(self)).components
    del components[component.name]
    # Deleting a base component deletes its adapters.
    for name in [
        n
        for n, c in components.items()
        if c.specification.get("BaseInferenceComponentName") == component.name
    ]:
        del components[name]
    return EmptyResult()


def list_inference_components(self: Any) -> Any:
    from moto.core.responses import ActionResult

    params = _validated(self, "ListInferenceComponents")
    found = sorted(_state(_backend(self)).components.values(), key=lambda c: c.created)
    if params.get("EndpointNameEquals"):
        found = [c for c in found if c.endpoint_name == params["EndpointNameEquals"]]
    if params.get("NameContains"):
        found = [c for c in found if params["NameContains"] in c.name]
    if params.get("StatusEquals"):
        found = [c for c in found if c.status == params["StatusEquals"]]
    if params.get("VariantNameEquals"):
        found = [c for c in found if c.variant_name == params["VariantNameEquals"]]
    if params.get("SortOrder", "Descending") == "Descending":
        found.reverse()
    return ActionResult({"InferenceComponents": [c.summary() for c in found]})


def update_model_package(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    params = _validated(self, "UpdateModelPackage")
    backend = _backend(self)
    arn = params["ModelPackageArn"]
    package = backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))
    if package is None:
        raise ValidationError(message=f"Model package {arn} not found")
    if "ModelApprovalStatus" in params:
        package.set_model_approval_status(params["ModelApprovalStatus"])
    if "ApprovalDescription" in params:
        package.approval_description = params["ApprovalDescription"]
    if "CustomerMetadataProperties" in params:
        package.customer_metadata_properties = {
            **(package.customer_metadata_properties or {}),
            **params["CustomerMetadataProperties"],
        }
    if params.get("CustomerMetadataPropertiesToRemove"):
        package.remove_customer_metadata_property(params["CustomerMetadataPropertiesToRemove"])
    if params.get("AdditionalInferenceSpecificationsToAdd"):
        package.add_additional_inference_specifications(params["AdditionalInferenceSpecificationsToAdd"])
    if "ModelLifeCycle" in params:
        _state(backend).life_cycles[package.arn] = params["ModelLifeCycle"]
    package.modifications_done()
    return ActionResult({"ModelPackageArn": package.arn})


def wrap_describe_model_package(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def describe_model_package(self: Any) -> Any:
        from moto.core.responses import ActionResult

        result = original(self)
        backend = _backend(self)
        body = (
            dict(result.result)
            if isinstance(result, ActionResult) and isinstance(result.result, dict)
            else None
        )
        if body is None:
            return result
        life_cycle = _state(backend).life_cycles.get(str(body.get("ModelPackageArn")))
        if life_cycle is not None:
            body["ModelLifeCycle"] = life_cycle
        package = backend.model_packages.get(str(body.get("ModelPackageArn")))
        if package is not None and package.customer_metadata_properties:
            body["CustomerMetadataProperties"] = package.customer_metadata_properties
        return ActionResult(body)

    return describe_model_package


def wrap_list_model_packages(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """AWS's ModelPackageSummary carries ModelLifeCycle; moto's does not."""

    def list_model_packages(self: Any) -> Any:
        from moto.core.responses import ActionResult

        result = original(self)
        if not isinstance(result, ActionResult) or not isinstance(result.result, dict):
            return result
        life_cycles = _state(_backend(self)).life_cycles
        summaries = []
        for summary in result.result.get("ModelPackageSummaryList", []):
            summary = dict(summary)
            life_cycle = life_cycles.get(str(summary.get("ModelPackageArn") or summary.get("Arn")))
            if life_cycle is not None:
                summary["ModelLifeCycle"] = life_cycle
            summaries.append(summary)
        return ActionResult({**result.result, "ModelPackageSummaryList": summaries})

    return list_model_packages


# --------------------------------------------------------------------------------------------------
# sagemaker-runtime


def _model_error(message: str) -> Exception:
    """InvokeEndpoint's ModelError: HTTP 424, with the container's own status in the body."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("ModelError", message)
    error.code = 424
    error.description = json.dumps({"__type": "ModelError", "message": message, "OriginalStatusCode": 500})
    return error


def wrap_invoke_endpoint(original: Callable[..., Any]) -> Callable[..., Any]:
    def invoke_endpoint(self: Any) -> Any:
        # /endpoints/{EndpointName}/invocations (moto's own params do not carry the name)
        endpoint = unquote(self.path.split("?")[0].split("/")[2])
        component = {k.lower(): v for k, v in self.headers.items()}.get(
            "x-amzn-sagemaker-inference-component"
        )
        if CONTROL.failing_invocations & {endpoint, component}:
            target = f"{endpoint}/{component}" if component else endpoint
            raise _model_error(
                f'Received server error (500) from primary with message "model failed" ({target}).'
            )
        if component:
            answered = _component_answer(self, endpoint, component)
            if answered is not None:
                return answered
        return original(self)

    return invoke_endpoint


def _component_answer(self: Any, endpoint: str, component: str) -> Any:
    """An endpoint with inference components (this extension's) answers per component: a component
    it does not have is refused as AWS refuses it (``ValidationError``, "Could not find inference
    component"), and a chat-completions body is answered ``[<component>] <last user text>`` in the
    OpenAI shape, so tests can tell a tenant's adapter from the base component (issue 16). Other
    bodies, and endpoints without components, get moto's own answer (None here)."""
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import sagemaker_backends

    components = _state(sagemaker_backends[self.current_account][self.region]).components
    on_endpoint = {name for name, c in components.items() if c.endpoint_name == endpoint}
    if not on_endpoint:
        return None
    if component not in on_endpoint:
        arn = _arn("inference-component", component, self.current_account, self.region)
        # sagemaker-runtime's own error code (its service model's ValidationError), HTTP 400
        raise JsonRESTError("ValidationError", f'Could not find inference component "{arn}".')
    try:
        request = json.loads(self.body or b"{}")
    except ValueError:
        return None
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list):
        return None
    last_user = next(
        (m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), ""
    )
    text = f"[{component}] {last_user if isinstance(last_user, str) else ''}"
    completion = {
        "id": f"chatcmpl-{component}",
        "object": "chat.completion",
        "model": component,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": len(text.split()),
            "total_tokens": 1 + len(text.split()),
        },
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(completion)
