"""A version's container image in a model family's other regions (multi-region rollout, issue 16).

SageMaker runs a model only from an image in the model's own region: "The model artifacts in an
Amazon S3 bucket and the Docker image for inference container in Amazon EC2 Container Registry must
be in the same region as the model or endpoint you are creating" (SageMaker API reference,
``ContainerDefinition.Image``). A version registered in the home region names a home-region ECR
image, so each other region needs its own copy's URI:

* an image of **this account's** registry (``<account>.dkr.ecr.<home>.amazonaws.com/<repo>…``) is
  expected under the same account, repository and tag or digest in the other region, where ECR
  replication (``cdk.json`` ``replicate_images``, :mod:`infra.constructs.regional_models`) or the
  team's own pipeline put it; the rollout's plan checks that it is there before anything moves;
* an image of the **AWS Deep Learning Containers** registry (LMI/DJL, TGI, vLLM) is published in
  each region it lists, under that region's registry account: 763104351884 in most regions, other
  accounts in the opt-in and newer regions (:data:`DLC_REGISTRY_ACCOUNTS`, from the DLC "Available
  images" page, https://aws.github.io/deep-learning-containers/reference/available_images/, which
  the SageMaker developer guide's registry-path pages now point to);
* anything else (another account's registry, Docker Hub, a FIPS or private-link host name) is
  refused with the reason: where its copy lives in another region is unknown.

Everything here is pure: :func:`regional_image` is the rewriting, :func:`check_rollout_images` the
plan's check over an injected :class:`ImageCatalog` (ECR in AWS:
``switchboard.lifecycle.image_catalog.EcrImageCatalog``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

DLC_REGISTRY_ACCOUNTS: Mapping[str, str] = {
    **{
        region: "763104351884"
        for region in (
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-south-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "ca-central-1",
            "eu-central-1",
            "eu-north-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "sa-east-1",
        )
    },
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}
"""Region → the account of the AWS Deep Learning Containers registry there (the DLC "Available
images" table, region availability). A region missing here has no DLC images: a DLC-based version
cannot roll out to it."""

_REPOSITORY = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
"""ECR's repository name grammar (CreateRepository ``repositoryName``)."""
ECR_IMAGE_PATTERN = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2,4}(?:-[a-z]+)+-\d)\.(?P<domain>amazonaws\.com(?:\.cn)?)"
    rf"/(?P<repository>{_REPOSITORY})"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
"""``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:tag][@sha256:digest]``."""


class ImageNotPortable(ValueError):
    """The image cannot be mapped to another region (the message says why and what to do)."""


class ImageCheckFailed(RuntimeError):
    """ECR could not say whether an image exists (access denied, throttled, unreachable)."""


class ImageSource(StrEnum):
    OWN_ACCOUNT = "own-account"
    """This account's registry: the image must have been copied (replicated) to the region."""
    AWS_DEEP_LEARNING_CONTAINERS = "aws-deep-learning-containers"
    """AWS-published: the same repository and tag in the region's DLC registry account."""


def ecr_domain(region: str) -> str:
    """ECR's registry host suffix in ``region``'s partition (China: ``amazonaws.com.cn``)."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


@dataclass(frozen=True, slots=True)
class EcrImage:
    """One private ECR image reference, split into the parts a region change touches."""

    account: str
    region: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    domain: str = "amazonaws.com"

    @property
    def uri(self) -> str:
        return (
            f"{self.account}.dkr.ecr.{self.region}.{self.domain}/{self.repository}"
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )

    @property
    def image_id(self) -> dict[str, str]:
        """ECR's ``imageIds`` entry: the digest when pinned, else the tag (no tag means ``latest``)."""
        return {"imageDigest": self.digest} if self.digest else {"imageTag": self.tag or "latest"}


def parse_ecr_image(uri: str) -> EcrImage:
    """Split a private ECR image URI; anything else raises :class:`ImageNotPortable`."""
    found = ECR_IMAGE_PATTERN.match(uri.strip()) if isinstance(uri, str) else None
    if found is None or len(found["repository"]) > 256:
        raise ImageNotPortable(
            f"image {uri!r} is not an Amazon ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest]): SageMaker runs an "
            "image only from ECR in the model's own region, and only an ECR image can be mapped to "
            "another region; push it to this account's ECR and register the version with that URI"
        )
    if found["domain"] != ecr_domain(found["region"]):
        raise ImageNotPortable(f"image {uri!r}: host {found['domain']} is not ECR's in {found['region']}")
    return EcrImage(
        account=found["account"],
        region=found["region"],
        repository=found["repository"],
        tag=found["tag"],
        digest=found["digest"],
        domain=found["domain"],
    )


