"""CircuitStore against moto's DynamoDB: conditional writes, transactional events, fail-open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from switchboard.circuits.policy import CircuitSnapshot, CircuitState, Outcome
from switchboard.circuits.service import CircuitService
from switchboard.circuits.store import EVENT_UNAVAILABLE, CircuitStore, snapshot_from_item, snapshot_to_item
from switchboard.circuits.timefmt import from_iso
from switchboard.options.model import BreakerPolicy, LlmOption
from tests.fakes import InMemoryCircuits, InMemoryOptions, ManualClock
from tests.fakes.threads import HeldThreads

TABLE = "circuits"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
FAIL = Outcome(success=False, error_class="unavailable", message="boom")


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


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def make_store(ddb: Any, clock: ManualClock, **kwargs: Any) -> CircuitStore:
    return CircuitStore(TABLE, client=ddb, clock=clock.utcnow, cache_ttl_s=0, **kwargs)


def raw_state(ddb: Any, option_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(
        TableName=TABLE, Key={"pk": {"S": option_id}, "sk": {"S": "STATE"}}, ConsistentRead=True
    ).get("Item")
    return item


def events(ddb: Any, option_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": option_id}, ":e": {"S": "EVENT#"}},
    )["Items"]
    return items


def open_circuit(store: CircuitStore, option_id: str, policy: BreakerPolicy) -> None:
    for _ in range(policy.failure_threshold):
        store.record(option_id, policy, FAIL, actor="workflow:req-1")
    assert store.get(option_id).state is CircuitState.OPEN


def test_missing_item_is_closed(ddb: Any, clock: ManualClock) -> None:
    store = make_store(ddb, clock)
    assert store.get("nope") == CircuitSnapshot()
    decision = store.acquire_probe("nope", BreakerPolicy(), owner="r", actor="workflow:r")
    assert decision.granted and decision.state is CircuitState.CLOSED
    assert raw_state(ddb, "nope") is None  # a CLOSED circuit with no history writes nothing


def test_opening_writes_state_and_event_raw_types(ddb: Any, clock: ManualClock) -> None:
    store = make_store(ddb, clock)
    policy = BreakerPolicy(failure_threshold=3, window_s=60, cooldown_s=30)
    transitions = [store.record("opt-a", policy, FAIL, actor="workflow:req-1") for _ in range(3)]
    assert transitions[:2] == [None, None]
    opened = transitions[2]
    assert opened is not None and opened.kind == "opened"

    item = raw_state(ddb, "opt-a")
    assert item is not None
    assert item["state"] == {"S": "OPEN"}
    assert ISO.match(item["open_until"]["S"])
    assert item["open_until"]["S"] == "2026-11-25T12:00:30Z"
    assert item["version"] == {"N": "3"}
    assert "forced" not in item

    (event,) = events(ddb, "opt-a")
    assert re.match(r"^EVENT#2026-11-25T12:00:00\.000Z#0000000003[0-9a-f]{4}$", event["sk"]["S"])
    assert event["from_state"] == {"S": "CLOSED"} and event["to_state"] == {"S": "OPEN"}
    assert event["actor"] == {"S": "workflow:req-1"}
    assert event["reason"] == {"S": "3 failures in 60s: unavailable"}
    assert event["error_class"] == {"S": "unavailable"}
    assert event["open_until"] == item["open_until"]
    assert ISO.match(event["at"]["S"])
    assert int(event["expires_at"]["N"]) == int(T0.timestamp()) + 30 * 86400


def test_round_trip_of_every_attribute(ddb: Any, clock: ManualClock) -> None:
    snapshot = CircuitSnapshot(
        state=CircuitState.HALF_OPEN,
        open_until=T0,
        opened_at=T0 - timedelta(seconds=30),
        forced=None,
        failures=(T0 - timedelta(milliseconds=1500), T0 - timedelta(milliseconds=7)),
        calls=((1764072000, 3), (1764072006, 1)),
        consecutive_opens=2,
        cooldown_s=60,
        leases=(("req-1", T0 + timedelta(seconds=60)),),
        half_open_successes=1,
        last_error="timeout: slow",
        version=7,
    )
    assert snapshot_from_item(snapshot_to_item("x", snapshot, updated_at=T0)) == snapshot


def test_transition_event_in_same_transaction(
    ddb: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state change and its event go in one TransactWriteItems; a non-transition is a plain put."""
    store = make_store(ddb, clock)
    calls: list[tuple[str, Any]] = []
    real_transact, real_put = ddb.transact_write_items, ddb.put_item

    def transact(**kwargs: Any) -> Any:
        calls.append(("transact", kwargs))
        return real_transact(**kwargs)

    def put(**kwargs: Any) -> Any:
        calls.append(("put", kwargs))
        return real_put(**kwargs)

    monkeypatch.setattr(ddb, "transact_write_items", transact)
    monkeypatch.setattr(ddb, "put_item", put)
    policy = BreakerPolicy(failure_threshold=2)
    store.record("opt-t", policy, FAIL, actor="workflow:r1")
    store.record("opt-t", policy, FAIL, actor="workflow:r2")
    assert [c[0] for c in calls] == ["put", "transact"]
    items = calls[1][1]["TransactItems"]
    assert [i["Put"]["Item"]["sk"]["S"][:6] for i in items] == ["STATE", "EVENT#"]
    assert items[0]["Put"]["ConditionExpression"] == "#v = :expected"
    assert items[0]["Put"]["ExpressionAttributeValues"] == {":expected": {"N": "1"}}


