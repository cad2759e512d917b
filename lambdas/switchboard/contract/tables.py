"""DynamoDB key attributes of the project's tables, as infra creates them and the stores address them.

Stdlib only: infra (CDK), the local stack and the handlers all import this module. The state
machines' DynamoDB tasks spell the same names in their ASL; ``tests/infra/test_table_keys.py`` ties
the synthesized tables, the stores and the ASL to this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

OPTIONS_PARTITION_KEY: Final = "id"
KEYS_PARTITION_KEY: Final = "key_hash"
"""The SHA-256 of the bearer key (``switchboard.keys.hash_key``): the key itself is never stored."""
CIRCUIT_PARTITION_KEY: Final = "pk"
CIRCUIT_SORT_KEY: Final = "sk"
CACHE_PARTITION_KEY: Final = "cache_key"
DEPLOYMENTS_PARTITION_KEY: Final = "pk"
"""Model deployments table: ``group#<group>`` (one record per deployment) or ``event#…`` (a claimed event)."""
DEPLOYMENTS_SORT_KEY: Final = "sk"
ADAPTERS_PARTITION_KEY: Final = "pk"
"""Tenant adapters table (issue 16): ``family#<group>``, so one Query lists a family's tenants (paginated)
and the request path reads one tenant's adapter with one GetItem."""
ADAPTERS_SORT_KEY: Final = "sk"
"""``tenant#<tenant>``: the adapter serving that tenant now (component, version, state, the previous
approved one); ``history#<tenant>#<time>#<execution>``: one item per change, never rewritten."""
USAGE_PARTITION_KEY: Final = "pk"
"""Usage table (issue 15), one table for every counter: ``tenant#<tenant>`` for a tenant's items,
so a tenant's counters never share a partition with another's (``switchboard.tenancy``), and
``option#<option>`` for an option's capacity counters (capacity belongs to the option)."""
USAGE_SORT_KEY: Final = "sk"
"""``usage#<hour>#<route>#<option>#<key>`` metered totals (switchboard.usage_store),
``window#<minute>`` a tenant's rpm and tpm in one item (one conditional update decides both),
``limits`` / ``budget`` settings, ``spend#<period>`` budget spend (switchboard.quotas), and under
an option's partition its per-minute capacity items."""
TTL_ATTRIBUTE: Final = "expires_at"
"""Epoch seconds after which DynamoDB TTL may delete the item (circuit events, cached answers)."""

KEY_SCHEMAS: Final[Mapping[str, tuple[str, ...]]] = {
    "options": (OPTIONS_PARTITION_KEY,),
    "keys": (KEYS_PARTITION_KEY,),
    "circuits": (CIRCUIT_PARTITION_KEY, CIRCUIT_SORT_KEY),
    "cache": (CACHE_PARTITION_KEY,),
    "deployments": (DEPLOYMENTS_PARTITION_KEY, DEPLOYMENTS_SORT_KEY),
    "usage": (USAGE_PARTITION_KEY, USAGE_SORT_KEY),
    "adapters": (ADAPTERS_PARTITION_KEY, ADAPTERS_SORT_KEY),
}
"""Each table's key attributes (partition key first, then the sort key), all strings (``S``)."""
