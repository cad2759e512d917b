"""The after-response switch as synthesized: the gateway (and only it) runs its whole requests'
after-answer writes in the internal extension (``switchboard.after_response``)."""

from __future__ import annotations

from typing import Any

from template_queries import env_of, function_by_handler, of_type

from infra import constants
from switchboard.after_response import mode_from_env
from switchboard.contract import env


def test_the_gateway_defers_its_after_answer_writes_to_the_extension(template_json: dict[str, Any]) -> None:
    _, gateway = function_by_handler(template_json, constants.HANDLER_GATEWAY)
    variables = env_of(gateway)
    assert variables[env.AFTER_RESPONSE] == env.AFTER_RESPONSE_EXTENSION
    assert mode_from_env(variables) == "extension"
    others = [
        logical_id
        for logical_id, function in of_type(template_json, "AWS::Lambda::Function").items()
        if function is not gateway
        and env.AFTER_RESPONSE in (function["Properties"].get("Environment") or {}).get("Variables", {})
    ]
    assert others == []
