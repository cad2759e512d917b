"""Configuration and value objects of the model lifecycle."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard.options.model import OPTION_ID_PATTERN

SAGEMAKER_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
ADAPTER_OF_KEY = "switchboard:adapter-of"
"""``CustomerMetadataProperties`` key `switchboard models register --adapter-of` sets on a version."""
TENANT_KEY = "switchboard:tenant"
"""``CustomerMetadataProperties`` key `switchboard models register --tenant` sets: the version is that
tenant's adapter (versions in a group cannot take tags; FACTS "SageMaker deployment and registry")."""


REGION_PATTERN = r"^[a-z]{2,4}(-[a-z]+)+-\d$"


@lru_cache(maxsize=1)
def known_sagemaker_regions() -> frozenset[str]:
    """The regions, in every partition, where botocore knows a SageMaker endpoint.

    botocore's own endpoint data (shipped with the Lambda runtime and the CLI), not a list kept here:
    a region AWS opens arrives with a botocore upgrade, and a typo (``eu-west-9``) fails synthesis.
    Imported here, not at module level: only a family that lists regions pays for botocore's data
    (the gateway's tenant-adapter lookup may import this module on the request path).
    """
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("sagemaker", partition_name=partition)
    )


class Approval(StrEnum):
    APPROVED = "Approved"
    REJECTED = "Rejected"
    PENDING = "PendingManualApproval"


class FamilyKind(StrEnum):
    FULL = "full"
    """Each version is a whole model: new endpoint config, blue/green update of the endpoint."""
    ADAPTER = "adapter"
    """Each version is a LoRA adapter: an inference component on the endpoint's base component."""


LATENCY_STATISTIC_PATTERN = r"^(Average|Maximum|p(\d{1,2}(\.\d{1,2})?))$"


class AdapterCanaryPolicy(BaseModel):
    """How a tenant's new adapter version canaries (issue 16), per adapter family in `cdk.json`
    (``model_families[].canary``); every field has a default, so a family may leave it out.

    SageMaker gives inference components no blue/green: the gateway sends ``share_percent`` of the
    tenant's requests (chosen per user) to the new component for the workflow's bake time, then the
    workflow judges the component's own CloudWatch metrics (namespace ``AWS/SageMaker``, dimension
    ``InferenceComponentName``) against these thresholds, beside the family's rollback alarms. No
    CloudWatch alarm is created per adapter (hundreds of tenants would mean hundreds of paid alarms).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    share_percent: int = Field(default=10, ge=1, le=50)
    """The tenant's share of requests the new version serves during the canary (1-50: a canary is a
    minority share; the rest stays on the tenant's live adapter, or the base model)."""
    max_error_rate_percent: float = Field(default=5.0, ge=0, le=100)
    """Rolled back above this: errors (the larger of ``Invocation5XXErrors`` and
    ``InvocationModelErrors``) per ``Invocations`` of the canary component during the bake."""
    max_model_latency_ms: int = Field(default=30_000, ge=1, le=3_600_000)
    """Rolled back above this ``ModelLatency`` (CloudWatch reports microseconds; compared in ms)."""
    latency_statistic: str = Field(default="Average", pattern=LATENCY_STATISTIC_PATTERN)
    """``Average``, ``Maximum`` or a percentile such as ``p90`` (GetMetricData's ``Stat``)."""
    min_invocations: int = Field(default=0, ge=0, le=1_000_000)
    """Fewer invocations of the canary during the bake roll it back (too little traffic to judge);
    0 promotes an unused canary (nothing went wrong, and an idle tenant never blocks its rollout)."""


