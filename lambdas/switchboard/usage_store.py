"""The usage table as a :class:`switchboard.metering.UsageStore`: one ``UpdateItem ADD`` per request.

Item layout (keys from :mod:`switchboard.contract.tables`, whose docstring lists the table's other
``sk`` prefixes: limit windows, limits, budgets, spend):

- ``pk`` = ``tenant#<tenant>``: a tenant's counters never share a partition with another's.
- ``sk`` = ``usage#<hour>#<route>#<option>#<key>``, the hour as ``2026-11-30T08`` (UTC), each name
  percent-encoded so that a ``#`` inside one cannot make two groups share an item.
- ``prompt_tokens``, ``completion_tokens``, ``cached_tokens``, ``requests``, ``cost_usd``: numbers,
  only ever changed by ``ADD``, which DynamoDB applies atomically: concurrent requests on any number
  of Lambda instances all count, with no read-modify-write and no lost update.
- ``tenant``, ``hour``, ``route``, ``option_id``, ``key_id``: the readable group, set on every write
  (same values), so reads never parse ``sk``; ``expires_at`` (epoch seconds) for DynamoDB TTL.

Reads: one tenant is a ``Query`` of its partition from ``usage#<since hour>`` on (what the gateway
and invoke roles may do); every tenant is a ``Scan`` (the CLI's operator credentials only).

One caveat for the request path: ``ADD`` is not idempotent, so an ``UpdateItem`` retried after a
lost answer (the request reached DynamoDB, the reply did not) counts twice. The SDKs retry 5xx and
connection errors; the counts are exact under concurrency, not under such retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from switchboard.contract import tables
from switchboard.metering import UsageGroup, UsageRecord, UsageTotals

__all__ = ["USAGE_PREFIX", "DynamoUsageStore", "usage_key"]

USAGE_PREFIX: Final = "usage#"
TENANT_PREFIX: Final = "tenant#"
_COUNTERS: Final = ("prompt_tokens", "completion_tokens", "cached_tokens", "requests", "cost_usd")
_GROUP: Final = ("tenant", "hour", "route", "option_id", "key_id")
_AFTER_EVERY_HOUR: Final = "~"
"""Sorts after every hour string (digits): the upper bound of an hours-since query."""


def _name(part: str) -> str:
    return quote(part, safe="")


def usage_key(*, tenant: str, hour: str, group: UsageGroup) -> dict[str, dict[str, str]]:
    """The item key of one tenant's hour under one group (low-level attribute values)."""
    sort_key = "#".join((hour, _name(group.route), _name(group.option_id), _name(group.key_id)))
    return {
        tables.USAGE_PARTITION_KEY: {"S": f"{TENANT_PREFIX}{tenant}"},
        tables.USAGE_SORT_KEY: {"S": f"{USAGE_PREFIX}{sort_key}"},
    }


def _number(value: int | Decimal) -> dict[str, str]:
    # Plain notation: str(Decimal("1.5E-7")) would be exponent notation.
    return {"N": format(value, "f") if isinstance(value, Decimal) else str(value)}


def _record(item: Mapping[str, Any]) -> UsageRecord:
    def s(name: str) -> str:
        return str(item[name]["S"])

    def n(name: str) -> Decimal:
        return Decimal(item[name]["N"]) if name in item else Decimal(0)

    return UsageRecord(
        tenant=s("tenant"),
        hour=s("hour"),
        group=UsageGroup(route=s("route"), option_id=s("option_id"), key_id=s("key_id")),
        totals=UsageTotals(
            prompt_tokens=int(n("prompt_tokens")),
            completion_tokens=int(n("completion_tokens")),
            cached_tokens=int(n("cached_tokens")),
            requests=int(n("requests")),
            cost_usd=n("cost_usd"),
        ),
    )


class DynamoUsageStore:
    """Metered hours in the usage table, through a low-level DynamoDB client (botocore or
    :mod:`switchboard.awsjson`, both speak these request shapes)."""

    def __init__(self, table_name: str, *, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from switchboard import aws

            self._client = aws.client("dynamodb")
        return self._client

    def add(self, *, tenant: str, hour: str, group: UsageGroup, totals: UsageTotals, expires_at: int) -> None:
        """One ``UpdateItem``: ``ADD`` the counters, ``SET`` the group and the expiry."""
        values: dict[str, int | Decimal] = {
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "cached_tokens": totals.cached_tokens,
            "requests": totals.requests,
            "cost_usd": totals.cost_usd,
        }
        group_values = {
            "tenant": tenant,
            "hour": hour,
            "route": group.route,
            "option_id": group.option_id,
            "key_id": group.key_id,
        }
        names = {f"#{name}": name for name in (*_COUNTERS, *_GROUP)}
        names["#ttl"] = tables.TTL_ATTRIBUTE
        self.client.update_item(
            TableName=self.table_name,
            Key=usage_key(tenant=tenant, hour=hour, group=group),
            UpdateExpression=(
                "ADD "
                + ", ".join(f"#{name} :{name}" for name in _COUNTERS)
                + " SET "
                + ", ".join(f"#{name} = :{name}" for name in _GROUP)
                + ", #ttl = :ttl"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                **{f":{name}": _number(value) for name, value in values.items()},
                **{f":{name}": {"S": value} for name, value in group_values.items()},
                ":ttl": _number(expires_at),
            },
        )

    def hours_since(self, *, tenant: str | None, since_hour: str) -> Iterable[UsageRecord]:
        """A tenant's hours (``Query``) or every tenant's (``Scan``) from ``since_hour`` on."""
        low, high = f"{USAGE_PREFIX}{since_hour}", f"{USAGE_PREFIX}{_AFTER_EVERY_HOUR}"
        names = {"#sk": tables.USAGE_SORT_KEY}
        values: dict[str, Any] = {":low": {"S": low}, ":high": {"S": high}}
        if tenant is not None:
            names["#pk"] = tables.USAGE_PARTITION_KEY
            values[":pk"] = {"S": f"{TENANT_PREFIX}{tenant}"}
            request = {
                "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
            return [_record(item) for item in self._pages("query", request)]
        request = {
            "FilterExpression": "#sk BETWEEN :low AND :high",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        return sorted(
            (_record(item) for item in self._pages("scan", request)),
            key=lambda record: (record.tenant, record.hour),
        )

    def _pages(self, operation: str, request: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        start: Mapping[str, Any] | None = None
        while True:
            page = getattr(self.client, operation)(
                TableName=self.table_name,
                ConsistentRead=True,
                **request,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return
