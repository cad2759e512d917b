"""Public Lambda layers the stack uses, per region.

AWS AppConfig Agent Lambda extension, ARM64, version 2.0.17054.0. Source: the "ARM64 platform"
table of https://docs.aws.amazon.com/appconfig/latest/userguide/appconfig-integration-lambda-extensions-versions.html
(us-east-1 ``AWS-AppConfig-Extension-Arm64:254``, as recorded in the project's FACTS page). Every
entry was checked against that table's published source on 2026-11-25; the China and GovCloud
partitions are left out (other ARN partition, and the Powertools layer is published differently).
Multi-variant flags need extension >= 2.0.678; CDK's ``Application.get_lambda_layer_version_arn``
still maps to 2.0.358 (no variant evaluation), hence this map. To move to a newer extension,
replace the versions here from the same page (each region's layer version number differs; the
publishing account does not change).

Powertools for AWS Lambda (Python) v3 is resolved **from the version the tests run**: the exact
``aws-lambda-powertools==X.Y.Z`` pin in ``requirements.txt`` names the public SSM parameter
``/aws/service/powertools/python/arm64/python3.13/X.Y.Z`` that Powertools publishes for every
release (its "Lambda layer" docs; the parameter holds that release's layer ARN in each region), and
the template carries it as a CloudFormation dynamic reference. A layer *number* pinned by hand is
how layer 27 (Powertools 3.23.0, no ``circuit_breaker``) came to ship beside tests that ran 3.37.0.

The Lambda runtime's Python minor version is :data:`LAMBDA_PYTHON_VERSION`; ``make test`` runs the
Lambda code's tests on that same minor version (``LAMBDA_PYTHON_VERSION`` in the Makefile, checked
against this one by a test). 3.13 and not 3.14: 3.14 cannot be installed on the machines that run
``make test`` (pyenv offers 3.13), and a runtime the tests never ran on is not "deployed as tested".
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from switchboard.contract import dependencies

APPCONFIG_EXTENSION_VERSION: Final = "2.0.17054.0"

# region -> (publishing account, layer version) of AWS-AppConfig-Extension-Arm64
_APPCONFIG_ARM64: Final[dict[str, tuple[str, int]]] = {
    "us-east-1": ("027255383542", 254),
    "us-east-2": ("728743619870", 229),
    "us-west-1": ("958113053741", 272),
    "us-west-2": ("359756378197", 275),
    "ca-central-1": ("039592058896", 182),
    "ca-west-1": ("436199621743", 162),
    "eu-central-1": ("066940009817", 238),
    "eu-central-2": ("758369105281", 178),
    "eu-west-1": ("434848589818", 241),
    "eu-west-2": ("282860088358", 194),
    "eu-west-3": ("493207061005", 192),
    "eu-north-1": ("646970417810", 226),
    "eu-south-1": ("203683718741", 177),
    "eu-south-2": ("586093569114", 175),
    "ap-east-1": ("630222743974", 182),
    "ap-northeast-1": ("980059726660", 225),
    "ap-northeast-2": ("826293736237", 181),
    "ap-northeast-3": ("706869817123", 187),
    "ap-southeast-1": ("421114256042", 210),
    "ap-southeast-2": ("080788657173", 256),
    "ap-southeast-3": ("418787028745", 193),
    "ap-southeast-4": ("307021474294", 173),
    "ap-south-1": ("554480029851", 232),
    "ap-south-2": ("489524808438", 175),
    "sa-east-1": ("000010852771", 215),
    "af-south-1": ("574348263942", 188),
    "me-central-1": ("662846165436", 168),
    "me-south-1": ("559955524753", 182),
    "il-central-1": ("895787185223", 171),
    "ap-east-2": ("730335625313", 121),
    "ap-southeast-5": ("631746059939", 136),
    "ap-southeast-6": ("381491832265", 87),
    "ap-southeast-7": ("851725616657", 133),
    "mx-central-1": ("891376990304", 141),
}

LAMBDA_PYTHON_VERSION: Final = "3.13"
"""The Lambda runtime's Python (major.minor): ``python3.13`` on arm64."""

REQUIREMENTS_FILE: Final = Path(__file__).resolve().parents[1] / "requirements.txt"
POWERTOOLS_PACKAGE: Final = "aws-lambda-powertools"
POWERTOOLS_SSM_PREFIX: Final = "/aws/service/powertools/python"
LAMBDA_ARCHITECTURE: Final = "arm64"


