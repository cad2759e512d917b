"""A deployed target carries the AppConfig ids `keys create --route` reads the deployed flags with."""

from __future__ import annotations

import argparse
import json

import boto3

from switchboard_local.cli.target import OUTPUT_KEYS, resolve_target


def test_resolve_target_reads_the_appconfig_ids_from_the_outputs(emulated_aws: None) -> None:
    values = {key: f"value-{key}" for key in OUTPUT_KEYS}
    template = {
        "Resources": {"Nothing": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {OUTPUT_KEYS[key]: {"Value": value} for key, value in values.items()},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="Switchboard", TemplateBody=json.dumps(template)
    )

    target = resolve_target(argparse.Namespace(local=False, stack="Switchboard", region="us-east-1"))

    assert target.appconfig == {
        "application_id": "value-appconfig_application_id",
        "environment_id": "value-appconfig_environment_id",
        "profile_id": "value-appconfig_profile_id",
    }
    assert target.keys_table == "value-keys_table" and target.flags_file is None
