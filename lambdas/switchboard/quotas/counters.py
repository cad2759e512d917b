"""The port the quota use cases count through: atomic, conditional increments on keyed items.

Small on purpose, so an in-memory fake (``tests/fakes/usage_counters.py``) and the DynamoDB adapter
(``switchboard.quotas.dynamo``) can both honour it exactly, including under concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Protocol

__all__ = ["USED", "UsageCounters", "first_misfit"]

USED: Final = "used"
"""The attribute a single-valued counter counts in."""


def first_misfit(
    amounts: Mapping[str, int], limits: Mapping[str, int], current: Mapping[str, Any]
) -> str | None:
    """The first limited attribute that ``amounts`` would push past its limit from ``current``."""
    for name, limit in limits.items():
        if int(current.get(name) or 0) + amounts.get(name, 0) > limit:
            return name
    return None


class UsageCounters(Protocol):
    def take(
        self, pk: str, sk: str, amounts: Mapping[str, int], limits: Mapping[str, int], *, expires_at: int
    ) -> str | None:
        """All or nothing: add every amount to its attribute of item (pk, sk), or none of them when
        an attribute named in ``limits`` would pass its limit.

        Returns ``None`` when applied, else the name of an attribute that did not fit. The item gets
        ``expires_at`` (epoch seconds) as its TTL.
        """
        ...

    def add(self, pk: str, sk: str, amounts: Mapping[str, int | Decimal], *, expires_at: int | None) -> None:
        """Add each amount (may be negative) to its attribute, without a condition."""
        ...

    def give_back(self, pk: str, sk: str, amount: int, *, attribute: str = USED) -> None:
        """Subtract ``amount`` from a counter, never below zero (a reservation returned)."""
        ...

    def read(self, pk: str, sks: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The items that exist among ``sks``, by sort key; numbers as ``int`` or ``Decimal``."""
        ...

    def put(self, pk: str, sk: str, values: Mapping[str, Any]) -> None:
        """Replace an item (settings: ``limits``, ``budget``) with ``values``."""
        ...