def test_lost_race_rolls_back_the_event(ddb: Any, clock: ManualClock) -> None:
    """A transaction whose state condition fails writes no event either (then retries on a re-read)."""
    store = make_store(ddb, clock, max_attempts=1)
    policy = BreakerPolicy(failure_threshold=1)
    stale = store.get("opt-r")  # version 0
    ddb.put_item(
        TableName=TABLE,
        Item=snapshot_to_item("opt-r", CircuitSnapshot(version=5), updated_at=T0),
    )
    from switchboard.circuits.policy import on_outcome

    new, transition = on_outcome(stale, policy, FAIL, T0)
    assert transition is not None
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        store._write("opt-r", stale, new, transition, actor="workflow:x")
    assert events(ddb, "opt-r") == []
    assert raw_state(ddb, "opt-r")["state"] == {"S": "CLOSED"}  # type: ignore[index]
    # the public call re-reads and succeeds
    store.max_attempts = 3
    assert store.record("opt-r", policy, FAIL, actor="workflow:x") is not None
    assert len(events(ddb, "opt-r")) == 1


class RaceClient:
    """Wraps the client: the first get_item is answered with the item as it was, after `before_return`."""

    def __init__(self, inner: Any, before_return: Any) -> None:
        self._inner = inner
        self._before_return = before_return
        self.get_calls = 0
        self.write_failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_item(self, **kwargs: Any) -> Any:
        self.get_calls += 1
        response = self._inner.get_item(**kwargs)
        if self.get_calls == 1:
            self._before_return()  # the other contender reads, decides and writes now
        return response

    def transact_write_items(self, **kwargs: Any) -> Any:
        try:
            return self._inner.transact_write_items(**kwargs)
        except Exception:
            self.write_failures += 1
            raise

    def put_item(self, **kwargs: Any) -> Any:
        try:
            return self._inner.put_item(**kwargs)
        except Exception:
            self.write_failures += 1
            raise


def test_two_contenders_one_probe_lease(ddb: Any, clock: ManualClock) -> None:
    """Both read the same OPEN snapshot; A's conditional write wins; B's fails, re-reads, is refused."""
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=30, half_open_probes=1)
    setup = make_store(ddb, clock)
    open_circuit(setup, "opt-p", policy)
    clock.advance(31)
    version_before = int(raw_state(ddb, "opt-p")["version"]["N"])  # type: ignore[index]

    store_a = make_store(ddb, clock)
    results: dict[str, Any] = {}

    def a_goes_first() -> None:
        results["a"] = store_a.acquire_probe("opt-p", policy, owner="req-A", actor="workflow:req-A")

    race = RaceClient(ddb, a_goes_first)
    store_b = make_store(race, clock)
    results["b"] = store_b.acquire_probe("opt-p", policy, owner="req-B", actor="workflow:req-B")

    assert results["a"].granted and results["a"].state is CircuitState.HALF_OPEN
    assert results["a"].transition is not None and results["a"].transition.kind == "half_opened"
    assert not results["b"].granted and results["b"].state is CircuitState.HALF_OPEN
    assert race.write_failures == 1 and race.get_calls == 2  # lost once, re-read, refused

    item = raw_state(ddb, "opt-p")
    assert item is not None
    assert int(item["version"]["N"]) == version_before + 1
    assert list(item["probe_leases"]["M"]) == ["req-A"]
    halves = [e for e in events(ddb, "opt-p") if e["to_state"]["S"] == "HALF_OPEN"]
    assert len(halves) == 1 and halves[0]["actor"] == {"S": "workflow:req-A"}


