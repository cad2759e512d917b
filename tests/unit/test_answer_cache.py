"""The answer-cache reader of streamed requests: the workflow's tenant and freshness checks."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from switchboard.answer_cache import DynamoAnswerCache, answer_from_item

ANSWER = {"text": "cached", "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1}


def _item(tenant: str = "acme", expires_at: int = 2000, answer: Any = ANSWER) -> dict[str, Any]:
    return {
        "cache_key": {"S": "acme#k"},
        "tenant": {"S": tenant},
        "answer": {"S": json.dumps(answer)},
        "option_id": {"S": "a"},
        "route": {"S": "chat"},
        "expires_at": {"N": str(expires_at)},
    }


def test_an_item_of_this_tenant_still_fresh_is_served() -> None:
    hit = answer_from_item(_item(), tenant="acme", now_epoch_s=1000)
    assert hit is not None and hit.option_id == "a" and hit.result == ANSWER


@pytest.mark.parametrize(
    ("item", "tenant"),
    [
        (_item(tenant="other"), "acme"),  # another tenant's answer is never served
        (_item(expires_at=1000), "acme"),  # expired (DynamoDB's TTL deletes late)
        (_item(answer=["not", "an", "object"]), "acme"),
        ({**_item(), "answer": {"S": "{broken"}}, "acme"),
        ({**_item(), "expires_at": {"N": "soon"}}, "acme"),
        (None, "acme"),
        (_item(tenant=""), ""),
    ],
)
def test_foreign_expired_or_malformed_items_are_misses(item: Any, tenant: str) -> None:
    assert answer_from_item(item, tenant=tenant, now_epoch_s=1000) is None


def test_reads_the_table_the_workflow_writes(emulated_aws: None) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="cache",
        KeySchema=[{"AttributeName": "cache_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "cache_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="cache", Item=_item())
    cache = DynamoAnswerCache("cache", client=client)
    assert cache.get("acme#k", tenant="acme", now_epoch_s=1000) is not None
    assert cache.get("acme#k", tenant="other", now_epoch_s=1000) is None
    assert cache.get("missing", tenant="acme", now_epoch_s=1000) is None
    assert (
        DynamoAnswerCache("no-such-table", client=client).get("acme#k", tenant="acme", now_epoch_s=1) is None
    )


def test_put_writes_the_item_remember_answer_writes(emulated_aws: None) -> None:
    """Same attributes, same types as the workflow's RememberAnswer task (read from the ASL), and
    the stored item is what `get` (and the workflow's Degrade_CachedAnswer) serves."""
    from pathlib import Path

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="cache",
        KeySchema=[{"AttributeName": "cache_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "cache_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    cache = DynamoAnswerCache("cache", client=client)
    answer = {**ANSWER, "text": "déjà vu"}
    cache.put("acme#k", tenant="acme", answer=answer, option_id="a", route="chat", expires_at=2000)

    item = client.get_item(TableName="cache", Key={"cache_key": {"S": "acme#k"}})["Item"]
    asl = json.loads((Path(__file__).parents[2] / "statemachines" / "request_workflow.asl.json").read_text())

    def find(states: dict[str, Any]) -> dict[str, Any] | None:
        for name, state in states.items():
            if name == "RememberAnswer":
                return dict(state)
            for branch in [state.get("Iterator"), state.get("ItemProcessor"), *state.get("Branches", [])]:
                found = find(branch["States"]) if branch else None
                if found:
                    return found
        return None

    remember = find(asl["States"])
    assert remember is not None
    expected = {
        name: next(iter(value)).removesuffix(".$") for name, value in remember["Parameters"]["Item"].items()
    }
    assert {name: next(iter(value)) for name, value in item.items()} == expected
    assert json.loads(item["answer"]["S"]) == answer
    hit = cache.get("acme#k", tenant="acme", now_epoch_s=1000)
    assert hit is not None and hit.result == answer and hit.option_id == "a"


def test_put_raises_when_the_table_refuses_so_the_stream_can_count_it(emulated_aws: None) -> None:
    cache = DynamoAnswerCache("no-such-table", client=boto3.client("dynamodb", region_name="us-east-1"))
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        cache.put("k", tenant="acme", answer=ANSWER, option_id="a", route="chat", expires_at=2000)
