"""Stale-while-revalidate for the request path's cached reads: one refresh in flight per key.

A cache that has just expired would make the next request read DynamoDB on its path (a round trip
of a few milliseconds in AWS, tens against an emulator): a tail every request that lands on an
expiry pays. The stores that accept a bounded staleness (the options snapshot, circuit snapshots on
the streaming path, a tenant's quota settings) instead serve what they hold and start the read on a
background thread, at most one per key at a time; past a hard limit they read on the path again,
so staleness stays bounded even if a thread never finishes.

In Lambda a thread runs only while an invocation is active (the environment is frozen between
invocations): a refresh started by a request normally finishes within it (a read is far shorter
than a request), and one frozen mid-flight resumes with the next invocation; meanwhile no other
starts for its key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable

logger = logging.getLogger(__name__)

StartThread = Callable[[Callable[[], None]], None]
"""Starts ``target`` off the caller's thread (a daemon thread; tests pass their own)."""


STALE_TTLS = 2.0
"""The deployed stale window, in TTLs: past three TTLs a cached value is read on the path again."""


def stale_window(ttl_s: float, configured: float | None) -> float:
    """A store's stale window from its setting: the configured one, else :data:`STALE_TTLS` TTLs
    (0: no window, every expired read is on the path, as the local stack wants)."""
    return STALE_TTLS * ttl_s if configured is None else configured


def daemon_thread(name: str) -> StartThread:
    def start(target: Callable[[], None]) -> None:
        threading.Thread(target=target, name=name, daemon=True).start()

    return start


class SingleFlight:
    """Runs refreshes off the request path, never two at once for the same key."""

    def __init__(self, start_thread: StartThread) -> None:
        self._start_thread = start_thread
        self._lock = threading.Lock()
        self._in_flight: set[Hashable] = set()

    def start(self, key: Hashable, refresh: Callable[[], None]) -> bool:
        """Start ``refresh`` unless one for ``key`` is in flight; False when none was started.

        ``refresh`` should handle its own errors; one that escapes is logged, never raised into
        the thread machinery. A thread that cannot start leaves nothing in flight (the caller's
        hard limit then reads on the path).
        """
        with self._lock:
            if key in self._in_flight:
                return False
            self._in_flight.add(key)

        def run() -> None:
            try:
                refresh()
            except Exception:  # the request already has its answer; never an unhandled thread error
                logger.exception("background refresh of %s failed", key)
            finally:
                with self._lock:
                    self._in_flight.discard(key)

        try:
            self._start_thread(run)
        except Exception:  # e.g. the interpreter shutting down
            logger.exception("could not start a background refresh of %s", key)
            with self._lock:
                self._in_flight.discard(key)
            return False
        return True

    def in_flight(self, key: Hashable | None = None) -> bool:
        """Whether a refresh (of ``key``, or of any key) is running."""
        with self._lock:
            return bool(self._in_flight) if key is None else key in self._in_flight
