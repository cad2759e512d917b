"""One spelling of every table key: the synthesized tables, the stores and the workflows' DynamoDB
tasks all use ``switchboard.contract.tables``.

Renaming a key in infra without the stores (or the other way round) fails here: the stores run
against tables created from the synthesized template's own key schema, and the ASL's DynamoDB
tasks are read against the table each ``${Substitution}`` names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import constants
from switchboard.circuits.policy import CircuitState, Outcome
from switchboard.circuits.store import CircuitStore
from switchboard.contract import metrics as metric_names
from switchboard.contract import tables
from switchboard.keys import ApiKeyStore
from switchboard.metering import GroupBy, Metering, Usage
from switchboard.options.errors import OptionNotFound
from switchboard.options.model import BreakerPolicy, LlmOption
from switchboard.options.store import OptionsStore
from switchboard.usage_store import DynamoUsageStore
from tests.fakes import ManualClock, RecordedEvents

# Construct ids of the tables (infra) → their names in the contract.
TABLE_CONSTRUCTS = {
    "OptionsTable": "options",
    "KeysTable": "keys",
    "CircuitTable": "circuits",
    "CacheTable": "cache",
    "DeploymentsTable": "deployments",
    "UsageTable": "usage",
    "AdaptersTable": "adapters",
}
WITH_TTL = {"circuits", "cache", "usage"}


def synthesized_tables(template_json: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Contract table name → (logical id, properties) of every table in the template."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in template_json["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        names = [name for construct, name in TABLE_CONSTRUCTS.items() if construct in logical_id]
        assert len(names) == 1, f"table {logical_id} is none (or several) of {sorted(TABLE_CONSTRUCTS)}"
        assert names[0] not in found, f"two {names[0]} tables: {found[names[0]][0]}, {logical_id}"
        found[names[0]] = (logical_id, resource["Properties"])
    return found


@pytest.fixture(scope="module")
def synthesized(template_json: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return synthesized_tables(template_json)


def test_every_table_is_keyed_as_the_contract_says(
    synthesized: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    assert set(synthesized) == set(tables.KEY_SCHEMAS)
    for name, (logical_id, props) in synthesized.items():
        keys = tables.KEY_SCHEMAS[name]
        assert props["KeySchema"] == [
            {"AttributeName": key, "KeyType": kind}
            for key, kind in zip(keys, ("HASH", "RANGE"), strict=False)
        ], logical_id
        assert props["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"} for key in keys]
        ttl = props.get("TimeToLiveSpecification")
        if name in WITH_TTL:
            assert ttl == {"AttributeName": tables.TTL_ATTRIBUTE, "Enabled": True}, logical_id
        else:
            assert ttl is None, logical_id


# --- the stores, on tables made from the template's key schema ---------------------------------------


@pytest.fixture
def ddb(
    aws_credentials: None, synthesized: dict[str, tuple[str, dict[str, Any]]]
) -> Iterator[tuple[Any, dict[str, str]]]:
    """A moto DynamoDB holding one table per synthesized table, keyed exactly as synthesized."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        names: dict[str, str] = {}
        for name, (_, props) in synthesized.items():
            names[name] = f"test-{name}"
            client.create_table(
                TableName=names[name],
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode="PAY_PER_REQUEST",
            )
        yield client, names


def test_the_options_store_addresses_the_synthesized_options_table(ddb: tuple[Any, dict[str, str]]) -> None:
    client, names = ddb
    store = OptionsStore(names["options"], client=client, ttl_s=0)
    created = store.put(
        LlmOption.from_dict({"id": "o1", "provider": "mock"}), expected_version=None, updated_by="t"
    )
    store.put(created, expected_version=created.version, updated_by="t")
    assert [o.id for o in store.all()] == ["o1"]
    store.delete("o1", expected_version=2)
    with pytest.raises(OptionNotFound):
        store.delete("o1")


def test_the_keys_store_addresses_the_synthesized_keys_table(ddb: tuple[Any, dict[str, str]]) -> None:
    client, names = ddb
    store = ApiKeyStore(names["keys"], client=client)
    key, record = store.create("acme", "standard")
    assert store.lookup(key) == record and store.get(record.key_id) == record
    assert store.revoke(record.key_id).status == "revoked"
    store.delete(record.key_id)
    assert store.lookup(key) is None


