"""Market data reads: bars, history by period, latest price, batch prices."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from mds.cache import Cache
from mds.calendar import MarketCalendar
from mds.constants import quote_cache_key
from mds.corporate.adjust import RAW, Adjust, Adjustment, cutoff
from mds.domain.clock import Clock
from mds.domain.models import Bar, BarStatus, Interval
from mds.domain.records import UniverseEntry
from mds.errors import InvalidRequest, NotFound
from mds.observability.metrics import Metrics
from mds.providers.timeconv import local_date
from mds.serialize import bars_document, iso, quote_json
from mds.services.adjustments import Adjustments
from mds.services.bar_cache import ResponseBytes, SeriesGenerations
from mds.services.rollup import rollup
from mds.storage.base import BarStore, CorporateActionStore, RollupReader, UniverseStore

_PERIOD = re.compile(r"^(\d{1,4})(d|wk|mo|y)$")
PERIODS_HELP = "Nd (trading days), Nwk, Nmo, Ny, ytd or max, e.g. 5d, 1mo, 1y"
MAX_INTRADAY_RANGE = timedelta(days=31)
# How long this process trusts a universe entry it has read (wall seconds).
_SYMBOL_SECONDS = 2.0


@dataclass(frozen=True)
class BarsResult:
    symbol: str
    interval: Interval
    start: datetime
    end: datetime
    bars: list[Bar]
    adjustment: Adjustment = RAW

    def document(self, as_of: datetime | None) -> bytes:
        """The BarsOut JSON document of this result."""
        return bars_document(
            self.symbol,
            self.interval.value,
            self.start,
            self.end,
            as_of,
            self.bars,
            self.adjustment.describe(),
        )


_DB_ROLLUPS = (Interval.M5, Interval.M15, Interval.H1)


def _demote_open(bar: Bar, calendar: MarketCalendar, now: datetime) -> Bar:
    """A bucket that has not ended is provisional, whatever its parts say."""
    if bar.status is BarStatus.FINAL and calendar.bar_end(bar.ts, bar.interval) > now:
        return bar.with_(status=BarStatus.PROVISIONAL)
    return bar


def end_of_local_day(day: date) -> datetime:
    """The instant New York date ``day`` ends (midnight at the start of the next day), in UTC."""
    return cutoff(day + timedelta(days=1))


def _source(interval: Interval) -> Interval:
    """The stored series an interval is read (and rolled up) from."""
    return Interval.M1 if interval.is_intraday else Interval.D1


class MarketStore(BarStore, UniverseStore, CorporateActionStore, Protocol):
    """What the market reads need: bars and quotes, universe entries to resolve symbols, and
    corporate actions for adjusted reads.

    A store that is also a :class:`RollupReader` rolls 5m/15m/1h up in the database.
    """


class MarketService:
    def __init__(
        self,
        *,
        store: MarketStore,
        calendar: MarketCalendar,
        clock: Clock,
        cache: Cache | None = None,
        responses: ResponseBytes | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.clock = clock
        self.cache = cache
        # Closed ranges are served from kept bytes while their series is unchanged; that
        # needs the (shared) cache for generations, so no cache means no response cache.
        self.responses = responses if cache is not None else None
        self.generations = SeriesGenerations(cache) if cache is not None else None
        self.metrics = metrics
        self.adjustments = Adjustments(store, calendar, self.generations)
        self._symbols: dict[str, tuple[float, UniverseEntry]] = {}

    async def require_symbol(self, symbol: str) -> UniverseEntry:
        entry = await self._active_symbol(symbol)
        if entry is None:
            raise NotFound("symbol", symbol)
        return entry

    async def has_symbol(self, symbol: str) -> bool:
        """Whether ``symbol`` is in the active universe."""
        return await self._active_symbol(symbol) is not None

    async def _active_symbol(self, symbol: str) -> UniverseEntry | None:
        # Every read asks; the universe changes a few times a day. Only active entries
        # are remembered, for a moment, so a symbol that becomes known is served at once
        # and one taken out of the universe by another process stops within seconds.
        name = symbol.upper()
        kept = self._symbols.get(name)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        entry = await self.store.get_symbol(name)
        if entry is None or not entry.active:
            self._symbols.pop(name, None)
            return None
        self._symbols[name] = (time.monotonic() + _SYMBOL_SECONDS, entry)
        return entry

    async def bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        adjust: Adjust = Adjust.RAW,
    ) -> BarsResult:
        """Bars with ``start <= ts < end``, rolled up from 1m for 5m/15m/1h.

        5m comes from the 1m series wherever the range holds any 1m bar; a range with
        none is answered from stored native 5m bars. ``adjust`` applies the splits (and
        dividends) known at ``as_of`` up to the range's last session (see
        :mod:`mds.services.adjustments`).
        """
        entry = await self.require_symbol(symbol)
        return await self._bars(entry, interval, start, end, as_of, adjust)

    async def bars_json(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        adjust: Adjust = Adjust.RAW,
    ) -> bytes:
        """:meth:`bars` as the BarsOut JSON document; closed ranges come from kept bytes.

        A range is closed when its last bucket has ended (and ``as_of``, if given, is
        past): its answer then depends only on the stored series, whose generation is
        part of the key (see :mod:`mds.services.bar_cache`).
        """
        entry = await self.require_symbol(symbol)
        key = await self._kept_key(entry, interval, start, end, as_of, adjust)
        if key is None or self.responses is None:
            self._count_cache("bypass")
            result = await self._bars(entry, interval, start, end, as_of, adjust)
            return result.document(as_of)
        body = self.responses.get(key)
        if body is not None:
            self._count_cache("hit")
            return body
        result = await self._bars(entry, interval, start, end, as_of, adjust)
        body = result.document(as_of)
        self.responses.put(key, body)
        self._count_cache("miss")
        return body

    async def kept_bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        as_of: datetime | None = None,
        adjust: Adjust = Adjust.RAW,
    ) -> bytes | None:
        """What :meth:`bars_json` would answer, if it is kept; else None (ask bars_json).

        For the API's fast path: no error is raised here, an unknown symbol or an open
        range is simply not kept.
        """
        entry = await self._active_symbol(symbol)
        if entry is None or start >= end:
            return None
        key = await self._kept_key(entry, interval, start, end, as_of, adjust)
        body = self.responses.get(key) if key is not None and self.responses is not None else None
        if body is not None:
            self._count_cache("hit")
        return body

    async def _kept_key(
        self,
        entry: UniverseEntry,
        interval: Interval,
        start: datetime,
        end: datetime,
        as_of: datetime | None,
        adjust: Adjust = Adjust.RAW,
    ) -> tuple[object, ...] | None:
        """The key of a closed range's bytes; None when the range is open or nothing is kept.

        Closed: its last bucket has ended and ``as_of``, if given, is past. Its answer
        then depends only on the stored series, whose generation is part of the key and
        is taken before any read, so bytes are filed under a generation no newer than
        the data they hold.
        """
        if self.responses is None or self.generations is None:
            return None  # asking for a generation would be a wasted round trip
        now = self.clock.now()
        if end + timedelta(seconds=interval.seconds) > now or (as_of is not None and as_of > now):
            return None
        generation = await self.generations.current(entry.symbol, _source(interval))
        # An adjusted answer also depends on the actions (a refresh that learns one bumps the
        # series' generation) and on the basis date, which moves with the clock.
        basis = None if adjust is Adjust.RAW else self.basis_date(end)
        if interval is Interval.M5:
            # A 5m answer may come from native 5m bars (see _bars): their writes count too.
            native = await self.generations.current(entry.symbol, Interval.M5)
            return (entry.symbol, interval, start, end, as_of, adjust, basis, generation, native)
        return (entry.symbol, interval, start, end, as_of, adjust, basis, generation)

    def _count_cache(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.bars_response_cache_total.labels(result=result).inc()

    def basis_date(self, end: datetime) -> date:
        """The session date an adjusted read of ``[start, end)`` is expressed in: today, or the
        range's last day when it ends in the past (actions after it are not applied)."""
        now = self.clock.now()
        return local_date(min(end, now) - timedelta(microseconds=1))

    async def _bars(
        self,
        entry: UniverseEntry,
        interval: Interval,
        start: datetime,
        end: datetime,
        as_of: datetime | None,
        adjust: Adjust = Adjust.RAW,
    ) -> BarsResult:
        if start >= end:
            raise InvalidRequest("start", "start must be before end")
        if interval.is_intraday and end - start > MAX_INTRADAY_RANGE:
            raise InvalidRequest("end", f"intraday ranges are limited to {MAX_INTRADAY_RANGE.days} days")
        now = as_of or self.clock.now()
        if interval in _DB_ROLLUPS and isinstance(self.store, RollupReader):
            # Fewer rows cross the wire: a month of 1h bars is 150 rows, not 8,000.
            sessions = [(s.open, s.close) for s in self.calendar.sessions(start, end)]
            rolled = await self.store.read_rollup(entry.symbol, interval, start, end, sessions, as_of=as_of)
            bars = [_demote_open(b, self.calendar, now) for b in rolled]
        else:
            rows = await self.store.read_bars(entry.symbol, _source(interval), start, end, as_of=as_of)
            bars = rollup(rows, interval, self.calendar, now)
        if not bars and interval is Interval.M5:
            # No 1m series in the range: the native 5m bars a tracked symbol may hold
            # (services/history5m.py), labelled with the provider that sent them.
            native = await self.store.read_bars(entry.symbol, Interval.M5, start, end, as_of=as_of)
            bars = [_demote_open(b, self.calendar, now) for b in native]
        if adjust is Adjust.RAW:
            return BarsResult(entry.symbol, interval, start, end, bars)
        adjustment = await self.adjustments.plan(
            entry.symbol, adjust, as_of=as_of, through=self.basis_date(end), daily=bars
        )
        return BarsResult(entry.symbol, interval, start, end, adjustment.apply(bars), adjustment)

    async def history(
        self,
        symbol: str,
        period: str,
        interval: Interval = Interval.D1,
        *,
        adjust: Adjust = Adjust.RAW,
        as_of: datetime | None = None,
        on: date | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> BarsResult:
        """Bars over ``period`` ending now, or ``start <= ts < end`` when given; ``on`` cuts
        the range at session date ``on`` (event time: only bars whose session is on or before
        it, whenever MDS learned them)."""
        now = self.clock.now()
        end = end or now + timedelta(seconds=1)
        if on is not None:
            end = min(end, end_of_local_day(on))
        if start is None:
            start = self.period_start(period, end - timedelta(seconds=1))
            if interval.is_intraday:  # a longer period is cut to the newest MAX_INTRADAY_RANGE
                start = max(start, end - MAX_INTRADAY_RANGE)
        return await self.bars(symbol, interval, start, end, as_of=as_of, adjust=adjust)

    def period_start(self, period: str, now: datetime) -> datetime:
        p = period.strip().lower()
        if p == "max":
            return datetime(1970, 1, 1, tzinfo=UTC)
        if p == "ytd":
            return datetime(now.year, 1, 1, tzinfo=UTC)
        m = _PERIOD.match(p)
        if not m or int(m.group(1)) == 0:
            raise InvalidRequest("period", f"unknown period {period!r}; use {PERIODS_HELP}")
        n, unit = int(m.group(1)), m.group(2)
        if unit == "d":
            # Trading days: the open of the Nth most recent session.
            sessions = self.calendar.sessions(now - timedelta(days=n * 2 + 10), now)
            sessions = [s for s in sessions if s.open <= now]
            return sessions[-n].open if len(sessions) >= n else (sessions[0].open if sessions else now)
        if unit == "wk":
            return now - timedelta(weeks=n)
        months = n if unit == "mo" else 12 * n
        y, mth = divmod(now.month - 1 - months, 12)
        day = min(now.day, 28)
        return now.replace(year=now.year + y, month=mth + 1, day=day)

    async def price(self, symbol: str) -> dict[str, Any]:
        """The newest price MDS knows: a fresh quote, else the last 1m bar, else the last daily bar."""
        entry = await self.require_symbol(symbol)
        candidates: list[dict[str, Any]] = []
        if self.cache is not None:
            cached = await self.cache.get(quote_cache_key(entry.symbol))
            if cached is not None:
                candidates.append(
                    {
                        "price": cached["last"],
                        "ts": cached["ts"],
                        "source": "quote",
                        "provider": cached["provider"],
                        "as_of": cached["as_of"],
                    }
                )
        if not candidates:
            q = await self.store.latest_quote(entry.symbol)
            if q is not None:
                e = quote_json(q)
                candidates.append(
                    {
                        "price": e["last"],
                        "ts": e["ts"],
                        "source": "quote",
                        "provider": e["provider"],
                        "as_of": e["as_of"],
                    }
                )
        for interval, source in ((Interval.M1, "bar_1m"), (Interval.D1, "bar_1d")):
            bar = await self.store.latest_bar(entry.symbol, interval)
            if bar is not None:
                # A bar's close is the price at the bar's end, not at its open time.
                end = min(self.calendar.bar_end(bar.ts, interval), self.clock.now())
                candidates.append(
                    {
                        "price": bar.close,
                        "ts": iso(end),
                        "source": source,
                        "provider": bar.provider,
                        "as_of": iso(bar.as_of) if bar.as_of else None,
                    }
                )
        if not candidates:
            raise NotFound("price", f"{entry.symbol} (no data stored yet)")
        best = max(candidates, key=lambda c: c["ts"])
        return {"symbol": entry.symbol, **best}

    async def batch(self, symbols: list[str]) -> dict[str, Any]:
        prices: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for s in symbols:
            try:
                prices[s.upper()] = await self.price(s)
            except NotFound as exc:
                errors[s.upper()] = str(exc)
        return {"prices": prices, "errors": errors}
