"""Parsing of query parameters the way users write them, with the field named on error."""

from __future__ import annotations

from datetime import datetime

from mds.domain.models import Interval
from mds.errors import InvalidRequest


def parse_ts(field: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(field, f"{value!r} is not an ISO-8601 time") from None
    if ts.tzinfo is None:
        raise InvalidRequest(field, f"{value!r} has no time zone; add Z or an offset")
    return ts


def parse_interval(field: str, value: str, *, allowed: tuple[Interval, ...] = tuple(Interval)) -> Interval:
    try:
        interval = Interval(value)
    except ValueError:
        interval = None
    if interval is None or interval not in allowed:
        names = ", ".join(i.value for i in allowed)
        raise InvalidRequest(field, f"unknown interval {value!r}; use one of {names}")
    return interval
