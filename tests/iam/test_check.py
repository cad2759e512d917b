"""The whole check on the synthesized template: roles found, Tasks allowed, item 2 caught."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import pkgutil
from collections.abc import Mapping
from typing import Any

import pytest

from iam.check import LOCAL_PREFIX, IamCheck, KnownDenial, synthesize
from iam.recorder import Attribution, ExecutedTask, RecordedCall
from iam.template import SynthesizedStack

PAYLOADS = f"{LOCAL_PREFIX}-payloads"
INVOKE = "handlers.invoke.handler"


@pytest.fixture(scope="module")
def stack() -> SynthesizedStack:
    return synthesize()


def call(handler: str, service: str, operation: str, params: Mapping[str, Any], **env: str) -> RecordedCall:
    return RecordedCall(
        Attribution(handler, tuple(sorted(env.items()))), service, operation, json.dumps(params), "us-east-1"
    )


def without_action(template: Mapping[str, Any], role_id: str, action: str) -> dict[str, Any]:
    """The template with `action` taken out of every statement attached to `role_id`."""
    changed = copy.deepcopy(dict(template))
    for resource in changed["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in props.get("Roles", []):
            for statement in props["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                statement["Action"] = [a for a in actions if a != action] or ["none:None"]
    return changed


def test_every_handler_runs_as_exactly_one_function_with_its_own_role(stack: SynthesizedStack) -> None:
    import handlers

    paths = [
        f"handlers.{m.name}.handler"
        for m in pkgutil.iter_modules(handlers.__path__)
        if hasattr(importlib.import_module(f"handlers.{m.name}"), "handler")
    ]
    assert len(paths) >= 8
    roles = {path: stack.function_role(path).role_id for path in paths}
    assert len(set(roles.values())) == len(paths), roles


def test_the_deployed_gateway_runs_the_workflow_synchronously(stack: SynthesizedStack) -> None:
    """Why the check may read the poll-mode StartExecution of in-process tests as StartSyncExecution."""
    gateway = stack.function_role("handlers.gateway.handler").principal_id
    assert "WORKFLOW_MODE" not in stack.environment(gateway)


def test_the_template_names_resources_as_the_emulation_does() -> None:
    from switchboard_local.emulation import provision

    assert inspect.signature(provision).parameters["prefix"].default == LOCAL_PREFIX


def test_every_task_of_both_state_machines_is_allowed(stack: SynthesizedStack) -> None:
    check = IamCheck(stack)
    assert [f.line() for f in check.check_static_tasks()] == []
    assert check.checked_requests >= 30


def test_a_task_without_its_grant_is_found(stack: SynthesizedStack) -> None:
    workflow = next(r for r in stack.resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")[
        "Properties"
    ]["RoleArn"]["Fn::GetAtt"][0]
    check = IamCheck(
        SynthesizedStack(without_action(stack.template, workflow, "dynamodb:PutItem"), region="us-east-1")
    )
    findings = [f for f in check.check_static_tasks() if f.action == "dynamodb:PutItem"]
    assert findings, "a state machine role without dynamodb:PutItem must fail its putItem Tasks"


def test_item_2_the_invoke_step_writing_a_large_answer_without_put_object_is_denied(
    stack: SynthesizedStack,
) -> None:
    """Issue 10 item 2: `payloads.wrap` → s3:PutObject from the invoke step's role."""
    role = stack.function_role(INVOKE).role_id
    check = IamCheck(
        SynthesizedStack(without_action(stack.template, role, "s3:PutObject"), region="us-east-1")
    )
    recorded = call(
        INVOKE,
        "s3",
        "PutObject",
        {"Bucket": PAYLOADS, "Key": "results/req-1-mock-echo.json"},
        PAYLOAD_BUCKET=PAYLOADS,
    )
    findings = check.check_calls([recorded])
    assert [(f.principal, f.role, f.action, f.resource, f.reason) for f in findings] == [
        (
            INVOKE,
            role,
            "s3:PutObject",
            f"arn:aws:s3:::{PAYLOADS}/results/req-1-mock-echo.json",
            "no statement allows it (implicit deny); the role has no s3:PutObject at all",
        )
    ]


def test_the_invoke_step_may_write_claim_check_objects(stack: SynthesizedStack) -> None:
    recorded = call(
        INVOKE, "s3", "PutObject", {"Bucket": PAYLOADS, "Key": "results/x.json"}, PAYLOAD_BUCKET=PAYLOADS
    )
    assert [f.line() for f in IamCheck(stack).check_calls([recorded])] == []


