"""A ``start_thread`` for stale-while-revalidate caches (``switchboard.background_refresh``) that
holds each background refresh until the test runs it: what is served meanwhile is observable."""

from __future__ import annotations

from collections.abc import Callable


class HeldThreads:
    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, target: Callable[[], None]) -> None:
        self.pending.append(target)

    def run_all(self) -> None:
        pending, self.pending = self.pending, []
        for target in pending:
            target()
