"""Custom resource (`aws_cdk.custom_resources.Provider` on_event): seed the options table.

Create/Update insert the options from `ResourceProperties.Options` (a JSON string: the contents of
`config/options.json`) that do not exist yet; existing items, operator edits included, are never
overwritten. Delete does nothing: the table's own removal policy decides what happens to the data.
The table name comes from `ResourceProperties.TableName`, not from the environment.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from switchboard.options.store import OptionsStore, parse_options
from switchboard.selfcheck import is_selfcheck

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

UPDATED_BY = "cloudformation"


def handler(event: dict[str, Any], context: Any = None, *, client: Any | None = None) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck

        def init() -> None:
            parse_options([], source="selfcheck")
            _ = OptionsStore("selfcheck", client=client).client  # builds the client, calls nothing

        # The table comes with each CloudFormation event, not from the environment: no settings.
        return selfcheck.report("seed_options", init=init)
    request_type = event["RequestType"]
    props = event.get("ResourceProperties", {})
    table = props["TableName"]
    physical_id = f"seed-options-{table}"
    if request_type == "Delete":
        logger.info("seed-options delete for %s: nothing to do", table)
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id), "Data": {"Seeded": 0}}
    if request_type not in ("Create", "Update"):
        raise ValueError(f"unsupported RequestType {request_type!r}")

    raw = props.get("Options", "[]")
    # The Provider passes properties as strings; accept an already-decoded list as well.
    parsed = json.loads(raw) if isinstance(raw, str) else raw
    options = parse_options(parsed, source="ResourceProperties.Options")
    written = OptionsStore(table, client=client).seed(options, updated_by=UPDATED_BY)
    logger.info("seeded %d of %d option(s) into %s: %s", len(written), len(options), table, written)
    return {"PhysicalResourceId": physical_id, "Data": {"Seeded": len(written)}}


on_event = handler