def test_probe_success_closes_and_failure_reopens_longer(ddb: Any, clock: ManualClock) -> None:
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=30, max_cooldown_s=100)
    store = make_store(ddb, clock)
    open_circuit(store, "opt-c", policy)
    clock.advance(30)
    assert store.acquire_probe("opt-c", policy, owner="p1", actor="workflow:p1").granted
    reopened = store.record("opt-c", policy, Outcome(False, "timeout", owner="p1"), actor="workflow:p1")
    assert reopened is not None and reopened.kind == "reopened"
    assert raw_state(ddb, "opt-c")["open_until"]["S"] == "2026-11-25T12:01:30Z"  # type: ignore[index]
    clock.advance(60)
    assert store.acquire_probe("opt-c", policy, owner="p2", actor="workflow:p2").granted
    closed = store.record("opt-c", policy, Outcome(True, probe=True, owner="p2"), actor="workflow:p2")
    assert closed is not None and closed.kind == "closed"
    item = raw_state(ddb, "opt-c")
    assert item is not None and item["state"] == {"S": "CLOSED"} and "open_until" not in item
    kinds = [e["transition"] for e in reversed(store.events("opt-c"))]
    assert kinds == ["opened", "half_opened", "reopened", "half_opened", "closed"]


def test_healthy_path_makes_no_calls(ddb: Any, clock: ManualClock) -> None:
    class Forbidden:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"unexpected DynamoDB call {name}")

    store = CircuitStore(TABLE, client=Forbidden(), clock=clock.utcnow, cache_ttl_s=60)
    store._remember("opt-h", CircuitSnapshot())
    assert store.record("opt-h", BreakerPolicy(), Outcome(True, latency_ms=5), actor="workflow:x") is None


def test_fail_open_when_table_missing(aws_credentials: None, clock: ManualClock) -> None:
    with mock_aws():
        seen: list[tuple[str, dict[str, Any]]] = []
        store = CircuitStore(
            "no-such-table",
            client=boto3.client("dynamodb", region_name="us-east-1"),
            clock=clock.utcnow,
            on_event=lambda name, fields: seen.append((name, fields)),
        )
        assert store.get("opt") == CircuitSnapshot()
        assert store.record("opt", BreakerPolicy(failure_threshold=1), FAIL, actor="workflow:r") is None
        decision = store.acquire_probe("opt", BreakerPolicy(), owner="r", actor="workflow:r")
        assert decision.granted and decision.state is CircuitState.CLOSED and decision.open_until is None
        assert store.soonest_reopening(["opt"]) is None
        assert [name for name, _ in seen] == ["CircuitStoreUnavailable"] * 4
        assert seen[1][1]["operation"] == "record" and seen[1][1]["reason"] == "ResourceNotFoundException"


def test_fail_open_on_unreachable_endpoint(clock: ManualClock, aws_credentials: None) -> None:
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=0.2, read_timeout=0.2, retries={"max_attempts": 0}),
    )
    store = CircuitStore(TABLE, client=client, clock=clock.utcnow)
    assert store.acquire_probe("opt", BreakerPolicy(), owner="r", actor="workflow:r").granted
    assert store.record("opt", BreakerPolicy(), FAIL, actor="workflow:r") is None


