"""An in-memory :class:`switchboard.lifecycle.images.ImageCatalog`: the images each region's ECR holds."""

from __future__ import annotations

from switchboard.lifecycle.images import EcrImage, ImageCheckFailed


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
