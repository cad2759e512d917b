"""Where ``switchboard capacity report`` reads from: adapters of :mod:`switchboard.capacity_report`'s ports.

Each takes an injected low-level client (boto3's, or one with the same API), so this module
imports no boto3 and the CLI decides where the calls go (the local stack's emulator or AWS).

- :class:`DynamoCapacityWindows`: the usage table's ``option#<id>`` / ``capacity#<id>#<minute>``
  items (layout in :mod:`switchboard.quotas.service`), one ``Query`` per option.
- :class:`CloudWatchProviderCalls`: ``GetMetricData`` of the per-option ``ProviderCalls`` metric
  (namespace and dimensions from :mod:`switchboard.contract.metrics`), Sum per 60 s.
  Needs ``cloudwatch:GetMetricData``.
- :class:`ServiceQuotasBedrock`: ``ListServiceQuotas`` with ``ServiceCode=bedrock``, every page,
  one client per region. Needs ``servicequotas:ListServiceQuotas``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from switchboard.capacity_report import MinuteReading, ServiceQuota
from switchboard.contract import metrics as metric_names
from switchboard.contract import tables
from switchboard.quotas.model import minute_label
from switchboard.quotas.service import option_pk

__all__ = ["CloudWatchProviderCalls", "DynamoCapacityWindows", "ServiceQuotasBedrock", "capacity_prefix"]

_AFTER_EVERY_MINUTE: Final = "~"
"""Sorts after every minute label (digits): the upper bound of a minutes-since query."""
_METRIC_QUERIES_PER_CALL: Final = 500
"""GetMetricData's limit on ``MetricDataQueries`` in one request."""
BEDROCK_SERVICE_CODE: Final = "bedrock"


def capacity_prefix(option_id: str) -> str:
    """The sort-key prefix of an option's capacity windows (``capacity#<id>#``)."""
    return f"capacity#{option_id}#"


def _number(item: Mapping[str, Any], name: str) -> int | None:
    attribute = item.get(name)
    if not isinstance(attribute, Mapping) or "N" not in attribute:
        return None
    return int(float(attribute["N"]))


class DynamoCapacityWindows:
    """Per-minute ``rpm``/``tpm`` taken of each option, from the usage table."""

    def __init__(self, table_name: str, *, client: Any) -> None:
        self.table_name = table_name
        self._client = client

    def minutes(self, option_id: str, *, since: datetime) -> Sequence[MinuteReading]:
        prefix = capacity_prefix(option_id)
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
            "ExpressionAttributeNames": {"#pk": tables.USAGE_PARTITION_KEY, "#sk": tables.USAGE_SORT_KEY},
            "ExpressionAttributeValues": {
                ":pk": {"S": option_pk(option_id)},
                ":low": {"S": prefix + minute_label(since)},
                ":high": {"S": prefix + _AFTER_EVERY_MINUTE},
            },
        }
        readings: list[MinuteReading] = []
        for item in self._pages(request):
            sort_key = item.get(tables.USAGE_SORT_KEY, {}).get("S", "")
            minute = sort_key[len(prefix) :]
            requests, tokens = _number(item, "rpm"), _number(item, "tpm")
            readings.append(MinuteReading(minute, requests or 0, tokens or 0))
        return readings

    def _pages(self, request: dict[str, Any]) -> Iterator[Mapping[str, Any]]:
        start: Mapping[str, Any] | None = None
        while True:
            page = self._client.query(**request, **({"ExclusiveStartKey": start} if start else {}))
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return


class CloudWatchProviderCalls:
    """Calls per option and minute, from the ``ProviderCalls`` metric (requests; no tokens)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def minutes(
        self, option_ids: Sequence[str], *, since: datetime, until: datetime
    ) -> Mapping[str, Sequence[MinuteReading]]:
        found: dict[str, list[MinuteReading]] = {option_id: [] for option_id in option_ids}
        # Whole minutes, so each 60 s bucket is one clock minute (CloudWatch rounds a start under
        # 15 days old down to the minute itself; aligning here keeps every implementation alike).
        start_at = since.astimezone(UTC).replace(second=0, microsecond=0)
        end_at = until.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for start in range(0, len(option_ids), _METRIC_QUERIES_PER_CALL):
            batch = list(option_ids[start : start + _METRIC_QUERIES_PER_CALL])
            # Query ids must match ^[a-z][a-zA-Z0-9_]*$: option ids may not, so they are numbered.
            by_query = {f"o{index}": option_id for index, option_id in enumerate(batch)}
            queries = [
                {
                    "Id": query_id,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": metric_names.NAMESPACE,
                            "MetricName": metric_names.PROVIDER_CALLS,
                            "Dimensions": [
                                {"Name": metric_names.SERVICE_DIMENSION, "Value": metric_names.SERVICE},
                                {"Name": metric_names.OPTION_DIMENSION, "Value": option_id},
                            ],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": True,
                }
                for query_id, option_id in by_query.items()
            ]
            token: str | None = None
            while True:
                page = self._client.get_metric_data(
                    MetricDataQueries=queries,
                    StartTime=start_at,
                    EndTime=end_at,
                    **({"NextToken": token} if token else {}),
                )
                for result in page.get("MetricDataResults", []):
                    option_id = by_query.get(result.get("Id", ""))
                    if option_id is None:
                        continue
                    for at, value in zip(
                        result.get("Timestamps", []), result.get("Values", []), strict=False
                    ):
                        moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
                        found[option_id].append(
                            MinuteReading(minute_label(moment.astimezone(UTC)), int(value), None)
                        )
                token = page.get("NextToken")
                if not token:
                    break
        return found


class ServiceQuotasBedrock:
    """Bedrock's quotas in a region; ``client_for(region)`` gives a Service Quotas client there."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self._client_for = client_for

    def bedrock_quotas(self, region: str) -> Sequence[ServiceQuota]:
        client = self._client_for(region)
        quotas: list[ServiceQuota] = []
        token: str | None = None
        while True:
            page = client.list_service_quotas(
                ServiceCode=BEDROCK_SERVICE_CODE, MaxResults=100, **({"NextToken": token} if token else {})
            )
            for quota in page.get("Quotas", []):
                if "QuotaName" not in quota or "Value" not in quota:
                    continue
                quotas.append(
                    ServiceQuota(
                        code=str(quota.get("QuotaCode", "")),
                        name=str(quota["QuotaName"]),
                        value=float(quota["Value"]),
                        adjustable=bool(quota.get("Adjustable", False)),
                        region=region,
                    )
                )
            token = page.get("NextToken")
            if not token:
                return quotas
