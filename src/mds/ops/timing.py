"""When schedules fire: a five-field cron in a time zone, or an offset from an exchange's
session open or close.

Cron parsing and next/previous fire times are croniter's; this module only validates,
converts zones, and settles the two daylight-saving cases croniter leaves open. croniter is
given a start in the schedule's own zone (``ZoneInfo``), so it reads the fields as local
wall time and handles DST itself. What croniter 7 does, and what we rely on
(``tests/unit/test_schedule_timing.py`` pins both):

* Spring forward (America/New_York 2026-03-08, 02:00 EST → 03:00 EDT): a wall time in the
  gap fires at the first valid instant after it. ``30 2 * * *`` fires at 03:00 EDT
  (07:00Z), once that day; the next day it is back at 02:30. Taken as croniter gives it.
* Fall back (2026-11-01, 02:00 EDT → 01:00 EST): a repeated wall time matches twice, and
  croniter answers ``30 1 * * *`` at 01:30 EDT (05:30Z) and again at 01:30 EST (06:30Z).
  Like Vixie cron, we drop the second occurrence when the minute and hour fields are both
  fixed (no ``*``), so a daily 01:30 fires once, at 01:30 EDT. A schedule with ``*`` in its
  minute or hour (``*/30 * * * *``, ``@hourly``) keeps every fire croniter gives: "hourly"
  stays every real hour through the repeated one.

A market-relative timing (``after_close+30m``) is the anchor (each session's open or
close in UTC, early closes included, from :mod:`mds.calendar`) plus the signed offset;
holidays and weekends have no session and so no fire.
"""

from __future__ import annotations

import functools
import re
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter  # type: ignore[import-untyped]

from mds.calendar import MarketCalendar, Session, get_calendar
from mds.domain.schedules import WHEN_PATTERN

__all__ = [
    "CronTiming",
    "MarketTiming",
    "Timing",
    "TimingError",
    "TimingSpec",
    "logical_date",
    "preview",
    "timing_for",
]

TimingField = Literal["cron", "timezone", "calendar", "when"]

#: croniter's aliases we take (``@reboot`` is not a time).
CRON_ALIASES = frozenset({"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"})
#: croniter's hashed/random fields (``H``, ``R``, ``H(0-29)/5``): without a hash id ``R`` is
#: drawn anew each time an expression is parsed, so two processes would disagree on when.
_HASHED = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.IGNORECASE)
_WHEN = re.compile(WHEN_PATTERN)
#: How far a market timing looks for a session before it gives up (long closures are days).
_HORIZON = timedelta(days=400)
#: First look-ahead window of a market timing; doubled while it finds nothing.
_WINDOW = timedelta(days=10)
#: next_after answers a cron timing remembers (its schedules' due times of one tick).
_NEXT_MEMO = 64


class TimingError(ValueError):
    """A timing that cannot fire; ``field`` names the part that is wrong."""

    def __init__(self, field: TimingField, message: str) -> None:
        super().__init__(message)
        self.field: TimingField = field


