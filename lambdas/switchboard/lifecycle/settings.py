"""Environment of the lifecycle Lambdas, modelled and checked once at cold start."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from switchboard.lifecycle.model import ModelFamily, parse_families


class LifecycleSettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


class LifecycleSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    options_table: str = Field(alias="OPTIONS_TABLE", min_length=1)
    families: dict[str, ModelFamily] = Field(alias="MODEL_FAMILIES")
    adapters_table: str | None = Field(default=None, alias="ADAPTERS_TABLE", min_length=1)
    """The tenant adapters table (issue 16). Optional: a stack from before it deploys family-wide
    versions as before and fails a tenant's version in its plan with the reason."""
    regional_artifact_buckets: dict[str, str] = Field(default_factory=dict, alias="REGIONAL_ARTIFACT_BUCKETS")
    """Region → the artifacts replica there (multi-region rollout, issue 16); infra sets it from the
    naming the regional stacks use."""

    execution_role_arn: str = Field(default="", alias="SAGEMAKER_EXECUTION_ROLE_ARN")
    """The role SageMaker assumes for the models the rollout makes in other regions."""

    @field_validator("regional_artifact_buckets", mode="before")
    @classmethod
    def _parse_buckets(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("families", mode="before")
    @classmethod
    def _parse_families(cls, value: Any) -> Any:
        if isinstance(value, str | list):
            return parse_families(json.loads(value) if isinstance(value, str) else value)
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LifecycleSettings:
        source = dict(os.environ if env is None else env)
        try:
            return cls.model_validate(source)
        except (ValidationError, ValueError) as exc:
            raise LifecycleSettingsError(f"lifecycle Lambda: bad environment: {exc}") from exc

    def families_json(self) -> str:
        return json.dumps(
            [f.model_dump(exclude_none=True) for f in self.families.values()], separators=(",", ":")
        )
