"""The synthesized template's roles and identity policies, resolved to concrete ARNs.

CloudFormation resolves ``Ref``/``Fn::GetAtt``/``Fn::Join``/``Fn::Sub`` at deploy time; here they are
resolved against the names the tests use. A *binding* maps a logical id to the physical name the
emulated resource has (e.g. ``DataOptionsTableE03F7936`` → ``switchboard-local-options``). It is
learnt the way the deployed code learns it: from the function's environment variables that the
template sets with a ``Ref``/``GetAtt`` of that resource (``OPTIONS_TABLE``, ``STATE_MACHINE_ARN``,
...), and from a state machine's ``DefinitionSubstitutions`` matched against the parameters its
tasks ran with. A resource with a literal name in the template (``AlarmName``, the gateway's
``FunctionName``) keeps it; anything else unbound gets a placeholder that no concrete ARN matches
(so a call on an unbound resource is denied unless the policy has a wildcard that covers it).

The account is moto's default (``123456789012``): every ARN the emulated resources carry has it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from iam.policy import Statement, parse_document
from switchboard.contract.handlers import python_handler

ACCOUNT = "123456789012"
CUSTOM_RESOURCE_PROPERTY = "ResourceProperties."
"""Prefix of the recorded ``ResourceProperties`` of a custom-resource event (see :mod:`iam.recorder`)."""
PARTITION = "aws"

_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::Events::Rule": "Name",
}
_ARN_FORMAT = {
    "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{n}",
    "AWS::S3::Bucket": "arn:{p}:s3:::{n}",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
    "AWS::StepFunctions::StateMachine": "arn:{p}:states:{r}:{a}:stateMachine:{n}",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{n}",
    "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{n}",
    "AWS::CloudWatch::Alarm": "arn:{p}:cloudwatch:{r}:{a}:alarm:{n}",
    "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{n}",
    "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{n}:*",
    "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/{n}",
    "AWS::SageMaker::ModelPackageGroup": "arn:{p}:sagemaker:{r}:{a}:model-package-group/{n}",
    "AWS::Events::Rule": "arn:{p}:events:{r}:{a}:rule/{n}",
}
_REF_IS_ARN = {
    "AWS::StepFunctions::StateMachine",
    "AWS::SNS::Topic",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::IAM::ManagedPolicy",
}
_ARN_ATTRIBUTES = {"Arn", "TopicArn", "ModelPackageGroupArn", "StateMachineArn"}
_PSEUDO_WITHOUT_REGION = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
}


class UnresolvableError(ValueError):
    """An intrinsic or attribute this resolver does not know: extend it rather than guess."""


@dataclass(frozen=True)
class RoleRef:
    """The role a principal (a function or a state machine) runs with."""

    principal: str
    """What makes the calls: a function's handler (``handlers.invoke.handler``) or an ASL file name."""
    principal_id: str
    """Its logical id."""
    role_id: str


