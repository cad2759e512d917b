"""Tenant API keys: only the SHA-256 of a bearer key is stored, never the key itself.

Each key row (partition key `key_hash`) carries the tenant, tier, status, a short public `key_id`
(`key_` + 10 hex, what operators use to revoke), the last four characters of the key as a hint,
and the id of the API Gateway API key whose *value* the authorizer hands back as
`usageIdentifierKey` so usage plans throttle per tenant (FACTS correction 3). That API Gateway value
is not a client credential: clients only ever send their bearer key (the API takes its keys from the
authorizer, never from an `x-api-key` header). Keys issued since it was added also store that value
(`usage_identifier`), so the authorizer needs no API Gateway call, nor client, on its request path;
older rows fall back to `GetApiKey`.

A plain SHA-256 (not a password KDF) is right here: the keys are 256-bit random tokens, so there
is nothing to brute-force, and the authorizer must look a key up in one GetItem.
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from switchboard.contract.tables import KEYS_PARTITION_KEY
from switchboard.contract.workflow import timestamp_now

__all__ = [
    "KEY_PREFIX",
    "STATUSES",
    "TIERS",
    "ApiKeyNotFound",
    "ApiKeyRecord",
    "ApiKeyStore",
    "Status",
    "Tier",
    "hash_key",
    "validate_tenant",
    "validate_tier",
]

logger = logging.getLogger(__name__)

Tier = Literal["standard", "premium"]
Status = Literal["active", "revoked"]
TIERS: tuple[str, ...] = ("standard", "premium")
STATUSES: tuple[str, ...] = ("active", "revoked")
KEY_PREFIX = "sk-switchboard-"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY_ID_PATTERN = re.compile(r"^key_[0-9a-f]{10}$")
ROUTE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class ApiKeyNotFound(LookupError):
    """No key with this key_id."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id!r} not found")
        self.key_id = key_id


