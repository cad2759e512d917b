"""The SageMaker resources the model lifecycle's roles may touch, per model family.

Only the names the workflow makes for a family (``family_name_prefix``: ``<prefix>-v<version>-…``),
the family's endpoint and base component, and the versions of its own model package group: never
every model, config or component of the account. Shared by the registry, workflow and retirement
constructs, with the cdk-nag acknowledgments of the wildcards this needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, Aws

from infra.constructs.functions import iam5_resource
from switchboard.lifecycle.logic import family_name_prefix
from switchboard.lifecycle.model import ModelFamily

NAG_ACCOUNT = "<AWS::AccountId>"
NAG_REGION = "<AWS::Region>"
"""How cdk-nag prints the pseudo parameters in finding ids."""


def sagemaker_arn(kind: str, name: str, region: str | None = None) -> str:
    """In the stack's region, or in ``region`` (a family's other rollout region)."""
    # SageMaker lower-cases resource names in ARNs; IAM matching is case-sensitive.
    return f"arn:{Aws.PARTITION}:sagemaker:{region or Aws.REGION}:{Aws.ACCOUNT_ID}:{kind}/{name.lower()}"


def sagemaker_nag(kind: str, name: str, region: str | None = None) -> str:
    """:func:`sagemaker_arn` as cdk-nag prints it."""
    return f"arn:<AWS::Partition>:sagemaker:{region or NAG_REGION}:{NAG_ACCOUNT}:{kind}/{name.lower()}"


@dataclass(frozen=True, slots=True)
class FamilyArns:
    """ARNs (and ARN patterns) of the families' SageMaker resources, in family order.

    ``region`` None: the stack's own region (``AWS::Region``); else a literal region, for a family's
    other rollout regions (multi-region rollout, issue 16).
    """

    families: tuple[ModelFamily, ...]
    region: str | None = None

    @property
    def group_arns(self) -> list[str]:
        return [sagemaker_arn("model-package-group", f.group, self.region) for f in self.families]

    @property
    def version_arns(self) -> list[str]:
        """Versions of the families' groups (``<group>/<number>``, numbered at registration)."""
        return [sagemaker_arn("model-package", f"{f.group}/*", self.region) for f in self.families]

    @property
    def version_nags(self) -> list[str]:
        return [
            iam5_resource(sagemaker_nag("model-package", f"{f.group}/*", self.region)) for f in self.families
        ]

    @property
    def endpoint_arns(self) -> list[str]:
        return [sagemaker_arn("endpoint", f.endpoint_name, self.region) for f in self.families]

    @property
    def made_component_arns(self) -> list[str]:
        """The adapter components the workflow makes (what it may delete): never a base component."""
        return [sagemaker_arn("inference-component", _made_names(f), self.region) for f in self.families]

    @property
    def component_arns(self) -> list[str]:
        """The adapter components the workflow makes, then the adapter families' base components."""
        bases = [f.base_component for f in self.families if f.base_component]
        return self.made_component_arns + [
            sagemaker_arn("inference-component", base, self.region) for base in bases
        ]

    @property
    def config_arns(self) -> list[str]:
        return [sagemaker_arn("endpoint-config", _made_names(f), self.region) for f in self.families]

    @property
    def model_arns(self) -> list[str]:
        return [sagemaker_arn("model", _made_names(f), self.region) for f in self.families]

    def wildcard_acknowledgments(self, *, versions: bool = True) -> list[Acknowledgment]:
        """cdk-nag IAM5 acknowledgments for the per-family name patterns and (``versions``) the
        versions above (a family's other regions hold no versions: the registry is in the stack's)."""
        named = "named <family prefix>-v<version>-<deployment> at run time (family_name_prefix)"
        per_family = [
            Acknowledgment(id=iam5_resource(sagemaker_nag(kind, _made_names(f), self.region)), reason=why)
            for f in self.families
            for kind, why in (
                ("inference-component", f"Adapter inference components of this family only, {named}."),
                ("endpoint-config", f"Endpoint configs of this family only, {named}."),
                ("model", f"SageMaker models of this family only, {named}."),
            )
        ]
        versions_reason = "Versions of our own model package groups (numbered at registration)."
        versions_acks = [Acknowledgment(id=nag, reason=versions_reason) for nag in self.version_nags]
        return per_family + (versions_acks if versions else [])


def _made_names(family: ModelFamily) -> str:
    """The pattern of the names the workflow makes for a family's models, configs and components."""
    return f"{family_name_prefix(family.group)}*"