def test_grants_are_scoped_to_the_stacks_own_resources(stack: SynthesizedStack) -> None:
    env = {"PAYLOAD_BUCKET": PAYLOADS, "OPTIONS_TABLE": f"{LOCAL_PREFIX}-options"}
    calls = [
        call("handlers.gateway.handler", "s3", "PutObject", {"Bucket": "someone-elses", "Key": "k"}, **env),
        call("handlers.gateway.handler", "dynamodb", "GetItem", {"TableName": "other-options"}, **env),
        call(
            "handlers.gateway.handler", "dynamodb", "PutItem", {"TableName": f"{LOCAL_PREFIX}-options"}, **env
        ),
        call(
            "handlers.gateway.handler", "dynamodb", "GetItem", {"TableName": f"{LOCAL_PREFIX}-options"}, **env
        ),
    ]
    findings = IamCheck(stack).check_calls(calls)
    s3 = next(f for f in findings if f.action == "s3:PutObject")
    assert s3.reason.endswith(f"the role allows s3:PutObject only on arn:aws:s3:::{PAYLOADS}/*")
    assert sorted((f.action, f.resource.rsplit(":", 1)[-1]) for f in findings) == [
        ("dynamodb:GetItem", "table/other-options"),
        ("dynamodb:PutItem", f"table/{LOCAL_PREFIX}-options"),
        ("s3:PutObject", "someone-elses/k"),
    ]


def test_poll_mode_is_judged_as_the_deployed_synchronous_call(stack: SynthesizedStack) -> None:
    machine = f"arn:aws:states:us-east-1:123456789012:stateMachine:{LOCAL_PREFIX}-request"
    env = {"STATE_MACHINE_ARN": machine, "WORKFLOW_MODE": "poll"}
    calls = [
        call(
            "handlers.gateway.handler", "stepfunctions", "StartExecution", {"stateMachineArn": machine}, **env
        ),
        call(
            "handlers.gateway.handler",
            "stepfunctions",
            "DescribeExecution",
            {"executionArn": machine + ":x"},
            **env,
        ),
    ]
    check = IamCheck(stack)
    assert check.check_calls(calls) == []
    assert check.checked_requests == 1  # StartSyncExecution only
    other = call(
        "handlers.gateway.handler",
        "stepfunctions",
        "StartExecution",
        {"stateMachineArn": machine + "2"},
        **env,
    )
    assert [f.action for f in IamCheck(stack).check_calls([other])] == ["states:StartSyncExecution"]


def test_unknown_handlers_and_calls_without_a_row_are_findings(stack: SynthesizedStack) -> None:
    findings = IamCheck(stack).check_calls(
        [
            call("handlers.nothing.handler", "s3", "GetObject", {"Bucket": "b", "Key": "k"}),
            call(INVOKE, "s3", "ListObjectsV2", {"Bucket": "b"}),
        ]
    )
    assert len(findings) == 2
    assert "0 functions in the template run" in findings[0].reason
    assert "no authorization row for s3 ListObjectsV2" in findings[1].reason


def test_executed_tasks_are_judged_with_the_names_they_ran_with(stack: SynthesizedStack) -> None:
    def check_circuit(table: str) -> ExecutedTask:
        params = {"TableName": table, "ProjectionExpression": "#state, open_until"}
        return ExecutedTask(
            "CheckCircuit",
            "arn:aws:states:::dynamodb:getItem",
            json.dumps(params),
            "us-east-1",
            "123456789012",
        )

    # the circuit table bound from the substitution it ran with: allowed
    assert IamCheck(stack).check_executed_tasks([check_circuit(f"{LOCAL_PREFIX}-circuits")]) == []

    # run-time names (JSONPath parameters) are judged as they were: our family's endpoint, not another
    def describe(endpoint: str) -> ExecutedTask:
        params = json.dumps({"EndpointName": endpoint})
        resource = "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint"
        return ExecutedTask("DescribeEndpoint", resource, params, "us-east-1", "123456789012")

    assert IamCheck(stack).check_executed_tasks([describe("switchboard-support-llm")]) == []
    [finding] = IamCheck(stack).check_executed_tasks([describe("someone-elses")])
    assert finding.principal == "model_deployment.asl.json DescribeEndpoint"
    assert finding.resource.endswith(":endpoint/someone-elses")
    # a Task of someone else's state machine (no such state in our files) is not ours to judge
    foreign = ExecutedTask(
        "Elsewhere", "arn:aws:states:::dynamodb:getItem", "{}", "us-east-1", "123456789012"
    )
    assert IamCheck(stack).check_executed_tasks([foreign]) == []


