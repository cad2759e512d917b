"""The circuit table's timestamp forms.

`open_until`, `forced_until`, `at` and `updated_at` are written as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole
seconds): the one form the project writes, and the only one moto's Step Functions timestamp
comparisons parse (`TimestampGreaterThanPath` in the workflow's Choice reads `open_until` raw).
Event sort keys carry milliseconds (`…SS.mmmZ`) so events order within a second.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from switchboard.contract.workflow import TIMESTAMP_FORMAT

__all__ = [
    "ISO_PATTERN",
    "STICKY_UNTIL",
    "ceil_s",
    "from_iso",
    "from_ms",
    "to_iso",
    "to_iso_ms",
    "to_ms",
    "trunc_ms",
    "utcnow",
]

ISO_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# What a sticky forced-open circuit stores as `open_until`: the ASL's comparison then never passes.
STICKY_UNTIL = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: circuit timestamps must be timezone-aware (UTC)")
    return dt.astimezone(UTC)


def to_iso(dt: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` (sub-second part dropped)."""
    return _utc(dt).strftime(TIMESTAMP_FORMAT)


def to_iso_ms(dt: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ`: for event sort keys only."""
    d = _utc(dt)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def from_iso(text: str) -> datetime:
    """Parse `YYYY-MM-DDTHH:MM:SSZ` (also accepts fractional seconds and `+00:00`) into aware UTC."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def ceil_s(dt: datetime) -> datetime:
    """Round up to a whole second, so the stored `open_until` is never earlier than computed."""
    d = _utc(dt)
    if d.microsecond == 0:
        return d
    if d >= STICKY_UNTIL:
        return STICKY_UNTIL
    return d.replace(microsecond=0) + timedelta(seconds=1)


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds (what the Python-only window bookkeeping stores); exact, no float."""
    return (_utc(dt) - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


def trunc_ms(dt: datetime) -> datetime:
    """Drop sub-millisecond precision, so a datetime survives a round trip through `to_ms`."""
    d = _utc(dt)
    return d.replace(microsecond=d.microsecond - d.microsecond % 1000)