@dataclass(frozen=True, slots=True)
class RegionalImage:
    """Where a version's image is in one region, and whose registry holds it."""

    image: EcrImage
    source: ImageSource

    @property
    def uri(self) -> str:
        return self.image.uri


def regional_image(uri: str, region: str, *, own_account: str) -> RegionalImage:
    """The copy of ``uri`` that a SageMaker model in ``region`` must name.

    Raises :class:`ImageNotPortable` (with the reason) for a URI that is not ECR, an image of
    another account's registry, a move across partitions, or a DLC image where DLC publishes none.
    """
    image = parse_ecr_image(uri)
    if ecr_domain(region) != image.domain:
        raise ImageNotPortable(
            f"image {uri!r} is in another AWS partition than {region}: a rollout stays in one partition"
        )
    if image.account == own_account:
        return RegionalImage(replace(image, region=region), ImageSource.OWN_ACCOUNT)
    if DLC_REGISTRY_ACCOUNTS.get(image.region) == image.account:
        account = DLC_REGISTRY_ACCOUNTS.get(region)
        if account is None:
            raise ImageNotPortable(
                f"image {uri!r} is an AWS Deep Learning Containers image, and AWS publishes none in "
                f"{region}: push the image to this account's ECR there (or replicate it) and register the "
                "version with this account's URI"
            )
        return RegionalImage(
            replace(image, account=account, region=region), ImageSource.AWS_DEEP_LEARNING_CONTAINERS
        )
    raise ImageNotPortable(
        f"image {uri!r} is in the registry of account {image.account}, neither this account's "
        f"({own_account or 'unknown'}) nor the AWS Deep Learning Containers' of {image.region}: its copy in "
        f"{region} is unknown; push or replicate it into this account's ECR and register the version "
        "with that URI"
    )


class ImageCatalog(Protocol):
    """Whether an image exists in its region's ECR (``EcrImageCatalog``; fakes in tests)."""

    def exists(self, image: EcrImage) -> bool:
        """True when present, False when the repository or the tag/digest is not there.

        Raises :class:`ImageCheckFailed` when ECR cannot tell (e.g. access denied).
        """


ACCOUNT_IN_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(?P<account>\d{12}):")


def account_of(arn: str) -> str:
    """The account id inside an ARN (the execution role's: the stack's account), or ""."""
    found = ACCOUNT_IN_ARN.match(arn or "")
    return found["account"] if found else ""


@dataclass(frozen=True, slots=True)
class RolloutImages:
    """The plan's view of a version's image in each other region."""

    per_region: Mapping[str, dict[str, Any]]
    """region → ``{"image": URI there ("" when refused), "image_check": what was found}``."""
    refusal: str
    """"" when every region has its image; else why the version cannot roll out (regions named)."""


def check_rollout_images(
    uri: str, regions: Sequence[str], *, own_account: str, catalog: ImageCatalog | None
) -> RolloutImages:
    """Map the image to every region and check the account's own copies exist there.

    AWS Deep Learning Containers images are not looked up: their registry belongs to AWS, whose
    repository policies allow pulling (``BatchGetImage``) rather than ``DescribeImages``, and the DLC
    table documents each region's availability; a tag AWS does not publish in a region still fails
    that region's ``DeployInRegion`` and rolls the rollout back.
    """
    per_region: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for region in regions:
        try:
            mapped = regional_image(uri, region, own_account=own_account)
        except ImageNotPortable as exc:
            per_region[region] = {"image": "", "image_check": "refused"}
            problems.append(f"{region}: {exc}")
            continue
        entry = {"image": mapped.uri, "image_check": ""}
        per_region[region] = entry
        if mapped.source is ImageSource.AWS_DEEP_LEARNING_CONTAINERS:
            entry["image_check"] = "not looked up: AWS Deep Learning Containers registry"
            continue
        if catalog is None:
            entry["image_check"] = "unknown"
            problems.append(f"{region}: image {mapped.uri} cannot be checked (no ECR reader configured)")
            continue
        try:
            present = catalog.exists(mapped.image)
        except ImageCheckFailed as exc:
            entry["image_check"] = "unknown"
            problems.append(f"{region}: image {mapped.uri} cannot be checked: {exc}")
            continue
        entry["image_check"] = "present" if present else "missing"
        if not present:
            problems.append(f"{region}: image {mapped.uri} does not exist")
    refusal = ""
    if problems:
        refusal = (
            "the version's image is not available in every rollout region (nothing was deployed); "
            + "; ".join(problems)
            + " (replicate the repository to those regions, cdk.json replicate_images, or push the image "
            "there; then approve the version again)"
        )
    # the reason becomes the package's ApprovalDescription (at most 1024 characters with its prefix)
    return RolloutImages(per_region=per_region, refusal=refusal[:900])
