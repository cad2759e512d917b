"""Image content parts: what the gateway accepts, checked before anything is routed.

Accepted: `data:` URLs (`data:image/<png|jpeg|gif|webp>;base64,<bytes>`), at most
`MAX_IMAGE_BYTES` decoded bytes each and `MAX_IMAGES` per request (Bedrock Converse's image limits,
the strictest of the providers), whose bytes really are the declared format (magic numbers), so a
provider never receives a mislabelled image and answers a confusing 400.

Refused, with a 400 that says so: remote `http(s)` URLs. Fetching them would make the gateway an
open proxy into its own network (SSRF: instance metadata, VPC endpoints, private services), spend the
request's time budget on someone else's server and bypass the body-size limit; safe fetching needs
DNS pinning, redirect re-checks, private-range filters and byte/time caps, for a feature clients get
by sending the bytes themselves (every SDK can build a data URL). Same for `file:` and other schemes.
"""

from __future__ import annotations

import base64
import binascii
import re

MAX_IMAGE_BYTES = 3_750_000
"""Bedrock Converse: an image may be at most 3.75 MB."""
MAX_IMAGES = 20
"""Bedrock Converse: at most 20 images per request."""

MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

_DATA_URL = re.compile(
    r"data:(?P<type>[A-Za-z0-9.+/-]{1,64})(?P<params>(;[A-Za-z0-9=.+-]{1,64}){0,4}),", re.ASCII
)


class ImageRefused(ValueError):
    """Why an image part cannot be accepted, in words for the client."""


def _magic_matches(media_type: str, head: bytes) -> bool:
    if media_type == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if media_type == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if media_type == "image/gif":
        return head.startswith((b"GIF87a", b"GIF89a"))
    if media_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return False


def parse_image_url(url: str) -> tuple[str, str]:
    """`(media_type, base64 data)` of an acceptable data URL; raises `ImageRefused` otherwise."""
    lowered = url[:16].lower()
    if lowered.startswith(("http://", "https://")):
        raise ImageRefused(
            "remote image URLs are not fetched by this gateway (it would make it an open proxy into "
            "its network); send the image inline as a data URL: data:image/png;base64,..."
        )
    if not lowered.startswith("data:"):
        raise ImageRefused("an image URL must be a data URL: data:image/<png|jpeg|gif|webp>;base64,...")
    match = _DATA_URL.match(url)
    if match is None:
        raise ImageRefused("the data URL's header is not `data:<media type>;base64,`")
    media_type = match.group("type").lower()
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    params = [p.lower() for p in match.group("params").split(";") if p]
    if "base64" not in params:
        raise ImageRefused("the data URL must be base64-encoded (`;base64,`)")
    if media_type not in MEDIA_TYPES:
        raise ImageRefused(f"image type {media_type!r} is not supported (use {', '.join(MEDIA_TYPES)})")
    data = url[match.end() :]
    # base64 grows 4/3: refuse before decoding what cannot fit.
    if len(data) > (MAX_IMAGE_BYTES + 2) // 3 * 4 + 4:
        raise ImageRefused(f"an image may be at most {MAX_IMAGE_BYTES} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("the data URL's payload is not valid base64") from None
    if not raw:
        raise ImageRefused("the image is empty")
    if len(raw) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"an image may be at most {MAX_IMAGE_BYTES} bytes")
    if not _magic_matches(media_type, raw[:16]):
        raise ImageRefused(f"the image's bytes are not {media_type}")
    return media_type, data