def test_soonest_reopening(ddb: Any, clock: ManualClock) -> None:
    store = make_store(ddb, clock)
    open_circuit(store, "slow", BreakerPolicy(failure_threshold=1, cooldown_s=300))
    open_circuit(store, "fast", BreakerPolicy(failure_threshold=1, cooldown_s=20))
    store.record("closed-one", BreakerPolicy(failure_threshold=5), FAIL, actor="workflow:x")
    ids = ["slow", "fast", "closed-one", "never-seen"]
    assert store.soonest_reopening(ids) == T0 + timedelta(seconds=20)
    clock.advance(25)  # "fast" cooled down: only future reopenings count
    assert store.soonest_reopening(ids) == T0 + timedelta(seconds=300)
    assert store.soonest_reopening([]) is None
    many = [f"id-{i}" for i in range(150)] + ["slow"]
    assert store.soonest_reopening(many) == T0 + timedelta(seconds=300)


def test_force_with_expiry_and_sticky(ddb: Any, clock: ManualClock) -> None:
    store = make_store(ddb, clock)
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=30)
    transition = store.force(
        "opt-f", "open", until=T0 + timedelta(minutes=10), actor="cli:ops", reason="incident"
    )
    assert transition.kind == "forced_open" and transition.from_state is CircuitState.CLOSED
    item = raw_state(ddb, "opt-f")
    assert item is not None
    assert item["state"] == {"S": "OPEN"} and item["forced"] == {"S": "open"}
    assert item["open_until"] == {"S": "2026-11-25T12:10:00Z"} == item["forced_until"]
    assert item["forced_by"] == {"S": "cli:ops"} and item["forced_reason"] == {"S": "incident"}
    # successes do not close a forced-open circuit; probes wait for the expiry
    store.record("opt-f", policy, Outcome(True, probe=True, owner="x"), actor="workflow:x")
    assert not store.acquire_probe("opt-f", policy, owner="x", actor="workflow:x").granted
    clock.advance(600)
    decision = store.acquire_probe("opt-f", policy, owner="x", actor="workflow:x")
    assert decision.granted and decision.state is CircuitState.HALF_OPEN
    assert "forced" not in raw_state(ddb, "opt-f")  # type: ignore[operator]

    store.force("opt-f", "open", until=None, actor="cli:ops", reason=None)
    item = raw_state(ddb, "opt-f")
    assert item is not None
    assert item["open_until"] == {"S": "9999-12-31T23:59:59Z"} and "forced_until" not in item
    clock.advance(10**7)
    assert not store.acquire_probe("opt-f", policy, owner="y", actor="workflow:y").granted

    store.force("opt-f", "closed", until=None, actor="cli:ops", reason="all clear")
    for _ in range(5):
        store.record("opt-f", policy, FAIL, actor="workflow:z")
    assert store.get("opt-f").state is CircuitState.CLOSED
    actors = [e["actor"] for e in store.events("opt-f")]
    assert actors[0] == "cli:ops" and len(actors) == 4
    for event in store.events("opt-f"):
        assert ISO.match(event["at"])
        if "open_until" in event:
            assert ISO.match(event["open_until"])
            from_iso(event["open_until"])


def test_list_and_events_order(ddb: Any, clock: ManualClock) -> None:
    store = make_store(ddb, clock)
    open_circuit(store, "b-opt", BreakerPolicy(failure_threshold=1))
    clock.advance(1)
    store.force("b-opt", "closed", until=None, actor="cli:ops", reason=None)
    store.force("a-opt", "open", until=None, actor="cli:ops", reason=None)
    listed = store.list()
    assert [option_id for option_id, _ in listed] == ["a-opt", "b-opt"]
    assert [s.state for _, s in listed] == [CircuitState.OPEN, CircuitState.CLOSED]
    newest_first = store.events("b-opt")
    assert [e["to_state"] for e in newest_first] == ["CLOSED", "OPEN"]
    assert store.events("b-opt", limit=1)[0]["transition"] == "forced_closed"


