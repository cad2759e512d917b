"""SageMaker adapter of the model lifecycle: the registry, endpoints, inference components.

Takes injected clients (``sagemaker``, ``sagemaker-runtime``); imports botocore only inside methods.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from switchboard.lifecycle.errors import SmokeTestFailed
from switchboard.lifecycle.model import PackageVersion

_NOT_FOUND = ("could not find", "not found", "does not exist")


def _is_not_found(exc: Any) -> bool:
    error = getattr(exc, "response", {}).get("Error", {})
    message = str(error.get("Message", "")).lower()
    return error.get("Code") in ("ValidationException", "ResourceNotFound") and any(
        marker in message for marker in _NOT_FOUND
    )


class SageMakerRegistry:
    """Reads and housekeeping calls on SageMaker for the lifecycle."""

    def __init__(self, sagemaker: Any, runtime: Any | None = None) -> None:
        self.sagemaker = sagemaker
        self.runtime = runtime

    # -- registry

    def describe_version(self, arn: str) -> PackageVersion:
        return PackageVersion.from_description(self.sagemaker.describe_model_package(ModelPackageName=arn))

    def list_versions(self, group: str) -> list[PackageVersion]:
        """Every version of the group, newest first (ListModelPackages sorts ascending by default)."""
        versions: list[PackageVersion] = []
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 100,
        }
        while True:
            page = self.sagemaker.list_model_packages(**kwargs)
            versions.extend(
                PackageVersion.from_description(s) for s in page.get("ModelPackageSummaryList", [])
            )
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        return sorted(versions, key=lambda v: -v.version)

    def archive(self, arn: str, reason: str) -> None:
        self.sagemaker.update_model_package(
            ModelPackageArn=arn,
            ModelLifeCycle={
                "Stage": "Archived",
                "StageStatus": "Archived",
                "StageDescription": reason[:1024],
            },
        )

    # -- endpoints and components

    def endpoint(self, name: str) -> dict[str, Any] | None:
        """``{"status", "config_name"}`` of an endpoint, or None when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            described = self.sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise
        return {"status": described["EndpointStatus"], "config_name": described["EndpointConfigName"]}

    def component_status(self, name: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return str(
                self.sagemaker.describe_inference_component(InferenceComponentName=name)[
                    "InferenceComponentStatus"
                ]
            )
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise

    def components_named(self, endpoint_name: str, prefix: str) -> list[str]:
        found: list[str] = []
        kwargs: dict[str, Any] = {"EndpointNameEquals": endpoint_name, "NameContains": prefix}
        while True:
            page = self.sagemaker.list_inference_components(**kwargs)
            found.extend(
                c["InferenceComponentName"]
                for c in page.get("InferenceComponents", [])
                if c["InferenceComponentName"].startswith(prefix)
            )
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def endpoint_configs_named(self, prefix: str) -> list[str]:
        found: list[str] = []
        kwargs: dict[str, Any] = {"NameContains": prefix}
        while True:
            page = self.sagemaker.list_endpoint_configs(**kwargs)
            found.extend(
                c["EndpointConfigName"]
                for c in page.get("EndpointConfigs", [])
                if c["EndpointConfigName"].startswith(prefix)
            )
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def models_named(self, prefix: str) -> list[str]:
        found: list[str] = []
        kwargs: dict[str, Any] = {"NameContains": prefix}
        while True:
            page = self.sagemaker.list_models(**kwargs)
            found.extend(m["ModelName"] for m in page.get("Models", []) if m["ModelName"].startswith(prefix))
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def delete_component(self, name: str) -> bool:
        return self._delete(self.sagemaker.delete_inference_component, InferenceComponentName=name)

    def delete_endpoint_config(self, name: str) -> bool:
        return self._delete(self.sagemaker.delete_endpoint_config, EndpointConfigName=name)

    def delete_model(self, name: str) -> bool:
        return self._delete(self.sagemaker.delete_model, ModelName=name)

    @staticmethod
    def _delete(call: Any, **kwargs: Any) -> bool:
        """True when deleted, False when it was already gone."""
        from botocore.exceptions import ClientError

        try:
            call(**kwargs)
        except ClientError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    # -- deployment in a family's other regions (the home region's calls are the ASL's own)

    def create_model(self, name: str, *, image: str, model_data_url: str, execution_role_arn: str) -> None:
        """A model from the version's image and artifact. Not ``ModelPackageName``: the package lives in
        the home region's registry, and a model can only name a package of its own region."""
        self.sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn=execution_role_arn,
            PrimaryContainer={"Image": image, "ModelDataUrl": model_data_url},
        )

    def create_endpoint_config(
        self, name: str, *, model_name: str, variant_name: str, instance_type: str, instance_count: int
    ) -> None:
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": variant_name,
                    "ModelName": model_name,
                    "InstanceType": instance_type,
                    "InitialInstanceCount": instance_count,
                }
            ],
        )

    def create_endpoint(self, name: str, config_name: str) -> None:
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name)

    def create_adapter_component(
        self, name: str, *, endpoint_name: str, base_component: str, artifact_url: str
    ) -> None:
        """An adapter version's inference component, as the home region's ``CreateAdapterComponent``
        state makes it: on the base component, with the adapter's artifact and no compute."""
        self.sagemaker.create_inference_component(
            InferenceComponentName=name,
            EndpointName=endpoint_name,
            Specification={
                "BaseInferenceComponentName": base_component,
                "Container": {"ArtifactUrl": artifact_url},
            },
        )

    def update_endpoint(
        self, name: str, config_name: str, deployment_config: dict[str, Any] | None = None
    ) -> None:
        """Move the endpoint to ``config_name``: guarded (blue/green with ``AutoRollbackConfiguration``)
        when ``deployment_config`` is given, else a plain update (the rollback to the old config)."""
        kwargs: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config_name}
        if deployment_config:
            kwargs["DeploymentConfig"] = deployment_config
        self.sagemaker.update_endpoint(**kwargs)

    # -- smoke

    def smoke_invoke(self, endpoint_name: str, component: str | None, prompt: str) -> int:
        """One tiny chat request; returns the answer's size. Raises :class:`SmokeTestFailed`."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self.runtime is None:
            raise SmokeTestFailed("no sagemaker-runtime client")
        kwargs: dict[str, Any] = {
            "EndpointName": endpoint_name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps({"messages": [{"role": "user", "content": prompt}], "max_tokens": 8}),
        }
        if component:
            kwargs["InferenceComponentName"] = component
        try:
            response = self.runtime.invoke_endpoint(**kwargs)
            body = response["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise SmokeTestFailed(
                f"InvokeEndpoint {endpoint_name}{'/' + component if component else ''}: "
                f"{error.get('Code', '?')}: {str(error.get('Message', ''))[:200]}"
            ) from exc
        except BotoCoreError as exc:
            raise SmokeTestFailed(f"InvokeEndpoint {endpoint_name}: {type(exc).__name__}") from exc
        if not body:
            raise SmokeTestFailed(f"InvokeEndpoint {endpoint_name}: empty answer")
        return len(body)


class RegionalRegistries:
    """A :class:`SageMakerRegistry` per region, for a family's other regions (multi-region rollout).

    SageMaker endpoints and inference components are regional, so each region needs its own
    ``sagemaker`` and ``sagemaker-runtime`` clients (``region_name``); they are made on first use
    and kept (a warm Lambda reuses them). The home region answers with the registry already built
    from the function's own clients, so single-region families never make another client.
    """

    def __init__(
        self, *, home_region: str, home: SageMakerRegistry, make_client: Callable[[str, str], Any]
    ) -> None:
        """
        Args:
            home_region: the stack's region (the function's ``AWS_REGION``).
            home: the registry of that region.
            make_client: ``(service, region) → client`` (``switchboard.aws.client`` with ``region_name``).
        """
        self.home_region = home_region
        self._registries: dict[str, SageMakerRegistry] = {home_region: home}
        self._make_client = make_client

    def __call__(self, region: str) -> SageMakerRegistry:
        registry = self._registries.get(region)
        if registry is None:
            registry = SageMakerRegistry(
                self._make_client("sagemaker", region), self._make_client("sagemaker-runtime", region)
            )
            self._registries[region] = registry
        return registry
