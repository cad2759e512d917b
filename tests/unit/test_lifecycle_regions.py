"""The lifecycle's SageMaker adapters per region (issue 16, multi-region rollout): a task that names
a region runs against that region's SageMaker; one that names none runs where it always did."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers.model_deployment import build_service
from switchboard.lifecycle.errors import LifecycleError, SmokeTestFailed
from switchboard.lifecycle.model import ModelFamily
from switchboard.lifecycle.registry import RegionalRegistries, SageMakerRegistry
from switchboard.lifecycle.service import LifecycleService
from switchboard.lifecycle.settings import LifecycleSettings
from tests.fakes import InMemoryOptions, InMemoryRegistry

FAMILY = ModelFamily(
    group="support", option_id="support", endpoint_name="support-ep", regions=("us-east-1", "eu-west-1")
)
IN_SERVICE = {"support-ep": {"status": "InService", "config_name": "c"}}


def _service(home: InMemoryRegistry, others: dict[str, InMemoryRegistry] | None) -> LifecycleService:
    return LifecycleService(
        families={FAMILY.group: FAMILY},
        options=InMemoryOptions(),
        registry=home,
        registries=None if others is None else others.__getitem__,
    )


def test_the_smoke_test_runs_in_the_region_the_task_names() -> None:
    home, ireland = InMemoryRegistry(endpoints=IN_SERVICE), InMemoryRegistry(endpoints=IN_SERVICE)
    lifecycle = _service(home, {"eu-west-1": ireland})
    assert lifecycle.smoke({"endpoint_name": "support-ep", "inference_component": "", "region": "eu-west-1"})[
        "ok"
    ]
    assert (home.smoked, ireland.smoked) == ([], [("support-ep", None)])
    lifecycle.smoke({"endpoint_name": "support-ep", "inference_component": ""})  # no region: home
    lifecycle.smoke({"endpoint_name": "support-ep", "inference_component": "", "region": ""})
    assert (home.smoked, ireland.smoked) == ([("support-ep", None)] * 2, [("support-ep", None)])


def test_a_regional_smoke_failure_is_that_regions() -> None:
    home, ireland = InMemoryRegistry(endpoints=IN_SERVICE), InMemoryRegistry(endpoints=IN_SERVICE)
    ireland.smoke_fails = True
    lifecycle = _service(home, {"eu-west-1": ireland})
    with pytest.raises(SmokeTestFailed):
        lifecycle.smoke({"endpoint_name": "support-ep", "region": "eu-west-1"})
    assert lifecycle.smoke({"endpoint_name": "support-ep"})["ok"] is True


def test_a_single_region_service_refuses_a_region_by_name() -> None:
    lifecycle = _service(InMemoryRegistry(endpoints=IN_SERVICE), None)
    with pytest.raises(LifecycleError, match="no SageMaker clients for region eu-west-1"):
        lifecycle.smoke({"endpoint_name": "support-ep", "region": "eu-west-1"})


def test_regional_registries_make_each_regions_clients_once_and_reuse_the_home_one() -> None:
    made: list[tuple[str, str]] = []

    def make_client(service: str, region: str) -> Any:
        made.append((service, region))
        return object()

    home = SageMakerRegistry(object(), object())
    registries = RegionalRegistries(home_region="us-east-1", home=home, make_client=make_client)
    assert registries("us-east-1") is home
    ireland = registries("eu-west-1")
    assert registries("eu-west-1") is ireland
    assert made == [("sagemaker", "eu-west-1"), ("sagemaker-runtime", "eu-west-1")]


def test_the_deployment_function_reads_endpoints_in_the_named_region(aws_credentials: None) -> None:
    """On moto: the handler's service sees an endpoint that exists only in eu-west-1 there, not at home."""
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
        sagemaker.create_model(
            ModelName="m",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
            PrimaryContainer={"Image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:latest"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.g4dn.xlarge",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName="support-ep", EndpointConfigName="c")
        settings = LifecycleSettings(families={FAMILY.group: FAMILY}, options_table="options")
        lifecycle = build_service(
            settings,
            sagemaker=boto3.client("sagemaker", region_name="us-east-1"),
            dynamodb=boto3.client("dynamodb", region_name="us-east-1"),
        )
        assert lifecycle.registry_in(None).endpoint("support-ep") is None
        assert lifecycle.registry_in("us-east-1") is lifecycle.registry
        found = lifecycle.registry_in("eu-west-1").endpoint("support-ep")
        assert found is not None and found["status"] == "InService"
