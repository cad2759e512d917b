"""checkov acknowledgments are per resource, with a reason, and never blanket (see infra/checkov.py).

`make checkov` runs checkov itself on cdk.out; these tests hold the shape of what it is allowed to skip.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra import checkov

ROOT = Path(__file__).resolve().parents[2]

# Each id here was reviewed: the reason lives on the resource, in infra/. A new id needs the same
# review: add it here with the resource type it may be skipped on.
ACKNOWLEDGED: dict[str, set[str]] = {
    "CKV_AWS_115": {"AWS::Lambda::Function"},  # reserved concurrency
    "CKV_AWS_116": {"AWS::Lambda::Function"},  # dead-letter queue
    "CKV_AWS_117": {"AWS::Lambda::Function"},  # VPC
    "CKV_AWS_173": {"AWS::Lambda::Function"},  # environment variables with a customer key
    "CKV_AWS_119": {"AWS::DynamoDB::Table"},  # customer-managed key
    "CKV_AWS_18": {"AWS::S3::Bucket"},  # server access logs
    "CKV_AWS_21": {"AWS::S3::Bucket"},  # versioning (claim-check bucket)
    "CKV_AWS_120": {"AWS::ApiGateway::Stage"},  # stage cache
}


def _skips(resource: dict[str, Any]) -> list[dict[str, Any]]:
    skips = resource.get("Metadata", {}).get(checkov.METADATA_KEY, {}).get("skip", [])
    assert isinstance(skips, list)
    return skips


def _all_skips(template_json: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (logical_id, resource["Type"], skip)
        for logical_id, resource in template_json["Resources"].items()
        for skip in _skips(resource)
    ]


def test_some_checks_are_acknowledged(template_json: dict[str, Any]) -> None:
    assert _all_skips(template_json), "no checkov metadata in the template: is the Aspect registered?"


def test_every_skip_names_one_check_and_gives_a_reason(template_json: dict[str, Any]) -> None:
    for logical_id, _, skip in _all_skips(template_json):
        assert set(skip) == {"id", "comment"}, (logical_id, skip)
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), (logical_id, skip)
        comment = skip["comment"]
        assert isinstance(comment, str), (logical_id, skip)
        assert len(comment) >= checkov.MIN_COMMENT_LENGTH, (logical_id, skip)
        assert comment.rstrip().endswith("."), (logical_id, skip)


def test_no_check_is_skipped_twice_on_one_resource(template_json: dict[str, Any]) -> None:
    for logical_id, resource in template_json["Resources"].items():
        ids = [s["id"] for s in _skips(resource)]
        assert len(ids) == len(set(ids)), (logical_id, ids)


def test_only_reviewed_checks_are_skipped_on_their_resource_types(template_json: dict[str, Any]) -> None:
    for logical_id, resource_type, skip in _all_skips(template_json):
        assert skip["id"] in ACKNOWLEDGED, f"{logical_id}: {skip['id']} is not a reviewed acknowledgment"
        assert resource_type in ACKNOWLEDGED[skip["id"]], (logical_id, resource_type, skip["id"])


def test_every_function_states_its_lambda_reasons(template_json: dict[str, Any]) -> None:
    functions = {
        logical_id: resource
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert functions
    for logical_id, resource in functions.items():
        ids = {s["id"] for s in _skips(resource)}
        assert {
            checkov.LAMBDA_RESERVED_CONCURRENCY,
            checkov.LAMBDA_DLQ,
            checkov.LAMBDA_VPC,
            checkov.LAMBDA_ENV_KMS,
        } <= ids, logical_id


def test_dlq_reasons_name_the_invoker(template_json: dict[str, Any]) -> None:
    """The DLQ reason is per function (how it is invoked), not one text for every function."""
    reasons = {
        s["comment"]
        for _, resource_type, s in _all_skips(template_json)
        if resource_type == "AWS::Lambda::Function" and s["id"] == checkov.LAMBDA_DLQ
    }
    assert len(reasons) >= 4, reasons


def test_every_log_group_is_encrypted_with_the_rotated_logs_key(template_json: dict[str, Any]) -> None:
    resources = template_json["Resources"]
    log_groups = {k: v for k, v in resources.items() if v["Type"] == "AWS::Logs::LogGroup"}
    assert log_groups
    keys = set()
    for logical_id, group in log_groups.items():
        key_ref = group["Properties"].get("KmsKeyId")
        assert key_ref, f"{logical_id} has no KmsKeyId"
        keys.add(key_ref["Fn::GetAtt"][0])
    assert len(keys) == 1
    key = resources[keys.pop()]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    logs_use = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "logs.us-east-1.amazonaws.com"}
    ]
    assert len(logs_use) == 1
    assert "kms:EncryptionContext:aws:logs:arn" in logs_use[0]["Condition"]["ArnLike"]


def test_makefile_runs_checkov_without_blanket_skips() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^checkov:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "no checkov target in the Makefile"
    command = recipe.group(1)
    for flag in ("--skip-check", "--soft-fail", "--hard-fail-on", "--check ", "--baseline"):
        assert flag not in command, flag
    test_recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert test_recipe and "checkov" in test_recipe.group(1).split()


@pytest.mark.parametrize("comment", ["", "n/a", "   not applicable   "])
def test_skip_check_refuses_a_missing_reason(comment: str) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_sqs as sqs

    queue = sqs.Queue(Stack(App(), "S"), "Q")
    with pytest.raises(ValueError, match="reason"):
        checkov.skip_check(queue, "CKV_AWS_27", comment)
