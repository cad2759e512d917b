"""The SageMaker registry, endpoints and inference components (``ModelRegistry``) over dicts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from switchboard.lifecycle.errors import SmokeTestFailed
from switchboard.lifecycle.model import PackageVersion


@dataclass
class InMemoryRegistry:
    """``switchboard.lifecycle.service.ModelRegistry`` without SageMaker.

    The test fills ``versions`` (by ARN), ``endpoints`` (name → ``{"status", "config_name"}``),
    ``components`` (name → (endpoint, status)), ``endpoint_configs`` and ``models``; deletions remove
    from them, ``archived`` keeps each archive reason, ``smoked`` each smoke call.
    ``smoke_fails`` makes the smoke request fail (the endpoint answers with an error).
    """

    versions: dict[str, PackageVersion] = field(default_factory=dict)
    endpoints: dict[str, dict[str, str]] = field(default_factory=dict)
    components: dict[str, tuple[str, str]] = field(default_factory=dict)
    endpoint_configs: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    archived: dict[str, str] = field(default_factory=dict)
    smoked: list[tuple[str, str | None]] = field(default_factory=list)
    smoke_fails: bool = False
    broken_artifacts: set[str] = field(default_factory=set)
    created_components: dict[str, str] = field(default_factory=dict)
    """Adapter components made with ``create_adapter_component``: name → artifact URL."""

    def add_version(self, version: PackageVersion) -> PackageVersion:
        self.versions[version.arn] = version
        return version

    def describe_version(self, arn: str) -> PackageVersion:
        try:
            return self.versions[arn]
        except KeyError:
            raise LookupError(f"model package {arn} does not exist") from None

    def list_versions(self, group: str) -> list[PackageVersion]:
        return sorted((v for v in self.versions.values() if v.group == group), key=lambda v: -v.version)

    def archive(self, arn: str, reason: str) -> None:
        self.versions[arn] = replace(self.describe_version(arn), stage="Archived")
        self.archived[arn] = reason

    def endpoint(self, name: str) -> dict[str, str] | None:
        found = self.endpoints.get(name)
        return dict(found) if found is not None else None

    def component_status(self, name: str) -> str | None:
        found = self.components.get(name)
        return found[1] if found is not None else None

    def components_named(self, endpoint_name: str, prefix: str) -> list[str]:
        return sorted(
            n for n, (e, _) in self.components.items() if e == endpoint_name and n.startswith(prefix)
        )

    def endpoint_configs_named(self, prefix: str) -> list[str]:
        return sorted(n for n in self.endpoint_configs if n.startswith(prefix))

    def models_named(self, prefix: str) -> list[str]:
        return sorted(n for n in self.models if n.startswith(prefix))

    def delete_component(self, name: str) -> bool:
        return self.components.pop(name, None) is not None

    def delete_endpoint_config(self, name: str) -> bool:
        if name not in self.endpoint_configs:
            return False
        self.endpoint_configs.discard(name)
        return True

    def delete_model(self, name: str) -> bool:
        if name not in self.models:
            return False
        self.models.discard(name)
        return True

    def smoke_invoke(self, endpoint_name: str, component: str | None, prompt: str) -> int:
        self.smoked.append((endpoint_name, component))
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None or endpoint["status"] != "InService" or self.smoke_fails:
            raise SmokeTestFailed(f"InvokeEndpoint {endpoint_name}: no answer (fake)")
        return len(b'{"choices":[{"message":{"content":"OK"}}]}')

    def create_model(self, name: str, *, image: str, model_data_url: str, execution_role_arn: str) -> None:
        self.models.add(name)

    def create_endpoint_config(
        self, name: str, *, model_name: str, variant_name: str, instance_type: str, instance_count: int
    ) -> None:
        self.endpoint_configs.add(name)

    def create_endpoint(self, name: str, config_name: str) -> None:
        self.endpoints[name] = {"status": "InService", "config_name": config_name}

    def create_adapter_component(
        self, name: str, *, endpoint_name: str, base_component: str, artifact_url: str
    ) -> None:
        """Settles at once (``InService``), or ``Failed`` for an artifact in ``broken_artifacts``."""
        if endpoint_name not in self.endpoints or base_component not in self.components:
            raise LookupError(f"no endpoint {endpoint_name} with base component {base_component}")
        self.created_components[name] = artifact_url
        status = "Failed" if artifact_url in self.broken_artifacts else "InService"
        self.components[name] = (endpoint_name, status)

    def update_endpoint(
        self, name: str, config_name: str, deployment_config: dict[str, object] | None = None
    ) -> None:
        self.endpoints[name] = {"status": "InService", "config_name": config_name}
