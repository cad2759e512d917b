"""moto's DynamoDB writes made atomic, as DynamoDB's are.

DynamoDB applies a conditional write to an item atomically: the condition is judged and the
update applied with no other write in between. moto's backend reads the item, judges the
condition and writes in plain Python, so two threads (the local stack's threaded server, or a
concurrency test) can both pass a condition that only one of them should: a counter capped at a
limit ends above it. :data:`switchboard_local.moto_patches.DYNAMODB_ATOMIC_WRITES` wraps each
writing operation of the backend in :func:`serialized`, which holds one lock for the duration.
One lock for every table is coarser than DynamoDB's per-item atomicity, and costs nothing that
matters at local-stack load.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["WRITE_LOCK", "serialized"]

WRITE_LOCK = threading.RLock()
"""Re-entrant: a transaction's items go through the same backend methods in some moto versions."""


def serialized(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (a DynamoDB backend write), run while holding :data:`WRITE_LOCK`."""

    @functools.wraps(original)
    def write(*args: Any, **kwargs: Any) -> Any:
        with WRITE_LOCK:
            return original(*args, **kwargs)

    return write
