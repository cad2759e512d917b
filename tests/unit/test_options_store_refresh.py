"""OptionsStore's stale-while-revalidate refresh: the Scan runs off the request's path.

A fake DynamoDB client whose Scan can be held open (a threading.Event) stands in for a slow table;
the clock is manual, the threads are real.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from switchboard.background_refresh import stale_window
from switchboard.options.model import LlmOption
from switchboard.options.store import (
    EVENT_LAST_KNOWN_GOOD,
    EVENT_REFRESH_FAILED,
    EVENT_REFRESHED,
    OptionsStore,
    to_dynamodb_item,
)
from tests.fakes import ManualClock, RecordedEvents

TTL_S = 10.0
STALE_S = 20.0
WAIT_S = 5.0  # upper bound for a thread to reach a point; the tests never sleep for it


def option(option_id: str) -> LlmOption:
    return LlmOption.from_dict({"id": option_id, "provider": "mock", "timeout_ms": 5000})


class HeldScanTable:
    """A one-page options table whose Scan blocks while `hold` is clear (a slow DynamoDB)."""

    def __init__(self, *ids: str) -> None:
        self.ids = list(ids)
        self.hold = threading.Event()
        self.hold.set()
        self.scans_started = 0
        self.scans_in_flight = 0
        self.max_in_flight = 0
        self.fail = False
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()

    def scan(self, **_kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.scans_started += 1
            self.scans_in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.scans_in_flight)
        self.started.release()
        try:
            assert self.hold.wait(WAIT_S), "a test forgot to release the held scan"
            if self.fail:
                raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
            return {"Items": [to_dynamodb_item(option(i).to_item()) for i in self.ids]}
        finally:
            with self._lock:
                self.scans_in_flight -= 1


class Threads:
    """`start_thread` that starts real threads and remembers them, so a test can join them."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def __call__(self, target: Any) -> None:
        thread = threading.Thread(target=target, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT_S)
            assert not thread.is_alive()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def table() -> HeldScanTable:
    return HeldScanTable("a")


@pytest.fixture
def threads() -> Threads:
    return Threads()


@pytest.fixture
def events() -> RecordedEvents:
    return RecordedEvents()


@pytest.fixture
def store(table: HeldScanTable, clock: ManualClock, threads: Threads, events: RecordedEvents) -> OptionsStore:
    store = OptionsStore(
        "t", client=table, ttl_s=TTL_S, stale_s=STALE_S, clock=clock, on_event=events, start_thread=threads
    )
    assert [o.id for o in store.all()] == ["a"]  # the first read: synchronous, nothing to serve yet
    assert table.scans_started == 1 and threads.threads == []
    return store


def test_a_slow_scan_past_the_ttl_does_not_delay_the_request(
    store: OptionsStore, table: HeldScanTable, clock: ManualClock, threads: Threads
) -> None:
    # Given the table changed and its Scan now hangs
    table.ids = ["a", "b"]
    table.hold.clear()
    clock.advance(TTL_S + 1)
    # When a request finds the snapshot expired, it is answered from the snapshot at once
    started = time.monotonic()
    assert store.get("b") is None and store.get("a") is not None
    assert time.monotonic() - started < 1.0
    # while the refresh runs on its own thread
    assert table.started.acquire(timeout=WAIT_S)
    assert store.refreshing
    # Then once the Scan returns, the next request sees the new snapshot
    table.hold.set()
    threads.join()
    assert not store.refreshing
    assert store.get("b") is not None
    assert table.scans_started == 2


def test_one_background_refresh_at_a_time(
    store: OptionsStore, table: HeldScanTable, clock: ManualClock, threads: Threads
) -> None:
    table.hold.clear()
    clock.advance(TTL_S + 1)
    for _ in range(20):  # many requests inside the stale window while the Scan hangs
        assert store.get("a") is not None
        clock.advance(0.5)
    assert len(threads.threads) == 1
    table.hold.set()
    threads.join()
    assert table.max_in_flight == 1 and table.scans_started == 2


def test_past_the_hard_limit_the_table_is_read_synchronously(
    store: OptionsStore, table: HeldScanTable, clock: ManualClock, threads: Threads
) -> None:
    table.ids = ["a", "b"]
    clock.advance(TTL_S + STALE_S + 0.1)
    assert store.get("b") is not None  # read on the request's path: the snapshot was too old
    assert threads.threads == [] and table.scans_started == 2


def test_invalidate_reads_synchronously_and_a_stale_background_scan_does_not_land(
    store: OptionsStore, table: HeldScanTable, clock: ManualClock, threads: Threads
) -> None:
    # Given a background refresh that scanned before a write and is still in flight
    table.hold.clear()
    clock.advance(TTL_S + 1)
    store.get("a")
    assert table.started.acquire(timeout=WAIT_S)
    # When a write through this store invalidates the snapshot
    table.ids = ["a", "b"]
    store.invalidate()
    table.hold.set()  # (both the held Scan and the synchronous one now return a, b)
    assert store.get("b") is not None  # synchronous: invalidate drops the stale window
    # Then the older background result cannot overwrite it
    table.ids = ["a"]
    threads.join()
    assert store.get("b") is not None


def test_a_failed_background_refresh_keeps_last_known_good_and_retries_after_a_ttl(
    store: OptionsStore, table: HeldScanTable, clock: ManualClock, threads: Threads, events: RecordedEvents
) -> None:
    table.fail = True
    clock.advance(TTL_S + 1)
    assert store.get("a") is not None
    threads.join()
    assert store.last_refresh_ok is False
    reason = "EndpointConnectionError"
    assert (EVENT_REFRESH_FAILED, {"reason": reason, "has_snapshot": True}) in events.events
    assert (EVENT_LAST_KNOWN_GOOD, {"reason": reason, "count": 1}) in events.events
    # No retry before another TTL, and the failure restarts the clock: no synchronous read either
    clock.advance(TTL_S - 1)
    assert store.get("a") is not None
    assert len(threads.threads) == 1 and table.scans_started == 2
    # After it, the next request starts another background refresh, which recovers
    table.fail = False
    table.ids = ["a", "b"]
    clock.advance(2)
    assert store.get("a") is not None
    threads.join()
    assert store.get("b") is not None and store.last_refresh_ok is True
    assert events.names().count(EVENT_REFRESHED) == 2


def test_stale_window_zero_is_synchronous(table: HeldScanTable, clock: ManualClock, threads: Threads) -> None:
    store = OptionsStore("t", client=table, ttl_s=TTL_S, clock=clock, start_thread=threads)
    store.all()
    table.ids = ["a", "b"]
    clock.advance(TTL_S)
    assert store.get("b") is not None and threads.threads == []


def test_default_thread_runs_the_refresh(table: HeldScanTable, clock: ManualClock) -> None:
    store = OptionsStore("t", client=table, ttl_s=TTL_S, stale_s=STALE_S, clock=clock)
    store.all()
    table.ids = ["a", "b"]
    clock.advance(TTL_S)
    store.get("a")
    deadline = time.monotonic() + WAIT_S
    while store.refreshing and time.monotonic() < deadline:
        time.sleep(0.001)
    assert store.get("b") is not None


def test_stale_window_from_settings() -> None:
    assert stale_window(10.0, None) == 20.0
    assert stale_window(1.0, 0.0) == 0.0
    assert stale_window(10.0, 5.0) == 5.0