# AWS Lambda Web Adapter (the gateway's HTTP entrypoint, handlers/gateway_http.py). One ARN pattern
# in every commercial region: publishing account 753240598075, the same version number everywhere.
# Version 30 is Lambda Web Adapter v1.1.0, the newest release when this was written (2026-11-30).
# Source: aws/aws-lambda-web-adapter pull request #871 (merged 2026-09-18, "point docs and examples
# at v1.1.0 and layer version 30"), which moved the project's README and user guide ("Zip
# Packages": arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:30) after
# the v1.1.0 release workflow had published the layer in all 32 commercial regions; 29 was never a
# release (a reverted July build), 28 is v1.0.1, 26 is v1.0.0. To move to a newer adapter, take
# the number from the same README table.
WEB_ADAPTER_ACCOUNT: Final = "753240598075"
WEB_ADAPTER_LAYER_ARM64: Final = "LambdaAdapterLayerArm64"
WEB_ADAPTER_LAYER_VERSION: Final = 30
WEB_ADAPTER_RELEASE: Final = "1.1.0"


class UnsupportedRegionError(ValueError):
    """No layer is mapped for this region: synthesis stops rather than deploying without one."""


def appconfig_extension_arm64_arn(region: str) -> str:
    """The AppConfig Agent extension (ARM64) layer ARN for ``region``.

    Raises :class:`UnsupportedRegionError` for an unmapped or unresolved region: the gateway cannot
    evaluate multi-variant routing flags without the extension.
    """
    try:
        account, version = _APPCONFIG_ARM64[region]
    except KeyError:
        known = ", ".join(sorted(_APPCONFIG_ARM64))
        raise UnsupportedRegionError(
            f"no AWS AppConfig Lambda extension (ARM64) layer is mapped for region {region!r}. "
            f"Add it to infra/layers.py from the AWS AppConfig user guide, or deploy to one of: {known}"
        ) from None
    return f"arn:aws:lambda:{region}:{account}:layer:AWS-AppConfig-Extension-Arm64:{version}"


def web_adapter_arm64_arn(region: str) -> str:
    """The Lambda Web Adapter (ARM64) layer ARN in ``region`` (the adapter's release publishes the
    same version in each commercial region its pipeline deploys to: 32 for v1.1.0)."""
    layer = f"{WEB_ADAPTER_LAYER_ARM64}:{WEB_ADAPTER_LAYER_VERSION}"
    return f"arn:aws:lambda:{region}:{WEB_ADAPTER_ACCOUNT}:layer:{layer}"


def pinned_versions(requirements: Path = REQUIREMENTS_FILE) -> dict[str, str]:
    """``name -> version`` for every exact (``==``) pin of a requirements file, names normalised."""
    return dependencies.pinned_versions(requirements.read_text())


def powertools_version(requirements: Path = REQUIREMENTS_FILE) -> str:
    """The Powertools release the tests install: the exact pin in ``requirements.txt``."""
    try:
        return pinned_versions(requirements)[POWERTOOLS_PACKAGE]
    except KeyError:
        raise ValueError(
            f"{requirements} must pin {POWERTOOLS_PACKAGE} exactly (==): the Lambda layer is chosen "
            "from that pin"
        ) from None


def powertools_layer_parameter(version: str | None = None) -> str:
    """The public SSM parameter holding the layer ARN of that Powertools release for our runtime."""
    release = version or powertools_version()
    return f"{POWERTOOLS_SSM_PREFIX}/{LAMBDA_ARCHITECTURE}/python{LAMBDA_PYTHON_VERSION}/{release}"


def powertools_layer_arn(version: str | None = None) -> str:
    """A CloudFormation dynamic reference CloudFormation resolves to the layer ARN at deploy time.

    The parameter is regional and public: the ARN resolves in the stack's own region. If the
    release has no parameter (Powertools publishes one per release; a release whose publication
    failed has none), the deployment fails before any function changes, naming the parameter.
    """
    return "{{resolve:ssm:" + powertools_layer_parameter(version) + "}}"


def supported_regions() -> list[str]:
    return sorted(_APPCONFIG_ARM64)
