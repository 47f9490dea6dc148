"""AnalysisService: what the analysis routes and ``mds ta`` call.

It reads bars (the bar store for one symbol, the analysis store's bulk reader for many),
runs the engine, and keeps MarketAnalysisCache and MarketAnalysisHistory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from mds.analysis import indicators as ind
from mds.analysis.base import TECHNICAL, AnalysisStore, CacheEntry, HistoryEntry
from mds.analysis.snapshot import (
    DEFAULT_BARS,
    DailyBarSource,
    StoreBarSource,
    build_snapshots,
    end_of_day,
    pit_cutoff,
    to_batch,
)
from mds.calendar import MarketCalendar
from mds.corporate.adjust import Adjust, adjust_rows, cutoff, plan, previous_closes_in
from mds.domain.actions import ActionType
from mds.domain.clock import Clock
from mds.domain.models import Interval
from mds.errors import InvalidRequest, NotFound
from mds.providers.timeconv import local_date
from mds.serialize import iso, ohlcv_json
from mds.services.market import MarketService, MarketStore

#: Adds fields to snapshots after changing their bars (see build_snapshots).
Adjuster = Callable[[dict[str, np.ndarray]], Awaitable[dict[str, dict[str, Any]]]]

_RANGE = re.compile(r"^(\d{1,4})(d|wk|mo|y)$|^ytd$|^max$")
#: A second past "now", so a bar stamped exactly now is inside ``ts < end``.
_TICK = timedelta(seconds=1)


class AnalysisService:
    """Snapshots, ATR, prices, refresh and history over a store.

    Args:
        store: The bar store (for symbol lookups and single-symbol reads).
        analysis: Cache, history and the bulk bar reader.
        calendar: The exchange calendar.
        clock: The injected clock.
        market: The market service (prices use its period rules).
        ttl_sec: Expiry of a cached snapshot (setting ANALYSIS_CACHE_TTL_SEC).
        bars: Daily bars per snapshot.
        adjust: The adjustment snapshots are computed on (setting ANALYSIS_ADJUST).
    """

    def __init__(
        self,
        *,
        store: MarketStore,
        analysis: AnalysisStore,
        calendar: MarketCalendar,
        clock: Clock,
        market: MarketService,
        ttl_sec: float,
        bars: int = DEFAULT_BARS,
        adjust: Adjust = Adjust.SPLIT,
    ) -> None:
        self.store = store
        self.analysis = analysis
        self.calendar = calendar
        self.clock = clock
        self.market = market
        self.ttl = timedelta(seconds=ttl_sec)
        self.bars = bars
        self.adjust = adjust
        self._one = StoreBarSource(store)

    async def _symbol(self, symbol: str) -> str:
        entry = await self.store.get_symbol(symbol.strip().upper())
        if entry is None or not entry.active:
            raise NotFound("symbol", symbol)
        return entry.symbol

    # ---------------------------------------------------------------- adjustment
    def _adjusting(self, *, as_of: datetime | None, through: date) -> Adjuster:
        """The transform that adjusts each symbol's rows by its actions known at ``as_of``
        with an ex-date on or before ``through``, and names them in the snapshot."""

        async def transform(data: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
            mode = self.adjust
            extra: dict[str, dict[str, Any]] = {s: {"adjustment": plan(mode, []).describe()} for s in data}
            # For many symbols, one query finds the few that have any action and only they are
            # read; for one, its own actions are the cheaper question.
            with_actions = set(data) if len(data) == 1 else await self.store.corporate_action_symbols()
            for sym, rows in data.items():
                if sym not in with_actions or len(rows) == 0:
                    continue
                first = rows[0, 0]
                # Only actions after the first bar change any bar of the window.
                actions = [
                    a
                    for a in await self.store.corporate_actions(sym, as_of=as_of, end=through)
                    if cutoff(a.ex_date).timestamp() > first
                ]
                if not actions:
                    continue
                dividends = [a for a in actions if a.type is ActionType.DIVIDEND]
                adjustment = plan(mode, actions, previous_closes=previous_closes_in(rows, dividends))
                data[sym] = adjust_rows(rows, adjustment)
                extra[sym] = {"adjustment": adjustment.describe()}
            return extra

        return transform

    async def _current(
        self, source: DailyBarSource, symbols: Sequence[str], now: datetime
    ) -> list[dict[str, Any]]:
        """Snapshots of ``symbols`` now: every bar stored, adjusted by the actions known now."""
        return await build_snapshots(
            source,
            self.calendar,
            symbols,
            end=now + _TICK,
            bars=self.bars,
            transform=self._adjusting(as_of=None, through=local_date(now)),
        )

    # --------------------------------------------------------------- one symbol
    async def snapshot(
        self,
        symbol: str,
        *,
        as_of: date | datetime | None = None,
        on: date | None = None,
    ) -> dict[str, Any]:
        """The technical snapshot of ``symbol``, on split-adjusted bars (ANALYSIS_ADJUST).

        Two time axes: ``as_of`` is knowledge time (only bars and actions MDS knew then);
        ``on`` is event time (only sessions on or before that date, whenever MDS learned
        them). Both together answer "what would I have computed on D with what I knew then".

        Without either, a cached snapshot is served while it has not expired, no newer
        daily bar (or revision of the newest) and no corporate action of the symbol has been
        learned since it was computed; otherwise it is computed and cached.

        Raises:
            NotFound: The symbol is not in the active universe.
        """
        sym = await self._symbol(symbol)
        now = self.clock.now()
        if as_of is not None or on is not None:
            known = pit_cutoff(as_of, self.calendar, now) if as_of is not None else None
            end = min(end_of_day(on, self.calendar), now + _TICK) if on is not None else (known or now)
            through = on if on is not None else local_date(end - _TICK)
            [snap] = await build_snapshots(
                self._one,
                self.calendar,
                [sym],
                end=end,
                as_of=known,
                bars=self.bars,
                transform=self._adjusting(as_of=known, through=through),
            )
            out = {**snap, "source": "computed"}
            if known is not None:
                out["computed_as_of"] = iso(known)
                await self._explain_knowledge_axis(out, end=end, known=known)
            else:
                out["computed_at"] = iso(now)
            if on is not None:
                out["date"] = on.isoformat()
                if snap["bars_used"] == 0 and known is None:
                    out["reasons"] = _reword(
                        out["reasons"], f"no daily bars with a session on or before {on}"
                    )
            return out
        cached = await self.analysis.get_cache(sym, TECHNICAL, now=now)
        if cached is not None and await self._still_valid(sym, cached.computed_at):
            return {**cached.snapshot, "source": "cache", "computed_at": iso(cached.computed_at)}
        [snap] = await self._current(self._one, [sym], now)
        await self.analysis.put_cache([CacheEntry(sym, TECHNICAL, snap, now, now + self.ttl)])
        return {**snap, "source": "computed", "computed_at": iso(now)}

    async def _still_valid(self, sym: str, computed_at: datetime) -> bool:
        latest = await self.store.latest_bar(sym, Interval.D1)
        if latest is not None and (latest.as_of is None or latest.as_of > computed_at):
            return False
        # An action learned since changes the adjusted series the snapshot was computed on.
        return sym not in await self.store.corporate_action_symbols(learned_since=computed_at)

    async def _explain_knowledge_axis(self, snap: dict[str, Any], *, end: datetime, known: datetime) -> None:
        """Say in the reasons when ``as_of`` (knowledge time), not a lack of stored bars, is
        why fields are null: bars of these sessions exist but MDS learned them later."""
        if not snap["reasons"]:
            return
        sym = snap["symbol"]
        stored = await self.store.read_bars(
            sym, Interval.D1, end - timedelta(days=3 * 366), end, limit=self.bars
        )
        later = sum(1 for b in stored if b.as_of is not None and b.as_of > known)
        if later == 0:
            return
        note = f"as_of {iso(known)} excludes {later} daily bars of these sessions that MDS learned later"
        if snap["bars_used"] == 0:
            snap["reasons"] = _reword(
                snap["reasons"], f"no daily bars known at as_of {iso(known)}: {later} were learned later"
            )
        else:
            snap["reasons"] = {f: f"{why} ({note})" for f, why in snap["reasons"].items()}

    async def atr(self, symbol: str) -> dict[str, Any]:
        """ATR(14), ATR%, distance from SMA50 in ATRs, and the volatility regime."""
        sym = await self._symbol(symbol)
        now = self.clock.now()
        end = now + _TICK
        data = await self._one.daily_bars([sym], end, as_of=None, limit=self.bars)
        # On the same adjusted series as the snapshot: a split must not read as a huge range.
        extra = await self._adjusting(as_of=None, through=local_date(now))(data)
        batch, sessions = to_batch(data, self.calendar, end, self.bars)
        [snap] = ind.snapshots(ind.compute(batch, sessions))
        k = int(batch.n[0])
        rows = slice(batch.close.shape[1] - k, None)
        rank, regime = ind.volatility_regime(batch.high[0, rows], batch.low[0, rows], batch.close[0, rows])
        fields = ("close", "atr_14", "atr_pct", "atr_dist_sma50", "sma_50")
        reasons = {f: r for f, r in snap["reasons"].items() if f in fields}
        if regime is None:
            reasons["regime"] = f"needs 20 ATR values (34 bars), {k} available"
        return {
            "symbol": sym,
            "as_of": snap["as_of"],
            "bars_used": k,
            **{f: snap[f] for f in fields},
            "atr_pct_rank": rank,
            "regime": regime,
            "reasons": reasons,
            "adjustment": extra[sym]["adjustment"],
        }

    async def prices(
        self, symbol: str, range_: str, interval: Interval, *, adjust: Adjust = Adjust.RAW
    ) -> dict[str, Any]:
        """OHLCV bars over ``range_`` (Nd trading days, Nwk, Nmo, Ny, ytd, max)."""
        text = range_.strip().lower()
        if not _RANGE.match(text) or text in {"0d", "0wk", "0mo", "0y"}:
            raise InvalidRequest("range", f"unknown range {range_!r}; use e.g. 200d, 6mo, 1y, ytd or max")
        sym = await self._symbol(symbol)
        result = await self.market.history(sym, text, interval, adjust=adjust)
        return {
            "symbol": sym,
            "interval": interval.value,
            "range": text,
            "start": iso(result.start),
            "end": iso(result.end),
            "count": len(result.bars),
            "adjustment": result.adjustment.describe(),
            "bars": [ohlcv_json(b) for b in result.bars],
        }

    # ---------------------------------------------------------- whole universe
    async def _universe(self, symbols: Sequence[str] | None) -> list[str]:
        if symbols is None:
            return [e.symbol for e in await self.store.universe()]
        return [await self._symbol(s) for s in symbols]

    async def refresh(self, symbols: Sequence[str] | None = None) -> dict[str, Any]:
        """Recompute and cache the snapshot of every active symbol (or of ``symbols``).

        Raises:
            NotFound: One of ``symbols`` is not in the active universe.
        """
        started = time.perf_counter()
        syms = await self._universe(symbols)
        now = self.clock.now()
        snaps = await self._current(self.analysis, syms, now)
        expires = now + self.ttl
        await self.analysis.put_cache([CacheEntry(s["symbol"], TECHNICAL, s, now, expires) for s in snaps])
        return {
            "symbols": len(snaps),
            "without_bars": sorted(s["symbol"] for s in snaps if s["bars_used"] == 0),
            "computed_at": iso(now),
            "expires_at": iso(expires),
            "seconds": round(time.perf_counter() - started, 3),
        }

    async def record_history(
        self,
        symbols: Sequence[str] | None = None,
        *,
        as_of: date | None = None,
        analysis_type: str = TECHNICAL,
    ) -> dict[str, Any]:
        """Record today's (or ``as_of``'s point-in-time) snapshots into history.

        Each row is keyed by the snapshot's own ``as_of`` session date; a key already
        recorded is refused, never overwritten. Symbols without bars are skipped.
        """
        syms = await self._universe(symbols)
        now = self.clock.now()
        if as_of is None:
            snaps = await self._current(self.analysis, syms, now)
        else:
            known = pit_cutoff(as_of, self.calendar, now)
            snaps = await build_snapshots(
                self.analysis,
                self.calendar,
                syms,
                end=known,
                as_of=known,
                bars=self.bars,
                transform=self._adjusting(as_of=known, through=as_of),
            )
        entries = [HistoryEntry(s["symbol"], analysis_type, s["as_of"], s, now) for s in snaps if s["as_of"]]
        result = await self.analysis.record_history(entries)
        return {
            "analysis_type": analysis_type,
            "recorded": len(result.written),
            "refused": sorted(result.refused),
            "skipped_without_bars": sorted(s["symbol"] for s in snaps if not s["as_of"]),
            "recorded_at": iso(now),
        }

    async def history(self, symbol: str, as_of_date: date, analysis_type: str = TECHNICAL) -> dict[str, Any]:
        """The recorded snapshot of one day.

        Raises:
            NotFound: Nothing was recorded for that key.
        """
        sym = await self._symbol(symbol)
        entry = await self.analysis.get_history(sym, analysis_type, as_of_date.isoformat())
        if entry is None:
            raise NotFound("analysis history", f"{sym} {analysis_type} {as_of_date.isoformat()}")
        return {**entry.snapshot, "recorded_at": iso(entry.recorded_at)}


def _reword(reasons: dict[str, str], text: str) -> dict[str, str]:
    """``reasons`` with the generic "no daily bars stored" replaced by ``text``."""
    return {f: (text if why == "no daily bars stored" else why) for f, why in reasons.items()}
