"""DynamoDB-backed LLM options catalogue with a TTL snapshot and last-known-good fallback.

Reads are served from an in-memory snapshot of the whole table (the catalogue is small: one paginated
Scan), refreshed when older than `ttl_s`. When DynamoDB fails, the last-known-good snapshot keeps
being served and the refresh is retried after another `ttl_s`; only a store that has never loaded
raises `OptionsUnavailable`. Stored items that fail validation are skipped (logged, counted), never
fatal: one bad row must not take the gateway down.

Writes are conditional on `version` (optimistic concurrency), so two operators cannot silently
overwrite each other, and the seed never overwrites an operator's edit.

Observability goes through an injectable `on_event(name, fields)` hook (metric names below) plus the
stdlib logger, so this module imports neither Powertools nor boto3 at import time.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from switchboard.background_refresh import SingleFlight, daemon_thread
from switchboard.contract import metrics as metric_names
from switchboard.contract.tables import OPTIONS_PARTITION_KEY
from switchboard.contract.workflow import format_timestamp
from switchboard.options.errors import (
    InvalidOptions,
    OptionNotFound,
    OptionsUnavailable,
    OptionValidationError,
    VersionConflict,
)
from switchboard.options.model import LlmOption

__all__ = [
    "EVENT_INVALID_OPTION",
    "EVENT_LAST_KNOWN_GOOD",
    "EVENT_REFRESHED",
    "EVENT_REFRESH_FAILED",
    "EventHook",
    "InvalidOptions",
    "OptionNotFound",
    "OptionsStore",
    "OptionsUnavailable",
    "VersionConflict",
    "from_dynamodb_item",
    "load_seed_file",
    "parse_options",
    "to_dynamodb_item",
    "utc_timestamp",
]

logger = logging.getLogger(__name__)

EventHook = Callable[[str, dict[str, Any]], None]

# Names passed to `on_event` (declared in switchboard.contract.metrics, which the alarms read).
EVENT_INVALID_OPTION = metric_names.INVALID_OPTION_SKIPPED
EVENT_REFRESH_FAILED = metric_names.OPTIONS_REFRESH_FAILED
EVENT_LAST_KNOWN_GOOD = metric_names.OPTIONS_LAST_KNOWN_GOOD
EVENT_REFRESHED = metric_names.OPTIONS_REFRESHED


def utc_timestamp(now: datetime | None = None) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`: the one timestamp form the project writes."""
    return format_timestamp(now or datetime.now(UTC))


# --- DynamoDB attribute-value conversion ------------------------------------------------------------


def _to_dynamo(value: Any) -> Any:
    """JSON-ish value → what TypeSerializer accepts (floats become exact decimal strings)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int | Decimal):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot store non-finite number {value!r}")
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _from_dynamo(value: Any) -> Any:
    """TypeDeserializer output → plain JSON types (Decimal → int without a fraction, else float)."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        # DynamoDB normalises numbers ("1.0" reads back as "1"): integral → int, else float.
        # The option model accepts an int for float fields and an integral float for int ones.
        if isinstance(exponent, int) and exponent >= 0:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_dynamo(v) for v in value)
    return value


def _serialize(value: Any) -> dict[str, Any]:
    """One value (after `_to_dynamo`) → a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, Mapping):
        return {"M": {k: _serialize(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [_serialize(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _deserialize(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value → Python (numbers as Decimal, sets as sets)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _deserialize(v) for k, v in value.items()}
    if kind == "L":
        return [_deserialize(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    raise TypeError(f"unsupported DynamoDB attribute type {kind}")


def to_dynamodb_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plain dict → low-level `{"attr": {"S": ...}}` item."""
    return {k: _serialize(_to_dynamo(v)) for k, v in data.items()}


def from_dynamodb_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Low-level item → plain dict with int/float numbers."""
    return {k: _from_dynamo(_deserialize(v)) for k, v in item.items()}


# --- seed / input parsing -----------------------------------------------------------------------------


def parse_options(raw: Any, *, source: str = "options") -> list[LlmOption]:
    """Validate a JSON array of options; raise `InvalidOptions` listing every bad entry."""
    if not isinstance(raw, list):
        raise InvalidOptions(source, [f"expected a JSON array of options, got {type(raw).__name__}"])
    problems: list[str] = []
    options: list[LlmOption] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        label = f"entry {index}"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label += f" (id {entry['id']!r})"
        if not isinstance(entry, dict):
            problems.append(f"{label}: expected an object, got {type(entry).__name__}")
            continue
        try:
            option = LlmOption.from_dict(entry)
        except OptionValidationError as exc:
            problems.extend(f"{label}: {line}" for line in exc.problems)
            continue
        if option.id in seen:
            problems.append(f"{label}: duplicate id")
            continue
        seen.add(option.id)
        options.append(option)
    if problems:
        raise InvalidOptions(source, problems)
    return options


def load_seed_file(path: str | Path) -> list[LlmOption]:
    """Read and validate `config/options.json` (or any file of the same shape)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidOptions(str(path), [f"not valid JSON: {exc}"]) from exc
    return parse_options(raw, source=str(path))