class ModelFamily(BaseModel):
    """One customised model family: a Model Package Group and the gateway option it feeds.

    From `cdk.json` context ``model_families`` (a list of these objects).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(pattern=SAGEMAKER_NAME_PATTERN)
    option_id: str = Field(pattern=OPTION_ID_PATTERN)
    endpoint_name: str = Field(pattern=SAGEMAKER_NAME_PATTERN)
    variant_name: str = Field(default="AllTraffic", pattern=SAGEMAKER_NAME_PATTERN)
    instance_type: str = Field(default="ml.g5.2xlarge", pattern=r"^ml\.[a-z0-9.]+$")
    instance_count: int = Field(default=1, ge=1, le=100)
    base_component: str | None = Field(default=None, pattern=SAGEMAKER_NAME_PATTERN)
    """Adapter families: the base inference component (on ``endpoint_name``) the adapters load on."""
    retention: int = Field(default=2, ge=1, le=50)
    """Versions kept deployable besides the one serving traffic; older ones are retired."""
    description: str | None = Field(default=None, max_length=256)
    canary: AdapterCanaryPolicy = Field(default_factory=AdapterCanaryPolicy)
    """Adapter families: how a tenant's new adapter version canaries (ignored for full models, whose
    canary is SageMaker's blue/green ``TrafficRoutingConfiguration``)."""
    regions: tuple[str, ...] = ()
    """Multi-region rollout (issue 16): the regions a version deploys to, one after the other. The
    stack's region goes first, wherever it is listed (its blue/green canary, alarms and smoke test
    are the rollout's canary); each other region then gets its own alarm-guarded update in the order
    listed (an adapter family's versions, tenants' included, are made and smoke-tested in each
    region under the same name before routing moves: ``LifecycleService.create_region_adapter``).
    Empty: the stack's own region only (single-region, as before). The stack's region must be listed
    (``infra/config.py`` checks it: the registry, workflow and options table live there)."""

    @field_validator("regions", mode="after")
    @classmethod
    def _known_distinct_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        known = known_sagemaker_regions()
        for region in regions:
            if not re.fullmatch(REGION_PATTERN, region):
                raise ValueError(f"{region!r} is not a region name (like eu-west-1)")
            if region not in known:
                raise ValueError(f"{region!r} is not a region with SageMaker (botocore knows none there)")
        repeated = sorted({region for region in regions if regions.count(region) > 1})
        if repeated:
            raise ValueError(f"regions listed twice: {', '.join(repeated)}")
        return regions

    @property
    def kind(self) -> FamilyKind:
        return FamilyKind.ADAPTER if self.base_component else FamilyKind.FULL

    def deployment_regions(self, home_region: str) -> tuple[str, ...]:
        """The regions a version deploys to, in rollout order (the first canaries)."""
        return self.regions or (home_region,)

    def extra_regions(self, home_region: str) -> tuple[str, ...]:
        """The rollout regions other than the stack's own (each has a regional stack)."""
        return tuple(region for region in self.deployment_regions(home_region) if region != home_region)

    def regional_option_id(self, region: str, home_region: str) -> str:
        """The gateway option serving this family in ``region``, in the one options table.

        The home region keeps ``option_id`` (routes and flags written before multi-region still
        name it); another region's option is ``<option_id>-<region>`` with its ``region`` field set,
        so a chain can list both and fail over across regions to the same version.
        """
        if region not in self.deployment_regions(home_region):
            raise ValueError(f"model family {self.group} does not deploy to {region}")
        return self.option_id if region == home_region else f"{self.option_id}-{region}"

    def as_state(self) -> dict[str, Any]:
        """What the state machine reads (``$.plan.family``): every key present, strings for absent."""
        return {
            "group": self.group,
            "option_id": self.option_id,
            "endpoint_name": self.endpoint_name,
            "variant_name": self.variant_name,
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "kind": self.kind.value,
            "base_component": self.base_component or "",
        }


def parse_families(raw: Any) -> dict[str, ModelFamily]:
    """A JSON string or list of family objects → group → family (groups must be unique)."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    if data is None:
        return {}
    if not isinstance(data, list):
        raise ValueError("model families must be a list of objects")
    families: dict[str, ModelFamily] = {}
    for entry in data:
        family = ModelFamily.model_validate(entry)
        if family.group in families:
            raise ValueError(f"model family group {family.group!r} appears twice")
        families[family.group] = family
    return families


@dataclass(frozen=True, slots=True)
class PackageVersion:
    """One version in a Model Package Group, as the lifecycle needs it."""

    arn: str
    group: str
    version: int
    approval: str
    created: str = ""
    """ISO-8601 creation time (for display and ordering ties)."""
    model_data_url: str = ""
    image: str = ""
    adapter_of: str | None = None
    tenant: str | None = None
    """The tenant whose adapter this version is (``TENANT_KEY``); None for a family-wide version.
    Only ``DescribeModelPackage`` carries it: ListModelPackages summaries have no metadata."""
    stage: str | None = None
    """``ModelLifeCycle.Stage`` (e.g. ``Archived``), when set."""

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> PackageVersion:
        """From a DescribeModelPackage (or ListModelPackages summary) response."""
        containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
        created: Any = described.get("CreationTime")
        metadata = described.get("CustomerMetadataProperties") or {}
        life_cycle = described.get("ModelLifeCycle") or {}
        return cls(
            arn=str(described["ModelPackageArn"]),
            group=str(described.get("ModelPackageGroupName", "")),
            version=int(described.get("ModelPackageVersion") or 0),
            approval=str(described.get("ModelApprovalStatus", "")),
            created=created.isoformat() if isinstance(created, datetime) else str(created or ""),
            model_data_url=str(containers[0].get("ModelDataUrl", "")),
            image=str(containers[0].get("Image", "")),
            adapter_of=metadata.get(ADAPTER_OF_KEY),
            tenant=metadata.get(TENANT_KEY) or None,
            stage=life_cycle.get("Stage"),
        )

    def as_state(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "group": self.group,
            "version": self.version,
            "model_data_url": self.model_data_url,
            "image": self.image,
            "tenant": self.tenant or "",
        }
