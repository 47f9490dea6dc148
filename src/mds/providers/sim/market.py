"""A deterministic synthetic market: the ground truth behind the ``sim`` providers.

Every number is a pure function of ``(seed, symbol, session date)``, so the same bar
comes back whatever range was asked, in any process, from any SimMarket instance.

How prices are made (hand-written: no library generates calendar-aware synthetic bars):

* Each symbol gets a base price and a base daily volume from its seed.
* A daily log level ``L[d]`` per calendar day is a Gaussian random walk, reflected
  into ``log(base) +/- _BAND`` so prices stay plausible over centuries. To reach day
  ``d`` without generating every day before it, days are grouped in blocks of
  ``_BLOCK``: each block's total move is drawn directly (one cheap array per symbol)
  and the days inside a block are a Brownian bridge to that total.
* A session on day ``d`` opens near ``L[d]`` and drifts, minute by minute, as a
  Brownian bridge to ``L[d+1]``; so the weekend and holiday walk shows up as an
  overnight gap, like real markets.
* 1m bars are the primary data; every larger bar is aggregated from them exactly.
* Symbols given a ``no_trade`` probability lose some minutes altogether (no trades, so no
  bar), decided per (seed, symbol, minute). The prices of the minutes that remain are the
  same as without ``no_trade``; coarser bars aggregate only the minutes that exist, and a
  bucket left with none is absent.
* Splits and dividends (:mod:`mds.providers.sim.actions`, ``SIM_SPLITS``/``SIM_DIVIDENDS``)
  turn that series into raw, as-traded prices: each session's bars and quotes are the
  continuous ones times the session's multiplier (volume divided by later splits), so a
  4:1 split shows as a 4x drop at its ex-date and a dividend as a drop by its amount. The
  series generated below is the continuous (split-adjusted, total-return) truth.
* A few demo symbols have listing dates (:data:`SIM_LISTINGS`): the sim providers and
  :func:`ground_truth` serve no bar before a symbol's listing, so a backfill reaching
  back past one can be tried offline. SimMarket itself stays listing-free: it is the pure
  generator, and its property tests draw symbols such as "V" on any date.

One module although long: the walk, the bridge and the aggregation are one generator whose
parts must agree exactly (a 1d bar is the sum of its 1m bars); apart, they could drift.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType

import numpy as np

from mds.calendar import MarketCalendar, Session, get_calendar
from mds.domain.actions import CorporateAction
from mds.domain.models import Bar, BarStatus, Interval, Quote, ensure_utc
from mds.errors import ConfigError
from mds.providers.sim.actions import RawBasis, raw_basis
from mds.providers.timeconv import NEW_YORK

__all__ = ["SIM_LISTINGS", "SimMarket", "ground_truth", "listing_open", "parse_no_trade", "stable_hash"]

#: First trading day of a few demo symbols: their real IPO dates, labelled as the sim's
#: (the prices around them are synthetic like every other sim price).
SIM_LISTINGS: Mapping[str, date] = MappingProxyType(
    {
        "GOOG": date(2004, 8, 19),
        "META": date(2012, 5, 18),
        "TSLA": date(2010, 6, 29),
        "V": date(2008, 3, 19),
    }
)

_EPOCH_ORDINAL = date(1900, 1, 1).toordinal()  # day 0 of the daily walk
_BLOCK = 4096  # days per walk block
_N_BLOCKS = 128  # covers 1900 .. ~3335, beyond any calendar lookup
_DAILY_VOL = 0.015  # daily log-volatility of the walk
_BAND = 0.7  # the walk is reflected into log(base) +/- this
_MINUTE_VOL = 0.0006  # 1m log-volatility around the intraday bridge
_GAP_VOL = 0.004  # open vs. the day's level

# Stream tags keep the random streams for different purposes independent.
_TAG_SYMBOL, _TAG_BLOCKSUMS, _TAG_BLOCK, _TAG_SESSION, _TAG_NO_TRADE = 1, 2, 3, 4, 5


def stable_hash(text: str) -> int:
    """A process-independent hash (Python's ``hash()`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


@functools.lru_cache(maxsize=64)
def _shape(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bridge fractions (minutes 1..n over n) and the per-minute share of daily volume."""
    frac = np.arange(1, n + 1) / n
    x = (np.arange(n) + 0.5) / 390.0
    profile = (0.55 + 5.4 * (x - 0.5) ** 2) / 390.0  # U-shaped: busy open and close
    return frac, profile


@dataclass(frozen=True, slots=True)
class _Minutes:
    """One session's 1m bars as arrays (index i is the bar at open + i minutes).

    ``traded`` is None when every minute has a bar, else a mask of the minutes that do.
    """

    open_epoch: int
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray
    traded: np.ndarray | None = None


_OHLCV = tuple[float, float, float, float, float]


def _key(session: Session) -> tuple[int, int, int]:
    """Cache key of a session: (date ordinal, open epoch, close epoch)."""
    return session.date.toordinal(), int(session.open.timestamp()), int(session.close.timestamp())


def _aggregate(m: _Minutes, closed: int) -> _OHLCV | None:
    """OHLCV of a session's first ``closed`` minutes (all of them for a final daily bar).

    None when none of those minutes traded.
    """
    if m.traded is not None:
        idx = np.flatnonzero(m.traded[:closed])
        if idx.size == 0:
            return None
        return (
            float(m.o[idx[0]]),
            float(m.h[idx].max()),
            float(m.low[idx].min()),
            float(m.c[idx[-1]]),
            float(m.v[idx].sum()),
        )
    return (
        float(m.o[0]),
        float(m.h[:closed].max()),
        float(m.low[:closed].min()),
        float(m.c[closed - 1]),
        float(m.v[:closed].sum()),
    )


def parse_no_trade(text: str) -> dict[str, float]:
    """Parse a ``SIM_NO_TRADE`` value such as ``"ILLQ=0.3,THIN=0.1"``.

    Symbols are upper-cased; an empty value means no such symbols.

    Raises:
        ConfigError: An entry is not ``SYMBOL=probability`` with a probability in [0, 1],
            or a symbol appears twice.
    """
    out: dict[str, float] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        symbol, sep, value = entry.partition("=")
        symbol = symbol.strip().upper()
        if not sep or not symbol:
            raise ConfigError("SIM_NO_TRADE", f"expected SYMBOL=probability, got {entry!r}")
        try:
            p = float(value)
        except ValueError:
            raise ConfigError("SIM_NO_TRADE", f"{symbol}: {value.strip()!r} is not a number") from None
        if not 0.0 <= p <= 1.0:  # also refuses nan
            raise ConfigError("SIM_NO_TRADE", f"{symbol}: probability {p} is not in [0, 1]")
        if symbol in out:
            raise ConfigError("SIM_NO_TRADE", f"{symbol} is given twice")
        out[symbol] = p
    return out


def _last_close(m: _Minutes, closed: int) -> float | None:
    """Close of the last traded minute among the first ``closed``; None if there is none."""
    if closed <= 0:
        return None
    if m.traded is None:
        return float(m.c[closed - 1])
    idx = np.flatnonzero(m.traded[:closed])
    return float(m.c[idx[-1]]) if idx.size else None


class SimMarket:
    """Deterministic bars and quotes for any symbol, inside the calendar's sessions only.

    Args:
        seed: The ground-truth seed; the same seed gives the same market.
        calendar: The exchange calendar; defaults to the shared XNYS calendar.
        no_trade: Symbol -> probability that a minute has no trades (and so no bar).
            Other symbols trade every minute.
        actions: Symbol -> its splits and dividends (``sim_actions_from_env``); bars and
            quotes are raw across them. Symbols without actions are unchanged.
    """

    def __init__(
        self,
        seed: int = 42,
        calendar: MarketCalendar | None = None,
        *,
        no_trade: Mapping[str, float] | None = None,
        actions: Mapping[str, Sequence[CorporateAction]] | None = None,
    ) -> None:
        self.seed = int(seed)
        self.calendar = calendar if calendar is not None else get_calendar("XNYS")
        for symbol, p in (no_trade or {}).items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"no_trade probability for {symbol} must lie in [0, 1], got {p}")
        # Symbols with probability 0 trade every minute: leave them on the dense path.
        self.no_trade = {s: float(p) for s, p in (no_trade or {}).items() if p > 0}
        # Per-instance caches (sized for a demo universe; misses only cost regeneration).
        self._symbol = functools.lru_cache(maxsize=16_384)(self._make_symbol)
        self._block = functools.lru_cache(maxsize=2_048)(self._make_block)
        self._minutes = functools.lru_cache(maxsize=2_048)(self._make_minutes)
        self._daily = functools.lru_cache(maxsize=500_000)(self._make_daily)
        self.actions: dict[str, tuple[CorporateAction, ...]] = {
            s: tuple(sorted(a, key=lambda x: x.ex_date)) for s, a in (actions or {}).items() if a
        }
        self._basis = functools.lru_cache(maxsize=4_096)(self._make_basis)

    # -- the model ------------------------------------------------------------------

    def _make_symbol(self, symbol: str) -> tuple[float, float, np.ndarray]:
        """(log base price, base daily volume, walk level at the start of each block)."""
        h = stable_hash(symbol)
        u = _rng(self.seed, h, _TAG_SYMBOL).random(2)
        log_base = math.log(10.0) + u[0] * (math.log(400.0) - math.log(10.0))
        base_volume = math.exp(math.log(2e5) + u[1] * (math.log(2e7) - math.log(2e5)))
        sums = _rng(self.seed, h, _TAG_BLOCKSUMS).normal(0.0, _DAILY_VOL * math.sqrt(_BLOCK), _N_BLOCKS)
        starts = np.concatenate(([0.0], np.cumsum(sums)))
        return log_base, base_volume, starts

    def _make_block(self, symbol: str, block: int) -> np.ndarray:
        """Log price level for every day of one block (reflected walk around the base)."""
        log_base, _, starts = self._symbol(symbol)
        if not 0 <= block < _N_BLOCKS:
            raise ValueError(f"sim market has no prices for block {block} (dates 1900..3300 only)")
        steps = _rng(self.seed, stable_hash(symbol), _TAG_BLOCK, block).normal(0.0, _DAILY_VOL, _BLOCK)
        walk = np.concatenate(([0.0], np.cumsum(steps)))[:-1]
        frac = np.arange(_BLOCK) / _BLOCK
        # Bridge the free walk onto the block's pre-drawn total so blocks join up.
        total = starts[block + 1] - starts[block]
        w = starts[block] + walk - frac * (walk[-1] + steps[-1]) + frac * total
        # Reflect into [-_BAND, _BAND]: a triangle wave keeps increments intact between walls.
        period = 4 * _BAND
        folded = _BAND - np.abs(np.mod(w + _BAND, period) - 2 * _BAND)
        levels: np.ndarray = log_base + folded
        return levels

    def _level(self, symbol: str, ordinal: int) -> float:
        day = ordinal - _EPOCH_ORDINAL
        return float(self._block(symbol, day // _BLOCK)[day % _BLOCK])

    def _make_minutes(self, symbol: str, ordinal: int, open_epoch: int, close_epoch: int) -> _Minutes:
        """Generate one session's 1m bars, vectorised."""
        n = -((open_epoch - close_epoch) // 60)
        _, base_volume, _ = self._symbol(symbol)
        rng = _rng(self.seed, stable_hash(symbol), _TAG_SESSION, ordinal)
        z = rng.standard_normal((3, n))
        start = self._level(symbol, ordinal) + _GAP_VOL * rng.standard_normal()
        target = self._level(symbol, ordinal + 1)
        # Brownian bridge of n minute steps from the open level to the next day's level.
        frac, profile = _shape(n)
        walk = np.cumsum(z[0] * _MINUTE_VOL)
        path = np.empty(n + 1)
        path[0] = start
        path[1:] = start + frac * (target - start - walk[-1]) + walk
        prices = np.round(np.exp(path), 2)
        o, c = prices[:-1], prices[1:]
        wick = np.exp(np.abs(z[1]) * _MINUTE_VOL * 0.7)
        # Ceil/floor to cents keeps high >= max(o, c) and low <= min(o, c) after rounding.
        h = np.maximum(np.ceil(np.maximum(o, c) * wick * 100 - 1e-6) / 100, np.maximum(o, c))
        low = np.minimum(np.floor(np.minimum(o, c) / wick * 100 + 1e-6) / 100, np.minimum(o, c))
        low = np.maximum(low, 0.01)
        v = np.floor(base_volume * profile * np.exp(0.5 * z[2] - 0.125))
        traded = self._traded(symbol, ordinal, n)
        for arr in (o, h, low, c, v) + (() if traded is None else (traded,)):
            arr.flags.writeable = False
        return _Minutes(open_epoch, o, h, low, c, v, traded)

    def _traded(self, symbol: str, ordinal: int, n: int) -> np.ndarray | None:
        """Which of a session's n minutes traded; None for a symbol that trades every minute.

        Drawn from its own stream, so the prices are those of the symbol without no_trade,
        and ``u >= p`` makes a higher probability drop a superset of the minutes.
        """
        p = self.no_trade.get(symbol)
        if p is None:
            return None
        u = _rng(self.seed, stable_hash(symbol), _TAG_NO_TRADE, ordinal).random(n)
        return u >= p

    def _session_minutes(self, symbol: str, session: Session) -> _Minutes:
        return self._minutes(symbol, *_key(session))

    def _make_daily(self, symbol: str, ordinal: int, open_epoch: int, close_epoch: int) -> _OHLCV | None:
        m = self._minutes(symbol, ordinal, open_epoch, close_epoch)
        return _aggregate(m, len(m.o))

    # -- splits and dividends ---------------------------------------------------------

    def _make_basis(self, symbol: str) -> RawBasis:
        return raw_basis(self.actions[symbol], lambda day: self._close_before(symbol, day))

    def _close_before(self, symbol: str, day: date) -> float:
        """The continuous close of the last session before ``day``."""
        close = self.calendar.previous_close(datetime.combine(day, time(0), NEW_YORK))
        session = self.calendar.session_for(close - timedelta(seconds=1))
        assert session is not None  # a close always ends a session
        daily = self._daily(symbol, *_key(session))
        if daily is None:  # not one trade all session: the model's price at the close
            return float(self._session_minutes(symbol, session).c[-1])
        return daily[3]

    def raw_scale(self, symbol: str, day: date) -> tuple[float, float] | None:
        """(price multiplier, volume divisor) from continuous to raw on ``day``; None when
        ``symbol`` has no actions (its raw prices are the continuous ones)."""
        return self._basis(symbol).at(day) if symbol in self.actions else None

    def actions_known_at(self, symbol: str, start: date, end: date, now: datetime) -> list[CorporateAction]:
        """``symbol``'s actions with ``start <= ex_date <= end`` announced by ``now``'s
        New York date, in ex-date order (``source`` is "sim"; callers relabel it)."""
        today = ensure_utc(now).astimezone(NEW_YORK).date()
        return [
            a
            for a in self.actions.get(symbol, ())
            if start <= a.ex_date <= end and (a.declared_date is None or a.declared_date <= today)
        ]

    # -- bars -------------------------------------------------------------------------

    def bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        provider: str = "sim",
    ) -> list[Bar]:
        """Ground truth: every bar with ``start <= ts < end``, all final."""
        return self._bars(symbol, Interval(interval), start, end, None, provider)

    def bars_known_at(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        now: datetime,
        *,
        provider: str = "sim",
    ) -> list[Bar]:
        """What a vendor would answer at ``now``.

        Bars whose interval closed by ``now`` are final ground truth; the bar containing
        ``now`` aggregates the 1m bars closed before ``now`` (provisional; omitted if none
        has closed); nothing at or after ``now`` is returned.
        """
        return self._bars(symbol, Interval(interval), start, end, ensure_utc(now), provider)

    def _bars(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        now: datetime | None,
        provider: str,
    ) -> list[Bar]:
        # Bar times are whole seconds, so ceil keeps `start <= ts < end` exact.
        t0, t1 = math.ceil(ensure_utc(start).timestamp()), math.ceil(ensure_utc(end).timestamp())
        now_e = None if now is None else math.floor(now.timestamp())
        if now is not None:
            t1 = min(t1, math.ceil(now.timestamp()))  # no bar opens at or after `now`
        if t1 <= t0:
            return []
        out: list[Bar] = []
        basis = self._basis(symbol) if symbol in self.actions else None
        for session in self.calendar.sessions(_utc(t0), _utc(t1)):
            open_e, close_e = int(session.open.timestamp()), int(session.close.timestamp())
            n = -((open_e - close_e) // 60)
            closed = n if now_e is None else min(max((now_e - open_e) // 60, 0), n)
            scale = None if basis is None else basis.at(session.date)
            if interval is Interval.D1:
                if t0 <= open_e < t1 and closed > 0:
                    daily = self._daily_bar(symbol, session, closed, n, provider, scale)
                    if daily is not None:
                        out.append(daily)
            else:
                out.extend(self._intraday(symbol, interval, session, closed, t0, t1, provider, scale))
        return out

    def _daily_bar(
        self,
        symbol: str,
        session: Session,
        closed: int,
        n: int,
        provider: str,
        scale: tuple[float, float] | None = None,
    ) -> Bar | None:
        if closed == n:
            ohlcv = self._daily(symbol, *_key(session))
            status = BarStatus.FINAL
        else:
            ohlcv = _aggregate(self._session_minutes(symbol, session), closed)
            status = BarStatus.PROVISIONAL
        if ohlcv is None:  # no minute has traded (yet)
            return None
        o, h, low, c, v = ohlcv
        if scale is not None:
            m, d = scale
            o, h, low, c, v = o * m, h * m, low * m, c * m, v / d
        return Bar(symbol, Interval.D1, session.open, o, h, low, c, v, provider, status=status)

    def _intraday(
        self,
        symbol: str,
        interval: Interval,
        session: Session,
        closed: int,
        t0: int,
        t1: int,
        provider: str,
        scale: tuple[float, float] | None = None,
    ) -> list[Bar]:
        if closed == 0:
            return []
        m = self._session_minutes(symbol, session)
        if m.traded is not None:
            return self._intraday_sparse(symbol, interval, m, closed, t0, t1, provider, scale)
        n = len(m.o)
        step = interval.seconds // 60
        idx = np.arange(0, closed, step)
        ts = m.open_epoch + idx * 60
        keep = (ts >= t0) & (ts < t1)
        if not keep.any():
            return []
        # Aggregate only the minutes closed so far; the bucket they end inside is provisional.
        ends = np.minimum(idx + step, closed)
        final = np.minimum(idx + step, n) <= closed
        o = m.o[idx]
        h = np.maximum.reduceat(m.h[:closed], idx)
        low = np.minimum.reduceat(m.low[:closed], idx)
        c = m.c[ends - 1]
        v = np.add.reduceat(m.v[:closed], idx)
        return _make_bars(symbol, interval, provider, keep, ts, (o, h, low, c, v), final, scale)

    def _intraday_sparse(
        self,
        symbol: str,
        interval: Interval,
        m: _Minutes,
        closed: int,
        t0: int,
        t1: int,
        provider: str,
        scale: tuple[float, float] | None = None,
    ) -> list[Bar]:
        """The dense path's rules over the traded minutes only; an empty bucket has no bar."""
        assert m.traded is not None
        n = len(m.o)
        step = interval.seconds // 60
        minutes = np.flatnonzero(m.traded[:closed])  # traded minutes closed so far
        if minutes.size == 0:
            return []
        bucket = minutes // step
        # Positions in `minutes` where each non-empty bucket starts, and its last one.
        starts = np.flatnonzero(np.diff(bucket, prepend=-1))
        lasts = np.append(starts[1:], minutes.size) - 1
        first_minute = bucket[starts] * step
        ts = m.open_epoch + first_minute * 60
        keep = (ts >= t0) & (ts < t1)
        if not keep.any():
            return []
        final = np.minimum(first_minute + step, n) <= closed
        o = m.o[minutes[starts]]
        h = np.maximum.reduceat(m.h[minutes], starts)
        low = np.minimum.reduceat(m.low[minutes], starts)
        c = m.c[minutes[lasts]]
        v = np.add.reduceat(m.v[minutes], starts)
        return _make_bars(symbol, interval, provider, keep, ts, (o, h, low, c, v), final, scale)

    # -- quotes ---------------------------------------------------------------------

    def last_price(self, symbol: str, now: datetime) -> float:
        """Close of the last 1m bar closed before ``now`` (the previous close outside hours),
        raw (as traded in that session's shares)."""
        now = ensure_utc(now)
        session = self.calendar.session_for(now)
        if session is not None:
            closed = int((now - session.open).total_seconds()) // 60
            last = _last_close(self._session_minutes(symbol, session), closed)
            if last is not None:
                return self._raw_price(symbol, session, last)
        prev_close = self.calendar.previous_close(now)
        prev = self.calendar.session_for(_utc(int(prev_close.timestamp()) - 1))
        assert prev is not None  # a close always ends a session
        daily = self._daily(symbol, *_key(prev))
        if daily is None:  # not one trade all session: the model's price at the close
            return self._raw_price(symbol, prev, float(self._session_minutes(symbol, prev).c[-1]))
        return self._raw_price(symbol, prev, daily[3])

    def _raw_price(self, symbol: str, session: Session, price: float) -> float:
        scale = self.raw_scale(symbol, session.date)
        return price if scale is None else price * scale[0]

    def quote(self, symbol: str, now: datetime, *, provider: str = "sim") -> Quote:
        """A level-1 quote at ``now``: last trade plus a deterministic small spread."""
        now = ensure_utc(now)
        last = self.last_price(symbol, now)
        half = max(0.01, round(last * 0.0001, 2))
        minute = int(now.timestamp()) // 60
        sizes = stable_hash(f"{self.seed}:{symbol}:{minute}")
        return Quote(
            symbol=symbol,
            ts=now,
            bid=round(last - half, 2),
            ask=round(last + half, 2),
            last=last,
            bid_size=float(100 * (1 + sizes % 20)),
            ask_size=float(100 * (1 + (sizes >> 8) % 20)),
            provider=provider,
        )


def _make_bars(
    symbol: str,
    interval: Interval,
    provider: str,
    keep: np.ndarray,
    ts: np.ndarray,
    ohlcv: tuple[np.ndarray, ...],
    final: np.ndarray,
    scale: tuple[float, float] | None = None,
) -> list[Bar]:
    """Bars from aligned arrays, keeping the rows flagged in ``keep``; ``scale`` (price
    multiplier, volume divisor) turns continuous prices into raw ones."""
    if scale is not None:
        m, d = scale
        o, h, low, c, v = ohlcv
        ohlcv = (o * m, h * m, low * m, c * m, v / d)
    rows = zip(ts[keep].tolist(), *(a[keep].tolist() for a in ohlcv), final[keep].tolist(), strict=True)
    return [
        Bar(
            symbol,
            interval,
            _utc(t),
            bo,
            bh,
            bl,
            bc,
            bv,
            provider,
            status=BarStatus.FINAL if fin else BarStatus.PROVISIONAL,
        )
        for t, bo, bh, bl, bc, bv, fin in rows
    ]


def listing_open(
    symbol: str, calendar: MarketCalendar, listings: Mapping[str, date] = SIM_LISTINGS
) -> datetime | None:
    """The open of ``symbol``'s first session (no bar of the sim is before it); None if unlisted."""
    day = listings.get(symbol)
    return None if day is None else calendar.next_open(datetime.combine(day, time(), UTC))


@functools.lru_cache(maxsize=8)
def _shared_market(
    seed: int,
    no_trade: tuple[tuple[str, float], ...] = (),
    actions: tuple[tuple[str, tuple[CorporateAction, ...]], ...] = (),
) -> SimMarket:
    return SimMarket(seed, no_trade=dict(no_trade), actions=dict(actions))


def ground_truth(
    symbol: str,
    interval: Interval,
    start: datetime,
    end: datetime,
    *,
    seed: int = 42,
    no_trade: Mapping[str, float] | None = None,
    actions: Mapping[str, Sequence[CorporateAction]] | None = None,
    listings: Mapping[str, date] = SIM_LISTINGS,
) -> list[Bar]:
    """The sim providers' final bars for ``start <= ts < end`` (a cached market per seed).

    ``no_trade`` and ``actions`` are :class:`SimMarket`'s arguments of the same names;
    nothing is served before a symbol's listing in ``listings`` (the providers' default,
    :data:`SIM_LISTINGS`).
    """
    key = tuple(sorted((no_trade or {}).items()))
    acts = tuple(sorted((s, tuple(a)) for s, a in (actions or {}).items()))
    market = _shared_market(seed, key, acts)
    listed = listing_open(symbol, market.calendar, listings)
    if listed is not None:
        start = max(ensure_utc(start), listed)
    return market.bars(symbol, interval, start, end)
