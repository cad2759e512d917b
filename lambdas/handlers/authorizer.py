"""`authorizer` Lambda: API Gateway REQUEST authorizer for `Authorization: Bearer <key>`.

Missing or unknown keys raise `Unauthorized` (API Gateway answers 401 through the UNAUTHORIZED
gateway response); a known key gets an Allow policy for the whole API, the tenant and tier as
context, and its API Gateway key value as `usageIdentifierKey` so usage plans throttle per tenant.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.observability import logger
from switchboard.selfcheck import is_selfcheck

BEARER = "bearer "


class Dependencies:
    """The authorizer's adapters: the keys table only (no API Gateway client, no GetApiKey call)."""

    def __init__(self) -> None:
        from switchboard.keys import ApiKeyStore
        from switchboard.settings import AuthorizerSettings

        self.settings = AuthorizerSettings.from_env()
        self.keys = ApiKeyStore(self.settings.keys_table)


@lru_cache(maxsize=1)
def _deps() -> Dependencies:
    return Dependencies()


def dependencies() -> Dependencies:
    """This execution environment's adapters, built on first use (tests inspect their wiring)."""
    return _deps()


def forget_cached_state() -> None:
    """Behave as a fresh execution environment: the next call builds clients and caches anew."""
    _deps.cache_clear()


def _bearer(event: dict[str, Any]) -> str | None:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    value = str(headers.get("authorization") or "")
    if not value.lower().startswith(BEARER):
        return None
    token = value[len(BEARER) :].strip()
    return token or None


def _api_wildcard(method_arn: str) -> str:
    """arn:aws:execute-api:region:acct:api/stage/VERB/path → arn:…:api/stage/*/* (cacheable across routes)."""
    prefix, _, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    return f"{prefix}:execute-api:{parts[0]}/{parts[1] if len(parts) > 1 else '*'}/*/*"


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    token = _bearer(event)
    if token is None:
        raise Exception("Unauthorized")
    record = _deps().keys.lookup(token)
    if record is None or record.status != "active":
        logger.info("key refused", extra={"known": record is not None})
        raise Exception("Unauthorized")
    policy: dict[str, Any] = {
        "principalId": f"{record.tenant}/{record.key_id}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _api_wildcard(event["methodArn"]),
                }
            ],
        },
        "context": {
            "tenant": record.tenant,
            "tier": record.tier,
            "key_id": record.key_id,
            "allowed_routes": ",".join(record.allowed_routes or ()),
        },
    }
    if record.api_key_id and not record.usage_identifier:
        # Every key the CLI issues stores its usage-plan key value. A row without one cannot be
        # throttled by a usage plan, so it is refused rather than looked up: the authorizer may not
        # read API Gateway key values (least privilege, issue 10 item 8). Re-issue such a key.
        logger.error("key row has no usage identifier; re-issue the key", extra={"key_id": record.key_id})
        raise Exception("Unauthorized")
    if record.usage_identifier:
        policy["usageIdentifierKey"] = record.usage_identifier
    return policy


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck
        from switchboard.settings import AuthorizerSettings

        return selfcheck.report("authorizer", settings=AuthorizerSettings.from_env, init=_deps)
    return authorize(event)
