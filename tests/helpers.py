"""Tiny builders every test tree uses: aware UTC datetimes, bar rows to compare, free ports."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import overload

from mds.domain.models import Bar, Capability

#: One bar as compared in tests: its open time and (open, high, low, close, volume).
Row = tuple[datetime, float, float, float, float, float]

#: A service on the sim alone: every capability's policy, and no index lists (the scheduler's
#: tracking pass is off, so nothing reaches for Wikipedia or adds index members).
SIM_ENV = {**{f"POLICY_{c.value.upper()}": "sim,sim_backup" for c in Capability}, "INDEX_SOURCES": ""}


@overload
def utc(when: str, /) -> datetime: ...
@overload
def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0, /
) -> datetime: ...
def utc(
    first: str | int,
    month: int = 1,
    day: int = 1,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    us: int = 0,
    /,
) -> datetime:
    """An aware UTC datetime from parts or from ISO-8601 text.

    ``utc(2025, 3, 10, 13, 30)`` and ``utc("2025-03-10T13:30:00")`` are the same instant.
    Text without an offset is read as UTC; text with one (``Z``, ``+00:00``) is converted.
    """
    if isinstance(first, str):
        parsed = datetime.fromisoformat(first)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return datetime(first, month, day, hour, minute, second, us, tzinfo=UTC)


def rows(bars: Iterable[Bar]) -> list[Row]:
    """``(ts, open, high, low, close, volume)`` of each bar: what two sources must agree on."""
    return [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for servers the tests start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
