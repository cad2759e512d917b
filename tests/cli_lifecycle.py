"""The model lifecycle provisioned in in-process moto for `switchboard models ... --local`: the
lifecycle's resources, SageMaker's emulation applied, the CLI's local state pointed at them and its
Lambda handlers bound. Shared by the CLI's model tests (tests/integration/test_cli_models*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

REGION = "us-east-1"


@contextmanager
def local_model_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The lifecycle's names (``provision_model_lifecycle``) while everything above holds."""
    from switchboard_local.cli import target as target_mod
    from switchboard_local.emulation import bind_lambda_handlers, provision
    from switchboard_local.lifecycle_local import lifecycle_handlers, provision_model_lifecycle
    from switchboard_local.moto_patches import SAGEMAKER

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    with SAGEMAKER.applied():
        resources = provision(client, region=REGION, seed=False)
        names = provision_model_lifecycle(client, resources)
        state = tmp_path / "local.json"
        target_mod.write_local_state(
            target_mod.Target(
                region=REGION, options_table=resources.options_table, keys_table=resources.keys_table
            ),
            state,
        )
        monkeypatch.setattr(target_mod, "LOCAL_STATE_FILE", state)
        monkeypatch.setattr("getpass.getuser", lambda: "tester")
        with bind_lambda_handlers(lifecycle_handlers(resources)):
            yield names
