"""DynamoDB's per-item write atomicity, which moto's in-memory backend lacks.

DynamoDB applies each write (``UpdateItem`` with ``ADD``, a conditional ``PutItem``, a transaction)
atomically: two concurrent ``ADD 1`` on one item always leave it 2 higher. moto reads the item,
changes a copy and stores it without a lock, so threads (the local stack's server threads, a
concurrent test) lose updates: 16 threads doing 50 ``ADD 1`` leave about 760, not 800. The usage
counters (issue 15) promise exact totals under concurrency, and the local stack must keep that
promise too; :data:`switchboard_local.moto_patches.DYNAMODB_ATOMIC_WRITES` wraps moto's write
operations in :func:`serialized`, one lock for the whole backend (coarser than DynamoDB's per-item
isolation, which only costs the emulator some parallelism it never had).

Numbers too: moto adds two numbers as ``int`` unless one has a ``.`` in it, and stores a sum such
as ``Decimal("0.0000001")`` as the string ``1E-7``, which its next ``ADD`` cannot parse
(``int("1E-7")``: a 500 after part of the update was applied, which the SDK then retries, counting
the rest twice). DynamoDB takes any number in either notation; :func:`exact_number_arithmetic`
adds and subtracts them as decimals and stores the result in plain notation.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from decimal import Decimal
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


def _plain(number: Decimal) -> str:
    """A number as DynamoDB's wire form allows, in plain notation (``0.0000001``, ``12``)."""
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def exact_number_arithmetic(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``DynamoType.__add__``/``__sub__``, exact for numbers in any notation (see above)."""
    subtract = original.__name__ == "__sub__"

    @functools.wraps(original)
    def arithmetic(self: Any, other: Any) -> Any:
        if getattr(self, "type", None) != "N" or getattr(other, "type", None) != "N":
            return original(self, other)
        left, right = Decimal(self.value), Decimal(other.value)
        return type(self)({"N": _plain(left - right if subtract else left + right)})

    return arithmetic
