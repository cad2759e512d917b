"""In-memory stores: the options catalogue, circuits, payload claim check, API keys, events."""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from switchboard.circuits.policy import (
    PROBE_LEASE_S,
    CircuitSnapshot,
    Outcome,
    Transition,
    is_noop,
    on_outcome,
    on_probe_request,
)
from switchboard.circuits.store import ProbeDecision, RecordResult
from switchboard.circuits.timefmt import utcnow
from switchboard.keys import ApiKeyNotFound, ApiKeyRecord, hash_key
from switchboard.options.errors import VersionConflict
from switchboard.options.model import BreakerPolicy, LlmOption
from switchboard.options.store import utc_timestamp


class InMemoryOptions:
    """The options catalogue (``OptionCatalogue`` for the chat service, ``OptionSource`` for the
    circuit service, ``VersionedOptions`` for the lifecycle). ``unavailable`` makes every read fail
    as a table outage with no snapshot does. Writes are versioned as ``OptionsStore.put`` writes."""

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

    def put(self, option: LlmOption, *, expected_version: int | None, updated_by: str) -> LlmOption:
        """Create (``expected_version`` None or 0: must not exist) or update (versions must match)."""
        self._check()
        current = self.options.get(option.id)
        found = current.version if current is not None else None
        creating = not expected_version
        if (found is not None) if creating else (found != expected_version):
            raise VersionConflict(
                option.id, expected_version=None if creating else expected_version, current_version=found
            )
        stored = replace(option, version=(found or 0) + 1, updated_at=utc_timestamp(), updated_by=updated_by)
        self.options[option.id] = stored
        return stored


class InMemoryCircuits:
    """``CircuitLedger`` (what ``CircuitService`` asks of ``CircuitStore``) over a dict.

    The same pure rules decide (``switchboard.circuits.policy``); what the store adds around them
    (conditional writes, retries on lost races, fail-open on DynamoDB errors) is tested against moto
    in ``tests/integration/test_circuit_store.py``. ``transitions`` keeps every transition in order,
    as the store's event log does; ``writes`` counts the snapshots stored.
    """

    def __init__(self, clock: Callable[[], datetime] = utcnow, *, lease_s: int = PROBE_LEASE_S) -> None:
        self.clock = clock
        self.lease_s = lease_s
        self.snapshots: dict[str, CircuitSnapshot] = {}
        self.transitions: list[tuple[str, Transition]] = []
        self.writes = 0

    def now(self) -> datetime:
        return self.clock()

    def get(self, option_id: str) -> CircuitSnapshot:
        return self.snapshots.get(option_id, CircuitSnapshot())

    def acquire_probe(
        self, option_id: str, policy: BreakerPolicy, *, owner: str, actor: str
    ) -> ProbeDecision:
        snapshot = self.snapshots.get(option_id, CircuitSnapshot())
        new, granted, transition = on_probe_request(snapshot, policy, owner, self.now(), lease_s=self.lease_s)
        stored = self._store(option_id, snapshot, new, transition)
        return ProbeDecision(granted, stored.state, stored.open_until, transition)

    def record_result(
        self, option_id: str, policy: BreakerPolicy, outcome: Outcome, *, actor: str
    ) -> RecordResult:
        snapshot = self.snapshots.get(option_id, CircuitSnapshot())
        if is_noop(outcome, policy):
            return RecordResult(None, snapshot)
        new, transition = on_outcome(snapshot, policy, outcome, self.now())
        return RecordResult(transition, self._store(option_id, snapshot, new, transition))

    def _store(
        self, option_id: str, old: CircuitSnapshot, new: CircuitSnapshot, transition: Transition | None
    ) -> CircuitSnapshot:
        if new == old:
            return old
        stored = replace(new, version=old.version + 1, updated_at=self.now())
        self.snapshots[option_id] = stored
        self.writes += 1
        if transition is not None:
            self.transitions.append((option_id, transition))
        return stored


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
