"""Refreshes a request asks for while it holds them start when it releases them, not before
(`switchboard.background_refresh.HeldRefreshes`), and still one per key."""

from __future__ import annotations

import threading
import time

from switchboard.background_refresh import HeldRefreshes, SingleFlight
from tests.fakes.threads import HeldThreads


def _flight() -> tuple[SingleFlight, HeldThreads, list[str]]:
    threads = HeldThreads()
    return SingleFlight(threads), threads, []


def test_held_refreshes_start_on_release_in_the_order_asked_and_count_as_in_flight() -> None:
    flight, threads, ran = _flight()
    held = HeldRefreshes()
    with held:
        assert flight.start("options", lambda: ran.append("options"))
        assert flight.start("circuit:a", lambda: ran.append("circuit:a"))
        assert not flight.start("options", lambda: ran.append("again"))  # one per key, held or not
    assert held.count == 2 and threads.pending == [] and flight.in_flight("options")
    held.release()
    assert held.count == 0 and len(threads.pending) == 2
    threads.run_all()
    assert ran == ["options", "circuit:a"] and not flight.in_flight()


def test_a_released_hold_starts_what_is_asked_later_at_once_and_releases_only_once() -> None:
    flight, threads, ran = _flight()
    held = HeldRefreshes()
    with held:
        flight.start("a", lambda: ran.append("a"))
        held.release()
        flight.start("b", lambda: ran.append("b"))  # still inside: started, not held
    assert len(threads.pending) == 2
    held.release()  # nothing left: no second start
    threads.run_all()
    assert ran == ["a", "b"]


def test_outside_the_scope_and_on_other_threads_nothing_is_held() -> None:
    flight, threads, ran = _flight()
    held = HeldRefreshes()
    with held:
        other = threading.Thread(target=lambda: flight.start("other-thread", lambda: ran.append("other")))
        other.start()
        other.join()
    flight.start("after", lambda: ran.append("after"))
    assert len(threads.pending) == 2 and held.count == 0
    threads.run_all()
    assert sorted(ran) == ["after", "other"]


def test_an_inner_hold_gives_the_thread_back_to_the_enclosing_one() -> None:
    flight, threads, ran = _flight()
    outer, inner = HeldRefreshes(), HeldRefreshes()
    with outer:
        with inner:
            flight.start("inner", lambda: ran.append("inner"))
        flight.start("outer", lambda: ran.append("outer"))
    flight.start("none", lambda: ran.append("none"))
    assert (outer.count, inner.count, len(threads.pending)) == (1, 1, 1)
    inner.release()
    outer.release()
    threads.run_all()
    assert ran == ["none", "inner", "outer"]


def test_a_held_refresh_whose_thread_cannot_start_leaves_nothing_in_flight() -> None:
    def refuse(_target: object) -> None:
        raise RuntimeError("can't start new thread")

    flight = SingleFlight(refuse)
    held = HeldRefreshes()
    with held:
        assert flight.start("options", lambda: None)
    held.release()
    assert not flight.in_flight("options")


def test_with_a_grace_the_held_refreshes_start_that_long_after_the_release() -> None:
    started = threading.Event()
    flight = SingleFlight(lambda target: target())  # runs each refresh on the launching thread
    held = HeldRefreshes(grace_s=0.2)
    with held:
        flight.start("options", started.set)
    released_at = time.monotonic()
    held.release()  # returns at once: one thread waits the grace out
    assert not started.is_set()
    assert started.wait(5)
    assert time.monotonic() - released_at >= 0.19
    assert not flight.in_flight("options")
