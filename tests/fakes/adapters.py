"""The tenant adapters table (``switchboard.lifecycle.adapter_store.TenantAdapterStore``) over a dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchboard.lifecycle.adapter_store import (
    DEFAULT_PAGE_SIZE,
    AdapterChange,
    AdapterPage,
    TenantAdapter,
    TenantAdapterMovedByAnotherDeployment,
    change_item,
)


@dataclass
class InMemoryTenantAdapters:
    """``records`` by (family, tenant); ``changes`` in write order. Pages follow tenant order, as the
    table's sort key does; ``unavailable`` makes every call fail like an outage."""

    records: dict[tuple[str, str], TenantAdapter] = field(default_factory=dict)
    changes: list[AdapterChange] = field(default_factory=list)
    unavailable: bool = False

    def _check(self) -> None:
        if self.unavailable:
            raise ConnectionError("tenant adapters table unavailable (fake)")

    def get(self, family: str, tenant: str) -> TenantAdapter | None:
        self._check()
        return self.records.get((family, tenant))

    def list_family(
        self, family: str, *, limit: int = DEFAULT_PAGE_SIZE, next_token: str | None = None
    ) -> AdapterPage:
        self._check()
        tenants = sorted(t for f, t in self.records if f == family and (next_token is None or t > next_token))
        page = tenants[: max(1, limit)]
        more = len(tenants) > len(page)
        return AdapterPage([self.records[(family, t)] for t in page], page[-1] if more else None)

    def history(self, family: str, tenant: str, *, limit: int = 50) -> list[dict[str, Any]]:
        self._check()
        mine = [change_item(c) for c in self.changes if (c.family, c.tenant) == (family, tenant)]
        return list(reversed(mine))[:limit]

    def write(
        self,
        record: TenantAdapter,
        *,
        expected_live_arn: str | None,
        change: AdapterChange,
        expected_canary_arn: str | None = None,
        check_canary: bool = False,
    ) -> None:
        self._check()
        current = self.records.get((record.family, record.tenant))
        found = current.live.package_arn if current and current.live else None
        canary = current.canary.package_arn if current and current.canary else None
        moved = (found or None) != (expected_live_arn or None)
        if check_canary and (canary or None) != (expected_canary_arn or None):
            moved = True
            found = f"{found or 'the base model'} with canary {canary}"
        if moved:
            raise TenantAdapterMovedByAnotherDeployment(
                record.family, record.tenant, expected=expected_live_arn, found=found
            )
        self.records[(record.family, record.tenant)] = record
        self.changes.append(change)