def test_the_circuit_store_addresses_the_synthesized_circuit_table(ddb: tuple[Any, dict[str, str]]) -> None:
    """Every operation, with fail-open watched: a key the table does not have would only show as a
    ``CircuitStoreUnavailable`` event and a CLOSED circuit."""
    client, names = ddb
    clock = ManualClock(datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC))
    events = RecordedEvents()
    store = CircuitStore(names["circuits"], client=client, clock=clock.utcnow, on_event=events, cache_ttl_s=0)
    policy = BreakerPolicy(failure_threshold=1)

    opened = store.record_result("o1", policy, Outcome(success=False, error_class="timeout"), actor="test")

    assert opened.snapshot.state is CircuitState.OPEN
    assert store.get("o1").state is CircuitState.OPEN
    assert store.soonest_reopening(["o1", "o2"]) == opened.snapshot.open_until
    assert not store.acquire_probe("o1", policy, owner="r2", actor="test").granted
    store.force("o2", "open", until=None, actor="test")
    assert [option_id for option_id, _ in store.list()] == ["o1", "o2"]
    (event,) = store.events("o1")
    assert event[tables.CIRCUIT_PARTITION_KEY] == "o1" and event[tables.TTL_ATTRIBUTE] > 0
    assert metric_names.CIRCUIT_STORE_UNAVAILABLE not in events.names()


def test_the_usage_store_addresses_the_synthesized_usage_table(ddb: tuple[Any, dict[str, str]]) -> None:
    client, names = ddb
    now = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
    events = RecordedEvents()
    metering = Metering(DynamoUsageStore(names["usage"], client=client), on_event=events, clock=lambda: now)
    usage = Usage(
        tenant="acme", route="chat", option_id="o1", key_id="k", prompt_tokens=5, completion_tokens=2
    )

    assert metering.record(usage), events.names()
    (totals,) = metering.totals(tenant="acme", since=now, by=GroupBy.ROUTE).values()
    assert (totals.prompt_tokens, totals.completion_tokens, totals.requests) == (5, 2, 1)


def test_the_tenant_adapters_store_addresses_the_synthesized_adapters_table(
    ddb: tuple[Any, dict[str, str]],
) -> None:
    from switchboard.lifecycle.adapter_store import (
        AdapterChange,
        AdapterRef,
        AdapterState,
        DynamoTenantAdapterStore,
        HistoryEvent,
        TenantAdapter,
    )

    client, names = ddb
    store = DynamoTenantAdapterStore(names["adapters"], client=client)
    serving = TenantAdapter("lora", "acme", AdapterState.LIVE, live=AdapterRef("arn:p/1", 1, "lora-v1-x"))
    store.write(
        serving,
        expected_live_arn=None,
        change=AdapterChange("lora", "acme", HistoryEvent.DEPLOYED, "t", "e", serving),
    )
    assert store.get("lora", "acme") == serving
    assert store.list_family("lora").adapters == [serving]
    assert [h["event"] for h in store.history("lora", "acme")] == ["deployed"]


# --- the workflows' DynamoDB tasks -----------------------------------------------------------------


def _dynamodb_tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state.get("Type") == "Task" and ":dynamodb:" in str(state.get("Resource", "")):
            yield name, state
        for branch in state.get("Branches", []):
            yield from _dynamodb_tasks(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _dynamodb_tasks(state[key]["States"])


def test_the_workflows_dynamodb_tasks_use_the_key_names_of_the_table_they_name(
    template_json: dict[str, Any], synthesized: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    name_of_table = {logical_id: name for name, (logical_id, _) in synthesized.items()}
    machines = [
        resource["Properties"].get("DefinitionSubstitutions", {})
        for resource in template_json["Resources"].values()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    checked: dict[str, set[str]] = {}
    for asl in (constants.REQUEST_WORKFLOW_ASL, constants.MODEL_DEPLOYMENT_ASL):
        tasks = list(_dynamodb_tasks(json.loads(asl.read_text())["States"]))
        placeholders = {(s.get("Parameters") or s.get("Arguments"))["TableName"] for _, s in tasks}
        # the state machine made from this definition: the one that fills its table placeholders
        (substitutions,) = [m for m in machines if {f"${{{k}}}" for k in m} >= placeholders]
        for state_name, state in tasks:
            parameters = state.get("Parameters") or state.get("Arguments")
            table = name_of_table[substitutions[parameters["TableName"][2:-1]]["Ref"]]
            keys = set(tables.KEY_SCHEMAS[table])
            if "Key" in parameters:
                assert set(parameters["Key"]) == keys, (
                    f"{asl.name} {state_name}: Key {sorted(parameters['Key'])}"
                )
            else:
                assert keys <= set(parameters["Item"]), f"{asl.name} {state_name}: Item lacks {sorted(keys)}"
                if table in WITH_TTL:  # an item without the TTL attribute would be kept forever
                    assert tables.TTL_ATTRIBUTE in parameters["Item"], f"{asl.name} {state_name}: no TTL"
            checked.setdefault(asl.name, set()).add(table)
    assert checked == {
        constants.REQUEST_WORKFLOW_ASL.name: {"circuits", "cache"},
        constants.MODEL_DEPLOYMENT_ASL.name: {"deployments"},
    }
