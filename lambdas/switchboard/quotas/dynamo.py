"""The usage table as :class:`~switchboard.quotas.counters.UsageCounters`: DynamoDB atomic counters.

A window is one item whose attributes are its counters (``rpm`` and ``tpm`` of one minute), changed
by one ``UpdateItem ADD`` carrying the ``ConditionExpression`` ``attribute_not_exists(n) OR
n <= limit - amount`` for each limited counter: DynamoDB itself refuses the increment that would
pass a limit, whichever Lambda instance sends it, and a request refused on tpm does not keep an
rpm slot. One item rather than a transaction over two: transactions on a hot item are cancelled
by each other (``TransactionConflict``), a single conditional update never is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from switchboard.contract import tables
from switchboard.quotas.counters import USED, first_misfit

__all__ = ["DynamoUsageCounters"]

_PK = tables.USAGE_PARTITION_KEY
_SK = tables.USAGE_SORT_KEY
_TTL = tables.TTL_ATTRIBUTE
_GIVE_BACK_ATTEMPTS = 5
_READ_ATTEMPTS = 5


def _to_attr(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store {type(value).__name__} in the usage table")


def _from_attr(attr: Mapping[str, Any]) -> Any:
    if "N" in attr:
        number = Decimal(attr["N"])
        return int(number) if number == number.to_integral_value() else number
    if "S" in attr:
        return attr["S"]
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    return None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class DynamoUsageCounters:
    """The adapter; ``client`` is a boto3 DynamoDB client (or one with the same low-level API)."""

    def __init__(self, table_name: str, *, client: Any) -> None:
        self.table_name = table_name
        self._client = client

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {_PK: {"S": pk}, _SK: {"S": sk}}

    def take(
        self, pk: str, sk: str, amounts: Mapping[str, int], limits: Mapping[str, int], *, expires_at: int
    ) -> str | None:
        for name, limit in limits.items():
            if amounts.get(name, 0) > limit:
                return name  # never fits, whatever the counter holds: no round trip
        names = {"#ttl": _TTL}
        values: dict[str, Any] = {":ttl": {"N": str(expires_at)}}
        adds: list[str] = []
        conditions: list[str] = []
        for i, (name, amount) in enumerate(amounts.items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = {"N": str(amount)}
            adds.append(f"#a{i} :a{i}")
            if name in limits:
                values[f":room{i}"] = {"N": str(limits[name] - amount)}
                conditions.append(f"(attribute_not_exists(#a{i}) OR #a{i} <= :room{i})")
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._key(pk, sk),
            "UpdateExpression": "SET #ttl = :ttl ADD " + ", ".join(adds),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self._client.update_item(**request)
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item") or {}
            current = {name: _from_attr(attr) for name, attr in old.items()}
            return first_misfit(amounts, limits, current) or next(iter(limits))
        return None

    def add(self, pk: str, sk: str, amounts: Mapping[str, int | Decimal], *, expires_at: int | None) -> None:
        if not amounts:
            return
        names = {f"#a{i}": name for i, name in enumerate(amounts)}
        values = {f":a{i}": {"N": str(amount)} for i, amount in enumerate(amounts.values())}
        expression = "ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(amounts)))
        if expires_at is not None:
            names["#ttl"] = _TTL
            values[":ttl"] = {"N": str(expires_at)}
            expression = "SET #ttl = :ttl " + expression
        self._client.update_item(
            TableName=self.table_name,
            Key=self._key(pk, sk),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def give_back(self, pk: str, sk: str, amount: int, *, attribute: str = USED) -> None:
        if amount <= 0:
            return
        names = {"#n": attribute}
        for _ in range(_GIVE_BACK_ATTEMPTS):
            try:  # the usual case: the counter holds at least what is returned
                self._client.update_item(
                    TableName=self.table_name,
                    Key=self._key(pk, sk),
                    UpdateExpression="ADD #n :minus",
                    ConditionExpression="#n >= :amount",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":minus": {"N": str(-amount)}, ":amount": {"N": str(amount)}},
                )
                return
            except Exception as exc:
                if _error_code(exc) != "ConditionalCheckFailedException":
                    raise
            try:  # it holds less (or nothing): floor at zero, unless it grew meanwhile
                self._client.update_item(
                    TableName=self.table_name,
                    Key=self._key(pk, sk),
                    UpdateExpression="SET #n = :zero",
                    ConditionExpression="attribute_exists(#n) AND #n < :amount",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":zero": {"N": "0"}, ":amount": {"N": str(amount)}},
                )
                return
            except Exception as exc:
                code = _error_code(exc)
                if code != "ConditionalCheckFailedException":
                    raise
                item = self.read(pk, [sk]).get(sk)
                if item is None or item.get(attribute) is None:
                    return  # nothing to give back to (expired window)

    def read(self, pk: str, sks: Sequence[str]) -> dict[str, dict[str, Any]]:
        unique = list(dict.fromkeys(sks))
        if not unique:
            return {}
        found: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {self.table_name: {"Keys": [self._key(pk, sk) for sk in unique]}}
        for _ in range(_READ_ATTEMPTS):
            response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.table_name, []):
                values = {name: _from_attr(attr) for name, attr in item.items()}
                found[str(values.pop(_SK))] = values
                values.pop(_PK, None)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise RuntimeError(
            f"{self.table_name}: BatchGetItem left keys unprocessed after {_READ_ATTEMPTS} attempts"
        )

    def put(self, pk: str, sk: str, values: Mapping[str, Any]) -> None:
        item = {
            **self._key(pk, sk),
            **{name: _to_attr(value) for name, value in values.items() if value is not None},
        }
        self._client.put_item(TableName=self.table_name, Item=item)
