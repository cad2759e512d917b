"""`authorizer` Lambda: API Gateway REQUEST authorizer for `Authorization: Bearer <key>`.

Missing or unknown keys raise `Unauthorized` (API Gateway answers 401 through the UNAUTHORIZED
gateway response); a known key gets an Allow policy for the whole API, the tenant and tier as
context, and its API Gateway key value as `usageIdentifierKey` so usage plans throttle per tenant.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from switchboard.observability import logger
from switchboard.selfcheck import is_selfcheck

if TYPE_CHECKING:
    from switchboard.keys import ApiKeyRecord

BEARER = "bearer "


class _Deps:
    def __init__(self) -> None:
        from switchboard.keys import ApiKeyStore
        from switchboard.settings import AuthorizerSettings

        self.settings = AuthorizerSettings.from_env()
        self.keys = ApiKeyStore(self.settings.keys_table)
        self._apigateway: Any = None
        self.key_values: dict[str, tuple[float, str]] = {}

    @property
    def apigateway(self) -> Any:
        """Built on first use: only keys issued before `usage_identifier` was stored need it."""
        if self._apigateway is None:
            from switchboard import aws

            self._apigateway = aws.client("apigateway")
        return self._apigateway

    def usage_key_value(self, record: ApiKeyRecord) -> str | None:
        """The usage-plan key's value: an identifier for throttling, not a credential."""
        if record.usage_identifier:
            return record.usage_identifier
        if not record.api_key_id:
            return None
        cached = self.key_values.get(record.api_key_id)
        now = time.monotonic()
        if cached and now - cached[0] < self.settings.api_key_cache_ttl_s:
            return cached[1]
        value = str(self.apigateway.get_api_key(apiKey=record.api_key_id, includeValue=True)["value"])
        self.key_values[record.api_key_id] = (now, value)
        return value


@lru_cache(maxsize=1)
def _deps() -> _Deps:
    return _Deps()


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
    usage_key = _deps().usage_key_value(record)
    if usage_key:
        policy["usageIdentifierKey"] = usage_key
    return policy


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_selfcheck(event):
        from switchboard import selfcheck
        from switchboard.settings import AuthorizerSettings

        return selfcheck.report("authorizer", settings=AuthorizerSettings.from_env, init=_deps)
    return authorize(event)
