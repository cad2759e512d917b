"""DynamoDB key attributes of the project's tables, as infra creates them and the stores address them.

Stdlib only: infra (CDK), the local stack and the handlers all import this module.
"""

from __future__ import annotations

from typing import Final

OPTIONS_PARTITION_KEY: Final = "id"
KEYS_PARTITION_KEY: Final = "key_hash"
"""The SHA-256 of the bearer key (``switchboard.keys.hash_key``): the key itself is never stored."""
CIRCUIT_PARTITION_KEY: Final = "pk"
CIRCUIT_SORT_KEY: Final = "sk"
CACHE_PARTITION_KEY: Final = "cache_key"
TTL_ATTRIBUTE: Final = "expires_at"
"""Epoch seconds after which DynamoDB TTL may delete the item (circuit events, cached answers)."""
