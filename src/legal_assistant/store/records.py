"""What every table of the store shares: record ids, the clock, and reading result rows.

Conversations, messages, dossiers and documents use one id format and one clock, so
every id check and every ordering rule is the same across tables (see `conversations.py`
for why they are what they are).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from surrealdb import RecordID

_ID_PATTERN = re.compile(r"\A[0-9a-f]{32}\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_id() -> str:
    """A fresh record key in the only format the store accepts."""
    return uuid.uuid4().hex


def is_valid_id(value: object) -> bool:
    """Whether `value` is an id the store could have generated."""
    return isinstance(value, str) and _ID_PATTERN.match(value) is not None


class _MonotonicClock:
    """UTC wall-clock time, strictly increasing (by >= 1 µs) within this process.

    Microseconds because that is what Python datetimes (and so the driver) carry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_us = 0

    def now(self) -> datetime:
        with self._lock:
            us = max(time.time_ns() // 1000, self._last_us + 1)
            self._last_us = us
        return _EPOCH + timedelta(microseconds=us)


_clock = _MonotonicClock()


def timestamp() -> datetime:
    """Now, from the process-wide strictly increasing clock."""
    return _clock.now()


def iso(value: Any) -> str:
    """ISO-8601 UTC with microseconds and a `Z`, e.g. `2025-01-31T09:15:00.123456Z`."""
    if isinstance(value, datetime):
        moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        text = moment.astimezone(UTC).isoformat(timespec="microseconds")
        return text.removesuffix("+00:00") + "Z"
    return str(value)


def record_key(value: Any) -> str:
    """The record key of a RecordID (or a bare key)."""
    if isinstance(value, RecordID):
        return str(value.id)
    return str(value)


def rows(result: Any) -> list[dict[str, Any]]:
    """The rows of a query result (one object, a list, or nothing)."""
    if result is None:
        return []
    if isinstance(result, dict):
        return [result]
    return [row for row in result if isinstance(row, dict)]
