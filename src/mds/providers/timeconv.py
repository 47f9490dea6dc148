"""Vendor time formats → MDS's convention (UTC open time; a daily bar at its session's open).

Every adapter converts through these, so a DST change is handled once and tested once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from mds.calendar import MarketCalendar

NEW_YORK = ZoneInfo("America/New_York")


def from_epoch(value: float, unit: str = "s") -> datetime:
    """Epoch seconds, milliseconds or nanoseconds → aware UTC datetime."""
    scale = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    return datetime.fromtimestamp(value / scale, UTC)


def from_local(text: str, tz: ZoneInfo = NEW_YORK) -> datetime:
    """An exchange-local wall time such as ``2025-03-10 09:30:00`` → aware UTC."""
    naive = datetime.fromisoformat(text.strip())
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def session_open(day: date, calendar: MarketCalendar) -> datetime | None:
    """The open of the session on ``day`` (a daily bar's ts), or None if ``day`` has none."""
    session = calendar.session_on(day)
    return session.open if session is not None else None


def local_date(ts: datetime, tz: ZoneInfo = NEW_YORK) -> date:
    """The exchange-local date of a UTC instant (midnight-ET and 09:30-ET daily stamps alike)."""
    return ts.astimezone(tz).date()