def hash_key(key: str) -> str:
    """SHA-256 hex of the bearer key: the table's partition key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def validate_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not TENANT_PATTERN.match(tenant):
        raise ValueError(
            f"invalid tenant {tenant!r}: use 1-64 characters, lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant


def validate_tier(tier: str) -> Tier:
    if tier not in TIERS:
        raise ValueError(f"invalid tier {tier!r}: expected one of {', '.join(TIERS)}")
    return cast(Tier, tier)


def _validate_routes(routes: Sequence[str] | None) -> tuple[str, ...] | None:
    if routes is None:
        return None
    if isinstance(routes, str):
        raise ValueError("allowed_routes must be a list of route names, not a string")
    bad = [r for r in routes if not isinstance(r, str) or not ROUTE_PATTERN.match(r)]
    if bad:
        raise ValueError(f"invalid route name(s) in allowed_routes: {bad!r}")
    return tuple(dict.fromkeys(routes))


def _utc_now() -> str:
    return timestamp_now()


@dataclass(frozen=True)
class ApiKeyRecord:
    """What the table knows about a key (never the key, never its hash)."""

    key_id: str
    tenant: str
    tier: Tier
    status: Status
    api_key_id: str | None
    created_at: str
    hint: str
    allowed_routes: tuple[str, ...] | None = None
    revoked_at: str | None = None
    # The API Gateway key's value (see the module docstring); kept out of repr and of `to_dict`.
    usage_identifier: str | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def allows(self, route: str) -> bool:
        """Whether this key may call `route` (None = every route)."""
        return self.allowed_routes is None or route in self.allowed_routes

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "tier": self.tier,
            "status": self.status,
            "api_key_id": self.api_key_id,
            "created_at": self.created_at,
            "hint": self.hint,
            "allowed_routes": list(self.allowed_routes) if self.allowed_routes is not None else None,
        }
        if self.revoked_at:
            data["revoked_at"] = self.revoked_at
        return data

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ApiKeyRecord:
        """From a low-level DynamoDB item."""

        def s(name: str) -> str | None:
            value = item.get(name)
            return value.get("S") if isinstance(value, dict) else None

        routes_attr = item.get("allowed_routes")
        routes: tuple[str, ...] | None = None
        if isinstance(routes_attr, dict):
            if "L" in routes_attr:
                routes = tuple(v["S"] for v in routes_attr["L"] if "S" in v)
            elif "SS" in routes_attr:
                routes = tuple(sorted(routes_attr["SS"]))
        status = s("status") or "revoked"
        tier = s("tier") or "standard"
        return cls(
            key_id=s("key_id") or "",
            tenant=s("tenant") or "",
            tier=cast(Tier, tier if tier in TIERS else "standard"),
            # Anything but an explicit "active" is treated as revoked: fail closed.
            status=cast(Status, "active" if status == "active" else "revoked"),
            api_key_id=s("api_key_id"),
            created_at=s("created_at") or "",
            hint=s("hint") or "",
            allowed_routes=routes,
            revoked_at=s("revoked_at"),
            usage_identifier=s("usage_identifier"),
        )


class ApiKeyStore:
    """The keys table (partition key `key_hash`), plus the API Gateway key that meters each tenant."""

    def __init__(self, table_name: str, *, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from switchboard import aws

            self._client = aws.client("dynamodb")
        return self._client

    hash_key = staticmethod(hash_key)

    # -- reads

    def lookup(self, bearer_key: str) -> ApiKeyRecord | None:
        """The record for a bearer key (whatever its status), or None for an unknown key."""
        if not bearer_key:
            return None
        response = self.client.get_item(
            TableName=self.table_name, Key={KEYS_PARTITION_KEY: {"S": hash_key(bearer_key)}}
        )
        item = response.get("Item")
        return ApiKeyRecord.from_item(item) if item else None

    def _scan(self, **extra: Any) -> builtins.list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name, **extra}
        while True:
            page = self.client.scan(**kwargs)
            items.extend(page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return items
            kwargs["ExclusiveStartKey"] = last

    def _find(self, key_id: str) -> tuple[str, ApiKeyRecord]:
        """(key_hash, record) for a key_id. A scan: revocation is rare and the table is small."""
        if not KEY_ID_PATTERN.match(key_id):
            raise ValueError(f"invalid key id {key_id!r}: expected 'key_' followed by 10 hex digits")
        items = self._scan(FilterExpression="key_id = :k", ExpressionAttributeValues={":k": {"S": key_id}})
        if not items:
            raise ApiKeyNotFound(key_id)
        item = items[0]
        return item[KEYS_PARTITION_KEY]["S"], ApiKeyRecord.from_item(item)

    def get(self, key_id: str) -> ApiKeyRecord:
        return self._find(key_id)[1]

    def list(self) -> builtins.list[ApiKeyRecord]:
        """Every key's record, oldest first (neither keys nor hashes leave this method)."""
        records = [ApiKeyRecord.from_item(item) for item in self._scan()]
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    # -- writes

    def create(
        self,
        tenant: str,
        tier: str,
        *,
        apigateway: Any | None = None,
        usage_plan_id: str | None = None,
        key: str | None = None,
        allowed_routes: Sequence[str] | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        """Issue a key; returns (the bearer key — shown once, never stored —, its record).

        With `apigateway`, an API Gateway API key is created for the tenant (and attached to
        `usage_plan_id` when given); it is deleted again if a later step fails.
        """
        tenant = validate_tenant(tenant)
        tier_value = validate_tier(tier)
        routes = _validate_routes(allowed_routes)
        if key is None:
            key = KEY_PREFIX + secrets.token_urlsafe(32)
        elif len(key) < 20:
            raise ValueError("a supplied key must be at least 20 characters long")
        key_id = "key_" + secrets.token_hex(5)
        api_key_id: str | None = None
        usage_identifier: str | None = None
        if apigateway is not None:
            created = apigateway.create_api_key(
                name=f"switchboard-{tenant}-{key_id}",
                description=f"Switchboard {tier_value} key {key_id} for tenant {tenant}",
                enabled=True,
                generateDistinctId=True,
                tags={
                    "switchboard:tenant": tenant,
                    "switchboard:tier": tier_value,
                    "switchboard:key": key_id,
                },
            )
            api_key_id = str(created["id"])
            usage_identifier = str(created["value"]) if created.get("value") else None
        try:
            if apigateway is not None and usage_plan_id:
                apigateway.create_usage_plan_key(
                    usagePlanId=usage_plan_id, keyId=api_key_id, keyType="API_KEY"
                )
            record = ApiKeyRecord(
                key_id=key_id,
                tenant=tenant,
                tier=tier_value,
                status="active",
                api_key_id=api_key_id,
                created_at=_utc_now(),
                hint=key[-4:],
                allowed_routes=routes,
                usage_identifier=usage_identifier,
            )
            item: dict[str, Any] = {
                KEYS_PARTITION_KEY: {"S": hash_key(key)},
                "key_id": {"S": record.key_id},
                "tenant": {"S": record.tenant},
                "tier": {"S": record.tier},
                "status": {"S": record.status},
                "created_at": {"S": record.created_at},
                "hint": {"S": record.hint},
            }
            if api_key_id:
                item["api_key_id"] = {"S": api_key_id}
            if usage_identifier:
                item["usage_identifier"] = {"S": usage_identifier}
            if routes is not None:
                item["allowed_routes"] = {"L": [{"S": r} for r in routes]}
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=f"attribute_not_exists({KEYS_PARTITION_KEY})",
            )
        except Exception:
            if apigateway is not None and api_key_id:
                try:
                    apigateway.delete_api_key(apiKey=api_key_id)
                except Exception:
                    logger.warning("could not delete API Gateway key %s after a failed create", api_key_id)
            raise
        logger.info("created API key %s for tenant %s (%s)", key_id, tenant, tier_value)
        return key, record

    def revoke(self, key_id: str, *, apigateway: Any | None = None) -> ApiKeyRecord:
        """Mark a key revoked (idempotent) and disable its API Gateway key when `apigateway` is given.

        Takes effect at the authorizer within its cache TTL.
        """
        key_hash, record = self._find(key_id)
        revoked_at = record.revoked_at or _utc_now()
        self.client.update_item(
            TableName=self.table_name,
            Key={KEYS_PARTITION_KEY: {"S": key_hash}},
            UpdateExpression="SET #s = :revoked, revoked_at = :at",
            ConditionExpression=f"attribute_exists({KEYS_PARTITION_KEY})",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":revoked": {"S": "revoked"}, ":at": {"S": revoked_at}},
        )
        if apigateway is not None and record.api_key_id:
            apigateway.update_api_key(
                apiKey=record.api_key_id,
                patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}],
            )
        logger.info("revoked API key %s of tenant %s", key_id, record.tenant)
        return self._revoked(record, revoked_at)

    def delete(self, key_id: str, *, apigateway: Any | None = None) -> ApiKeyRecord:
        """Remove a key's row and, with `apigateway`, delete its API Gateway key (which leaves its
        usage plan with it). For keys that must leave no trace, e.g. `switchboard doctor`'s
        temporary key; revoke it first, so a failure here still leaves it unusable."""
        key_hash, record = self._find(key_id)
        self.client.delete_item(
            TableName=self.table_name,
            Key={KEYS_PARTITION_KEY: {"S": key_hash}},
            ConditionExpression=f"attribute_exists({KEYS_PARTITION_KEY})",
        )
        if apigateway is not None and record.api_key_id:
            try:
                apigateway.delete_api_key(apiKey=record.api_key_id)
            except Exception as exc:  # already gone is fine; anything else is the caller's to report
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if code != "NotFoundException":
                    raise
        logger.info("deleted API key %s of tenant %s", key_id, record.tenant)
        return record

    @staticmethod
    def _revoked(record: ApiKeyRecord, revoked_at: str) -> ApiKeyRecord:
        return ApiKeyRecord(
            key_id=record.key_id,
            tenant=record.tenant,
            tier=record.tier,
            status="revoked",
            api_key_id=record.api_key_id,
            created_at=record.created_at,
            hint=record.hint,
            allowed_routes=record.allowed_routes,
            revoked_at=revoked_at,
        )
