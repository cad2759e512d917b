"""AppConfig Lambda validator for the tenant prompt-profiles document (a freeform profile).

AppConfig calls it with the version's content (base64) when the version is validated and before a
deployment starts; raising refuses the version with the exception's message, which AppConfig
shows to the operator. The checks are :func:`switchboard.profiles.parse_document_bytes`: the
ones the gateway's reader and the local agent emulator run, so nothing this validator accepts is
refused on the request path. It reads nothing but the event: no table, no AWS call.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.observability import logger
from switchboard.selfcheck import is_selfcheck


class InvalidProfilesDocument(Exception):
    """The message lists every problem found, each with its JSON path."""


def validate(content: bytes) -> None:
    """Raise :class:`InvalidProfilesDocument` unless ``content`` is a good profiles document."""
    from switchboard.profiles import ProfileDocumentError, parse_document_bytes

    try:
        parse_document_bytes(content)
    except ProfileDocumentError as exc:
        raise InvalidProfilesDocument(f"prompt profiles refused: {exc}") from exc


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    if is_selfcheck(event):
        from switchboard import selfcheck

        def init() -> None:
            from switchboard.profiles import parse_document_bytes

            parse_document_bytes(b'{"version": "1", "default": {}}')

        return selfcheck.report("profiles_validator", init=init)

    content = event.get("content") if isinstance(event, dict) else None
    if not isinstance(content, str):
        raise InvalidProfilesDocument("the validation event carries no `content` (base64 of the version)")
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidProfilesDocument(f"the version's content is not base64: {exc}") from exc
    validate(raw)
    logger.info("prompt profiles accepted", extra={"version": event.get("configurationVersion")})
    return None
