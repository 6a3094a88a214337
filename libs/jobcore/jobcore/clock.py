"""Time as Jobcore stores and shows it: epoch milliseconds inside, RFC 3339 UTC outside."""

from __future__ import annotations

import time
from datetime import UTC, datetime

#: The latest time Jobcore shows, in epoch ms (the end of year 9999, as RFC 3339 allows).
LATEST_TIME_MS = 253_402_300_799_999


#: The JSON Schema of a time as ``format_ms`` writes it.
TIME_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
    "description": "UTC, RFC 3339 with milliseconds and Z",
}
#: A time, or ``null`` when there is none yet.
OPTIONAL_TIME_SCHEMA = {"anyOf": [TIME_SCHEMA, {"type": "null"}]}


def now_ms() -> int:
    return int(time.time() * 1000)


def format_ms(epoch_ms: int | None) -> str | None:
    """``2026-01-18T10:12:30.000Z`` for an epoch-ms time, ``None`` for none."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_rfc3339(text: str) -> int:
    """Epoch ms of an RFC 3339 time with an explicit offset; ``ValueError`` otherwise."""
    if not isinstance(text, str) or not text:
        raise ValueError("not a time")
    normalized = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    moment = datetime.fromisoformat(normalized)
    if moment.tzinfo is None:
        raise ValueError("time has no UTC offset")
    return int(moment.timestamp() * 1000)
