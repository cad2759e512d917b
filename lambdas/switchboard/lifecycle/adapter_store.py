"""Tenant adapters (issue 16): which LoRA adapter serves each tenant of an adapter family.

The model-deployment workflow is the only writer: approving a tenant's adapter version, the revert
after an alarm during the bake, and the rollback of a rejected live adapter (to the tenant's
previous approved adapter, or to the base model) each write the tenant's item with a condition on
the adapter the workflow planned to replace, plus one history item. The gateway reads one item per
(family, tenant) at request time (the next slice of issue 16) and ``switchboard models list`` lists
a family's tenants page by page.

Table layout (``switchboard.contract.tables``): partition ``family#<group>``; sort key
``tenant#<tenant>`` for the serving adapter and ``history#<tenant>#<time>#<execution>`` for its
changes. One partition per family keeps listing a single paginated Query; the request path's reads
are single GetItems behind a short cache, far below a partition's read limit. No prompts here:
package ARNs, versions and component names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from switchboard.contract.tables import ADAPTERS_PARTITION_KEY, ADAPTERS_SORT_KEY
from switchboard.lifecycle.errors import LifecycleError

TENANT_PREFIX = "tenant#"
HISTORY_PREFIX = "history#"
DEFAULT_PAGE_SIZE = 100


class AdapterState(StrEnum):
    """How the tenant's serving adapter got there (what `switchboard models list` shows)."""

    CANARY = "canary"
    """A new version (``canary``) serves ``canary_share_percent`` of the tenant's requests while the
    workflow bakes it; ``live`` serves the rest. The workflow then promotes or rolls it back."""
    LIVE = "live"
    """The version serves all of the tenant's requests."""
    ROLLED_BACK = "rolled_back"
    """The tenant's newer version was taken back: the previous approved adapter, or the base model
    when ``live`` is None, serves the tenant."""


class HistoryEvent(StrEnum):
    DEPLOYED = "deployed"
    REVERTED_AFTER_ALARM = "reverted_after_alarm"
    ROLLED_BACK_TO_BASE = "rolled_back_to_base"
    CANARY_STARTED = "canary_started"
    CANARY_PROMOTED = "canary_promoted"
    CANARY_ROLLED_BACK = "canary_rolled_back"


@dataclass(frozen=True, slots=True)
class AdapterRef:
    """One adapter version deployed as an inference component."""

    package_arn: str
    version: int
    component: str

    def as_item(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}_package_arn": self.package_arn,
            f"{prefix}_version": self.version,
            f"{prefix}_component": self.component,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any], prefix: str) -> AdapterRef | None:
        arn = item.get(f"{prefix}_package_arn")
        if not arn:
            return None
        return cls(
            package_arn=str(arn),
            version=int(item.get(f"{prefix}_version") or 0),
            component=str(item.get(f"{prefix}_component") or ""),
        )

    @classmethod
    def from_state(cls, data: Mapping[str, Any] | None) -> AdapterRef | None:
        """From the workflow's JSON (``{"package_arn", "version", "component"}``; empty = none)."""
        if not data or not data.get("package_arn"):
            return None
        return cls(str(data["package_arn"]), int(data.get("version") or 0), str(data.get("component") or ""))

    def as_state(self) -> dict[str, Any]:
        return {"package_arn": self.package_arn, "version": self.version, "component": self.component}


@dataclass(frozen=True, slots=True)
class TenantAdapter:
    """The adapter serving one tenant of one adapter family."""

    family: str
    tenant: str
    state: AdapterState
    live: AdapterRef | None
    """None: the base model (the family's base inference component) serves the tenant."""
    previous: AdapterRef | None = None
    """The approved adapter this one replaced (None: the base model, or unknown)."""
    canary: AdapterRef | None = None
    """In state ``canary``: the new version under test, serving ``canary_share_percent`` of the
    tenant's requests (chosen per user, deterministically) while ``live`` serves the rest."""
    canary_share_percent: int = 0
    endpoint_name: str = ""
    updated_at: str = ""
    updated_by: str = ""

    def as_state(self) -> dict[str, Any]:
        """For the workflow's JSON and `switchboard models list --json`."""
        return {
            "family": self.family,
            "tenant": self.tenant,
            "state": self.state.value,
            "live": self.live.as_state() if self.live else None,
            "previous": self.previous.as_state() if self.previous else None,
            "canary": self.canary.as_state() if self.canary else None,
            "canary_share_percent": self.canary_share_percent,
            "endpoint_name": self.endpoint_name,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True, slots=True)
