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

A refresh still costs the process CPU (building, signing and parsing the read), and the request
that finds a cache expired is the one about to use the CPU most: a stream's first request after an
idle spell often finds several expired at once (options, a tenant's quota settings, a circuit).
So a streamed request holds the refreshes it asks for until its first byte is out
(:class:`HeldRefreshes`): they run while it waits on its provider's next chunk, not before its
first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from types import TracebackType

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


class _Holding(threading.local):
    held: HeldRefreshes | None = None


_holding = _Holding()


class HeldRefreshes:
    """While entered, the refreshes this thread asks any :class:`SingleFlight` for are held, not
    started; :meth:`release` starts them (once: later calls do nothing).

    A held refresh counts as in flight for its key, so nothing starts a second one meanwhile: the
    caller must release (in a ``finally``), or those keys are only read again on the path once
    their stale windows end.
    """

    def __init__(self, *, grace_s: float = 0.0) -> None:
        """``grace_s``: how long after :meth:`release` the held refreshes start (0: at once, on the
        releasing thread; otherwise one daemon thread waits it out, then starts them)."""
        self._starts: list[Callable[[], object]] = []
        self._released = False
        self._lock = threading.Lock()
        self._grace_s = grace_s
        self._outer: list[HeldRefreshes | None] = []

    def __enter__(self) -> HeldRefreshes:
        self._outer.append(_holding.held)
        _holding.held = self
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _holding.held = self._outer.pop()  # an enclosing hold on this thread holds again

    def hold(self, start: Callable[[], object]) -> bool:
        """Keep ``start`` for :meth:`release`; False when already released (the caller starts it)."""
        with self._lock:
            if self._released:
                return False
            self._starts.append(start)
            return True

    @property
    def count(self) -> int:
        """How many refreshes are held now."""
        with self._lock:
            return len(self._starts)

    def release(self) -> None:
        """Start every held refresh, in the order asked (after the grace, if any)."""
        with self._lock:
            starts, self._starts, self._released = self._starts, [], True
        if not starts:
            return
        if self._grace_s <= 0:
            _start_all(starts)
            return
        grace_s = self._grace_s

        def after_grace() -> None:
            time.sleep(grace_s)
            _start_all(starts)

        try:
            threading.Thread(target=after_grace, name="held-refreshes", daemon=True).start()
        except Exception:  # e.g. the interpreter shutting down: start them now instead
            logger.exception("could not wait out the grace of held refreshes")
            _start_all(starts)


def _start_all(starts: list[Callable[[], object]]) -> None:
    for start in starts:
        start()


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
        hard limit then reads on the path). Inside a :class:`HeldRefreshes` on this thread, the
        thread starts when that is released.
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

        held = _holding.held
        if held is not None and held.hold(lambda: self._launch(key, run)):
            return True
        return self._launch(key, run)

    def _launch(self, key: Hashable, run: Callable[[], None]) -> bool:
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
