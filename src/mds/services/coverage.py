"""Coverage and freshness of the tracked set (issue 14, seed 004 "Coverage & Freshness").

Freshness is counted in exchange sessions, not wall hours, so a weekend or a holiday never
makes data look stale. The buckets keep the seed's names:

- ``"<=24h"``: holds the last *closed* session (the newest session whose close, early
  closes honoured, is at or before now): its daily bar, or for 5m any bar in it;
- ``"24-48h"``: one session behind that;
- ``">48h"``: two or more sessions behind;
- ``"none"``: no bar at all.

Monday before the open, Friday's bar is ``"<=24h"``; so is the last session before a
holiday on the holiday. 5m counts 1m bars too (MDS rolls 5m up from 1m on read).

The snapshot (seed shape, plus ``sessions``) is computed from the store by a handful of
indexed queries over the tracked set, cached under ``coverage:health:last`` by
:meth:`CoverageService.refresh` (which the ``monitor_coverage_health`` task runs, hourly
by its default schedule), and served from that cache when present.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from mds.cache.base import Cache
from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.constants import COVERAGE_HEALTH_KEY, COVERAGE_TOKEN_KEY
from mds.domain.clock import Clock
from mds.domain.models import Interval
from mds.domain.reference import INDEXES, TrackedSet
from mds.ingest.scan import scan_gaps
from mds.observability.metrics import Metrics
from mds.serialize import iso
from mds.storage.base import ContinuityStore, CoverageStore, ListingStore

log = logging.getLogger(__name__)

FreshnessBucket = Literal["<=24h", "24-48h", ">48h", "none"]
BUCKETS: tuple[FreshnessBucket, ...] = ("<=24h", "24-48h", ">48h", "none")
#: The buckets a stale-only backfill acts on, worst first.
STALE_BUCKETS: tuple[FreshnessBucket, ...] = (">48h", "none", "24-48h")
#: Seed 004: the coverage-health monitor's snapshot (behind the Cache's own key prefix).
CACHE_KEY = COVERAGE_HEALTH_KEY
#: A token naming the snapshot under CACHE_KEY, so a process that has decoded that snapshot
#: once serves it again after a read of a few bytes instead of the whole JSON from Redis.
CACHE_TOKEN_KEY = COVERAGE_TOKEN_KEY
#: Seed 004: stale lists keep the first 50 symbols of each bucket.
STALE_LIST_MAX = 50
#: The snapshot's two series and their metric labels.
SERIES = ("daily", "m5")


class CoverageServiceStore(CoverageStore, ListingStore, ContinuityStore, Protocol):
    """What the coverage service reads: freshness facts, a series' extent, gap scans."""


@dataclass(frozen=True, slots=True)
class SessionMarks:
    """The opens of the last two closed sessions: everything a bucket is decided by.

    A daily bar's ts is its session's open and an intraday bar of a session has
    ``open <= ts < close``, so "holds session S" is ``ts >= S.open`` for both.
    """

    last: datetime | None  # open of the last closed session
    previous: datetime | None  # open of the one before it

    @classmethod
    def at(cls, calendar: MarketCalendar, now: datetime) -> SessionMarks:
        closed = calendar.closed_sessions(now, 2)
        return cls(
            last=closed[-1].open if closed else None,
            previous=closed[-2].open if len(closed) > 1 else None,
        )

    def bucket(self, last_ts: datetime | None) -> FreshnessBucket:
        if last_ts is None:
            return "none"
        if self.last is None or last_ts >= self.last:
            return "<=24h"
        if self.previous is None or last_ts >= self.previous:
            return "24-48h"
        return ">48h"


def freshness_bucket(
    last_ts: datetime | None, *, interval: Interval, calendar: MarketCalendar, now: datetime
) -> FreshnessBucket:
    """The freshness bucket of a series whose newest bar opened at ``last_ts`` (None: no bar).

    Counted in sessions (see the module docstring): ``"<=24h"`` holds the last session
    closed by ``now``, ``"24-48h"`` the one before, ``">48h"`` older, ``"none"`` nothing.
    ``interval``: ``1d`` (a bar per session) or an intraday interval (any bar in the session).
    """
    Interval(interval)  # a typo'd interval is a bug, not a bucket
    return SessionMarks.at(calendar, now).bucket(last_ts)


