"""The usage table (issue 15) as synthesized: durable, expiring, and writable by exactly two functions.

Given the template `make test` synthesizes, the usage table is on-demand with point-in-time
recovery, the AWS-managed key and TTL on ``expires_at``; the gateway and the invoke step (the two
functions on the request path, where metering and limits run) get its name through ``USAGE_TABLE``
and may ``UpdateItem``/``GetItem``/``Query`` it and nothing more; no other role touches it.
"""

from __future__ import annotations

from typing import Any

from template_queries import actions_on, arn_of, env_of, function_by_handler, of_type, role_statements

from infra import constants
from switchboard.contract import tables


def usage_table(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource)
        for logical_id, resource in of_type(template_json, "AWS::DynamoDB::Table").items()
        if "UsageTable" in logical_id
    ]
    return found


def test_the_usage_table_is_durable_on_demand_and_expires_items(template_json: dict[str, Any]) -> None:
    _, table = usage_table(template_json)
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": tables.TTL_ATTRIBUTE, "Enabled": True}
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_gateway_and_invoke_get_the_usage_table_name_and_least_privilege(
    template_json: dict[str, Any],
) -> None:
    logical_id, _ = usage_table(template_json)
    allowed = {
        constants.HANDLER_GATEWAY: constants.GATEWAY_USAGE_TABLE_ACTIONS,
        constants.HANDLER_INVOKE: constants.USAGE_TABLE_ACTIONS,
    }
    for handler, actions in allowed.items():
        _, function = function_by_handler(template_json, handler)
        assert env_of(function)[constants.ENV_USAGE_TABLE] == {"Ref": logical_id}, handler
        statements = role_statements(template_json, function["Properties"]["Role"]["Fn::GetAtt"][0])
        assert actions_on(statements, arn_of(logical_id)) == set(actions), handler


def test_no_other_role_may_touch_the_usage_table(template_json: dict[str, Any]) -> None:
    logical_id, _ = usage_table(template_json)
    allowed_roles = {
        function_by_handler(template_json, handler)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
        for handler in (constants.HANDLER_GATEWAY, constants.HANDLER_INVOKE)
    }
    touching = set()
    for role_id in of_type(template_json, "AWS::IAM::Role"):
        statements = role_statements(template_json, role_id)
        if actions_on(statements, arn_of(logical_id)) or any(
            isinstance(r, dict) and "Fn::Join" in r and arn_of(logical_id) in r["Fn::Join"][1]
            for s in statements
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        ):
            touching.add(role_id)
    assert touching == allowed_roles


def test_the_stack_outputs_the_usage_table_for_the_cli(template_json: dict[str, Any]) -> None:
    from switchboard_local.cli.target import OUTPUT_KEYS

    logical_id, _ = usage_table(template_json)
    assert OUTPUT_KEYS["usage_table"] == constants.OUTPUT_USAGE_TABLE
    assert template_json["Outputs"][constants.OUTPUT_USAGE_TABLE]["Value"] == {"Ref": logical_id}
