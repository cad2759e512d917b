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
import json
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

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


ITEM_READS: Final = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
"""The operations whose answers :func:`json_item_reads` writes itself: items, counts and keys."""


def _wire_ready(value: Any) -> bool:
    """True when ``value`` is already DynamoDB's JSON wire form: dicts with string keys, lists,
    strings, numbers and booleans only. Anything else (bytes of a ``B`` value, a timestamp, a
    ``None``, a subclass) is left to moto's serializer, which knows what its shape wants."""
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and _wire_ready(item) for key, item in value.items())
    if kind is list:
        return all(_wire_ready(item) for item in value)
    return kind in (str, int, float, bool)


def json_item_reads(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``ActionResult.execute_result``, answering DynamoDB's item reads as plain JSON.

    moto 5.2 serializes every answer by walking the operation's output shape value by value: about
    20 ms for a Scan of the eleven seed options, 2-4 ms for a GetItem, CPU spent in the local
    stack's own process (its server is a thread of it), where DynamoDB's would be spent on AWS's
    servers. The gateway's background refreshes (the options table every 10 s, circuits every 2 s,
    quota settings every 5 s) then take the interpreter from the requests being served, which
    shows in their latency, in `make local` and in `make bench` alike. An item read's result is
    already the wire form (``DynamoResult`` turned moto's values into DynamoDB JSON), so it is
    written as it is; anything that is not (see :func:`_wire_ready`), and every other operation,
    still goes through moto's serializer. ``tests/unit/test_moto_dynamodb_reads.py`` checks both
    give the same answer.
    """

    @functools.wraps(original)
    def execute_result(self: Any, context: Any) -> Any:
        if (
            context.service_model.service_name == "dynamodb"
            and context.operation_model.name in ITEM_READS
            and _wire_ready(self.result)
        ):
            version = context.service_model.metadata.get("jsonVersion", "1.0")
            headers = {"Content-Type": f"application/x-amz-json-{version}"}
            return 200, headers, json.dumps(self.result)
        return original(self, context)

    return execute_result