def test_the_in_memory_fake_answers_the_service_as_the_store_does(ddb: Any, clock: ManualClock) -> None:
    """The service's logic tests run on ``InMemoryCircuits``: one script, both ledgers, same answers."""
    options = InMemoryOptions(
        [LlmOption.from_dict({"id": "known", "provider": "mock", "breaker": {"failure_threshold": 1}})]
    )

    def script(service: CircuitService) -> list[dict[str, Any]]:
        answers = [
            service.record_failure("known", request_id="r1", error_class="timeout", message="slow"),
            service.record_failure("unknown", request_id="r2", error_class="timeout"),  # default policy
            service.acquire_probe("known", request_id="r3"),
        ]
        clock.advance(30)
        answers += [
            service.acquire_probe("known", request_id="r4"),
            service.acquire_probe("known", request_id="r5"),  # one probe at a time
            service.record_failure("known", request_id="r4"),  # the lease owner's failure reopens
        ]
        clock.advance(60)
        answers += [
            service.acquire_probe("known", request_id="r6"),
            service.record("known", success=True, probe=True, request_id="r6", latency_ms=10),
            service.record("known", success=True, request_id="r7", latency_ms=10),
        ]
        return answers

    stored = script(CircuitService(make_store(ddb, clock), options, on_transition=lambda *_: None))
    clock.now = T0.timestamp()
    fake = InMemoryCircuits(clock.utcnow)
    faked = script(CircuitService(fake, options, on_transition=lambda *_: None))

    assert faked == stored
    assert [a.get("transition") for a in stored if "transition" in a] == [
        "opened",
        "none",
        "reopened",
        "closed",
        "none",
    ]
    assert [e["transition"] for e in reversed(make_store(ddb, clock).events("known"))] == [
        t.kind for _, t in fake.transitions
    ]


def test_handler_dispatch(ddb: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import circuit as circuit_handler

    options_table = "options-for-circuits"
    ddb.create_table(
        TableName=options_table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("CIRCUIT_TABLE", TABLE)
    monkeypatch.setenv("OPTIONS_TABLE", options_table)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    circuit_handler.forget_cached_state()
    try:
        from switchboard_local.emulation import FakeLambdaContext

        for i in range(5):
            out = circuit_handler.handler(
                {
                    "action": "record_failure",
                    "option_id": "h-opt",
                    "request_id": f"r{i}",
                    "error_class": "unavailable",
                },
                FakeLambdaContext(),
            )
            assert set(out) == {"transition", "state", "open_until", "now"}
        assert out["transition"] == "opened" and ISO.match(out["open_until"]) and ISO.match(out["now"])
        probe = circuit_handler.handler(
            {"action": "acquire_probe", "option_id": "h-opt", "request_id": "r9"}, FakeLambdaContext()
        )
        assert probe["granted"] is False and probe["state"] == "OPEN"
        assert probe["open_until"] == out["open_until"]
        with pytest.raises(ValueError, match="unknown circuit action"):
            circuit_handler.dispatch({"action": "nope", "option_id": "h-opt"})
        # A success while OPEN (a call already in flight when it opened) is not a transition.
        res = circuit_handler.circuit_service().record(
            "h-opt", success=True, request_id="r10", latency_ms=3, policy=BreakerPolicy()
        )
        assert res["transition"] == "none" and res["state"] == "OPEN"
    finally:
        circuit_handler.forget_cached_state()


def test_no_lost_update_between_two_recorders(ddb: Any, clock: ManualClock) -> None:
    """Two failures recorded from the same snapshot: the loser re-reads, so both count."""
    policy = BreakerPolicy(failure_threshold=3)
    store_a = make_store(ddb, clock)
    store_a.record("opt-l", policy, FAIL, actor="workflow:r0")

    race = RaceClient(ddb, lambda: store_a.record("opt-l", policy, FAIL, actor="workflow:r1"))
    store_b = make_store(race, clock)
    transition = store_b.record("opt-l", policy, FAIL, actor="workflow:r2")
    assert race.write_failures == 1 and race.get_calls == 2
    assert transition is not None and transition.kind == "opened"  # the third failure, not lost


# --- stale-while-revalidate reads (the streaming path's setting) -------------------------------------
# CircuitStore's stale-while-revalidate reads (the streaming path's setting), against moto.
#
# Given a snapshot past its TTL but inside the stale window, ``get`` answers from memory at once and
# one background read per circuit refreshes it; past the window it reads on the path again; a
# transition this instance wrote while a refresh was in flight is never replaced by the refresh's
# older read; an unreadable table keeps the snapshot (and reports it) until the window ends. With the
# default window (0: the workflow's circuit tasks) an expired snapshot is read on the path, as before.

TTL_S, STALE_S = 2.0, 4.0
POLICY = BreakerPolicy(failure_threshold=1)


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
