"""The shared fakes keep the shape of what they stand in for, and behave as it does where tests rely on it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from switchboard.chat import CircuitReader, OptionCatalogue, Payloads, Routing
from switchboard.circuits.service import OptionSource
from switchboard.keys import ApiKeyNotFound, ApiKeyStore
from switchboard.options.model import LlmOption
from switchboard.workflow import WorkflowRunner
from tests.fakes import (
    FixedCircuits,
    InMemoryKeyStore,
    InMemoryOptions,
    InMemoryPayloads,
    ManualClock,
    ScriptedRunner,
    StaticRouting,
    UnavailableRouting,
)


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_") and name not in {"hash_key"}
    }


def _parameters(signature: inspect.Signature) -> list[tuple[str, Any, bool]]:
    return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in signature.parameters.values()]


@pytest.mark.parametrize(
    ("fake", "protocol"),
    [
        (StaticRouting, Routing),
        (UnavailableRouting, Routing),
        (InMemoryOptions, OptionCatalogue),
        (InMemoryOptions, OptionSource),
        (FixedCircuits, CircuitReader),
        (InMemoryPayloads, Payloads),
        (ScriptedRunner, WorkflowRunner),
        (InMemoryKeyStore, ApiKeyStore),
    ],
    ids=lambda c: c.__name__,
)
def test_a_fake_has_every_method_of_what_it_stands_for_with_the_same_parameters(
    fake: type, protocol: type
) -> None:
    wanted = _public_methods(protocol)
    have = _public_methods(fake)
    assert wanted, protocol
    for name, signature in wanted.items():
        assert name in have, f"{fake.__name__} lacks {name}"
        assert _parameters(have[name]) == _parameters(signature), name


def _option(oid: str) -> LlmOption:
    return LlmOption.from_dict({"id": oid, "provider": "mock"})


def test_options_answer_known_ids_and_fail_like_an_outage_when_told() -> None:
    options = InMemoryOptions([_option("a")])
    assert options.get_many(["a", "zz"]) == {"a": options.options["a"]} and options.get("zz") is None
    options.unavailable = True
    with pytest.raises(ConnectionError):
        options.get_many(["a"])


def test_payloads_go_by_reference_only_above_the_limit() -> None:
    payloads = InMemoryPayloads()
    small = payloads.wrap("k1", {"x": 1}, inline_limit=100)
    big = payloads.wrap("k2", {"x": "y" * 200}, inline_limit=100)
    assert small == {"x": 1} and set(big) == {"$ref"}
    assert payloads.unwrap(big) == {"x": "y" * 200} and payloads.unwrap(small) == small


def test_key_store_finds_by_bearer_key_and_forgets_deleted_keys() -> None:
    store = InMemoryKeyStore()
    key, record = store.create("acme", "standard", allowed_routes=["chat"])
    assert store.lookup(key) == record and store.lookup("sk-other") is None
    assert store.revoke(record.key_id).status == "revoked" and not store.get(record.key_id).active
    store.delete(record.key_id)
    assert store.lookup(key) is None and store.list() == []
    with pytest.raises(ApiKeyNotFound):
        store.get(record.key_id)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(100.0)
    clock.sleep(2.5)
    clock.advance(1)
    assert clock() == 103.5 and clock.slept == [2.5] and clock.utcnow().timestamp() == 103.5
