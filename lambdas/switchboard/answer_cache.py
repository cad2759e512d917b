"""The answer-cache table the request workflow writes, read and written for streamed requests.

The workflow's ``RememberAnswer`` puts ``{cache_key, tenant, answer (JSON text of the attempt's
result, maybe a claim check), option_id, route, expires_at}``; its ``Degrade_CachedAnswer`` /
``CachedAnswerFound?`` / ``CachedAnswerFresh?`` states serve an item only when its ``tenant``
equals the request's and ``expires_at`` is still ahead (DynamoDB's TTL deletes late). This reader
applies the same checks, so a streamed request is served exactly what the workflow would serve.
A read that fails is a miss, as the workflow's ``Catch`` makes it.

A streamed answer is written with :meth:`DynamoAnswerCache.put` in exactly the item shape
``RememberAnswer`` puts (``answer`` is the compact JSON text ``States.JsonToString`` makes,
``expires_at`` a number), so either path serves what the other cached.
"""

from __future__ import annotations

import json
from typing import Any

from switchboard.streaming import CachedAnswer


class DynamoAnswerCache:
    """``CachedAnswers`` over the cache table, through a DynamoDB client (``switchboard.aws``)."""

    def __init__(self, table_name: str, *, client: Any | None = None) -> None:
        self._table = table_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from switchboard import aws

            self._client = aws.client("dynamodb")
        return self._client

    def get(self, cache_key: str, *, tenant: str, now_epoch_s: int) -> CachedAnswer | None:
        try:
            item = self.client.get_item(TableName=self._table, Key={"cache_key": {"S": cache_key}}).get(
                "Item"
            )
        except Exception:  # botocore or the light client: the cache is optional, a failure is a miss
            return None
        return answer_from_item(item, tenant=tenant, now_epoch_s=now_epoch_s)

    def put(
        self,
        cache_key: str,
        *,
        tenant: str,
        answer: dict[str, Any],
        option_id: str,
        route: str,
        expires_at: int,
    ) -> None:
        """One ``PutItem`` (the only write the gateway may make on this table); raises on failure."""
        self.client.put_item(
            TableName=self._table,
            Item=answer_item(
                cache_key,
                tenant=tenant,
                answer=answer,
                option_id=option_id,
                route=route,
                expires_at=expires_at,
            ),
        )


def answer_item(
    cache_key: str, *, tenant: str, answer: dict[str, Any], option_id: str, route: str, expires_at: int
) -> dict[str, Any]:
    """The item ``RememberAnswer`` puts, in DynamoDB's attribute-value form."""
    return {
        "cache_key": {"S": cache_key},
        "tenant": {"S": tenant},
        "answer": {"S": json.dumps(answer, separators=(",", ":"), ensure_ascii=False)},
        "option_id": {"S": option_id},
        "route": {"S": route},
        "expires_at": {"N": str(int(expires_at))},
    }


def answer_from_item(item: Any, *, tenant: str, now_epoch_s: int) -> CachedAnswer | None:
    """The cached answer in a DynamoDB item, or None: another tenant's, expired, or malformed."""
    if not isinstance(item, dict):
        return None
    owner = (item.get("tenant") or {}).get("S")
    if not tenant or owner != tenant:
        return None
    try:
        expires_at = int((item.get("expires_at") or {}).get("N", "0"))
        answer = json.loads((item.get("answer") or {}).get("S", ""))
    except (ValueError, TypeError):
        return None
    if expires_at <= now_epoch_s or not isinstance(answer, dict):
        return None
    option_id = (item.get("option_id") or {}).get("S") or "cache"
    return CachedAnswer(option_id=str(option_id), result=answer)
