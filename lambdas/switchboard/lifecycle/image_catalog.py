"""ECR behind :class:`switchboard.lifecycle.images.ImageCatalog`: does an image exist in its region?

One ``ecr`` client per region, made on first use and kept (a warm Lambda reuses them). The call is
``DescribeImages`` with the image's registry (account), repository and tag or digest: ECR answers
``ImageNotFoundException`` or ``RepositoryNotFoundException`` when it is not there. The deployment
tasks role may call it only on this account's ``switchboard-*`` repositories in the rollout regions
(``infra/constructs/regional_models.py``); anything else is access denied, reported as
:class:`ImageCheckFailed` with ECR's message, so the plan's reason says what to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from switchboard.lifecycle.images import EcrImage, ImageCheckFailed

NOT_THERE = frozenset({"ImageNotFoundException", "RepositoryNotFoundException"})


class EcrImageCatalog:
    """:class:`~switchboard.lifecycle.images.ImageCatalog` on ECR ``DescribeImages``, per region."""

    def __init__(self, make_client: Callable[[str], Any]) -> None:
        """
        Args:
            make_client: region → an ``ecr`` client there (``switchboard.aws.client`` with
                ``region_name``; the local stack's emulated clients in tests).
        """
        self._make_client = make_client
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        found = self._clients.get(region)
        if found is None:
            found = self._clients[region] = self._make_client(region)
        return found

    def exists(self, image: EcrImage) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client(image.region).describe_images(
                registryId=image.account, repositoryName=image.repository, imageIds=[image.image_id]
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in NOT_THERE:
                return False
            raise ImageCheckFailed(
                f"ECR DescribeImages in {image.region}: {error.get('Code')}: {error.get('Message', '')[:200]}"
            ) from exc
        except BotoCoreError as exc:
            raise ImageCheckFailed(f"ECR in {image.region} unreachable: {exc}") from exc
        return bool(answer.get("imageDetails"))
