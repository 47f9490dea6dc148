"""What each client method asks the server, as data: a path, query parameters and how the
answer becomes a frame. Pure (no I/O), so the sync and async clients share every line of it.

Times: a ``datetime`` must carry a zone (MDS refuses a time without one, and guessing UTC
would silently shift a local time) and is sent as UTC ISO-8601 with ``Z``; a ``date`` is sent
as ``YYYY-MM-DD`` where the server takes a date, and as that day's 00:00 UTC where it takes
a time; a ``str`` is sent as given (the server checks it and answers 422 naming the field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import quote

from mds.client import frames
from mds.client.frames import Frame, FrameKind

#: ``adjust=``: prices as stored, split-adjusted, or split- and dividend-adjusted.
Adjust = Literal["raw", "split", "all"]
TimeLike = str | date | datetime


@dataclass(frozen=True)
class Call:
    """One GET: ``path`` and ``params``, and ``decode`` turning the JSON body into a frame."""

    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    decode: Callable[[Any], Frame] = frames.raw


def _segment(value: str) -> str:
    # A symbol like ^GSPC or a factor key goes into the path as one segment.
    return quote(value, safe="")


def as_time(name: str, value: TimeLike) -> str:
    """``value`` as the ISO-8601 time with a zone the server's time parameters take."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: {value!r} has no time zone; pass an aware datetime (e.g. tzinfo=UTC)")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    return value


def as_date(name: str, value: TimeLike) -> str:
    """``value`` as ``YYYY-MM-DD`` where the server takes a date (an aware datetime: its UTC date)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: {value!r} has no time zone; pass a date or an aware datetime")
        return value.astimezone(UTC).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def as_date_or_time(name: str, value: TimeLike) -> str:
    """A date stays a date (the server reads it as the end of that day); a datetime is a time."""
    if isinstance(value, datetime):
        return as_time(name, value)
    return as_date(name, value)


def _params(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _opt(convert: Callable[[str, TimeLike], str], name: str, value: TimeLike | None) -> str | None:
    return None if value is None else convert(name, value)


def history(
    symbol: str,
    *,
    period: str | None,
    start: TimeLike | None,
    end: TimeLike | None,
    interval: str,
    adjust: Adjust | None,
    as_of: TimeLike | None,
    date: TimeLike | None,
    frame: FrameKind,
) -> Call:
    params = _params(
        period=period,
        start=_opt(as_time, "start", start),
        end=_opt(as_time, "end", end),
        interval=interval,
        adjust=adjust,
        as_of=_opt(as_time, "as_of", as_of),
        date=_opt(as_date, "date", date),
    )
    return Call(f"/stocks/{_segment(symbol)}/history", params, lambda body: frames.bars(body, frame))


def intraday(
    symbol: str,
    *,
    interval: str,
    start: TimeLike | None,
    end: TimeLike | None,
    as_of: TimeLike | None,
    adjust: Adjust | None,
    frame: FrameKind,
) -> Call:
    params = _params(
        interval=interval,
        start=_opt(as_time, "start", start),
        end=_opt(as_time, "end", end),
        as_of=_opt(as_time, "as_of", as_of),
        adjust=adjust,
    )
    return Call(f"/stocks/{_segment(symbol)}/intraday", params, lambda body: frames.bars(body, frame))


def ta(symbol: str, *, date: TimeLike | None, as_of: TimeLike | None, frame: FrameKind) -> Call:
    # No adjust: the server computes snapshots on the adjustment its ANALYSIS_ADJUST names.
    params = _params(
        symbol=symbol,
        date=_opt(as_date, "date", date),
        as_of=_opt(as_date_or_time, "as_of", as_of),
    )
    return Call("/api/v1/market/ta", params, lambda body: frames.snapshot(body, frame))


def coverage(symbol: str | None, *, frame: FrameKind) -> Call:
    if symbol is None:
        return Call("/api/v1/market-data/coverage", {}, lambda body: frames.coverage(body, frame))
    return Call(
        f"/api/v1/market-data/coverage/{_segment(symbol)}",
        {},
        lambda body: frames.symbol_coverage(body, frame),
    )


def macro(
    factor: str | None,
    *,
    start: TimeLike | None,
    end: TimeLike | None,
    as_of: TimeLike | None,
    frame: FrameKind,
) -> Call:
    if factor is None:
        if start is not None or end is not None or as_of is not None:
            raise ValueError("start, end and as_of need a factor: macro('DGS10', start=...)")
        return Call("/factors/macro", {}, lambda body: frames.macro_snapshot(body, frame))
    params = _params(
        start=_opt(as_date, "start", start),
        end=_opt(as_date, "end", end),
        as_of=_opt(as_date, "as_of", as_of),
    )
    return Call(
        f"/factors/macro/{_segment(factor)}/history", params, lambda body: frames.macro_history(body, frame)
    )


def options_chain(
    symbol: str, *, expiration: TimeLike | None, max_days: int | None, frame: FrameKind
) -> Call:
    params = _params(
        expiration=_opt(as_date, "expiration", expiration),
        max_days=None if max_days is None else str(max_days),
    )
    return Call(f"/options/{_segment(symbol)}/chain", params, lambda body: frames.chain(body, frame))
