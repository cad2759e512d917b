"""The shared fakes keep the shape of what they stand in for, and behave as it does where tests rely on it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from switchboard.chat import CircuitReader, OptionCatalogue, Payloads, Routing
from switchboard.circuits.service import CircuitLedger, OptionSource
from switchboard.circuits.store import CircuitStore
from switchboard.keys import ApiKeyNotFound, ApiKeyStore
from switchboard.lifecycle.adapter_store import DynamoTenantAdapterStore, TenantAdapterStore
from switchboard.lifecycle.errors import SmokeTestFailed
from switchboard.lifecycle.model import PackageVersion
from switchboard.lifecycle.registry import SageMakerRegistry
from switchboard.lifecycle.service import ModelRegistry, VersionedOptions
from switchboard.options.errors import VersionConflict
from switchboard.options.model import LlmOption
from switchboard.options.store import OptionsStore
from switchboard.workflow import WorkflowRunner
from tests.fakes import (
    FixedCircuits,
    InMemoryCircuits,
    InMemoryKeyStore,
    InMemoryOptions,
    InMemoryPayloads,
    InMemoryRegistry,
    InMemoryTenantAdapters,
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
        (InMemoryCircuits, CircuitLedger),
        (InMemoryOptions, VersionedOptions),
        (InMemoryRegistry, ModelRegistry),
        (InMemoryTenantAdapters, TenantAdapterStore),
        # and the real adapters keep to the Protocols their services declare
        (CircuitStore, CircuitLedger),
        (OptionsStore, VersionedOptions),
        (SageMakerRegistry, ModelRegistry),
        (DynamoTenantAdapterStore, TenantAdapterStore),
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


def test_option_writes_are_versioned_and_conditional_as_the_store_makes_them() -> None:
    options = InMemoryOptions()
    created = options.put(_option("a"), expected_version=None, updated_by="t")
    assert created.version == 1 and created.updated_by == "t" and options.get("a") == created
    with pytest.raises(VersionConflict) as exists:
        options.put(_option("a"), expected_version=None, updated_by="t")
    assert exists.value.current_version == 1
    assert options.put(created, expected_version=1, updated_by="u").version == 2
    with pytest.raises(VersionConflict):
        options.put(created, expected_version=1, updated_by="u")  # a stale writer loses
    with pytest.raises(VersionConflict):
        options.put(_option("b"), expected_version=3, updated_by="u")  # no such option


def test_registry_lists_newest_first_archives_and_deletes_once() -> None:
    registry = InMemoryRegistry(endpoint_configs={"g-v1-a", "g-v2-b"}, models={"g-v1-a"})
    for number in (1, 3, 2):
        registry.add_version(
            PackageVersion(arn=f"arn:{number}", group="g", version=number, approval="Approved")
        )
    assert [v.version for v in registry.list_versions("g")] == [3, 2, 1] and registry.list_versions("h") == []
    registry.archive("arn:1", "old")
    assert registry.describe_version("arn:1").stage == "Archived"
    assert registry.endpoint_configs_named("g-v1-") == ["g-v1-a"]
    assert (
        registry.delete_endpoint_config("g-v1-a") is True
        and registry.delete_endpoint_config("g-v1-a") is False
    )
    with pytest.raises(SmokeTestFailed):
        registry.smoke_invoke("missing-endpoint", None, "hi")


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
