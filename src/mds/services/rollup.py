"""Roll 1m bars up to 5m/15m/1h on read, aligned to the session open (DESIGN: ts = open time).

Hand-written: the buckets follow the exchange calendar (an early close ends the last
hour at 13:00 ET), which no resampling library knows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mds.calendar import MarketCalendar
from mds.domain.models import Bar, BarStatus, Interval


def bucket_start(ts: datetime, interval: Interval, session_open: datetime) -> datetime:
    step = interval.seconds
    offset = int((ts - session_open).total_seconds()) // step * step
    return session_open + timedelta(seconds=offset)


def rollup(bars: list[Bar], interval: Interval, calendar: MarketCalendar, now: datetime) -> list[Bar]:
    """Aggregate time-ordered 1m bars into ``interval`` bars.

    A bucket is ``provisional`` if any 1m bar in it is, or if it has not closed by ``now``;
    its ``as_of`` is the newest of its parts, its ``provider`` the parts' providers.
    """
    if interval is Interval.M1:
        return bars
    out: list[Bar] = []
    group: list[Bar] = []
    key: datetime | None = None
    for bar in bars:
        session = calendar.session_for(bar.ts)
        if session is None:
            continue
        k = bucket_start(bar.ts, interval, session.open)
        if k != key and group:
            out.append(_merge(group, key, interval, calendar, now))  # type: ignore[arg-type]
            group = []
        key = k
        group.append(bar)
    if group and key is not None:
        out.append(_merge(group, key, interval, calendar, now))
    return out


def _merge(
    group: list[Bar], ts: datetime, interval: Interval, calendar: MarketCalendar, now: datetime
) -> Bar:
    first, last = group[0], group[-1]
    providers = sorted({b.provider for b in group})
    closed = calendar.bar_end(ts, interval) <= now
    final = closed and all(b.status is BarStatus.FINAL for b in group)
    as_ofs = [b.as_of for b in group if b.as_of is not None]
    return Bar(
        symbol=first.symbol,
        interval=interval,
        ts=ts,
        open=first.open,
        high=max(b.high for b in group),
        low=min(b.low for b in group),
        close=last.close,
        volume=sum(b.volume for b in group),
        provider="+".join(providers),
        adjusted=any(b.adjusted for b in group),
        status=BarStatus.FINAL if final else BarStatus.PROVISIONAL,
        as_of=max(as_ofs) if as_ofs else None,
    )