# --- the store ----------------------------------------------------------------------------------------


def _conflict_item(exc: Any) -> dict[str, Any] | None:
    """The stored item DynamoDB returned with a failed condition (ReturnValuesOnConditionCheckFailure)."""
    item = getattr(exc, "response", {}).get("Item")
    return from_dynamodb_item(item) if item else None


def _error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class OptionsStore:
    """The options table: cached reads with last-known-good, versioned conditional writes.

    Reads serve an in-memory snapshot of the whole table, taken by a `Scan` (20-100 ms: too slow
    for a request's path). Within `ttl_s` of the last refresh the snapshot is simply served. Past
    it, with `stale_s` > 0 (stale-while-revalidate, as HTTP caches do), the request that finds it
    expired still gets the snapshot at once and starts a refresh on a background thread, at most
    one at a time; later requests keep the snapshot until the refresh replaces it. A snapshot older
    than `ttl_s + stale_s` (or none at all, or one `invalidate` dropped) is read synchronously, as
    it is with `stale_s` 0 (the default here; the local stack keeps it so option edits show within
    the TTL, as its end-to-end tests expect).

    In Lambda a thread runs only while an invocation is active: the environment is frozen between
    invocations. A refresh started at the start of a request normally finishes within it (a scan
    is much shorter than a request); one frozen mid-flight resumes on the next invocation, and
    while it is in flight no other starts. If it never finished, snapshots would age past the hard
    limit and be read synchronously: the staleness stays bounded either way.

    A refresh that fails (background or not) keeps the last-known-good snapshot and retries after
    another `ttl_s`, emitting `OptionsRefreshFailed` and `OptionsLastKnownGood` as before.
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any | None = None,
        ttl_s: float = 10.0,
        stale_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        on_event: EventHook | None = None,
        start_thread: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self.ttl_s = ttl_s
        self.stale_s = max(0.0, stale_s)
        """How long past the TTL the snapshot may still be served while a background refresh runs."""
        self._background = SingleFlight(start_thread or daemon_thread("options-refresh"))
        self._generation = 0  # bumped by `invalidate`: a refresh begun before it must not land
        self._clock = clock
        self._on_event = on_event
        self._snapshot: dict[str, LlmOption] | None = None
        self._checked_at = -math.inf  # last refresh attempt (success or failure)
        self.last_refresh_ok: bool | None = None

    # -- plumbing

    @property
    def client(self) -> Any:
        if self._client is None:
            from switchboard import aws

            self._client = aws.client("dynamodb")
        return self._client

    def _emit(self, name: str, fields: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(name, fields)
        except Exception:  # a metrics hook must never break a read
            logger.exception("options store event hook failed", extra={"event_name": name})

    def invalidate(self) -> None:
        """Force the next read to refresh (the current snapshot stays as last-known-good)."""
        self._checked_at = -math.inf
        self._generation += 1

    # -- reads

    def _scan(self) -> dict[str, LlmOption]:
        snapshot: dict[str, LlmOption] = {}
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        while True:
            page = self.client.scan(**kwargs)
            for raw in page.get("Items", []):
                option = self._parse_stored(raw)
                if option is not None:
                    snapshot[option.id] = option
            last = page.get("LastEvaluatedKey")
            if not last:
                return snapshot
            kwargs["ExclusiveStartKey"] = last

    def _parse_stored(self, raw: Mapping[str, Any]) -> LlmOption | None:
        option_id = str(raw.get(OPTIONS_PARTITION_KEY, {}).get("S", "<missing id>"))
        try:
            return LlmOption.from_dict(from_dynamodb_item(raw))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, OptionValidationError):
                reason = "; ".join(exc.problems)
            else:
                reason = f"{type(exc).__name__}: cannot decode item"
            logger.error(
                "skipping invalid option %s in %s: %s",
                option_id,
                self.table_name,
                reason,
                extra={"option_id": option_id, "reason": reason},
            )
            self._emit(EVENT_INVALID_OPTION, {"option_id": option_id, "reason": reason})
            return None

    def _current(self) -> dict[str, LlmOption]:
        now = self._clock()
        snapshot = self._snapshot
        if snapshot is not None:
            age = now - self._checked_at
            if age < self.ttl_s:
                return snapshot
            if age < self.ttl_s + self.stale_s:
                self._refresh_in_background()
                return snapshot
        return self._refresh(now)

    def _refresh_in_background(self) -> None:
        """Start a refresh off the request's path unless one is already in flight."""
        self._background.start("options", self._background_refresh)

    def _background_refresh(self) -> None:
        try:
            self._refresh(self._clock())
        except Exception:  # the request already has its snapshot; never an unhandled thread error
            logger.exception("options background refresh failed")

    @property
    def refreshing(self) -> bool:
        """Whether a background refresh is in flight (tests and the self-check read it)."""
        return self._background.in_flight()

    def _refresh(self, now: float) -> dict[str, LlmOption]:
        """Scan the table into a new snapshot; on failure serve last-known-good (or raise without one)."""
        from botocore.exceptions import BotoCoreError, ClientError

        generation = self._generation
        try:
            snapshot = self._scan()
        except (BotoCoreError, ClientError) as exc:
            self.last_refresh_ok = False
            reason = _error_code(exc) or type(exc).__name__
            self._emit(EVENT_REFRESH_FAILED, {"reason": reason, "has_snapshot": self._snapshot is not None})
            if self._snapshot is None:
                logger.warning("options table %s unreadable and no snapshot: %s", self.table_name, reason)
                raise OptionsUnavailable(f"options table {self.table_name!r} unreadable: {reason}") from exc
            logger.warning(
                "options table %s unreadable (%s): serving last-known-good snapshot of %d option(s)",
                self.table_name,
                reason,
                len(self._snapshot),
            )
            self._emit(EVENT_LAST_KNOWN_GOOD, {"reason": reason, "count": len(self._snapshot)})
            if generation == self._generation:
                self._checked_at = max(self._checked_at, now)  # retry after another ttl
            return self._snapshot
        if generation != self._generation or now < self._checked_at:
            # Stale result: a write through this store invalidated it while it scanned (the scan may
            # predate the write), or a refresh that started later already landed.
            return self._snapshot if self._snapshot is not None else snapshot
        self._snapshot = snapshot
        self._checked_at = now
        self.last_refresh_ok = True
        self._emit(EVENT_REFRESHED, {"count": len(snapshot)})
        return snapshot

    def get(self, option_id: str) -> LlmOption | None:
        return self._current().get(option_id)

    def get_many(self, ids: Iterable[str]) -> dict[str, LlmOption]:
        """The options among `ids` that exist (missing ids are simply absent)."""
        snapshot = self._current()
        return {i: snapshot[i] for i in ids if i in snapshot}

    def all(self) -> list[LlmOption]:
        return sorted(self._current().values(), key=lambda o: o.id)

    # -- writes

    def put(self, option: LlmOption, *, expected_version: int | None, updated_by: str) -> LlmOption:
        """Create (`expected_version` None or 0: must not exist) or update (stored version must match).

        Stores version + 1, `updated_at` and `updated_by`; returns the stored option.
        Raises `VersionConflict` when the condition fails.
        """
        from botocore.exceptions import ClientError

        creating = not expected_version
        # `replace` re-runs validation, so a write can never store something a read would skip.
        stored = replace(
            option,
            version=1 if creating else int(expected_version or 0) + 1,
            updated_at=utc_timestamp(),
            updated_by=updated_by,
        )
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": to_dynamodb_item(stored.to_item()),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if creating:
            kwargs["ConditionExpression"] = f"attribute_not_exists({OPTIONS_PARTITION_KEY})"
        else:
            kwargs["ConditionExpression"] = "version = :expected"
            kwargs["ExpressionAttributeValues"] = {":expected": {"N": str(int(expected_version or 0))}}
        try:
            self.client.put_item(**kwargs)
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = _conflict_item(exc)
            raise VersionConflict(
                option.id,
                expected_version=None if creating else expected_version,
                current_version=int(current["version"]) if current and "version" in current else None,
            ) from exc
        finally:
            self.invalidate()
        return stored

    def delete(self, option_id: str, *, expected_version: int | None = None) -> None:
        """Delete an option; `OptionNotFound` if absent, `VersionConflict` if the version differs."""
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {OPTIONS_PARTITION_KEY: {"S": option_id}},
            "ConditionExpression": f"attribute_exists({OPTIONS_PARTITION_KEY})",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if expected_version is not None:
            kwargs["ConditionExpression"] = (
                f"attribute_exists({OPTIONS_PARTITION_KEY}) AND version = :expected"
            )
            kwargs["ExpressionAttributeValues"] = {":expected": {"N": str(int(expected_version))}}
        try:
            self.client.delete_item(**kwargs)
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = _conflict_item(exc)
            if current is None:
                raise OptionNotFound(option_id) from exc
            raise VersionConflict(
                option_id,
                expected_version=expected_version,
                current_version=int(current["version"]) if "version" in current else None,
            ) from exc
        finally:
            self.invalidate()

    def seed(self, options: Iterable[LlmOption], *, updated_by: str) -> list[str]:
        """Insert the options that do not exist yet; never overwrite an operator's edit.

        Returns the ids written.
        """
        written: list[str] = []
        for option in options:
            try:
                self.put(option, expected_version=None, updated_by=updated_by)
            except VersionConflict:
                continue
            written.append(option.id)
        return written