class AdapterPage:
    """One page of a family's tenants; pass ``next_token`` back for the next (None: last page)."""

    adapters: list[TenantAdapter]
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterChange:
    """One history item: what changed for a tenant, when, by which execution."""

    family: str
    tenant: str
    event: HistoryEvent
    at: str
    execution: str
    record: TenantAdapter
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class TenantAdapterMovedByAnotherDeployment(LifecycleError):
    """The tenant's adapter is no longer the one this deployment planned to replace."""

    def __init__(self, family: str, tenant: str, *, expected: str | None, found: str | None) -> None:
        super().__init__(
            f"tenant {tenant!r} of {family} is now served by {found or 'the base model'}, "
            f"not {expected or 'the base model'} as when this deployment was planned"
        )
        self.family = family
        self.tenant = tenant
        self.expected = expected
        self.found = found


class TenantAdapterStore(Protocol):
    """Reads for the gateway and the CLI, and the workflow's conditional write."""

    def get(self, family: str, tenant: str) -> TenantAdapter | None: ...

    def list_family(
        self, family: str, *, limit: int = DEFAULT_PAGE_SIZE, next_token: str | None = None
    ) -> AdapterPage: ...

    def history(self, family: str, tenant: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The tenant's changes, newest first."""

    def write(
        self,
        record: TenantAdapter,
        *,
        expected_live_arn: str | None,
        change: AdapterChange,
        expected_canary_arn: str | None = None,
        check_canary: bool = False,
    ) -> None:
        """Store ``record`` if the tenant is still served by ``expected_live_arn`` (None: the base
        model or no record) and, with ``check_canary``, its canary is still ``expected_canary_arn``
        (None: no canary running); else :class:`TenantAdapterMovedByAnotherDeployment`. Adds
        ``change``."""


def all_in_family(
    store: TenantAdapterStore, family: str, *, page_size: int = DEFAULT_PAGE_SIZE
) -> Iterator[TenantAdapter]:
    """Every tenant of a family, page by page (hundreds of tenants never in one response)."""
    token: str | None = None
    while True:
        page = store.list_family(family, limit=page_size, next_token=token)
        yield from page.adapters
        if page.next_token is None:
            return
        token = page.next_token


def history_timestamp(now: datetime | None = None) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``: history items sort by it, and one tenant may change twice in
    a second (a deployment, then its rollback)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def partition(family: str) -> str:
    return f"family#{family}"


def tenant_key(tenant: str) -> str:
    return f"{TENANT_PREFIX}{tenant}"


def history_key(tenant: str, at: str, execution: str) -> str:
    return f"{HISTORY_PREFIX}{tenant}#{at}#{execution}"


def record_item(record: TenantAdapter) -> dict[str, Any]:
    """The plain item of a tenant's serving adapter (absent refs leave their attributes out)."""
    item: dict[str, Any] = {
        ADAPTERS_PARTITION_KEY: partition(record.family),
        ADAPTERS_SORT_KEY: tenant_key(record.tenant),
        "family": record.family,
        "tenant": record.tenant,
        "state": record.state.value,
        "endpoint_name": record.endpoint_name,
        "updated_at": record.updated_at,
        "updated_by": record.updated_by,
    }
    if record.live:
        item.update(record.live.as_item("live"))
    if record.previous:
        item.update(record.previous.as_item("previous"))
    if record.canary:
        item.update(record.canary.as_item("canary"))
        item["canary_share_percent"] = record.canary_share_percent
    return item


def record_from_item(item: Mapping[str, Any]) -> TenantAdapter:
    return TenantAdapter(
        family=str(item.get("family", "")),
        tenant=str(item.get("tenant", "")),
        state=AdapterState(str(item.get("state", AdapterState.LIVE.value))),
        live=AdapterRef.from_item(item, "live"),
        previous=AdapterRef.from_item(item, "previous"),
        canary=AdapterRef.from_item(item, "canary"),
        canary_share_percent=int(item.get("canary_share_percent") or 0),
        endpoint_name=str(item.get("endpoint_name", "")),
        updated_at=str(item.get("updated_at", "")),
        updated_by=str(item.get("updated_by", "")),
    )


def change_item(change: AdapterChange) -> dict[str, Any]:
    record = change.record
    item = {
        **record_item(record),
        ADAPTERS_SORT_KEY: history_key(change.tenant, change.at, change.execution),
        "event": change.event.value,
        "at": change.at,
        "execution": change.execution,
        "reason": change.reason,
        **change.extra,
    }
    return item


class DynamoTenantAdapterStore:
    """:class:`TenantAdapterStore` on the adapters table (a low-level DynamoDB client, injected)."""

    def __init__(self, table_name: str, *, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def get(self, family: str, tenant: str) -> TenantAdapter | None:
        from switchboard.options.store import from_dynamodb_item

        found = self.client.get_item(
            TableName=self.table_name,
            Key={
                ADAPTERS_PARTITION_KEY: {"S": partition(family)},
                ADAPTERS_SORT_KEY: {"S": tenant_key(tenant)},
            },
            ConsistentRead=True,
        ).get("Item")
        return record_from_item(from_dynamodb_item(found)) if found else None

    def list_family(
        self, family: str, *, limit: int = DEFAULT_PAGE_SIZE, next_token: str | None = None
    ) -> AdapterPage:
        from switchboard.options.store import from_dynamodb_item

        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :tenants)",
            "ExpressionAttributeNames": {"#pk": ADAPTERS_PARTITION_KEY, "#sk": ADAPTERS_SORT_KEY},
            "ExpressionAttributeValues": {":pk": {"S": partition(family)}, ":tenants": {"S": TENANT_PREFIX}},
            "Limit": max(1, min(limit, 1000)),
        }
        if next_token:
            kwargs["ExclusiveStartKey"] = {
                ADAPTERS_PARTITION_KEY: {"S": partition(family)},
                ADAPTERS_SORT_KEY: {"S": tenant_key(next_token)},
            }
        page = self.client.query(**kwargs)
        adapters = [record_from_item(from_dynamodb_item(i)) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        token = str(last[ADAPTERS_SORT_KEY]["S"]).removeprefix(TENANT_PREFIX) if last else None
        return AdapterPage(adapters, token)

    def history(self, family: str, tenant: str, *, limit: int = 50) -> list[dict[str, Any]]:
        from switchboard.options.store import from_dynamodb_item

        page = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :history)",
            ExpressionAttributeNames={"#pk": ADAPTERS_PARTITION_KEY, "#sk": ADAPTERS_SORT_KEY},
            ExpressionAttributeValues={
                ":pk": {"S": partition(family)},
                ":history": {"S": f"{HISTORY_PREFIX}{tenant}#"},
            },
            ScanIndexForward=False,
            Limit=max(1, min(limit, 1000)),
        )
        return [from_dynamodb_item(i) for i in page.get("Items", [])]

    def write(
        self,
        record: TenantAdapter,
        *,
        expected_live_arn: str | None,
        change: AdapterChange,
        expected_canary_arn: str | None = None,
        check_canary: bool = False,
    ) -> None:
        from switchboard.options.store import to_dynamodb_item

        values: dict[str, Any] = {}
        if expected_live_arn:
            condition = "live_package_arn = :expected"
            values[":expected"] = {"S": expected_live_arn}
        else:
            condition = "attribute_not_exists(live_package_arn)"
        if check_canary and expected_canary_arn:
            condition += " AND canary_package_arn = :canary"
            values[":canary"] = {"S": expected_canary_arn}
        elif check_canary:
            condition += " AND attribute_not_exists(canary_package_arn)"
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": to_dynamodb_item(record_item(record)),
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {"Put": put},
                    {"Put": {"TableName": self.table_name, "Item": to_dynamodb_item(change_item(change))}},
                ]
            )
        except Exception as exc:
            if not _condition_failed(exc):
                raise
            current = self.get(record.family, record.tenant)
            found = current.live.package_arn if current and current.live else None
            if check_canary and current is not None and current.canary is not None:
                found = f"{found or 'the base model'} with canary {current.canary.package_arn}"
            raise TenantAdapterMovedByAnotherDeployment(
                record.family, record.tenant, expected=expected_live_arn, found=found
            ) from None


def _condition_failed(exc: BaseException) -> bool:
    response = getattr(exc, "response", {})
    code = str(response.get("Error", {}).get("Code", ""))
    if code == "ConditionalCheckFailedException":
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = response.get("CancellationReasons") or []
    codes = {str(r.get("Code")) for r in reasons if isinstance(r, Mapping)}
    if codes:
        return "ConditionalCheckFailed" in codes
    return "ConditionalCheckFailed" in str(response.get("Error", {}).get("Message", ""))