@dataclass(frozen=True, slots=True)
class _Series:
    """One interval's freshness over the tracked set (the snapshot's ``daily``/``m5``)."""

    last: dict[str, datetime]
    freshness: dict[FreshnessBucket, int]
    stale: dict[FreshnessBucket, list[str]]

    @classmethod
    def of(cls, symbols: Sequence[str], last: dict[str, datetime], marks: SessionMarks) -> _Series:
        freshness: dict[FreshnessBucket, int] = dict.fromkeys(BUCKETS, 0)
        stale: dict[FreshnessBucket, list[str]] = {b: [] for b in STALE_BUCKETS}
        for symbol in symbols:  # sorted, so each stale list is its bucket's first 50
            b = marks.bucket(last.get(symbol))
            freshness[b] += 1
            if b != "<=24h" and len(stale[b]) < STALE_LIST_MAX:
                stale[b].append(symbol)
        return cls(last, freshness, stale)

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": len(self.last),
            "last": {s: iso(t) for s, t in sorted(self.last.items())},
            "freshness": dict(self.freshness),
            "stale": {b: list(v) for b, v in self.stale.items()},
        }


class CoverageService:
    """Coverage of the tracked set: the seed's snapshot, its cache, one symbol's view.

    Args:
        store: Where the bars are.
        calendar: Sessions, for freshness and the expected daily bars.
        clock: "Now" for every bucket.
        cache: Where :meth:`refresh` keeps the snapshot (Redis when several processes run).
        metrics: The ``coverage_*`` gauges, set on every computed snapshot.
        tracked: Returns the tracked set (``TrackedService.tracked_set``).
        settings: COVERAGE_DAILY_MIN_SHARE, COVERAGE_REFRESH_SEC, BACKFILL_TRACKED_SESSIONS.
    """

    def __init__(
        self,
        store: CoverageServiceStore,
        calendar: MarketCalendar,
        clock: Clock,
        cache: Cache,
        metrics: Metrics,
        tracked: Callable[[], Awaitable[TrackedSet]],
        settings: Settings,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.cache = cache
        self.metrics = metrics
        self.tracked = tracked
        self.settings = settings
        self._computing: asyncio.Task[dict[str, Any]] | None = None
        self._memo: tuple[str, dict[str, Any]] | None = None  # (token, snapshot) last read

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def cache_ttl(self) -> float:
        """How long a refreshed snapshot is served: two refresh periods, so a monitor that
        stopped shows as ``meta.source == "db"`` instead of an ever older snapshot."""
        return 2 * self.settings.COVERAGE_REFRESH_SEC

    # -- the snapshot ------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """Compute the snapshot from the store now (``meta.source == "db"``) and set the gauges."""
        now = self.clock.now()
        tracked = await self.tracked()
        symbols = sorted(tracked.all)
        marks = SessionMarks.at(self.calendar, now)
        distinct, daily_last, m5_last = await asyncio.gather(
            self.store.symbols_with_bars(Interval.D1),
            self.store.last_bar_times(Interval.D1, symbols),
            self._intraday_last(symbols),
        )
        daily = _Series.of(symbols, daily_last, marks)
        m5 = _Series.of(symbols, m5_last, marks)
        sla = self._sla(len(symbols), daily, m5)
        snap: dict[str, Any] = {
            "symbols": distinct,
            "tracked_count": len(symbols),
            "indices": {i: int(tracked.index_counts.get(i, 0)) for i in INDEXES},
            "daily": daily.as_dict(),
            "m5": m5.as_dict(),
            "status": "ok" if sla["ok"] else "degraded",
            "sla": sla,
            "sessions": self._sessions(now),
            "meta": {"source": "db", "updated_at": iso(now)},
        }
        self._publish(now, len(symbols), daily, m5, sla)
        return snap

    async def refresh(self) -> dict[str, Any]:
        """Compute the snapshot, keep it in the cache under :data:`CACHE_KEY`, return it."""
        snap = await self.snapshot()
        cached = {**snap, "meta": {**snap["meta"], "source": "cache"}}
        token = uuid.uuid4().hex
        # The snapshot first, then its token: a reader holding the new token finds the new snapshot.
        await self.cache.set(CACHE_KEY, cached, ttl=self.cache_ttl)
        await self.cache.set(CACHE_TOKEN_KEY, token, ttl=self.cache_ttl)
        self._memo = (token, cached)
        status, failed = snap["status"], snap["sla"]["failed"]
        if failed:
            log.warning("coverage %s: %s failed (%s)", status, ", ".join(failed), _figures(snap))
        else:
            log.info("coverage %s (%s)", status, _figures(snap))
        return snap

    async def read(self) -> dict[str, Any]:
        """The cached snapshot (``meta.source == "cache"``), else one computed now (``"db"``).

        Concurrent reads that miss the cache share one computation.
        """
        cached = await self._cached()
        if cached is not None:
            # A copy of the top level: the memo and the in-process cache hand out one object.
            return {**cached, "meta": {**cached["meta"], "source": "cache"}}
        if self._computing is None or self._computing.done():
            self._computing = asyncio.ensure_future(self.snapshot())
        return await asyncio.shield(self._computing)

    async def _cached(self) -> dict[str, Any] | None:
        token = await self.cache.get(CACHE_TOKEN_KEY)
        if token is not None and self._memo is not None and self._memo[0] == token:
            return self._memo[1]
        cached = await self.cache.get(CACHE_KEY)
        if not (isinstance(cached, dict) and isinstance(cached.get("meta"), dict)):
            self._memo = None
            return None
        self._memo = (token, cached) if isinstance(token, str) else None
        return cached

    def _sla(self, tracked: int, daily: _Series, m5: _Series) -> dict[str, Any]:
        minimum = self.settings.COVERAGE_DAILY_MIN_SHARE
        share = daily.freshness["<=24h"] / tracked if tracked else 0.0
        over_48h = daily.freshness[">48h"]
        m5_missing = tracked - m5.freshness["<=24h"]
        checks: dict[str, dict[str, Any]] = {
            "daily_share": {"ok": share >= minimum, "value": round(share, 4), "threshold": minimum},
            "daily_over_48h": {"ok": over_48h == 0, "value": over_48h, "threshold": 0},
            # Counted in sessions, so on a weekend or holiday "the previous session" is the
            # last one that traded, and the check still means what it says.
            "m5_previous_session": {"ok": m5_missing == 0, "value": m5_missing, "threshold": 0},
        }
        failed = [name for name, check in checks.items() if not check["ok"]]
        return {"ok": not failed, "failed": failed, "checks": checks}

    def _sessions(self, now: datetime) -> dict[str, str | None]:
        closed = self.calendar.closed_sessions(now, 2)
        return {
            "last_closed": closed[-1].date.isoformat() if closed else None,
            "previous": closed[-2].date.isoformat() if len(closed) > 1 else None,
        }

    def _publish(self, now: datetime, tracked: int, daily: _Series, m5: _Series, sla: dict[str, Any]) -> None:
        m = self.metrics
        m.coverage_tracked_symbols.set(tracked)
        for name, series in zip(SERIES, (daily, m5), strict=True):
            for bucket, count in series.freshness.items():
                m.coverage_freshness_symbols.labels(interval=name, bucket=bucket).set(count)
        m.coverage_daily_share.set(sla["checks"]["daily_share"]["value"])
        m.coverage_status_ok.set(1 if sla["ok"] else 0)
        m.coverage_snapshot_timestamp_seconds.set(now.timestamp())

    async def _intraday_last(self, symbols: Sequence[str]) -> dict[str, datetime]:
        """Newest 5m-or-1m bar per symbol: 5m is stored natively or rolled up from 1m."""
        m5, m1 = await asyncio.gather(
            self.store.last_bar_times(Interval.M5, symbols), self.store.last_bar_times(Interval.M1, symbols)
        )
        out = dict(m1)
        for symbol, ts in m5.items():
            if symbol not in out or ts > out[symbol]:
                out[symbol] = ts
        return out

    # -- stale symbols and one symbol -------------------------------------------------------

    async def stale_by_bucket(
        self, buckets: Sequence[FreshnessBucket] = STALE_BUCKETS
    ) -> dict[FreshnessBucket, list[str]]:
        """Tracked symbols whose daily series is in one of ``buckets`` now (from the store),
        sorted, per bucket (every asked bucket present)."""
        unknown = set(buckets) - set(BUCKETS)
        if unknown:
            raise ValueError(f"unknown freshness buckets: {sorted(unknown)}")
        out: dict[FreshnessBucket, list[str]] = {b: [] for b in buckets}
        symbols = sorted((await self.tracked()).all)
        marks = SessionMarks.at(self.calendar, self.clock.now())
        last = await self.store.last_bar_times(Interval.D1, symbols)
        for symbol in symbols:
            group = out.get(marks.bucket(last.get(symbol)))
            if group is not None:
                group.append(symbol)
        return out

    async def stale_symbols(self, buckets: Sequence[FreshnessBucket] = STALE_BUCKETS) -> list[str]:
        """Tracked symbols whose daily series is in ``buckets`` now, sorted: what the
        stale-only daily backfill queues."""
        groups = await self.stale_by_bucket(buckets)
        return sorted(s for group in groups.values() for s in group)

    async def symbol(self, symbol: str) -> dict[str, Any]:
        """One symbol's view: tracked or not, daily and 5m freshness, and its daily gaps over
        the last BACKFILL_TRACKED_SESSIONS closed sessions (from its first trading session
        when that is known and later), neither stored nor confirmed empty."""
        now = self.clock.now()
        marks = SessionMarks.at(self.calendar, now)
        tracked = await self.tracked()
        extent = await self.store.series_extent(symbol, Interval.D1)
        m5, m1 = await asyncio.gather(
            self.store.last_bar_times(Interval.M5, [symbol]), self.store.last_bar_times(Interval.M1, [symbol])
        )
        last_5m, last_1m = m5.get(symbol), m1.get(symbol)
        intraday = max((t for t in (last_5m, last_1m) if t is not None), default=None)
        sessions = self.calendar.closed_sessions(now, self.settings.BACKFILL_TRACKED_SESSIONS)
        window: dict[str, Any] = {"sessions": len(sessions), "start": None, "end": iso(now)}
        gaps: list[dict[str, Any]] = []
        if sessions:
            start = sessions[0].open
            listed = (await self.store.first_trade_sessions([symbol])).get(symbol)
            if listed is not None and listed > start:
                start = listed
            window["start"] = iso(start)
            found = await scan_gaps(
                self.store,
                self.calendar,
                symbols=[symbol],
                interval=Interval.D1,
                start=start,
                end=now,
                now=now,
            )
            gaps = [{"start": iso(g.start), "end": iso(g.end), "missing_bars": g.missing_bars} for g in found]
        return {
            "symbol": symbol,
            "tracked": symbol in tracked.all,
            "daily": {
                "first": iso(extent[0]) if extent else None,
                "last": iso(extent[1]) if extent else None,
                "bucket": marks.bucket(extent[1] if extent else None),
            },
            "m5": {
                "last": None if intraday is None else iso(intraday),
                "bucket": marks.bucket(intraday),
                "last_5m": None if last_5m is None else iso(last_5m),
                "last_1m": None if last_1m is None else iso(last_1m),
            },
            "gaps": gaps,
            "missing_sessions": sum(g["missing_bars"] for g in gaps),
            "window": window,
            "sessions": self._sessions(now),
            "as_of": iso(now),
        }


def _figures(snap: dict[str, Any]) -> str:
    daily, m5 = snap["daily"]["freshness"], snap["m5"]["freshness"]
    return (
        f"{snap['tracked_count']} tracked; daily {daily['<=24h']} fresh, {daily['24-48h']} one behind,"
        f" {daily['>48h']} older, {daily['none']} none; 5m {m5['<=24h']} fresh"
    )
