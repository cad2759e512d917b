"""In-memory stores: the options catalogue, circuit reader, payload claim check, API keys, events."""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from switchboard.keys import ApiKeyNotFound, ApiKeyRecord, hash_key
from switchboard.options.model import LlmOption


class InMemoryOptions:
    """The options catalogue (``OptionCatalogue`` for the chat service, ``OptionSource`` for the
    circuit service). ``unavailable`` makes every read fail as a table outage with no snapshot does."""

    def __init__(self, options: Iterable[LlmOption] = (), *, unavailable: bool = False) -> None:
        self.options = {option.id: option for option in options}
        self.unavailable = unavailable

    def _check(self) -> None:
        if self.unavailable:
            raise ConnectionError("options table unreachable (fake)")

    def get(self, option_id: str) -> LlmOption | None:
        self._check()
        return self.options.get(option_id)

    def get_many(self, ids: Iterable[str]) -> dict[str, LlmOption]:
        self._check()
        return {i: self.options[i] for i in ids if i in self.options}


class FixedCircuits:
    """``CircuitReader`` whose soonest reopening is fixed (None: no circuit is open)."""

    def __init__(self, soonest: datetime | None) -> None:
        self.soonest = soonest
        self.asked: list[list[str]] = []

    def soonest_reopening(self, option_ids: Iterable[str]) -> datetime | None:
        self.asked.append(list(option_ids))
        return self.soonest


class InMemoryPayloads:
    """``Payloads`` claim check: a value over the inline limit is kept here, a reference goes on."""

    PREFIX = "s3://fake-payloads/"

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}

    def wrap(self, key: str, value: dict[str, Any], *, inline_limit: int) -> dict[str, Any]:
        if len(json.dumps(value, separators=(",", ":")).encode()) <= inline_limit:
            return value
        self.stored[key] = value
        return {"$ref": f"{self.PREFIX}{key}"}

    def unwrap(self, value: dict[str, Any]) -> dict[str, Any]:
        ref = value.get("$ref")
        return self.stored[str(ref).removeprefix(self.PREFIX)] if ref else value


class RecordedEvents:
    """An ``on_event(name, data)`` sink that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, data))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class InMemoryKeyStore:
    """``switchboard.keys.ApiKeyStore``'s public surface over a dict (no API Gateway keys).

    ``records`` maps key id → record; bearer keys are kept only as hashes, as the table does.
    ``as_factory()`` stands in for the class where a use case builds the store from a table name.
    """

    def __init__(self, table_name: str = "keys", *, client: Any | None = None) -> None:
        self.table_name = table_name
        self.records: dict[str, ApiKeyRecord] = {}
        self._hashes: dict[str, str] = {}  # key hash -> key id

    def as_factory(self) -> Callable[..., InMemoryKeyStore]:
        return lambda *_args, **_kwargs: self

    def lookup(self, bearer_key: str) -> ApiKeyRecord | None:
        key_id = self._hashes.get(hash_key(bearer_key)) if bearer_key else None
        return self.records.get(key_id) if key_id else None

    def get(self, key_id: str) -> ApiKeyRecord:
        try:
            return self.records[key_id]
        except KeyError:
            raise ApiKeyNotFound(key_id) from None

    def list(self) -> builtins.list[ApiKeyRecord]:
        return sorted(self.records.values(), key=lambda r: (r.created_at, r.key_id))

    def create(
        self,
        tenant: str,
        tier: str,
        *,
        apigateway: Any | None = None,
        usage_plan_id: str | None = None,
        key: str | None = None,
        allowed_routes: Sequence[str] | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        key = key or f"sk-test-{secrets.token_hex(8)}"
        record = ApiKeyRecord(
            key_id=f"key_{len(self.records):010x}",
            tenant=tenant,
            tier=tier,  # type: ignore[arg-type]
            status="active",
            api_key_id=None,
            created_at="2099-01-01T00:00:00Z",
            hint=key[-4:],
            allowed_routes=tuple(allowed_routes) if allowed_routes is not None else None,
        )
        self.records[record.key_id] = record
        self._hashes[hash_key(key)] = record.key_id
        return key, record

    def revoke(self, key_id: str, *, apigateway: Any | None = None) -> ApiKeyRecord:
        record = self.get(key_id)
        revoked = replace(record, status="revoked", revoked_at=record.revoked_at or "2099-01-01T00:00:01Z")
        self.records[key_id] = revoked
        return revoked

    def delete(self, key_id: str, *, apigateway: Any | None = None) -> ApiKeyRecord:
        record = self.get(key_id)
        del self.records[key_id]
        self._hashes = {h: k for h, k in self._hashes.items() if k != key_id}
        return record