class Timing(Protocol):
    """When one schedule fires. Inputs are aware datetimes; answers are aware UTC."""

    @property
    def zone(self) -> str:
        """IANA zone the fire times read naturally in (the cron's, or the exchange's)."""
        ...

    def next_after(self, t: datetime) -> datetime:
        """The first fire strictly after ``t``."""
        ...

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The newest fire at or before ``t``; None when there is none in a sane horizon."""
        ...

    def logical_date(self, due_at: datetime) -> date:
        """The date the fire at ``due_at`` belongs to."""
        ...


class TimingSpec(Protocol):
    """What :func:`timing_for` reads: a ScheduleSpec, Schedule or preview body."""

    @property
    def cron(self) -> str | None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def calendar(self) -> str | None: ...
    @property
    def when(self) -> str | None: ...


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"a timing needs an aware datetime, got {t.isoformat()}")
    return t


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TimingError("timezone", f"unknown time zone {name!r}") from None


class CronTiming:
    """A five-field cron expression read in an IANA time zone.

    One croniter is parsed per expression and re-pointed at each start under a lock
    (croniter objects keep a cursor), so a call costs one croniter step, not a parse.

    Raises:
        TimingError: ``cron`` for an expression croniter rejects, that is not five fields,
            uses hashed/random fields or never fires; ``timezone`` for an unknown zone.
    """

    def __init__(self, cron: str, timezone: str = "UTC") -> None:
        self.cron = cron
        self.zone = timezone
        self._tz = _zone(timezone)
        expr = cron.strip()
        if expr.startswith("@"):
            if expr.lower() not in CRON_ALIASES:
                raise TimingError("cron", f"{cron!r}: aliases are {', '.join(sorted(CRON_ALIASES))}")
        elif len(expr.split()) != 5:
            raise TimingError(
                "cron", f"{cron!r}: give five fields (minute hour day-of-month month day-of-week)"
            )
        elif any(_HASHED.match(f) for f in expr.split()):
            raise TimingError("cron", f"{cron!r}: hashed or random fields (H, R) are not supported")
        if not croniter.is_valid(expr):
            raise TimingError("cron", f"{cron!r} is not a valid cron expression")
        now = datetime.now(UTC).astimezone(self._tz)
        try:
            self._iter = croniter(expr, now)
            minute, hour = self._iter.expressions[:2]
            #: Fixed-time jobs fire once on a repeated wall time (module docstring).
            self._once_per_wall_time = "*" not in minute and "*" not in hour
            self._iter.get_next(datetime)
        except CroniterError as exc:  # e.g. "0 0 31 2 *": valid fields, no such date
            raise TimingError("cron", f"{cron!r} never fires: {exc}") from None
        self._lock = threading.Lock()
        #: Recent next_after answers: the schedules sharing this timing fall due together,
        #: and the scheduler's tick plans each one's next fire (a croniter step is ~0.1 ms).
        self._next: dict[datetime, datetime] = {}

    def __repr__(self) -> str:
        return f"CronTiming({self.cron!r}, {self.zone!r})"

    def _step(self, local: datetime, *, back: bool) -> datetime:
        """croniter's fire strictly before (``back``) or after ``local``, in the schedule's zone."""
        step = self._iter.get_prev if back else self._iter.get_next
        fire: datetime = step(datetime, start_time=local)
        return fire

    def _repeat(self, local: datetime) -> bool:
        """Whether ``local`` is the second occurrence of a repeated wall time to drop."""
        return (
            self._once_per_wall_time
            and local.fold == 1
            and local.replace(fold=0).utcoffset() != local.utcoffset()
        )

    def next_after(self, t: datetime) -> datetime:
        # Keyed in UTC: in one zone, a repeated wall time's two instants compare equal.
        key = _aware(t).astimezone(UTC)
        local = key.astimezone(self._tz)
        with self._lock:
            if (hit := self._next.get(key)) is not None:
                return hit
            while True:
                try:
                    local = self._step(local, back=False)
                except CroniterError as exc:
                    raise TimingError("cron", f"{self.cron!r} has no fire after {t.isoformat()}") from exc
                if not self._repeat(local):
                    if len(self._next) >= _NEXT_MEMO:
                        self._next.clear()
                    fire = self._next[key] = local.astimezone(UTC)
                    return fire

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        # croniter's get_prev is strictly before its start; a microsecond on makes it "<= t".
        local = (_aware(t) + timedelta(microseconds=1)).astimezone(self._tz)
        with self._lock:
            while True:
                try:
                    local = self._step(local, back=True)
                except CroniterError:  # nothing within croniter's 50-year search
                    return None
                if not self._repeat(local):
                    return local.astimezone(UTC)

    def logical_date(self, due_at: datetime) -> date:
        """The due time's date in the schedule's zone."""
        return _aware(due_at).astimezone(self._tz).date()


class MarketTiming:
    """An offset from each session's open or close on an exchange calendar.

    ``when`` is ``(after|before)_(open|close)`` with an optional signed offset in minutes:
    ``after_close+30m`` is close + 30 min, ``before_open-60m`` open − 60 min,
    ``before_close`` the close itself. ``before_*+Nm`` and ``after_*-Nm`` contradict
    themselves and are refused.

    Raises:
        TimingError: ``calendar`` for a name exchange_calendars does not know; ``when`` for
            an expression that does not parse or contradicts itself.
    """

    def __init__(self, calendar: str, when: str) -> None:
        m = _WHEN.match(when)
        if m is None:
            raise TimingError(
                "when", f"{when!r}: give after_open, after_close, before_open or before_close with ±Nm"
            )
        side, anchor, offset = m.group(1), m.group(2), m.group(3) or "+0m"
        if m.group(3) and (offset[0] == "+") != (side == "after"):
            raise TimingError(
                "when",
                f"{when!r} contradicts itself: {side}_{anchor} takes a {'+' if side == 'after' else '-'} offset",
            )
        try:
            self._cal: MarketCalendar = get_calendar(calendar)
        except ValueError as exc:
            raise TimingError("calendar", str(exc)) from None
        self.calendar = calendar
        self.when = when
        self.zone = self._cal.zone
        self._tz = ZoneInfo(self.zone)
        self._at_open = anchor == "open"
        self._offset = timedelta(minutes=int(offset[:-1]))

    def __repr__(self) -> str:
        return f"MarketTiming({self.calendar!r}, {self.when!r})"

    def _anchor(self, s: Session) -> datetime:
        return s.open if self._at_open else s.close

    def _first_after(self, x: datetime) -> Session | None:
        """The first session whose anchor is after ``x``."""
        span = _WINDOW
        while span <= _HORIZON:
            # Sessions meeting [x - 1 day, x + span): every anchor after x has its close after x.
            for s in self._cal.sessions(x - timedelta(days=1), x + span):
                if self._anchor(s) > x:
                    return s
            span *= 2
        return None

    def _last_at_or_before(self, x: datetime) -> Session | None:
        """The last session whose anchor is at or before ``x``."""
        span = _WINDOW
        while span <= _HORIZON:
            for s in reversed(self._cal.sessions(x - span, x + timedelta(days=1))):
                if self._anchor(s) <= x:
                    return s
            span *= 2
        return None

    def next_after(self, t: datetime) -> datetime:
        x = _aware(t).astimezone(UTC) - self._offset
        try:
            s = self._first_after(x)
        except ValueError as exc:  # beyond the dates the calendar supports
            raise TimingError("calendar", str(exc)) from None
        if s is None:
            raise TimingError("calendar", f"no {self.calendar} session within {_HORIZON.days} days of {t}")
        return self._anchor(s) + self._offset

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        s = self._session_at_or_before(t)
        return None if s is None else self._anchor(s) + self._offset

    def _session_at_or_before(self, t: datetime) -> Session | None:
        try:
            return self._last_at_or_before(_aware(t).astimezone(UTC) - self._offset)
        except ValueError:  # beyond the dates the calendar supports
            return None

    def logical_date(self, due_at: datetime) -> date:
        """The date of the session whose anchor the fire was computed from (``after_close+600m``
        lands after midnight but belongs to the session before it)."""
        s = self._session_at_or_before(due_at)
        return s.date if s is not None else _aware(due_at).astimezone(self._tz).date()


@functools.lru_cache(maxsize=2048)
def _cron_timing(cron: str, timezone: str) -> CronTiming:
    return CronTiming(cron, timezone)


@functools.lru_cache(maxsize=256)
def _market_timing(calendar: str, when: str) -> MarketTiming:
    return MarketTiming(calendar, when)


def timing_for(spec: TimingSpec) -> Timing:
    """The timing of a schedule (shared per distinct timing: they are safe to share).

    Raises:
        TimingError: naming the field that is wrong or missing.
    """
    if spec.cron is not None:
        if spec.calendar is not None or spec.when is not None:
            raise TimingError("cron", "give `cron` or `calendar` + `when`, not both")
        return _cron_timing(spec.cron, spec.timezone)
    if spec.calendar is None and spec.when is None:
        raise TimingError("cron", "give `cron`, or `calendar` and `when`")
    if spec.when is None:
        raise TimingError("when", "a `calendar` needs a `when` (after_close+30m, before_open-60m, …)")
    if spec.calendar is None:
        raise TimingError("calendar", "a `when` needs a `calendar` (XNYS)")
    return _market_timing(spec.calendar, spec.when)


def preview(timing: Timing, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times strictly after ``start``, in the timing's zone."""
    tz = ZoneInfo(timing.zone)
    out: list[datetime] = []
    t = start
    for _ in range(count):
        t = timing.next_after(t)
        out.append(t.astimezone(tz))
    return out


def logical_date(timing: Timing, due_at: datetime) -> date:
    """The date a fire belongs to (see each timing's ``logical_date``)."""
    return timing.logical_date(due_at)
