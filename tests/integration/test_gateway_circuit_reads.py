"""The gateway reads circuits through one store per execution environment, and a stream that lands
on an expired circuit cache does not wait for DynamoDB, nor share the CPU with the refresh before
its first byte is out (emulated AWS: moto's DynamoDB, the agent emulator, the mock provider;
streamed through `handlers.gateway.open_stream`).

The streaming path's breaker once built a store of its own, without the stale window the
planner's had: every `CIRCUIT_CACHE_TTL_S` one stream per circuit paid a GetItem before calling its
provider (about 3 ms of that stream's time to first token against moto, the bench's p99).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from handlers import gateway as gateway_module
from handlers import gateway_wiring
from switchboard.contract import env as names
from tests.conftest import api_event

DEV_KEY = "sk-switchboard-local-dev"
PRIMARY = "claude-haiku-us"


def _open(gateway: Any, request_id: str) -> Any:
    """A streamed chat request through the stream seam: its answer, nothing read yet."""
    context = gateway.authorize(DEV_KEY)["context"]
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    event = api_event("POST", "/v1/chat/completions", body, authorizer=context, request_id=request_id)
    answer = gateway_module.open_stream(event)
    assert answer is not None and answer.status == 200
    return answer


def _stream(gateway: Any, request_id: str) -> bytes:
    return b"".join(_open(gateway, request_id).chunks)


class _ReadsByThread:
    """The circuit store's DynamoDB client, noting which thread each GetItem ran on."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.get_item_threads: list[str] = []

    def get_item(self, **kwargs: Any) -> Any:
        self.get_item_threads.append(threading.current_thread().name)
        return self._client.get_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _observed_circuit_store(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, _ReadsByThread]:
    """A fresh environment with the deployed stale window (two TTLs) over a 0.3 s circuit cache,
    its circuit store's GetItems noted by thread."""
    monkeypatch.delenv(names.CIRCUIT_CACHE_STALE_S, raising=False)
    monkeypatch.setenv(names.CIRCUIT_CACHE_TTL_S, "0.3")
    gateway_module.forget_cached_state()
    store = gateway_wiring.circuit_store()
    assert store is not None
    reads = _ReadsByThread(store.client)
    store._client = reads  # the store's own client, observed
    return store, reads


def test_the_planner_and_the_streaming_breaker_share_one_store_with_the_deployed_settings(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(names.CIRCUIT_CACHE_STALE_S, raising=False)  # as deployed: two TTLs
    monkeypatch.setenv(names.CIRCUIT_CACHE_TTL_S, "3")
    monkeypatch.setenv(names.CIRCUIT_PROBE_LEASE_S, "45")
    gateway_module.forget_cached_state()
    store = gateway_wiring.circuit_store()
    assert store is not None
    assert (store.cache_ttl_s, store.cache_stale_s, store.lease_s) == (3.0, 6.0, 45)
    _stream(gateway, "req-shared-1")  # builds both services
    assert gateway_wiring.circuit_store() is store  # one per environment, until it is forgotten
    gateway_module.forget_cached_state()
    monkeypatch.setenv(names.CIRCUIT_CACHE_STALE_S, "0")  # the local stack: read on the path
    assert gateway_wiring.circuit_store() is not store
    assert gateway_wiring.circuit_store().cache_stale_s == 0  # type: ignore[union-attr]


def test_a_stream_landing_on_an_expired_circuit_cache_reads_it_in_the_background(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, reads = _observed_circuit_store(monkeypatch)
    assert _stream(gateway, "req-first").endswith(b"data: [DONE]\n\n")
    assert reads.get_item_threads, "the first stream reads the primary's circuit: nothing is cached"
    on_the_path = threading.current_thread().name
    assert set(reads.get_item_threads) == {on_the_path}
    reads.get_item_threads.clear()
    time.sleep(0.4)  # past the 0.3 s cache, inside its 0.6 s stale window
    assert _stream(gateway, "req-after-expiry").endswith(b"data: [DONE]\n\n")
    deadline = time.monotonic() + 5
    while not reads.get_item_threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reads.get_item_threads, "the expired snapshot was refreshed"
    assert on_the_path not in reads.get_item_threads  # ... by a background read, not the stream
    assert store.get(PRIMARY).state.value == "CLOSED"


def _expired_circuit_store(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, _ReadsByThread]:
    """A fresh environment whose primary circuit was read by one stream, and whose 0.3 s cache has
    since expired (inside its 0.6 s stale window)."""
    store, reads = _observed_circuit_store(monkeypatch)
    _stream(gateway, "req-first")
    reads.get_item_threads.clear()
    time.sleep(0.4)
    return store, reads


def _refreshed_within(reads: _ReadsByThread, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not reads.get_item_threads and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(reads.get_item_threads)


def test_the_refresh_a_stream_asks_for_starts_once_its_first_byte_is_out(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, reads = _expired_circuit_store(gateway, monkeypatch)
    chunks = iter(_open(gateway, "req-held").chunks)
    first = next(chunks)
    assert first.startswith(b"data: {")
    assert not _refreshed_within(reads, 0.3), "the refresh waits while the first chunk is written"
    rest = b"".join(chunks)  # asking for the second chunk: the first is out
    assert rest.endswith(b"data: [DONE]\n\n")
    assert _refreshed_within(reads, 5)
    assert threading.current_thread().name not in reads.get_item_threads


def test_a_stream_closed_before_its_first_chunk_still_starts_the_refresh(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, reads = _expired_circuit_store(gateway, monkeypatch)
    _open(gateway, "req-gone").chunks.close()  # the client went away before anything was written
    assert _refreshed_within(reads, 5)
