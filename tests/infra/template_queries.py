"""Queries over a synthesized template shared by the infra test modules."""

from __future__ import annotations

from typing import Any

from switchboard.contract.handlers import python_handler

Resources = dict[str, dict[str, Any]]


def of_type(template_json: dict[str, Any], cfn_type: str) -> Resources:
    """Resources of a type, leaving out the model lifecycle's (test_model_deployment_infra.py has those)."""
    return {
        k: v
        for k, v in template_json["Resources"].items()
        if v["Type"] == cfn_type and not k.startswith("ModelDeployment")
    }


def only(template_json: dict[str, Any], cfn_type: str) -> tuple[str, dict[str, Any]]:
    found = of_type(template_json, cfn_type)
    assert len(found) == 1, f"expected one {cfn_type}, found {sorted(found)}"
    return next(iter(found.items()))


def table_with_partition_key(template_json: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
    found = {
        k: v
        for k, v in of_type(template_json, "AWS::DynamoDB::Table").items()
        if {"AttributeName": key, "KeyType": "HASH"} in v["Properties"]["KeySchema"]
    }
    assert len(found) == 1, f"expected one table keyed on {key}, found {sorted(found)}"
    return next(iter(found.items()))


def table_by_construct(template_json: dict[str, Any], construct_id: str) -> tuple[str, dict[str, Any]]:
    """The one table whose logical id holds ``construct_id`` (several tables share a key name: ``pk``)."""
    found = {k: v for k, v in of_type(template_json, "AWS::DynamoDB::Table").items() if construct_id in k}
    assert len(found) == 1, f"expected one table {construct_id}, found {sorted(found)}"
    return next(iter(found.items()))


def function_by_handler(template_json: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    found = {
        k: v
        for k, v in of_type(template_json, "AWS::Lambda::Function").items()
        if python_handler(v["Properties"]["Handler"]) == handler
    }
    assert len(found) == 1, f"expected one function with handler {handler}, found {sorted(found)}"
    return next(iter(found.items()))


def role_statements(template_json: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in of_type(template_json, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def function_statements(template_json: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    return role_statements(template_json, function["Properties"]["Role"]["Fn::GetAtt"][0])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def arn_of(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def actions_on(statements: list[dict[str, Any]], resource: Any) -> set[str]:
    """Every action the statements allow on exactly this resource (as it appears in the template)."""
    return {
        action
        for statement in statements
        if statement["Effect"] == "Allow" and resource in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
    }


def env_of(function: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def role_of(function: dict[str, Any]) -> str:
    role_ref = function["Properties"]["Role"]["Fn::GetAtt"]
    assert role_ref[1] == "Arn"
    return str(role_ref[0])


def resources_of_type(template_json: dict[str, Any], cfn_type: str) -> list[dict[str, Any]]:
    """Every resource of a type, the model lifecycle's included (unlike :func:`of_type`)."""
    return [r for r in template_json["Resources"].values() if r["Type"] == cfn_type]


def statements_by_sid(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The IAM policy statements that carry a ``Sid``, by it."""
    return {
        statement["Sid"]: statement
        for policy in resources_of_type(template_json, "AWS::IAM::Policy")
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "Sid" in statement
    }
