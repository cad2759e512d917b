"""The local front door caches the authorizer's answers as API Gateway does (per key, for the TTL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchboard_local.emulation import authorizer_cache_ttl_s
from switchboard_local.front_door import AuthorizerCache, FrontDoor

ROOT = Path(__file__).resolve().parents[2]
TIERS = {"standard": {"rateLimit": 100.0, "burstLimit": 100.0}}
POLICY = {"principalId": "tenant-a", "context": {"tenant": "tenant-a", "tier": "standard"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_served_from_the_cache_until_the_ttl() -> None:
    clock = Clock()
    cache = AuthorizerCache(60.0, clock)
    cache.put("Bearer sk-a", POLICY)
    clock.now += 59.9
    assert cache.get("Bearer sk-a") == POLICY
    assert cache.get("Bearer sk-b") is None  # keyed by the identity source's value
    clock.now += 0.1
    assert cache.get("Bearer sk-a") is None


def test_a_zero_ttl_turns_the_cache_off() -> None:
    cache = AuthorizerCache(0.0)
    cache.put("Bearer sk-a", POLICY)
    assert cache.get("Bearer sk-a") is None


def test_the_local_ttl_is_the_deployed_one() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    assert authorizer_cache_ttl_s() == float(context["authorizer_cache_ttl_s"]) > 0
    assert FrontDoor(port=0, tiers=TIERS).authorizer_cache.ttl_s == authorizer_cache_ttl_s()


def _event(authorization: str | None) -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return {
        "type": "REQUEST",
        "methodArn": "arn",
        "headers": headers,
        "httpMethod": "GET",
        "path": "/v1/models",
    }


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The authorizer replaced by one that allows `Bearer good` and refuses anything else."""
    from handlers import authorizer

    seen: list[str | None] = []

    def fake(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        value = event["headers"].get("Authorization")
        seen.append(value)
        if value != "Bearer good":
            raise Exception("Unauthorized")
        return POLICY

    monkeypatch.setattr(authorizer, "handler", fake)
    return seen


def test_the_front_door_calls_the_authorizer_once_per_key_within_the_ttl(calls: list[str | None]) -> None:
    door = FrontDoor(port=0, tiers=TIERS, authorizer_ttl_s=60.0)
    try:
        for _ in range(3):
            assert door.authorize(_event("Bearer good")) == POLICY
        assert calls == ["Bearer good"]
        # A revoked key would keep working here until the TTL, as in AWS; a refusal is never cached:
        for _ in range(2):
            with pytest.raises(Exception, match="Unauthorized"):
                door.authorize(_event("Bearer bad"))
        with pytest.raises(Exception, match="Unauthorized"):
            door.authorize(_event(None))
        assert calls == ["Bearer good", "Bearer bad", "Bearer bad", None]
    finally:
        door.stop()


def test_without_a_ttl_every_request_calls_the_authorizer(calls: list[str | None]) -> None:
    door = FrontDoor(port=0, tiers=TIERS, authorizer_ttl_s=0)
    try:
        door.authorize(_event("Bearer good"))
        door.authorize(_event("Bearer good"))
        assert calls == ["Bearer good", "Bearer good"]
    finally:
        door.stop()
