"""An in-memory :class:`switchboard.lifecycle.images.ImageCatalog`: the images each region's ECR holds."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from switchboard.lifecycle.images import EcrImage, ImageCheckFailed

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "c" * 64,
        },
        "layers": [],
    }
)
"""A minimal Docker image manifest moto's ECR accepts (``PutImage`` stores it as given)."""


def push_ecr_image(ecr: Any, repository: str, tag: str) -> str:
    """Put an image in (moto's) ECR, creating the repository when needed; its digest."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    image = ecr.put_image(repositoryName=repository, imageManifest=MANIFEST, imageTag=tag)["image"]
    return str(image["imageId"]["imageDigest"])


class InMemoryImages:
    """Images by URI; a region listed in ``unreadable`` answers as ECR does to a denied call."""

    def __init__(self, *uris: str, unreadable: tuple[str, ...] = ()) -> None:
        self.uris = set(uris)
        self.unreadable = set(unreadable)
        self.asked: list[str] = []

    def push(self, uri: str) -> None:
        self.uris.add(uri)

    def exists(self, image: EcrImage) -> bool:
        self.asked.append(image.uri)
        if image.region in self.unreadable:
            raise ImageCheckFailed(f"ECR DescribeImages in {image.region}: AccessDeniedException: denied")
        return image.uri in self.uris
