"""In memory: the usage table's counters with the same all-or-nothing, limited ADD as DynamoDB."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from switchboard.contract.tables import TTL_ATTRIBUTE
from switchboard.quotas.counters import USED, first_misfit


class InMemoryUsageCounters:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def take(
        self, pk: str, sk: str, amounts: Mapping[str, int], limits: Mapping[str, int], *, expires_at: int
    ) -> str | None:
        with self._lock:
            item = self.items.get((pk, sk), {})
            refused = first_misfit(amounts, limits, item)
            if refused is not None:
                return refused
            item = self.items.setdefault((pk, sk), {})
            for name, amount in amounts.items():
                item[name] = item.get(name, 0) + amount
            item[TTL_ATTRIBUTE] = expires_at
            return None

    def add(self, pk: str, sk: str, amounts: Mapping[str, int | Decimal], *, expires_at: int | None) -> None:
        with self._lock:
            item = self.items.setdefault((pk, sk), {})
            for name, amount in amounts.items():
                item[name] = item.get(name, 0) + amount
            if expires_at is not None:
                item[TTL_ATTRIBUTE] = expires_at

    def give_back(self, pk: str, sk: str, amount: int, *, attribute: str = USED) -> None:
        with self._lock:
            item = self.items.get((pk, sk))
            if item is not None and attribute in item and amount > 0:
                item[attribute] = max(0, item[attribute] - amount)

    def read(self, pk: str, sks: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {sk: dict(self.items[(pk, sk)]) for sk in sks if (pk, sk) in self.items}

    def put(self, pk: str, sk: str, values: Mapping[str, Any]) -> None:
        with self._lock:
            self.items[(pk, sk)] = {name: value for name, value in values.items() if value is not None}
