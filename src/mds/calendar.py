"""Exchange sessions and the bars a complete series must hold.

The schedule comes from ``exchange_calendars``; at construction (and whenever a
lookup falls outside the range built so far) it is turned once into numpy arrays
of open/close epoch seconds, so every lookup afterwards is a bisect or a vectorised
numpy expression with no pandas on the hot path.

Conventions (DESIGN.md): a bar's ``ts`` is the UTC open time of its interval.
Intraday bars are aligned to the session open (``open + k*interval`` for every k
with ``open + k*interval < close``), so on an early close the last bar is shorter.
A daily bar's ``ts`` is its session's open. Ranges are ``start <= ts < end``.
Only regular trading hours are modelled; lunch breaks (XNYS has none) are ignored.
"""

from __future__ import annotations

import functools
import math
import warnings
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import exchange_calendars as xcals
import numpy as np

from mds.domain.models import Interval, ensure_utc

__all__ = ["MarketCalendar", "Session", "get_calendar"]

_DAY = 86_400
#: Dates the calendar may be widened to; pandas' nanosecond timestamps end in 2262.
_MIN_DATE = date(1900, 1, 1)
_MAX_DATE = date(2200, 12, 31)
#: How far beyond a lookup a rebuilt schedule reaches, so lookups near an edge
#: do not rebuild it again and again.
_PAD = timedelta(days=366)
#: Margin around a looked-up instant that must be covered: the next open or previous
#: close is at most a few days away even across long closures (e.g. 9/11: four sessions).
_MARGIN = 30 * _DAY


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session.

    Attributes:
        date: The session date (exchange-local).
        open: Open time, UTC aware.
        close: Close time, UTC aware (early closes respected).
    """

    date: date
    open: datetime
    close: datetime


@dataclass(frozen=True, slots=True)
class _Schedule:
    """The built schedule as plain arrays; replaced whole when widened."""

    first: date
    last: date
    opens: np.ndarray  # int64 epoch seconds, ascending
    closes: np.ndarray
    ordinals: np.ndarray  # session dates as date.toordinal()
    open_list: list[int]  # the same values as Python ints, for fast bisect
    close_list: list[int]
    index_by_ordinal: dict[int, int]
    memo: dict[int, Session] = field(default_factory=dict)

    def session(self, i: int) -> Session:
        """Session number ``i``, memoised (the index is only meaningful for this schedule)."""
        found = self.memo.get(i)
        if found is None:
            found = Session(
                date=date.fromordinal(self.ordinals[i].item()),
                open=_utc(self.open_list[i]),
                close=_utc(self.close_list[i]),
            )
            self.memo[i] = found
        return found


def _epoch(ts: datetime, *, ceil: bool = False) -> int:
    """Whole epoch seconds of ``ts``: floor for "is t inside", ceil for range bounds.

    Every session and bar time is a whole second, so ``t < bound`` holds for an integer
    ``t`` exactly when it holds against ``ceil(bound)``, and ``t <= ts`` exactly when
    ``t <= floor(ts)``.
    """
    value = ensure_utc(ts).timestamp()
    return math.ceil(value) if ceil else math.floor(value)


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


class MarketCalendar:
    """Sessions of one exchange and the bar times a complete series must hold.

    Not thread-safe to widen concurrently, but a widened schedule is swapped in as one
    object, so readers never see a half-built one.

    Args:
        name: An ``exchange_calendars`` code, e.g. ``"XNYS"``.
    """

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        self._sched = self._build(None, None)
        # Memoised per (interval, start, end); the result is read-only so sharing is safe.
        self._epochs_cached = functools.lru_cache(maxsize=4096)(self._compute_epochs)

    # -- building -----------------------------------------------------------------

    def _build(self, start: date | None, end: date | None) -> _Schedule:
        try:
            with warnings.catch_warnings():
                # exchange_calendars 4.13 reads Series.values, which pandas 3.1 deprecates;
                # the warning is the library's to fix and must not fail our strict tests.
                warnings.filterwarnings(
                    "ignore", message="Series.values returning an ndarray", category=Warning
                )
                cal = xcals.get_calendar(self.name, start=start, end=end)
        except xcals.errors.InvalidCalendarName:
            raise ValueError(f"unknown exchange calendar {self.name!r}") from None
        #: The exchange's IANA time zone (America/New_York for XNYS).
        self.zone = str(cal.tz)
        sched = cal.schedule
        opens = sched["open"].to_numpy(dtype="datetime64[s]").astype(np.int64)
        closes = sched["close"].to_numpy(dtype="datetime64[s]").astype(np.int64)
        ordinals = np.array([d.toordinal() for d in sched.index.date], dtype=np.int64)
        return _Schedule(
            first=cal.first_session.date() if start is None else start,
            last=cal.last_session.date() if end is None else end,
            opens=opens,
            closes=closes,
            ordinals=ordinals,
            open_list=opens.tolist(),
            close_list=closes.tolist(),
            index_by_ordinal={int(o): i for i, o in enumerate(ordinals)},
        )

    def _ensure(self, lo: int, hi: int) -> _Schedule:
        """Return a schedule covering epoch seconds [lo, hi], widening it if needed."""
        s = self._sched
        lo_date = date.fromordinal(date(1970, 1, 1).toordinal() + lo // _DAY)
        hi_date = date.fromordinal(date(1970, 1, 1).toordinal() + hi // _DAY)
        # A schedule already clamped to a supported edge covers everything up to that edge.
        lo_ok = s.first < lo_date or s.first <= _MIN_DATE
        hi_ok = hi_date < s.last or s.last >= _MAX_DATE
        if lo_ok and hi_ok:
            return s
        if lo_date < _MIN_DATE or hi_date > _MAX_DATE:
            raise ValueError(
                f"{self.name} calendar lookups must lie between {_MIN_DATE} and {_MAX_DATE} "
                f"(asked {lo_date} .. {hi_date})"
            )
        start = max(_MIN_DATE, min(s.first, lo_date - _PAD))
        end = min(_MAX_DATE, max(s.last, hi_date + _PAD))
        self._sched = self._build(start, end)
        return self._sched

    # -- lookups --------------------------------------------------------------------

    def session_on(self, day: date) -> Session | None:
        """The session on exchange-local date ``day``, or None if the exchange is closed."""
        if isinstance(day, datetime):
            raise TypeError("session_on takes a date; use session_for for a datetime")
        midnight = (day.toordinal() - date(1970, 1, 1).toordinal()) * _DAY
        s = self._ensure(midnight - _MARGIN, midnight + _MARGIN)
        i = s.index_by_ordinal.get(day.toordinal())
        return None if i is None else s.session(i)

    def session_for(self, ts: datetime) -> Session | None:
        """The session with ``open <= ts < close``, or None outside trading hours."""
        t = _epoch(ts)
        s = self._ensure(t - _MARGIN, t + _MARGIN)
        i = bisect_right(s.open_list, t) - 1
        if i >= 0 and t < s.close_list[i]:
            return s.session(i)
        return None

    def is_open(self, ts: datetime) -> bool:
        """Whether ``ts`` falls inside a session (``open <= ts < close``)."""
        return self.session_for(ts) is not None

    def sessions(self, start: datetime, end: datetime) -> list[Session]:
        """Sessions whose ``[open, close)`` intersects ``[start, end)``, ascending."""
        s, i0, i1 = self._span(_epoch(start, ceil=True), _epoch(end, ceil=True))
        return [s.session(i) for i in range(i0, i1)]

    def _span(self, t0: int, t1: int) -> tuple[_Schedule, int, int]:
        if t1 <= t0:
            return self._sched, 0, 0
        s = self._ensure(t0 - _MARGIN, t1 + _MARGIN)
        # First session closing after t0 .. first session opening at or after t1.
        return s, bisect_right(s.close_list, t0), bisect_left(s.open_list, t1)

    def next_open(self, ts: datetime) -> datetime:
        """The first session open at or after ``ts`` (``ts`` itself if a session opens then)."""
        t = _epoch(ts, ceil=True)
        s = self._ensure(t - _MARGIN, t + _MARGIN)
        return _utc(s.open_list[bisect_left(s.open_list, t)])

    def previous_close(self, ts: datetime) -> datetime:
        """The latest session close at or before ``ts``."""
        t = _epoch(ts)
        s = self._ensure(t - _MARGIN, t + _MARGIN)
        return _utc(s.close_list[bisect_right(s.close_list, t) - 1])

    def closed_sessions(self, now: datetime, n: int) -> list[Session]:
        """The last ``n`` sessions that have closed by ``now``, ascending (fewer only at the
        calendar's start)."""
        t = _epoch(now)
        span = (n * 7 // 5 + 15) * _DAY  # n sessions fit in 7/5 n calendar days, plus holidays
        s = self._ensure(t - span - _MARGIN, t + _MARGIN)
        last = bisect_right(s.close_list, t)
        return [s.session(i) for i in range(max(0, last - n), last)]

    def bar_end(self, ts: datetime, interval: Interval) -> datetime:
        """When the bar opening at ``ts`` closes: ``min(ts + interval, session close)``.

        For ``1d`` it is the session close. Raises ValueError if ``ts`` is not in a session.
        """
        session = self.session_for(ts)
        if session is None:
            raise ValueError(f"{ensure_utc(ts).isoformat()} is not inside a {self.name} session")
        if interval is Interval.D1:
            return session.close
        return min(ensure_utc(ts) + interval.delta, session.close)

    # -- expected bars ------------------------------------------------------------------

    def expected_epochs(self, interval: Interval, start: datetime, end: datetime) -> np.ndarray:
        """Epoch seconds (int64, ascending, read-only) of every bar with ``start <= ts < end``.

        Computed once per (interval, range) and shared: checking 8000 symbols over one
        session costs one computation, not 8000.
        """
        return self._epochs_cached(Interval(interval), _epoch(start, ceil=True), _epoch(end, ceil=True))

    def expected_bar_times(self, interval: Interval, start: datetime, end: datetime) -> list[datetime]:
        """The same set as :meth:`expected_epochs`, as UTC datetimes."""
        return [_utc(e) for e in self.expected_epochs(interval, start, end).tolist()]

    def _compute_epochs(self, interval: Interval, t0: int, t1: int) -> np.ndarray:
        s, i0, i1 = self._span(t0, t1)
        opens, closes = s.opens[i0:i1], s.closes[i0:i1]
        if interval is Interval.D1:
            out = opens
        else:
            step = interval.seconds
            counts = -((opens - closes) // step)  # ceil((close - open) / step)
            starts = np.repeat(opens, counts)
            # Position of each bar within its session: 0, 1, ... counts-1 per session.
            first_idx = np.repeat(np.cumsum(counts) - counts, counts)
            out = starts + (np.arange(int(counts.sum()), dtype=np.int64) - first_idx) * step
        out = np.ascontiguousarray(out[(out >= t0) & (out < t1)], dtype=np.int64)
        out.flags.writeable = False
        return out


@functools.cache
def get_calendar(name: str = "XNYS") -> MarketCalendar:
    """A process-wide shared calendar (building one takes ~0.1 s)."""
    return MarketCalendar(name)
