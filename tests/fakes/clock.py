"""A clock the test moves: arithmetic on time is tested, not this machine's load."""

from __future__ import annotations

from datetime import UTC, datetime


class ManualClock:
    """Epoch seconds that only change when the test says so.

    ``clock()`` reads it (for a ``Callable[[], float]`` clock), ``clock.utcnow()`` as an aware
    datetime (for a ``Callable[[], datetime]`` clock), ``clock.sleep(s)`` advances it and records the
    sleep (for code that takes a ``sleep`` function).
    """

    def __init__(self, now: float | datetime = 1_790_000_000.0) -> None:
        self.now = now.timestamp() if isinstance(now, datetime) else float(now)
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
