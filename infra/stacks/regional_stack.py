"""A model family's other region (multi-region rollout, issue 16): one small stack per region.

Why a stack per region and not StackSets, and why no cross-region references: see
``infra/constructs/regional_models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Environment, RemovalPolicy, Stack
from constructs import Construct

from infra.config import SwitchboardConfig
from infra.constructs.regional_models import (
    RegionalModelResources,
    default_alarm_prefix,
    families_in,
    regional_stack_id,
)
from infra.constructs.rollback_alarms import RollbackThresholds
from switchboard.lifecycle.model import ModelFamily

OUTPUT_REGIONAL_ARTIFACTS_BUCKET = "ModelArtifactsReplicaBucketName"


class SwitchboardRegionalStack(Stack):
    """The per-region resources of the model families that deploy to ``region``.

    Named ``<stack name>-<region>``; everything it shares with the home stack is passed as plain
    names computed from configuration (the home stack's name, the alarm prefix), never as tokens.

    Attributes:
        models: :class:`RegionalModelResources`.
    """

    def __init__(
        self,
        scope: Construct,
        *,
        settings: SwitchboardConfig,
        region: str,
        thresholds: RollbackThresholds | None = None,
        **kwargs: Any,
    ) -> None:
        if region == settings.region:
            raise ValueError(f"{region} is the home stack's region: it needs no regional stack")
        stack_id = regional_stack_id(settings.stack_name, region)
        super().__init__(
            scope,
            stack_id,
            stack_name=stack_id,
            env=Environment(region=region),
            description=f"Switchboard model families' resources in {region} (multi-region rollout from "
            f"{settings.region})",
            **kwargs,
        )
        families: Sequence[ModelFamily] = families_in(settings.model_families, region, settings.region)
        self.models = RegionalModelResources(
            self,
            "Models",
            families=families,
            stack_name=settings.stack_name,
            region=region,
            alarm_name_prefix=default_alarm_prefix(settings.stack_name),
            thresholds=thresholds or RollbackThresholds(),
            removal=RemovalPolicy.RETAIN if settings.deletion_protection else RemovalPolicy.DESTROY,
        )
        CfnOutput(
            self,
            OUTPUT_REGIONAL_ARTIFACTS_BUCKET,
            value=self.models.artifacts_bucket.bucket_name,
            description=f"Replica of the model artifacts bucket in {region}",
        )
