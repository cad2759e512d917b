"""CircuitStore's stale-while-revalidate reads (the streaming path's setting), against moto.

Given a snapshot past its TTL but inside the stale window, ``get`` answers from memory at once and
one background read per circuit refreshes it; past the window it reads on the path again; a
transition this instance wrote while a refresh was in flight is never replaced by the refresh's
older read; an unreadable table keeps the snapshot (and reports it) until the window ends. With the
default window (0: the workflow's circuit tasks) an expired snapshot is read on the path, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.circuits.policy import CircuitState, Outcome
from switchboard.circuits.store import EVENT_UNAVAILABLE, CircuitStore
from switchboard.options.model import BreakerPolicy
from tests.fakes import ManualClock

TABLE = "circuits"
TTL_S, STALE_S = 2.0, 4.0
POLICY = BreakerPolicy(failure_threshold=1)
FAIL = Outcome(success=False, error_class="unavailable", message="boom")


class HeldThreads:
    """``start_thread`` that holds the targets until the test runs them."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, target: Callable[[], None]) -> None:
        self.pending.append(target)

    def run_all(self) -> None:
        pending, self.pending = self.pending, []
        for target in pending:
            target()


@pytest.fixture
def ddb(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


class World:
    def __init__(self, ddb: Any, *, stale_s: float = STALE_S) -> None:
        self.monotonic = ManualClock(1000.0)
        self.threads = HeldThreads()
        self.reads = 0
        self.events: list[tuple[str, dict[str, Any]]] = []
        ddb.meta.events.register("before-call.dynamodb.GetItem", self._count)
        self.reader = self._store(ddb, stale_s)
        # another instance (the workflow's circuit task) that opens circuits in the same table
        self.writer = CircuitStore(TABLE, client=ddb, clock=lambda: datetime(2026, 11, 30, tzinfo=UTC))

    def _count(self, **_: Any) -> None:
        self.reads += 1

    def _store(self, ddb: Any, stale_s: float) -> CircuitStore:
        return CircuitStore(
            TABLE,
            client=ddb,
            clock=lambda: datetime(2026, 11, 30, tzinfo=UTC),
            cache_ttl_s=TTL_S,
            cache_stale_s=stale_s,
            start_thread=self.threads,
            monotonic=self.monotonic,
            on_event=lambda name, fields: self.events.append((name, fields)),
        )

    def open_elsewhere(self, option_id: str = "a") -> None:
        self.writer.record(option_id, POLICY, FAIL, actor="workflow")


def test_within_the_ttl_nothing_is_read(ddb: Any) -> None:
    world = World(ddb)
    assert world.reader.get("a").state is CircuitState.CLOSED
    reads = world.reads
    world.monotonic.now += TTL_S - 0.1
    assert world.reader.get("a").state is CircuitState.CLOSED
    assert world.reads == reads and world.threads.pending == []


def test_expired_in_the_window_answers_from_memory_and_refreshes_once_in_the_background(ddb: Any) -> None:
    world = World(ddb)
    world.reader.get("a")
    world.open_elsewhere()
    reads = world.reads
    world.monotonic.now += TTL_S + 0.1

    assert world.reader.get("a").state is CircuitState.CLOSED  # what it held, at once
    assert world.reader.get("a").state is CircuitState.CLOSED  # still: the refresh is in flight
    assert world.reads == reads and len(world.threads.pending) == 1  # one refresh, not two

    world.threads.run_all()
    assert world.reads == reads + 1
    assert world.reader.get("a").state is CircuitState.OPEN  # the refresh landed
    assert world.threads.pending == []


def test_past_the_window_the_read_is_on_the_path(ddb: Any) -> None:
    world = World(ddb)
    world.reader.get("a")
    world.open_elsewhere()
    world.monotonic.now += TTL_S + STALE_S + 0.1
    assert world.reader.get("a").state is CircuitState.OPEN
    assert world.threads.pending == []


def test_a_transition_written_meanwhile_is_not_replaced_by_the_refresh(ddb: Any) -> None:
    world = World(ddb)
    world.reader.get("a")
    world.monotonic.now += TTL_S + 0.1
    world.reader.get("a")  # starts a refresh (held)
    # this instance records a failure: the circuit opens and its snapshot is cached at once ...
    world.reader.record("a", POLICY, FAIL, actor="stream")
    assert world.reader.get("a").state is CircuitState.OPEN
    # ... and the refresh, begun before, does not put an older snapshot back
    world.writer.force("a", "closed", until=None, actor="operator")  # (the table moves on too)
    world.threads.run_all()
    assert world.reader.get("a").state is CircuitState.OPEN


def test_an_unreadable_table_keeps_the_snapshot_until_the_window_ends(ddb: Any) -> None:
    world = World(ddb)
    world.open_elsewhere()
    assert world.reader.get("a").state is CircuitState.OPEN
    world.monotonic.now += TTL_S + 0.1
    ddb.delete_table(TableName=TABLE)
    assert world.reader.get("a").state is CircuitState.OPEN
    world.threads.run_all()
    assert [name for name, _ in world.events] == [EVENT_UNAVAILABLE]
    assert world.reader.get("a").state is CircuitState.OPEN  # kept, another refresh started
    world.monotonic.now += STALE_S
    assert world.reader.get("a").state is CircuitState.CLOSED  # on the path: fails open, as before


def test_without_a_window_an_expired_snapshot_is_read_on_the_path(ddb: Any) -> None:
    world = World(ddb, stale_s=0)
    world.reader.get("a")
    world.open_elsewhere()
    world.monotonic.now += TTL_S + 0.1
    assert world.reader.get("a").state is CircuitState.OPEN
    assert world.threads.pending == []
