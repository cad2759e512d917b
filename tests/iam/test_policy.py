"""The policy evaluator against IAM's documented rules (IAM User Guide, "Policy evaluation logic")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iam.policy import (
    Statement,
    action_matches,
    evaluate,
    parse_document,
    patterns_intersect,
    possibly_allowed,
    resource_matches,
)

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/switchboard-local-options"
OBJECT = "arn:aws:s3:::payloads/results/req-1.json"


def allow(actions: list[str] | str, resources: list[str] | str, **extra: object) -> list[Statement]:
    return parse_document(
        {"Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources, **extra}]}
    )


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert action_matches("s3:GetObject", "s3:getobject")
    assert action_matches("s3:Get*", "s3:GetObject")
    assert action_matches("dynamodb:?etItem", "dynamodb:GetItem")
    assert action_matches("*", "states:StartSyncExecution")
    assert not action_matches("s3:Get*", "s3:PutObject")
    assert not action_matches("s3:GetObject", "s3:GetObjectAcl")


def test_resources_match_case_sensitively_and_segment_by_segment() -> None:
    assert resource_matches("arn:aws:s3:::payloads/*", OBJECT)
    assert not resource_matches("arn:aws:s3:::payloads/*", "arn:aws:s3:::payloads-other/x")
    assert not resource_matches("arn:aws:s3:::Payloads/*", OBJECT)
    assert resource_matches("arn:aws:dynamodb:*:*:table/*", TABLE)
    # the last part (the resource) may hold colons and slashes: a wildcard there spans them
    assert resource_matches(
        "arn:aws:logs:us-east-1:1:log-group:g:*", "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s"
    )
    # elsewhere a wildcard stays inside its part
    assert not resource_matches("arn:aws:dynamodb:us-*:table/x", "arn:aws:dynamodb:us-east-1:1:table/x")


def test_only_a_bare_star_grants_an_action_without_resource_level_permissions() -> None:
    assert evaluate(allow("sagemaker:ListModels", "*"), "sagemaker:ListModels", "*").allowed
    scoped = allow("sagemaker:ListModels", "arn:aws:sagemaker:us-east-1:1:model/*")
    assert not evaluate(scoped, "sagemaker:ListModels", "*").allowed


def test_implicit_deny_when_nothing_allows() -> None:
    decision = evaluate(allow("s3:GetObject", "arn:aws:s3:::payloads/*"), "s3:PutObject", OBJECT)
    assert not decision.allowed
    assert "implicit deny" in decision.reason


def test_explicit_deny_wins_over_allow() -> None:
    statements = parse_document(
        {
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::payloads/*"},
            ]
        }
    )
    decision = evaluate(statements, "s3:PutObject", OBJECT)
    assert not decision.allowed and decision.reason == "explicit Deny"
    assert evaluate(statements, "s3:GetObject", OBJECT).allowed


def test_not_action_and_not_resource() -> None:
    statements = parse_document(
        {
            "Statement": [
                {"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::secret/*"}
            ]
        }
    )
    assert evaluate(statements, "s3:PutObject", OBJECT).allowed
    assert not evaluate(statements, "s3:DeleteObject", OBJECT).allowed
    assert not evaluate(statements, "s3:GetObject", "arn:aws:s3:::secret/x").allowed


def test_conditions_are_evaluated_with_the_context_given_and_reported_otherwise() -> None:
    role = "arn:aws:iam::123456789012:role/exec"
    statements = allow(
        "iam:PassRole", role, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    )
    to_sagemaker = evaluate(
        statements, "iam:PassRole", role, {"iam:PassedToService": ["sagemaker.amazonaws.com"]}
    )
    assert to_sagemaker.allowed and not to_sagemaker.unevaluated
    assert not evaluate(
        statements, "iam:PassRole", role, {"iam:PassedToService": ["ec2.amazonaws.com"]}
    ).allowed
    unknown = evaluate(statements, "iam:PassRole", role)
    assert unknown.allowed and unknown.unevaluated  # said, not hidden


def test_statements_need_resolved_string_values() -> None:
    with pytest.raises(ValueError, match="Resource"):
        parse_document(
            {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Ref": "X"}}]}
        )


def test_patterns_intersect_for_run_time_names() -> None:
    assert patterns_intersect(
        "arn:aws:sagemaker:us-east-1:1:endpoint/switchboard-*", "arn:aws:sagemaker:us-east-1:1:endpoint/*"
    )
    assert patterns_intersect(
        "arn:aws:cloudwatch:r:1:alarm:p-g-invocation-5xx", "arn:aws:cloudwatch:r:1:alarm:p-*-5xx"
    )
    assert not patterns_intersect("arn:aws:cloudwatch:r:1:alarm:q-*", "arn:aws:cloudwatch:r:1:alarm:p-*")
    statements = allow("sagemaker:CreateModel", "arn:aws:sagemaker:us-east-1:1:model/*")
    assert possibly_allowed(
        statements, "sagemaker:CreateModel", "arn:aws:sagemaker:us-east-1:1:model/*"
    ).allowed
    assert not possibly_allowed(
        statements, "sagemaker:DeleteModel", "arn:aws:sagemaker:us-east-1:1:model/*"
    ).allowed


NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./", min_size=1, max_size=30)


@given(NAME, NAME)
def test_a_literal_arn_grants_exactly_itself(granted: str, asked: str) -> None:
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/"
    decision = evaluate(allow("dynamodb:GetItem", arn + granted), "dynamodb:GetItem", arn + asked)
    assert decision.allowed == (granted == asked)


@given(NAME, NAME)
def test_a_prefix_wildcard_grants_exactly_the_names_with_that_prefix(prefix: str, name: str) -> None:
    arn = "arn:aws:s3:::bucket/"
    decision = evaluate(allow("s3:GetObject", arn + prefix + "*"), "s3:GetObject", arn + name)
    assert decision.allowed == name.startswith(prefix)
