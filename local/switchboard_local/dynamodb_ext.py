"""DynamoDB's per-item write atomicity, which moto's in-memory backend lacks.

DynamoDB applies each write (``UpdateItem`` with ``ADD``, a conditional ``PutItem``, a transaction)
atomically: two concurrent ``ADD 1`` on one item always leave it 2 higher. moto reads the item,
changes a copy and stores it without a lock, so threads (the local stack's server threads, a
concurrent test) lose updates: 16 threads doing 50 ``ADD 1`` leave about 760, not 800. The usage
counters (issue 15) promise exact totals under concurrency, and the local stack must keep that
promise too; :data:`switchboard_local.moto_patches.DYNAMODB_ATOMIC_WRITES` wraps moto's write
operations in :func:`serialized`, one lock for the whole backend (coarser than DynamoDB's per-item
isolation, which only costs the emulator some parallelism it never had).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

WRITE_LOCK = threading.RLock()
"""Re-entrant: ``transact_write_items`` calls moto's own ``update_item`` and ``put_item``."""


def serialized(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a moto backend write) run under :data:`WRITE_LOCK`."""

    @functools.wraps(original)
    def write(*args: Any, **kwargs: Any) -> Any:
        with WRITE_LOCK:
            return original(*args, **kwargs)

    return write