class SynthesizedStack:
    """One synthesized stack template, for IAM questions."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        region: str,
        account: str = ACCOUNT,
        stack_name: str = "Switchboard",
    ) -> None:
        self.template = template
        self.resources: Mapping[str, Mapping[str, Any]] = template["Resources"]
        self.region = region
        self.account = account
        self.stack_name = stack_name

    # -- principals ---------------------------------------------------------------------------

    def function_ids_by_handler(self, handler: str) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self._of_type("AWS::Lambda::Function")
            # The gateway's Handler is Lambda Web Adapter's start script, which serves handlers.gateway.
            if python_handler(str(resource.get("Properties", {}).get("Handler"))) == handler
        ]

    def function_role(self, handler: str) -> RoleRef:
        found = self.function_ids_by_handler(handler)
        if len(found) != 1:
            raise LookupError(f"{len(found)} functions in the template run {handler!r}; expected exactly 1")
        function_id = found[0]
        return RoleRef(handler, function_id, self._role_of(function_id, "Role"))

    def state_machine_role(self, definition: Mapping[str, Any], name: str) -> RoleRef:
        """The state machine whose DefinitionString is `definition` (the parsed ASL file)."""
        for logical_id, resource in self._of_type("AWS::StepFunctions::StateMachine"):
            raw = resource.get("Properties", {}).get("DefinitionString")
            if isinstance(raw, str) and json.loads(raw) == definition:
                return RoleRef(name, logical_id, self._role_of(logical_id, "RoleArn"))
        raise LookupError(f"no state machine in the template has the definition of {name}")

    def substitutions(self, state_machine_id: str) -> Mapping[str, Any]:
        props = self.resources[state_machine_id].get("Properties", {})
        return dict(props.get("DefinitionSubstitutions") or {})

    def environment(self, function_id: str) -> Mapping[str, Any]:
        props = self.resources[function_id].get("Properties", {})
        return dict((props.get("Environment") or {}).get("Variables") or {})

    def _role_of(self, logical_id: str, property_name: str) -> str:
        value = self.resources[logical_id].get("Properties", {}).get(property_name)
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
        raise UnresolvableError(f"{logical_id}.{property_name} is not a GetAtt of a role: {value!r}")

    def _of_type(self, type_name: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == type_name:
                yield logical_id, resource

    # -- policies -----------------------------------------------------------------------------

    def role_statements(self, role_id: str, names: Mapping[str, str]) -> list[Statement]:
        """Every identity-policy statement attached to the role, resolved under `names`."""
        role = self.resources[role_id]
        if role.get("Type") != "AWS::IAM::Role":
            raise LookupError(f"{role_id} is not an IAM role")
        props = role.get("Properties", {})
        if props.get("ManagedPolicyArns") or props.get("PermissionsBoundary"):
            raise UnresolvableError(
                f"{role_id} has managed policies or a permissions boundary: this checker evaluates "
                "inline and stack-defined policies only; extend it before relying on it"
            )
        documents: list[Any] = [p["PolicyDocument"] for p in props.get("Policies") or []]
        for _, policy in self._of_type("AWS::IAM::Policy"):
            policy_props = policy.get("Properties", {})
            if {"Ref": role_id} in (policy_props.get("Roles") or []):
                documents.append(policy_props["PolicyDocument"])
        # a stack-defined managed policy attached through its `Roles` (CDK moves statements there
        # when a role's inline policy outgrows IAM's size limit): an identity policy like the others
        for _, policy in self._of_type("AWS::IAM::ManagedPolicy"):
            policy_props = policy.get("Properties", {})
            if {"Ref": role_id} in (policy_props.get("Roles") or []):
                documents.append(policy_props["PolicyDocument"])
        statements: list[Statement] = []
        for document in documents:
            statements.extend(parse_document(self.resolve(document, names)))
        return statements

    # -- bindings -----------------------------------------------------------------------------

    def bind(self, intrinsic: Any, value: str, names: dict[str, str]) -> None:
        """Learn a logical id's physical name from a value the template computes with `intrinsic`."""
        if not isinstance(intrinsic, dict) or len(intrinsic) != 1 or not value:
            return
        ((fn, arg),) = intrinsic.items()
        if fn == "Ref" and isinstance(arg, str) and arg in self.resources:
            type_name = self.resources[arg]["Type"]
            names[arg] = _name_from_arn(type_name, value) if type_name in _REF_IS_ARN else value
        elif fn == "Fn::GetAtt" and arg[0] in self.resources:
            type_name = self.resources[arg[0]]["Type"]
            if arg[1] in _ARN_ATTRIBUTES:
                names[arg[0]] = _name_from_arn(type_name, value)
            elif arg[1] == "Name":
                names[arg[0]] = value

    def bind_environment(self, function_id: str, environ: Mapping[str, str]) -> dict[str, str]:
        """Bindings from the function's environment and, for a custom-resource handler, from the
        ``ResourceProperties`` of the event (recorded as ``ResourceProperties.<Name>``)."""
        names: dict[str, str] = {}
        for variable, intrinsic in self.environment(function_id).items():
            if variable in environ:
                self.bind(intrinsic, environ[variable], names)
        for custom_id in self.custom_resources_served_by(function_id):
            for prop, intrinsic in self.resources[custom_id].get("Properties", {}).items():
                if prop == "ServiceToken":
                    continue
                value = environ.get(f"{CUSTOM_RESOURCE_PROPERTY}{prop}")
                if value is not None:
                    self.bind(intrinsic, value, names)
        return names

    def custom_resources_served_by(self, function_id: str) -> list[str]:
        """Custom resources whose ServiceToken is the function, or a provider framework function
        whose environment names it (CDK's ``custom_resources.Provider``)."""
        served = []
        for logical_id, resource in self.resources.items():
            if not (
                resource["Type"].startswith("Custom::")
                or resource["Type"] == "AWS::CloudFormation::CustomResource"
            ):
                continue
            token = resource.get("Properties", {}).get("ServiceToken")
            target = token.get("Fn::GetAtt", [None])[0] if isinstance(token, dict) else None
            if target == function_id or (
                target in self.resources and function_id in json.dumps(self.environment(target))
            ):
                served.append(logical_id)
        return served

    # -- resolution ---------------------------------------------------------------------------

    def physical_name(self, logical_id: str, names: Mapping[str, str]) -> str:
        if logical_id in names:
            return names[logical_id]
        resource = self.resources.get(logical_id)
        if resource is None:
            raise UnresolvableError(f"no resource {logical_id}")
        prop = _NAME_PROPERTY.get(resource["Type"])
        literal = resource.get("Properties", {}).get(prop) if prop else None
        if isinstance(literal, str):
            return literal
        return f"unbound-{logical_id}"

    def arn(self, logical_id: str, names: Mapping[str, str]) -> str:
        type_name = self.resources[logical_id]["Type"]
        template = _ARN_FORMAT.get(type_name)
        if template is None:
            raise UnresolvableError(f"no ARN format for {type_name} ({logical_id})")
        name = self.physical_name(logical_id, names)
        if type_name == "AWS::SageMaker::ModelPackageGroup":
            name = name.lower()
        return template.format(p=PARTITION, r=self.region, a=self.account, n=name)

    def ref(self, logical_id: str, names: Mapping[str, str]) -> str:
        pseudo = self._pseudo(logical_id)
        if pseudo is not None:
            return pseudo
        if logical_id not in self.resources:
            raise UnresolvableError(f"Ref to unknown {logical_id}")
        if self.resources[logical_id]["Type"] in _REF_IS_ARN:
            return self.arn(logical_id, names)
        return self.physical_name(logical_id, names)

    def get_att(self, logical_id: str, attribute: str, names: Mapping[str, str]) -> str:
        if attribute in _ARN_ATTRIBUTES:
            return self.arn(logical_id, names)
        if attribute == "Name":
            return self.physical_name(logical_id, names)
        raise UnresolvableError(f"GetAtt {logical_id}.{attribute} is not modelled")

    def _pseudo(self, name: str) -> str | None:
        if name == "AWS::Region":
            return self.region
        if name == "AWS::StackName":
            return self.stack_name
        return _PSEUDO_WITHOUT_REGION.get(name)

    def resolve(self, value: Any, names: Mapping[str, str]) -> Any:
        """`value` with every intrinsic resolved (``AWS::NoValue`` entries dropped)."""
        if isinstance(value, list):
            resolved = [self.resolve(v, names) for v in value]
            return [v for v in resolved if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg, names)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(logical_id, attribute, names)
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(p) for p in self.resolve(parts, names))
            if key == "Fn::Sub":
                return self._sub(arg, names)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items, names)[int(self.resolve(index, names))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text, names)).split(separator)
            if key.startswith("Fn::") or key == "Condition":
                raise UnresolvableError(f"{key} is not modelled: {value!r}")
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v, names)
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _sub(self, arg: Any, names: Mapping[str, str]) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(self.resolve(variables[token], names))
            if "." in token and not token.startswith("AWS::"):
                logical_id, attribute = token.split(".", 1)
                return self.get_att(logical_id, attribute, names)
            return self.ref(token, names)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE: Any = _NoValue()


def _name_from_arn(type_name: str, arn: str) -> str:
    """The physical name inside an ARN the template would compute for a resource of `type_name`."""
    parts = arn.split(":", 5)
    if not arn.startswith("arn:") or len(parts) != 6:
        return arn
    resource = parts[5]
    for prefix in (
        "table/",
        "function:",
        "stateMachine:",
        "role/",
        "alarm:",
        "model-package-group/",
        "rule/",
    ):
        if resource.startswith(prefix):
            return (
                resource[len(prefix) :].split(":", 1)[0] if prefix == "function:" else resource[len(prefix) :]
            )
    if type_name == "AWS::Logs::LogGroup":
        return resource.removeprefix("log-group:").removesuffix(":*")
    return resource