def test_every_seed_option_is_callable_by_the_invoke_step(
    emulated_aws: None, stack: SynthesizedStack
) -> None:
    """The suites run providers as `mock`, so the real provider code is driven here, once per seed
    option, as the invoke step would run it; its calls are recorded (they fail against the emulator,
    which does not matter: a call is recorded before it is sent) and judged against the invoke role."""
    from iam import recorder
    from switchboard.options.model import LlmOption
    from switchboard.providers.base import ChatRequest
    from switchboard.providers.registry import provider_for
    from switchboard_local.emulation import OPTIONS_FILE

    request = ChatRequest.from_dict({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    options = [LlmOption.from_dict(o) for o in json.loads(OPTIONS_FILE.read_text())]
    real = [o for o in options if o.provider.value != "mock"]
    assert real, "the seed options name no real provider any more: nothing to check here"
    real += deployed_options(stack)
    before = set(recorder.CALLS)
    try:
        for option in real:

            def invoke_step(option: LlmOption = option) -> None:
                try:
                    provider_for(option.provider).complete(option, request, 1.0)
                except Exception:  # the emulator has no models; the call was recorded already
                    return

            recorder.attributed(INVOKE, invoke_step, dict)()
        made = recorder.CALLS - before
    finally:
        recorder.CALLS.intersection_update(before)
    called = {
        json.loads(c.params_json).get("modelId") or json.loads(c.params_json).get("EndpointName")
        for c in made
    }
    assert len(called) == len({o.model or o.endpoint_name for o in real})
    assert [f.line() for f in IamCheck(stack).check_calls(made)] == []


def test_a_known_denial_is_tolerated_and_said(stack: SynthesizedStack) -> None:
    role = stack.function_role(INVOKE).role_id
    without = SynthesizedStack(without_action(stack.template, role, "s3:PutObject"), region="us-east-1")
    known = KnownDenial(INVOKE, "s3:PutObject", f"arn:aws:s3:::{PAYLOADS}/*", "until the grant lands")
    check = IamCheck(without, known=[known])
    recorded = call(INVOKE, "s3", "PutObject", {"Bucket": PAYLOADS, "Key": "k"}, PAYLOAD_BUCKET=PAYLOADS)
    assert check.check_calls([recorded]) == []
    assert check.tolerated == {known}
    other = call(INVOKE, "s3", "PutObject", {"Bucket": "elsewhere", "Key": "k"}, PAYLOAD_BUCKET=PAYLOADS)
    assert len(check.check_calls([other])) == 1  # only what the entry names


def test_the_known_denials_list_is_empty_or_explained() -> None:
    from iam.check import KNOWN_DENIALS

    for known in KNOWN_DENIALS:
        assert len(known.reason) > 20 and known.resource, known


def deployed_options(stack: SynthesizedStack) -> list[Any]:
    """The options the model-deployment workflow points the gateway at (its `switch` step), one per
    model family the template deploys: a SageMaker endpoint, and a component for an adapter family."""
    from switchboard.lifecycle.logic import family_name_prefix
    from switchboard.options.model import LlmOption

    deploy = stack.function_role("handlers.model_deployment.handler").principal_id
    families = json.loads(stack.environment(deploy)["MODEL_FAMILIES"])
    assert families
    return [
        LlmOption.from_dict(
            {
                "id": f["option_id"],
                "provider": "sagemaker",
                "region": "us-east-1",
                "endpoint_name": f["endpoint_name"],
                "inference_component": f"{family_name_prefix(f['group'])}3-abc"
                if f.get("base_component")
                else None,
            }
        )
        for f in families
    ]


def test_statements_cdk_moved_to_an_overflow_managed_policy_are_judged_like_inline_ones(
    stack: SynthesizedStack,
) -> None:
    """CDK moves a role's statements into ``AWS::IAM::ManagedPolicy`` resources (``Roles``) when its
    inline policy outgrows IAM's size limit (a family with several regions does that)."""
    workflow = next(r for r in stack.resources.values() if r["Type"] == "AWS::StepFunctions::StateMachine")[
        "Properties"
    ]["RoleArn"]["Fn::GetAtt"][0]

    def moved(template: Mapping[str, Any]) -> dict[str, Any]:
        changed = copy.deepcopy(dict(template))
        for logical_id, resource in list(changed["Resources"].items()):
            if (
                resource["Type"] == "AWS::IAM::Policy"
                and {"Ref": workflow} in resource["Properties"]["Roles"]
            ):
                resource["Type"] = "AWS::IAM::ManagedPolicy"
                resource["Properties"].pop("PolicyName", None)
                changed["Resources"][logical_id] = resource
        return changed

    allowed = IamCheck(SynthesizedStack(moved(stack.template), region="us-east-1"))
    assert not [f for f in allowed.check_static_tasks() if f.action == "dynamodb:PutItem"]
    without = moved(without_action(stack.template, workflow, "dynamodb:PutItem"))
    denied = IamCheck(SynthesizedStack(without, region="us-east-1"))
    assert [f for f in denied.check_static_tasks() if f.action == "dynamodb:PutItem"]
