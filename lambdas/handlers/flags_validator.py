"""AppConfig Lambda validator for the routing flag document.

AppConfig calls it before any deployment starts; raising refuses the version, so a flag document
naming an unknown or retired option, or with a bad rule, never reaches a gateway.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.observability import logger
from switchboard.selfcheck import is_selfcheck

if TYPE_CHECKING:
    from switchboard.routing.schema import OptionCatalogue


class InvalidFlagDocument(Exception):
    """The message lists every problem found; AppConfig shows it to the operator."""


@lru_cache(maxsize=1)
def _options_table() -> str:
    from switchboard.settings import ValidatorSettings

    return ValidatorSettings.from_env().options_table


def forget_cached_state() -> None:
    """Behave as a fresh execution environment: the next call reads its settings anew."""
    _options_table.cache_clear()


def validate(content: bytes, option_statuses: OptionCatalogue) -> None:
    from switchboard.routing.document import validate_document

    try:
        document = json.loads(content)
    except ValueError as exc:
        raise InvalidFlagDocument(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidFlagDocument("the flag document must be a JSON object")
    problems = validate_document(document, option_statuses)
    if problems:
        raise InvalidFlagDocument("; ".join(problems))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    from switchboard.options.store import OptionsStore

    if is_selfcheck(event):
        from switchboard import selfcheck
        from switchboard.settings import ValidatorSettings

        def init() -> None:
            from switchboard.routing.document import validate_document

            OptionsStore(_options_table())
            # The checks' modules load and run (an empty document is refused: problems, no raise).
            validate_document({"version": "1", "flags": {}, "values": {}}, {})

        return selfcheck.report("flags_validator", settings=ValidatorSettings.from_env, init=init)

    from switchboard.routing.document import option_catalogue

    # The one scan the validator makes: statuses, tasks and embedding spaces all come from it.
    catalogue = option_catalogue(option.to_item() for option in OptionsStore(_options_table()).all())
    validate(base64.b64decode(event["content"]), catalogue)
    logger.info("flag document accepted", extra={"version": event.get("configurationVersion")})
    return None
